"""The outbox → search engine adapter: claim due rows, index the listings' current state.

An outbox row says only "this listing changed". The worker never trusts a payload: it
loads the listing as it is now and writes that (or deletes the document when the row is
gone or not indexed), so replaying a row any number of times converges on the database.

One batch = one database transaction:
1. claim up to `batch_size` due `listing.changed` rows (on PostgreSQL `FOR UPDATE SKIP
   LOCKED`, so parallel workers take disjoint rows);
2. inside the indexing fence (`_indexing_fence`: on PostgreSQL, workers take turns),
   load the listings, build documents and send them to the engine per catalogue: the
   state read last is the state enqueued last, so two workers can never write an older
   and a newer state of one listing in the wrong order;
3. leave the fence; the engine applies the writes while other workers go on;
4. wait for the engine, then mark the rows processed only after it confirmed; on failure
   move `available_at` (exponential backoff), count `attempts`, keep `last_error`, and
   after `max_attempts` set `failed_at` (an unreachable engine never fails a row: an
   outage is nobody's data problem, the rows wait for it).
A crash anywhere before the commit leaves the rows unprocessed; they are indexed again.

Vectors: with an embedder configured, each document carries its passage vector from the
vector store (`vectors.attach_stored_vectors`, a lookup by content hash in step 2, so a
change that leaves the text alone re-uses the vector). The model never runs in a batch:
a document whose text has no stored vector yet is sent with vector None, so keyword
search finds it at once, and step 4 queues a `listing.embed` row for it
(`request_vectors`); `market.discovery.backfill` embeds it and announces the listing
again, and the next batch sends it with its vector.

Pipelining (`drain_pipelined`, what the worker loop runs): steps 1-3 of the next batches
run while the engine indexes the earlier ones, up to `pipeline_depth` batches ahead, each
in its own open transaction; batches settle (step 4, commit) strictly in claim order.
Meilisearch applies tasks in the order they were enqueued, so a newer state of a listing
sent in a later batch is applied after the older one. A batch's rows stay locked (SKIP
LOCKED) by its own transaction until it settles; on SQLite, where rows cannot be
locked, later claims exclude the ids still in flight.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any, cast

from sqlalchemy import func, insert, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from market.auth.organization import Organization
from market.common.calendar import market_today
from market.common.pagination import PageParams, paginate
from market.config import Settings
from market.db import is_postgres, one_of, session_scope, utcnow, writes_late
from market.discovery import vectors
from market.discovery.documents import (
    CATALOGUE_OF_KIND,
    MODEL_OF_CATALOGUE,
    search_document,
    search_id,
)
from market.domains import domain_modules
from market.listings import service as listings
from market.listings.expiry import LISTING_CHANGED
from market.listings.models import Listing, ListingKind
from market.outbox.models import OutboxEvent
from search.backend import (
    AsyncWrites,
    PendingWrite,
    ProgressCallback,
    SearchBackend,
    SearchError,
    SearchUnavailable,
    async_writes,
)
from search.documents import CATALOGUES, Catalogue, DocumentError
from search.embedding import Embedder
from search.worker import CatalogueChanges, apply_changes, backoff_seconds

logger = logging.getLogger("market.discovery")

INDEXED_TOPICS = (LISTING_CHANGED,)
# "This listing's passage vector is missing": consumed by market.discovery.backfill.
LISTING_EMBED = "listing.embed"
# The two keys of the indexing fence's advisory lock, chosen to stay clear of any other
# advisory lock in the database.
INDEXING_FENCE_KEYS = (731_000, 1)
# Rows created this long before a reindex started are re-applied after it too, so clock
# skew between API hosts and the reindexing host cannot let a change slip through.
REINDEX_SAFETY_MARGIN = timedelta(minutes=2)
REBUILD_PAGE_SIZE = 1000
_KIND_OF_CATALOGUE = {catalogue: kind for kind, catalogue in CATALOGUE_OF_KIND.items()}
MAX_ERROR_LENGTH = 4000


@dataclass(frozen=True)
class OutboxPolicy:
    batch_size: int = 500
    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    # Batches sent ahead of the one being waited for (0: send, wait, settle, repeat).
    pipeline_depth: int = 4
    # Batches per worker-loop step: the step then waits for all of them, so stopping
    # the worker never waits for more than this many.
    batches_per_step: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxPolicy:
        return cls(
            batch_size=settings.outbox_batch_size,
            max_attempts=settings.outbox_max_attempts,
            backoff_base_seconds=settings.outbox_backoff_base_seconds,
            backoff_max_seconds=settings.outbox_backoff_max_seconds,
            pipeline_depth=settings.outbox_pipeline_depth,
        )


@dataclass
class _Plan:
    """One catalogue's share of a batch: engine writes and the rows they settle."""

    changes: CatalogueChanges = field(default_factory=CatalogueChanges)
    rows: list[OutboxEvent] = field(default_factory=list)
    # Listings sent without a vector because the store has none for their text yet.
    unembedded: list[int] = field(default_factory=list)


