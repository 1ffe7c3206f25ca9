from __future__ import annotations

from typing import Any

from sqlmodel import Session

from market.outbox.models import OutboxEvent


def enqueue(
    session: Session,
    topic: str,
    entity_type: str,
    entity_id: int,
    payload: dict[str, Any] | None = None,
) -> OutboxEvent:
    """Record a side effect; it happens only if the surrounding transaction commits."""
    event = OutboxEvent(
        topic=topic, entity_type=entity_type, entity_id=entity_id, payload=payload or {}
    )
    session.add(event)
    return event
