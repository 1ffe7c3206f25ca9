"""Retried and concurrent registrations never count twice (PostgreSQL).

Many threads, each with its own TestClient (so its own connection and transaction),
register the same submitted contract at once: some with one shared Idempotency-Key,
some with keys of their own, some with none. Exactly one registration may happen,
with one registration number and one ledger entry, and the totals must be exact.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.journey import Cast, direct_contract, ok, submit, totals
from tests.support.parallel import fire, post

pytestmark = pytest.mark.postgres

SHARED_KEY = "register-retry-7f3a"


def _fire(app: FastAPI, requests: list[tuple[str, dict[str, str]]]) -> list[Any]:
    """POST every (path, headers) at once (tests.support.parallel)."""
    return fire(app, [post(path, headers) for path, headers in requests])


def _ledger_rows(engine: Engine, contract_id: int) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT kind, delta_total_fen, delta_technology_fen, delta_count "
                    "FROM ledger_entries WHERE contract_id = :id"
                ),
                {"id": contract_id},
            )
        )


def test_parallel_registrations_of_one_contract_count_once(
    app: FastAPI, client: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = direct_contract(
        client,
        cast.institute,
        cast.enterprise.organization_id,
        total_fen=987_654_321,
        costs=(123_456_789,),
    )
    submit(client, contract["id"], cast.institute)
    path = f"/contracts/{contract['id']}/register"
    shared = {**cast.bureau.headers, "Idempotency-Key": SHARED_KEY}
    requests = (
        [(path, shared)] * 8
        + [(path, {**cast.bureau.headers, "Idempotency-Key": f"own-{n}"}) for n in range(8)]
        + [(path, cast.bureau.headers)] * 4
    )

    responses = _fire(app, requests)

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {200, 409}, [r.text for r in responses if r.status_code >= 500]
    numbers = {r.json()["registration_number"] for r in responses if r.status_code == 200}
    assert len(numbers) == 1  # everyone who got 200 saw the same, single registration
    # The shared key: one request did the work or lost the race; the rest got its answer.
    shared_statuses = {r.status_code for r in responses[:8]}
    assert len(shared_statuses) == 1
    assert _ledger_rows(engine, contract["id"]) == [("registration", 987_654_321, 864_197_532, 1)]
    assert totals(client, cast.bureau) == (1, 987_654_321, 864_197_532)
    final = ok(client.get(f"/contracts/{contract['id']}", headers=cast.bureau.headers))
    assert final["status"] == "registered" and final["registration_number"] in numbers


def test_a_retry_after_success_replays_the_first_answer(
    app: FastAPI, client: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    submit(client, contract["id"], cast.institute)
    path = f"/contracts/{contract['id']}/register"
    headers = {**cast.bureau.headers, "Idempotency-Key": SHARED_KEY}

    responses = _fire(app, [(path, headers)] * 12)

    assert {response.status_code for response in responses} == {200}
    assert len({response.json()["registration_number"] for response in responses}) == 1
    replayed = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(replayed) == 11
    assert len(_ledger_rows(engine, contract["id"])) == 1


def test_parallel_registrations_of_many_contracts_get_distinct_numbers(
    app: FastAPI, client: TestClient, cast: Cast
) -> None:
    contracts = [
        direct_contract(
            client,
            cast.institute,
            cast.enterprise.organization_id,
            total_fen=1_000_00 * (n + 1),
            costs=(n,),
        )
        for n in range(15)
    ]
    for contract in contracts:
        submit(client, contract["id"], cast.institute)

    responses = _fire(
        app, [(f"/contracts/{c['id']}/register", cast.bureau.headers) for c in contracts]
    )

    assert {response.status_code for response in responses} == {200}, [
        r.text for r in responses if r.status_code != 200
    ]
    numbers = sorted(int(r.json()["registration_number"][-6:]) for r in responses)
    assert numbers == list(range(1, 16))  # gapless, no duplicates
    expected_total = sum(1_000_00 * (n + 1) for n in range(15))
    expected_technology = expected_total - sum(range(15))
    assert totals(client, cast.bureau) == (15, expected_total, expected_technology)
