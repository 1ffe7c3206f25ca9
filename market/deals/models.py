"""Interests, proposals and deals.

An interest (an enterprise in a result) and a proposal (揭榜: an institute answering a
demand) are one organisation approaching the owner of a listing; they share columns
through `OutreachBase`. A deal is the broker's pipeline between a seller and a buyer;
its stage changes and notes go to `deal_events`, which is append-only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, event, inspect, text
from sqlmodel import Field, SQLModel

from market.db import utcnow


class OutreachStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class DeclineReason(StrEnum):
    """Why the owner said no: a fixed list, so the other side always learns why."""

    PRICE_MISMATCH = "price_mismatch"
    TECHNOLOGY_MISMATCH = "technology_mismatch"
    ALREADY_AGREED_ELSEWHERE = "already_agreed_elsewhere"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    NOT_INTERESTED = "not_interested"
    OTHER = "other"


class DealStage(StrEnum):
    LEAD = "lead"
    CONTACTED = "contacted"
    NEGOTIATING = "negotiating"
    SIGNED = "signed"
    WON = "won"
    LOST = "lost"


# A deal moves one step forward at a time, or is lost from any open stage.
NEXT_STAGE = {
    DealStage.LEAD: DealStage.CONTACTED,
    DealStage.CONTACTED: DealStage.NEGOTIATING,
    DealStage.NEGOTIATING: DealStage.SIGNED,
    DealStage.SIGNED: DealStage.WON,
}
OPEN_STAGES = frozenset(NEXT_STAGE)


class LostReason(StrEnum):
    PRICE_MISMATCH = "price_mismatch"
    TECHNOLOGY_MISMATCH = "technology_mismatch"
    WENT_ELSEWHERE = "went_elsewhere"
    BUYER_WITHDREW = "buyer_withdrew"
    SELLER_WITHDREW = "seller_withdrew"
    NO_RESPONSE = "no_response"
    OTHER = "other"


class DealEventKind(StrEnum):
    OPENED = "opened"
    STAGE_CHANGED = "stage_changed"
    NOTE = "note"


def _pending_only() -> object:
    return text("status = 'pending'")


class OutreachBase(SQLModel):
    """Columns interests and proposals share (not a table)."""

    id: int | None = Field(default=None, primary_key=True)
    # The listing owner at the time of the approach: the organisation that answers.
    owner_organization_id: int = Field(foreign_key="organizations.id", index=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    created_by_user_id: int = Field(foreign_key="users.id")
    message: str = Field(default="", max_length=4000)
    status: OutreachStatus = Field(default=OutreachStatus.PENDING, sa_type=String(20), index=True)
    decline_reason: DeclineReason | None = Field(default=None, sa_type=String(40))
    decline_note: str = Field(default="", max_length=2000)
    responded_at: datetime | None = None
    responded_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Interest(OutreachBase, table=True):
    __tablename__ = "interests"
    __table_args__ = (
        # One open approach per organisation and result; a declined one may be renewed.
        Index(
            "uq_interests_pending_per_organization",
            "result_id",
            "organization_id",
            unique=True,
            sqlite_where=_pending_only(),
            postgresql_where=_pending_only(),
        ),
    )

    result_id: int = Field(foreign_key="results.id", index=True)


class Proposal(OutreachBase, table=True):
    __tablename__ = "proposals"
    __table_args__ = (
        Index(
            "uq_proposals_pending_per_organization",
            "demand_id",
            "organization_id",
            unique=True,
            sqlite_where=_pending_only(),
            postgresql_where=_pending_only(),
        ),
    )

    demand_id: int = Field(foreign_key="demands.id", index=True)
    quoted_price_fen: int | None = Field(default=None, sa_type=BigInteger)
    currency: str = Field(default="CNY", max_length=3)


class Deal(SQLModel, table=True):
    __tablename__ = "deals"
    __table_args__ = (
        CheckConstraint(
            "seller_organization_id <> buyer_organization_id", name="ck_deals_two_parties"
        ),
        Index("ix_deals_stage_updated", "stage", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    seller_organization_id: int = Field(foreign_key="organizations.id", index=True)
    buyer_organization_id: int = Field(foreign_key="organizations.id", index=True)
    result_id: int | None = Field(default=None, foreign_key="results.id", index=True)
    demand_id: int | None = Field(default=None, foreign_key="demands.id", index=True)
    interest_id: int | None = Field(default=None, foreign_key="interests.id")
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id")
    # The introducing broker: written once at creation, never changed (see service).
    broker_user_id: int | None = Field(default=None, foreign_key="users.id")
    broker_organization_id: int | None = Field(
        default=None, foreign_key="organizations.id", index=True
    )
    opened_by_user_id: int = Field(foreign_key="users.id")
    stage: DealStage = Field(default=DealStage.LEAD, sa_type=String(20), index=True)
    lost_reason: LostReason | None = Field(default=None, sa_type=String(40))
    lost_note: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


IMMUTABLE_DEAL_COLUMNS = ("broker_user_id", "broker_organization_id", "opened_by_user_id")


class ImmutableDealColumnError(RuntimeError):
    """A code path tried to rewrite who introduced the parties."""


@event.listens_for(Deal, "before_update")
def _introducing_broker_is_written_once(_mapper: Any, _connection: Any, deal: Deal) -> None:
    # No endpoint changes the broker; this guard keeps a future code path from doing so
    # through the ORM, because the broker's credit (and commission) depends on it.
    state = inspect(deal)
    for name in IMMUTABLE_DEAL_COLUMNS:
        if state.attrs[name].history.has_changes():
            raise ImmutableDealColumnError(f"deal.{name} is written once, at creation")


class DealEvent(SQLModel, table=True):
    """The deal's timeline. Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "deal_events"

    id: int | None = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="deals.id", index=True)
    kind: DealEventKind = Field(sa_type=String(20))
    from_stage: DealStage | None = Field(default=None, sa_type=String(20))
    to_stage: DealStage | None = Field(default=None, sa_type=String(20))
    note: str = Field(default="", max_length=4000)
    actor_user_id: int = Field(foreign_key="users.id")
    actor_organization_id: int = Field(foreign_key="organizations.id")
    occurred_at: datetime = Field(default_factory=utcnow)
