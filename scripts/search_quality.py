#!/usr/bin/env python
"""Search quality on the real research records (market/data/csl_research_results.json).

Two measures, on the embedded engine and on a real Meilisearch:

- known-item MRR@10: the query is a record's own keywords (as the matcher builds
  queries: segmented, at most 10 words, "frequency" strategy); the reciprocal rank of
  that record in the top 10, averaged (0 when it is not there);
- demand -> result P@10: a demand written from a record's topic, as an enterprise would
  phrase it ("寻求" + its keywords + "相关技术解决方案", never the record's title), and the
  share of the top-10 results (the record itself left out) in the record's discipline.
  Reported for the engine alone and for the full matcher (engine + re-ranking, the
  demand carrying the key field a real demand has).

    .venv/bin/python scripts/search_quality.py                 # both engines, 1,000 records
    .venv/bin/python scripts/search_quality.py --engines local --count 200

Meilisearch runs from .tools/meilisearch (or MARKET_MEILI_BINARY) on a free loopback
port with a throwaway data folder, and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from market.demo import field_for_discipline  # noqa: E402
from search.backend import SearchBackend, SearchQuery  # noqa: E402
from search.documents import result_document  # noqa: E402
from search.local import LocalSearchEngine  # noqa: E402
from search.matching import build_query, find_matches  # noqa: E402
from search.meili import MeilisearchEngine  # noqa: E402
from search.text import extract_key_terms  # noqa: E402

RECORDS_FILE = REPO_ROOT / "market" / "data" / "csl_research_results.json"
TOP = 10


@dataclass(frozen=True)
class Quality:
    engine: str
    records: int
    known_item_mrr: float
    known_item_found: float  # share of records in the top 10 at all
    demand_p10_engine: float
    demand_p10_matcher: float
    # The best any ranking could do: few disciplines have 10 other records.
    demand_p10_ceiling: float
    demands: int
    seconds: float


def load_records(count: int | None = None) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(RECORDS_FILE.read_text(encoding="utf-8"))
    return records[:count] if count else records


def record_document(position: int, record: dict[str, Any]) -> dict[str, Any]:
    """A published result document of a record; `listing_id` is its position."""
    return dict(result_document({
        "listing_id": position,
        "title": record["title"][:200],
        "summary": record["abstract"][:5000],
        "keywords": [keyword for keyword in record["keywords"] if keyword.strip()],
        "field": field_for_discipline(record["discipline"]).value,
        "discipline": record["discipline"],
        "status": "published",
    }))


def demand_from(record: dict[str, Any]) -> dict[str, Any]:
    """How an enterprise would ask for this record's topic: its words, not its title."""
    keywords = [keyword for keyword in record["keywords"] if keyword.strip()]
    return {
        "listing_id": 0,
        "title": f"寻求{'、'.join(keywords[:3])}相关技术解决方案",
        "keywords": [],
        "field": field_for_discipline(record["discipline"]).value,
    }


def known_item_ranks(engine: SearchBackend, records: Sequence[dict[str, Any]]) -> list[int | None]:
    """Rank (1-based) of each record for a query of its own keywords; None past TOP."""
    ranks: list[int | None] = []
    for position, record in enumerate(records):
        terms = extract_key_terms("", record["keywords"])
        page = engine.search("results", SearchQuery(
            text=" ".join(terms), limit=TOP, matching_strategy="frequency"))
        ids = [hit.document["listing_id"] for hit in page.hits]
        ranks.append(ids.index(position) + 1 if position in ids else None)
    return ranks


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    return sum(1 / rank for rank in ranks if rank) / len(ranks) if ranks else 0.0


def demand_precision(
    engine: SearchBackend, records: Sequence[dict[str, Any]], sample: Sequence[int]
) -> tuple[float, float]:
    """P@10 (same discipline) of the engine alone and of the matcher, averaged."""
    engine_scores: list[float] = []
    matcher_scores: list[float] = []
    for position in sample:
        record = records[position]
        demand = demand_from(record)
        page = engine.search("results", SearchQuery(
            text=build_query(demand).text, limit=TOP + 1, matching_strategy="frequency"))
        engine_ids = [hit.document["listing_id"] for hit in page.hits]
        engine_scores.append(_precision(records, record, engine_ids, position))
        matches = find_matches(engine, "demand_to_results", demand, limit=TOP + 1)
        matcher_ids = [match.listing_id for match in matches]
        matcher_scores.append(_precision(records, record, matcher_ids, position))
    return _mean(engine_scores), _mean(matcher_scores)


