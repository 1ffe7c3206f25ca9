"""matching

Stored matches (one per demand, result and viewing organisation) with their feedback,
saved searches, and the notification inbox that saved searches fill.

Revision ID: 0003
Revises: 0002
Created: 2026-11-22 01:55:20.660395
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("catalogue", sa.String(length=10), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("q", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("saved_searches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saved_searches_catalogue"), ["catalogue"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_saved_searches_user_id"), ["user_id"], unique=False)

    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("demand_id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("shown_from", sa.String(length=10), nullable=False),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("engine_score", sa.Float(), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("shown_to_user_id", sa.Integer(), nullable=False),
        sa.Column("shown_to_organization_id", sa.Integer(), nullable=False),
        sa.Column("times_shown", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_shown_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("useful", sa.Boolean(), nullable=True),
        sa.Column("feedback_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("feedback_user_id", sa.Integer(), nullable=True),
        sa.Column("feedback_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["demand_id"], ["demands.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["feedback_user_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["result_id"], ["results.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["shown_to_organization_id"],
            ["organizations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shown_to_user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "demand_id", "result_id", "shown_to_organization_id", name="uq_matches_pair_viewer"
        ),
    )
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matches_demand_id"), ["demand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_matches_field"), ["field"], unique=False)
        batch_op.create_index(batch_op.f("ix_matches_result_id"), ["result_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_matches_shown_to_organization_id"),
            ["shown_to_organization_id"],
            unique=False,
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("saved_search_id", sa.Integer(), nullable=True),
        sa.Column("listing_kind", sa.String(length=10), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("read_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["saved_search_id"], ["saved_searches.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "saved_search_id", "listing_kind", "listing_id", name="uq_notifications_search_listing"
        ),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_inbox", ["user_id", "read_at", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_inbox")

    op.drop_table("notifications")
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matches_shown_to_organization_id"))
        batch_op.drop_index(batch_op.f("ix_matches_result_id"))
        batch_op.drop_index(batch_op.f("ix_matches_field"))
        batch_op.drop_index(batch_op.f("ix_matches_demand_id"))

    op.drop_table("matches")
    with op.batch_alter_table("saved_searches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_searches_user_id"))
        batch_op.drop_index(batch_op.f("ix_saved_searches_catalogue"))

    op.drop_table("saved_searches")
