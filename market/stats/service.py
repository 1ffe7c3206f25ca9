"""Sums over the append-only ledger, by period and by the dimensions it snapshots.

"As of" a day means: the entries recorded up to the end of that day (China time), so a
view of the past is exactly what the bureau could have seen then; later changes and
cancellations count in the period of the contract's registration.
"""

from __future__ import annotations

import calendar
import csv
import io
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, func, select

from market.auth.actor import Actor
from market.contracts import ledger
from market.contracts.models import LedgerEntry
from market.db import utcnow
from market.errors import NotFound
from market.organizations.districts import all_districts
from market.organizations.models import Organization
from market.stats.models import TradeTarget
from market.stats.schemas import (
    Breakdown,
    BreakdownRow,
    Dimension,
    Progress,
    Summary,
    TargetSet,
    Totals,
)

_GROUP_COLUMNS: dict[Dimension, tuple[Any, ...]] = {
    Dimension.YEAR: (LedgerEntry.effective_year,),
    Dimension.QUARTER: (LedgerEntry.effective_year, LedgerEntry.effective_quarter),
    Dimension.MONTH: (LedgerEntry.effective_year, LedgerEntry.effective_month),
    Dimension.CONTRACT_TYPE: (LedgerEntry.contract_type,),
    Dimension.FIELD: (LedgerEntry.field,),
    Dimension.SELLER_DISTRICT: (LedgerEntry.seller_district_code,),
    Dimension.BUYER_DISTRICT: (LedgerEntry.buyer_district_code,),
    Dimension.SELLER_KIND: (LedgerEntry.seller_kind,),
    Dimension.BUYER_KIND: (LedgerEntry.buyer_kind,),
    Dimension.BROKER: (LedgerEntry.broker_organization_id,),
}

KIND_LABELS = {
    "university": "高等院校",
    "institute": "科研院所",
    "enterprise": "企业",
    "broker_agency": "技术经纪机构",
    "bureau": "科技局",
}
NO_BROKER_LABEL = "无经纪机构"


def _sums() -> tuple[Any, Any, Any]:
    return (
        func.coalesce(func.sum(LedgerEntry.delta_count), 0),
        func.coalesce(func.sum(LedgerEntry.delta_total_fen), 0),
        func.coalesce(func.sum(LedgerEntry.delta_technology_fen), 0),
    )


def _filters(as_of: date, year: int | None) -> list[ColumnElement[bool]]:
    conditions = [col(LedgerEntry.recorded_at) < ledger.end_of_local_day(as_of)]
    if year is not None:
        conditions.append(col(LedgerEntry.effective_year) == year)
    return conditions


def _totals(row: Any) -> Totals:
    # PostgreSQL sums BIGINT into NUMERIC (a Decimal in Python): back to exact ints.
    count, total, technology = row
    return Totals(contract_count=int(count), total_amount_fen=int(total),
                  technology_amount_fen=int(technology))


def summary(session: Session, as_of: date, year: int | None) -> Summary:
    row = session.execute(select_columns(*_sums()).where(*_filters(as_of, year))).one()
    return Summary(as_of=as_of, year=year, **_totals(row).model_dump())


def breakdown(
    session: Session, dimension: Dimension, as_of: date, year: int | None
) -> Breakdown:
    group = _GROUP_COLUMNS[dimension]
    query = (
        select_columns(*group, *_sums()).where(*_filters(as_of, year))
        .group_by(*group).order_by(*group)
    )
    rows = []
    for row in session.execute(query):
        keys, sums = tuple(row[: len(group)]), row[len(group):]
        totals = _totals(sums)
        if totals == Totals(contract_count=0, total_amount_fen=0, technology_amount_fen=0):
            continue  # only cancelled contracts in this group: nothing left to show
        rows.append(BreakdownRow(key=_key(dimension, keys), label="", **totals.model_dump()))
    _label(session, dimension, rows)
    # The groups partition the ledger, so their sums are the totals: no second scan.
    totals = Totals(
        contract_count=sum(row.contract_count for row in rows),
        total_amount_fen=sum(row.total_amount_fen for row in rows),
        technology_amount_fen=sum(row.technology_amount_fen for row in rows),
    )
    return Breakdown(dimension=dimension, as_of=as_of, year=year, rows=rows, totals=totals)


def _key(dimension: Dimension, keys: tuple[Any, ...]) -> str:
    if dimension == Dimension.QUARTER:
        return f"{keys[0]}-Q{keys[1]}"
    if dimension == Dimension.MONTH:
        return f"{keys[0]}-{keys[1]:02d}"
    return "" if keys[0] is None else str(keys[0])


