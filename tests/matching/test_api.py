"""Matches over HTTP with the embedded engine: ranking, storage, feedback, quality, 503."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from market.discovery.engine import set_app_search_engine
from search.backend import SearchBackend
from search.local import LocalSearchEngine
from tests.support.catalogue import Catalogue
from tests.support.factories import Account
from tests.support.matching import Scene


def get_matches(
    client: TestClient, kind: str, listing_id: int, account: Account, **params: Any
) -> Any:
    return client.get(f"/{kind}s/{listing_id}/matches", headers=account.headers, params=params)


def stored_rows(scene: Scene) -> list[Any]:
    return scene.catalogue.sql(
        "SELECT demand_id, result_id, shown_to_organization_id, times_shown, shown_from, field "
        "FROM matches ORDER BY id"
    )


def test_demand_owner_sees_the_right_result_first_with_reasons(
    client: TestClient, scene: Scene
) -> None:
    response = get_matches(client, "demand", scene.demand["id"], scene.enterprise)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "寻求" not in body["query_terms"] and "钕铁硼" in body["query_terms"]
    ids = [item["listing"]["id"] for item in body["items"]]
    assert ids[:2] == [scene.result["id"], scene.weak["id"]]
    assert scene.off_topic["id"] not in ids  # shares no word with the demand
    best = body["items"][0]
    assert best["score"] > body["items"][1]["score"]
    explanation = best["explanation"]
    assert {"钕铁硼", "晶界", "扩散"} <= set(explanation["matched_terms"])
    agreeing = {reason["code"] for reason in explanation["agreements"]}
    assert {"field", "ipc", "budget", "mode", "maturity"} <= agreeing
    weak_reasons = {r["code"] for r in body["items"][1]["explanation"]["disagreements"]}
    assert {"field", "budget"} <= weak_reasons
    assert best["id"] is not None


def test_matches_are_stored_once_per_pair_and_viewing_organisation(
    client: TestClient, scene: Scene
) -> None:
    first = get_matches(client, "demand", scene.demand["id"], scene.enterprise).json()
    again = get_matches(client, "demand", scene.demand["id"], scene.enterprise).json()
    assert [item["id"] for item in first["items"]] == [item["id"] for item in again["items"]]
    broker_view = get_matches(client, "demand", scene.demand["id"], scene.broker).json()
    assert set(item["id"] for item in broker_view["items"]).isdisjoint(
        item["id"] for item in first["items"]
    )
    rows = stored_rows(scene)
    assert len(rows) == 2 * len(first["items"])
    enterprise_rows = [row for row in rows if row[2] == scene.enterprise.organization_id]
    assert {row[3] for row in enterprise_rows} == {2}  # shown twice, one row
    assert {row[4] for row in rows} == {"demand"} and {row[5] for row in rows} == {"新材料"}


def test_bureau_sees_matches_without_storing_them(client: TestClient, scene: Scene) -> None:
    body = get_matches(client, "demand", scene.demand["id"], scene.bureau).json()
    assert body["items"] and all(item["id"] is None for item in body["items"])
    assert stored_rows(scene) == []


def test_result_owner_sees_the_demand(client: TestClient, scene: Scene) -> None:
    response = get_matches(client, "result", scene.result["id"], scene.institute, limit=5)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items[0]["listing"] == {
        "kind": "demand",
        "id": scene.demand["id"],
        "title": scene.demand["title"],
        "field": "新材料",
        "organization_id": scene.enterprise.organization_id,
        "district_code": scene.demand["district_code"],
    }
    rows = stored_rows(scene)
    assert rows[0][:2] == (scene.demand["id"], scene.result["id"]) and rows[0][4] == "result"


def test_limit_is_bounded(client: TestClient, scene: Scene) -> None:
    response = get_matches(client, "demand", scene.demand["id"], scene.enterprise, limit=51)
    assert response.status_code == 422
    one = get_matches(client, "demand", scene.demand["id"], scene.enterprise, limit=1).json()
    assert len(one["items"]) == 1


def test_feedback_and_quality_report(client: TestClient, scene: Scene) -> None:
    items = get_matches(client, "demand", scene.demand["id"], scene.enterprise).json()["items"]
    good, weak = items[0]["id"], items[1]["id"]
    useful = client.post(
        f"/matches/{good}/feedback",
        json={"useful": True, "reason": "已联系"},
        headers=scene.enterprise.headers,
    )
    assert useful.status_code == 200, useful.text
    assert useful.json()["useful"] is True
    no_reason = client.post(
        f"/matches/{weak}/feedback", json={"useful": False}, headers=scene.enterprise.headers
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "body.reason"
    not_useful = client.post(
        f"/matches/{weak}/feedback",
        json={"useful": False, "reason": "领域不对"},
        headers=scene.enterprise.headers,
    )
    assert not_useful.status_code == 200
    shown_again = get_matches(client, "demand", scene.demand["id"], scene.enterprise).json()
    assert shown_again["items"][0]["useful"] is True  # feedback survives being shown again

    report = client.get("/matching/quality", headers=scene.bureau.headers)
    assert report.status_code == 200, report.text
    overall = report.json()["overall"]
    assert (overall["shown"], overall["rated"], overall["useful"]) == (len(items), 2, 1)
    assert overall["precision"] == 0.5
    by_field = {bucket["field"]: bucket for bucket in report.json()["by_field"]}
    assert by_field["新材料"]["precision"] == 0.5
    assert client.get("/matching/quality", headers=scene.enterprise.headers).status_code == 403
    assert client.get("/matching/quality").status_code == 401


def test_feedback_is_audited(client: TestClient, scene: Scene) -> None:
    items = get_matches(client, "demand", scene.demand["id"], scene.broker).json()["items"]
    match_id = items[0]["id"]
    client.post(
        f"/matches/{match_id}/feedback", json={"useful": True}, headers=scene.broker.headers
    )
    events = scene.catalogue.sql(
        "SELECT action, actor_user_id FROM audit_events WHERE entity_type = 'match' "
        "AND entity_id = :id",
        id=match_id,
    )
    assert events == [("match.feedback", scene.broker.user_id)]


@contextmanager
def searching_with(app: FastAPI, engine: SearchBackend) -> Iterator[None]:
    """The app searches `engine` for the duration, then its own engine again."""
    previous = app.state.search_engine
    set_app_search_engine(app, engine)
    try:
        yield
    finally:
        set_app_search_engine(app, previous)


def test_engine_down_is_a_503_problem(app: FastAPI, client: TestClient, scene: Scene) -> None:
    closed = LocalSearchEngine()
    closed.close()
    with searching_with(app, closed):
        response = get_matches(client, "demand", scene.demand["id"], scene.enterprise)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "search_unavailable"
    assert stored_rows(scene) == []


def test_an_unreachable_server_is_a_503_that_does_not_reveal_its_address(
    app: FastAPI, client: TestClient, scene: Scene
) -> None:
    from search.meili import MeilisearchEngine

    unreachable = MeilisearchEngine("http://127.0.0.1:9", "key", request_timeout_s=2)
    with searching_with(app, unreachable):
        response = get_matches(client, "demand", scene.demand["id"], scene.enterprise)
    assert response.status_code == 503
    assert "127.0.0.1" not in response.text and ":9" not in response.text


def test_a_draft_demand_matches_for_its_owner_and_can_then_be_deleted(
    client: TestClient, scene: Scene
) -> None:
    draft = scene.catalogue.create("demand", scene.enterprise, **MAGNET_DRAFT)
    items = get_matches(client, "demand", draft["id"], scene.enterprise).json()["items"]
    assert items and items[0]["id"] is not None
    deleted = client.delete(f"/demands/{draft['id']}", headers=scene.enterprise.headers)
    assert deleted.status_code == 204, deleted.text
    assert scene.catalogue.sql(
        "SELECT count(*) FROM matches WHERE demand_id = :id", id=draft["id"]
    ) == [(0,)]


MAGNET_DRAFT = {"title": "钕铁硼磁体晶界扩散工艺改进", "keywords": ["钕铁硼"], "field": "新材料"}


def test_stale_index_entries_of_other_rows_do_not_break_storage(
    client: TestClient, scene: Scene
) -> None:
    # Wipe-and-rerun safety: the stored rows reference real listings only.
    get_matches(client, "demand", scene.demand["id"], scene.enterprise)
    orphans = scene.catalogue.sql(
        "SELECT count(*) FROM matches m LEFT JOIN results r ON r.id = m.result_id "
        "WHERE r.id IS NULL"
    )
    assert orphans == [(0,)]


def test_matches_with_meilisearch(
    client: TestClient, catalogue: Catalogue, meili_engine: SearchBackend
) -> None:
    """The same ranking on the production engine (skips without the binary, unless
    MARKET_TEST_REQUIRE_MEILI=1)."""
    scene = Scene(catalogue, meili_engine)
    response = get_matches(client, "demand", scene.demand["id"], scene.enterprise)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["listing"]["id"] for item in items[:2]] == [scene.result["id"], scene.weak["id"]]
    assert all(item["engine_score"] is not None for item in items)
    assert items[0]["id"] is not None


def stored_views(scene: Scene) -> list[Any]:
    return scene.catalogue.sql(
        "SELECT result_id, times_shown, shown_to_user_id, last_shown_at, created_at "
        "FROM matches WHERE shown_to_organization_id = :org ORDER BY result_id",
        org=scene.enterprise.organization_id,
    )


def test_showing_again_refreshes_the_row_for_the_new_viewer(
    client: TestClient, scene: Scene
) -> None:
    first = get_matches(client, "demand", scene.demand["id"], scene.enterprise).json()
    before = stored_views(scene)
    colleague = scene.catalogue.market.account(scene.enterprise.organization_id)
    again = get_matches(client, "demand", scene.demand["id"], colleague).json()
    assert [item["id"] for item in again["items"]] == [item["id"] for item in first["items"]]
    after = stored_views(scene)
    assert [row[0] for row in after] == [row[0] for row in before]
    assert {row[1] for row in after} == {2}
    assert {row[2] for row in after} == {colleague.user_id}
    assert all(
        new[3] >= old[3] and new[4] == old[4] for old, new in zip(before, after, strict=True)
    )


@pytest.mark.postgres
def test_simultaneous_views_of_one_listing_share_rows(client: TestClient, scene: Scene) -> None:
    """Two requests of one organisation storing the same pairs at once: the upsert
    resolves the conflict in the database, neither request fails."""
    statuses: list[int] = []

    def view() -> None:
        response = get_matches(client, "demand", scene.demand["id"], scene.enterprise)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=view) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    assert {row[1] for row in stored_views(scene)} == {4}
