"""Search request parameters and responses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from market.listings.models import ListingStatus, MaturityStage, TechField, TransferMode
from search.backend import MAX_PAGE_SIZE

MAX_QUERY_LENGTH = 200
# Offsets past this are refused: deep pages are a crawler's tool, not a reader's.
MAX_SEARCH_OFFSET = 10_000


class ResultFacet(StrEnum):
    KIND = "kind"
    FIELD = "field"
    DISTRICT_CODE = "district_code"
    MATURITY_STAGE = "maturity_stage"
    TRANSFER_MODES = "transfer_modes"
    STATUS = "status"
    DISCIPLINE = "discipline"


class DemandFacet(StrEnum):
    FIELD = "field"
    DISTRICT_CODE = "district_code"
    COOPERATION_MODES = "cooperation_modes"
    STATUS = "status"


DEFAULT_RESULT_FACETS = [
    ResultFacet.FIELD,
    ResultFacet.DISTRICT_CODE,
    ResultFacet.MATURITY_STAGE,
    ResultFacet.TRANSFER_MODES,
]
DEFAULT_DEMAND_FACETS = [
    DemandFacet.FIELD,
    DemandFacet.DISTRICT_CODE,
    DemandFacet.COOPERATION_MODES,
]


class ResultSearchSort(StrEnum):
    RELEVANCE = "relevance"  # newest first when there is no text
    NEWEST = "published_at:desc"
    OLDEST = "published_at:asc"
    PRICE = "price_fen:asc"
    PRICE_DESC = "price_fen:desc"


class DemandSearchSort(StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "published_at:desc"
    OLDEST = "published_at:asc"
    BUDGET = "budget_max_fen:asc"
    BUDGET_DESC = "budget_max_fen:desc"
    DEADLINE = "deadline:asc"


class TotalSource(StrEnum):
    ENGINE = "engine"  # the engine's exact count
    FACETS = "facets"  # the engine capped its count; summed from the status facet


class _Hit(BaseModel):
    id: int = Field(description="The listing id (GET /results/{id} or /demands/{id})")
    title: str
    keywords: list[str]
    field: TechField | None
    district_code: str | None
    organization_id: int | None
    organization_name: str
    status: ListingStatus
    published_at: datetime | None
    score: float | None = Field(
        default=None, description="Relevance 0..1 when asked for; not comparable across engines"
    )
    highlights: dict[str, str] = Field(
        default_factory=dict,
        description="Attribute → HTML-safe text with matches in <em></em>; long texts cropped",
    )
    semantic_score: float | None = Field(
        default=None,
        description="Cosine similarity of the listing to the query's meaning, when the "
        "search was semantic and the listing has a vector",
    )


class ResultHit(_Hit):
    kind: str | None = Field(description="IP form (发明专利, 技术秘密...)")
    summary: str
    ipc_codes: list[str]
    maturity_stage: MaturityStage | None
    transfer_modes: list[TransferMode]
    price_fen: int | None = Field(description="Asking price in fen; null with 面议")
    price_negotiable: bool
    discipline: str | None


class DemandHit(_Hit):
    description: str
    technical_indicators: str
    cooperation_modes: list[str]
    budget_min_fen: int | None
    budget_max_fen: int | None
    budget_negotiable: bool
    deadline: date | None


class _SearchPage(BaseModel):
    total: int = Field(description="Matching listings the caller may see, across all pages")
    total_source: TotalSource
    offset: int
    limit: int = Field(le=MAX_PAGE_SIZE)
    facets: dict[str, dict[str, int]] = Field(
        description="Facet → value → number of matching listings (all pages)"
    )


class ResultSearchPage(_SearchPage):
    items: list[ResultHit]


class DemandSearchPage(_SearchPage):
    items: list[DemandHit]


class SimilarResults(BaseModel):
    source_id: int
    items: list[ResultHit]


class SimilarDemands(BaseModel):
    source_id: int
    items: list[DemandHit]


class OutboxEventRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    topic: str
    entity_type: str
    entity_id: int
    payload: dict[str, Any]
    created_at: datetime
    available_at: datetime
    attempts: int
    last_error: str
    processed_at: datetime | None
    failed_at: datetime | None


class OutboxStatusRead(BaseModel):
    pending: int = Field(description="Search-indexing rows not yet processed")
    failed: int = Field(description="Rows a worker gave up on (any topic)")
    oldest_pending_created_at: datetime | None
    search_engine: str = Field(description="'available', or why the engine cannot be reached")


def hit_fields(document: dict[str, Any]) -> dict[str, Any]:
    """A search document as hit fields: listing id as `id`, unix seconds as datetimes."""
    fields = dict(document)
    fields["id"] = fields.pop("listing_id")
    if fields.get("published_at") is not None:
        fields["published_at"] = datetime.fromtimestamp(fields["published_at"], tz=UTC)
    if fields.get("deadline") is not None:
        fields["deadline"] = datetime.fromtimestamp(fields["deadline"], tz=UTC).date()
    return fields