def _label(session: Session, dimension: Dimension, rows: list[BreakdownRow]) -> None:
    """Human names for keys: districts, organisation kinds, broker agencies."""
    if dimension in (Dimension.SELLER_DISTRICT, Dimension.BUYER_DISTRICT):
        districts = all_districts()
        for row in rows:
            district = districts.get(row.key)
            row.label = district.name if district else row.key
    elif dimension in (Dimension.SELLER_KIND, Dimension.BUYER_KIND):
        for row in rows:
            row.label = KIND_LABELS.get(row.key, row.key)
    elif dimension == Dimension.BROKER:
        ids = [int(row.key) for row in rows if row.key]
        names = dict(session.exec(
            select(Organization.id, Organization.name).where(col(Organization.id).in_(ids))
        ).all()) if ids else {}
        for row in rows:
            row.label = names.get(int(row.key), row.key) if row.key else NO_BROKER_LABEL
    else:
        for row in rows:
            row.label = row.key


# --- CSV ----------------------------------------------------------------------------------

CSV_COLUMNS = (
    ("key", "代码"),
    ("label", "名称"),
    ("contract_count", "合同数"),
    ("total_amount_fen", "成交额(分)"),
    ("technology_amount_fen", "技术交易额(分)"),
    ("total_amount_yuan", "成交额(元)"),
    ("technology_amount_yuan", "技术交易额(元)"),
)


def yuan(fen: int) -> str:
    """Exact decimal yuan for spreadsheets: 123456 fen -> "1234.56"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def to_csv(report: Breakdown, chinese_headers: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([zh if chinese_headers else en for en, zh in CSV_COLUMNS])
    total_label = "合计" if chinese_headers else "total"
    lines = [*((row.key, row.label, row) for row in report.rows),
             ("", total_label, report.totals)]
    for key, label, sums in lines:
        writer.writerow([
            key, label, sums.contract_count, sums.total_amount_fen, sums.technology_amount_fen,
            yuan(sums.total_amount_fen), yuan(sums.technology_amount_fen),
        ])
    return buffer.getvalue()


# --- targets and progress -----------------------------------------------------------------

def targets(session: Session) -> list[TradeTarget]:
    return list(session.exec(select(TradeTarget).order_by(col(TradeTarget.year))))


def set_target(session: Session, actor: Actor, year: int, data: TargetSet) -> TradeTarget:
    target = session.get(TradeTarget, year)
    if target is None:
        target = TradeTarget(year=year, technology_amount_fen=data.technology_amount_fen)
        session.add(target)
    target.technology_amount_fen = data.technology_amount_fen
    target.note = data.clean_note()
    target.updated_at = utcnow()
    target.updated_by_user_id = actor.user_id
    session.flush()
    return target


def months_remaining(year: int, as_of: date) -> int:
    """Calendar months of `year` still to come after `as_of`; the current month counts
    unless `as_of` is its last day."""
    if as_of < date(year, 1, 1):
        return 12
    if as_of >= date(year, 12, 31):
        return 0
    last_day = calendar.monthrange(as_of.year, as_of.month)[1]
    return 12 - as_of.month + (0 if as_of.day == last_day else 1)


def progress(session: Session, year: int, as_of: date) -> Progress:
    target = session.get(TradeTarget, year)
    if target is None:
        raise NotFound(f"No 技术交易额 target is set for {year}")
    reached = summary(session, as_of, year).technology_amount_fen
    remaining = max(target.technology_amount_fen - reached, 0)
    months_left = months_remaining(year, as_of)
    year_start, year_end = date(year, 1, 1), date(year, 12, 31)
    days_in_year = (year_end - year_start).days + 1
    days_elapsed = max(0, min((min(as_of, year_end) - year_start).days + 1, days_in_year))
    projected = reached * days_in_year // days_elapsed if days_elapsed else None
    return Progress(
        year=year, as_of=as_of, target_fen=target.technology_amount_fen, reached_fen=reached,
        remaining_fen=remaining, share_reached=round(reached / target.technology_amount_fen, 6),
        months_remaining=months_left,
        pace_needed_per_month_fen=-(-remaining // months_left) if months_left else None,
        days_elapsed=days_elapsed, projected_year_fen=projected,
        on_track=None if projected is None else projected >= target.technology_amount_fen,
    )
