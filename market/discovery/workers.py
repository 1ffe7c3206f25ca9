"""The background work of a process: indexing the outbox, and giving listings vectors.

`worker_loop` is what `market serve` runs in threads (MARKET_RUN_WORKER_IN_PROCESS) and
`market worker` in the foreground: the indexer's loop (`indexing.Indexer`, with the
listings' expiry sweep beside it) and, with an embedder configured, the vector
backfill's loop (`backfill.VectorBackfill`) on a thread of its own. Two loops, not one:
a backfill step spends seconds in the model, and keyword indexing of a fresh change
must never wait for it.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType

from sqlalchemy.engine import Engine

from market.config import Settings
from market.discovery import indexing
from market.discovery.backfill import VectorBackfill
from search.backend import SearchBackend
from search.embedding import Embedder
from search.worker import WorkerLoop

logger = logging.getLogger("market.discovery")


@dataclass
class WorkerLoops:
    """The indexing loop and the loops that run beside it, started and stopped as one."""

    indexing: WorkerLoop
    beside: tuple[WorkerLoop, ...] = ()

    def run(self) -> None:
        """Run indexing in this thread (the others in threads) until `stop()`."""
        self._start_beside()
        try:
            self.indexing.run()
        finally:
            self._stop_beside()

    def start_thread(self, name: str = "outbox-worker") -> None:
        self.indexing.start_thread(name=name)
        self._start_beside()

    def stop(self) -> None:
        """Every loop finishes its current step, then stops."""
        for loop in (self.indexing, *self.beside):
            loop.stop()

    @property
    def stopping(self) -> bool:
        return all(loop.stopping for loop in (self.indexing, *self.beside))

    def stop_thread(self, timeout_seconds: float = 30.0) -> None:
        self.stop()  # all at once: the loops finish their steps in parallel
        for loop in (self.indexing, *self.beside):
            loop.stop_thread(timeout_seconds)

    def stop_on_signals(
        self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
    ) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            logger.info("signal %s: stopping after the current batches", signum)
            self.stop()

        for signum in signals:
            signal.signal(signum, handle)

    def _start_beside(self) -> None:
        for number, loop in enumerate(self.beside):
            loop.start_thread(name=f"outbox-worker-{number + 1}")

    def _stop_beside(self) -> None:
        for loop in self.beside:
            loop.stop_thread()


def worker_loop(
    settings: Settings,
    db_engine: Engine,
    search_engine: SearchBackend,
    embedder: Embedder | None = None,
) -> WorkerLoops:
    """The loops of `market serve`'s threads and of `market worker`."""
    policy = indexing.OutboxPolicy.from_settings(settings)
    indexer = indexing.Indexer(db_engine, search_engine, policy, embedder=embedder)
    indexing_loop = WorkerLoop(
        step=indexer.step,
        poll_seconds=settings.outbox_poll_seconds,
        error_backoff_max_seconds=settings.outbox_backoff_max_seconds,
        periodic=(lambda: indexing.expire_due_listings(db_engine),),
    )
    if embedder is None:
        return WorkerLoops(indexing_loop)
    backfill = VectorBackfill(db_engine, embedder, policy)
    backfill_loop = WorkerLoop(
        step=backfill.step,
        poll_seconds=settings.outbox_poll_seconds,
        error_backoff_max_seconds=settings.outbox_backoff_max_seconds,
    )
    return WorkerLoops(indexing_loop, (backfill_loop,))


def drain_all(
    db_engine: Engine,
    search_engine: SearchBackend,
    policy: indexing.OutboxPolicy,
    embedder: Embedder | None = None,
) -> int:
    """Index and backfill until nothing of either is due (`market worker --once`, tests):
    the backfill re-announces the listings it embedded, so indexing runs once more."""
    indexer = indexing.Indexer(db_engine, search_engine, policy, embedder=embedder)
    backfill = VectorBackfill(db_engine, embedder, policy) if embedder else None
    settled = 0
    while True:
        handled = indexer.drain()
        if backfill is not None:
            handled += backfill.drain()
        if handled == 0:
            return settled
        settled += handled
