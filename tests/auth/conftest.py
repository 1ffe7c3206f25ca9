"""Every auth test runs against an app whose pool has ONE connection (and a short
wait for it): a request path that holds a connection while opening a second one
cannot pass here, whatever the test is about."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.app import create_app
from market.config import Settings
from tests.auth.support import small_pool_engine


@pytest.fixture(scope="session")
def one_connection_engine(engine: Engine) -> Iterator[Engine]:
    with small_pool_engine(engine, size=1, timeout=2) as small:
        yield small


@pytest.fixture(scope="session")
def client(settings: Settings, one_connection_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, one_connection_engine)) as test_client:
        yield test_client
