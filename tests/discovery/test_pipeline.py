"""The pipelined outbox worker: batches are claimed, built and sent ahead while the
engine indexes earlier ones, yet every row is settled only after the engine confirmed
its write, in claim order, exactly once, and a crash mid-pipeline loses nothing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from market.db import session_scope, utcnow
from market.discovery import indexing
from market.listings.models import ListingStatus, Result
from market.matching.models import Notification, SavedSearch
from market.outbox.models import OutboxEvent
from search.backend import Document, PendingWrite, SearchError, async_writes
from search.documents import Catalogue as CatalogueName
from search.local import LocalSearchEngine
from tests.support.factories import Market
from tests.support.indexing import (
    database_view,
    drain_with_two_workers,
    index_view,
    processed_count,
    seed_results,
    unsettled_count,
)

POLICY = indexing.OutboxPolicy(
    batch_size=10,
    max_attempts=5,
    backoff_base_seconds=0.001,
    backoff_max_seconds=0.01,
    pipeline_depth=3,
)


class DeferredEngine:
    """An asynchronous engine: writes are queued at submit and applied, in submit order,
    only when waited for (as Meilisearch applies its task queue). Hooks let a test fail
    or crash a given write, or look at the database while a write is outstanding."""

    def __init__(self) -> None:
        self.inner = LocalSearchEngine()
        self.inner.ensure_indexes()
        self._queue: list[tuple[int, CatalogueName, str, list[object]]] = []
        self._next_task = 0
        self._lock = threading.RLock()
        self.written: Counter[str] = Counter()
        self.submitted_ids: list[list[str]] = []
        self.max_outstanding = 0
        self.fail_task: dict[int, BaseException] = {}
        self.on_submit: Callable[[int, list[str]], None] | None = None
        self.on_wait: Callable[[int, list[str]], None] | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def ensure_indexes(self) -> None:
        return None

    def upsert(self, catalogue: CatalogueName, documents: Iterable[Document]) -> None:
        self.wait([self.upsert_async(catalogue, documents)])

    def delete(self, catalogue: CatalogueName, ids: Iterable[str]) -> None:
        self.wait([self.delete_async(catalogue, ids)])

    def upsert_async(self, catalogue: CatalogueName, documents: Iterable[Document]) -> PendingWrite:
        return self._submit(catalogue, "upsert", list(documents))

    def delete_async(self, catalogue: CatalogueName, ids: Iterable[str]) -> PendingWrite:
        return self._submit(catalogue, "delete", list(ids))

    def wait(self, writes: Iterable[PendingWrite]) -> None:
        for write in writes:
            for task in write.task_ids:
                self._apply_through(task)

    def _submit(self, catalogue: CatalogueName, kind: str, items: list[object]) -> PendingWrite:
        with self._lock:
            task = self._next_task
            self._next_task += 1
            self._queue.append((task, catalogue, kind, items))
            self.max_outstanding = max(self.max_outstanding, len(self._queue))
            ids = [_id_of(item) for item in items]
            self.submitted_ids.append(ids)
        if self.on_submit is not None:
            self.on_submit(task, ids)
        return PendingWrite(catalogue, (task,))

    def _apply_through(self, task: int) -> None:
        """Apply queued writes in order up to `task` (the engine works through its queue)."""
        with self._lock:
            while self._queue and self._queue[0][0] <= task:
                number, catalogue, kind, items = self._queue.pop(0)
                ids = [_id_of(item) for item in items]
                if self.on_wait is not None:
                    self.on_wait(number, ids)
                failure = self.fail_task.pop(number, None)
                if isinstance(failure, SearchError):
                    if number == task:
                        raise failure
                    continue  # a failed task of another batch: that batch will learn it
                if failure is not None:
                    raise failure  # the worker process dies here
                if kind == "upsert":
                    self.inner.upsert(catalogue, items)  # type: ignore[arg-type]
                else:
                    self.inner.delete(catalogue, [str(item) for item in items])
                self.written.update(ids)


def _id_of(item: object) -> str:
    return str(item["id"]) if isinstance(item, dict) else str(item)


def outbox_listing_ids(engine: Engine, processed: bool) -> set[int]:
    with Session(engine) as session:
        condition = (
            col(OutboxEvent.processed_at).is_not(None)
            if processed
            else col(OutboxEvent.processed_at).is_(None)
        )
        return set(session.exec(select(OutboxEvent.entity_id).where(condition)).all())


def listing_ids(document_ids: Iterable[str]) -> set[int]:
    return {int(document_id.split("-")[1]) for document_id in document_ids}


def test_engines_with_pipelined_writes_are_used_as_such() -> None:
    deferred = DeferredEngine()
    assert async_writes(deferred) is deferred  # type: ignore[arg-type]
    local = LocalSearchEngine()
    assert async_writes(local) is local


def test_the_pipeline_sends_ahead_and_settles_every_row_once_after_confirmation(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 95)
    search = DeferredEngine()

    def nothing_settled_before_confirmation(_task: int, ids: list[str]) -> None:
        assert not listing_ids(ids) & outbox_listing_ids(engine, processed=True)

    search.on_wait = nothing_settled_before_confirmation
    indexer = indexing.Indexer(engine, search, POLICY)  # type: ignore[arg-type]

    assert indexer.drain() == 95
    assert unsettled_count(engine) == 0
    # Really sent ahead: up to depth + 1 batches of (upsert, delete) tasks outstanding.
    assert POLICY.pipeline_depth + 1 <= search.max_outstanding <= 2 * (POLICY.pipeline_depth + 1)
    assert set(search.written.values()) == {1}, "a row was written twice"
    assert index_view(search.inner) == database_view(engine)


def test_a_write_refused_mid_pipeline_retries_its_batch_only(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 60)
    search = DeferredEngine()
    search.fail_task[1] = SearchError("task 1 failed: invalid document")
    slow_retries = replace(POLICY, backoff_base_seconds=60, backoff_max_seconds=60)
    indexer = indexing.Indexer(engine, search, slow_retries)  # type: ignore[arg-type]

    assert indexer.drain() == 60
    with Session(engine) as session:
        first_batch = set(
            session.exec(
                select(OutboxEvent.entity_id).order_by(col(OutboxEvent.id)).limit(10)
            ).all()
        )
        retried = session.exec(
            select(OutboxEvent).where(col(OutboxEvent.processed_at).is_(None))
        ).all()
    # Task 1 belongs to the first batch (its upsert is task 0, its delete task 1).
    assert listing_ids(search.submitted_ids[1]) <= first_batch
    assert {row.entity_id for row in retried} == first_batch
    assert {row.attempts for row in retried} == {1}
    assert all("task 1 failed" in row.last_error for row in retried)
    assert all(row.available_at > utcnow() for row in retried)

    with session_scope(engine) as session:  # the backoff passes
        for row in session.exec(select(OutboxEvent)).all():
            row.available_at = utcnow() - timedelta(seconds=1)
    assert indexer.drain() == 10
    assert unsettled_count(engine) == 0
    assert index_view(search.inner) == database_view(engine)


def test_a_crash_mid_pipeline_settles_nothing_unconfirmed_and_loses_nothing(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 90)
    with Session(engine) as session:
        in_order = list(
            session.exec(select(OutboxEvent.entity_id).order_by(col(OutboxEvent.id))).all()
        )
    fourth_batch = set(in_order[30:40])
    search = DeferredEngine()

    def killed_while_waiting_for_the_fourth_batch(_task: int, ids: list[str]) -> None:
        if listing_ids(ids) & fourth_batch:
            raise KeyboardInterrupt

    search.on_wait = killed_while_waiting_for_the_fourth_batch
    indexer = indexing.Indexer(engine, search, POLICY)  # type: ignore[arg-type]

    with pytest.raises(KeyboardInterrupt):
        indexer.drain()
    # Batches 0-2 were confirmed and committed; batch 3 and those sent after it were
    # not, so their rows are untouched and will be claimed again.
    assert processed_count(engine) == 30
    with Session(engine) as session:
        untouched = session.exec(
            select(func.count()).where(
                col(OutboxEvent.processed_at).is_(None), col(OutboxEvent.attempts) == 0
            )
        ).one()
    assert untouched == 60

    search.on_wait = None
    restarted = indexing.Indexer(engine, search, POLICY)  # type: ignore[arg-type]
    assert restarted.drain() == 60
    assert unsettled_count(engine) == 0
    assert index_view(search.inner) == database_view(engine)


def test_a_listing_changed_while_its_batch_is_in_flight_ends_in_its_latest_state(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 40)
    search = DeferredEngine()
    with Session(engine) as session:
        first_id = session.exec(select(func.min(Result.id))).one()
    changed = []

    def withdraw_after_first_send(task: int, _ids: list[str]) -> None:
        if task != 0:
            return
        # The owner withdraws the listing while its published state is in flight.
        with session_scope(engine) as session:
            listing = session.get(Result, first_id)
            assert listing is not None
            listing.status = ListingStatus.WITHDRAWN
            session.add(
                OutboxEvent(topic="listing.changed", entity_type="result", entity_id=first_id or 0)
            )
        changed.append(first_id)

    search.on_submit = withdraw_after_first_send
    indexer = indexing.Indexer(engine, search, POLICY)  # type: ignore[arg-type]
    assert indexer.drain() == 41
    assert changed == [first_id]
    assert index_view(search.inner)[first_id or 0] == ListingStatus.WITHDRAWN
    assert index_view(search.inner) == database_view(engine)


def test_the_worker_loop_step_is_bounded_and_drains_a_backlog(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 70)
    search = DeferredEngine()
    policy = indexing.OutboxPolicy(batch_size=10, pipeline_depth=2, batches_per_step=3)
    indexer = indexing.Indexer(engine, search, policy)  # type: ignore[arg-type]
    assert indexer.step() == 30
    assert indexer.step() == 30
    assert indexer.step() == 10
    assert indexer.step() == 0
    assert index_view(search.inner) == database_view(engine)


@pytest.mark.postgres
def test_two_pipelined_workers_on_postgresql_never_index_the_same_row_twice(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 400)
    search = DeferredEngine()
    policy = indexing.OutboxPolicy(batch_size=10, pipeline_depth=3, batches_per_step=5)
    drain_with_two_workers(
        engine,
        lambda: indexing.Indexer(engine, search, policy).step,  # type: ignore[arg-type]
    )
    assert len(search.written) == 400
    assert set(search.written.values()) == {1}, "some listing was indexed twice"
    assert index_view(search.inner) == database_view(engine)


def test_a_batch_notifies_each_saved_search_once_per_published_listing(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 27)  # all about 正极材料; published, withdrawn, submitted...
    searcher = market.enterprise_member()
    with session_scope(engine) as session:
        owner = session.exec(select(Result.created_by_user_id, Result.organization_id)).first()
        assert owner is not None
        session.add(
            SavedSearch(
                user_id=searcher.user_id,
                organization_id=searcher.organization_id,
                catalogue="results",
                name="正极材料",
                q="正极材料",
            )
        )
        session.add(
            SavedSearch(
                user_id=searcher.user_id,
                organization_id=searcher.organization_id,
                catalogue="results",
                name="无关",
                q="水产品保鲜",
            )
        )
        session.add(
            SavedSearch(
                user_id=owner[0],
                organization_id=owner[1],
                catalogue="results",
                name="自己的",
                q="正极材料",
            )
        )
        for row in session.exec(select(OutboxEvent)).all():  # every listing announced twice
            session.add(
                OutboxEvent(
                    topic="listing.changed", entity_type=row.entity_type, entity_id=row.entity_id
                )
            )
    batches_of_20 = replace(POLICY, batch_size=20)
    indexer = indexing.Indexer(engine, DeferredEngine(), batches_of_20)  # type: ignore[arg-type]
    assert indexer.drain() == 54

    published = {
        listing_id
        for listing_id, status in database_view(engine).items()
        if status == ListingStatus.PUBLISHED
    }
    with Session(engine) as session:
        notified = session.exec(select(Notification.user_id, Notification.listing_id)).all()
    # once per published listing, to the searcher only: not for the unrelated query, and
    # not to the owning organisation's own saved search; redelivery adds nothing
    assert sorted(notified) == sorted((searcher.user_id, listing_id) for listing_id in published)
