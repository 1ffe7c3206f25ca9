"""The outbox and the search index as tests see them: seeding listings with their outbox
rows, reading back what the database and an engine hold, and draining with workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from market.db import session_scope, utcnow
from market.discovery import indexing
from market.listings.models import IpForm, ListingStatus, MaturityStage, Result, TechField
from market.outbox.models import OutboxEvent
from search.backend import SearchQuery, SortKey, Visibility
from search.documents import Catalogue as CatalogueName
from search.worker import WorkerLoop
from tests.support.factories import Market

# Quick retries, so backoff tests need no sleeping beyond a few milliseconds.
TEST_POLICY = indexing.OutboxPolicy(
    batch_size=100, max_attempts=3, backoff_base_seconds=0.001, backoff_max_seconds=0.01
)


def ids_of(page: dict[str, Any]) -> list[int]:
    """The ids of one page of an API list answer."""
    return [item["id"] for item in page["items"]]


def seed_results(engine: Engine, market: Market, count: int) -> None:
    """`count` results with their outbox rows: mostly published, some withdrawn or
    submitted, and every tenth a draft deleted since (its document must go)."""
    owner = market.institute_member()
    statuses = [ListingStatus.PUBLISHED] * 7 + [ListingStatus.WITHDRAWN, ListingStatus.SUBMITTED]
    with session_scope(engine) as session:
        rows = [
            Result(
                organization_id=owner.organization_id,
                created_by_user_id=owner.user_id,
                title=f"高镍三元正极材料共沉淀制备方法第{number}号",
                summary="循环寿命提升" * 5,
                keywords=["正极材料", f"批次{number}"],
                field=TechField.NEW_MATERIALS,
                district_code="330212",
                status=statuses[number % len(statuses)],
                published_at=utcnow(),
                ip_form=IpForm.TECHNICAL_SECRET,
                maturity_stage=MaturityStage.PILOT,
                transfer_modes="|转让|",
                price_fen=100 * number,
            )
            for number in range(count)
        ]
        session.add_all(rows)
        session.flush()
        for number, row in enumerate(rows):
            assert row.id is not None
            session.add(
                OutboxEvent(
                    topic="listing.changed",
                    entity_type="result",
                    entity_id=row.id,
                    payload={"status": row.status},
                )
            )
            if number % 10 == 9:
                session.delete(row)


def database_view(engine: Engine) -> dict[int, str]:
    with session_scope(engine) as session:
        rows = session.exec(select(Result.id, Result.status)).all()
    return {row_id: str(status) for row_id, status in rows if row_id is not None}


def index_view(search_engine: Any, catalogue: CatalogueName = "results") -> dict[int, str]:
    view: dict[int, str] = {}
    offset = 0
    while True:
        page = search_engine.search(
            catalogue,
            SearchQuery(
                visibility=Visibility.everything(),
                sort=(SortKey("listing_id"),),
                offset=offset,
                limit=100,
            ),
        )
        view.update({hit.document["listing_id"]: hit.document["status"] for hit in page.hits})
        offset += 100
        if offset >= page.total:
            return view


def processed_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(
            session.exec(
                select(func.count()).where(col(OutboxEvent.processed_at).is_not(None))
            ).one()
        )


def unsettled_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(
            session.exec(select(func.count()).where(col(OutboxEvent.processed_at).is_(None))).one()
        )


def wait_for(condition: Any, timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def drain_with_two_workers(engine: Engine, make_step: Callable[[], Callable[[], int]]) -> None:
    """Two worker threads, each looping over its own `make_step()`, until the outbox is
    drained."""
    loops = [WorkerLoop(step=make_step(), poll_seconds=0.01) for _ in range(2)]
    for number, loop in enumerate(loops):
        loop.start_thread(name=f"worker-{number}")
    try:
        wait_for(lambda: unsettled_count(engine) == 0, 120, "both workers to drain")
    finally:
        for loop in loops:
            loop.stop_thread()
