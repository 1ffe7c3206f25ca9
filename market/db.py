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

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, TypeVar
from weakref import WeakKeyDictionary

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import ARRAY, Integer, Table, any_, event, inspect, literal
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from market.errors import ServiceUnavailable

T = TypeVar("T")

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
        # SQLite connections are cheap, and a request waiting for the writer's turn holds
        # one: more of them than request threads (40), so no request waits for the pool.
        in_memory = make_url(url).database in (None, "", ":memory:")  # one connection
        pool = {} if in_memory else {"pool_size": 10, "max_overflow": SQLITE_POOL - 10}
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False}, **pool)
        turnstile = _WriterTurnstile()
        _REQUEST_GATES[engine.pool] = _RequestGates(SQLITE_POOL - POOL_RESERVE, one_writer=True)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", partial(_begin_sqlite_transaction, turnstile))
        event.listen(engine, "before_cursor_execute", partial(_begin_before_first_write, turnstile))
        for ending in ("commit", "rollback"):
            event.listen(engine, ending, turnstile.leave)
        event.listen(engine.pool, "checkin", turnstile.leave_on_checkin)
        return engine
    engine = create_engine(
        url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=POSTGRES_POOL - 10
    )
    _REQUEST_GATES[engine.pool] = _RequestGates(POSTGRES_POOL - POOL_RESERVE, one_writer=False)
    return engine


# Connections per process. A request's units of work take at most POOL - RESERVE of
# them (`request_turn`), so the worker and the health check always find one.
POSTGRES_POOL = 30
SQLITE_POOL = 60  # SQLite connections are cheap; more of them than request threads (40)
POOL_RESERVE = 5


class _WriterTurnstile:
    """SQLite has one writer at a time. Left to SQLite, the writers in line poll its
    lock (busy_timeout) and compete for the CPU and the GIL with the one that holds it,
    which a burst of writes slows to a crawl ("database is locked" after the timeout).
    Here the writers of this process queue on a lock of ours, asleep, before they ask
    SQLite; SQLite's own lock still orders writers of other processes. A plain lock,
    not a reentrant one: a request's transaction may begin in one thread and commit in
    another (FastAPI runs a dependency's teardown in a thread of its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def enter(self, connection: Connection) -> None:
        if not self._lock.acquire(timeout=SQLITE_WRITE_WAIT_SECONDS):
            raise ServiceUnavailable(
                "The database is busy with other writes; try again shortly",
                code="database_busy",
                headers={"Retry-After": "5"},
            )
        connection.connection.info[_HOLDS_TURN] = True

    def leave(self, connection: Connection) -> None:
        self._release(connection.connection.info)

    def leave_on_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        self._release(record.info)

    def _release(self, info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_TURN, False):
            self._lock.release()


_HOLDS_TURN = "market_sqlite_writer_turn"


class _RequestGates:
    """Where a request's units of work wait for their turn: on the event loop, holding
    no thread (see `request_turn`). One pair per event loop (tests run several)."""

    def __init__(self, connections: int, *, one_writer: bool) -> None:
        self._connections = connections
        self._one_writer = one_writer
        self._by_loop: WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, asyncio.Lock | None]
        ] = WeakKeyDictionary()

    def of_running_loop(self) -> tuple[asyncio.Semaphore, asyncio.Lock | None]:
        loop = asyncio.get_running_loop()
        if loop not in self._by_loop:
            writer = asyncio.Lock() if self._one_writer else None
            self._by_loop[loop] = (asyncio.Semaphore(self._connections), writer)
        return self._by_loop[loop]


_REQUEST_GATES: WeakKeyDictionary[Any, _RequestGates] = WeakKeyDictionary()  # by pool


@asynccontextmanager
async def request_turn(engine: Engine, *, writes: bool) -> AsyncIterator[None]:
    """Wait on the event loop, not in a request thread, until a unit of work of a
    request may use the database: while fewer units than the pool holds are running,
    and on SQLite, for a unit that writes, while no other such unit is.

    Why: a request's unit of work runs in several threads one after the other
    (dependencies, handler, the commit in the dependency's teardown), each taken in turn
    from one shared pool of 40. Were a burst of requests to wait for a connection, a row
    lock or SQLite's single writer inside those threads, the pool would fill with waiters
    while the unit they wait for waits for a thread to commit in: all stuck until a
    timeout. Queued here they hold no thread. The worker and the commands, which never
    change threads in a transaction, do not queue here (the reserve of the pool, and on
    SQLite the writer turnstile, are theirs too)."""
    gates = _REQUEST_GATES.get(engine.pool)
    if gates is None:  # an engine not made by make_engine
        yield
        return
    connections, writer = gates.of_running_loop()
    async with connections:
        if writes and writer is not None:
            async with writer:
                yield
        else:
            yield


async def run_unit(engine: Engine, unit: Callable[..., T], *args: Any, writes: bool = True) -> T:
    """Run a request's unit of work (a function that opens its own session_scope) in a
    request thread once it is its turn (`request_turn`)."""
    async with request_turn(engine, writes=writes):
        return await run_in_threadpool(unit, *args)


# How long a writer waits for its turn, in our queue and in SQLite's (busy_timeout): as
# long as for a pooled connection, so a burst queues instead of failing.
SQLITE_WRITE_WAIT_SECONDS = 30


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
    # Writers of other processes take turns here (ours in _WriterTurnstile first).
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_WRITE_WAIT_SECONDS * 1000}")
    cursor.close()


def _begin_sqlite_transaction(turnstile: _WriterTurnstile, connection: Connection) -> None:
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        # An autocommit block (a migration's PRAGMA foreign_keys, which SQLite ignores
        # inside a transaction): SQLAlchemy still "begins", but nothing must be opened.
        return
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, BEGIN_IMMEDIATE)
    if mode == BEGIN_IMMEDIATE:
        turnstile.enter(connection)
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif mode == BEGIN_DEFERRED:
        connection.exec_driver_sql("BEGIN")
    # BEGIN_AT_FIRST_WRITE: _begin_before_first_write opens it.


def _begin_before_first_write(
    turnstile: _WriterTurnstile, connection: Connection, cursor: Any, statement: str, *_: Any
) -> None:
    if connection.get_execution_options().get(SQLITE_BEGIN_OPTION) != BEGIN_AT_FIRST_WRITE:
        return
    # A SQLite-only hook, so the DB-API connection is sqlite3's, which has in_transaction
    # (the generic DB-API protocol SQLAlchemy types it with has not).
    if connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        return
    if statement.lstrip().upper().startswith(WRITE_STATEMENTS):
        turnstile.enter(connection)
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


async def _turn_of_request(request: Request) -> AsyncIterator[None]:
    writes = request.method not in READ_ONLY_METHODS
    async with request_turn(request.app.state.engine, writes=writes):
        yield  # released after get_session's commit: dependencies close in reverse


def get_session(
    request: Request,
    _turn: Annotated[None, Depends(_turn_of_request, scope="function")],
) -> Iterator[Session]:
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
