"""The interface both search engines implement, and the values that cross it.

Two catalogues, "results" (科技成果 and patents) and "demands" (技术需求), each hold
documents built by `search.documents`. An engine indexes them, searches them with
`SearchQuery` and answers with `SearchPage`. Engines never see the ORM.

Writes (`upsert`, `delete`, `rebuild`) return only once the engine has applied them, and
raise `SearchError` when it did not: the outbox worker relies on that to know whether a
row may be marked done. `SearchUnavailable` (a `SearchError`) means the engine cannot be
reached at all; the API turns it into a 503, never a 500.

Semantic search: a document may carry a passage vector (`search.documents.VECTOR_KEY`)
and a query a query vector with a `semantic_ratio`. Both engines rank the same way in
spirit (docs/SEARCH.md, "Engines and how they differ"): ratio 0 is today's keyword
search, 1 ranks by cosine only, in between the two rankings are merged. Filters and
visibility hold on both sides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

from search.documents import (
    CATALOGUE_SCHEMAS,
    DEFAULT_VECTOR_DIMENSIONS,
    EMBEDDER_NAME,
    PUBLISHED,
    VECTOR_KEY,
    Catalogue,
    CatalogueSchema,
    DocumentError,
    VectorLike,
    normalize_ipc_prefix,
    vector_values,
)

MatchingStrategy = Literal["all", "last", "frequency"]

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

Document = Mapping[str, Any]
# Called after each batch with the number of documents indexed so far: the total is
# unknown while streaming from a database cursor, so callers show a counter.
ProgressCallback = Callable[[int], None]


class SearchError(Exception):
    """The engine refused or failed an operation (bad query, failed indexing task)."""


class SearchUnavailable(SearchError):
    """The engine cannot be reached; searching is impossible until it comes back."""


class InvalidQueryError(SearchError):
    """The query asks for something the catalogue does not support (unknown sort, facet...)."""


FilterValue = str | Sequence[str] | None


@dataclass(frozen=True)
class SearchFilters:
    """Browse filters, ANDed together. A sequence value means "any of these".

    `price_*` apply to results (asking price; 面议 listings have no price and are excluded
    by a price filter). `budget_*` apply to demands and select budgets that overlap the
    range. Filters that do not exist for the searched catalogue raise `InvalidQueryError`.
    """

    field: FilterValue = None
    ipc_prefix: str | None = None
    district_code: FilterValue = None
    maturity_stage: FilterValue = None
    transfer_mode: FilterValue = None
    cooperation_mode: FilterValue = None
    kind: FilterValue = None
    status: FilterValue = None
    organization_id: int | None = None
    price_min_fen: int | None = None
    price_max_fen: int | None = None
    budget_min_fen: int | None = None
    budget_max_fen: int | None = None


# Which catalogue each filter applies to.
_RESULT_ONLY_FILTERS = (
    "ipc_prefix",
    "maturity_stage",
    "transfer_mode",
    "kind",
    "price_min_fen",
    "price_max_fen",
)
_DEMAND_ONLY_FILTERS = ("cooperation_mode", "budget_min_fen", "budget_max_fen")


@dataclass(frozen=True)
class Visibility:
    """Which documents the caller may see.

    The public sees published listings; a member of an organisation also sees its own
    organisation's listings in any status; staff see everything. The default is the
    safest: published only.
    """

    organization_id: int | None = None
    unrestricted: bool = False

    @classmethod
    def public(cls) -> Visibility:
        return cls()

    @classmethod
    def for_organization(cls, organization_id: int) -> Visibility:
        return cls(organization_id=organization_id)

    @classmethod
    def everything(cls) -> Visibility:
        return cls(unrestricted=True)


@dataclass(frozen=True)
class SortKey:
    attribute: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> SortKey:
        """`published_at:desc` / `price_fen:asc` / `price_fen` (ascending)."""
        attribute, _, direction = text.partition(":")
        if direction not in ("", "asc", "desc"):
            raise InvalidQueryError(f"sort direction must be asc or desc, got {direction!r}")
        return cls(attribute=attribute, descending=direction == "desc")


@dataclass(frozen=True)
class SearchQuery:
    """One search. Empty `text` browses (every visible document matching the filters).

    Without `sort`, a text search is ranked by relevance and a browse by newest first.
    An explicit `sort` wins over relevance. Sorted pages break ties by `listing_id`, so
    they are deterministic; documents of equal relevance come in engine order.

    `vector` is the query's encoding (the embedder's query side, as many dimensions as
    the engine's). `semantic_ratio` weighs it against the words: 0 is keyword only (the
    vector is ignored), 1 vector only. A vector with empty `text` ranks every visible,
    filtered document by cosine whatever the ratio (documents without a vector last).
    Documents without a vector are still found by keyword when the ratio is below 1.
    Without a vector, or with an explicit `sort`, the ratio does nothing. The vector side
    has no cut-off, so a semantic query's `total` and facets may count every document
    within the filters and visibility (docs/SEARCH.md, "Engines and how they differ").
    """

    text: str = ""
    filters: SearchFilters = field(default_factory=SearchFilters)
    visibility: Visibility = field(default_factory=Visibility)
    facets: Sequence[str] = ()
    sort: Sequence[SortKey] = ()
    offset: int = 0
    limit: int = DEFAULT_PAGE_SIZE
    highlight: bool = False
    matching_strategy: MatchingStrategy = "last"
    show_ranking_score: bool = False
    ranking_score_threshold: float | None = None
    vector: VectorLike | None = None
    semantic_ratio: float = 0.0

    @property
    def is_semantic(self) -> bool:
        """Whether the vector side takes part in ranking this query.

        Not with an explicit `sort`: a sort wins over relevance, and Meilisearch does not
        apply one to its vector side, so a sorted search is a keyword search (or browse).
        """
        if self.vector is None or self.sort:
            return False
        return self.semantic_ratio > 0 or not self.text.strip()

    @property
    def effective_semantic_ratio(self) -> float:
        """The ratio engines apply: 1 for a vector with no text, 0 without a vector."""
        if not self.is_semantic:
            return 0.0
        return self.semantic_ratio if self.text.strip() else 1.0


@dataclass(frozen=True)
class SearchHit:
    id: str
    document: dict[str, Any]
    # Relevance in 0..1 (higher is better) when asked for; not comparable across engines.
    score: float | None = None
    # Attribute -> HTML-safe text with matches wrapped in <em></em>; long texts are
    # cropped around the match with "…". Only present when the query asked to highlight.
    highlights: dict[str, str] = field(default_factory=dict)
    # Cosine similarity (-1..1) of the hit's vector to the query's, when the query had a
    # vector and the vector side scored this hit; None otherwise (keyword-only hits,
    # documents without a vector, engines that do not report it).
    semantic_score: float | None = None


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    total: int
    # False only when the engine capped its count (past MAX_TOTAL_HITS matches).
    total_is_exact: bool
    offset: int
    limit: int
    # Facet -> value -> number of matching documents (across all pages).
    facets: dict[str, dict[str, int]] = field(default_factory=dict)


@runtime_checkable
class SearchBackend(Protocol):
    """What the application needs from a search engine."""

    def ensure_indexes(self) -> None:
        """Create the catalogues if missing and apply the current settings (idempotent)."""

    def upsert(self, catalogue: Catalogue, documents: Iterable[Document]) -> None:
        """Add or replace documents by id; returns once they are searchable."""

    def delete(self, catalogue: Catalogue, ids: Iterable[str]) -> None:
        """Remove documents by id; unknown ids are ignored."""

    def search(self, catalogue: Catalogue, query: SearchQuery) -> SearchPage: ...

    async def search_async(self, catalogue: Catalogue, query: SearchQuery) -> SearchPage:
        """`search` for async callers (the API's search endpoints): the same answer,
        without blocking the event loop."""
        ...

    async def open_async(self) -> None:
        """Hold connections for `search_async` open in the running event loop, until
        `close_async` in the same loop (the owner of a long-lived loop calls both)."""

    async def close_async(self) -> None: ...

    def search_many(self, catalogue: Catalogue, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        """Several searches of one catalogue, one page per query in the same order.

        The same answers as calling `search` for each, in one engine round trip where the
        engine has round trips (Meilisearch's multi-search). Every query is validated
        before any runs; an invalid one raises `InvalidQueryError` and nothing is searched.
        """
        ...

    def count(self, catalogue: Catalogue) -> int:
        """Number of documents in the catalogue, whatever their status."""

    def rebuild(
        self,
        catalogue: Catalogue,
        documents: Iterable[Document],
        progress: ProgressCallback | None = None,
    ) -> int:
        """Replace the catalogue's content with `documents`, with no search downtime.

        Builds a fresh index beside the live one and swaps it in at the end; searches
        keep answering from the old index meanwhile. Returns the number indexed. Writes
        made to the live index during a rebuild are lost by the swap, so the outbox
        worker should re-apply anything written after the rebuild started.
        """
        ...

    def health(self) -> None:
        """Return if the engine answers; raise SearchUnavailable with the reason if not."""


def validate_query(
    catalogue: Catalogue, query: SearchQuery, *, vector_dimensions: int | None = None
) -> CatalogueSchema:
    """Reject what the catalogue cannot answer, before any engine work.

    Engines pass their `vector_dimensions`, so that a query vector of another size is
    refused here rather than by the engine.
    """
    schema = CATALOGUE_SCHEMAS[catalogue]
    if not 0 < query.limit <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {query.limit}")
    if query.offset < 0:
        raise InvalidQueryError(f"offset must not be negative, got {query.offset}")
    unknown_facets = [name for name in query.facets if name not in schema.facetable]
    if unknown_facets:
        raise InvalidQueryError(
            f"cannot facet {catalogue} on {unknown_facets}; facets: {list(schema.facetable)}"
        )
    for key in query.sort:
        if key.attribute not in schema.sortable:
            raise InvalidQueryError(
                f"cannot sort {catalogue} by {key.attribute!r}; sortable: {list(schema.sortable)}"
            )
    foreign = _RESULT_ONLY_FILTERS if catalogue == "demands" else _DEMAND_ONLY_FILTERS
    used_foreign = [name for name in foreign if getattr(query.filters, name) is not None]
    if used_foreign:
        raise InvalidQueryError(f"filters {used_foreign} do not apply to {catalogue}")
    if query.filters.ipc_prefix is not None:
        normalize_ipc_prefix(query.filters.ipc_prefix)
    threshold = query.ranking_score_threshold
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InvalidQueryError(f"ranking_score_threshold must be within 0..1, got {threshold}")
    _validate_semantic(query, vector_dimensions)
    return schema


def _validate_semantic(query: SearchQuery, vector_dimensions: int | None) -> None:
    if not 0.0 <= query.semantic_ratio <= 1.0:
        raise InvalidQueryError(f"semantic_ratio must be within 0..1, got {query.semantic_ratio}")
    if query.vector is None:
        return
    try:
        vector_values(query.vector)
    except DocumentError as error:
        raise InvalidQueryError(f"query vector: {error}") from error
    if vector_dimensions is not None:
        check_vector_dimensions(query.vector, vector_dimensions, "the query vector")


def check_vector_dimensions(
    vector: VectorLike,
    dimensions: int,
    what: str,
    error: type[SearchError] = InvalidQueryError,
) -> None:
    """Engines call this with their own dimensions; a mismatch is the caller's bug
    (a query vector: InvalidQueryError; a document's: pass SearchError)."""
    if len(vector) != dimensions:
        raise error(f"{what} has {len(vector)} dimensions; this engine's vectors have {dimensions}")


def filter_values(value: FilterValue) -> tuple[str, ...]:
    """A filter value as the tuple of accepted values (empty: no filter)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class Condition:
    """One engine-neutral filter condition, translated by each engine."""

    attribute: str
    operator: Literal["in", "=", ">=", "<="]
    values: tuple[str | int, ...]


def filter_conditions(filters: SearchFilters) -> list[Condition]:
    """The filters as a flat AND-list of conditions on document attributes."""
    conditions: list[Condition] = []
    equalities = (
        ("field", filters.field),
        ("district_code", filters.district_code),
        ("maturity_stage", filters.maturity_stage),
        ("transfer_modes", filters.transfer_mode),
        ("cooperation_modes", filters.cooperation_mode),
        ("kind", filters.kind),
        ("status", filters.status),
    )
    for attribute, value in equalities:
        values = filter_values(value)
        if values:
            conditions.append(Condition(attribute, "in", values))
    if filters.ipc_prefix is not None:
        prefix = normalize_ipc_prefix(filters.ipc_prefix)
        conditions.append(Condition("ipc_prefixes", "in", (prefix,)))
    if filters.organization_id is not None:
        conditions.append(Condition("organization_id", "=", (filters.organization_id,)))
    bounds: tuple[tuple[str, Literal[">=", "<="], int | None], ...] = (
        ("price_fen", ">=", filters.price_min_fen),
        ("price_fen", "<=", filters.price_max_fen),
        # Overlap of [budget_min_fen, budget_max_fen] with the requested range.
        ("budget_max_fen", ">=", filters.budget_min_fen),
        ("budget_min_fen", "<=", filters.budget_max_fen),
    )
    for attribute, operator, bound in bounds:
        if bound is not None:
            conditions.append(Condition(attribute, operator, (bound,)))
    return conditions


def default_sort(query: SearchQuery) -> tuple[SortKey, ...]:
    """The effective sort: explicit keys, or newest first for a browse; ties by listing."""
    if query.sort:
        keys = tuple(query.sort)
    elif query.text.strip() or query.is_semantic:
        return ()  # relevance (a vector alone ranks by cosine)
    else:
        keys = (SortKey("published_at", descending=True),)
    if all(key.attribute != "listing_id" for key in keys):
        keys = (*keys, SortKey("listing_id", descending=keys[-1].descending))
    return keys


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_VECTOR_DIMENSIONS",
    "EMBEDDER_NAME",
    "MAX_PAGE_SIZE",
    "PUBLISHED",
    "VECTOR_KEY",
    "Catalogue",
    "Condition",
    "Document",
    "InvalidQueryError",
    "MatchingStrategy",
    "ProgressCallback",
    "SearchBackend",
    "SearchError",
    "SearchFilters",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "SearchUnavailable",
    "SortKey",
    "VectorLike",
    "Visibility",
    "check_vector_dimensions",
    "default_sort",
    "filter_conditions",
    "filter_values",
    "validate_query",
]


# --- pipelined writes -----------------------------------------------------------------------
# Additive to `SearchBackend`: an engine that indexes asynchronously (Meilisearch) can
# accept a write and report its outcome later, so a caller (the outbox worker) can build
# and send the next batch while the engine indexes this one. Nothing is settled until
# `wait` returned for the write.


@dataclass(frozen=True)
class PendingWrite:
    """A write the engine accepted and may not have applied yet; `wait` settles it."""

    catalogue: Catalogue
    # Engine task ids in the order they were enqueued (empty: applied already).
    task_ids: tuple[int, ...] = ()


@runtime_checkable
class AsyncWrites(Protocol):
    """Submit writes now, learn their outcome later."""

    def upsert_async(self, catalogue: Catalogue, documents: Iterable[Document]) -> PendingWrite:
        """Enqueue `upsert`; raises SearchError if the engine refused to accept it."""
        ...

    def delete_async(self, catalogue: Catalogue, ids: Iterable[str]) -> PendingWrite:
        """Enqueue `delete`; raises SearchError if the engine refused to accept it."""
        ...

    def wait(self, writes: Iterable[PendingWrite]) -> None:
        """Return once every write was applied; raise SearchError if one was not."""
        ...


class _SynchronousWrites:
    """`AsyncWrites` over an engine that only has `upsert`/`delete`: writes at submit."""

    def __init__(self, engine: SearchBackend) -> None:
        self._engine = engine

    def upsert_async(self, catalogue: Catalogue, documents: Iterable[Document]) -> PendingWrite:
        self._engine.upsert(catalogue, documents)
        return PendingWrite(catalogue)

    def delete_async(self, catalogue: Catalogue, ids: Iterable[str]) -> PendingWrite:
        self._engine.delete(catalogue, ids)
        return PendingWrite(catalogue)

    def wait(self, writes: Iterable[PendingWrite]) -> None:
        return None


def async_writes(engine: SearchBackend) -> AsyncWrites:
    """The engine's own pipelined writes, or synchronous ones for an engine without them.

    Looked up on the class, not the instance: a wrapper that forwards unknown attributes
    (`__getattr__`) to an inner engine must not have its own `upsert` bypassed.
    """
    if _writes_asynchronously(engine):
        return engine
    return _SynchronousWrites(engine)


def _writes_asynchronously(engine: SearchBackend) -> TypeGuard[AsyncWrites]:
    return all(
        callable(getattr(type(engine), name, None))
        for name in ("upsert_async", "delete_async", "wait")
    )
