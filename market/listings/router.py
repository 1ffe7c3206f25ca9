"""HTTP endpoints of the catalogue: /results, /demands, /review-queue and /ipc.

The two catalogues share their lifecycle endpoints (read, delete, submit, withdraw,
review, history); `_add_lifecycle_routes` declares them once per kind so both stay in
step, with each kind's own response model in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from market.auth.actor import BureauActor, CurrentActor, OptionalActor
from market.common.ids import PathId
from market.common.pagination import Page, Paging
from market.db import DbSession
from market.errors import InvalidInput, NotFound, problem_responses
from market.listings import ipc, service
from market.listings.models import Demand, ListingKind, Result
from market.listings.schemas import (
    AuditEventRead,
    DemandCreate,
    DemandFilters,
    DemandRead,
    DemandUpdate,
    IpcEntryRead,
    ResultCreate,
    ResultFilters,
    ResultRead,
    ResultUpdate,
    ReviewDecision,
    ReviewFlag,
    ReviewQueueItem,
    Withdrawal,
)

router = APIRouter()
ListingId = PathId
_READ_MODELS: dict[ListingKind, type[ResultRead] | type[DemandRead]] = {
    ListingKind.RESULT: ResultRead,
    ListingKind.DEMAND: DemandRead,
}
_TAGS: dict[ListingKind, list[str | Any]] = {
    ListingKind.RESULT: ["results"],
    ListingKind.DEMAND: ["demands"],
}


def present(listing: Result | Demand, actor: Any) -> Any:
    """The read model; review notes only for the owner and the bureau."""
    read = _READ_MODELS[service.kind_of(listing)].model_validate(listing)
    if not service.shows_review_notes(actor, listing):
        read.review_flags = []
        read.last_decision_reason = ""
    return read


# --- results ------------------------------------------------------------------------------


@router.post(
    "/results", response_model=ResultRead, status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422), tags=["results"],
    summary="Create a research result (draft); university and institute members",
)
def create_result(body: ResultCreate, actor: CurrentActor, session: DbSession) -> Any:
    return present(service.create_result(session, actor, body), actor)


@router.get(
    "/results", response_model=Page[ResultRead], responses=problem_responses(401, 422),
    tags=["results"], summary="Browse research results",
)
def browse_results(
    filters: Annotated[ResultFilters, Query()], paging: Paging,
    actor: OptionalActor, session: DbSession,
) -> Any:
    rows, total = service.browse_results(session, actor, filters, paging)
    return Page.of([present(row, actor) for row in rows], total, paging)


@router.patch(
    "/results/{listing_id}", response_model=ResultRead,
    responses=problem_responses(401, 403, 404, 409, 422), tags=["results"],
    summary="Edit a draft or rejected result (owner)",
)
def update_result(
    listing_id: ListingId, body: ResultUpdate, actor: CurrentActor, session: DbSession
) -> Any:
    return present(
        service.update_listing(session, actor, ListingKind.RESULT, listing_id, body), actor
    )


# --- demands ------------------------------------------------------------------------------


@router.post(
    "/demands", response_model=DemandRead, status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422), tags=["demands"],
    summary="Create a technology demand (draft); enterprise members",
)
def create_demand(body: DemandCreate, actor: CurrentActor, session: DbSession) -> Any:
    return present(service.create_demand(session, actor, body), actor)


@router.get(
    "/demands", response_model=Page[DemandRead], responses=problem_responses(401, 422),
    tags=["demands"], summary="Browse technology demands",
)
def browse_demands(
    filters: Annotated[DemandFilters, Query()], paging: Paging,
    actor: OptionalActor, session: DbSession,
) -> Any:
    rows, total = service.browse_demands(session, actor, filters, paging)
    return Page.of([present(row, actor) for row in rows], total, paging)


@router.patch(
    "/demands/{listing_id}", response_model=DemandRead,
    responses=problem_responses(401, 403, 404, 409, 422), tags=["demands"],
    summary="Edit a draft or rejected demand (owner)",
)
def update_demand(
    listing_id: ListingId, body: DemandUpdate, actor: CurrentActor, session: DbSession
) -> Any:
    return present(
        service.update_listing(session, actor, ListingKind.DEMAND, listing_id, body), actor
    )


# --- the lifecycle, for both kinds ----------------------------------------------------------


def _add_lifecycle_routes(kind: ListingKind) -> None:
    base = f"/{kind.value}s/{{listing_id}}"
    read_model = _READ_MODELS[kind]
    tags = _TAGS[kind]

    @router.get(base, response_model=read_model, responses=problem_responses(401, 404),
                tags=tags, name=f"get_{kind.value}", summary=f"Read a {kind.value}")
    def get_listing(listing_id: ListingId, actor: OptionalActor, session: DbSession) -> Any:
        return present(service.get_visible(session, actor, kind, listing_id), actor)

    @router.delete(base, status_code=status.HTTP_204_NO_CONTENT,
                   responses=problem_responses(401, 403, 404, 409), tags=tags,
                   name=f"delete_{kind.value}", summary=f"Delete a draft {kind.value} (owner)")
    def delete_listing(listing_id: ListingId, actor: CurrentActor, session: DbSession) -> Response:
        service.delete_draft(session, actor, kind, listing_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post(f"{base}/submit", response_model=read_model,
                 responses=problem_responses(401, 403, 404, 409, 422), tags=tags,
                 name=f"submit_{kind.value}",
                 summary=f"Submit a draft or rejected {kind.value} for review (owner)")
    def submit_listing(listing_id: ListingId, actor: CurrentActor, session: DbSession) -> Any:
        return present(service.submit(session, actor, kind, listing_id), actor)

    @router.post(f"{base}/withdraw", response_model=read_model,
                 responses=problem_responses(401, 403, 404, 409, 422), tags=tags,
                 name=f"withdraw_{kind.value}",
                 summary=f"Withdraw a published {kind.value} (owner)")
    def withdraw_listing(
        listing_id: ListingId, actor: CurrentActor, session: DbSession,
        body: Withdrawal | None = None,
    ) -> Any:
        reason = body.reason if body else ""
        return present(service.withdraw(session, actor, kind, listing_id, reason), actor)

    @router.post(f"{base}/review", response_model=read_model,
                 responses=problem_responses(401, 403, 404, 409, 422), tags=tags,
                 name=f"review_{kind.value}",
                 summary=f"Approve or reject a submitted {kind.value} (bureau staff)")
    def review_listing(
        listing_id: ListingId, body: ReviewDecision, actor: BureauActor, session: DbSession
    ) -> Any:
        return present(service.review(session, actor, kind, listing_id, body), actor)

    @router.get(f"{base}/history", response_model=list[AuditEventRead],
                responses=problem_responses(401, 403, 404), tags=tags,
                name=f"{kind.value}_history",
                summary=f"The audit trail of a {kind.value} (owner and bureau)")
    def listing_history(listing_id: ListingId, actor: CurrentActor, session: DbSession) -> Any:
        events = service.history(session, actor, kind, listing_id)
        return [AuditEventRead.model_validate(event) for event in events]


for _kind in ListingKind:
    _add_lifecycle_routes(_kind)


# --- the bureau's queue and the IPC table ---------------------------------------------------


@router.get(
    "/review-queue", response_model=Page[ReviewQueueItem], responses=problem_responses(401, 403),
    tags=["review"], summary="Submitted listings of both kinds, oldest first (bureau staff)",
)
def review_queue(actor: BureauActor, session: DbSession, paging: Paging) -> Any:
    rows, total = service.review_queue(session, paging)
    items = [
        ReviewQueueItem(
            kind=service.kind_of(row), id=row.id or 0, organization_id=row.organization_id,
            title=row.title, field=row.field, submitted_at=row.submitted_at,
            patent_application_number=getattr(row, "patent_application_number", None),
            review_flags=[ReviewFlag.model_validate(flag) for flag in row.review_flags],
        )
        for row in rows
    ]
    return Page.of(items, total, paging)


@router.get(
    "/ipc", response_model=list[IpcEntryRead], responses=problem_responses(422),
    tags=["reference"], summary="IPC subclasses and main groups under a prefix, in code order",
)
def ipc_entries(
    prefix: Annotated[str, Query(min_length=1, max_length=20, description="e.g. H01M")],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Any:
    try:
        entries = ipc.entries_under(prefix, limit)
    except ipc.IpcCodeError as error:
        raise InvalidInput.on("query.prefix", str(error)) from error
    return [IpcEntryRead(**vars(entry)) for entry in entries]


@router.get(
    "/ipc/{code:path}", response_model=IpcEntryRead, responses=problem_responses(404, 422),
    tags=["reference"], summary="One IPC code's titles (a subgroup resolves to its main group)",
)
def ipc_entry(code: Annotated[str, Path(max_length=40)]) -> Any:
    try:
        entry = ipc.lookup(code)
    except ipc.IpcCodeError as error:
        raise NotFound(str(error), code="unknown_ipc_code") from error
    if entry is None:
        raise NotFound(f"IPC code {code} not found", code="unknown_ipc_code")
    return IpcEntryRead(**vars(entry))
