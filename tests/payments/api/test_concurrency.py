"""Racing requests on PostgreSQL: one live payment per milestone, one count per event.

Each thread has its own TestClient (its own connection and transaction) and all are
released together, as in tests/contracts/test_concurrency.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.journey import Cast
from tests.support.parallel import race
from tests.support.payments import (
    VISA,
    deliver,
    event,
    ledger_rows,
    milestone_ids,
    refund_object,
    registered,
    start_payment,
)

pytestmark = [pytest.mark.postgres, pytest.mark.stripe]
RACERS = 8


def test_parallel_requests_create_one_payment_for_a_milestone(
    pay_app: FastAPI, pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 10_000)
    path = f"/contracts/{contract['id']}/milestones/{milestone_ids(contract)[0]}/payments"

    responses = race(
        pay_app, lambda client: client.post(path, json={}, headers=cast.enterprise.headers), RACERS
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == Counter({201: 1, 409: RACERS - 1}), [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"payment_in_progress"}
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM payments WHERE contract_id = :id"), {"id": contract["id"]}
        ).scalar_one()
    assert count == 1


def test_parallel_deliveries_of_one_refund_event_count_it_once(
    pay_app: FastAPI, pay: TestClient, cast: Cast
) -> None:
    contract = registered(pay, cast, 10_000)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    document = event(
        "refund.updated",
        refund_object("re_race", paid["stripe_payment_intent_id"], 2_500, "succeeded"),
        event_id="evt_race",
    )

    responses = race(pay_app, lambda client: deliver(client, document), RACERS)

    assert [r.status_code for r in responses] == [200] * RACERS
    assert Counter(r.json()["duplicate"] for r in responses) == Counter(
        {False: 1, True: RACERS - 1}
    )
    # The fee due on 7 500 fen net is 112.5 → 113, so 37 of the 150 charged come back.
    assert ledger_rows(pay, cast.bureau, contract["id"]) == [
        ("received", 10_000),
        ("platform_fee", -150),
        ("refund", -2_500),
        ("platform_fee", 37),
    ]
