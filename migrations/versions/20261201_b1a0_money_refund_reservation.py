"""money: refund reservation

`payments.refund_reserved_fen`: the part of a payment that refunds in flight or pending
at Stripe hold. A refund reserves its amount with one compare-and-set UPDATE before
Stripe is called, so parallel refunds can never together exceed what was received
(docs/PAYMENTS.md). Existing pending refunds are reserved here.

Revision ID: b1a0
Revises: 0006
Created: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b1a0"
down_revision: str | Sequence[str] | None = "a1auth01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column("refund_reserved_fen", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE payments SET refund_reserved_fen = COALESCE((SELECT SUM(refunds.amount_fen) "
        "FROM refunds WHERE refunds.payment_id = payments.id "
        "AND refunds.status = 'pending'), 0)"
    )


def downgrade() -> None:
    # SQLite has ALTER TABLE DROP COLUMN since 3.35; a batch copy would lose the partial
    # unique index on live payments.
    op.drop_column("payments", "refund_reserved_fen")
