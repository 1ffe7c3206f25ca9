"""The outbox worker: retries with backoff, failures kept visible, operator endpoints,
reindexing with no downtime, and the in-process worker thread."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from market.db import session_scope, utcnow
from market.discovery import indexing
from market.outbox.models import OutboxEvent
from search.backend import Document, SearchBackend, SearchError, SearchQuery, SearchUnavailable
from search.documents import Catalogue as CatalogueName
from search.worker import backoff_seconds
from tests.support.catalogue import Catalogue
from tests.support.factories import Account
from tests.support.indexing import TEST_POLICY, ids_of


class FlakyEngine:
    """Delegates to a real engine, but its writes fail while `failure` is set."""

    def __init__(self, inner: SearchBackend) -> None:
        self.inner = inner
        self.failure: SearchError | None = None

    def upsert(self, catalogue: CatalogueName, documents: Iterable[Document]) -> None:
        if self.failure is not None:
            raise self.failure
        self.inner.upsert(catalogue, documents)

    def delete(self, catalogue: CatalogueName, ids: Iterable[str]) -> None:
        if self.failure is not None:
            raise self.failure
        self.inner.delete(catalogue, ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def outbox_rows(engine: Engine) -> list[OutboxEvent]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxEvent).order_by(OutboxEvent.id)).all())  # type: ignore[arg-type]


def keep_only_the_last_row(engine: Engine) -> None:
    """Settle a published listing's earlier rows (creation, submission) as a worker would
    have, leaving the publication's row to the test."""
    *earlier, _last = outbox_rows(engine)
    with session_scope(engine) as session:
        for row in earlier:
            stored = session.get(OutboxEvent, row.id)
            assert stored is not None
            stored.processed_at = utcnow()


def pending_rows(engine: Engine) -> list[OutboxEvent]:
    return [row for row in outbox_rows(engine) if row.processed_at is None]


def make_due(engine: Engine) -> None:
    """Skip the backoff wait, as time passing would."""
    with session_scope(engine) as session:
        for row in session.exec(select(OutboxEvent)).all():
            row.available_at = utcnow() - timedelta(seconds=1)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n, 2.0, 30.0) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    assert backoff_seconds(10_000, 2.0, 30.0) == 30.0


def test_a_failing_engine_is_retried_with_backoff_then_the_row_fails_visibly(
    catalogue: Catalogue, engine: Engine, search_engine: SearchBackend
) -> None:
    listing = catalogue.published("result", catalogue.maker("result"))
    keep_only_the_last_row(engine)
    flaky = FlakyEngine(search_engine)
    flaky.failure = SearchError("task failed: invalid_document_fields")
    slow_retries = replace(TEST_POLICY, backoff_base_seconds=60, backoff_max_seconds=600)
    indexer = indexing.Indexer(engine, flaky, slow_retries)

    assert indexer.drain_once() == 1
    [row] = pending_rows(engine)
    assert row.processed_at is None and row.failed_at is None
    assert row.attempts == 1
    assert "invalid_document_fields" in row.last_error
    assert row.available_at >= row.created_at + timedelta(seconds=59)
    assert indexer.drain_once() == 0  # not due again before its backoff ends

    for _ in range(TEST_POLICY.max_attempts - 1):
        make_due(engine)
        indexer.drain_once()
    [row] = pending_rows(engine)
    assert row.attempts == TEST_POLICY.max_attempts
    assert row.failed_at is not None and row.processed_at is None
    make_due(engine)
    assert indexer.drain_once() == 0  # a failed row waits for an operator

    flaky.failure = None
    with session_scope(engine) as session:
        assert indexing.retry_event(session, row.id or 0) is not None
    assert indexer.drain() == 1
    row = outbox_rows(engine)[-1]
    assert row.processed_at is not None and row.failed_at is None
    assert (
        search_engine.search("results", SearchQuery()).hits[0].document["listing_id"]
        == (listing["id"])
    )


