from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from market.audit.models import AuditEvent


def record(
    session: Session,
    *,
    actor_user_id: int | None,
    actor_organization_id: int | None,
    entity_type: str,
    entity_id: int,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_user_id=actor_user_id,
        actor_organization_id=actor_organization_id,
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
