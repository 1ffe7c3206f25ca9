"""Database engine and the request-scoped session.

One transaction per request: `get_session` commits after the handler returns and
rolls back if it raised. Services flush when they need ids but never commit, so a
request's writes (including its outbox rows and audit events) land together or not
at all. Background workers open their own unit of work with `session_scope`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import ARRAY, Integer, any_, event, literal
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

# Every constraint gets a predictable name, so that a migration can drop or alter it by
# name on both databases (PostgreSQL would otherwise pick its own, SQLite none at all).
# Set here because every models module imports this one before it defines a table: a
# convention applies to the tables defined after it. Check constraints have none: each
# is named in its model (a "%(constraint_name)s" convention would rename those).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",  # SQLAlchemy's default, which the indexes already use
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp in the database is UTC."""
    return datetime.now(UTC)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked; WAL lets readers run beside the writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def one_of(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """`column IN (ids)` for a large id set; on PostgreSQL `column = ANY(:ids)` with one
    array parameter: psycopg parses every placeholder of an IN list, which adds up for a
    worker's batch (docs/PERFORMANCE.md, "Figures behind the code's comments"). SQLite
    has no arrays."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work outside a request (CLI, workers): commit on success."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.engine) as session:
        yield session


# scope="function" runs the commit right after the handler, before the response is
# sent: a client never sees 2xx for a write that then failed to commit.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