def _precision(
    records: Sequence[dict[str, Any]], record: dict[str, Any], ids: list[int], itself: int
) -> float:
    others = [listing_id for listing_id in ids if listing_id != itself][:TOP]
    same = sum(records[listing_id]["discipline"] == record["discipline"] for listing_id in others)
    return same / TOP


def _ceiling(records: Sequence[dict[str, Any]], position: int) -> float:
    discipline = records[position]["discipline"]
    others = sum(record["discipline"] == discipline for record in records) - 1
    return min(others, TOP) / TOP


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def measure(
    name: str, engine: SearchBackend, records: Sequence[dict[str, Any]], sample_size: int,
    seed: int = 7,
) -> Quality:
    started = time.perf_counter()
    engine.ensure_indexes()
    engine.upsert("results", [record_document(i, record) for i, record in enumerate(records)])
    ranks = known_item_ranks(engine, records)
    sample = random.Random(seed).sample(range(len(records)), min(sample_size, len(records)))
    engine_p10, matcher_p10 = demand_precision(engine, records, sample)
    ceiling = _mean([_ceiling(records, position) for position in sample])
    return Quality(
        engine=name, records=len(records), known_item_mrr=mean_reciprocal_rank(ranks),
        known_item_found=sum(rank is not None for rank in ranks) / len(ranks),
        demand_p10_engine=engine_p10, demand_p10_matcher=matcher_p10,
        demand_p10_ceiling=ceiling, demands=len(sample),
        seconds=time.perf_counter() - started,
    )


@contextmanager
def meilisearch_engine() -> Iterator[SearchBackend]:
    from tests.support.meili_server import meilisearch_binary, running_meilisearch

    binary = meilisearch_binary()
    if binary is None:
        raise SystemExit("Meilisearch binary not found; run scripts/install-meilisearch.sh")
    with tempfile.TemporaryDirectory() as folder, \
            running_meilisearch(Path(folder), binary=binary) as server:
        engine = MeilisearchEngine(server.url, server.master_key,
                                   index_prefix=f"quality_{uuid.uuid4().hex[:8]}")
        yield engine


@contextmanager
def local_engine() -> Iterator[SearchBackend]:
    engine = LocalSearchEngine()
    try:
        yield engine
    finally:
        engine.close()


ENGINES: dict[str, Callable[[], Any]] = {"local": local_engine, "meili": meilisearch_engine}


def print_table(results: Sequence[Quality]) -> None:
    print(f"{'engine':<7} {'records':>7} {'MRR@10':>7} {'found@10':>8} "
          f"{'demands':>7} {'P@10 engine':>11} {'P@10 matcher':>12} {'P@10 ceiling':>12} "
          f"{'seconds':>7}")
    for quality in results:
        print(f"{quality.engine:<7} {quality.records:>7} {quality.known_item_mrr:>7.3f} "
              f"{quality.known_item_found:>8.3f} {quality.demands:>7} "
              f"{quality.demand_p10_engine:>11.3f} {quality.demand_p10_matcher:>12.3f} "
              f"{quality.demand_p10_ceiling:>12.3f} {quality.seconds:>7.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--engines", default="local,meili", help="comma-separated: local,meili")
    parser.add_argument("--count", type=int, default=None, help="first N records (default all)")
    parser.add_argument("--sample", type=int, default=200, help="demands to write (default 200)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    records = load_records(args.count)
    results: list[Quality] = []
    for name in args.engines.split(","):
        print(f"measuring {name} on {len(records)} records ...", file=sys.stderr, flush=True)
        with ENGINES[name]() as engine:
            results.append(measure(name, engine, records, args.sample, args.seed))
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
