"""Choosing an engine from settings (MARKET_SEARCH_BACKEND)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from search.backend import SearchBackend
from search.documents import DEFAULT_VECTOR_DIMENSIONS
from search.local import LocalSearchEngine
from search.meili import MeilisearchEngine

BackendName = Literal["local", "meilisearch"]


def create_search_engine(
    backend: BackendName,
    *,
    meili_url: str | None = None,
    meili_api_key: str | None = None,
    index_prefix: str = "market",
    local_path: str | Path = ":memory:",
    vector_dimensions: int = DEFAULT_VECTOR_DIMENSIONS,
) -> SearchBackend:
    """The configured engine; call `ensure_indexes()` on it once at startup.
    `vector_dimensions`: those of the embedder whose vectors the documents carry."""
    if backend == "meilisearch":
        if not meili_url:
            raise ValueError("the meilisearch search backend needs a URL (MARKET_MEILI_URL)")
        return MeilisearchEngine(
            meili_url,
            meili_api_key,
            index_prefix=index_prefix,
            vector_dimensions=vector_dimensions,
        )
    if backend == "local":
        return LocalSearchEngine(local_path, vector_dimensions=vector_dimensions)
    raise ValueError(f"unknown search backend {backend!r}; expected 'local' or 'meilisearch'")
