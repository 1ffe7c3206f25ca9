"""Parallel decisions on one held deposit: exactly one reaches Stripe (SQLite and
PostgreSQL).

Capturing or releasing a hold is claimed with the codebase's compare-and-set before
Stripe is called (market.common.transitions.claim), not with `FOR UPDATE`, which
SQLite ignores: the racers that lose see the moved state and answer 409 without
calling Stripe, so one decision is carried out and audited.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.deals.journey import Cast
from tests.payments.api.conftest import payment, registered
from tests.payments.api.test_deposits_and_refunds import hold
from tests.support.parallel import audit_actions, fire, post, winners

pytestmark = pytest.mark.stripe
RACERS = 8


def test_parallel_captures_and_releases_of_one_deposit_take_one(
    pay_app: FastAPI, pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 10_000)
    deposit = hold(pay, cast.enterprise, contract["id"], 10_000)
    base = f"/payments/{deposit['id']}"
    calls = [
        post(f"{base}/capture", cast.institute.headers, {"amount_fen": 4_000}) if n % 2 == 0
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
