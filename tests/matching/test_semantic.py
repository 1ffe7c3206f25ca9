"""Matching by meaning over HTTP, on both engines: a demand told in an enterprise's words
finds the research record that solves it, says why, scores the same pair the same from
both sides, and never embeds in the request (the stored passage vectors decide)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from market.discovery.engine import set_app_embedder
from search.backend import SearchBackend
from tests.support.catalogue import Catalogue
from tests.support.factories import Account
from tests.support.semantic import (
    CountingEmbedder,
    e5,
    index_with_vectors,
    plain_demand,
    record_payload,
)

# pd009: 香兰素中间体溴化工序副产物多、收率低, written for record 626; 37 and 16 are
# records of other disciplines (fish balls, copper etchant).
TARGET, OTHERS = 626, (37, 16)


@pytest.fixture(params=["local", "meili"])
def search_engine(request: pytest.FixtureRequest) -> SearchBackend:
    engine: SearchBackend = request.getfixturevalue(f"{request.param}_engine")
    return engine


@pytest.fixture
def counting(app: FastAPI) -> Iterator[CountingEmbedder]:
    embedder = CountingEmbedder(e5())
    set_app_embedder(app, embedder)
    yield embedder
    set_app_embedder(app, None)


class SemanticScene:
    def __init__(self, catalogue: Catalogue, search_engine: SearchBackend) -> None:
        market = catalogue.market
        self.enterprise = market.enterprise_member()
        self.institute = market.institute_member()
        wording = plain_demand("pd009")
        self.demand = catalogue.published(
            "demand",
            self.enterprise,
            **{name: wording[name] for name in ("title", "description", "keywords", "field")},
        )
        self.results = {
            position: catalogue.published("result", self.institute, **record_payload(position))
            for position in (TARGET, *OTHERS)
        }
        index_with_vectors(catalogue.engine, search_engine)


@pytest.fixture
def semantic_scene(catalogue: Catalogue, search_engine: SearchBackend) -> SemanticScene:
    return SemanticScene(catalogue, search_engine)


def matches(client: TestClient, kind: str, listing_id: int, account: Account) -> Any:
    response = client.get(f"/{kind}s/{listing_id}/matches", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_demand_in_plain_words_finds_its_record_by_meaning_and_says_so(
    client: TestClient, semantic_scene: SemanticScene, counting: CountingEmbedder
) -> None:
    scene = semantic_scene
    counting.calls = 0
    body = matches(client, "demand", scene.demand["id"], scene.enterprise)
    assert counting.calls == 0  # both vectors were stored: nothing embedded per request
    best = body["items"][0]
    assert best["listing"]["id"] == scene.results[TARGET]["id"]
    assert best["semantic_score"] > 0.88
    semantic = [
        reason for reason in best["explanation"]["agreements"] if reason["code"] == "semantic"
    ]
    assert semantic and semantic[0]["message"].startswith("语义相近：")
    assert "语义相近" in best["explanation"]["summary"]
    others = {item["listing"]["id"]: item for item in body["items"][1:]}
    assert all(item["semantic_score"] < best["semantic_score"] for item in others.values())


def test_the_same_pair_scores_the_same_meaning_from_both_sides(
    client: TestClient, semantic_scene: SemanticScene, counting: CountingEmbedder
) -> None:
    scene = semantic_scene
    target = scene.results[TARGET]["id"]
    forward = next(
        item
        for item in matches(client, "demand", scene.demand["id"], scene.enterprise)["items"]
        if item["listing"]["id"] == target
    )
    backward = next(
        item
        for item in matches(client, "result", target, scene.institute)["items"]
        if item["listing"]["id"] == scene.demand["id"]
    )
    assert forward["semantic_score"] == backward["semantic_score"]
    for component in ("semantic", "field", "ipc", "budget", "mode", "maturity", "district"):
        assert (
            forward["explanation"]["components"][component]
            == backward["explanation"]["components"][component]
        ), component


def test_without_an_embedder_matching_is_by_words_and_says_nothing_of_meaning(
    client: TestClient, semantic_scene: SemanticScene
) -> None:
    scene = semantic_scene
    body = matches(client, "demand", scene.demand["id"], scene.enterprise)
    for item in body["items"]:
        assert item["semantic_score"] is None
        assert "semantic" not in item["explanation"]["components"]  # judged without it
        assert "语义相近" not in item["explanation"]["summary"]
