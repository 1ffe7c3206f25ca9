from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, text
from sqlmodel import Field, SQLModel

from market.db import utcnow

_OPEN = "processed_at IS NULL AND failed_at IS NULL"


class OutboxEvent(SQLModel, table=True):
    """A side effect to carry out after commit (search indexing, notifications).

    Workers claim due rows (`processed_at IS NULL AND available_at <= now`, on
    PostgreSQL with FOR UPDATE SKIP LOCKED), retry with backoff by moving
    `available_at`, and give up after a number of attempts by setting `failed_at`,
    which keeps the row visible to operators.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_due", "processed_at", "failed_at", "available_at"),
        # A claim ("this topic's oldest open rows") walks this in id order and stops after
        # one batch. Without it PostgreSQL read every open row through ix_outbox_due and
        # sorted them, at a cost growing with the backlog (docs/PERFORMANCE.md, "Figures
        # behind the code's comments").
        Index(
            "ix_outbox_open_by_topic",
            "topic",
            "id",
            sqlite_where=text(_OPEN),
            postgresql_where=text(_OPEN),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=60)
    entity_type: str = Field(max_length=40)
    entity_id: int
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)
    available_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    last_error: str = Field(default="", max_length=4000)
    processed_at: datetime | None = None
    failed_at: datetime | None = None
