"""Real parallel requests against the app, for race and limit tests.

Every request gets its own thread and its own TestClient, so its own event loop, its
own connection from the app's real pool and its own transaction; a barrier releases
them together, so they reach the database at the same time instead of one after the
other. Used on SQLite and on PostgreSQL alike: a rule that holds here holds because
of the code, not because the test happened to run the requests in turn.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class Call:
    """One request of a race."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


def post(path: str, headers: dict[str, str], json: Any = None) -> Call:
    return Call("POST", path, headers, json)


def fire(app: FastAPI, calls: Sequence[Call]) -> list[httpx.Response]:
    """Send every call at once; the responses come back in the order of `calls`."""
    start = threading.Barrier(len(calls))

    def send(call: Call) -> httpx.Response:
        client = TestClient(app)
        start.wait(timeout=60)
        # Starlette types TestClient against httpx2, which is not installed: Any to mypy.
        response: httpx.Response = client.request(
            call.method, call.path, headers=call.headers, json=call.json
        )
        return response

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(send, call) for call in calls]
        return [future.result(timeout=300) for future in futures]


def statuses(responses: Sequence[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def winners(
    responses: Sequence[httpx.Response], expected: int = 1, status: int = 200
) -> list[httpx.Response]:
    """The responses with `status`, after checking that exactly `expected` of them won
    and that every other one was refused with a 409."""
    counts = statuses(responses)
    texts = [f"{response.status_code} {response.text}" for response in responses]
    assert counts == {status: expected, 409: len(responses) - expected}, (dict(counts), texts)
    return [response for response in responses if response.status_code == status]


def audit_actions(engine: Engine, entity_type: str, entity_id: int) -> list[str]:
    """The audit trail of one entity, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT action FROM audit_events WHERE entity_type = :type AND entity_id = :id "
                "ORDER BY id"
            ),
            {"type": entity_type, "id": entity_id},
        )
        return [row.action for row in rows]


def outbox_topics(engine: Engine, entity_type: str, entity_id: int) -> list[str]:
    """The outbox rows written about one entity, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT topic FROM outbox_events WHERE entity_type = :type "
                "AND entity_id = :id ORDER BY id"
            ),
            {"type": entity_type, "id": entity_id},
        )
        return [row.topic for row in rows]
