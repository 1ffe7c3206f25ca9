from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from market.common.dates import PlausibleDate
from market.common.ids import BodyId
from market.common.text import normalize_user_text
from market.contracts.models import (
    ContractStatus,
    ContractSubtype,
    ContractType,
    CostKind,
    LicenseScope,
)
from market.listings.models import TechField

# 10^15 fen is ten trillion yuan: far above any contract, far below BigInteger's limit.
MAX_FEN = 10**15
Fen = Annotated[int, Field(ge=0, le=MAX_FEN)]
Id = BodyId


def _line(text: str) -> str:
    return normalize_user_text(text)


def _multiline(text: str) -> str:
    return normalize_user_text(text, multiline=True)


Title = Annotated[str, Field(min_length=2, max_length=200), AfterValidator(_line)]
Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_multiline)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CostItem(_Strict):
    kind: CostKind
    description: Annotated[str, Field(max_length=300), AfterValidator(_line)] = ""
    amount_fen: Fen


class MilestoneItem(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_line)]
    due_on: PlausibleDate
    amount_fen: Fen


class ContractTerms(_Strict):
    """What the seller side enters and may correct until registration."""

    title: Title
    contract_type: ContractType
    subtype: ContractSubtype | None = None
    license_scope: LicenseScope | None = None
    field: TechField
    signed_on: PlausibleDate
    term_start: PlausibleDate
    term_end: PlausibleDate
    total_amount_fen: Fen
    non_technical_costs: Annotated[list[CostItem], Field(max_length=50)] = []
    milestones: Annotated[list[MilestoneItem], Field(min_length=1, max_length=60)]
    # Optional: a client may send what it computed; the server rejects a different value.
    technology_amount_fen: Fen | None = None


class ContractCreate(ContractTerms):
    """From a won deal (the parties and listings follow), or a deal made off the platform."""

    deal_id: Id | None = None
    buyer_organization_id: Id | None = None
    result_id: Id | None = None
    demand_id: Id | None = None


class AmountsChange(_Strict):
    """A correction of a registered contract's amounts by bureau staff."""

    reason: Reason
    total_amount_fen: Fen
    non_technical_costs: Annotated[list[CostItem], Field(max_length=50)] = []
    milestones: Annotated[list[MilestoneItem], Field(min_length=1, max_length=60)]
    technology_amount_fen: Fen | None = None


class Decision(_Strict):
    """Refuse, ask for correction (补正) or cancel: always with a reason."""

    reason: Reason


class RegistrationRequest(_Strict):
    note: Annotated[str, Field(max_length=2000), AfterValidator(_multiline)] = ""


class SubmitRequest(_Strict):
    note: Annotated[str, Field(max_length=2000), AfterValidator(_multiline)] = ""


class CostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: CostKind
    description: str
    amount_fen: int


class MilestoneRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int
    title: str
    due_on: date
    amount_fen: int


class ContractRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    deal_id: int | None
    result_id: int | None
    demand_id: int | None
    contract_type: ContractType
    subtype: ContractSubtype | None
    license_scope: LicenseScope | None
    field: str
    seller_organization_id: int
    seller_name: str
    seller_kind: str
    seller_district_code: str
    buyer_organization_id: int
    buyer_name: str
    buyer_kind: str
    buyer_district_code: str
    broker_user_id: int | None
    broker_organization_id: int | None
    signed_on: date
    term_start: date
    term_end: date
    total_amount_fen: int
    technology_amount_fen: int
    currency: str
    status: ContractStatus
    status_reason: str
    registration_number: str | None
    registered_on: date | None
    registered_at: datetime | None
    revision: int
    submitted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    non_technical_costs: list[CostRead] = []
    milestones: list[MilestoneRead] = []


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contract_id: int
    sequence: int
    kind: str
    delta_total_fen: int
    delta_technology_fen: int
    delta_count: int
    effective_on: date
    recorded_at: datetime
