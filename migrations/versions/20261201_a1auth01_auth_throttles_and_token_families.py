"""auth throttles and token families

Login throttling moves from a log of attempts (counted, then recorded, in two steps
that parallel logins slipped between) to one counter row per throttle key, updated by
an atomic upsert. Refresh tokens get a family row that revocation marks, so a token
issued by a redemption racing the revocation is revoked with its family; the tokens'
own revoked_at goes (a revocation was always of whole families).

Revision ID: a1auth01
Revises: 0006
Created: 2026-12-01 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "a1auth01"
down_revision: str | Sequence[str] | None = "c1a1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "refresh_token_families",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("refresh_token_families", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_token_families_user_id"), ["user_id"], unique=False
        )
    # A family is revoked if any of its tokens was (MAX skips the NULLs).
    op.execute(
        "INSERT INTO refresh_token_families (id, user_id, created_at, revoked_at) "
        "SELECT family_id, MIN(user_id), MIN(issued_at), MAX(revoked_at) "
        "FROM refresh_tokens GROUP BY family_id"
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")

    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempts_email"))
        batch_op.drop_index(batch_op.f("ix_login_attempts_client_address"))
        batch_op.drop_index(batch_op.f("ix_login_attempts_attempted_at"))
    op.drop_table("login_attempts")


def downgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("client_address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("attempted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_attempts_attempted_at"), ["attempted_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_login_attempts_client_address"), ["client_address"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_login_attempts_email"), ["email"], unique=False)

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    op.execute(
        "UPDATE refresh_tokens SET revoked_at = (SELECT f.revoked_at FROM refresh_token_families f "
        "WHERE f.id = refresh_tokens.family_id)"
    )
    with op.batch_alter_table("refresh_token_families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_token_families_user_id"))
    op.drop_table("refresh_token_families")
    op.drop_table("login_throttles")
