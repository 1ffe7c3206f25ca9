"""Idempotency keys: a retried request with the same key gets the first answer again.

The key is claimed by inserting it *before* the work is done, inside the request's
transaction and a savepoint. A concurrent request with the same key blocks on the unique
index until the first one commits (PostgreSQL) and then fails to insert; it then reads
the stored response and returns it. If the first request fails, its claim is rolled
back with it, so the key can be used again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Header
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from market.contracts.models import IdempotencyKey
from market.errors import Conflict, InvalidInput

ModelT = TypeVar("ModelT", bound=BaseModel)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=200,
        description="Any unique string; a retry with the same key returns the first result "
        "without doing the work again",
    ),
]


def request_hash(request: BaseModel | None) -> str:
    canonical = json.dumps(
        request.model_dump(mode="json") if request else None, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(
    session: Session,
    *,
    scope: str,
    key: str | None,
    request: BaseModel | None,
    response_model: type[ModelT],
    work: Callable[[], ModelT],
) -> tuple[ModelT, bool]:
    """Do `work` once per (scope, key); returns the response and whether it was replayed."""
    if key is None:
        return work(), False
    fingerprint = request_hash(request)
    claim = IdempotencyKey(scope=scope, key=key, request_hash=fingerprint)
    try:
        with session.begin_nested():
            session.add(claim)
            session.flush()
    except IntegrityError:
        return _replay(session, scope, key, fingerprint, response_model), True
    response = work()
    claim.response_body = response.model_dump(mode="json")
    session.flush()
    return response, False


def _replay(
    session: Session, scope: str, key: str, fingerprint: str, response_model: type[ModelT]
) -> ModelT:
    stored = session.exec(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    ).one()
    if stored.request_hash != fingerprint:
        raise InvalidInput.on(
            "header.Idempotency-Key", "this key was used for a different request",
            code="idempotency_key_reused",
        )
    if stored.response_body is None:
        raise Conflict("The first request with this key is still running; retry shortly",
                       code="idempotency_in_progress")
    return response_model.model_validate(stored.response_body)
