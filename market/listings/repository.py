"""The catalogue's queries: visibility scopes, browse filters, sorting, the review queue.

Multi-valued columns are "|"-delimited ("|H01M10/052|B22F3/00|"), so membership is
LIKE '%|value|%' and an IPC prefix is LIKE '%|prefix%': the same SQL on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, literal, not_, or_, true, union_all
from sqlmodel import Session, col, func, select

from market.auth.actor import Actor
from market.common.pagination import PageParams, paginate
from market.listings.models import (
    ACTIVE_STATUSES,
    PUBLIC_STATUSES,
    Demand,
    Listing,
    ListingKind,
    ListingStatus,
    Result,
)
from market.listings.schemas import DemandFilters, DemandSort, ResultFilters, ResultSort

MODELS: dict[ListingKind, type[Result] | type[Demand]] = {
    ListingKind.RESULT: Result,
    ListingKind.DEMAND: Demand,
}


def publicly_visible(model: type[Result] | type[Demand], today: date) -> ColumnElement[bool]:
    """Public statuses, minus published listings whose validity has ended.

    The expiry sweep normally has turned those into `expired` already; the date test
    keeps them hidden even while a concurrent sweep holds their rows.
    """
    overdue = and_(
        col(model.status) == ListingStatus.PUBLISHED,
        col(model.valid_until).is_not(None),
        col(model.valid_until) < today,
    )
    return and_(col(model.status).in_(PUBLIC_STATUSES), not_(overdue))


def visible_to(
    model: type[Result] | type[Demand], actor: Actor | None, today: date
) -> ColumnElement[bool]:
    """What the actor may see: everything for the bureau, the public part plus its own."""
    if actor is not None and actor.is_bureau:
        return true()
    public = publicly_visible(model, today)
    if actor is None:
        return public
    return or_(public, col(model.organization_id) == actor.organization_id)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains_member(column: Any, value: str) -> ColumnElement[bool]:
    return col(column).like(f"%|{_like_escaped(value)}|%", escape="\\")


def _common_filters(
    model: type[Result] | type[Demand],
    actor: Actor | None,
    filters: ResultFilters | DemandFilters,
    today: date,
) -> list[ColumnElement[bool]]:
    conditions = [visible_to(model, actor, today)]
    if filters.mine:
        own = actor.organization_id if actor else -1
        conditions.append(col(model.organization_id) == own)
    if filters.status:
        conditions.append(col(model.status).in_(filters.status))
    elif not filters.mine:
        # A browse shows the market, not one's own drafts, unless asked.
        conditions.append(publicly_visible(model, today))
    if filters.q:
        conditions.append(col(model.title).like(f"%{_like_escaped(filters.q)}%", escape="\\"))
    if filters.field:
        conditions.append(col(model.field) == filters.field)
    if filters.ipc:
        ipc_prefix = f"%|{_like_escaped(filters.ipc)}%"
        conditions.append(col(model.ipc_codes).like(ipc_prefix, escape="\\"))
    if filters.district:
        conditions.append(col(model.district_code) == filters.district)
    if filters.organization_id:
        conditions.append(col(model.organization_id) == filters.organization_id)
    return conditions


def _amount_range(
    low_column: Any,
    high_column: Any,
    negotiable_column: Any,
    minimum: int | None,
    maximum: int | None,
    include_negotiable: bool,
) -> ColumnElement[bool] | None:
    """Listings whose amount (or range) meets [minimum, maximum]; 面议 only if asked."""
    if minimum is None and maximum is None:
        return None
    bounds = []
    if minimum is not None:
        bounds.append(col(high_column) >= minimum)
    if maximum is not None:
        bounds.append(func.coalesce(col(low_column), 0) <= maximum)
    priced = and_(col(high_column).is_not(None), *bounds)
    if include_negotiable:
        return or_(priced, col(negotiable_column).is_(True))
    return priced


def result_conditions(
    actor: Actor | None, filters: ResultFilters, today: date
) -> list[ColumnElement[bool]]:
    conditions = _common_filters(Result, actor, filters, today)
    if filters.maturity_stage:
        conditions.append(col(Result.maturity_stage) == filters.maturity_stage)
    if filters.transfer_mode:
        conditions.append(_contains_member(Result.transfer_modes, filters.transfer_mode))
    price = _amount_range(
        Result.price_fen,
        Result.price_fen,
        Result.price_negotiable,
        filters.price_min_fen,
        filters.price_max_fen,
        filters.include_negotiable,
    )
    if price is not None:
        conditions.append(price)
    return conditions


def demand_conditions(
    actor: Actor | None, filters: DemandFilters, today: date
) -> list[ColumnElement[bool]]:
    conditions = _common_filters(Demand, actor, filters, today)
    if filters.cooperation_mode:
        conditions.append(_contains_member(Demand.cooperation_modes, filters.cooperation_mode))
    budget = _amount_range(
        Demand.budget_min_fen,
        Demand.budget_max_fen,
        Demand.budget_negotiable,
        filters.budget_min_fen,
        filters.budget_max_fen,
        filters.include_negotiable,
    )
    if budget is not None:
        conditions.append(budget)
    if filters.deadline_before:
        conditions.append(col(Demand.deadline) < filters.deadline_before)
    if filters.deadline_after:
        conditions.append(col(Demand.deadline) > filters.deadline_after)
    return conditions


def _nulls_last(column: Any, descending: bool = False) -> list[Any]:
    """Portable NULLS LAST (SQLite sorts NULL first, PostgreSQL last, by default)."""
    return [col(column).is_(None), col(column).desc() if descending else col(column)]


RESULT_ORDER = {
    ResultSort.PUBLISHED_AT: _nulls_last(Result.published_at),
    ResultSort.NEWEST: _nulls_last(Result.published_at, descending=True),
    ResultSort.PRICE: _nulls_last(Result.price_fen),
    ResultSort.PRICE_DESC: _nulls_last(Result.price_fen, descending=True),
    ResultSort.TITLE: [col(Result.title)],
}
DEMAND_ORDER = {
    DemandSort.PUBLISHED_AT: _nulls_last(Demand.published_at),
    DemandSort.NEWEST: _nulls_last(Demand.published_at, descending=True),
    DemandSort.BUDGET: _nulls_last(Demand.budget_max_fen),
    DemandSort.BUDGET_DESC: _nulls_last(Demand.budget_max_fen, descending=True),
    DemandSort.DEADLINE: _nulls_last(Demand.deadline),
    DemandSort.TITLE: [col(Demand.title)],
}


def browse_results(
    session: Session, actor: Actor | None, filters: ResultFilters, page: PageParams, today: date
) -> tuple[list[Result], int]:
    query = select(Result).where(*result_conditions(actor, filters, today))
    return paginate(session, query, page, *RESULT_ORDER[filters.sort], col(Result.id))


def browse_demands(
    session: Session, actor: Actor | None, filters: DemandFilters, page: PageParams, today: date
) -> tuple[list[Demand], int]:
    query = select(Demand).where(*demand_conditions(actor, filters, today))
    return paginate(session, query, page, *DEMAND_ORDER[filters.sort], col(Demand.id))


def active_result_with_patent(
    session: Session, application_number: str, excluding_id: int | None
) -> Result | None:
    query = select(Result).where(
        Result.patent_application_number == application_number,
        col(Result.status).in_(ACTIVE_STATUSES),
    )
    if excluding_id is not None:
        query = query.where(Result.id != excluding_id)
    return session.exec(query).first()


def sibling_titles(
    session: Session, model: type[Result] | type[Demand], organization_id: int, excluding_id: int
) -> list[tuple[int, str]]:
    """(id, title) of the organisation's other listings of this kind, bar withdrawn ones."""
    query = select(col(model.id), col(model.title)).where(
        col(model.organization_id) == organization_id,
        col(model.id) != excluding_id,
        col(model.status) != ListingStatus.WITHDRAWN,
    )
    return [(row_id, title) for row_id, title in session.exec(query).all() if row_id is not None]


