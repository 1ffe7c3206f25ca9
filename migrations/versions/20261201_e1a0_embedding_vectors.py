"""embedding vectors

Embedding vectors by content hash (sha256 of model, encoding and text), shared by
every listing with the same text; see docs/SEARCH.md, "Embeddings".

Revision ID: e1a0
Revises: 0006
Created: 2026-12-01 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e1a0"
down_revision: str | Sequence[str] | None = "b1a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "embedding_vectors",
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("content_hash"),
    )
    op.create_index("ix_embedding_vectors_model", "embedding_vectors", ["model"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_embedding_vectors_model", table_name="embedding_vectors")
    op.drop_table("embedding_vectors")
