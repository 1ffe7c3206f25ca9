from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from market.audit.models import AuditEvent
from market.auth.actor import Actor


def record(
    session: Session,
    actor: Actor | None,
    entity_type: str,
    entity_id: int | None,
    action: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add the audit event of a state change made by `actor` (None: the system itself,
    e.g. a scheduled expiry) to the session, in the change's own transaction."""
    # The entity must have been flushed: an event about "no id" could never be found.
    assert entity_id is not None, f"audit of an unsaved {entity_type}"
    event = AuditEvent(
        actor_user_id=actor.user_id if actor else None,
        actor_organization_id=actor.organization_id if actor else None,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        details=details or {},
    )
    session.add(event)
    return event


def trail(session: Session, entity_type: str, entity_id: int) -> list[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(col(AuditEvent.occurred_at), col(AuditEvent.id))
    )
    return list(session.exec(query))
