from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint
from sqlmodel import Field, SQLModel

from market.db import utcnow


class TradeTarget(SQLModel, table=True):
    """The bureau's 技术交易额 target for a year: data, so a new plan is an update, not code."""

    __tablename__ = "trade_targets"
    __table_args__ = (
        CheckConstraint("technology_amount_fen > 0", name="ck_trade_targets_positive"),
    )

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    technology_amount_fen: int = Field(sa_type=BigInteger)
    note: str = Field(default="", max_length=300)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_user_id: int | None = Field(default=None, foreign_key="users.id")


class LedgerRollup(SQLModel, table=True):
    """Monthly sums of the trade-volume ledger, one row set per dimension: derived data.

    The ledger (`ledger_entries`) stays the source of truth; this table is what the
    dashboard reads instead of a million entries. A row holds the sums of the entries
    recorded in one China-time month (`recorded_month`, YYYYMM) that count in one
    effective month, for one value of one dimension. `dimension` is "period" for the
    rows with no dimension (summary, year/quarter/month breakdowns; `dimension_value`
    "") or a `market.stats.schemas.Dimension` value; the broker dimension's value is the
    agency's organisation id as text, "" for no broker.

    `market.contracts.ledger` adds every entry to its rows in the entry's own transaction
    (`market.stats.rollup.record`); `market stats rebuild-rollup` recomputes the table.
    """

    __tablename__ = "ledger_rollup"

    # The primary key, in the order the dashboard filters: a dimension, maybe a year.
    dimension: str = Field(primary_key=True, max_length=20)
    effective_year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    effective_month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    recorded_month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    dimension_value: str = Field(primary_key=True, max_length=20)
    contract_count: int = Field(default=0, sa_type=BigInteger)
    total_amount_fen: int = Field(default=0, sa_type=BigInteger)
    technology_amount_fen: int = Field(default=0, sa_type=BigInteger)
