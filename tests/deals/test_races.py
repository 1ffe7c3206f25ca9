"""Parallel answers to one interest or proposal, and parallel deal moves: one wins.

Accepting and declining are compare-and-sets from pending (market.common.transitions):
of many answers sent at once exactly one is recorded, with one audit event and one
outbox row, and the others get a 409. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.support.factories import Account
from tests.support.journey import (
    Cast,
    advance,
    express_interest,
    ok,
    ok_list,
    publish_demand,
    publish_result,
)
from tests.support.parallel import Call, audit_actions, fire, outbox_topics, post, winners

RACERS = 10


def _answers(path: str, owner: Account) -> list[Call]:
    """Accepts and declines, alternating, as from several colleagues at once."""
    return [
        post(f"{path}/accept", owner.headers)
        if n % 2 == 0
        else post(f"{path}/decline", owner.headers, {"reason": "other", "note": f"第{n}位同事"})
        for n in range(RACERS)
    ]


def _assert_one_answer(
    responses: list[httpx.Response], engine: Engine, entity: str, entity_id: int
) -> None:
    [winner] = winners(responses)
    answer = winner.json()["status"]
    assert answer in ("accepted", "declined")
    assert audit_actions(engine, entity, entity_id) == ["created", answer]
    assert outbox_topics(engine, entity, entity_id) == [f"{entity}.created", f"{entity}.{answer}"]


def test_parallel_answers_to_one_interest_record_one(
    app: FastAPI, client: TestClient, cast: Cast, engine: Engine
) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    interest_id = express_interest(client, cast, result_id)

    responses = fire(app, _answers(f"/interests/{interest_id}", cast.institute))

    _assert_one_answer(responses, engine, "interest", interest_id)
    seen = ok(client.get(f"/interests/{interest_id}", headers=cast.enterprise.headers))
    assert seen["status"] == winners(responses)[0].json()["status"]


def test_parallel_answers_to_one_proposal_record_one(
    app: FastAPI, client: TestClient, cast: Cast, engine: Engine
) -> None:
    demand_id = publish_demand(client, cast.enterprise, cast.bureau)
    proposal = ok(
        client.post(f"/demands/{demand_id}/proposals", json={}, headers=cast.institute.headers), 201
    )

    responses = fire(app, _answers(f"/proposals/{proposal['id']}", cast.enterprise))

    _assert_one_answer(responses, engine, "proposal", proposal["id"])


def test_parallel_stage_moves_of_one_deal_record_one(
    app: FastAPI, client: TestClient, cast: Cast, engine: Engine
) -> None:
    result_id = publish_result(client, cast.institute, cast.bureau)
    deal = ok(
        client.post(
            "/deals",
            json={
                "title": "并发推进",
                "result_id": result_id,
                "seller_organization_id": cast.institute.organization_id,
                "buyer_organization_id": cast.enterprise.organization_id,
            },
            headers=cast.broker.headers,
        ),
        201,
    )
    advance(client, deal["id"], cast.broker, "contacted")
    # One target per race: losing the deal after it moved on to negotiating is a new,
    # allowed move (negotiating → lost), not a lost race.
    moves = [{"stage": "negotiating", "note": f"第{n}位经纪人"} for n in range(RACERS)]

    responses = fire(
        app, [post(f"/deals/{deal['id']}/stage", cast.broker.headers, body) for body in moves]
    )

    [winner] = winners(responses)
    assert audit_actions(engine, "deal", deal["id"]) == ["opened", "stage_changed", "stage_changed"]
    stages = [
        event["to_stage"]
        for event in ok_list(client.get(f"/deals/{deal['id']}/events", headers=cast.broker.headers))
    ]
    assert stages == ["lead", "contacted", winner.json()["stage"]]


def test_deals_lost_at_once_reopen_their_listing(
    app: FastAPI, client: TestClient, cast: Cast, engine: Engine
) -> None:
    """Each deal lost asks "does another open deal still hold the listing?"; asked at
    once, each would see the other as open and nobody would reopen it."""
    result_ids = [publish_result(client, cast.institute, cast.bureau) for _ in range(5)]
    deal_ids = [
        ok(
            client.post(
                "/deals",
                json={
                    "title": "同时失败",
                    "result_id": result_id,
                    "seller_organization_id": cast.institute.organization_id,
                    "buyer_organization_id": buyer.organization_id,
                },
                headers=cast.broker.headers,
            ),
            201,
        )["id"]
        for result_id in result_ids
        for buyer in (cast.enterprise, cast.outsider)
    ]
    lost = {"stage": "lost", "lost_reason": "price_mismatch"}

    responses = fire(
        app, [post(f"/deals/{deal_id}/stage", cast.broker.headers, lost) for deal_id in deal_ids]
    )

    assert [r.status_code for r in responses] == [200] * len(deal_ids), [r.text for r in responses]
    for result_id in result_ids:
        listing = ok(client.get(f"/results/{result_id}", headers=cast.institute.headers))
        assert listing["status"] == "published"
        assert audit_actions(engine, "result", result_id).count("listing.reopened") == 1
