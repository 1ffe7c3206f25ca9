"""HTTP for interests, proposals (揭榜) and deals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from market.auth.actor import CurrentActor
from market.common.ids import PathId
from market.common.pagination import Page, Paging
from market.db import DbSession
from market.deals import service
from market.deals.models import DealStage, Interest, OutreachStatus, Proposal
from market.deals.schemas import (
    DealCreate,
    DealEventRead,
    DealRead,
    DealUpdate,
    Decline,
    InterestCreate,
    InterestRead,
    NoteCreate,
    ProposalCreate,
    ProposalRead,
    StageChange,
)
from market.errors import problem_responses

router = APIRouter(tags=["deals"])
Id = PathId
StaleAfterDays = Annotated[
    int,
    Query(ge=0, le=365, description="Unanswered for more than this many days"),
]

READ = problem_responses(401, 404)
WRITE = problem_responses(401, 403, 404, 409, 422)


# --- interests -----------------------------------------------------------------------


@router.post(
    "/results/{result_id}/interests",
    response_model=InterestRead,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
    summary="Express an enterprise's interest in a published result",
)
def express_interest(
    result_id: Id, body: InterestCreate, actor: CurrentActor, session: DbSession
) -> InterestRead:
    return InterestRead.model_validate(service.express_interest(session, actor, result_id, body))


@router.get(
    "/interests",
    response_model=Page[InterestRead],
    responses=READ,
    summary="Interests sent or received by your organisation (all, for brokers)",
)
def list_interests(
    actor: CurrentActor,
    session: DbSession,
    paging: Paging,
    status_filter: Annotated[OutreachStatus | None, Query(alias="status")] = None,
) -> Page[InterestRead]:
    rows, total = service.list_outreach(session, actor, Interest, paging, status=status_filter)
    return Page.of([InterestRead.model_validate(row) for row in rows], total, paging)


@router.get(
    "/interests/stale",
    response_model=Page[InterestRead],
    responses=READ,
    summary="Interests still unanswered after N days, oldest first",
)
def stale_interests(
    actor: CurrentActor,
    session: DbSession,
    paging: Paging,
    older_than_days: StaleAfterDays = service.DEFAULT_STALE_AFTER_DAYS,
) -> Page[InterestRead]:
    rows, total = service.list_outreach(
        session, actor, Interest, paging, stale_after_days=older_than_days
    )
    return Page.of([InterestRead.model_validate(row) for row in rows], total, paging)


@router.get("/interests/{interest_id}", response_model=InterestRead, responses=READ)
def get_interest(interest_id: Id, actor: CurrentActor, session: DbSession) -> InterestRead:
    return InterestRead.model_validate(service.get_outreach(session, actor, Interest, interest_id))


@router.post("/interests/{interest_id}/accept", response_model=InterestRead, responses=WRITE)
def accept_interest(interest_id: Id, actor: CurrentActor, session: DbSession) -> InterestRead:
    return InterestRead.model_validate(service.accept(session, actor, Interest, interest_id))


@router.post("/interests/{interest_id}/decline", response_model=InterestRead, responses=WRITE)
def decline_interest(
    interest_id: Id, body: Decline, actor: CurrentActor, session: DbSession
) -> InterestRead:
    return InterestRead.model_validate(service.decline(session, actor, Interest, interest_id, body))


# --- proposals (揭榜) -----------------------------------------------------------------


@router.post(
    "/demands/{demand_id}/proposals",
    response_model=ProposalRead,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
    summary="揭榜: a university or institute answers a published demand",
)
def propose(
    demand_id: Id, body: ProposalCreate, actor: CurrentActor, session: DbSession
) -> ProposalRead:
    return ProposalRead.model_validate(service.propose(session, actor, demand_id, body))


@router.get(
    "/proposals",
    response_model=Page[ProposalRead],
    responses=READ,
    summary="Proposals sent or received by your organisation (all, for brokers)",
)
def list_proposals(
    actor: CurrentActor,
    session: DbSession,
    paging: Paging,
    status_filter: Annotated[OutreachStatus | None, Query(alias="status")] = None,
) -> Page[ProposalRead]:
    rows, total = service.list_outreach(session, actor, Proposal, paging, status=status_filter)
    return Page.of([ProposalRead.model_validate(row) for row in rows], total, paging)


@router.get(
    "/proposals/stale",
    response_model=Page[ProposalRead],
    responses=READ,
    summary="Proposals still unanswered after N days, oldest first",
)
def stale_proposals(
    actor: CurrentActor,
    session: DbSession,
    paging: Paging,
    older_than_days: StaleAfterDays = service.DEFAULT_STALE_AFTER_DAYS,
) -> Page[ProposalRead]:
    rows, total = service.list_outreach(
        session, actor, Proposal, paging, stale_after_days=older_than_days
    )
    return Page.of([ProposalRead.model_validate(row) for row in rows], total, paging)


@router.get("/proposals/{proposal_id}", response_model=ProposalRead, responses=READ)
def get_proposal(proposal_id: Id, actor: CurrentActor, session: DbSession) -> ProposalRead:
    return ProposalRead.model_validate(service.get_outreach(session, actor, Proposal, proposal_id))


@router.post("/proposals/{proposal_id}/accept", response_model=ProposalRead, responses=WRITE)
def accept_proposal(proposal_id: Id, actor: CurrentActor, session: DbSession) -> ProposalRead:
    return ProposalRead.model_validate(service.accept(session, actor, Proposal, proposal_id))


@router.post("/proposals/{proposal_id}/decline", response_model=ProposalRead, responses=WRITE)
def decline_proposal(
    proposal_id: Id, body: Decline, actor: CurrentActor, session: DbSession
) -> ProposalRead:
    return ProposalRead.model_validate(service.decline(session, actor, Proposal, proposal_id, body))


# --- deals ---------------------------------------------------------------------------


@router.post(
    "/deals",
    response_model=DealRead,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
    summary="Open a deal between a seller and a buyer",
)
def open_deal(body: DealCreate, actor: CurrentActor, session: DbSession) -> DealRead:
    return DealRead.model_validate(service.open_deal(session, actor, body))


@router.get(
    "/deals",
    response_model=Page[DealRead],
    responses=READ,
    summary="Deals your organisation is a party to or brokers (all, for bureau staff)",
)
def list_deals(
    actor: CurrentActor,
    session: DbSession,
    paging: Paging,
    stage: Annotated[DealStage | None, Query()] = None,
) -> Page[DealRead]:
    rows, total = service.list_deals(session, actor, paging, stage)
    return Page.of([DealRead.model_validate(row) for row in rows], total, paging)


@router.get("/deals/{deal_id}", response_model=DealRead, responses=READ)
def get_deal(deal_id: Id, actor: CurrentActor, session: DbSession) -> DealRead:
    return DealRead.model_validate(service.get_deal(session, actor, deal_id))


@router.patch(
    "/deals/{deal_id}",
    response_model=DealRead,
    responses=WRITE,
    summary="Rename a deal (the parties and the broker are fixed at creation)",
)
def update_deal(deal_id: Id, body: DealUpdate, actor: CurrentActor, session: DbSession) -> DealRead:
    return DealRead.model_validate(service.rename(session, actor, deal_id, body.title))


@router.post(
    "/deals/{deal_id}/stage",
    response_model=DealRead,
    responses=WRITE,
    summary="Move a deal to its next stage, or mark it lost with a reason",
)
def change_stage(
    deal_id: Id, body: StageChange, actor: CurrentActor, session: DbSession
) -> DealRead:
    return DealRead.model_validate(service.change_stage(session, actor, deal_id, body))


@router.get(
    "/deals/{deal_id}/events",
    response_model=list[DealEventRead],
    responses=READ,
    summary="The deal's timeline: opening, stage changes and notes",
)
def deal_events(deal_id: Id, actor: CurrentActor, session: DbSession) -> list[DealEventRead]:
    return [DealEventRead.model_validate(row) for row in service.events(session, actor, deal_id)]


@router.post(
    "/deals/{deal_id}/notes",
    response_model=DealEventRead,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
)
def add_note(
    deal_id: Id, body: NoteCreate, actor: CurrentActor, session: DbSession
) -> DealEventRead:
    return DealEventRead.model_validate(service.add_note(session, actor, deal_id, body.note))