def test_an_unreachable_engine_delays_rows_but_never_fails_them(
    catalogue: Catalogue, engine: Engine, search_engine: SearchBackend
) -> None:
    catalogue.published("demand", catalogue.maker("demand"))
    keep_only_the_last_row(engine)
    flaky = FlakyEngine(search_engine)
    flaky.failure = SearchUnavailable("connection refused")
    indexer = indexing.Indexer(engine, flaky, TEST_POLICY)
    for _ in range(TEST_POLICY.max_attempts + 2):
        make_due(engine)
        indexer.drain_once()
    [row] = pending_rows(engine)
    assert row.failed_at is None and row.processed_at is None
    assert row.attempts == TEST_POLICY.max_attempts + 2

    flaky.failure = None
    make_due(engine)
    assert indexer.drain() == 1
    assert search_engine.count("demands") == 1


def test_rows_of_other_topics_are_left_to_their_own_consumers(
    engine: Engine, indexer: indexing.Indexer
) -> None:
    with session_scope(engine) as session:
        session.add(OutboxEvent(topic="deal.opened", entity_type="deal", entity_id=1))
    assert indexer.drain() == 0
    [row] = outbox_rows(engine)
    assert row.processed_at is None and row.attempts == 0


def test_a_listing_changed_twice_in_one_batch_is_indexed_once_in_its_final_state(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer, engine: Engine
) -> None:
    owner = catalogue.maker("result")
    listing = catalogue.published("result", owner)
    api.post(f"/results/{listing['id']}/withdraw", json={}, headers=owner.headers)
    assert indexer.drain() == 4  # created, submitted, published, withdrawn
    assert all(row.processed_at is not None for row in outbox_rows(engine))
    hits = api.get("/search/results", headers=owner.headers).json()["items"]
    assert [hit["status"] for hit in hits] == ["withdrawn"]


# --- operator endpoints ------------------------------------------------------------------


