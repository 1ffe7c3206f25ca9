"""Benchmark (not a test): the bureau's dashboard queries over one million ledger entries.

Creates a throw-away PostgreSQL database, migrates it, fills it with synthetic
contracts and 1,000,000 ledger entries spread over 2016-2026 (registrations, changes
and cancellations, in the proportions a real registry sees), rebuilds the monthly
roll-up from them (`market.contracts.rollup.rebuild`, what `market stats rebuild-rollup`
does), then times every dashboard query through the stats service: the summary, each
breakdown, and progress against the target, as of today and as of past days. Each query
runs twice: as the application answers it (roll-up plus the as-of month's entries) and
summed straight from the ledger (the baseline, `source="ledger"`); both answers must be
equal. Prints p50/p95 per query and source; the target is p95 < 100 ms.

    flock /tmp/techmarket-bench.lock .venv/bin/python scripts/bench_stats.py \
        --server postgresql+psycopg://postgres@127.0.0.1:5432/postgres [--runs 30] [--keep]
"""

from __future__ import annotations

import argparse
import functools
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import date

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from market import migrate
from market.contracts import rollup
from market.db import make_engine
from market.stats import service
from market.stats.schemas import Dimension

CONTRACTS = 600_000
CHANGES = 300_000  # one in two contracts is corrected once ...
CANCELLATIONS = 100_000  # ... and one in six is cancelled: 1,000,000 entries in all

FILL = [
    # The cast: sellers, buyers and brokers in every district, one bureau user.
    """INSERT INTO organizations (name, kind, credit_code, district_code, address, contact_name,
           contact_phone, description, verification_status, verification_note, created_at,
           updated_at)
       SELECT 'bench org ' || n,
              (ARRAY['university','institute','enterprise','broker_agency'])[1 + n % 4],
              lpad(n::text, 18, '0'),
              (ARRAY['330203','330205','330206','330211','330212','330213','330225','330226',
                     '330281','330282'])[1 + n % 10],
              '', '', '', '', 'verified', '', now(), now()
       FROM generate_series(1, 200) AS n""",
    """INSERT INTO users (email, display_name, password_hash, role, organization_id, is_active,
           token_version, created_at)
       VALUES ('bench@example.cn', 'bench', 'x', 'bureau_staff', 1, true, 0, now())""",
    # Registered contracts, signed across eleven years.
    """INSERT INTO contracts (title, contract_type, field, seller_organization_id, seller_name,
           seller_kind, seller_district_code, buyer_organization_id, buyer_name, buyer_kind,
           buyer_district_code, broker_organization_id, signed_on, term_start, term_end,
           total_amount_fen, technology_amount_fen, currency, status, status_reason,
           registration_number, registered_on, registered_at, revision, created_by_user_id,
           created_at, updated_at)
       SELECT 'bench contract ' || n,
              (ARRAY['技术开发','技术转让','技术许可','技术咨询','技术服务'])[1 + n % 5],
              (ARRAY['智能经济','新材料','高端装备','节能环保','绿色石化','时尚产业','健康产业',
                     '海洋产业','现代物流','现代农业'])[1 + n % 10],
              s.id, s.name, s.kind, s.district_code, b.id, b.name, b.kind, b.district_code,
              CASE WHEN n % 3 = 0 THEN 3 + 4 * (n % 50) END,
              d, d, d + 365, amount, amount - amount / 10, 'CNY', 'registered', '',
              '3302' || n, d, d::timestamptz, 1, 1, now(), now()
       FROM generate_series(1::bigint, :contracts) AS n
       CROSS JOIN LATERAL (SELECT date '2016-01-01' + (n * 7919 % 4000)::int AS d,
                                  (1000000 + n * 104729 % 500000000)::bigint AS amount) AS v
       JOIN organizations s ON s.id = 1 + n % 200
       JOIN organizations b ON b.id = 1 + (n + 1 + (n / 200) % 199) % 200""",
    """INSERT INTO ledger_entries (contract_id, sequence, kind, delta_total_fen,
           delta_technology_fen, delta_count, effective_on, effective_year, effective_quarter,
           effective_month, recorded_at, recorded_by_user_id, contract_type, field,
           seller_district_code, buyer_district_code, seller_kind, buyer_kind,
           broker_organization_id)
       SELECT id, 1, 'registration', total_amount_fen, technology_amount_fen, 1, registered_on,
              extract(year FROM registered_on), extract(quarter FROM registered_on),
              extract(month FROM registered_on), registered_at, 1, contract_type, field,
              seller_district_code, buyer_district_code, seller_kind, buyer_kind,
              broker_organization_id
       FROM contracts""",
    """INSERT INTO ledger_entries (contract_id, sequence, kind, delta_total_fen,
           delta_technology_fen, delta_count, effective_on, effective_year, effective_quarter,
           effective_month, recorded_at, recorded_by_user_id, contract_type, field,
           seller_district_code, buyer_district_code, seller_kind, buyer_kind,
           broker_organization_id)
       SELECT contract_id, 2, 'change', 1000, 900, 0, effective_on, effective_year,
              effective_quarter, effective_month, recorded_at + interval '30 days', 1,
              contract_type, field, seller_district_code, buyer_district_code, seller_kind,
              buyer_kind, broker_organization_id
       FROM ledger_entries WHERE kind = 'registration' AND contract_id % 2 = 0
       LIMIT :changes""",
    """INSERT INTO ledger_entries (contract_id, sequence, kind, delta_total_fen,
           delta_technology_fen, delta_count, effective_on, effective_year, effective_quarter,
           effective_month, recorded_at, recorded_by_user_id, contract_type, field,
           seller_district_code, buyer_district_code, seller_kind, buyer_kind,
           broker_organization_id)
       SELECT contract_id, 3, 'cancellation', -(delta_total_fen + 1000),
              -(delta_technology_fen + 900), -1, effective_on, effective_year,
              effective_quarter, effective_month, recorded_at + interval '90 days', 1,
              contract_type, field, seller_district_code, buyer_district_code, seller_kind,
              buyer_kind, broker_organization_id
       FROM ledger_entries WHERE kind = 'registration' AND contract_id % 6 = 0
       LIMIT :cancellations""",
    """INSERT INTO trade_targets (year, technology_amount_fen, note, updated_at)
       VALUES (2025, 20000000000000, 'bench', now()) ON CONFLICT DO NOTHING""",
    "ANALYZE",
]


