"""Parallel decisions on one held deposit and parallel payouts: the rule holds (SQLite
and PostgreSQL).

Capturing or releasing a hold is claimed with the codebase's compare-and-set before
Stripe is called (market.common.transitions.claim), not with `FOR UPDATE`, which
SQLite ignores: the racers that lose see the moved state and answer 409 without
calling Stripe, so one decision is carried out and audited. Payouts of one contract lock its row
before reading what is still payable (transitions.lock_owner_row), so together they
never pay out more than was received.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.payments.api.test_deposits_and_refunds import hold
from tests.support.journey import Cast
from tests.support.parallel import audit_actions, fire, post, statuses, winners
from tests.support.payments import (
    VISA,
    milestone_ids,
    payment,
    registered,
    start_payment,
    view,
)

pytestmark = pytest.mark.stripe
RACERS = 8


def test_parallel_captures_and_releases_of_one_deposit_take_one(
    pay_app: FastAPI, pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 10_000)
    deposit = hold(pay, cast.enterprise, contract["id"], 10_000)
    base = f"/payments/{deposit['id']}"
    calls = [
        post(f"{base}/capture", cast.institute.headers, {"amount_fen": 4_000})
        if n % 2 == 0
        else post(f"{base}/release", cast.bureau.headers)
        for n in range(RACERS)
    ]

    responses = fire(pay_app, calls)

    [winner] = winners(responses)
    decided = winner.json()["status"]
    assert decided in ("captured", "released")
    assert payment(pay, cast.bureau, deposit["id"])["status"] == decided
    action = "captured" if decided == "captured" else "released"
    assert audit_actions(engine, "payment", deposit["id"]) == ["created", action]


def test_parallel_payouts_never_exceed_what_is_payable(
    pay_app: FastAPI, pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 20_000)
    start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    payable = 20_000 - 300  # the platform fee of 1.5 % stays with the platform
    body = {"amount_fen": 10_000, "reference": "宁波银行 转账", "paid_on": "2026-11-20"}

    responses = fire(
        pay_app, [post(f"/contracts/{contract['id']}/payouts", cast.bureau.headers, body)] * RACERS
    )

    assert statuses(responses) == {201: 1, 422: RACERS - 1}, [r.text for r in responses]
    totals = view(pay, cast.institute, contract["id"])["totals"]
    assert (totals["payouts_fen"], totals["payable_to_seller_fen"]) == (10_000, payable - 10_000)
