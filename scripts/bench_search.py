#!/usr/bin/env python
"""Search benchmark: indexing through the outbox, API search latency, matching latency.

One run on one machine, everything on loopback, everything stopped at the end:

1. a fresh database (SQLite file, or --database-url for an empty PostgreSQL database)
   gets `--count` published listings: the 1,000 real research records plus generated
   ones (real titles' keywords recombined, real abstract sentences reshuffled, within a
   discipline), 90 % results and 10 % demands, each with its "listing.changed" outbox
   row, as publication writes it;
2. a throwaway Meilisearch (.tools/meilisearch) indexes the same documents twice: raw
   bulk (`engine.upsert` of prebuilt documents, the engine's best path) and through the
   outbox (`market.discovery.indexing.Indexer`: rows -> load listings -> documents ->
   engine -> rows marked processed);
3. `uvicorn market.asgi:app` serves the API; the same keyword queries go to
   GET /search/results and straight to Meilisearch with the parameters the engine
   sends, one after the other for each query (persistent HTTP sessions on both sides,
   `Accept-Encoding: identity`);
4. GET /demands/{id}/matches as a broker (engine query, re-ranking, storing), the same
   as bureau staff (nothing is stored for them: the difference is the cost of storing
   the shown matches), and the matcher in-process (engine + re-ranking only).

    .venv/bin/python scripts/bench_search.py                  # 100,000 listings
    .venv/bin/python scripts/bench_search.py --count 20000 --queries 200

Targets (issue 3): API p50 within 1.5x of the engine's, API p95 < 25 ms, matching
p95 < 30 ms, outbox indexing >= 0.8x raw bulk.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from market import migrate  # noqa: E402
from market.auth.models import Role, User  # noqa: E402
from market.auth.organization import (  # noqa: E402
    Organization,
    OrganizationKind,
    VerificationStatus,
)
from market.auth.tokens import issue_access_token  # noqa: E402
from market.config import Settings  # noqa: E402
from market.db import make_engine, session_scope  # noqa: E402
from market.demo import field_for_discipline  # noqa: E402
from market.discovery.documents import search_document  # noqa: E402
from market.discovery.indexing import Indexer, OutboxPolicy  # noqa: E402
from market.discovery.schemas import DEFAULT_RESULT_FACETS  # noqa: E402
from market.listings.models import (  # noqa: E402
    Demand,
    IpForm,
    ListingStatus,
    MaturityStage,
    Result,
    TransferMode,
)
from market.outbox.models import OutboxEvent  # noqa: E402
from search.backend import SearchQuery  # noqa: E402
from search.documents import RESULTS_SCHEMA  # noqa: E402
from search.matching import find_matches  # noqa: E402
from search.meili import MeilisearchEngine, _search_params  # noqa: E402
from search.text import extract_key_terms  # noqa: E402

RECORDS_FILE = REPO_ROOT / "market" / "data" / "csl_research_results.json"
DEMAND_SHARE = 10  # one listing in ten is a demand
INSERT_CHUNK = 5_000
LOOPBACK = "127.0.0.1"
# The facets GET /search/results asks for when the request names none (the benchmark's
# requests name none): the engine baseline must do the same work.
API_RESULT_FACETS = tuple(str(facet) for facet in DEFAULT_RESULT_FACETS)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    institute_id: int
    enterprise_id: int
    author_id: int
    requester_id: int
    broker_user_id: int
    bureau_user_id: int


def seed_cast(db: Engine) -> Cast:
    with session_scope(db) as session:
        ids: dict[str, int] = {}
        for kind in (
            OrganizationKind.INSTITUTE,
            OrganizationKind.ENTERPRISE,
            OrganizationKind.BROKER_AGENCY,
            OrganizationKind.BUREAU,
        ):
            organization = Organization(
                name=f"基准{kind}",
                kind=kind,
                credit_code=f"BENCH{kind[:8]:0>13}"[:18],
                district_code="330212",
                verification_status=VerificationStatus.VERIFIED,
            )
            session.add(organization)
            session.flush()
            assert organization.id is not None
            ids[kind] = organization.id
        users: dict[str, int] = {}
        for key, organization_id, role in (
            ("author", ids[OrganizationKind.INSTITUTE], Role.MEMBER),
            ("requester", ids[OrganizationKind.ENTERPRISE], Role.MEMBER),
            ("broker", ids[OrganizationKind.BROKER_AGENCY], Role.BROKER),
            ("bureau", ids[OrganizationKind.BUREAU], Role.BUREAU_STAFF),
        ):
            user = User(
                email=f"{key}@bench.example.cn",
                display_name=key,
                password_hash="!bench",  # noqa: S106 - cannot log in
                role=role,
                organization_id=organization_id,
            )
            session.add(user)
            session.flush()
            assert user.id is not None
            users[key] = user.id
    return Cast(
        ids[OrganizationKind.INSTITUTE],
        ids[OrganizationKind.ENTERPRISE],
        users["author"],
        users["requester"],
        users["broker"],
        users["bureau"],
    )


def load_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(RECORDS_FILE.read_text(encoding="utf-8"))
    return records


class Generator:
    """Listings made of real pieces, recombined within a discipline."""

    SUFFIXES = ("方法", "技术", "系统", "工艺", "装置", "研究", "应用")

    def __init__(self, records: list[dict[str, Any]], seed: int) -> None:
        self.records = records
        self.random = random.Random(seed)
        self.by_discipline: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            self.by_discipline.setdefault(record["discipline"], []).append(record)

    def topic(self, index: int) -> dict[str, Any]:
        """Record `index` itself for the first 1,000, a recombination after that."""
        if index < len(self.records):
            return self.records[index]
        base = self.random.choice(self.records)
        other = self.random.choice(self.by_discipline[base["discipline"]])
        keywords = _clean(base["keywords"])[:2] + _clean(other["keywords"])[:2]
        first, second = [*keywords, "新型", "材料"][:2]
        sentences = _sentences(base["abstract"]) + _sentences(other["abstract"])
        self.random.shuffle(sentences)
        return {
            "title": f"基于{first}的{second}{self.random.choice(self.SUFFIXES)}",
            "abstract": "。".join(sentences[:4]) + "。",
            "keywords": list(dict.fromkeys(keywords)),
            "discipline": base["discipline"],
        }


def _clean(keywords: list[str]) -> list[str]:
    return [keyword.strip() for keyword in keywords if 0 < len(keyword.strip()) <= 30]


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in text.replace(".", "。").split("。") if len(part.strip()) > 4]


def result_row(cast: Cast, topic: dict[str, Any], index: int, now: datetime) -> dict[str, Any]:
    price = None if index % 5 in (0, 3) else (5 + (index * 37) % 196) * 1_000_000
    modes = list(TransferMode)
    return Result(
        organization_id=cast.institute_id,
        created_by_user_id=cast.author_id,
        title=topic["title"][:200],
        summary=topic["abstract"][:5000],
        keywords=_clean(topic["keywords"])[:10],
        field=field_for_discipline(topic["discipline"]),
        district_code="330212",
        ip_form=IpForm.OTHER,
        maturity_stage=list(MaturityStage)[index % 4],
        transfer_modes=f"|{modes[index % 5]}|{modes[(index + 2) % 5]}|",
        price_fen=price,
        price_negotiable=price is None,
        discipline=topic["discipline"],
        status=ListingStatus.PUBLISHED,
        published_at=now,
        submitted_at=now,
        valid_from=date.today(),
        valid_until=date.today() + timedelta(days=730),
    ).model_dump(exclude={"id"})


def demand_row(cast: Cast, topic: dict[str, Any], index: int, now: datetime) -> dict[str, Any]:
    keywords = _clean(topic["keywords"])[:3]
    budget = (10 + index % 300) * 1_000_000
    return Demand(
        organization_id=cast.enterprise_id,
        created_by_user_id=cast.requester_id,
        title=f"寻求{'、'.join(keywords[:2]) or topic['title'][:20]}相关技术"[:200],
        description=topic["abstract"][:5000],
        keywords=keywords,
        field=field_for_discipline(topic["discipline"]),
        district_code="330212",
        cooperation_modes="|合作开发|转让|",
        budget_min_fen=0,
        budget_max_fen=budget,
        status=ListingStatus.PUBLISHED,
        published_at=now,
        submitted_at=now,
        valid_from=date.today(),
        valid_until=date.today() + timedelta(days=365),
    ).model_dump(exclude={"id"})


def load_listings(db: Engine, cast: Cast, count: int, seed: int) -> tuple[int, int]:
    """Insert published listings and their outbox rows in chunks; (results, demands)."""
    generator = Generator(load_records(), seed)
    now = datetime.now(UTC)
    results = demands = 0
    for start in range(0, count, INSERT_CHUNK):
        result_rows, demand_rows = [], []
        for index in range(start, min(start + INSERT_CHUNK, count)):
            topic = generator.topic(index)
            is_demand = index >= len(generator.records) and index % DEMAND_SHARE == 0
            if is_demand:
                demand_rows.append(demand_row(cast, topic, index, now))
            else:
                result_rows.append(result_row(cast, topic, index, now))
        with session_scope(db) as session:
            _insert_with_outbox(session, Result, "result", result_rows)
            _insert_with_outbox(session, Demand, "demand", demand_rows)
        results += len(result_rows)
        demands += len(demand_rows)
        log(f"  database: {results + demands:,}/{count:,} listings")
    return results, demands


def _insert_with_outbox(
    session: Session, model: type[Result] | type[Demand], kind: str, rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    before = session.exec(select(col(model.id)).order_by(col(model.id).desc())).first() or 0
    session.execute(insert(model), rows)
    new_ids = session.exec(select(col(model.id)).where(col(model.id) > before)).all()
    session.execute(
        insert(OutboxEvent),
        [
            {
                "topic": "listing.changed",
                "entity_type": kind,
                "entity_id": listing_id,
                "payload": {"status": "published"},
                "created_at": datetime.now(UTC),
                "available_at": datetime.now(UTC),
                "attempts": 0,
                "last_error": "",
            }
            for listing_id in new_ids
        ],
    )


def documents_from_database(db: Engine) -> dict[str, list[dict[str, Any]]]:
    documents: dict[str, list[dict[str, Any]]] = {"results": [], "demands": []}
    with Session(db) as session:
        for model, catalogue in ((Result, "results"), (Demand, "demands")):
            for row in session.exec(select(model).order_by(col(model.id))):
                documents[catalogue].append(search_document(cast("Result | Demand", row)))
    return documents


# --- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    p50: float
    p95: float
    count: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        milliseconds = sorted(value * 1000 for value in seconds)
        p95_index = max(0, round(0.95 * len(milliseconds)) - 1)
        return cls(statistics.median(milliseconds), milliseconds[p95_index], len(milliseconds))


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def raw_bulk(meili: MeilisearchEngine, documents: dict[str, list[dict[str, Any]]]) -> float:
    """Docs/s of `upsert` with prebuilt documents: every batch enqueued, then awaited."""
    meili.ensure_indexes()
    total = sum(len(batch) for batch in documents.values())
    started = time.perf_counter()
    for catalogue, batch in documents.items():
        meili.upsert(catalogue, batch)  # type: ignore[arg-type]
    return total / (time.perf_counter() - started)


def outbox_indexing(
    db: Engine, meili: MeilisearchEngine, batch_size: int, total: int, depth: int
) -> float:
    """Rows/s through the discovery worker, run as the worker loop runs it (`step`:
    claim rows, load listings, build and send documents up to `depth` batches ahead of
    the one being waited for, settle rows once their tasks succeeded)."""
    indexer = Indexer(db, meili, OutboxPolicy(batch_size=batch_size, pipeline_depth=depth))
    meili.ensure_indexes()
    started = time.perf_counter()
    settled = 0
    last_report = started
    while True:
        handled = indexer.step()
        if handled == 0:
            break
        settled += handled
        if time.perf_counter() - last_report > 10:
            last_report = time.perf_counter()
            log(f"  outbox: {settled:,}/{total:,} rows")
    return settled / (time.perf_counter() - started)


def keyword_queries(count: int, seed: int) -> list[str]:
    """Two key terms of a random real record: what people type into a search box."""
    chooser = random.Random(seed)
    records = load_records()
    queries: list[str] = []
    while len(queries) < count:
        terms = extract_key_terms("", chooser.choice(records)["keywords"])[:2]
        if terms:
            queries.append(" ".join(terms))
    return queries


def search_latencies(
    base_url: str, meili_url: str, key: str, index_uid: str, queries: Sequence[str]
) -> tuple[list[float], list[float]]:
    """Each query through the API, then the same search straight to Meilisearch with the
    parameters the engine sends: interleaved, so that both see the same machine (other
    work on a shared machine would otherwise land on one side of the comparison)."""
    api_seconds: list[float] = []
    engine_seconds: list[float] = []
    bodies = {query: _engine_body(query) for query in queries}  # built outside the timing
    with (
        _session(base_url) as api,
        _session(meili_url, {"Authorization": f"Bearer {key}"}) as engine,
    ):

        def through_api(query: str) -> httpx.Response:
            return api.get("/search/results", params={"q": query})

        def straight(query: str) -> httpx.Response:
            return engine.post(f"/indexes/{index_uid}/search", json=bodies[query])

        for query in queries[:20]:  # warm-up
            through_api(query)
            straight(query)
        for query in queries:
            api_seconds.append(_timed_request(functools.partial(through_api, query)))
            engine_seconds.append(_timed_request(functools.partial(straight, query)))
    return api_seconds, engine_seconds


def _timed_request(send: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    response = send()
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds


def _engine_body(text: str) -> dict[str, Any]:
    query = SearchQuery(text=text, facets=API_RESULT_FACETS, highlight=True, limit=20)
    return {"q": text, **_search_params(RESULTS_SCHEMA, query)}


def matching_latencies(base_url: str, token: str, demand_ids: Sequence[int]) -> list[float]:
    with _session(base_url, {"Authorization": f"Bearer {token}"}) as client:
        for demand_id in demand_ids[:10]:
            client.get(f"/demands/{demand_id}/matches")
        latencies = []
        for demand_id in demand_ids:
            started = time.perf_counter()
            response = client.get(f"/demands/{demand_id}/matches")
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
    return latencies


def matcher_latencies(meili: MeilisearchEngine, demands: Sequence[dict[str, Any]]) -> list[float]:
    return [
        timed(functools.partial(find_matches, meili, "demand_to_results", demand))
        for demand in demands
    ]


@contextmanager
def _session(base_url: str, headers: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    # identity: a persistent session asking for gzip stalls ~44 ms per response
    # on loopback (shared/notes/meilisearch.md).
    with httpx.Client(
        base_url=base_url, timeout=30.0, headers={"Accept-Encoding": "identity", **(headers or {})}
    ) as client:
        yield client


# --- the servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextmanager
def api_server(env: dict[str, str], workdir: Path) -> Iterator[str]:
    port = free_port()
    log_file = (workdir / "uvicorn.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and app
        [
            sys.executable,
            "-m",
            "uvicorn",
            "market.asgi:app",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_for(url + "/health", process, workdir / "uvicorn.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()


def _wait_for(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("uvicorn did not answer /health within 60 s")


# --- the run -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from tests.support.meili_server import meilisearch_binary, running_meilisearch

    binary = meilisearch_binary()
    if binary is None:
        raise SystemExit("Meilisearch binary not found; run scripts/install-meilisearch.sh")
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    log(f"database {database_url.split('@')[-1]}: migrating")
    migrate.upgrade(database_url)
    db = make_engine(database_url)
    cast = seed_cast(db)
    started = time.perf_counter()
    results, demands = load_listings(db, cast, args.count, args.seed)
    figures: dict[str, Any] = {
        "count": args.count,
        "results": results,
        "demands": demands,
        "batch_size": args.batch_size,
        "depth": args.pipeline_depth,
        "database": db.dialect.name,
        "database_load_s": time.perf_counter() - started,
    }
    with running_meilisearch(workdir / "meili", binary=binary) as server:
        log("building documents from the database")
        started = time.perf_counter()
        documents = documents_from_database(db)
        figures["document_build_per_s"] = args.count / (time.perf_counter() - started)
        log("raw bulk indexing")
        raw = MeilisearchEngine(server.url, server.master_key, index_prefix="raw")
        figures["raw_bulk_per_s"] = raw_bulk(raw, documents)
        raw.drop_indexes()
        del documents
        log(f"  raw bulk: {figures['raw_bulk_per_s']:,.0f} docs/s; outbox indexing")
        live = MeilisearchEngine(server.url, server.master_key, index_prefix="bench")
        figures["outbox_per_s"] = outbox_indexing(
            db, live, args.batch_size, args.count, args.pipeline_depth
        )
        log(f"  outbox: {figures['outbox_per_s']:,.0f} rows/s")
        secret = secrets.token_urlsafe(48)
        env = {
            "MARKET_ENVIRONMENT": "development",
            "MARKET_JWT_SECRET": secret,
            "MARKET_DATABASE_URL": database_url,
            "MARKET_DATA_DIR": str(workdir),
            "MARKET_SEARCH_BACKEND": "meilisearch",
            "MARKET_MEILI_URL": server.url,
            "MARKET_MEILI_MASTER_KEY": server.master_key,
            "MARKET_MEILI_INDEX_PREFIX": "bench",
            "MARKET_RUN_WORKER_IN_PROCESS": "false",
            "MARKET_LOAD_DEMO_DATA": "false",
        }
        queries = keyword_queries(args.queries, args.seed)
        with api_server(env, workdir) as base_url:
            log(f"API search vs engine: {len(queries)} queries each")
            api, engine = search_latencies(
                base_url, server.url, server.master_key, live.index_uid("results"), queries
            )
            figures["api_search"] = Latency.of(api)
            figures["engine_search"] = Latency.of(engine)
            demand_ids, demand_features = sample_demands(db, args.matches, args.seed)
            settings = Settings(jwt_secret=secret)
            token, _ = issue_access_token(settings, cast.broker_user_id, 0)
            log(f"matching: {len(demand_ids)} demands over HTTP and in-process")
            figures["api_matching"] = Latency.of(matching_latencies(base_url, token, demand_ids))
            bureau_token, _ = issue_access_token(settings, cast.bureau_user_id, 0)
            figures["api_matching_unstored"] = Latency.of(
                matching_latencies(base_url, bureau_token, demand_ids)
            )
            figures["matcher"] = Latency.of(matcher_latencies(live, demand_features))
    return figures


def sample_demands(db: Engine, count: int, seed: int) -> tuple[list[int], list[dict[str, Any]]]:
    with Session(db) as session:
        ids = [row for row in session.exec(select(col(Demand.id))).all() if row is not None]
        chosen = random.Random(seed).sample(ids, min(count, len(ids)))
        rows = [session.get(Demand, demand_id) for demand_id in chosen]
        return chosen, [search_document(row) for row in rows if row is not None]


def report(figures: dict[str, Any]) -> None:
    api, engine = figures["api_search"], figures["engine_search"]
    matching, matcher = figures["api_matching"], figures["matcher"]
    unstored = figures["api_matching_unstored"]
    ratio = figures["outbox_per_s"] / figures["raw_bulk_per_s"]
    print(
        f"\nlistings {figures['count']:,} ({figures['results']:,} results, "
        f"{figures['demands']:,} demands) on {figures['database']}; "
        f"database load {figures['database_load_s']:.0f} s"
    )
    print(f"{'measure':<50} {'value':>14} {'target':>18}")
    rows = [
        ("documents built from rows (docs/s)", f"{figures['document_build_per_s']:,.0f}", ""),
        ("raw bulk indexing (docs/s)", f"{figures['raw_bulk_per_s']:,.0f}", ""),
        (
            f"outbox indexing (rows/s; batch {figures['batch_size']}, depth {figures['depth']})",
            f"{figures['outbox_per_s']:,.0f}",
            "",
        ),
        ("outbox / raw bulk", f"{ratio:.2f}x", ">= 0.80x"),
        ("engine search p50 / p95 (ms)", f"{engine.p50:.1f} / {engine.p95:.1f}", ""),
        ("API search p50 / p95 (ms)", f"{api.p50:.1f} / {api.p95:.1f}", "p95 < 25"),
        ("API p50 / engine p50", f"{api.p50 / engine.p50:.2f}x", "<= 1.50x"),
        (
            "matching over HTTP p50 / p95 (ms)",
            f"{matching.p50:.1f} / {matching.p95:.1f}",
            "p95 < 30",
        ),
        ("matching, bureau: nothing stored (ms)", f"{unstored.p50:.1f} / {unstored.p95:.1f}", ""),
        ("matcher in-process p50 / p95 (ms)", f"{matcher.p50:.1f} / {matcher.p95:.1f}", ""),
    ]
    for name, value, target in rows:
        print(f"{name:<50} {value:>14} {target:>18}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Search and matching benchmark")
    parser.add_argument("--count", type=int, default=100_000, help="listings (default 100000)")
    parser.add_argument("--queries", type=int, default=300, help="search queries (default 300)")
    parser.add_argument("--matches", type=int, default=100, help="demands to match (default 100)")
    defaults = Settings.model_fields
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults["outbox_batch_size"].default,
        help="outbox batch (default: the service's, %(default)s)",
    )
    parser.add_argument(
        "--pipeline-depth",
        type=int,
        default=defaults["outbox_pipeline_depth"].default,
        help="outbox batches sent ahead (0: send-wait-settle; default %(default)s)",
    )
    parser.add_argument("--database-url", default="", help="an EMPTY database; default SQLite")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as folder:
        figures = run(args, Path(folder))
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
