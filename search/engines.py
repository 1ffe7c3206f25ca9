"""Choosing an engine from settings (MARKET_SEARCH_BACKEND)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from search.backend import SearchBackend
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
) -> SearchBackend:
    """The configured engine; call `ensure_indexes()` on it once at startup."""
    if backend == "meilisearch":
        if not meili_url:
            raise ValueError("the meilisearch search backend needs a URL (MARKET_MEILI_URL)")
        return MeilisearchEngine(meili_url, meili_api_key, index_prefix=index_prefix)
    if backend == "local":
        return LocalSearchEngine(local_path)
    raise ValueError(f"unknown search backend {backend!r}; expected 'local' or 'meilisearch'")