def due_for_expiry(
    session: Session, model: type[Result] | type[Demand], today: date, limit: int | None = None
) -> list[int]:
    query = (
        select(col(model.id))
        .where(
            col(model.status) == ListingStatus.PUBLISHED,
            col(model.valid_until).is_not(None),
            col(model.valid_until) < today,
        )
        .order_by(col(model.id))
    )
    if limit is not None:
        query = query.limit(limit)
    return [listing_id for listing_id in session.exec(query).all() if listing_id is not None]


def review_queue(session: Session, page: PageParams) -> tuple[list[Listing], int]:
    """Submitted listings of both kinds, oldest submission first."""
    parts: list[Any] = [
        select(
            literal(kind.value).label("kind"),
            col(model.id).label("id"),
            col(model.submitted_at).label("submitted_at"),
        ).where(col(model.status) == ListingStatus.SUBMITTED)
        for kind, model in MODELS.items()
    ]
    queue = union_all(*parts).subquery()
    total = session.exec(select(func.count()).select_from(queue)).one()
    ordered = (
        select(queue.c.kind, queue.c.id)
        .order_by(queue.c.submitted_at, queue.c.kind, queue.c.id)
        .offset(page.offset)
        .limit(page.limit)
    )
    keys = [(ListingKind(kind), listing_id) for kind, listing_id in session.exec(ordered).all()]
    rows = [get(session, kind, listing_id) for kind, listing_id in keys]
    return [row for row in rows if row is not None], total


def get(session: Session, kind: ListingKind, listing_id: int) -> Listing | None:
    return cast(Listing | None, session.get(MODELS[kind], listing_id))