def _timed(run: Callable[[], object], runs: int) -> tuple[float, float]:
    run()  # warm the cache and the plan
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="a PostgreSQL URL (any database)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the million entries (a quick try: 0.01)",
    )
    args = parser.parse_args()

    name = f"market_bench_{secrets.token_hex(4)}"
    admin = create_engine(args.server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        with engine.begin() as connection:
            sizes = {
                name: round(size * args.scale)
                for name, size in (
                    ("contracts", CONTRACTS),
                    ("changes", CHANGES),
                    ("cancellations", CANCELLATIONS),
                )
            }
            for statement in FILL:
                used = {name: value for name, value in sizes.items() if f":{name}" in statement}
                connection.execute(text(statement), used)
            entries = connection.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one()
        print(f"filled {entries:,} ledger entries in {time.perf_counter() - started:.1f} s")
        _rebuild(engine)
        if args.keep:
            print(f"database kept: {name}")
        _report(engine, args.runs)
        engine.dispose()
    finally:
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _rebuild(engine: Engine) -> None:
    started = time.perf_counter()

    def progress(dimension: str, rows: int) -> None:
        print(f"  rollup {dimension:<16} {rows:>7,} rows {time.perf_counter() - started:6.1f} s")

    with Session(engine) as session:
        written = rollup.rebuild(session, progress)
        session.commit()
    with engine.begin() as connection:
        connection.execute(text("ANALYZE ledger_rollup"))
    print(
        f"rollup rebuilt from the ledger: {written:,} rows in {time.perf_counter() - started:.1f} s"
    )


Query = Callable[[Session, service.Source], object]


def _summary(as_of: date, year: int | None) -> Query:
    return lambda session, source: service.summary(session, as_of, year, source)


def _progress(year: int, as_of: date) -> Query:
    return lambda session, source: service.progress(session, year, as_of, source)


def _breakdown(dimension: Dimension, as_of: date, year: int | None) -> Query:
    return lambda session, source: service.breakdown(session, dimension, as_of, year, source)


def _queries() -> dict[str, Query]:
    today = date(2026, 11, 22)
    queries = {
        "summary (all years)": _summary(today, None),
        "summary 2025": _summary(today, 2025),
        "progress 2025": _progress(2025, today),
    }
    for dimension in Dimension:
        queries[f"breakdown {dimension} (all years)"] = _breakdown(dimension, today, None)
        queries[f"breakdown {dimension} 2025"] = _breakdown(dimension, today, 2025)
    # Past days: mid-month, a month's last day (the longest stretch read from the
    # ledger: a whole month), the first of a month (the shortest).
    for as_of in (date(2024, 6, 15), date(2025, 12, 31), date(2026, 11, 1)):
        queries[f"as of {as_of}: summary"] = _summary(as_of, None)
        queries[f"as of {as_of}: progress 2025"] = _progress(2025, as_of)
        queries[f"as of {as_of}: breakdown month"] = _breakdown(Dimension.MONTH, as_of, None)
        queries[f"as of {as_of}: breakdown broker"] = _breakdown(Dimension.BROKER, as_of, None)
    return queries


def _report(engine: Engine, runs: int) -> None:
    print(
        f"{'query':<44} {'ledger p50':>10} {'p95':>7} {'rollup p50':>10} {'p95':>7} "
        f"{'p50 ratio':>9}"
    )
    worst = 0.0
    with Session(engine) as session:
        for label, query in _queries().items():
            # The same answer to the fen from both, or the roll-up is wrong.
            assert query(session, "rollup") == query(session, "ledger"), label
            base50, base95 = _timed(functools.partial(query, session, "ledger"), runs)
            fast50, fast95 = _timed(functools.partial(query, session, "rollup"), runs)
            worst = max(worst, fast95)
            print(
                f"{label:<44} {base50:10.1f} {base95:7.1f} {fast50:10.1f} {fast95:7.1f} "
                f"{base50 / fast50:8.0f}x"
            )
    print(f"worst rollup p95: {worst:.1f} ms (target < 100 ms); every answer equal to the ledger's")


if __name__ == "__main__":
    main()
