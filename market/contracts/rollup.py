"""The ledger's monthly roll-up (`ledger_rollup`): keeping it, rebuilding it, reading it.

Every ledger entry adds its three deltas to one row per rollup dimension: "period" (no
dimension; the summary and the year/quarter/month breakdowns) and the seven
`ROLLUP_COLUMNS`, keyed by the China-time month the entry was recorded in and the
effective (registration) year and month it counts in. The dashboard then sums a few
thousand rows instead of a million entries:

    as of day D = rollup rows recorded in months before D's month
                + ledger entries recorded from the first of D's month to the end of D

(the second part is an index range scan on `recorded_at`, at most a month of entries),
which is exactly the sum over the entries recorded up to the end of D.

Rows are updated in place with INSERT ... ON CONFLICT DO UPDATE (PostgreSQL and SQLite),
in the ledger entry's transaction, in primary-key order so that concurrent writers take
the row locks in the same order (no deadlock). Rows whose sums fall back to zero stay:
the table then equals a fresh rebuild row for row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Table, text
from sqlalchemy import select as select_columns
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func

from market.common.calendar import month_number
from market.contracts.models import LedgerEntry, LedgerRollup

PERIOD = "period"
# Rollup dimension -> the ledger column it groups by (the Dimension values that are not
# periods).
ROLLUP_COLUMNS: dict[str, str] = {
    "contract_type": "contract_type",
    "field": "field",
    "seller_district": "seller_district_code",
    "buyer_district": "buyer_district_code",
    "seller_kind": "seller_kind",
    "buyer_kind": "buyer_kind",
    "broker": "broker_organization_id",
}
DIMENSIONS = (PERIOD, *ROLLUP_COLUMNS)
KEY_COLUMNS = (
    "dimension",
    "effective_year",
    "effective_month",
    "recorded_month",
    "dimension_value",
)
SUM_COLUMNS = ("contract_count", "total_amount_fen", "technology_amount_fen")

Sums = tuple[int, int, int]  # contract count, 成交额 fen, 技术交易额 fen
# A group's key: (effective year, effective month) for "period", the value as text else.
GroupKey = Any


def value_text(value: object) -> str:
    """A ledger column's value as the rollup stores it: None (no broker) is ""."""
    return "" if value is None else str(value)


def _table() -> Table:
    table: Table = LedgerRollup.__table__  # type: ignore[attr-defined]
    return table


# --- keeping it ---------------------------------------------------------------------------


def record(session: Session, entry: LedgerEntry, recorded_on: date) -> None:
    """Add a new ledger entry to its rollup rows (`recorded_on`: its China-time day)."""
    common = {
        "effective_year": entry.effective_year,
        "effective_month": entry.effective_month,
        "recorded_month": month_number(recorded_on),
        "contract_count": entry.delta_count,
        "total_amount_fen": entry.delta_total_fen,
        "technology_amount_fen": entry.delta_technology_fen,
    }
    keys = [(PERIOD, "")] + [
        (dimension, value_text(getattr(entry, column)))
        for dimension, column in ROLLUP_COLUMNS.items()
    ]
    rows = [
        {"dimension": dimension, "dimension_value": value, **common}
        for dimension, value in sorted(keys)
    ]  # primary-key order: the lock order
    table = _table()
    dialect = session.get_bind().dialect.name
    insert: Callable[..., Any]
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - the application runs on these two
        raise NotImplementedError(f"ledger rollup on {dialect}")
    statement = insert(table).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: table.c[name] + statement.excluded[name] for name in SUM_COLUMNS},
    )
    session.execute(statement)


# --- rebuilding it ------------------------------------------------------------------------


def _recorded_month_sql(dialect: str) -> str:
    """`recorded_at`'s China-time month as YYYYMM (UTC+8, no daylight saving)."""
    if dialect == "postgresql":
        return (
            "CAST(to_char((recorded_at AT TIME ZONE 'UTC') + interval '8 hours', "
            "'YYYYMM') AS INTEGER)"
        )
    # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'. Its date functions round that
    # to the millisecond (23:59:59.9996 would become the next month): whole seconds
    # first, exact since months start on a whole second.
    return "CAST(strftime('%Y%m', substr(recorded_at, 1, 19), '+8 hours') AS INTEGER)"


