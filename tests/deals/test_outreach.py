"""Interests (enterprise → result) and proposals (揭榜: institute → demand)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from market.db import utcnow
from tests.support.factories import Market
from tests.support.journey import (
    Cast,
    express_interest,
    ok,
    publish_demand,
    publish_result,
)


def test_declining_needs_a_reason_from_the_list_and_the_sender_learns_it(
    client: TestClient, cast: Cast
) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    interest_id = express_interest(client, cast, result_id)
    received = ok(client.get("/interests", headers=cast.institute.headers))
    assert [item["id"] for item in received["items"]] == [interest_id]

    missing = client.post(
        f"/interests/{interest_id}/decline", json={"note": "不合适"}, headers=cast.institute.headers
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.reason"
    unknown = client.post(
        f"/interests/{interest_id}/decline", json={"reason": "busy"}, headers=cast.institute.headers
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.reason"

    declined = ok(
        client.post(
            f"/interests/{interest_id}/decline",
            json={"reason": "price_mismatch", "note": "许可费预期差距较大"},
            headers=cast.institute.headers,
        )
    )
    assert declined["status"] == "declined" and declined["responded_at"] is not None
    assert declined["response_seconds"] >= 0
    seen_by_sender = ok(client.get(f"/interests/{interest_id}", headers=cast.enterprise.headers))
    assert (seen_by_sender["decline_reason"], seen_by_sender["decline_note"]) == (
        "price_mismatch",
        "许可费预期差距较大",
    )
    again = client.post(f"/interests/{interest_id}/accept", headers=cast.institute.headers)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


def test_who_may_approach_whom(client: TestClient, cast: Cast) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    demand_id = publish_demand(client, cast.enterprise, cast.bureau)
    assert (
        client.post(
            f"/results/{result_id}/interests", json={}, headers=cast.institute.headers
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/demands/{demand_id}/proposals", json={}, headers=cast.outsider.headers
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/results/{result_id}/interests", json={}, headers=cast.broker.headers
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/results/999999/interests", json={}, headers=cast.enterprise.headers
        ).status_code
        == 404
    )


def test_an_unverified_enterprise_cannot_express_interest(
    client: TestClient, cast: Cast, market: Market
) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    unverified = market.enterprise_member(verified=False)
    response = client.post(f"/results/{result_id}/interests", json={}, headers=unverified.headers)
    assert response.status_code == 403


def test_one_pending_interest_per_organisation(client: TestClient, cast: Cast) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    express_interest(client, cast, result_id)
    duplicate = client.post(
        f"/results/{result_id}/interests", json={}, headers=cast.enterprise.headers
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "already_pending"


def test_a_proposal_answers_a_demand_and_its_owner_accepts(client: TestClient, cast: Cast) -> None:
    demand_id = publish_demand(client, cast.enterprise, cast.bureau)
    body = {"message": "我院有成熟的模流分析方案", "quoted_price_fen": 30_000_000}
    proposal = ok(
        client.post(f"/demands/{demand_id}/proposals", json=body, headers=cast.institute.headers),
        201,
    )
    assert proposal["owner_organization_id"] == cast.enterprise.organization_id
    assert (
        client.post(
            f"/proposals/{proposal['id']}/accept", headers=cast.institute.headers
        ).status_code
        == 403
    )
    accepted = ok(
        client.post(f"/proposals/{proposal['id']}/accept", headers=cast.enterprise.headers)
    )
    assert accepted["status"] == "accepted" and accepted["responded_by_user_id"] == (
        cast.enterprise.user_id
    )


def test_approaches_are_hidden_from_other_organisations(client: TestClient, cast: Cast) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    interest_id = express_interest(client, cast, result_id)
    demand_id = publish_demand(client, cast.enterprise, cast.bureau)
    proposal_id = ok(
        client.post(f"/demands/{demand_id}/proposals", json={}, headers=cast.institute.headers), 201
    )["id"]
    for path in (f"/interests/{interest_id}", f"/proposals/{proposal_id}"):
        assert client.get(path, headers=cast.outsider.headers).status_code == 404
        assert client.post(f"{path}/accept", headers=cast.outsider.headers).status_code == 404
        assert (
            client.post(
                f"{path}/decline", json={"reason": "other"}, headers=cast.outsider.headers
            ).status_code
            == 404
        )
        assert client.get(path, headers=cast.broker.headers).status_code == 200
        assert client.get(path, headers=cast.bureau.headers).status_code == 200
        # Brokers and the bureau follow approaches up; only the owner answers them.
        assert client.post(f"{path}/accept", headers=cast.broker.headers).status_code == 403
    assert ok(client.get("/interests", headers=cast.outsider.headers))["total"] == 0


def _age(engine: Engine, table: str, row_id: int, days: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(f"UPDATE {table} SET created_at = :at WHERE id = :id"),
            {"at": utcnow() - timedelta(days=days), "id": row_id},
        )


def test_stale_unanswered_approaches_show_to_the_owner_and_brokers(
    client: TestClient, cast: Cast, engine: Engine, market: Market
) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    old_id = express_interest(client, cast, result_id)
    _age(engine, "interests", old_id, days=10)
    second_enterprise = market.enterprise_member()
    fresh = ok(
        client.post(f"/results/{result_id}/interests", json={}, headers=second_enterprise.headers),
        201,
    )

    for viewer in (cast.institute, cast.broker, cast.bureau):
        stale = ok(client.get("/interests/stale", headers=viewer.headers))
        assert [item["id"] for item in stale["items"]] == [old_id], viewer
    assert (
        ok(
            client.get(
                "/interests/stale", params={"older_than_days": 30}, headers=cast.broker.headers
            )
        )["total"]
        == 0
    )
    everything = ok(
        client.get("/interests/stale", params={"older_than_days": 0}, headers=cast.broker.headers)
    )
    assert {item["id"] for item in everything["items"]} == {old_id, fresh["id"]}
    assert ok(client.get("/interests/stale", headers=cast.outsider.headers))["total"] == 0
    bad = client.get(
        "/interests/stale", params={"older_than_days": -1}, headers=cast.broker.headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.older_than_days"

    ok(client.post(f"/interests/{old_id}/accept", headers=cast.institute.headers))
    assert ok(client.get("/interests/stale", headers=cast.broker.headers))["total"] == 0


def test_stale_proposals(client: TestClient, cast: Cast, engine: Engine) -> None:
    demand_id = publish_demand(client, cast.enterprise, cast.bureau)
    proposal_id = ok(
        client.post(f"/demands/{demand_id}/proposals", json={}, headers=cast.institute.headers), 201
    )["id"]
    assert ok(client.get("/proposals/stale", headers=cast.enterprise.headers))["total"] == 0
    _age(engine, "proposals", proposal_id, days=8)
    stale = ok(client.get("/proposals/stale", headers=cast.enterprise.headers))
    assert [item["id"] for item in stale["items"]] == [proposal_id]
