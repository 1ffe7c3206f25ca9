"""Stored matches with their feedback, saved searches and the notification inbox.

A match is stored when it is shown to a broker or to the owning organisation, once per
(demand, result, viewing organisation): showing it again refreshes score and
explanation, and the feedback that organisation gave stays attached. The feedback is
what `GET /matching/quality` counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from market.db import utcnow


class StoredMatch(SQLModel, table=True):
    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint(
            "demand_id", "result_id", "shown_to_organization_id", name="uq_matches_pair_viewer"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # CASCADE: an owner may look at matches of a draft and then delete the draft.
    demand_id: int = Field(foreign_key="demands.id", ondelete="CASCADE", index=True)
    result_id: int = Field(foreign_key="results.id", ondelete="CASCADE", index=True)
    # Whose matches page showed it: "demand" (results for a demand) or "result".
    shown_from: str = Field(sa_type=String(10))
    # The demand's key field when shown: quality is reported by the field of the need.
    field: str = Field(sa_type=String(20), index=True)
    score: float
    engine_score: float | None = None
    explanation: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    shown_to_user_id: int = Field(foreign_key="users.id")
    shown_to_organization_id: int = Field(foreign_key="organizations.id", index=True)
    times_shown: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    last_shown_at: datetime = Field(default_factory=utcnow)
    useful: bool | None = None
    feedback_reason: str = Field(default="", max_length=1000)
    feedback_user_id: int | None = Field(default=None, foreign_key="users.id")
    feedback_at: datetime | None = None


class SavedSearch(SQLModel, table=True):
    __tablename__ = "saved_searches"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    organization_id: int = Field(foreign_key="organizations.id")
    catalogue: str = Field(sa_type=String(10), index=True)  # "results" | "demands"
    name: str = Field(max_length=100)
    q: str = Field(default="", max_length=200)
    filters: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        # The outbox delivers at least once; this makes a redelivery a no-op.
        UniqueConstraint(
            "saved_search_id", "listing_kind", "listing_id", name="uq_notifications_search_listing"
        ),
        Index("ix_notifications_inbox", "user_id", "read_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    topic: str = Field(sa_type=String(40))
    # SET NULL: deleting a saved search keeps the notifications it already produced.
    saved_search_id: int | None = Field(
        default=None, foreign_key="saved_searches.id", ondelete="SET NULL"
    )
    listing_kind: str = Field(sa_type=String(10))
    listing_id: int
    title: str = Field(max_length=200)
    message: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None