@dataclass
class _Batch:
    """A claimed batch: its open transaction, its rows, what was sent for them."""

    session: Session
    rows: list[OutboxEvent]
    plans: dict[Catalogue, _Plan] = field(default_factory=dict)
    bad_rows: list[tuple[OutboxEvent, str]] = field(default_factory=list)
    # Per catalogue: the writes the engine accepted, or why it refused them.
    sent: dict[Catalogue, list[PendingWrite] | SearchError] = field(default_factory=dict)

    def close(self, *, commit: bool) -> None:
        try:
            if commit:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()


class Indexer:
    """Drains `listing.changed` outbox rows into a search engine."""

    def __init__(
        self,
        db_engine: Engine,
        search_engine: SearchBackend,
        policy: OutboxPolicy | None = None,
        *,
        embedder: Embedder | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db_engine
        self._search = search_engine
        self._writes: AsyncWrites = async_writes(search_engine)
        self._policy = policy or OutboxPolicy()
        # Only the model's name is needed here (it is part of every vector's hash).
        self._model_id = embedder.model_id if embedder else None
        self._clock = clock
        self._indexes_ready = False

    def drain_once(self) -> int:
        """One batch; returns how many rows it settled (processed, retried or failed)."""
        self._ensure_indexes()
        batch = self._start_batch(in_flight=())
        if batch is None:
            return 0
        return self._finish_batch_closing(batch)

    def drain(self, max_batches: int | None = None) -> int:
        """Run batches until nothing is due (tests, `market worker --once`)."""
        return self.drain_pipelined(max_batches)

    def drain_pipelined(self, max_batches: int | None = None) -> int:
        """Claim and send up to `pipeline_depth` batches ahead of the one being settled,
        until nothing is due or `max_batches` were claimed; returns the rows settled.

        Returns only when every batch it claimed has settled (or rolled back on an
        error, leaving its rows for the next round)."""
        self._ensure_indexes()
        pending: deque[_Batch] = deque()
        settled = 0
        claimed = 0
        try:
            while max_batches is None or claimed < max_batches:
                in_flight = [row.id for batch in pending for row in batch.rows]
                batch = self._start_batch(in_flight)
                if batch is None:
                    break
                pending.append(batch)
                claimed += 1
                while len(pending) > self._policy.pipeline_depth:
                    settled += self._finish_batch_closing(pending.popleft())
            while pending:
                settled += self._finish_batch_closing(pending.popleft())
        finally:
            # An error: batches not settled roll back; their rows are claimed again.
            while pending:
                pending.popleft().close(commit=False)
        return settled

    def step(self) -> int:
        """One worker-loop step: a bounded pipelined drain."""
        return self.drain_pipelined(self._policy.batches_per_step)

    # -- steps ---------------------------------------------------------------------

    def _ensure_indexes(self) -> None:
        # Until the indexes exist with their settings, writing would let Meilisearch
        # create a bare index with no filterable attributes; raise and retry instead.
        if not self._indexes_ready:
            self._search.ensure_indexes()
            self._indexes_ready = True

    def _start_batch(self, in_flight: Sequence[int | None]) -> _Batch | None:
        """Claim, lock, build and send one batch in a new transaction; None if none due."""
        # Several batches are open at once; on SQLite each takes the write lock only to settle.
        session = Session(writes_late(self._db), expire_on_commit=False)
        batch = _Batch(session=session, rows=[])
        try:
            batch.rows = self._claim(session, in_flight)
            if not batch.rows:
                batch.close(commit=True)
                return None
            with _indexing_fence(self._db):
                batch.plans, batch.bad_rows = plan_changes(session, batch.rows, self._model_id)
                for catalogue, plan in batch.plans.items():
                    batch.sent[catalogue] = self._send(catalogue, plan.changes)
        except BaseException:
            batch.close(commit=False)
            raise
        return batch

    def _send(
        self, catalogue: Catalogue, changes: CatalogueChanges
    ) -> list[PendingWrite] | SearchError:
        writes: list[PendingWrite] = []
        try:
            if changes.upserts:
                writes.append(self._writes.upsert_async(catalogue, changes.upserts))
            if changes.deletes:
                writes.append(self._writes.delete_async(catalogue, changes.deletes))
        except SearchError as error:
            return error
        return writes

    def _finish_batch_closing(self, batch: _Batch) -> int:
        try:
            self._finish_batch(batch)
        except BaseException:
            batch.close(commit=False)
            raise
        batch.close(commit=True)
        return len(batch.rows)

    def _finish_batch(self, batch: _Batch) -> None:
        """Wait for the engine, then mark the rows: processed, retried or failed."""
        session = batch.session
        now = self._clock()
        for row, reason in batch.bad_rows:
            self._fail(row, reason, now)
        for catalogue, plan in batch.plans.items():
            sent = batch.sent[catalogue]
            try:
                if isinstance(sent, SearchError):
                    raise sent
                self._writes.wait(sent)
            except SearchError as error:
                self._retry_later(plan.rows, error, now)
                continue
            _mark_processed(session, plan.rows, now)
            if self._model_id:
                request_vectors(
                    session, _KIND_OF_CATALOGUE[catalogue], plan.unembedded, now, self._model_id
                )
            self._notify_saved_searches(session, catalogue, plan)

    def _claim(self, session: Session, in_flight: Sequence[int | None] = ()) -> list[OutboxEvent]:
        statement = (
            select(OutboxEvent)
            .where(
                col(OutboxEvent.topic).in_(INDEXED_TOPICS),
                col(OutboxEvent.processed_at).is_(None),
                col(OutboxEvent.failed_at).is_(None),
                col(OutboxEvent.available_at) <= self._clock(),
            )
            .order_by(col(OutboxEvent.id))
            .limit(self._policy.batch_size)
        )
        if is_postgres(self._db):
            # This worker's own unsettled batches hold their rows locked: SKIP LOCKED
            # passes over them (an id list here would cost more than the claim itself:
            # psycopg parses every placeholder of a 16,000-id list).
            statement = statement.with_for_update(skip_locked=True)
        elif in_flight:
            # SQLite has no row locks: leave out this worker's unsettled batches by id.
            statement = statement.where(col(OutboxEvent.id).not_in(in_flight))
        return list(session.exec(statement).all())

    def _notify_saved_searches(self, session: Session, catalogue: Catalogue, plan: _Plan) -> None:
        """Tell users whose saved searches a newly published listing of the batch matches,
        in the transaction that settles the rows (a crash loses neither). A listing
        published after its document was built has an outbox row of its own."""
        for hooks in _indexing_hooks():
            hooks.listings_indexed(session, _KIND_OF_CATALOGUE[catalogue], plan.changes.upserts)

    def _retry_later(self, rows: Sequence[OutboxEvent], error: SearchError, now: datetime) -> None:
        logger.warning("indexing %d outbox rows failed: %s", len(rows), error)
        retry_later(
            rows,
            error,
            outage=isinstance(error, SearchUnavailable),
            now=now,
            policy=self._policy,
        )

    def _fail(self, row: OutboxEvent, reason: str, now: datetime) -> None:
        # Bad data (a listing the document builder refuses) will not heal by retrying.
        logger.error("outbox row %s cannot be indexed: %s", row.id, reason)
        row.attempts += 1
        row.last_error = reason[:MAX_ERROR_LENGTH]
        row.failed_at = now


def retry_later(
    rows: Iterable[OutboxEvent],
    error: Exception,
    *,
    outage: bool,
    now: datetime,
    policy: OutboxPolicy,
) -> None:
    """Count a failed attempt on each row and make it due again after a backoff; after
    `max_attempts` set `failed_at`, unless the failure is an outage (the engine or the
    embedding server unreachable): an outage is nobody's data problem, the rows wait."""
    for row in rows:
        row.attempts += 1
        row.last_error = error_text(error)
        if not outage and row.attempts >= policy.max_attempts:
            row.failed_at = now
            continue
        delay = backoff_seconds(
            row.attempts, policy.backoff_base_seconds, policy.backoff_max_seconds
        )
        row.available_at = now + timedelta(seconds=delay)


def request_vectors(
    session: Session,
    kind: ListingKind,
    listing_ids: Sequence[int],
    now: datetime,
    model_id: str,
) -> int:
    """Queue a `listing.embed` row for each listing without an open one; returns how many.

    In the transaction that settles the indexing rows, so a crash loses no request. Two
    workers may both queue one for a listing; the second costs the backfill a lookup."""
    if not listing_ids:
        return 0
    already = set(
        session.exec(
            select(OutboxEvent.entity_id).where(
                col(OutboxEvent.topic) == LISTING_EMBED,
                col(OutboxEvent.entity_type) == kind.value,
                col(OutboxEvent.processed_at).is_(None),
                col(OutboxEvent.failed_at).is_(None),
                one_of(session, col(OutboxEvent.entity_id), listing_ids),
            )
        ).all()
    )
    wanted = [listing_id for listing_id in dict.fromkeys(listing_ids) if listing_id not in already]
    if wanted:
        session.execute(
            insert(OutboxEvent),
            [
                {
                    "topic": LISTING_EMBED,
                    "entity_type": kind.value,
                    "entity_id": listing_id,
                    "payload": {"model": model_id},
                    "created_at": now,
                    "available_at": now,
                    "attempts": 0,
                    "last_error": "",
                }
                for listing_id in wanted
            ],
        )
    return len(wanted)


def _mark_processed(session: Session, rows: Sequence[OutboxEvent], now: datetime) -> None:
    """One UPDATE for a batch's settled rows (the ORM would send one per row, a large
    share of the worker's time on PostgreSQL: docs/PERFORMANCE.md, "Figures behind the
    code's comments"). The session ends with the batch, so the row objects in memory are
    left as they were."""
    statement = (
        update(OutboxEvent)
        .where(one_of(session, col(OutboxEvent.id), [row.id for row in rows if row.id]))
        .values(processed_at=now, attempts=col(OutboxEvent.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(statement)


@contextmanager
def _indexing_fence(db_engine: Engine) -> Iterator[None]:
    """Workers take turns to read listings and hand their documents to the engine.

    Meilisearch applies tasks in the order it received them, so when reading and
    enqueueing are one turn, the state read last is the state applied last: an older
    state of a listing can never overwrite a newer one, whichever workers hold its
    outbox rows. Waiting for the engine to apply the writes happens outside the fence,
    so workers still overlap there. The batch reads in READ COMMITTED, so inside its
    turn it sees every change committed before.

    One session-level advisory lock on a connection of its own, however big the
    batches: the per-listing transaction locks used before filled PostgreSQL's shared
    lock table (64 × max_connections entries by default) with 2,000-row batches, 8 in
    flight ("out of shared memory", docs/PERFORMANCE.md). SQLite has one worker.
    """
    if not is_postgres(db_engine):
        yield
        return
    keys = {"namespace": INDEXING_FENCE_KEYS[0], "key": INDEXING_FENCE_KEYS[1]}
    with db_engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:namespace, :key)"), keys)
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:namespace, :key)"), keys)
                connection.rollback()
            except Exception:
                # A session lock must never go back to the pool with the connection.
                connection.invalidate()
                raise


def plan_changes(
    session: Session, rows: Iterable[OutboxEvent], model_id: str | None = None
) -> tuple[dict[Catalogue, _Plan], list[tuple[OutboxEvent, str]]]:
    """Group rows by catalogue and turn each listing's current state into engine writes,
    each document with its stored vector of `model_id` (None: no embedder)."""
    plans: dict[Catalogue, _Plan] = {}
    bad_rows: list[tuple[OutboxEvent, str]] = []
    rows_by_listing: dict[tuple[Catalogue, int], list[OutboxEvent]] = {}
    for row in rows:
        catalogue = catalogue_of(row.entity_type)
        if catalogue is None:
            bad_rows.append((row, f"unknown entity_type {row.entity_type!r} for {row.topic}"))
            continue
        rows_by_listing.setdefault((catalogue, row.entity_id), []).append(row)
    for catalogue in CATALOGUES:
        ids = [listing_id for (cat, listing_id) in rows_by_listing if cat == catalogue]
        if not ids:
            continue
        plan = plans.setdefault(catalogue, _Plan())
        documents: list[dict[str, Any]] = []
        for listing_id, outcome in current_documents(session, catalogue, ids):
            settled_rows = rows_by_listing[(catalogue, listing_id)]
            if isinstance(outcome, DocumentError):
                bad_rows.extend((row, f"document refused: {outcome}") for row in settled_rows)
                continue
            if outcome is None:
                plan.changes.deletes.append(search_id(catalogue, listing_id))
            else:
                documents.append(outcome)
            plan.rows.extend(settled_rows)
        plan.unembedded = vectors.attach_stored_vectors(session, model_id, catalogue, documents)
        plan.changes.upserts.extend(documents)
    return plans, bad_rows


def current_documents(
    session: Session, catalogue: Catalogue, listing_ids: Sequence[int]
) -> Iterator[tuple[int, dict[str, Any] | DocumentError | None]]:
    """Each listing's document now; None when the listing is gone (a deleted draft)."""
    model = MODEL_OF_CATALOGUE[catalogue]
    found = session.exec(select(model).where(one_of(session, col(model.id), listing_ids))).all()
    listings_by_id = {listing.id: cast(Listing, listing) for listing in found}
    names = organization_names(session, {row.organization_id for row in listings_by_id.values()})
    for listing_id in listing_ids:
        listing = listings_by_id.get(listing_id)
        if listing is None:
            yield listing_id, None
            continue
        try:
            yield listing_id, search_document(listing, names.get(listing.organization_id, ""))
        except DocumentError as error:
            yield listing_id, error


def organization_names(session: Session, organization_ids: set[int]) -> dict[int, str]:
    if not organization_ids:
        return {}
    statement = select(Organization.id, Organization.name).where(
        col(Organization.id).in_(organization_ids)
    )
    return {org_id: name for org_id, name in session.exec(statement).all() if org_id is not None}


def catalogue_of(entity_type: str) -> Catalogue | None:
    try:
        return CATALOGUE_OF_KIND[ListingKind(entity_type)]
    except ValueError:
        return None


def error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH]


# --- reindexing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReindexReport:
    catalogue: Catalogue
    indexed: int
    reapplied: int


def reindex(
    db_engine: Engine,
    search_engine: SearchBackend,
    catalogue: Catalogue,
    progress: ProgressCallback | None = None,
    *,
    embedder: Embedder | None = None,
) -> ReindexReport:
    """Rebuild one catalogue from the database into a fresh index and swap it in.

    Searches keep answering from the old index during the build. The swap drops writes
    the worker made to the live index meanwhile, so every listing announced in the
    outbox since the rebuild began is then written again from its current state.
    Documents carry their stored vectors of `embedder`'s model; nothing is embedded
    here (100,000 listings would take hours): listings without one get a
    `listing.embed` row and their vector from the worker's backfill later.
    """
    model_id = embedder.model_id if embedder else None
    started = utcnow() - REINDEX_SAFETY_MARGIN
    documents = indexed_documents(db_engine, catalogue, model_id)
    indexed = search_engine.rebuild(catalogue, documents, progress)
    reapplied = reapply_changes_since(db_engine, search_engine, catalogue, started, model_id)
    return ReindexReport(catalogue=catalogue, indexed=indexed, reapplied=reapplied)


def indexed_documents(
    db_engine: Engine, catalogue: Catalogue, model_id: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every listing's document with its stored vector, read in id order a page at a time.

    Short transactions per page (keyset pagination) instead of one long cursor: a
    rebuild of 100k listings must not pin a snapshot or a SQLite read lock for minutes.
    Read-only ones: a page whose listings lack vectors asks for them in a second, short
    writing one, so pages with all their vectors never take SQLite's write lock.
    """
    model = MODEL_OF_CATALOGUE[catalogue]
    after_id = 0
    while True:
        with session_scope(db_engine, writes=False) as session:
            page = cast(
                list[Listing],
                session.exec(
                    select(model)
                    .where(col(model.id) > after_id)
                    .order_by(col(model.id))
                    .limit(REBUILD_PAGE_SIZE)
                ).all(),
            )
            if not page:
                return
            names = organization_names(session, {listing.organization_id for listing in page})
            documents = [
                document
                for document in (_document_or_skip(listing, names) for listing in page)
                if document is not None
            ]
            unembedded = vectors.attach_stored_vectors(session, model_id, catalogue, documents)
            after_id = page[-1].id or after_id
        if model_id and unembedded:
            with session_scope(db_engine) as session:
                request_vectors(
                    session, _KIND_OF_CATALOGUE[catalogue], unembedded, utcnow(), model_id
                )
        yield from documents


def _document_or_skip(listing: Listing, names: dict[int, str]) -> dict[str, Any] | None:
    try:
        return search_document(listing, names.get(listing.organization_id, ""))
    except DocumentError as error:
        logger.error("%s %s left out of the index: %s", type(listing).__name__, listing.id, error)
        return None


def reapply_changes_since(
    db_engine: Engine,
    search_engine: SearchBackend,
    catalogue: Catalogue,
    since: datetime,
    model_id: str | None = None,
) -> int:
    """Write the current state of every listing announced since `since`; returns how many.

    In the indexing fence, like a worker's batch: a worker indexing one of these
    listings at the same time cannot have its newer state overwritten by ours."""
    kind = _KIND_OF_CATALOGUE[catalogue]
    with _indexing_fence(db_engine), session_scope(db_engine) as session:
        listing_ids = list(
            session.exec(
                select(OutboxEvent.entity_id)
                .where(
                    col(OutboxEvent.topic).in_(INDEXED_TOPICS),
                    col(OutboxEvent.entity_type) == kind.value,
                    col(OutboxEvent.created_at) >= since,
                )
                .distinct()
            ).all()
        )
        if not listing_ids:
            return 0
        changes = CatalogueChanges()
        documents: list[dict[str, Any]] = []
        for listing_id, outcome in current_documents(session, catalogue, listing_ids):
            if outcome is None:
                changes.deletes.append(search_id(catalogue, listing_id))
            elif not isinstance(outcome, DocumentError):
                documents.append(outcome)
        # Those still without a vector got their request from the worker that indexed them.
        vectors.attach_stored_vectors(session, model_id, catalogue, documents)
        changes.upserts.extend(documents)
        apply_changes(search_engine, catalogue, changes)
    return len(listing_ids)


# --- operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    failed: int
    oldest_pending_created_at: datetime | None


def outbox_status(session: Session) -> OutboxStatus:
    pending_filter = (
        col(OutboxEvent.processed_at).is_(None),
        col(OutboxEvent.failed_at).is_(None),
        col(OutboxEvent.topic).in_(INDEXED_TOPICS),
    )
    pending, oldest = session.exec(
        select(func.count(), func.min(OutboxEvent.created_at)).where(*pending_filter)
    ).one()
    failed = session.exec(select(func.count()).where(col(OutboxEvent.failed_at).is_not(None))).one()
    return OutboxStatus(pending=int(pending), failed=int(failed), oldest_pending_created_at=oldest)


def failed_events(
    session: Session, offset: int = 0, limit: int = 100
) -> tuple[list[OutboxEvent], int]:
    """Rows a worker gave up on, newest failure first."""
    failed = select(OutboxEvent).where(col(OutboxEvent.failed_at).is_not(None))
    return paginate(
        session,
        failed,
        PageParams(offset=offset, limit=limit),
        col(OutboxEvent.failed_at).desc(),
        col(OutboxEvent.id).desc(),
    )


def retry_event(session: Session, event_id: int) -> OutboxEvent | None:
    """Put a failed row back in the queue at once; None when there is no such row.

    `last_error` stays as the record of why it failed; `attempts` restarts so the row
    gets the full number of tries again. A row that has not failed is left alone and
    returned as it is (retrying twice is harmless).
    """
    event = session.get(OutboxEvent, event_id)
    if event is None or event.failed_at is None:
        return event
    event.failed_at = None
    event.attempts = 0
    event.available_at = utcnow()
    return event


# --- running -------------------------------------------------------------------------------


def expire_due_listings(db_engine: Engine) -> int:
    """The daily expiry, run by the worker so search stops showing overdue listings."""
    with session_scope(db_engine) as session:
        return listings.expire_due_listings(session, market_today())


@functools.cache
def _indexing_hooks() -> tuple[ModuleType, ...]:
    """The `hooks.py` modules of the domains that react to freshly indexed listings
    (matching: saved searches). They sit above discovery in `market.domains`, so they are
    found by name rather than imported."""
    return tuple(domain_modules("hooks"))
