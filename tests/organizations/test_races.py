"""Parallel verification decisions on one organisation: exactly one is taken.

Bureau reviewers deciding at once on a pending organisation: the
decision is a compare-and-set from the status each reviewer saw, so one wins and the
others get a 409, with one audit event. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.auth.organization import OrganizationKind
from tests.support.factories import Market
from tests.support.parallel import audit_actions, fire, post, winners

RACERS = 10


@pytest.mark.parametrize("decision", ["verify", "reject"])
def test_parallel_verification_decisions_take_one(
    app: FastAPI, client: TestClient, market: Market, engine: Engine, decision: str
) -> None:
    # One kind of decision per race: a verification that starts after a rejection has
    # committed is a new, allowed decision (rejected → verified), not a lost race.
    organization_id = market.organization(OrganizationKind.ENTERPRISE, verified=False)
    bureau = market.bureau_staff()
    decisions = [
        {"decision": decision, "reason": f"第{n}位审核员: 营业执照不清晰"} for n in range(RACERS)
    ]

    responses = fire(
        app,
        [
            post(f"/organizations/{organization_id}/verification", bureau.headers, body)
            for body in decisions
        ],
    )

    [winner] = winners(responses)
    decided = winner.json()["verification_status"]
    assert decided == ("verified" if decision == "verify" else "rejected")
    assert audit_actions(engine, "organization", organization_id) == [f"verification.{decision}"]
    seen = client.get(f"/organizations/{organization_id}", headers=bureau.headers).json()
    assert seen["verification_status"] == decided
    assert seen["verification_note"] == winner.json()["verification_note"]
