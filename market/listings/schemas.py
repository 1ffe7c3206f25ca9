"""Request and response models of the catalogue.

Every single-field rule is an Annotated type here, so bad input is a 422 naming the
field before the service runs. Free text is normalised (full-width → half-width,
whitespace) *before* its length is checked, so "     " is too short and ＡＢＣ counts
as three characters. Rules spanning several fields are in `validation`.

In update models, omitting a field leaves it unchanged; an explicit null is accepted only
for fields that may be empty (price_fen, dates, patent numbers...) and is rejected,
naming the field, for the others (`_refuse_null`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from market.common.codes import split_codes
from market.common.dates import PlausibleDate
from market.common.text import normalize_user_text
from market.listings import ipc, patents
from market.listings.models import (
    CooperationMode,
    IpForm,
    ListingKind,
    ListingStatus,
    MaturityStage,
    TechField,
    TransferMode,
)
from market.organizations import districts

MAX_FEN = 10**13  # 1000亿元: above any single technology deal
MAX_IPC_CODES = 20
ItemT = TypeVar("ItemT")


def _text(min_length: int, max_length: int, *, multiline: bool = False) -> Callable[[str], str]:
    def normalized(value: str) -> str:
        text = normalize_user_text(value, multiline=multiline)
        if len(text) < min_length:
            raise ValueError(f"must be at least {min_length} characters (after trimming)")
        if len(text) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return text

    return normalized


def _unique(items: Iterable[ItemT], key: Callable[[ItemT], Any] = lambda item: item) -> list[ItemT]:
    """Drop repeats, keeping the first spelling and the order."""
    seen: set[Any] = set()
    kept = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept


def _short_texts(max_length: int) -> Callable[[list[str]], list[str]]:
    each = _text(1, max_length)

    def normalized(values: list[str]) -> list[str]:
        return _unique((each(value) for value in values), key=str.casefold)

    return normalized


def _ipc_codes(values: list[str]) -> list[str]:
    try:
        return _unique(ipc.normalize_ipc_code(value) for value in values)
    except ipc.IpcCodeError as error:
        raise ValueError(str(error)) from error


def _application_number(value: str) -> str:
    try:
        return patents.normalize_application_number(value)
    except patents.PatentNumberError as error:
        raise ValueError(str(error)) from error


def _publication_number(value: str) -> str:
    try:
        return patents.normalize_publication_number(value)
    except patents.PatentNumberError as error:
        raise ValueError(str(error)) from error


def _whole_fen(value: Any) -> Any:
    """Money is an integer count of fen; 1.5 is a mistake (yuan sent as fen?), not a price."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            "amounts are whole fen as a JSON integer (1 yuan = 100 fen): send 150 for "
            "1.50 yuan, never a decimal or a string"
        )
    return value


def _district(code: str) -> str:
    if not districts.is_known_district(code):
        raise ValueError(f"unknown district code {code!r}; see GET /districts")
    return code


def _unique_modes(values: list[ItemT]) -> list[ItemT]:
    return _unique(values)


Title = Annotated[str, Field(max_length=400), AfterValidator(_text(5, 200))]
LongText = Annotated[str, Field(max_length=10_000), AfterValidator(_text(20, 5000, multiline=True))]
Indicators = Annotated[str, Field(max_length=6000), AfterValidator(_text(0, 3000, multiline=True))]
Keywords = Annotated[
    list[Annotated[str, Field(max_length=60)]],
    Field(min_length=1, max_length=10, description="1-10 keywords, each at most 30 characters"),
    AfterValidator(_short_texts(30)),
]
Inventors = Annotated[
    list[Annotated[str, Field(max_length=100)]],
    Field(max_length=50, description="At most 50 names"),
    AfterValidator(_short_texts(50)),
]
IpcCodes = Annotated[
    list[Annotated[str, Field(max_length=40)]],
    Field(max_length=MAX_IPC_CODES, description="IPC codes such as H01M10/052 or H01M"),
    AfterValidator(_ipc_codes),
]
ApplicationNumber = Annotated[
    str,
    Field(max_length=40, description="e.g. CN201610311380.X; stored in that spelling"),
    AfterValidator(_application_number),
]
PublicationNumber = Annotated[
    str, Field(max_length=40, description="e.g. CN106022747A"), AfterValidator(_publication_number)
]
Fen = Annotated[int, BeforeValidator(_whole_fen), Field(ge=0, le=MAX_FEN)]
TechnologyReadinessLevel = Annotated[int, Field(ge=1, le=9, strict=True)]
DistrictCode = Annotated[str, Field(min_length=6, max_length=6), AfterValidator(_district)]
TransferModes = Annotated[
    list[TransferMode], Field(min_length=1, max_length=5), AfterValidator(_unique_modes)
]
CooperationModes = Annotated[
    list[CooperationMode], Field(min_length=1, max_length=7), AfterValidator(_unique_modes)
]
Discipline = Annotated[str, Field(max_length=120), AfterValidator(_text(0, 60))]
Reason = Annotated[str, Field(max_length=4000), AfterValidator(_text(0, 2000, multiline=True))]


