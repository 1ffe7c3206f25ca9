"""Deals: opening, stages, the timeline, the broker's credit, visibility, listings."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError

from market.db import session_scope
from market.deals.models import Deal, ImmutableDealColumnError
from tests.support.factories import Market
from tests.support.journey import (
    STAGES,
    Cast,
    advance,
    express_interest,
    listing_status,
    ok,
    ok_list,
    publish_demand,
    publish_result,
)


def _open_from_interest(
    client: TestClient, cast: Cast, result_id: int | None = None
) -> dict[str, Any]:
    result_id = result_id or publish_result(client, cast.institute, cast.bureau)
    interest_id = express_interest(client, cast, result_id)
    return ok(
        client.post(
            "/deals",
            json={"title": "许可洽谈", "interest_id": interest_id},
            headers=cast.broker.headers,
        ),
        201,
    )


def test_stages_move_one_step_at_a_time_and_are_timelined(client: TestClient, cast: Cast) -> None:
    deal = _open_from_interest(client, cast)
    assert deal["stage"] == "lead" and deal["broker_user_id"] == cast.broker.user_id
    skipped = client.post(
        f"/deals/{deal['id']}/stage", json={"stage": "signed"}, headers=cast.broker.headers
    )
    assert skipped.status_code == 409 and skipped.json()["code"] == "invalid_transition"
    advance(client, deal["id"], cast.broker, *STAGES)
    for stage in ("lost", "won", "lead"):
        response = client.post(
            f"/deals/{deal['id']}/stage",
            json={"stage": stage, "lost_reason": "other"},
            headers=cast.broker.headers,
        )
        assert response.status_code == 409, stage
    timeline = ok_list(client.get(f"/deals/{deal['id']}/events", headers=cast.enterprise.headers))
    assert [event["to_stage"] for event in timeline] == ["lead", *STAGES]
    assert {event["actor_user_id"] for event in timeline} == {cast.broker.user_id}
    assert all(event["occurred_at"] for event in timeline)


def test_losing_needs_a_reason_and_the_last_lost_deal_reopens_the_listing(
    client: TestClient, cast: Cast, market: Market
) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    first = _open_from_interest(client, cast, result_id)
    other_buyer = market.enterprise_member()
    second = ok(
        client.post(
            "/deals",
            json={
                "title": "第二家企业",
                "seller_organization_id": cast.institute.organization_id,
                "buyer_organization_id": other_buyer.organization_id,
                "result_id": result_id,
            },
            headers=cast.broker.headers,
        ),
        201,
    )
    assert listing_status(client, "results", result_id, cast.outsider) == "in_negotiation"

    no_reason = client.post(
        f"/deals/{first['id']}/stage", json={"stage": "lost"}, headers=cast.broker.headers
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "body.lost_reason"
    lost = ok(
        client.post(
            f"/deals/{first['id']}/stage",
            json={"stage": "lost", "lost_reason": "price_mismatch", "note": "价格谈不拢"},
            headers=cast.enterprise.headers,
        )
    )
    assert (lost["stage"], lost["lost_reason"], lost["lost_note"]) == (
        "lost",
        "price_mismatch",
        "价格谈不拢",
    )
    assert lost["closed_at"] is not None
    # Another deal is still open on the result: it stays in negotiation.
    assert listing_status(client, "results", result_id, cast.outsider) == "in_negotiation"
    ok(
        client.post(
            f"/deals/{second['id']}/stage",
            json={"stage": "lost", "lost_reason": "went_elsewhere"},
            headers=cast.broker.headers,
        )
    )
    assert listing_status(client, "results", result_id, cast.outsider) == "published"


def test_the_introducing_broker_cannot_be_rewritten(
    client: TestClient, cast: Cast, market: Market, engine: Engine
) -> None:
    deal = _open_from_interest(client, cast)
    another_broker = market.broker()
    rewrite = client.patch(
        f"/deals/{deal['id']}",
        json={"broker_user_id": another_broker.user_id},
        headers=cast.institute.headers,
    )
    assert rewrite.status_code == 422
    assert rewrite.json()["errors"][0]["field"] == "body.broker_user_id"
    renamed = ok(
        client.patch(
            f"/deals/{deal['id']}", json={"title": "新名称"}, headers=cast.institute.headers
        )
    )
    advance(client, deal["id"], cast.institute, "contacted")
    ok(
        client.post(
            f"/deals/{deal['id']}/stage",
            json={"stage": "lost", "lost_reason": "other"},
            headers=cast.enterprise.headers,
        )
    )
    final = ok(client.get(f"/deals/{deal['id']}", headers=cast.bureau.headers))
    assert renamed["title"] == "新名称"
    assert (final["broker_user_id"], final["broker_organization_id"]) == (
        cast.broker.user_id,
        cast.broker.organization_id,
    )
    # Not even code inside the service layer can change it through the ORM.
    with pytest.raises(ImmutableDealColumnError), session_scope(engine) as session:
        row = session.get(Deal, deal["id"])
        assert row is not None
        row.broker_user_id = another_broker.user_id
        session.flush()


def test_a_party_may_name_the_broker_and_bureau_staff_cannot_open_deals(
    client: TestClient, cast: Cast
) -> None:
    demand_id = publish_demand(client, cast.enterprise, cast.bureau)
    proposal_id = ok(
        client.post(f"/demands/{demand_id}/proposals", json={}, headers=cast.institute.headers), 201
    )["id"]
    body = {"title": "揭榜对接", "proposal_id": proposal_id, "broker_user_id": cast.broker.user_id}
    assert client.post("/deals", json=body, headers=cast.bureau.headers).status_code == 403
    assert client.post("/deals", json=body, headers=cast.outsider.headers).status_code == 404
    deal = ok(client.post("/deals", json=body, headers=cast.enterprise.headers), 201)
    assert (deal["seller_organization_id"], deal["buyer_organization_id"]) == (
        cast.institute.organization_id,
        cast.enterprise.organization_id,
    )
    assert deal["broker_organization_id"] == cast.broker.organization_id
    assert listing_status(client, "demands", demand_id, cast.outsider) == "in_negotiation"
    not_a_broker = {**body, "broker_user_id": cast.outsider.user_id}
    response = client.post("/deals", json=not_a_broker, headers=cast.enterprise.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.broker_user_id"


def test_bad_deal_input_names_the_field(client: TestClient, cast: Cast) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    named = {
        "title": "直接对接",
        "seller_organization_id": cast.institute.organization_id,
        "buyer_organization_id": cast.enterprise.organization_id,
    }
    cases = [
        (
            {**named, "buyer_organization_id": cast.institute.organization_id},
            "body.buyer_organization_id",
        ),
        (named, "body.result_id"),  # about no listing at all
        (
            {
                **named,
                "seller_organization_id": cast.outsider.organization_id,
                "result_id": result_id,
            },
            "body.result_id",
        ),  # not the seller's result
        (
            {**named, "buyer_organization_id": 2_000_000, "result_id": result_id},
            "body.buyer_organization_id",
        ),
        ({"title": "x"}, "body.title"),
        ({**named, "result_id": "abc"}, "body.result_id"),
    ]
    for body, field in cases:
        response = client.post("/deals", json=body, headers=cast.broker.headers)
        assert response.status_code == 422, (body, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], response.text


def test_only_the_parties_the_broker_agency_and_the_bureau_see_a_deal(
    client: TestClient, cast: Cast, market: Market
) -> None:
    deal = _open_from_interest(client, cast)
    path = f"/deals/{deal['id']}"
    colleague = market.account(cast.broker.organization_id, cast.broker.role)
    other_broker = market.broker()
    for viewer in (cast.institute, cast.enterprise, cast.broker, colleague, cast.bureau):
        assert client.get(path, headers=viewer.headers).status_code == 200
    for stranger in (cast.outsider, other_broker):
        assert client.get(path, headers=stranger.headers).status_code == 404
        assert client.get(f"{path}/events", headers=stranger.headers).status_code == 404
        assert (
            client.patch(path, json={"title": "偷看一下"}, headers=stranger.headers).status_code
            == 404
        )
        assert (
            client.post(
                f"{path}/stage", json={"stage": "contacted"}, headers=stranger.headers
            ).status_code
            == 404
        )
        assert (
            client.post(
                f"{path}/notes", json={"note": "偷看"}, headers=stranger.headers
            ).status_code
            == 404
        )
        assert ok(client.get("/deals", headers=stranger.headers))["total"] == 0
    # The bureau watches but does not work the deal.
    assert (
        client.post(
            f"{path}/stage", json={"stage": "contacted"}, headers=cast.bureau.headers
        ).status_code
        == 403
    )
    assert (
        client.post(f"{path}/notes", json={"note": "督办"}, headers=cast.bureau.headers).status_code
        == 403
    )
    assert client.get(path).status_code == 401


def test_the_timeline_is_append_only_in_the_database(
    client: TestClient, cast: Cast, engine: Engine
) -> None:
    deal = _open_from_interest(client, cast)
    with pytest.raises(DatabaseError), engine.begin() as connection:
        connection.execute(
            text("UPDATE deal_events SET note = 'rewritten' WHERE deal_id = :id"),
            {"id": deal["id"]},
        )
