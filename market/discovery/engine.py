"""One search engine per application and one embedder per process, built from settings.

The API, the in-process worker and the CLI all get their engine from
`search_engine_from_settings`; inside a request, `get_search_engine(request)` returns
the app's shared engine (`app.state.search_engine`). Both engines are safe to share
between threads (the Meilisearch engine keeps one client per thread, the local one
serialises on a lock). The app opens the engine's async search session for its event
loop at start-up and closes it at shutdown (`market.discovery.router.install`).

The embedder (MARKET_EMBEDDER) is `embedder_from_settings(settings)`: one per process
and configuration, created at first use (creating it loads nothing: the in-process
model loads at its first embedding), shared by the worker and the request handlers
(`app_embedder(app)`). None when switched off: everything semantic is skipped.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from market.config import Settings
from search.backend import SearchBackend, SearchError
from search.embedding import Embedder, make_embedder
from search.engines import create_search_engine

logger = logging.getLogger("market.discovery")
_creation_lock = threading.Lock()
_embedder_lock = threading.Lock()
# Keyed by the settings that make an embedder: a test app with other settings in the
# same process gets its own.
_embedders: dict[tuple[object, ...], Embedder | None] = {}


def search_engine_from_settings(settings: Settings) -> SearchBackend:
    """A new engine as configured (MARKET_SEARCH_BACKEND); indexes not yet ensured."""
    dimensions = vector_dimensions(settings)
    if settings.search_backend == "local":
        path = settings.effective_search_local_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return create_search_engine("local", local_path=path, vector_dimensions=dimensions)
    return create_search_engine(
        "meilisearch",
        meili_url=settings.meili_url,
        meili_api_key=settings.meili_master_key or None,
        index_prefix=settings.meili_index_prefix,
        vector_dimensions=dimensions,
    )


def vector_dimensions(settings: Settings) -> int:
    """The engine's vector size: the embedder's (e5-small: 384). Without an embedder the
    documents carry no vectors, and MARKET_EMBEDDING_DIMENSIONS keeps the engine's
    settings what they will be once one is switched on."""
    embedder = embedder_from_settings(settings)
    return embedder.dimensions if embedder else settings.embedding_dimensions


def app_search_engine(app: FastAPI) -> SearchBackend:
    """The app's engine, created on first use (an app never started still searches)."""
    engine: SearchBackend | None = getattr(app.state, "search_engine", None)
    if engine is not None:
        return engine
    with _creation_lock:
        engine = getattr(app.state, "search_engine", None)
        if engine is None:
            engine = search_engine_from_settings(app.state.settings)
            app.state.search_engine = engine
    return engine


def set_app_search_engine(app: FastAPI, engine: SearchBackend | None) -> None:
    """Use this engine for the app (tests, embedding); None: build from settings again."""
    app.state.search_engine = engine


def ensure_indexes_quietly(engine: SearchBackend) -> bool:
    """Create/configure the indexes; an unreachable engine must not stop the API.

    The catalogue keeps working without search, and the worker retries indexing, so a
    Meilisearch that is down at start-up is logged, not fatal. True when it worked.
    """
    try:
        engine.ensure_indexes()
    except SearchError as error:
        logger.warning("search indexes not ensured (searches will answer 503): %s", error)
        return False
    return True


async def get_search_engine(request: Request) -> SearchBackend:
    """FastAPI dependency: the app's search engine.

    `async` because it never blocks (the engine is created once, with no I/O): a sync
    dependency would cost every search a hop to the thread pool and back."""
    return app_search_engine(request.app)


SearchEngine = Annotated[SearchBackend, Depends(get_search_engine)]


def embedder_from_settings(settings: Settings) -> Embedder | None:
    """The process's embedder for these settings; None with MARKET_EMBEDDER=none."""
    key = (
        settings.embedder,
        settings.embedding_url,
        settings.embedding_model,
        settings.embedding_dimensions,
        settings.embedding_api_key,
        settings.embedding_threads,
        settings.embedding_timeout_seconds,
        settings.embedding_batch_size,
    )
    with _embedder_lock:
        if key not in _embedders:
            _embedders[key] = make_embedder(settings)
        return _embedders[key]


def app_embedder(app: FastAPI) -> Embedder | None:
    """The app's embedder: the one set for it (tests), else the process's for its settings."""
    embedder: Embedder | None = getattr(app.state, "embedder", None)
    if embedder is not None:
        return embedder
    return embedder_from_settings(app.state.settings)


def set_app_embedder(app: FastAPI, embedder: Embedder | None) -> None:
    """Use this embedder for the app (tests); None: the one of its settings again."""
    app.state.embedder = embedder