class _Input(BaseModel):
    # A misspelt field ("price" for "price_fen") is a mistake, not something to ignore.
    model_config = ConfigDict(extra="forbid")


class ResultCreate(_Input):
    title: Title
    summary: LongText
    keywords: Keywords
    field: TechField
    ipc_codes: IpcCodes = []
    ip_form: IpForm
    patent_application_number: ApplicationNumber | None = None
    patent_publication_number: PublicationNumber | None = None
    inventors: Inventors = []
    maturity_stage: MaturityStage
    technology_readiness_level: TechnologyReadinessLevel | None = None
    transfer_modes: TransferModes
    price_fen: Fen | None = Field(default=None, description="Asking price in fen; or 面议")
    price_negotiable: bool = Field(default=False, description="面议: price by negotiation")
    district_code: DistrictCode | None = Field(
        default=None, description="Defaults to the owner organisation's district"
    )
    valid_from: PlausibleDate | None = None
    valid_until: PlausibleDate | None = Field(default=None, description="Expires after this day")
    discipline: Discipline = ""


def _refuse_null(value: Any) -> Any:
    # Runs only on values the client sent: an omitted field keeps its default.
    if value is None:
        raise ValueError("may be omitted but not null")
    return value


_RESULT_REQUIRED = (
    "title",
    "summary",
    "keywords",
    "field",
    "ipc_codes",
    "ip_form",
    "inventors",
    "maturity_stage",
    "transfer_modes",
    "price_negotiable",
    "district_code",
    "discipline",
)
_DEMAND_REQUIRED = (
    "title",
    "description",
    "technical_indicators",
    "keywords",
    "field",
    "ipc_codes",
    "cooperation_modes",
    "budget_negotiable",
    "district_code",
)


class ResultUpdate(_Input):
    title: Title | None = None
    summary: LongText | None = None
    keywords: Keywords | None = None
    field: TechField | None = None
    ipc_codes: IpcCodes | None = None
    ip_form: IpForm | None = None
    patent_application_number: ApplicationNumber | None = None
    patent_publication_number: PublicationNumber | None = None
    inventors: Inventors | None = None
    maturity_stage: MaturityStage | None = None
    technology_readiness_level: TechnologyReadinessLevel | None = None
    transfer_modes: TransferModes | None = None
    price_fen: Fen | None = None
    price_negotiable: bool | None = None
    district_code: DistrictCode | None = None
    valid_from: PlausibleDate | None = None
    valid_until: PlausibleDate | None = None
    discipline: Discipline | None = None

    _not_null = field_validator(*_RESULT_REQUIRED, mode="before")(_refuse_null)


class DemandCreate(_Input):
    title: Title
    description: LongText
    technical_indicators: Indicators = ""
    keywords: Keywords
    field: TechField
    ipc_codes: IpcCodes = []
    cooperation_modes: CooperationModes
    budget_min_fen: Fen | None = None
    budget_max_fen: Fen | None = None
    budget_negotiable: bool = Field(default=False, description="面议: budget by negotiation")
    district_code: DistrictCode | None = Field(
        default=None, description="Defaults to the owner organisation's district"
    )
    valid_from: PlausibleDate | None = None
    valid_until: PlausibleDate | None = Field(default=None, description="Expires after this day")
    deadline: PlausibleDate | None = Field(
        default=None, description="When the problem must be solved"
    )


class DemandUpdate(_Input):
    title: Title | None = None
    description: LongText | None = None
    technical_indicators: Indicators | None = None
    keywords: Keywords | None = None
    field: TechField | None = None
    ipc_codes: IpcCodes | None = None
    cooperation_modes: CooperationModes | None = None
    budget_min_fen: Fen | None = None
    budget_max_fen: Fen | None = None
    budget_negotiable: bool | None = None
    district_code: DistrictCode | None = None
    valid_from: PlausibleDate | None = None
    valid_until: PlausibleDate | None = None
    deadline: PlausibleDate | None = None

    _not_null = field_validator(*_DEMAND_REQUIRED, mode="before")(_refuse_null)


