"""Tables of the discovery domain: the embedding vectors, stored by content hash."""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary, String
from sqlmodel import Field, SQLModel


class EmbeddingVector(SQLModel, table=True):
    """One embedded text, named by `search.embedding.content_hash` (model + encoding +
    text), so listings with the same text share a row and a change that leaves the text
    alone (status, price, expiry) finds its vector already here. Rows are never updated:
    the same hash always means the same vector. `model` lets an operator drop the rows
    of a model no longer in use.
    """

    __tablename__ = "embedding_vectors"
    __table_args__ = (Index("ix_embedding_vectors_model", "model"),)

    content_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    model: str = Field(sa_type=String(100))
    dimensions: int
    # float32, little-endian, `dimensions` values: 1.5 KB for e5-small's 384
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
