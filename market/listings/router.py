"""HTTP endpoints of the catalogue: /results, /demands, /review-queue and /ipc.

The two catalogues share their lifecycle endpoints (read, delete, submit, withdraw,
review, history): one implementation each (`_read`, `_submit`, ...), called by a route
per kind written out with its literal path and its kind's response model.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from market.auth.actor import Actor, BureauActor, CurrentActor, OptionalActor
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
ListingRead = ResultRead | DemandRead


def present(listing: Result | Demand, actor: Actor | None) -> ListingRead:
    """The read model; review notes only for the owner and the bureau."""
    read = _READ_MODELS[service.kind_of(listing)].model_validate(listing)
    if not service.shows_review_notes(actor, listing):
        read.review_flags = []
        read.last_decision_reason = ""
    return read


# --- results ------------------------------------------------------------------------------


@router.post(
    "/results",
    response_model=ResultRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
    tags=["results"],
    summary="Create a research result (draft); university and institute members",
)
def create_result(body: ResultCreate, actor: CurrentActor, session: DbSession) -> ListingRead:
    return present(service.create_result(session, actor, body), actor)


@router.get(
    "/results",
    response_model=Page[ResultRead],
    responses=problem_responses(401, 422),
    tags=["results"],
    summary="Browse research results",
)
def browse_results(
    filters: Annotated[ResultFilters, Query()],
    paging: Paging,
    actor: OptionalActor,
    session: DbSession,
) -> Page[ListingRead]:
    rows, total = service.browse_results(session, actor, filters, paging)
    return Page.of([present(row, actor) for row in rows], total, paging)


@router.patch(
    "/results/{listing_id}",
    response_model=ResultRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["results"],
    summary="Edit a draft or rejected result (owner)",
)
def update_result(
    listing_id: ListingId, body: ResultUpdate, actor: CurrentActor, session: DbSession
) -> ListingRead:
    return present(
        service.update_listing(session, actor, ListingKind.RESULT, listing_id, body), actor
    )


# --- demands ------------------------------------------------------------------------------


@router.post(
    "/demands",
    response_model=DemandRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
    tags=["demands"],
    summary="Create a technology demand (draft); enterprise members",
)
def create_demand(body: DemandCreate, actor: CurrentActor, session: DbSession) -> ListingRead:
    return present(service.create_demand(session, actor, body), actor)


@router.get(
    "/demands",
    response_model=Page[DemandRead],
    responses=problem_responses(401, 422),
    tags=["demands"],
    summary="Browse technology demands",
)
def browse_demands(
    filters: Annotated[DemandFilters, Query()],
    paging: Paging,
    actor: OptionalActor,
    session: DbSession,
) -> Page[ListingRead]:
    rows, total = service.browse_demands(session, actor, filters, paging)
    return Page.of([present(row, actor) for row in rows], total, paging)


@router.patch(
    "/demands/{listing_id}",
    response_model=DemandRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["demands"],
    summary="Edit a draft or rejected demand (owner)",
)
def update_demand(
    listing_id: ListingId, body: DemandUpdate, actor: CurrentActor, session: DbSession
) -> ListingRead:
    return present(
        service.update_listing(session, actor, ListingKind.DEMAND, listing_id, body), actor
    )


# --- the lifecycle, shared by both kinds ------------------------------------------------------
# Each kind's routes below are written out with their literal paths (so a path can be found
# by grepping for it) and call these, so that the two catalogues stay in step.


def _read(
    kind: ListingKind, listing_id: int, actor: Actor | None, session: DbSession
) -> ListingRead:
    return present(service.get_visible(session, actor, kind, listing_id), actor)


def _delete(kind: ListingKind, listing_id: int, actor: Actor, session: DbSession) -> Response:
    service.delete_draft(session, actor, kind, listing_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _submit(kind: ListingKind, listing_id: int, actor: Actor, session: DbSession) -> ListingRead:
    return present(service.submit(session, actor, kind, listing_id), actor)


def _withdraw(
    kind: ListingKind, listing_id: int, actor: Actor, session: DbSession, body: Withdrawal | None
) -> ListingRead:
    reason = body.reason if body else ""
    return present(service.withdraw(session, actor, kind, listing_id, reason), actor)


def _review(
    kind: ListingKind, listing_id: int, actor: Actor, session: DbSession, body: ReviewDecision
) -> ListingRead:
    return present(service.review(session, actor, kind, listing_id, body), actor)


def _history(
    kind: ListingKind, listing_id: int, actor: Actor, session: DbSession
) -> list[AuditEventRead]:
    events = service.history(session, actor, kind, listing_id)
    return [AuditEventRead.model_validate(event) for event in events]


# --- the lifecycle of results -----------------------------------------------------------------


@router.get(
    "/results/{listing_id}",
    response_model=ResultRead,
    responses=problem_responses(401, 404),
    tags=["results"],
    summary="Read a result",
)
def get_result(listing_id: ListingId, actor: OptionalActor, session: DbSession) -> ListingRead:
    return _read(ListingKind.RESULT, listing_id, actor, session)


@router.delete(
    "/results/{listing_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409),
    tags=["results"],
    summary="Delete a draft result (owner)",
)
def delete_result(listing_id: ListingId, actor: CurrentActor, session: DbSession) -> Response:
    return _delete(ListingKind.RESULT, listing_id, actor, session)


@router.post(
    "/results/{listing_id}/submit",
    response_model=ResultRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["results"],
    summary="Submit a draft or rejected result for review (owner)",
)
def submit_result(listing_id: ListingId, actor: CurrentActor, session: DbSession) -> ListingRead:
    return _submit(ListingKind.RESULT, listing_id, actor, session)


@router.post(
    "/results/{listing_id}/withdraw",
    response_model=ResultRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["results"],
    summary="Withdraw a published result (owner)",
)
def withdraw_result(
    listing_id: ListingId,
    actor: CurrentActor,
    session: DbSession,
    body: Withdrawal | None = None,
) -> ListingRead:
    return _withdraw(ListingKind.RESULT, listing_id, actor, session, body)


@router.post(
    "/results/{listing_id}/review",
    response_model=ResultRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["results"],
    summary="Approve or reject a submitted result (bureau staff)",
)
def review_result(
    listing_id: ListingId, body: ReviewDecision, actor: BureauActor, session: DbSession
) -> ListingRead:
    return _review(ListingKind.RESULT, listing_id, actor, session, body)


@router.get(
    "/results/{listing_id}/history",
    response_model=list[AuditEventRead],
    responses=problem_responses(401, 403, 404),
    tags=["results"],
    summary="The audit trail of a result (owner and bureau)",
)
def result_history(
    listing_id: ListingId, actor: CurrentActor, session: DbSession
) -> list[AuditEventRead]:
    return _history(ListingKind.RESULT, listing_id, actor, session)


# --- the lifecycle of demands -----------------------------------------------------------------


@router.get(
    "/demands/{listing_id}",
    response_model=DemandRead,
    responses=problem_responses(401, 404),
    tags=["demands"],
    summary="Read a demand",
)
def get_demand(listing_id: ListingId, actor: OptionalActor, session: DbSession) -> ListingRead:
    return _read(ListingKind.DEMAND, listing_id, actor, session)


@router.delete(
    "/demands/{listing_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409),
    tags=["demands"],
    summary="Delete a draft demand (owner)",
)
def delete_demand(listing_id: ListingId, actor: CurrentActor, session: DbSession) -> Response:
    return _delete(ListingKind.DEMAND, listing_id, actor, session)


@router.post(
    "/demands/{listing_id}/submit",
    response_model=DemandRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["demands"],
    summary="Submit a draft or rejected demand for review (owner)",
)
def submit_demand(listing_id: ListingId, actor: CurrentActor, session: DbSession) -> ListingRead:
    return _submit(ListingKind.DEMAND, listing_id, actor, session)


@router.post(
    "/demands/{listing_id}/withdraw",
    response_model=DemandRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["demands"],
    summary="Withdraw a published demand (owner)",
)
def withdraw_demand(
    listing_id: ListingId,
    actor: CurrentActor,
    session: DbSession,
    body: Withdrawal | None = None,
) -> ListingRead:
    return _withdraw(ListingKind.DEMAND, listing_id, actor, session, body)


@router.post(
    "/demands/{listing_id}/review",
    response_model=DemandRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    tags=["demands"],
    summary="Approve or reject a submitted demand (bureau staff)",
)
def review_demand(
    listing_id: ListingId, body: ReviewDecision, actor: BureauActor, session: DbSession
) -> ListingRead:
    return _review(ListingKind.DEMAND, listing_id, actor, session, body)


@router.get(
    "/demands/{listing_id}/history",
    response_model=list[AuditEventRead],
    responses=problem_responses(401, 403, 404),
    tags=["demands"],
    summary="The audit trail of a demand (owner and bureau)",
)
def demand_history(
    listing_id: ListingId, actor: CurrentActor, session: DbSession
) -> list[AuditEventRead]:
    return _history(ListingKind.DEMAND, listing_id, actor, session)


# --- the bureau's queue and the IPC table ---------------------------------------------------


@router.get(
    "/review-queue",
    response_model=Page[ReviewQueueItem],
    responses=problem_responses(401, 403),
    tags=["review"],
    summary="Submitted listings of both kinds, oldest first (bureau staff)",
)
def review_queue(actor: BureauActor, session: DbSession, paging: Paging) -> Page[ReviewQueueItem]:
    rows, total = service.review_queue(session, paging)
    items = [
        ReviewQueueItem(
            kind=service.kind_of(row),
            id=row.id or 0,
            organization_id=row.organization_id,
            title=row.title,
            field=row.field,
            submitted_at=row.submitted_at,
            patent_application_number=getattr(row, "patent_application_number", None),
            review_flags=[ReviewFlag.model_validate(flag) for flag in row.review_flags],
        )
        for row in rows
    ]
    return Page.of(items, total, paging)


@router.get(
    "/ipc",
    response_model=list[IpcEntryRead],
    responses=problem_responses(422),
    tags=["reference"],
    summary="IPC subclasses and main groups under a prefix, in code order",
)
def ipc_entries(
    prefix: Annotated[str, Query(min_length=1, max_length=20, description="e.g. H01M")],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[IpcEntryRead]:
    try:
        entries = ipc.entries_under(prefix, limit)
    except ipc.IpcCodeError as error:
        raise InvalidInput.on("query.prefix", str(error)) from error
    return [IpcEntryRead(**vars(entry)) for entry in entries]


@router.get(
    "/ipc/{code:path}",
    response_model=IpcEntryRead,
    responses=problem_responses(404, 422),
    tags=["reference"],
    summary="One IPC code's titles (a subgroup resolves to its main group)",
)
def ipc_entry(code: Annotated[str, Path(max_length=40)]) -> IpcEntryRead:
    try:
        entry = ipc.lookup(code)
    except ipc.IpcCodeError as error:
        raise NotFound(str(error), code="unknown_ipc_code") from error
    if entry is None:
        raise NotFound(f"IPC code {code} not found", code="unknown_ipc_code")
    return IpcEntryRead(**vars(entry))
