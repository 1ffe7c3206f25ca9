"""Fixtures every test folder shares: a migrated database, the app and the cast.

The database is SQLite unless MARKET_TEST_DATABASE_URL names a PostgreSQL server
(see tests/support/database.py); CI runs the whole suite once on each. Tests marked
`postgres` need PostgreSQL's concurrency and skip on SQLite, unless
MARKET_TEST_REQUIRE_POSTGRES=1, which turns a missing server into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.app import create_app
from market.config import Settings
from tests.support.database import migrated_database, postgres_server_url, wipe
from tests.support.factories import Market
from tests.support.journey import Cast, make_cast
from tests.support.settings import make_test_settings

pytest_plugins = ["tests.support.stripe_fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if postgres_server_url():
        return
    if os.environ.get("MARKET_TEST_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(
            "MARKET_TEST_REQUIRE_POSTGRES=1 but MARKET_TEST_DATABASE_URL is not set"
        )
    skip = pytest.mark.skip(reason="needs PostgreSQL: set MARKET_TEST_DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with migrated_database(tmp_path_factory.mktemp("db")) as engine:
        yield engine


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" in request.fixturenames:
        wipe(request.getfixturevalue("engine"))


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_test_settings(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def market(engine: Engine, settings: Settings) -> Market:
    return Market(engine, settings)


@pytest.fixture
def cast(market: Market) -> Cast:
    """The accounts of a deal's journey (tests/support/journey.py)."""
    return make_cast(market)
