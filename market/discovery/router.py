"""HTTP endpoints of search (/search/results, /search/demands) and of the outbox's
operations (/admin/outbox/...), and the start-up wiring of the engine and the worker."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from market.auth.actor import Actor, BureauActor, OptionalActor, resolve_actor
from market.common.ids import PathId
from market.common.pagination import Page, Paging
from market.config import Settings
from market.db import DbSession, run_unit, session_scope
from market.discovery import indexing, service, workers
from market.discovery.engine import (
    SearchEngine,
    app_embedder,
    app_search_engine,
    ensure_indexes_quietly,
)
from market.discovery.schemas import (
    DEFAULT_DEMAND_FACETS,
    DEFAULT_RESULT_FACETS,
    MAX_QUERY_LENGTH,
    MAX_SEARCH_OFFSET,
    DemandFacet,
    DemandSearchPage,
    DemandSearchSort,
    OutboxEventRead,
    OutboxStatusRead,
    ResultFacet,
    ResultSearchPage,
    ResultSearchSort,
    SimilarDemands,
    SimilarResults,
    TotalSource,
)
from market.discovery.semantic import AppEmbedder
from market.errors import InvalidInput, NotFound, problem_responses
from market.listings.models import (
    ListingKind,
    ListingStatus,
    MaturityStage,
    TechField,
    TransferMode,
)
from search.backend import (
    MAX_PAGE_SIZE,
    SearchError,
    SearchFilters,
    SearchPage,
    SearchQuery,
    SortKey,
)
from search.documents import COOPERATION_MODES, DocumentError, normalize_ipc_prefix
from search.text import warm_up

logger = logging.getLogger("market.discovery")
router = APIRouter()

# The same scheme as `market.auth.actor` (same name and description in OpenAPI).
_bearer = HTTPBearer(auto_error=False, description="Access token from POST /auth/login")


async def search_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor | None:
    """`OptionalActor` for the search endpoints, without their per-request cost.

    The same check (`resolve_actor`: token, user still active, token version, the
    organisation), but an anonymous search opens no database session at all, and a
    signed-in one reads the actor in a short session of its own: the search itself
    touches no table, so it needs no request transaction."""
    if credentials is None:
        return None
    engine = request.app.state.engine
    return await run_unit(
        engine,
        _resolve_actor,
        engine,
        request.app.state.settings,
        credentials.credentials,
        writes=False,
    )


def _resolve_actor(engine: Engine, settings: Settings, token: str) -> Actor:
    with session_scope(engine, writes=False) as session:
        return resolve_actor(session, settings, token)


SearchActor = Annotated[Actor | None, Depends(search_actor)]

# Shared query parameters (FastAPI reads each Annotated alias as one parameter).
Text = Annotated[
    str, Query(max_length=MAX_QUERY_LENGTH, description="Words to find; empty browses")
]
Fields = Annotated[list[TechField], Query(description="Any of these fields")]
Districts = Annotated[
    list[str], Query(max_length=20, description="Any of these district codes (330212...)")
]
Statuses = Annotated[
    list[ListingStatus],
    Query(description="Any of these statuses, within what the caller may see"),
]
IpcPrefix = Annotated[
    str | None, Query(max_length=20, description="IPC prefix: H, H01M, H01M10/052")
]
OrganizationId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
Fen = Annotated[int | None, Query(ge=0, le=10**13, description="Amount in fen")]
Offset = Annotated[int, Query(ge=0, le=MAX_SEARCH_OFFSET)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Highlight = Annotated[bool, Query(description="Mark matches with <em> in `highlights`")]
Semantic = Annotated[
    bool,
    Query(
        description="Rank by meaning as well as by words (hybrid); false: keywords only. "
        "Keywords only anyway when the server has no embedder"
    ),
]
SimilarLimit = Annotated[int, Query(ge=1, le=50, description="How many (max 50)")]
SEARCH_PROBLEMS = problem_responses(401, 422, 503)
CooperationModeName = str


@router.get(
    "/search/results",
    response_model=ResultSearchPage,
    responses=SEARCH_PROBLEMS,
    tags=["search"],
    summary="Search research results and patents",
    description=(
        "Full-text search with browse filters, facet counts, sorting and highlighted "
        "snippets. Anonymous callers see published results; members also their own "
        "organisation's in every status (drafts, submissions, rejected, withdrawn...); "
        "bureau staff all. 503 `search_unavailable` when the engine cannot be reached."
    ),
)
async def search_results(
    request: Request,
    engine: SearchEngine,
    embedder: AppEmbedder,
    actor: SearchActor,
    q: Text = "",
    field: Fields = [],  # noqa: B006 - FastAPI copies defaults per request
    ipc: IpcPrefix = None,
    district: Districts = [],  # noqa: B006
    maturity_stage: Annotated[list[MaturityStage], Query()] = [],  # noqa: B006
    transfer_mode: Annotated[list[TransferMode], Query()] = [],  # noqa: B006
    kind: Annotated[list[str], Query(max_length=10, description="IP forms (发明专利...)")] = [],  # noqa: B006
    price_min_fen: Fen = None,
    price_max_fen: Fen = None,
    status: Statuses = [],  # noqa: B006
    organization_id: OrganizationId = None,
    facets: Annotated[list[ResultFacet], Query()] = DEFAULT_RESULT_FACETS,
    sort: ResultSearchSort = ResultSearchSort.RELEVANCE,
    highlight: Highlight = True,
    semantic: Semantic = True,
    offset: Offset = 0,
    limit: Limit = 20,
) -> Response:
    filters = SearchFilters(
        field=_values(field),
        ipc_prefix=_ipc_prefix(ipc),
        district_code=_values(district),
        maturity_stage=_values(maturity_stage),
        transfer_mode=_values(transfer_mode),
        kind=_values(kind),
        status=_values(status),
        organization_id=organization_id,
        price_min_fen=price_min_fen,
        price_max_fen=price_max_fen,
    )
    _check_range("price", price_min_fen, price_max_fen)
    query = _query(q, filters, actor, facets, sort, highlight, offset, limit)
    found = await _by_patent_number(request.app.state.engine, query, q)
    if found is not None:
        return _json(
            ResultSearchPage(
                items=service.page_items(found),
                total=found.total,
                total_source=TotalSource.ENGINE,
                offset=offset,
                limit=limit,
                facets={},
            )
        )
    if semantic:
        query = await service.with_meaning(query, embedder, q)
    page, total_source = await service.run_search(engine, "results", query)
    return _json(
        ResultSearchPage(
            items=service.page_items(page),
            total=page.total,
            total_source=total_source,
            offset=offset,
            limit=limit,
            facets=page.facets,
        )
    )


@router.get(
    "/search/demands",
    response_model=DemandSearchPage,
    responses=SEARCH_PROBLEMS,
    tags=["search"],
    summary="Search technology demands",
    description=(
        "Full-text search over demands with browse filters, facets, sorting and "
        "highlighting; the same visibility rules and 503 as /search/results. Budget "
        "filters select demands whose budget range overlaps the given range."
    ),
)
async def search_demands(
    engine: SearchEngine,
    embedder: AppEmbedder,
    actor: SearchActor,
    q: Text = "",
    field: Fields = [],  # noqa: B006
    district: Districts = [],  # noqa: B006
    cooperation_mode: Annotated[
        list[CooperationModeName],
        Query(description=f"Any of: {', '.join(COOPERATION_MODES)}"),
    ] = [],  # noqa: B006
    budget_min_fen: Fen = None,
    budget_max_fen: Fen = None,
    status: Statuses = [],  # noqa: B006
    organization_id: OrganizationId = None,
    facets: Annotated[list[DemandFacet], Query()] = DEFAULT_DEMAND_FACETS,
    sort: DemandSearchSort = DemandSearchSort.RELEVANCE,
    highlight: Highlight = True,
    semantic: Semantic = True,
    offset: Offset = 0,
    limit: Limit = 20,
) -> Response:
    unknown = [mode for mode in cooperation_mode if mode not in COOPERATION_MODES]
    if unknown:
        raise InvalidInput.on(
            "query.cooperation_mode",
            f"{unknown} cannot be searched; searchable modes: {', '.join(COOPERATION_MODES)}",
        )
    _check_range("budget", budget_min_fen, budget_max_fen)
    filters = SearchFilters(
        field=_values(field),
        district_code=_values(district),
        cooperation_mode=_values(cooperation_mode),
        status=_values(status),
        organization_id=organization_id,
        budget_min_fen=budget_min_fen,
        budget_max_fen=budget_max_fen,
    )
    query = _query(q, filters, actor, facets, sort, highlight, offset, limit)
    if semantic:
        query = await service.with_meaning(query, embedder, q)
    page, total_source = await service.run_search(engine, "demands", query)
    return _json(
        DemandSearchPage(
            items=service.page_items(page),
            total=page.total,
            total_source=total_source,
            offset=offset,
            limit=limit,
            facets=page.facets,
        )
    )


async def _by_patent_number(engine: Engine, query: SearchQuery, typed: str) -> SearchPage | None:
    """A query that is a patent number, answered from the database. Any other query is
    told apart on the event loop and costs no thread hop and no session: search itself
    touches no table."""
    if service.patent_number_of(typed) is None:
        return None
    return await run_unit(engine, _identifier_page, engine, query, typed, writes=False)


def _identifier_page(engine: Engine, query: SearchQuery, typed: str) -> SearchPage | None:
    with session_scope(engine, writes=False) as session:
        return service.identifier_page(session, "results", query, typed)


def _query(
    text: str,
    filters: SearchFilters,
    actor: Any,
    facets: list[Any],
    sort: ResultSearchSort | DemandSearchSort,
    highlight: bool,
    offset: int,
    limit: int,
) -> SearchQuery:
    return service.search_box(
        SearchQuery(
            text=text,
            filters=filters,
            visibility=service.visibility_for(actor),
            facets=tuple(dict.fromkeys(str(facet) for facet in facets)),
            sort=() if sort.value == "relevance" else (SortKey.parse(sort.value),),
            offset=offset,
            limit=limit,
            highlight=highlight,
        )
    )


def _json(page: ResultSearchPage | DemandSearchPage) -> Response:
    """The page, validated once (building it) and serialized once, here.

    Returning the model would make FastAPI validate it again against `response_model`
    before serializing it; the bytes are the same (`response_model` still documents
    the shape)."""
    return Response(content=page.model_dump_json(), media_type="application/json")


def _values(values: list[Any]) -> tuple[str, ...] | None:
    return tuple(str(value) for value in values) or None


def _ipc_prefix(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return normalize_ipc_prefix(value)
    except DocumentError as error:
        raise InvalidInput.on("query.ipc", str(error)) from error


def _check_range(name: str, low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise InvalidInput.on(
            f"query.{name}_min_fen", f"{name}_min_fen must not be above {name}_max_fen"
        )


# --- similar listings ----------------------------------------------------------------------

SIMILAR_PROBLEMS = problem_responses(401, 404, 422, 503)


@router.get(
    "/results/{listing_id}/similar",
    response_model=SimilarResults,
    responses=SIMILAR_PROBLEMS,
    tags=["search"],
    summary="Research results similar to this one, best first",
    description=(
        "By the result's stored meaning (its passage vector) and its key terms. Anyone "
        "who may read the result may ask; the similar results are those the caller "
        "sees in search."
    ),
)
def similar_results(
    listing_id: PathId,
    actor: OptionalActor,
    session: DbSession,
    engine: SearchEngine,
    embedder: AppEmbedder,
    limit: SimilarLimit = 10,
) -> SimilarResults:
    items = service.similar_listings(
        session, engine, embedder, actor, ListingKind.RESULT, listing_id, limit
    )
    return SimilarResults.model_validate({"source_id": listing_id, "items": items})


@router.get(
    "/demands/{listing_id}/similar",
    response_model=SimilarDemands,
    responses=SIMILAR_PROBLEMS,
    tags=["search"],
    summary="Technology demands similar to this one, best first",
    description="As GET /results/{listing_id}/similar, for demands.",
)
def similar_demands(
    listing_id: PathId,
    actor: OptionalActor,
    session: DbSession,
    engine: SearchEngine,
    embedder: AppEmbedder,
    limit: SimilarLimit = 10,
) -> SimilarDemands:
    items = service.similar_listings(
        session, engine, embedder, actor, ListingKind.DEMAND, listing_id, limit
    )
    return SimilarDemands.model_validate({"source_id": listing_id, "items": items})


# --- outbox operations (bureau) ---------------------------------------------------------------

EventId = PathId


@router.get(
    "/admin/outbox/failures",
    response_model=Page[OutboxEventRead],
    responses=problem_responses(401, 403, 422),
    tags=["admin"],
    summary="Outbox rows a worker gave up on (bureau staff)",
)
def outbox_failures(
    _actor: BureauActor, session: DbSession, paging: Paging
) -> Page[OutboxEventRead]:
    rows, total = indexing.failed_events(session, paging.offset, paging.limit)
    return Page.of([OutboxEventRead.model_validate(row) for row in rows], total, paging)


@router.post(
    "/admin/outbox/{event_id}/retry",
    response_model=OutboxEventRead,
    responses=problem_responses(401, 403, 404, 422),
    tags=["admin"],
    summary="Queue a failed outbox row again (bureau staff)",
)
def retry_outbox_event(
    event_id: EventId, _actor: BureauActor, session: DbSession
) -> OutboxEventRead:
    event = indexing.retry_event(session, event_id)
    if event is None:
        raise NotFound(f"Outbox event {event_id} not found")
    return OutboxEventRead.model_validate(event)


@router.get(
    "/admin/outbox/status",
    response_model=OutboxStatusRead,
    responses=problem_responses(401, 403),
    tags=["admin"],
    summary="Indexing backlog, failures and the search engine's health (bureau staff)",
)
def outbox_status(
    _actor: BureauActor, session: DbSession, engine: SearchEngine
) -> OutboxStatusRead:
    status = indexing.outbox_status(session)
    try:
        engine.health()
        health = "available"
    except SearchError as error:
        health = f"unavailable: {error}"
    return OutboxStatusRead(
        pending=status.pending,
        failed=status.failed,
        oldest_pending_created_at=status.oldest_pending_created_at,
        search_engine=health,
    )


# --- wiring ------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Create the engine at start-up and run the outbox worker in-process if configured."""
    app.state.search_worker = None

    async def start(app: FastAPI) -> None:
        engine = app_search_engine(app)
        await engine.open_async()  # kept-alive connections for the search endpoints
        ensure_indexes_quietly(engine)
        warm_up()
        settings = app.state.settings
        if settings.run_worker_in_process:
            loop = workers.worker_loop(settings, app.state.engine, engine, app_embedder(app))
            loop.start_thread()
            app.state.search_worker = loop
            logger.info("outbox worker running in this process")

    async def stop(app: FastAPI) -> None:
        loop = app.state.search_worker
        if loop is not None:
            loop.stop_thread()
            app.state.search_worker = None
        await app_search_engine(app).close_async()  # the loop's search session

    app.state.on_startup.append(start)
    app.state.on_shutdown.append(stop)
