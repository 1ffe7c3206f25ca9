"""Sums over the append-only ledger, by period and by the dimensions it snapshots.

"As of" a day means: the entries recorded up to the end of that day (China time), so a
view of the past is exactly what the bureau could have seen then; later changes and
cancellations count in the period of the contract's registration.

The sums come from the monthly roll-up of the ledger (`market.contracts.rollup`) for the
months before the as-of day's month, plus the ledger entries of that month up to the
end of the day: the same numbers to the fen as summing the whole ledger
(`source="ledger"`, kept for the benchmark's baseline and the tests), from a few
thousand rows instead of every entry.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from market.auth.actor import Actor
from market.auth.organization import Organization
from market.common.calendar import end_of_market_day, month_number, quarter_of
from market.common.spreadsheet import csv_document
from market.contracts import rollup
from market.contracts.models import LedgerEntry
from market.db import utcnow
from market.errors import NotFound
from market.organizations.districts import all_districts
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

Source = Literal["rollup", "ledger"]

# Period breakdowns fold the (effective year, month) groups of the "period" rows.
_PERIOD_KEYS: dict[Dimension, Callable[[int, int], tuple[int, ...]]] = {
    Dimension.YEAR: lambda year, month: (year,),
    Dimension.QUARTER: lambda year, month: (year, quarter_of(date(year, month, 1))),
    Dimension.MONTH: lambda year, month: (year, month),
}

KIND_LABELS = {
    "university": "高等院校",
    "institute": "科研院所",
    "enterprise": "企业",
    "broker_agency": "技术经纪机构",
    "bureau": "科技局",
}
NO_BROKER_LABEL = "无经纪机构"


def _groups(
    session: Session, dimension: str, as_of: date, year: int | None, source: Source
) -> dict[rollup.GroupKey, rollup.Sums]:
    """Sums by group of the entries recorded up to the end of `as_of` (China time)."""
    conditions: list[ColumnElement[bool]] = [
        col(LedgerEntry.recorded_at) < end_of_market_day(as_of)
    ]
    if year is not None:
        conditions.append(col(LedgerEntry.effective_year) == year)
    if source == "ledger":
        return rollup.ledger_groups(session, dimension, conditions)
    month_start = end_of_market_day(as_of.replace(day=1) - timedelta(days=1))
    earlier = rollup.rollup_groups(session, dimension, month_number(as_of), year)
    this_month = rollup.ledger_groups(
        session, dimension, [*conditions, col(LedgerEntry.recorded_at) >= month_start]
    )
    return rollup.add(earlier, this_month)


def _totals(sums: rollup.Sums) -> Totals:
    count, total, technology = sums
    return Totals(contract_count=count, total_amount_fen=total, technology_amount_fen=technology)


def summary(session: Session, as_of: date, year: int | None, source: Source = "rollup") -> Summary:
    groups = _groups(session, rollup.PERIOD, as_of, year, source).values()
    sums = (
        sum(count for count, _, _ in groups),
        sum(total for _, total, _ in groups),
        sum(technology for _, _, technology in groups),
    )
    return Summary(as_of=as_of, year=year, **_totals(sums).model_dump())


def breakdown(
    session: Session,
    dimension: Dimension,
    as_of: date,
    year: int | None,
    source: Source = "rollup",
) -> Breakdown:
    groups: dict[Any, rollup.Sums]
    if dimension in _PERIOD_KEYS:
        fold = _PERIOD_KEYS[dimension]
        groups = {}
        for (effective_year, effective_month), sums in _groups(
            session, rollup.PERIOD, as_of, year, source
        ).items():
            rollup.add(groups, {fold(effective_year, effective_month): sums})
    else:
        groups = _groups(session, dimension.value, as_of, year, source)
    rows = []
    for keys in sorted(groups, key=_sort_key(dimension)):
        totals = _totals(groups[keys])
        if totals == Totals(contract_count=0, total_amount_fen=0, technology_amount_fen=0):
            continue  # only cancelled contracts in this group: nothing left to show
        rows.append(BreakdownRow(key=_key(dimension, keys), label="", **totals.model_dump()))
    _label(session, dimension, rows)
    # The groups partition the ledger, so their sums are the totals: no second query.
    totals = Totals(
        contract_count=sum(row.contract_count for row in rows),
        total_amount_fen=sum(row.total_amount_fen for row in rows),
        technology_amount_fen=sum(row.technology_amount_fen for row in rows),
    )
    return Breakdown(dimension=dimension, as_of=as_of, year=year, rows=rows, totals=totals)


def _sort_key(dimension: Dimension) -> Callable[[Any], Any]:
    """Periods in time order, brokers by id with "no broker" last, text by code point
    (the same order on every database)."""
    if dimension in _PERIOD_KEYS:
        return lambda keys: keys
    if dimension == Dimension.BROKER:
        return lambda key: (key == "", int(key) if key else 0)
    return lambda key: key


def _key(dimension: Dimension, keys: Any) -> str:
    if dimension == Dimension.QUARTER:
        return f"{keys[0]}-Q{keys[1]}"
    if dimension == Dimension.MONTH:
        return f"{keys[0]}-{keys[1]:02d}"
    if dimension == Dimension.YEAR:
        return str(keys[0])
    return str(keys)


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
        names = (
            dict(
                session.exec(
                    select(Organization.id, Organization.name).where(col(Organization.id).in_(ids))
                ).all()
            )
            if ids
            else {}
        )
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
    total_label = "合计" if chinese_headers else "total"
    lines = [*((row.key, row.label, row) for row in report.rows), ("", total_label, report.totals)]
    return csv_document(
        [
            [zh if chinese_headers else en for en, zh in CSV_COLUMNS],
            *(
                [
                    key,
                    label,
                    sums.contract_count,
                    sums.total_amount_fen,
                    sums.technology_amount_fen,
                    yuan(sums.total_amount_fen),
                    yuan(sums.technology_amount_fen),
                ]
                for key, label, sums in lines
            ),
        ]
    )


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


def progress(session: Session, year: int, as_of: date, source: Source = "rollup") -> Progress:
    target = session.get(TradeTarget, year)
    if target is None:
        raise NotFound(f"No 技术交易额 target is set for {year}")
    reached = summary(session, as_of, year, source).technology_amount_fen
    remaining = max(target.technology_amount_fen - reached, 0)
    months_left = months_remaining(year, as_of)
    year_start, year_end = date(year, 1, 1), date(year, 12, 31)
    days_in_year = (year_end - year_start).days + 1
    days_elapsed = max(0, min((min(as_of, year_end) - year_start).days + 1, days_in_year))
    projected = reached * days_in_year // days_elapsed if days_elapsed else None
    return Progress(
        year=year,
        as_of=as_of,
        target_fen=target.technology_amount_fen,
        reached_fen=reached,
        remaining_fen=remaining,
        share_reached=round(reached / target.technology_amount_fen, 6),
        months_remaining=months_left,
        pace_needed_per_month_fen=-(-remaining // months_left) if months_left else None,
        days_elapsed=days_elapsed,
        projected_year_fen=projected,
        on_track=None if projected is None else projected >= target.technology_amount_fen,
    )