class ReviewFlag(BaseModel):
    code: str
    message: str
    other_kind: ListingKind | None = None
    other_id: int | None = None
    other_title: str | None = None
    similarity: float | None = None


class _ListingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    title: str
    keywords: list[str]
    field: TechField
    ipc_codes: list[str]
    district_code: str
    valid_from: date | None
    valid_until: date | None
    status: ListingStatus
    review_flags: list[ReviewFlag] = Field(
        description="Reviewer hints (e.g. a near-identical title); owner and bureau only"
    )
    last_decision_reason: str = Field(description="The bureau's last reason; owner and bureau only")
    submitted_at: datetime | None
    published_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    _split_ipc = field_validator("ipc_codes", mode="before")(split_codes)


class ResultRead(_ListingRead):
    summary: str
    ip_form: IpForm
    patent_application_number: str | None
    patent_publication_number: str | None
    inventors: list[str]
    maturity_stage: MaturityStage
    technology_readiness_level: int | None
    transfer_modes: list[TransferMode]
    price_fen: int | None
    price_negotiable: bool
    currency: str
    discipline: str
    source: str

    _split_modes = field_validator("transfer_modes", mode="before")(split_codes)


class DemandRead(_ListingRead):
    description: str
    technical_indicators: str
    cooperation_modes: list[CooperationMode]
    budget_min_fen: int | None
    budget_max_fen: int | None
    budget_negotiable: bool
    currency: str
    deadline: date | None

    _split_modes = field_validator("cooperation_modes", mode="before")(split_codes)


class ReviewDecisionKind(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewDecision(_Input):
    decision: ReviewDecisionKind
    reason: Reason = Field(default="", description="Required to reject: what the owner must fix")


class Withdrawal(_Input):
    reason: Reason = ""


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    action: str
    from_status: str | None
    to_status: str | None
    reason: str
    actor_user_id: int | None
    actor_organization_id: int | None


class ReviewQueueItem(BaseModel):
    kind: ListingKind
    id: int
    organization_id: int
    title: str
    field: TechField
    submitted_at: datetime | None
    patent_application_number: str | None = None
    review_flags: list[ReviewFlag]


class ResultSort(StrEnum):
    PUBLISHED_AT = "published_at"
    NEWEST = "-published_at"
    PRICE = "price"
    PRICE_DESC = "-price"
    TITLE = "title"


class DemandSort(StrEnum):
    PUBLISHED_AT = "published_at"
    NEWEST = "-published_at"
    BUDGET = "budget"
    BUDGET_DESC = "-budget"
    DEADLINE = "deadline"
    TITLE = "title"


class _BrowseFilters(BaseModel):
    q: str | None = Field(default=None, max_length=100, description="Words in the title")
    field: TechField | None = None
    ipc: str | None = Field(default=None, max_length=20, description="IPC prefix, e.g. H01M")
    district: str | None = Field(default=None, max_length=6, description="District code")
    status: list[ListingStatus] = Field(
        default=[], description="Default: the public statuses (or all of one's own with mine)"
    )
    mine: bool = Field(default=False, description="Only my organisation's listings, any status")
    organization_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    include_negotiable: bool = Field(default=False, description="Include 面议 in amount ranges")

    @field_validator("ipc")
    @classmethod
    def _ipc_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return ipc.normalize_ipc_prefix(value)
        except ipc.IpcCodeError as error:
            raise ValueError(str(error)) from error

    @field_validator("q")
    @classmethod
    def _query_text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalize_user_text(value) or None


class ResultFilters(_BrowseFilters):
    maturity_stage: MaturityStage | None = None
    transfer_mode: TransferMode | None = None
    price_min_fen: int | None = Field(default=None, ge=0, le=MAX_FEN)
    price_max_fen: int | None = Field(default=None, ge=0, le=MAX_FEN)
    sort: ResultSort = ResultSort.NEWEST


class DemandFilters(_BrowseFilters):
    cooperation_mode: CooperationMode | None = None
    budget_min_fen: int | None = Field(
        default=None, ge=0, le=MAX_FEN, description="Demands whose budget reaches this"
    )
    budget_max_fen: int | None = Field(
        default=None, ge=0, le=MAX_FEN, description="Demands whose budget starts below this"
    )
    deadline_before: PlausibleDate | None = None
    deadline_after: PlausibleDate | None = None
    sort: DemandSort = DemandSort.NEWEST


class IpcEntryRead(BaseModel):
    code: str
    level: str
    title_zh: str
    title_en: str
