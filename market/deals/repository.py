"""The queries of interests, proposals and deals, and the parties' scope contracts share.

Who sees what is decided here, in the WHERE clause: a row outside the scope is never
loaded, so the service answers 404 for it as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, or_, true
from sqlmodel import Session, col, func, select

from market.auth.actor import Actor
from market.common.pagination import PageParams, paginate
from market.deals.models import Deal, DealEvent, DealStage, Interest, OutreachStatus, Proposal
from market.listings.models import ListingKind

OutreachT = TypeVar("OutreachT", Interest, Proposal)


class PartyRecord(Protocol):
    """A row between a seller and a buyer, perhaps brought by a broker's agency: a deal,
    and the contract entered from it."""

    id: int | None
    seller_organization_id: int
    buyer_organization_id: int
    broker_organization_id: int | None
    updated_at: datetime


PartyRecordT = TypeVar("PartyRecordT", bound=PartyRecord)


# --- the parties' scope (deals here, contracts through their repository) -------------


def party_scope(model: type[PartyRecordT], actor: Actor) -> ColumnElement[bool]:
    """The two parties and the broker's agency see the row; bureau staff see every row."""
    if actor.is_bureau:
        return true()
    return or_(
        col(model.seller_organization_id) == actor.organization_id,
        col(model.buyer_organization_id) == actor.organization_id,
        col(model.broker_organization_id) == actor.organization_id,
    )


def visible_party_record(
    session: Session, model: type[PartyRecordT], actor: Actor, record_id: int
) -> PartyRecordT | None:
    query = select(model).where(col(model.id) == record_id, party_scope(model, actor))
    return session.exec(query).first()


def page_of_party_records(
    session: Session,
    model: type[PartyRecordT],
    actor: Actor,
    page: PageParams,
    *conditions: ColumnElement[bool],
) -> tuple[list[PartyRecordT], int]:
    """The rows the actor may see that meet `conditions`, most recently changed first."""
    query = select(model).where(party_scope(model, actor), *conditions)
    return paginate(session, query, page, col(model.updated_at).desc(), col(model.id).desc())


# --- deals ---------------------------------------------------------------------------


def visible_deal(session: Session, actor: Actor, deal_id: int) -> Deal | None:
    return visible_party_record(session, Deal, actor, deal_id)


def page_of_deals(
    session: Session, actor: Actor, page: PageParams, stage: DealStage | None
) -> tuple[list[Deal], int]:
    conditions = [] if stage is None else [col(Deal.stage) == stage]
    return page_of_party_records(session, Deal, actor, page, *conditions)


def events_of_deal(session: Session, deal_id: int) -> list[DealEvent]:
    """The deal's timeline, oldest first."""
    query = (
        select(DealEvent)
        .where(col(DealEvent.deal_id) == deal_id)
        .order_by(col(DealEvent.occurred_at), col(DealEvent.id))
    )
    return list(session.exec(query))


def other_deals_not_lost(
    session: Session, kind: ListingKind, listing_id: int, excluding_deal_id: int
) -> int:
    """How many deals about the listing, besides this one, are still open or won."""
    column = col(Deal.result_id) if kind == ListingKind.RESULT else col(Deal.demand_id)
    query = (
        select(func.count())
        .select_from(Deal)
        .where(
            column == listing_id,
            col(Deal.stage) != DealStage.LOST,
            col(Deal.id) != excluding_deal_id,
        )
    )
    return session.exec(query).one()


# --- interests and proposals ---------------------------------------------------------


def outreach_scope(model: type[OutreachT], actor: Actor, *, sees_all: bool) -> ColumnElement[bool]:
    """The approaches the actor's organisation made or received; all of them if `sees_all`
    (the service decides who follows every approach up)."""
    if sees_all:
        return true()
    return or_(
        col(model.owner_organization_id) == actor.organization_id,
        col(model.organization_id) == actor.organization_id,
    )


def visible_outreach(
    session: Session, model: type[OutreachT], actor: Actor, outreach_id: int, *, sees_all: bool
) -> OutreachT | None:
    query = select(model).where(
        col(model.id) == outreach_id, outreach_scope(model, actor, sees_all=sees_all)
    )
    return session.exec(query).first()


def page_of_outreach(
    session: Session,
    model: type[OutreachT],
    actor: Actor,
    page: PageParams,
    *,
    sees_all: bool,
    status: OutreachStatus | None = None,
) -> tuple[list[OutreachT], int]:
    """Approaches the actor may see, newest first, in one status if given."""
    query = select(model).where(outreach_scope(model, actor, sees_all=sees_all))
    if status is not None:
        query = query.where(col(model.status) == status)
    return paginate(session, query, page, col(model.created_at).desc(), col(model.id).desc())


def page_of_stale_outreach(
    session: Session,
    model: type[OutreachT],
    actor: Actor,
    page: PageParams,
    *,
    sees_all: bool,
    created_before: datetime,
) -> tuple[list[OutreachT], int]:
    """Approaches still pending that were made before `created_before`, oldest first."""
    query = select(model).where(
        outreach_scope(model, actor, sees_all=sees_all),
        col(model.status) == OutreachStatus.PENDING,
        col(model.created_at) < created_before,
    )
    return paginate(session, query, page, col(model.created_at), col(model.id))
