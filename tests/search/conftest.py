"""Fixtures for the search contract suite: every test runs on both engines.

The fixture is `search_engine`, not `engine`: tests/conftest.py already names the
database engine `engine`, and its autouse cleanup wipes whatever `engine` resolves to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from search.backend import SearchBackend
from search.local import LocalSearchEngine
from search.meili import MeilisearchEngine
from tests.support.meili_server import MeilisearchServer, meilisearch_server

__all__ = ["meilisearch_server"]

ENGINE_NAMES = ["local", "meili"]


def unique_index_prefix() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=ENGINE_NAMES)
def search_engine(request: pytest.FixtureRequest) -> Iterator[SearchBackend]:
    """An empty engine with both catalogues created, of each kind in turn."""
    if request.param == "local":
        local = LocalSearchEngine()
        local.ensure_indexes()
        yield local
        local.close()
        return
    server: MeilisearchServer = request.getfixturevalue("meilisearch_server")
    meili = MeilisearchEngine(server.url, server.master_key, index_prefix=unique_index_prefix())
    meili.ensure_indexes()
    yield meili
    meili.drop_indexes()


@pytest.fixture
def engine_name(search_engine: SearchBackend) -> str:
    return "meili" if isinstance(search_engine, MeilisearchEngine) else "local"


@pytest.fixture
def meili_only(engine_name: str) -> None:
    """For the few tests about Meilisearch itself (its settings, its tasks)."""
    if engine_name != "meili":
        pytest.skip("Meilisearch-specific")
