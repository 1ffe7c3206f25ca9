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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One request of a race."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


def post(path: str, headers: dict[str, str], json: Any = None) -> Call:
    return Call("POST", path, headers, json)


def race(app: FastAPI, send: Callable[[TestClient], T], racers: int) -> list[T]:
    """Run `send` from `racers` threads at once, each with a client of its own."""
    return run_together(app, [send] * racers)


def run_together(app: FastAPI, sends: Sequence[Callable[[TestClient], T]]) -> list[T]:
    """Run every `send` from its own thread and client, released together by a barrier;
    the results come back in the order of `sends`."""
    start = threading.Barrier(len(sends))

    def one(send: Callable[[TestClient], T]) -> T:
        client = TestClient(app)
        start.wait(timeout=60)
        return send(client)

    with ThreadPoolExecutor(max_workers=len(sends)) as pool:
        futures = [pool.submit(one, send) for send in sends]
        return [future.result(timeout=300) for future in futures]


def fire(app: FastAPI, calls: Sequence[Call]) -> list[httpx.Response]:
    """Send every call at once; the responses come back in the order of `calls`."""

    def sender(call: Call) -> Callable[[TestClient], httpx.Response]:
        def send(client: TestClient) -> httpx.Response:
            # Starlette types TestClient against httpx2, which is not installed: Any to mypy.
            response: httpx.Response = client.request(
                call.method, call.path, headers=call.headers, json=call.json
            )
            return response

        return send

    return run_together(app, [sender(call) for call in calls])


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
