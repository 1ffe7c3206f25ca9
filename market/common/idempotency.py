"""Idempotency keys, for every endpoint that takes an `Idempotency-Key` header.

A retried request with the same key gets the first answer again, without the work
being done twice. The key belongs to one caller and one endpoint (its scope): another
user's key, or the same key on another resource, is never replayed to you. The request
body is fingerprinted, so the same key with a different body is refused (422
`idempotency_key_reused`) instead of answering with the result of another request.

The key is claimed by inserting it *before* the work, in a savepoint of the request's
transaction. A concurrent request with the same key waits on the unique index (or, on
SQLite, for the write lock) until the first one commits, then fails to insert and reads
the stored answer. If the first request fails, its claim is rolled back with it, so the
key can be used again. A replay answers 200 with the stored body and the header
`Idempotent-Replayed: true`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Header, Response, status
from pydantic import BaseModel
from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from market.db import utcnow
from market.errors import Conflict, InvalidInput

ModelT = TypeVar("ModelT", bound=BaseModel)

REPLAYED_HEADER = "Idempotent-Replayed"


def replay_response(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """For the schema of an endpoint that answers 201: its replays answer 200."""
    return {
        200: {
            "model": model,
            "description": "A replay: the first answer to this Idempotency-Key, unchanged",
            "headers": {
                REPLAYED_HEADER: {
                    "description": "Always `true` on a replay",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        }
    }


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Any unique string; a retry with the same key (same caller, endpoint "
        "and body) returns the first result without doing the work again",
    ),
]


class IdempotencyKey(SQLModel, table=True):
    """A client's Idempotency-Key and the response it got, so a retry gets it again."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=120)  # endpoint, resource and user
    key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    response_status: int = 200
    response_body: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, index=True)


def request_hash(request: BaseModel | None) -> str:
    canonical = json.dumps(
        request.model_dump(mode="json") if request else None, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(
    session: Session,
    *,
    endpoint: str,
    user_id: int,
    key: str | None,
    request: BaseModel | None,
    response_model: type[ModelT],
    work: Callable[[], ModelT],
    unstored: Collection[str] = (),
    on_replay: Callable[[ModelT], ModelT] | None = None,
) -> tuple[ModelT, bool]:
    """Do `work` once per (endpoint, user, key); returns the answer and whether it was
    replayed. `endpoint` names the operation and its resource (e.g. "contract.submit:7").

    Fields in `unstored` (secrets) are not kept; `on_replay` puts them back."""
    if key is None:
        return work(), False
    scope = f"{endpoint}#user:{user_id}"
    fingerprint = request_hash(request)
    claim = IdempotencyKey(scope=scope, key=key, request_hash=fingerprint)
    try:
        with session.begin_nested():
            session.add(claim)
    except IntegrityError:
        replayed = _replay(session, scope, key, fingerprint, response_model, unstored)
        return (on_replay(replayed) if on_replay else replayed), True
    response = work()
    claim.response_body = response.model_dump(mode="json", exclude=set(unstored))
    session.flush()
    return response, False


def mark_replayed(response: Response) -> None:
    """How every endpoint answers a replay: 200, with the header that says so."""
    response.status_code = status.HTTP_200_OK
    response.headers[REPLAYED_HEADER] = "true"


def _replay(
    session: Session,
    scope: str,
    key: str,
    fingerprint: str,
    response_model: type[ModelT],
    unstored: Collection[str],
) -> ModelT:
    stored = session.exec(
        select(IdempotencyKey).where(
            col(IdempotencyKey.scope) == scope, col(IdempotencyKey.key) == key
        )
    ).one()
    if stored.request_hash != fingerprint:
        raise InvalidInput.on(
            "header.Idempotency-Key",
            "this key was used for a different request",
            code="idempotency_key_reused",
        )
    if stored.response_body is None:
        raise Conflict(
            "The first request with this key is still running; retry shortly",
            code="idempotency_in_progress",
        )
    return response_model.model_validate(
        stored.response_body | dict.fromkeys(unstored)  # absent until on_replay fills them
    )
