"""Fixtures for search over the API: the app's engine per test, the worker, listings.

`search_engine` is a fresh engine per test, set as the session app's engine (the shared
`client` fixture serves it) and put back afterwards. `any_search_engine` runs a test on
the local engine and on a real Meilisearch (skipped without the binary, a failure with
MARKET_TEST_REQUIRE_MEILI=1, as in tests/search).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.discovery import indexing
from market.discovery.engine import set_app_search_engine
from search.backend import SearchBackend
from search.local import LocalSearchEngine
from search.meili import MeilisearchEngine
from tests.support.catalogue import Catalogue
from tests.support.factories import Market
from tests.support.indexing import TEST_POLICY
from tests.support.meili_server import MeilisearchServer, meilisearch_server

__all__ = ["meilisearch_server"]


def meili_engine(server: MeilisearchServer) -> MeilisearchEngine:
    engine = MeilisearchEngine(
        server.url, server.master_key, index_prefix=f"test_{uuid.uuid4().hex[:12]}"
    )
    engine.ensure_indexes()
    return engine


def _engine_for(request: pytest.FixtureRequest, name: str) -> Iterator[SearchBackend]:
    if name == "local":
        local = LocalSearchEngine()
        local.ensure_indexes()
        yield local
        local.close()
        return
    meili = meili_engine(request.getfixturevalue("meilisearch_server"))
    yield meili
    meili.drop_indexes()


@pytest.fixture(params=["local", "meili"])
def any_search_engine(request: pytest.FixtureRequest) -> Iterator[SearchBackend]:
    yield from _engine_for(request, request.param)


@pytest.fixture
def local_search_engine(request: pytest.FixtureRequest) -> Iterator[SearchBackend]:
    yield from _engine_for(request, "local")


@pytest.fixture
def search_engine(request: pytest.FixtureRequest) -> SearchBackend:
    """The engine under test: both kinds where a test asks for `any_search_engine`."""
    name = (
        "any_search_engine"
        if "any_search_engine" in request.fixturenames
        else ("local_search_engine")
    )
    engine: SearchBackend = request.getfixturevalue(name)
    return engine


@pytest.fixture
def api(client: TestClient, search_engine: SearchBackend) -> Iterator[TestClient]:
    """The shared test client, its app searching `search_engine`."""
    set_app_search_engine(client.app, search_engine)  # type: ignore[arg-type]
    yield client
    set_app_search_engine(client.app, None)  # type: ignore[arg-type]


@pytest.fixture
def catalogue(client: TestClient, market: Market, engine: Engine) -> Catalogue:
    return Catalogue(client, market, engine)


@pytest.fixture
def indexer(engine: Engine, search_engine: SearchBackend) -> indexing.Indexer:
    return indexing.Indexer(engine, search_engine, TEST_POLICY)
