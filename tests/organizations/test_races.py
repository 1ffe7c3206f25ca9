"""Parallel verification decisions on one organisation: exactly one is taken.

Bureau reviewers deciding at once (verify, reject) on a pending organisation: the
decision is a compare-and-set from the status each reviewer saw, so one wins and the
others get a 409, with one audit event. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.organizations.models import OrganizationKind
from tests.support.factories import Market
from tests.support.parallel import audit_actions, fire, post, winners

RACERS = 10


def test_parallel_verification_decisions_take_one(
    app: FastAPI, client: TestClient, market: Market, engine: Engine
) -> None:
    organization_id = market.organization(OrganizationKind.ENTERPRISE, verified=False)
    bureau = market.bureau_staff()
    decisions = [
        {"decision": "verify", "reason": ""} if n % 2 == 0
        else {"decision": "reject", "reason": f"营业执照第{n}页不清晰"}
        for n in range(RACERS)
    ]

    responses = fire(app, [post(f"/organizations/{organization_id}/verification",
                                bureau.headers, body) for body in decisions])

    [winner] = winners(responses)
    decided = winner.json()["verification_status"]
    action = "verification.verify" if decided == "verified" else "verification.reject"
    assert audit_actions(engine, "organization", organization_id) == [action]
    seen = client.get(f"/organizations/{organization_id}", headers=bureau.headers).json()
    assert seen["verification_status"] == decided
