"""HTTP endpoints: matches of a listing, feedback, quality, saved searches, notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from market.auth.actor import BureauActor, CurrentActor
from market.common.ids import PathId
from market.common.pagination import Page, Paging
from market.db import DbSession
from market.discovery.engine import SearchEngine
from market.discovery.semantic import AppEmbedder
from market.errors import problem_responses
from market.listings.models import ListingKind
from market.matching import service
from market.matching.schemas import (
    FeedbackCreate,
    FeedbackRead,
    MatchList,
    NotificationPage,
    NotificationRead,
    QualityReport,
    ReadAllResult,
    SavedSearchCreate,
    SavedSearchRead,
)

router = APIRouter()
RowId = PathId
MatchLimit = Annotated[int, Query(ge=1, le=50, description="How many matches (max 50)")]


@router.get(
    "/demands/{listing_id}/matches",
    response_model=MatchList,
    responses=problem_responses(401, 403, 404, 422, 503),
    tags=["matching"],
    summary="Results that could answer a demand, best first, with reasons "
    "(owner organisation, brokers, bureau)",
)
def demand_matches(
    listing_id: RowId,
    actor: CurrentActor,
    session: DbSession,
    engine: SearchEngine,
    embedder: AppEmbedder,
    limit: MatchLimit = 10,
) -> MatchList:
    return service.matches_for(
        session, engine, actor, ListingKind.DEMAND, listing_id, limit, embedder
    )


@router.get(
    "/results/{listing_id}/matches",
    response_model=MatchList,
    responses=problem_responses(401, 403, 404, 422, 503),
    tags=["matching"],
    summary="Demands a result could answer, best first, with reasons "
    "(owner organisation, brokers, bureau)",
)
def result_matches(
    listing_id: RowId,
    actor: CurrentActor,
    session: DbSession,
    engine: SearchEngine,
    embedder: AppEmbedder,
    limit: MatchLimit = 10,
) -> MatchList:
    return service.matches_for(
        session, engine, actor, ListingKind.RESULT, listing_id, limit, embedder
    )


@router.post(
    "/matches/{match_id}/feedback",
    response_model=FeedbackRead,
    responses=problem_responses(401, 404, 422),
    tags=["matching"],
    summary="Mark a match you were shown useful or not, with a reason",
)
def match_feedback(
    match_id: RowId, body: FeedbackCreate, actor: CurrentActor, session: DbSession
) -> FeedbackRead:
    return service.give_feedback(session, actor, match_id, body)


@router.get(
    "/matching/quality",
    response_model=QualityReport,
    responses=problem_responses(401, 403),
    tags=["matching"],
    summary="Match precision from feedback, overall and by field (bureau)",
)
def matching_quality(actor: BureauActor, session: DbSession) -> QualityReport:
    return service.quality(session)


@router.post(
    "/saved-searches",
    response_model=SavedSearchRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 409, 422),
    tags=["saved searches"],
    summary="Save a query with filters; new matching listings arrive as notifications",
)
def create_saved_search(
    body: SavedSearchCreate, actor: CurrentActor, session: DbSession
) -> SavedSearchRead:
    return SavedSearchRead.model_validate(service.save_search(session, actor, body))


@router.get(
    "/saved-searches",
    response_model=Page[SavedSearchRead],
    responses=problem_responses(401),
    tags=["saved searches"],
    summary="Your saved searches, newest first",
)
def list_saved_searches(
    actor: CurrentActor, session: DbSession, paging: Paging
) -> Page[SavedSearchRead]:
    rows, total = service.list_saved_searches(session, actor, paging)
    return Page.of([SavedSearchRead.model_validate(row) for row in rows], total, paging)


@router.get(
    "/saved-searches/{saved_search_id}",
    response_model=SavedSearchRead,
    responses=problem_responses(401, 404),
    tags=["saved searches"],
    summary="One of your saved searches",
)
def get_saved_search(
    saved_search_id: RowId, actor: CurrentActor, session: DbSession
) -> SavedSearchRead:
    return SavedSearchRead.model_validate(service.get_saved_search(session, actor, saved_search_id))


@router.delete(
    "/saved-searches/{saved_search_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
    tags=["saved searches"],
    summary="Delete one of your saved searches (its notifications stay)",
)
def delete_saved_search(
    saved_search_id: RowId, actor: CurrentActor, session: DbSession
) -> Response:
    service.delete_saved_search(session, actor, saved_search_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/notifications",
    response_model=NotificationPage,
    responses=problem_responses(401),
    tags=["notifications"],
    summary="Your inbox: unread first, then newest",
)
def list_notifications(actor: CurrentActor, session: DbSession, paging: Paging) -> NotificationPage:
    rows, total, unread = service.inbox(session, actor, paging)
    return NotificationPage(
        items=[NotificationRead.model_validate(row) for row in rows],
        total=total,
        unread=unread,
        offset=paging.offset,
        limit=paging.limit,
    )


@router.post(
    "/notifications/read-all",
    response_model=ReadAllResult,
    responses=problem_responses(401),
    tags=["notifications"],
    summary="Mark every notification read",
)
def read_all_notifications(actor: CurrentActor, session: DbSession) -> ReadAllResult:
    return ReadAllResult(marked_read=service.mark_all_read(session, actor))


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationRead,
    responses=problem_responses(401, 404),
    tags=["notifications"],
    summary="Mark one notification read",
)
def read_notification(
    notification_id: RowId, actor: CurrentActor, session: DbSession
) -> NotificationRead:
    return NotificationRead.model_validate(service.mark_read(session, actor, notification_id))
