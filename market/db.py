"""Database engine and the request-scoped session.

One transaction per request: `get_session` commits after the handler returns and
rolls back if it raised. Services flush when they need ids but never commit, so a
request's writes (including its outbox rows and audit events) land together or not
at all. Background workers open their own unit of work with `session_scope`.

SQLite follows SQLAlchemy's pysqlite recipe: the driver issues no BEGIN of its own
(it would start the transaction only at the first write, so a savepoint opened before
it was a transaction of its own that RELEASE committed); we emit BEGIN when the
connection's transaction starts, so `begin_nested()` is a real savepoint as on
PostgreSQL. A unit of work that may write starts with BEGIN IMMEDIATE: it takes
SQLite's one write lock up front (waiting up to busy_timeout for it), because a
deferred transaction that read first and then wants to write fails at once with
SQLITE_BUSY_SNAPSHOT when another writer committed in between. A read-only unit of
work starts with plain BEGIN: in WAL mode it never waits. GET requests and the outbox
worker's batches read without a transaction and begin (IMMEDIATE) at their first write
(`writes_late`). The write lock only orders writers; every state transition is still
a compare-and-set that holds on PostgreSQL too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import ARRAY, Integer, Table, any_, event, inspect, literal
from sqlalchemy.engine import Connection, Engine
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


# Execution option read by the SQLite listeners below; other databases ignore it.
SQLITE_BEGIN_OPTION = "market_sqlite_begin"
BEGIN_IMMEDIATE = "immediate"  # the default: a unit of work that may write
BEGIN_DEFERRED = "deferred"  # read-only
BEGIN_AT_FIRST_WRITE = "at_first_write"  # see writes_late
# What opens a writes_late transaction (the code issues no `WITH ... INSERT`).
WRITE_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT")
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        event.listen(engine, "before_cursor_execute", _begin_before_first_write)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def read_only(engine: Engine) -> Engine:
    """The same engine and pool, whose transactions are marked read-only (plain BEGIN
    on SQLite instead of BEGIN IMMEDIATE; no change on PostgreSQL)."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: BEGIN_DEFERRED})


def writes_late(engine: Engine) -> Engine:
    """The same engine and pool, for a unit of work that reads, then waits on something
    else (the outbox worker sends to the search engine, with several batches open at
    once), then writes: on SQLite its reads run outside a transaction and BEGIN
    IMMEDIATE comes just before its first write, so it holds the write lock only while
    writing (a savepoint counts as a write). Its reads are therefore not one snapshot.
    No change on PostgreSQL."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: BEGIN_AT_FIRST_WRITE})


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver: we open every transaction ourselves (_begin_sqlite_transaction).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked; WAL lets readers run beside the writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, BEGIN_IMMEDIATE)
    if mode == BEGIN_IMMEDIATE:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif mode == BEGIN_DEFERRED:
        connection.exec_driver_sql("BEGIN")
    # BEGIN_AT_FIRST_WRITE: _begin_before_first_write opens it.


def _begin_before_first_write(
    connection: Connection, cursor: Any, statement: str, *_: Any
) -> None:
    if connection.get_execution_options().get(SQLITE_BEGIN_OPTION) != BEGIN_AT_FIRST_WRITE:
        return
    # A SQLite-only hook, so the DB-API connection is sqlite3's, which has in_transaction
    # (the generic DB-API protocol SQLAlchemy types it with has not).
    if connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        return
    if statement.lstrip().upper().startswith(WRITE_STATEMENTS):
        cursor.execute("BEGIN IMMEDIATE")


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


def table_of(model: type[SQLModel]) -> Table:
    """The Table of a table model, typed (SQLModel sets `__table__` without declaring it)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


@contextmanager
def session_scope(engine: Engine, *, writes: bool = True) -> Iterator[Session]:
    """A unit of work (a request, a CLI command, a worker step): commit on success.

    `writes=False` marks it read-only, so on SQLite it neither takes nor waits for the
    write lock. The connection is checked out at the first query, not here.
    """
    bind = engine if writes else read_only(engine)
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_session(request: Request) -> Iterator[Session]:
    engine = request.app.state.engine
    # A GET reads, but a few record what they showed (matching's shown matches): on
    # SQLite such a write then takes the lock when it comes, instead of failing on a
    # read snapshot that another writer has moved past.
    bind = writes_late(engine) if request.method in READ_ONLY_METHODS else engine
    with session_scope(bind) as session:
        yield session


# scope="function" runs the commit right after the handler, before the response is
# sent: a client never sees 2xx for a write that then failed to commit.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
