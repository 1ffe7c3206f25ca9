"""The engine's transaction rules: savepoints behave as on PostgreSQL, read-only units
of work never take SQLite's write lock, writing ones take it before their first read."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from market.common.idempotency import IdempotencyKey
from market.db import session_scope, writes_late


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(text("SELECT key FROM idempotency_keys ORDER BY key")).scalars()
        )


def _key(name: str) -> IdempotencyKey:
    return IdempotencyKey(scope="test", key=name, request_hash="0" * 64)


def test_a_savepoint_rolled_back_after_a_write_keeps_the_earlier_write(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(_key("earlier"))
        session.flush()
        with pytest.raises(IntegrityError), session.begin_nested():
            session.add(_key("inside"))
            session.add(_key("earlier"))  # the unique (scope, key) refuses it
    assert _keys(engine) == ["earlier"]


def test_a_savepoint_opened_first_is_undone_with_its_transaction(engine: Engine) -> None:
    # With pysqlite's own BEGIN handling a SAVEPOINT that opened the transaction was
    # committed by its RELEASE, so the outer rollback did not undo it.
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        with session.begin_nested():
            session.add(_key("claimed-first"))
        raise RuntimeError("the request fails after its savepoint")
    assert _keys(engine) == []


def test_a_reader_does_not_wait_for_a_writer_and_a_writer_waits_for_the_lock(
    engine: Engine,
) -> None:
    writer_started, writer_may_finish = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with session_scope(engine) as session:
            session.add(_key("first-writer"))
            session.flush()
            writer_started.set()
            writer_may_finish.wait(10)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert writer_started.wait(10)
    try:
        began = time.monotonic()
        with session_scope(engine, writes=False) as reader:
            assert reader.execute(text("SELECT count(*) FROM idempotency_keys")).scalar_one() == 0
        assert time.monotonic() - began < 1
    finally:
        writer_may_finish.set()
    thread.join(10)
    with session_scope(engine) as second_writer:
        count = second_writer.execute(text("SELECT count(*) FROM idempotency_keys")).scalar_one()
        second_writer.add(_key(f"after-{count}"))
    assert _keys(engine) == ["after-1", "first-writer"]


def test_a_unit_of_work_that_writes_late_holds_no_lock_while_it_reads(engine: Engine) -> None:
    with Session(writes_late(engine), expire_on_commit=False) as late:
        assert late.execute(text("SELECT count(*) FROM idempotency_keys")).scalar_one() == 0
        with session_scope(engine) as meanwhile:  # would wait 5 s behind BEGIN IMMEDIATE
            meanwhile.add(_key("meanwhile"))
        late.add(_key("late"))  # and no stale-snapshot error for its own write
        late.commit()
    assert _keys(engine) == ["late", "meanwhile"]
