"""outbox open rows index

A partial index on the outbox rows still to do, by topic and id: the worker's claim
(oldest open rows of a topic, one batch) walks it in order and stops after the batch,
where it read every open row and sorted them before (docs/PERFORMANCE.md).

Revision ID: 0006
Revises: 0005
Created: 2026-11-22 05:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("processed_at IS NULL AND failed_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_open_by_topic",
        "outbox_events",
        ["topic", "id"],
        unique=False,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_outbox_open_by_topic",
        table_name="outbox_events",
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
