"""Request and response models of matching, saved searches and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from market.common.pagination import Page
from market.common.text import one_line, paragraphs

CatalogueName = Literal["results", "demands"]
FenAmount = int


class ReasonRead(BaseModel):
    code: str
    message: str


class ExplanationRead(BaseModel):
    summary: str
    matched_terms: list[str]
    missing_terms: list[str]
    agreements: list[ReasonRead]
    disagreements: list[ReasonRead]
    components: dict[str, float]


class MatchedListing(BaseModel):
    kind: Literal["result", "demand"]
    id: int
    title: str
    field: str | None
    organization_id: int | None
    district_code: str | None


class MatchRead(BaseModel):
    # None when the viewer is bureau staff: their looks are not stored (no feedback).
    id: int | None
    listing: MatchedListing
    score: float = Field(description="0..1; see docs/SEARCH.md, Quality, for the formula")
    engine_score: float | None
    semantic_score: float | None = Field(
        default=None,
        description="Cosine of the two listings' passage vectors; null when either has none",
    )
    explanation: ExplanationRead
    useful: bool | None = None
    feedback_reason: str = ""


class MatchList(BaseModel):
    source_kind: Literal["result", "demand"]
    source_id: int
    query_terms: list[str] = Field(description="the words sent to the search engine")
    items: list[MatchRead]


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    useful: bool
    reason: Annotated[str, Field(max_length=1000), AfterValidator(paragraphs)] = ""


class FeedbackRead(BaseModel):
    match_id: int
    useful: bool
    reason: str
    feedback_at: datetime


class QualityBucket(BaseModel):
    field: str | None = Field(description="None for the overall figures")
    shown: int
    rated: int
    useful: int
    precision: float | None = Field(description="useful / rated; None before any rating")


class QualityReport(BaseModel):
    overall: QualityBucket
    by_field: list[QualityBucket]


class SavedSearchFilters(BaseModel):
    """The browse filters of the catalogue's search (search.backend.SearchFilters)."""

    model_config = ConfigDict(extra="forbid")

    field: str | None = None
    ipc_prefix: str | None = Field(default=None, max_length=20)
    district_code: str | None = Field(default=None, max_length=6)
    maturity_stage: str | None = None
    transfer_mode: str | None = None
    cooperation_mode: str | None = None
    kind: str | None = Field(default=None, max_length=20)
    price_min_fen: FenAmount | None = Field(default=None, ge=0)
    price_max_fen: FenAmount | None = Field(default=None, ge=0)
    budget_min_fen: FenAmount | None = Field(default=None, ge=0)
    budget_max_fen: FenAmount | None = Field(default=None, ge=0)


class SavedSearchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    catalogue: CatalogueName
    name: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(one_line)]
    q: Annotated[str, Field(max_length=200), AfterValidator(one_line)] = ""
    filters: SavedSearchFilters = Field(default_factory=SavedSearchFilters)


class SavedSearchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    catalogue: CatalogueName
    name: str
    q: str
    filters: SavedSearchFilters
    created_at: datetime


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    topic: str
    saved_search_id: int | None
    listing_kind: str
    listing_id: int
    title: str
    message: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(Page[NotificationRead]):
    unread: int


class ReadAllResult(BaseModel):
    marked_read: int
