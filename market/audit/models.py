from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from market.db import utcnow


class AuditEvent(SQLModel, table=True):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(default_factory=utcnow, index=True)
    actor_user_id: int | None = Field(default=None, foreign_key="users.id")
    actor_organization_id: int | None = None
    entity_type: str = Field(max_length=40)
    entity_id: int
    action: str = Field(max_length=40)
    from_status: str | None = Field(default=None, max_length=30)
    to_status: str | None = Field(default=None, max_length=30)
    reason: str = Field(default="", max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
