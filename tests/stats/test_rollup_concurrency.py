"""Parallel ledger steps keep the roll-up exact and never deadlock (PostgreSQL).

Registrations, changes and cancellations of different contracts, by sellers of
different kinds and districts, run at once: they add to the same roll-up rows (the
month's "period" row, the buyer's district, ...) and to different ones. Every step must
succeed, and the roll-up must equal a rebuild from the ledger.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from market.common.calendar import market_today
from market.contracts import rollup
from market.stats import service
from market.stats.schemas import Dimension
from tests.support.factories import Market
from tests.support.journey import (
    Cast,
    contract_terms,
    direct_contract,
    registered_contract,
    submit,
)

pytestmark = pytest.mark.postgres


def _fire(app: FastAPI, requests: list[tuple[str, dict[str, str], Any]]) -> list[Any]:
    start = threading.Barrier(len(requests))

    def send(path: str, headers: dict[str, str], body: Any) -> Any:
        client = TestClient(app)
        start.wait()
        return client.post(path, headers=headers, json=body)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        futures = [pool.submit(send, *request) for request in requests]
        return [future.result() for future in futures]


def test_parallel_steps_keep_the_rollup_exact(
    app: FastAPI, client: TestClient, cast: Cast, market: Market, engine: Engine
) -> None:
    sellers = [
        cast.institute,
        market.university_member(district="330206"),
        market.enterprise_member(district="330281"),
    ]
    bureau = cast.bureau.headers
    requests: list[tuple[str, dict[str, str], Any]] = []
    for n in range(18):
        seller = sellers[n % 3]
        if n % 3 == 0:
            contract = direct_contract(
                client,
                seller,
                cast.enterprise.organization_id,
                total_fen=1_000_000 + n,
                field="智能经济",
            )
            submit(client, contract["id"], seller)
            requests.append((f"/contracts/{contract['id']}/register", bureau, None))
        elif n % 3 == 1:
            contract = registered_contract(
                client, seller, cast.enterprise, cast.bureau, total_fen=2_000_000 + n
            )
            terms = contract_terms(3_000_000 + n)
            body = {
                key: terms[key] for key in ("total_amount_fen", "non_technical_costs", "milestones")
            }
            requests.append(
                (f"/contracts/{contract['id']}/change", bureau, {**body, "reason": "补充协议"})
            )
        else:
            contract = registered_contract(
                client, seller, cast.enterprise, cast.bureau, total_fen=4_000_000 + n
            )
            requests.append((f"/contracts/{contract['id']}/cancel", bureau, {"reason": "解除合同"}))

    responses = _fire(app, requests)

    assert [response.status_code for response in responses] == [200] * 18, [
        r.text for r in responses if r.status_code != 200
    ]
    today = market_today()
    with Session(engine) as session:
        kept = rollup.rows(session)
        rollup.rebuild(session)
        assert rollup.rows(session) == kept
        session.rollback()
        for dimension in Dimension:
            assert service.breakdown(session, dimension, today, None) == service.breakdown(
                session, dimension, today, None, "ledger"
            ), dimension
        summary = service.summary(session, today, None)
    registered = sum(1_000_000 + n for n in range(0, 18, 3))
    changed = sum(3_000_000 + n for n in range(1, 18, 3))
    assert (summary.contract_count, summary.total_amount_fen) == (12, registered + changed)