def rebuild_statements(dialect: str) -> Iterator[tuple[str, str]]:
    """(dimension, INSERT ... SELECT) filling one dimension's rows from the ledger.

    The same SQL fills the table in migration 0005 (which keeps its own copy)."""
    month = _recorded_month_sql(dialect)
    values = {
        PERIOD: "''",
        **{
            dimension: f"COALESCE(CAST({column} AS VARCHAR(20)), '')"
            for dimension, column in ROLLUP_COLUMNS.items()
        },
    }
    for dimension, value in values.items():
        by_value = "" if value == "''" else f", {value}"  # PostgreSQL: no constant
        # Only this module's constants go into the SQL, never input.
        statement = f"""
            INSERT INTO ledger_rollup (dimension, effective_year, effective_month,
                recorded_month, dimension_value, contract_count, total_amount_fen,
                technology_amount_fen)
            SELECT '{dimension}', effective_year, effective_month, {month}, {value},
                   SUM(delta_count), SUM(delta_total_fen), SUM(delta_technology_fen)
            FROM ledger_entries
            GROUP BY effective_year, effective_month, {month}{by_value}"""  # noqa: S608
        yield dimension, statement


def rebuild(session: Session, progress: Callable[[str, int], None] | None = None) -> int:
    """Recompute the whole rollup from the ledger in the session's transaction; returns
    the number of rows. On PostgreSQL new ledger entries wait until it commits (a SHARE
    lock on the ledger), so none is counted twice or missed; readers go on meanwhile."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("LOCK TABLE ledger_entries IN SHARE MODE"))
    session.execute(_table().delete())
    written = 0
    for dimension, statement in rebuild_statements(dialect):
        rows = session.connection().execute(text(statement)).rowcount or 0
        written += rows
        if progress is not None:
            progress(dimension, rows)
    return written


def rows(session: Session) -> dict[tuple[Any, ...], Sums]:
    """The whole table, key -> sums (to compare with a rebuild)."""
    table = _table()
    return {
        tuple(row[: len(KEY_COLUMNS)]): _sums(row[len(KEY_COLUMNS) :])
        for row in session.execute(
            select_columns(
                *(table.c[name] for name in KEY_COLUMNS), *(table.c[name] for name in SUM_COLUMNS)
            )
        )
    }


# --- reading it ---------------------------------------------------------------------------


def _sums(row: Any) -> Sums:
    # PostgreSQL sums BIGINT into NUMERIC (a Decimal in Python): back to exact ints.
    count, total, technology = row
    return int(count or 0), int(total or 0), int(technology or 0)


def rollup_groups(
    session: Session, dimension: str, before_month: int, year: int | None
) -> dict[GroupKey, Sums]:
    """Sums of the rollup rows recorded in months before `before_month` (YYYYMM)."""
    group: tuple[Any, ...] = (
        (col(LedgerRollup.effective_year), col(LedgerRollup.effective_month))
        if dimension == PERIOD
        else (col(LedgerRollup.dimension_value),)
    )
    conditions: list[ColumnElement[bool]] = [
        col(LedgerRollup.dimension) == dimension,
        col(LedgerRollup.recorded_month) < before_month,
    ]
    if year is not None:
        conditions.append(col(LedgerRollup.effective_year) == year)
    query = (
        select_columns(
            *group,
            func.sum(LedgerRollup.contract_count),
            func.sum(LedgerRollup.total_amount_fen),
            func.sum(LedgerRollup.technology_amount_fen),
        )
        .where(*conditions)
        .group_by(*group)
    )
    return {
        _group_key(dimension, row[: len(group)]): _sums(row[len(group) :])
        for row in session.execute(query)
    }


def ledger_groups(
    session: Session, dimension: str, conditions: list[ColumnElement[bool]]
) -> dict[GroupKey, Sums]:
    """The same groups summed straight from the ledger entries that meet `conditions`."""
    group: tuple[Any, ...] = (
        (col(LedgerEntry.effective_year), col(LedgerEntry.effective_month))
        if dimension == PERIOD
        else (getattr(LedgerEntry, ROLLUP_COLUMNS[dimension]),)
    )
    query = (
        select_columns(
            *group,
            func.sum(LedgerEntry.delta_count),
            func.sum(LedgerEntry.delta_total_fen),
            func.sum(LedgerEntry.delta_technology_fen),
        )
        .where(*conditions)
        .group_by(*group)
    )
    return {
        _group_key(dimension, row[: len(group)]): _sums(row[len(group) :])
        for row in session.execute(query)
    }


def _group_key(dimension: str, keys: Any) -> GroupKey:
    if dimension == PERIOD:
        return int(keys[0]), int(keys[1])
    return value_text(keys[0])


def add(into: dict[GroupKey, Sums], more: dict[GroupKey, Sums]) -> dict[GroupKey, Sums]:
    for key, (count, total, technology) in more.items():
        had = into.get(key, (0, 0, 0))
        into[key] = (had[0] + count, had[1] + total, had[2] + technology)
    return into
