"""Vectors for listings indexed without one: the `listing.embed` outbox rows.

The indexer never runs the model (`market.discovery.indexing`): a listing whose text has
no stored vector is indexed with vector None, so keyword search finds it at once, and
gets a `listing.embed` row. `VectorBackfill.step()` works through those rows:

1. claim up to `batch_size` due rows with a lease: one compare-and-set UPDATE of their
   `available_at` to `now + lease` (`... WHERE available_at <= now RETURNING`),
   committed at once, so no transaction stays open while the model works and two
   workers never claim one row;
2. read the listings' current documents in a short read-only session, and their
   passage texts (`vectors.passage_hash`, the indexer's own);
3. embed the texts the store lacks, in batches, with no connection held
   (`vectors.vectors_for_engine`, which stores each batch with insert-or-ignore: two
   workers embedding one text both succeed and one row stays);
4. in one short transaction, mark the rows processed and queue `listing.changed` for
   each listing: the indexer, the only writer to the search engine (in its fence, so
   states are never applied out of order), sends the document again, now with its
   vector. A listing edited meanwhile may miss its vector again; it asks again.

A crash before step 4 leaves the rows leased; they become due when the lease ends and
are claimed again, finding what was already stored. `EmbeddingUnavailable` (the server
down, a timeout) backs the rows off and never fails them, like a search outage; any
other `EmbeddingError` counts towards `max_attempts` (`indexing.retry_later`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from market.db import is_postgres, one_of, session_scope, utcnow
from market.discovery import indexing, vectors
from market.discovery.documents import CATALOGUE_OF_KIND
from market.listings.expiry import LISTING_CHANGED
from market.listings.models import ListingKind
from market.outbox.models import OutboxEvent
from search.documents import Catalogue, DocumentError
from search.embedding import (
    Embedder,
    EmbeddingError,
    EmbeddingUnavailable,
    passage_text_of_document,
)

logger = logging.getLogger("market.discovery")

# One step embeds at most one store batch (~5 s of one core for 32 passages of 120
# characters), so stopping the worker never waits long.
BACKFILL_BATCH = vectors.EMBED_BATCH
# Long enough for a slow step on a busy machine (32 passages at the 0.7 s each seen on
# the shared 2-core box take 22 s), short enough that a crashed worker's rows are
# taken up again soon. Keyword search is unaffected meanwhile.
CLAIM_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class _Claimed:
    row_id: int
    catalogue: Catalogue | None
    listing_id: int
    # The model the indexer looked for: a backfill of another model (processes with
    # different settings, a model change rolling out) must not re-announce the listing,
    # or the two would hand it back and forth forever.
    model_id: str | None


class VectorBackfill:
    """Embeds the passages of listings indexed without a vector, then re-announces them."""

    def __init__(
        self,
        db_engine: Engine,
        embedder: Embedder,
        policy: indexing.OutboxPolicy | None = None,
        *,
        batch_size: int = BACKFILL_BATCH,
        lease: timedelta = CLAIM_LEASE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db_engine
        self._embedder = embedder
        self._policy = policy or indexing.OutboxPolicy()
        self._batch_size = batch_size
        self._lease = lease
        self._clock = clock

    def step(self) -> int:
        """One claimed batch; returns how many rows it settled (done or retried)."""
        claimed = self._claim()
        if not claimed:
            return 0
        started = time.monotonic()
        texts = self._passage_texts(self._of_our_model(claimed))
        try:
            embedded = self._embed_missing(list(dict.fromkeys(texts.values())))
        except EmbeddingError as error:
            self._retry_later(claimed, error)
            return len(claimed)
        self._settle(claimed, set(texts))
        self._log_progress(len(texts), embedded, time.monotonic() - started)
        return len(claimed)

    def drain(self) -> int:
        """Steps until nothing is due (tests, `market worker --once`)."""
        settled = 0
        while handled := self.step():
            settled += handled
        return settled

    # -- steps ---------------------------------------------------------------------

    def _claim(self) -> list[_Claimed]:
        now = self._clock()
        due = (
            col(OutboxEvent.topic) == indexing.LISTING_EMBED,
            col(OutboxEvent.processed_at).is_(None),
            col(OutboxEvent.failed_at).is_(None),
            col(OutboxEvent.available_at) <= now,
        )
        with session_scope(self._db) as session:
            candidates = select(OutboxEvent.id).where(*due).order_by(col(OutboxEvent.id))
            candidates = candidates.limit(self._batch_size)
            if is_postgres(self._db):
                # Parallel workers pass over each other's candidates instead of queueing.
                candidates = candidates.with_for_update(skip_locked=True)
            ids = [row_id for row_id in session.exec(candidates).all() if row_id is not None]
            if not ids:
                return []
            leased = session.execute(
                update(OutboxEvent)
                .where(one_of(session, col(OutboxEvent.id), ids), *due)
                .values(available_at=now + self._lease)
                .returning(
                    col(OutboxEvent.id),
                    col(OutboxEvent.entity_type),
                    col(OutboxEvent.entity_id),
                    col(OutboxEvent.payload),
                )
                .execution_options(synchronize_session=False)
            ).all()
        return [
            _Claimed(
                row_id, indexing.catalogue_of(entity_type), listing_id, (payload or {}).get("model")
            )
            for row_id, entity_type, listing_id, payload in leased
        ]

    def _of_our_model(self, claimed: Sequence[_Claimed]) -> list[_Claimed]:
        ours = [item for item in claimed if item.model_id in (None, self._embedder.model_id)]
        if len(ours) < len(claimed):
            logger.warning(
                "%d listing.embed rows asked for another model than %s: settled unembedded",
                len(claimed) - len(ours),
                self._embedder.model_id,
            )
        return ours

    def _embed_missing(self, texts: list[str]) -> int:
        """Store a vector for every text (no connection held while the model works);
        returns how many had to be embedded."""
        embedded = 0

        def count(batch: int) -> None:
            nonlocal embedded
            embedded += batch

        vectors.vectors_for_engine(self._db, self._embedder, texts, progress=count)
        return embedded

    def _passage_texts(self, claimed: Sequence[_Claimed]) -> dict[tuple[Catalogue, int], str]:
        """The current passage text of each claimed listing that still exists."""
        texts: dict[tuple[Catalogue, int], str] = {}
        with session_scope(self._db, writes=False) as session:
            for catalogue in CATALOGUE_OF_KIND.values():
                ids = list({item.listing_id for item in claimed if item.catalogue == catalogue})
                if not ids:
                    continue
                for listing_id, document in indexing.current_documents(session, catalogue, ids):
                    # Gone or refused: nothing to embed; the indexer deals with the listing.
                    if document is not None and not isinstance(document, DocumentError):
                        texts[(catalogue, listing_id)] = passage_text_of_document(
                            catalogue, document
                        )
        return texts

    def _settle(self, claimed: Sequence[_Claimed], embedded: set[tuple[Catalogue, int]]) -> None:
        now = self._clock()
        with session_scope(self._db) as session:
            session.execute(
                update(OutboxEvent)
                .where(
                    one_of(session, col(OutboxEvent.id), [item.row_id for item in claimed]),
                    col(OutboxEvent.processed_at).is_(None),
                )
                .values(processed_at=now, attempts=col(OutboxEvent.attempts) + 1)
                .execution_options(synchronize_session=False)
            )
            for catalogue, listing_id in sorted(embedded):
                session.add(
                    OutboxEvent(
                        topic=LISTING_CHANGED,
                        entity_type=_KIND_OF_CATALOGUE[catalogue].value,
                        entity_id=listing_id,
                        payload={"reason": "vector"},
                        created_at=now,
                        available_at=now,
                    )
                )

    def _retry_later(self, claimed: Sequence[_Claimed], error: EmbeddingError) -> None:
        outage = isinstance(error, EmbeddingUnavailable)
        logger.warning(
            "embedding %d listings failed%s: %s",
            len(claimed),
            " (will retry)" if outage else "",
            error,
        )
        with session_scope(self._db) as session:
            rows = session.exec(
                select(OutboxEvent).where(
                    one_of(session, col(OutboxEvent.id), [item.row_id for item in claimed])
                )
            ).all()
            indexing.retry_later(rows, error, outage=outage, now=self._clock(), policy=self._policy)

    def _log_progress(self, listings: int, embedded: int, seconds: float) -> None:
        with session_scope(self._db, writes=False) as session:
            waiting = pending_backfill(session)
        # Progress of a backlog (a first run, an import) in the log, one line per batch;
        # a batch whose texts were all stored already is not news.
        level = logging.INFO if embedded else logging.DEBUG
        logger.log(
            level,
            "vectors: %d listings given their vectors (%d texts embedded) in "
            "%.1f s; %d listings still waiting",
            listings,
            embedded,
            seconds,
            waiting,
        )


def pending_backfill(session: Session) -> int:
    """Listings' embed rows not yet done (a backlog the log and operators can watch)."""
    return int(
        session.exec(
            select(func.count()).where(
                col(OutboxEvent.topic) == indexing.LISTING_EMBED,
                col(OutboxEvent.processed_at).is_(None),
                col(OutboxEvent.failed_at).is_(None),
            )
        ).one()
    )


_KIND_OF_CATALOGUE: dict[Catalogue, ListingKind] = {
    catalogue: kind for kind, catalogue in CATALOGUE_OF_KIND.items()
}