def failed_row(engine: Engine) -> int:
    with session_scope(engine) as session:
        row = OutboxEvent(
            topic="listing.changed",
            entity_type="result",
            entity_id=999,
            attempts=8,
            last_error="SearchError: boom",
            failed_at=utcnow(),
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def test_the_bureau_lists_and_retries_failures(
    api: TestClient, catalogue: Catalogue, engine: Engine
) -> None:
    row_id = failed_row(engine)
    headers = catalogue.bureau.headers
    page = api.get("/admin/outbox/failures", headers=headers).json()
    assert page["total"] == 1
    assert page["items"][0]["id"] == row_id
    assert page["items"][0]["last_error"] == "SearchError: boom"
    status = api.get("/admin/outbox/status", headers=headers).json()
    assert status["failed"] == 1
    assert status["search_engine"] == "available"

    retried = api.post(f"/admin/outbox/{row_id}/retry", headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["failed_at"] is None and retried.json()["attempts"] == 0
    assert api.get("/admin/outbox/failures", headers=headers).json()["total"] == 0
    assert api.get("/admin/outbox/status", headers=headers).json()["pending"] == 1
    assert api.post("/admin/outbox/123456/retry", headers=headers).status_code == 404


@pytest.mark.parametrize("who", ["institute", "enterprise", "broker", "org_admin"])
def test_only_the_bureau_may_see_or_retry_outbox_rows(
    api: TestClient, catalogue: Catalogue, engine: Engine, who: str
) -> None:
    row_id = failed_row(engine)
    accounts: dict[str, Account] = {
        "institute": catalogue.market.institute_member(),
        "enterprise": catalogue.market.enterprise_member(),
        "broker": catalogue.market.broker(),
        "org_admin": catalogue.market.org_admin(),
    }
    headers = accounts[who].headers
    assert api.get("/admin/outbox/failures", headers=headers).status_code == 403
    assert api.get("/admin/outbox/status", headers=headers).status_code == 403
    assert api.post(f"/admin/outbox/{row_id}/retry", headers=headers).status_code == 403
    assert api.get("/admin/outbox/failures").status_code == 401
    assert api.post(f"/admin/outbox/{row_id}/retry").status_code == 401
    [row] = outbox_rows(engine)
    assert row.failed_at is not None  # untouched


# --- reindex ------------------------------------------------------------------------------


def test_reindex_rebuilds_from_the_database_with_no_search_downtime(
    api: TestClient,
    catalogue: Catalogue,
    indexer: indexing.Indexer,
    engine: Engine,
    search_engine: SearchBackend,
) -> None:
    owner = catalogue.maker("result")
    kept = catalogue.published("result", owner)
    indexer.drain()
    # Drift: a document the database does not have, and a listing never indexed.
    stale = dict(search_engine.search("results", SearchQuery()).hits[0].document)
    stale.update(id="result-987654", listing_id=987654, title="早已删除的成果")
    search_engine.upsert("results", [stale])
    missing = catalogue.published("result", owner)
    changed_meanwhile = catalogue.published("result", owner)
    indexer.drain()
    search_engine.delete("results", [f"result-{missing['id']}"])
    seen_during_rebuild: list[list[int]] = []

    def progress(_indexed: int) -> None:
        # Searches keep answering from the old index while the new one fills ...
        seen_during_rebuild.append(sorted(ids_of(api.get("/search/results").json())))
        # ... and a change the rebuild has already read past must not be lost.
        api.post(f"/results/{changed_meanwhile['id']}/withdraw", json={}, headers=owner.headers)

    report = indexing.reindex(engine, search_engine, "results", progress)

    assert seen_during_rebuild == [sorted([kept["id"], 987654, changed_meanwhile["id"]])]
    assert report.indexed == 3 and report.reapplied >= 1
    public = api.get("/search/results").json()
    assert sorted(ids_of(public)) == sorted([kept["id"], missing["id"]])
    own = api.get("/search/results", headers=owner.headers, params={"status": "withdrawn"})
    assert ids_of(own.json()) == [changed_meanwhile["id"]]


# --- the worker inside `market serve` ------------------------------------------------------------


def test_the_in_process_worker_indexes_and_stops_with_the_app(
    engine: Engine, catalogue: Catalogue, tmp_path: Any
) -> None:
    from market.app import create_app
    from tests.support.settings import make_test_settings

    settings = make_test_settings(tmp_path, run_worker_in_process=True, outbox_poll_seconds=0.05)
    app = create_app(settings, engine)
    listing = catalogue.published("result", catalogue.maker("result"))
    with TestClient(app) as client:
        worker = app.state.search_worker
        assert worker is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if client.get("/search/results").json()["total"] == 1:
                break
            time.sleep(0.05)
        assert ids_of(client.get("/search/results").json()) == [listing["id"]]
    assert worker.stopping
    assert app.state.search_worker is None
    assert (tmp_path / "search.sqlite3").exists()  # the local engine's default file
    app.state.search_engine.close()


def test_draining_a_publication_notifies_matching_saved_searches(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    """The worker, not a test shortcut, turns a publication into inbox notifications."""
    watcher = catalogue.market.enterprise_member()
    saved = api.post(
        "/saved-searches",
        json={"catalogue": "results", "name": "正极材料", "q": "正极材料"},
        headers=watcher.headers,
    )
    assert saved.status_code == 201, saved.text
    owner = catalogue.maker("result")
    listing = catalogue.published("result", owner)
    assert api.get("/notifications", headers=watcher.headers).json()["unread"] == 0

    indexer.drain()
    inbox = api.get("/notifications", headers=watcher.headers).json()
    assert inbox["unread"] == 1
    assert listing["title"] in str(inbox["items"][0])
    indexer.drain()  # nothing due: no second notification
    assert api.get("/notifications", headers=watcher.headers).json()["unread"] == 1
