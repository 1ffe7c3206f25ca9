"""stats rollup

The monthly roll-up of the trade-volume ledger that the bureau's dashboard reads
(`market.stats.rollup`): per dimension ("period" for none, then contract type, field,
seller/buyer district, seller/buyer kind, broker), the sums of the entries recorded in
a China-time month (YYYYMM) that count in an effective year and month. Derived data:
the application adds every new ledger entry to it in the entry's transaction, and
`market stats rebuild-rollup` recomputes it. This migration fills it from the ledger
rows that already exist (the same INSERT ... SELECT as the rebuild, frozen here).

Revision ID: 0005
Revises: 0004
Created: 2026-11-22 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUP_COLUMNS = {
    "contract_type": "contract_type",
    "field": "field",
    "seller_district": "seller_district_code",
    "buyer_district": "buyer_district_code",
    "seller_kind": "seller_kind",
    "buyer_kind": "buyer_kind",
    "broker": "broker_organization_id",
}


def upgrade() -> None:
    op.create_table(
        "ledger_rollup",
        sa.Column("dimension", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("effective_year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("effective_month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("recorded_month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("dimension_value", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("contract_count", sa.BigInteger(), nullable=False),
        sa.Column("total_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("technology_amount_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dimension", "effective_year", "effective_month", "recorded_month", "dimension_value"
        ),
    )
    _fill_from_ledger()


def _fill_from_ledger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        month = (
            "CAST(to_char((recorded_at AT TIME ZONE 'UTC') + interval '8 hours', "
            "'YYYYMM') AS INTEGER)"
        )
    else:  # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'; its date functions
        # round to the millisecond, so whole seconds first (months start on one).
        month = "CAST(strftime('%Y%m', substr(recorded_at, 1, 19), '+8 hours') AS INTEGER)"
    values = {
        "period": "''",
        **{
            dimension: f"COALESCE(CAST({column} AS VARCHAR(20)), '')"
            for dimension, column in ROLLUP_COLUMNS.items()
        },
    }
    for dimension, value in values.items():
        by_value = "" if value == "''" else f", {value}"  # PostgreSQL: no constant
        op.execute(f"""
            INSERT INTO ledger_rollup (dimension, effective_year, effective_month,
                recorded_month, dimension_value, contract_count, total_amount_fen,
                technology_amount_fen)
            SELECT '{dimension}', effective_year, effective_month, {month}, {value},
                   SUM(delta_count), SUM(delta_total_fen), SUM(delta_technology_fen)
            FROM ledger_entries
            GROUP BY effective_year, effective_month, {month}{by_value}""")  # noqa: S608


def downgrade() -> None:
    op.drop_table("ledger_rollup")
