"""Nothing is lost when the worker or Meilisearch dies mid-indexing, and parallel
workers on PostgreSQL never index the same outbox row twice.

Each crash test seeds hundreds of listings (published, withdrawn, and submitted ones
that must stay out of the index), kills a process while the worker is part-way through,
restarts, drains, and compares the index with the database listing by listing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from market.db import session_scope
from market.discovery import indexing
from market.outbox.models import OutboxEvent
from search.backend import Document
from search.documents import Catalogue as CatalogueName
from search.local import LocalSearchEngine
from search.meili import MeilisearchEngine
from search.worker import WorkerLoop
from tests.support.factories import Market
from tests.support.indexing import (
    database_view,
    drain_with_two_workers,
    index_view,
    processed_count,
    seed_results,
    unsettled_count,
    wait_for,
)
from tests.support.meili_server import MeilisearchServer, require_meilisearch_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
CRASH_POLICY = indexing.OutboxPolicy(
    batch_size=25, max_attempts=50, backoff_base_seconds=0.05, backoff_max_seconds=0.5
)


# --- killing the worker -------------------------------------------------------------------


def test_killing_the_worker_mid_batch_loses_nothing(
    engine: Engine, market: Market, meilisearch_server: MeilisearchServer, tmp_path: Path
) -> None:
    seed_results(engine, market, 900)
    prefix = f"crash_{os.getpid()}_{time.monotonic_ns()}"
    meili = MeilisearchEngine(
        meilisearch_server.url, meilisearch_server.master_key, index_prefix=prefix
    )
    environment = {
        **os.environ,
        "MARKET_ENVIRONMENT": "development",
        "MARKET_DATA_DIR": str(tmp_path),
        "MARKET_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "MARKET_SEARCH_BACKEND": "meilisearch",
        "MARKET_MEILI_URL": meilisearch_server.url,
        "MARKET_MEILI_MASTER_KEY": meilisearch_server.master_key,
        "MARKET_MEILI_INDEX_PREFIX": prefix,
        "MARKET_OUTBOX_BATCH_SIZE": "25",
        "MARKET_OUTBOX_POLL_SECONDS": "0.1",
        "MARKET_EMBEDDER": "none",  # indexing is under test here, not vectors
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "market.cli", "worker"],
        env=environment,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "worker.log").open("wb"),
    )
    try:
        wait_for(lambda: processed_count(engine) >= 100, 120, "the worker to index 100 rows")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        interrupted_at = processed_count(engine)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert interrupted_at < 900, "the worker finished before it was killed: seed more rows"
    assert index_view(meili) != database_view(engine)  # really part-way

    indexing.Indexer(engine, meili, CRASH_POLICY).drain()  # the restarted worker

    assert unsettled_count(engine) == 0
    assert index_view(meili) == database_view(engine)
    meili.drop_indexes()


def test_sigterm_lets_the_worker_finish_its_batch_and_exit(
    engine: Engine, market: Market, tmp_path: Path
) -> None:
    seed_results(engine, market, 60)
    environment = {
        **os.environ,
        "MARKET_ENVIRONMENT": "development",
        "MARKET_DATA_DIR": str(tmp_path),
        "MARKET_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "MARKET_SEARCH_BACKEND": "local",
        "MARKET_OUTBOX_POLL_SECONDS": "0.1",
        "MARKET_EMBEDDER": "none",  # indexing is under test here, not vectors
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "market.cli", "worker"],
        env=environment,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: unsettled_count(engine) == 0, 120, "the worker to drain")
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, output
    assert b"outbox worker stopped" in output
    local = LocalSearchEngine(tmp_path / "search.sqlite3")
    assert index_view(local) == database_view(engine)
    local.close()


# --- killing Meilisearch ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def own_meilisearch(
    data_dir: Path, port: int, master_key: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A Meilisearch this test may kill: fixed port and data folder, so it can come back."""
    binary = require_meilisearch_binary()
    process = subprocess.Popen(  # noqa: S603 - our own pinned binary
        [
            str(binary),
            "--db-path",
            str(data_dir / "data.ms"),
            "--http-addr",
            f"127.0.0.1:{port}",
            "--master-key",
            master_key,
            "--no-analytics",
            "--env",
            "development",
            "--max-indexing-memory",
            "1GiB",
            "--max-indexing-threads",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=data_dir,
    )
    try:
        engine = MeilisearchEngine(f"http://127.0.0.1:{port}", master_key)

        def healthy() -> bool:
            try:
                engine.health()
            except Exception:
                return False
            return True

        wait_for(healthy, 30, "Meilisearch to start")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_killing_meilisearch_mid_indexing_loses_nothing(
    engine: Engine, market: Market, tmp_path: Path
) -> None:
    seed_results(engine, market, 900)
    port, key = _free_port(), "crash-test-master-key-0123456789"
    meili = MeilisearchEngine(
        f"http://127.0.0.1:{port}",
        key,
        index_prefix="crash",
        request_timeout_s=2,
        task_timeout_s=20,
    )
    loop = WorkerLoop(
        step=indexing.Indexer(engine, meili, CRASH_POLICY).drain_once,
        poll_seconds=0.05,
        error_backoff_max_seconds=0.5,
    )
    with own_meilisearch(tmp_path, port, key) as first:
        loop.start_thread()
        try:
            wait_for(lambda: processed_count(engine) >= 100, 120, "100 rows indexed")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            interrupted_at = processed_count(engine)
            time.sleep(1.0)  # the worker meets the outage and backs off
            assert processed_count(engine) == interrupted_at
        except BaseException:
            loop.stop_thread()
            raise
    assert interrupted_at < 900, "indexing finished before Meilisearch was killed"
    with own_meilisearch(tmp_path, port, key):
        try:
            wait_for(lambda: unsettled_count(engine) == 0, 180, "the backlog to drain")
        finally:
            loop.stop_thread()
        with session_scope(engine) as session:
            failed = session.exec(
                select(func.count()).where(col(OutboxEvent.failed_at).is_not(None))
            ).one()
        assert failed == 0
        assert index_view(meili) == database_view(engine)


# --- parallel workers on PostgreSQL --------------------------------------------------------------


class RecordingEngine:
    """A slow engine that remembers every document id it was asked to write."""

    def __init__(self) -> None:
        self.written: Counter[str] = Counter()
        self.batches_by_thread: Counter[str] = Counter()
        self._lock = threading.Lock()

    def ensure_indexes(self) -> None:
        return None

    def upsert(self, catalogue: CatalogueName, documents: Iterable[Document]) -> None:
        ids = [str(document["id"]) for document in documents]
        time.sleep(0.02)  # long enough for the other worker to claim in the meantime
        with self._lock:
            self.written.update(ids)
            self.batches_by_thread[threading.current_thread().name] += 1

    def delete(self, catalogue: CatalogueName, ids: Iterable[str]) -> None:
        self.upsert(catalogue, [{"id": id_} for id_ in ids])


@pytest.mark.postgres
def test_two_workers_on_postgresql_never_index_the_same_row_twice(
    engine: Engine, market: Market
) -> None:
    seed_results(engine, market, 400)
    recorder = RecordingEngine()
    policy = indexing.OutboxPolicy(batch_size=10)
    drain_with_two_workers(
        engine,
        lambda: indexing.Indexer(engine, recorder, policy).drain_once,  # type: ignore[arg-type]
    )
    assert len(recorder.written) == 400
    assert set(recorder.written.values()) == {1}, "some listing was indexed twice"
    assert set(recorder.batches_by_thread) == {"worker-0", "worker-1"}  # both really worked


@pytest.mark.postgres
def test_workers_take_turns_to_read_listings_and_hand_them_to_the_engine(
    engine: Engine, market: Market
) -> None:
    """While another worker is inside the indexing fence (reading listings and sending
    their documents), a worker claims its rows but neither reads nor sends."""
    seed_results(engine, market, 5)
    recorder = RecordingEngine()
    holder = engine.connect()
    holder.execute(
        text("SELECT pg_advisory_lock(:namespace, :key)"),
        dict(zip(("namespace", "key"), indexing.INDEXING_FENCE_KEYS, strict=True)),
    )
    settled: list[int] = []
    worker = threading.Thread(
        target=lambda: settled.append(indexing.Indexer(engine, recorder).drain_once())  # type: ignore[arg-type]
    )
    try:
        worker.start()
        time.sleep(1.0)
        assert recorder.written == Counter()  # waiting for its turn
        assert worker.is_alive()
    finally:
        holder.execute(text("SELECT pg_advisory_unlock_all()"))
        holder.close()
    worker.join(timeout=30)
    assert settled == [5]
    assert len(recorder.written) == 5


@pytest.mark.postgres
def test_big_batches_in_flight_need_no_lock_per_listing(engine: Engine, market: Market) -> None:
    """Four batches of 5,000 rows in flight: with a transaction lock per listing (the old
    design) that is 20,000 locks, well past PostgreSQL's default shared lock table
    (64 × max_connections = 6,400 entries, plus some slack), and the worker failed with
    "out of shared memory" (seen in the 100,000-listing benchmark at 2,000 × 9)."""
    seed_results(engine, market, 20_000)
    policy = indexing.OutboxPolicy(batch_size=5_000, pipeline_depth=3)
    recorder = RecordingEngine()
    assert indexing.Indexer(engine, recorder, policy).drain() == 20_000  # type: ignore[arg-type]
    assert unsettled_count(engine) == 0
