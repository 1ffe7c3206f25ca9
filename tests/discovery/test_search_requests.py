"""The search endpoints' request path: who the caller is, with no database work for
anonymous callers, the same permission checks for signed-in ones, and one JSON body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from market.auth.models import User
from market.db import session_scope
from market.discovery import indexing
from tests.support.catalogue import Catalogue
from tests.support.indexing import ids_of


@pytest.fixture
def checkouts(engine: Engine) -> Iterator[list[int]]:
    """Counts database connections taken from the pool while the test runs."""
    taken: list[int] = []

    def count(*_args: Any) -> None:
        taken.append(1)

    event.listen(engine, "checkout", count)
    yield taken
    event.remove(engine, "checkout", count)


@pytest.mark.parametrize("kind", ["result", "demand"])
def test_an_anonymous_search_touches_no_database(
    api: TestClient,
    catalogue: Catalogue,
    indexer: indexing.Indexer,
    kind: str,
    checkouts: list[int],
) -> None:
    listing = catalogue.published(kind, catalogue.maker(kind))
    indexer.drain()
    checkouts.clear()
    response = api.get(f"/search/{kind}s")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert ids_of(response.json()) == [listing["id"]]
    assert checkouts == []


@pytest.mark.parametrize("kind", ["result", "demand"])
def test_a_bad_or_revoked_token_is_still_401(
    api: TestClient, catalogue: Catalogue, engine: Engine, kind: str
) -> None:
    owner = catalogue.maker(kind)
    assert (
        api.get(f"/search/{kind}s", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    )
    assert api.get(f"/search/{kind}s", headers=owner.headers).status_code == 200
    with session_scope(engine) as session:
        user = session.get(User, owner.user_id)
        assert user is not None
        user.is_active = False
    response = api.get(f"/search/{kind}s", headers=owner.headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_body_matches_the_documented_response_model(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    owner = catalogue.maker("result")
    catalogue.published("result", owner, keywords=["钕铁硼"])
    indexer.drain()
    body = api.get("/search/results", params={"q": "钕铁硼"}, headers=owner.headers).json()
    schema = api.get("/openapi.json").json()["components"]["schemas"]
    assert set(body) == set(schema["ResultSearchPage"]["properties"])
    hit = body["items"][0]
    assert set(hit) == set(schema["ResultHit"]["properties"])
    assert hit["published_at"].endswith("Z")
    assert body["total_source"] == "engine"
