"""A fresh, migrated database for one test run, and wiping it between tests.

SQLite by default (a file in the run's temporary folder). With
MARKET_TEST_DATABASE_URL pointing at a PostgreSQL server (any database on it, e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), a new database with a random
name is created for the run and dropped afterwards, so runs never share state.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from market import migrate
from market.db import make_engine
from market.models import metadata

POSTGRES_URL_VARIABLE = "MARKET_TEST_DATABASE_URL"


def postgres_server_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@contextmanager
def migrated_database(workdir: Path) -> Iterator[Engine]:
    server_url = postgres_server_url()
    if server_url is None:
        url = f"sqlite:///{workdir / 'test.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    with _fresh_postgres_database(server_url) as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@contextmanager
def _fresh_postgres_database(server_url: str) -> Iterator[str]:
    name = f"market_test_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wipe(engine: Engine) -> None:
    """Delete every row (the schema stays): each test starts from empty tables.

    DELETE in reverse dependency order rather than TRUNCATE: on tables this small
    PostgreSQL's TRUNCATE costs far more (it rewrites every table's files) than it saves.
    """
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
