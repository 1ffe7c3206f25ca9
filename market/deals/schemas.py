from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

from market.common.ids import BodyId
from market.common.text import normalize_user_text
from market.deals.models import (
    DealEventKind,
    DealStage,
    DeclineReason,
    LostReason,
    OutreachStatus,
)


def _multiline(text: str) -> str:
    return normalize_user_text(text, multiline=True)


def _line(text: str) -> str:
    return normalize_user_text(text)


Message = Annotated[str, Field(max_length=4000), AfterValidator(_multiline)]
Note = Annotated[str, Field(max_length=2000), AfterValidator(_multiline)]
RequiredNote = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_multiline)]
Title = Annotated[str, Field(min_length=2, max_length=200), AfterValidator(_line)]
Id = BodyId


class _Strict(BaseModel):
    # Unknown fields are an error, not silently dropped: a client that sends
    # broker_user_id on an update learns that it cannot be changed.
    model_config = ConfigDict(extra="forbid")


class InterestCreate(_Strict):
    message: Message = ""


class ProposalCreate(_Strict):
    message: Message = ""
    quoted_price_fen: Annotated[int, Field(ge=0, le=10**15)] | None = None


class Decline(_Strict):
    reason: DeclineReason
    note: Note = ""


class OutreachRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_organization_id: int
    organization_id: int
    created_by_user_id: int
    message: str
    status: OutreachStatus
    decline_reason: DeclineReason | None
    decline_note: str
    responded_at: datetime | None
    responded_by_user_id: int | None
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def response_seconds(self) -> int | None:
        """How long the owner took to answer."""
        if self.responded_at is None:
            return None
        return int((self.responded_at - self.created_at).total_seconds())


class InterestRead(OutreachRead):
    result_id: int


class ProposalRead(OutreachRead):
    demand_id: int
    quoted_price_fen: int | None
    currency: str


class DealCreate(_Strict):
    """Open a deal.

    From an interest or a proposal the parties and the listing follow from it. Otherwise
    name the seller and the buyer, and the result and/or demand the deal is about. A
    party may name the broker who introduced them; a broker opening a deal is the broker.
    """

    title: Title
    interest_id: Id | None = None
    proposal_id: Id | None = None
    seller_organization_id: Id | None = None
    buyer_organization_id: Id | None = None
    result_id: Id | None = None
    demand_id: Id | None = None
    broker_user_id: Id | None = None
    note: Note = ""


class DealUpdate(_Strict):
    title: Title | None = None


class StageChange(_Strict):
    stage: DealStage
    note: Note = ""
    lost_reason: LostReason | None = None


class NoteCreate(_Strict):
    note: RequiredNote


class DealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    seller_organization_id: int
    buyer_organization_id: int
    result_id: int | None
    demand_id: int | None
    interest_id: int | None
    proposal_id: int | None
    broker_user_id: int | None
    broker_organization_id: int | None
    opened_by_user_id: int
    stage: DealStage
    lost_reason: LostReason | None
    lost_note: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class DealEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    deal_id: int
    kind: DealEventKind
    from_stage: DealStage | None
    to_stage: DealStage | None
    note: str
    actor_user_id: int
    actor_organization_id: int
    occurred_at: datetime
