"""The generic part of the outbox worker: the polling loop, backoff and batch writes.

The application supplies `step()` (claim due outbox rows, index them, mark them) and
this module runs it until told to stop. Nothing here knows the ORM or the outbox table:
`market.discovery.indexing` is the adapter that does.

A step that handled rows is followed at once by the next one (drain quickly while there
is a backlog); an idle step waits `poll_seconds`; a step that raised waits with
exponential backoff, so a database outage does not spin the CPU.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from search.backend import Document, SearchBackend
from search.documents import Catalogue

logger = logging.getLogger("search.worker")

Step = Callable[[], int]  # returns the number of outbox rows handled


def backoff_seconds(attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Delay before retry number `attempts` (1-based): base, 2·base, 4·base... capped."""
    if attempts < 1:
        return 0.0
    # The exponent is capped first so a huge attempt count cannot overflow the float.
    return float(min(max_seconds, base_seconds * 2 ** min(attempts - 1, 32)))


@dataclass
class CatalogueChanges:
    """What one batch does to one catalogue: documents to write, ids to remove."""

    upserts: list[Document] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes)


def apply_changes(engine: SearchBackend, catalogue: Catalogue, changes: CatalogueChanges) -> None:
    """Write one catalogue's batch; raises SearchError unless the engine confirmed all."""
    if changes.upserts:
        engine.upsert(catalogue, changes.upserts)
    if changes.deletes:
        engine.delete(catalogue, changes.deletes)


@dataclass
class WorkerLoop:
    """Runs `step` until `stop()`; usable in a thread (serve) or the main thread (CLI)."""

    step: Step
    poll_seconds: float = 1.0
    error_backoff_base_seconds: float = 1.0
    error_backoff_max_seconds: float = 60.0
    # Extra periodic work (the expiry sweep); runs at most every `periodic_seconds`.
    periodic: Sequence[Callable[[], object]] = ()
    periodic_seconds: float = 60.0
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run(self) -> None:
        consecutive_errors = 0
        next_periodic = 0.0
        while not self._stopping.is_set():
            if self.periodic and time.monotonic() >= next_periodic:
                self._run_periodic()
                next_periodic = time.monotonic() + self.periodic_seconds
            try:
                handled = self.step()
            except Exception:  # a worker must outlive any one bad batch or outage
                consecutive_errors += 1
                logger.exception("outbox step failed (%d in a row)", consecutive_errors)
                self._stopping.wait(
                    backoff_seconds(
                        consecutive_errors,
                        self.error_backoff_base_seconds,
                        self.error_backoff_max_seconds,
                    )
                )
                continue
            consecutive_errors = 0
            if handled == 0:
                self._stopping.wait(self.poll_seconds)

    def stop(self) -> None:
        """Ask the loop to finish after the current step (which completes or rolls back)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start_thread(self, name: str = "outbox-worker") -> threading.Thread:
        # Daemon, so a process killed without shutdown hooks is not kept alive by it;
        # rows of an interrupted step stay unprocessed and are picked up again.
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)
        self._thread.start()
        return self._thread

    def stop_thread(self, timeout_seconds: float = 30.0) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            self._thread = None

    def stop_on_signals(
        self,
        signals: Iterable[signal.Signals] = (
            signal.SIGTERM,
            signal.SIGINT,
        ),
    ) -> None:
        """Finish the current step, then return from `run()`, on SIGTERM/SIGINT."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            logger.info("signal %s: stopping after the current batch", signum)
            self.stop()

        for signum in signals:
            signal.signal(signum, handle)

    def _run_periodic(self) -> None:
        for task in self.periodic:
            try:
                task()
            except Exception:  # periodic chores must not stop indexing
                logger.exception("periodic worker task failed")
