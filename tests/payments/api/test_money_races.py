"""Parallel requests that move money, on SQLite and PostgreSQL: each amount moves once.

Nothing here relies on a row lock (SQLite has none): the payment row is changed by a
compare-and-set before Stripe is called, and the losers get a clear 4xx. Each thread
has its own TestClient (its own connection and transaction); all start together.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.journey import Cast, ok
from tests.support.localstripe_server import LocalstripeServer, http_request
from tests.support.parallel import race
from tests.support.payments import VISA, milestone_ids, registered, start_payment

pytestmark = pytest.mark.stripe
RACERS = 10


def stripe_object(localstripe: LocalstripeServer, path: str) -> dict[str, Any]:
    status, body = http_request(localstripe.base_url, "GET", path)
    assert status == 200, body
    found: dict[str, Any] = json.loads(body)
    return found


def refunds_at_stripe(localstripe: LocalstripeServer, intent_id: str) -> list[int]:
    charge = stripe_object(localstripe, f"/v1/payment_intents/{intent_id}")["latest_charge"]
    charge_id = charge["id"] if isinstance(charge, dict) else charge
    listed = stripe_object(localstripe, "/v1/refunds?limit=100")["data"]
    return [refund["amount"] for refund in listed if refund["charge"] == charge_id]


def test_parallel_refunds_refund_once_what_was_paid(
    pay_app: FastAPI, pay: TestClient, cast: Cast, localstripe: LocalstripeServer
) -> None:
    contract = registered(pay, cast, 200_000)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    assert paid["amount_received_fen"] == 200_000
    body = {"amount_fen": 150_000, "reason": "验收不合格"}

    responses = race(
        pay_app,
        lambda client: client.post(
            f"/payments/{paid['id']}/refunds", json=body, headers=cast.institute.headers
        ),
        RACERS,
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == Counter({201: 1, 422: RACERS - 1}), [r.text for r in responses]
    refused = [r.json()["errors"][0] for r in responses if r.status_code == 422]
    assert {(error["code"], error["field"]) for error in refused} == {
        ("above_refundable", "body.amount_fen")
    }
    assert refunds_at_stripe(localstripe, paid["stripe_payment_intent_id"]) == [150_000]
    after = ok(pay.get(f"/payments/{paid['id']}", headers=cast.institute.headers))
    assert (after["amount_refunded_fen"], len(after["refunds"])) == (150_000, 1)


def test_parallel_captures_and_releases_of_one_deposit_settle_it_once(
    pay_app: FastAPI, pay: TestClient, cast: Cast, localstripe: LocalstripeServer
) -> None:
    contract = registered(pay, cast, 50_000)
    deposit = ok(
        pay.post(
            f"/contracts/{contract['id']}/deposits",
            json={"amount_fen": 10_000, "note": "履约保证金", "confirm_with": VISA},
            headers=cast.enterprise.headers,
        ),
        201,
    )
    actions = iter(["capture", "release"] * (RACERS // 2))
    lock = threading.Lock()

    def settle(client: TestClient) -> Any:
        with lock:
            action = next(actions)
        return client.post(
            f"/payments/{deposit['id']}/{action}", json={}, headers=cast.institute.headers
        )

    responses = race(pay_app, settle, RACERS)

    statuses = Counter(response.status_code for response in responses)
    assert statuses == Counter({200: 1, 409: RACERS - 1}), [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    intent_id = deposit["stripe_payment_intent_id"]
    intent = stripe_object(localstripe, f"/v1/payment_intents/{intent_id}")
    expected = {"captured": ("succeeded", 10_000), "released": ("canceled", 0)}[winner["status"]]
    assert intent["status"] == expected[0]
    after = ok(pay.get(f"/payments/{deposit['id']}", headers=cast.institute.headers))
    assert (after["status"], after["amount_received_fen"]) == (winner["status"], expected[1])


def test_parallel_payouts_never_exceed_what_is_payable(
    pay_app: FastAPI, pay: TestClient, cast: Cast
) -> None:
    contract = registered(pay, cast, 20_000)
    start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    payments = ok(pay.get(f"/contracts/{contract['id']}/payments", headers=cast.bureau.headers))
    payable = payments["totals"]["payable_to_seller_fen"]
    assert payable > 0
    body = {"amount_fen": payable, "reference": "银行转账", "paid_on": "2026-11-30"}

    responses = race(
        pay_app,
        lambda client: client.post(
            f"/contracts/{contract['id']}/payouts", json=body, headers=cast.bureau.headers
        ),
        RACERS,
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == Counter({201: 1, 422: RACERS - 1}), [r.text for r in responses]
    after = ok(pay.get(f"/contracts/{contract['id']}/payments", headers=cast.bureau.headers))
    assert (after["totals"]["payouts_fen"], after["totals"]["payable_to_seller_fen"]) == (
        payable,
        0,
    )
