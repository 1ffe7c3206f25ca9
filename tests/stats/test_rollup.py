"""The monthly roll-up gives the same statistics as the ledger, to the fen, as of any day.

The clock of the ledger and of the market's calendar (their `utcnow`) is moved so that
contracts are registered, changed and cancelled over two years through the API, with steps
just before and after China-time midnights at month ends (where the UTC month is still the
previous one). Then every view is computed from the roll-up and straight from the
ledger for days around every step, and a rebuild must give the same rows as the ones
kept step by step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from market import cli, migrate
from market.common import calendar
from market.config import get_settings
from market.contracts import ledger, rollup
from market.contracts.models import LedgerEntry
from market.db import make_engine, table_of, utcnow
from market.stats import service
from market.stats.schemas import Dimension
from tests.support.database import _fresh_postgres_database, postgres_server_url
from tests.support.factories import Account, Market
from tests.support.journey import (
    Cast,
    contract_terms,
    ok,
    registered_contract,
    totals,
    won_deal,
)


class Clock:
    """The ledger's clock (and the calendar's "today"), set to China-time instants."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now: datetime | None = None
        for module in (ledger, calendar):
            monkeypatch.setattr(module, "utcnow", lambda: self.now or utcnow())

    def set(
        self, year: int, month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0
    ) -> datetime:
        self.now = datetime(
            year, month, day, hour, minute, second, tzinfo=calendar.CHINA_TIME
        ).astimezone(UTC)
        return self.now

    def real(self) -> None:
        self.now = None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    yield Clock(monkeypatch)


def change(
    client: TestClient,
    bureau: Account,
    contract_id: int,
    total_fen: int,
    costs: tuple[int, ...] = (),
) -> dict[str, Any]:
    terms = contract_terms(total_fen, costs=costs)
    body = {key: terms[key] for key in ("total_amount_fen", "non_technical_costs", "milestones")}
    return ok(
        client.post(
            f"/contracts/{contract_id}/change",
            json={**body, "reason": "补充协议调整金额"},
            headers=bureau.headers,
        )
    )


def cancel(client: TestClient, bureau: Account, contract_id: int) -> dict[str, Any]:
    return ok(
        client.post(
            f"/contracts/{contract_id}/cancel",
            json={"reason": "双方解除合同"},
            headers=bureau.headers,
        )
    )


def views(session: Session, as_of: date, source: service.Source) -> list[Any]:
    """Every dashboard view as of a day: the summary and each breakdown, all years and
    per year."""
    result: list[Any] = []
    for year in (None, 2025, 2026):
        result.append(service.summary(session, as_of, year, source))
        result += [
            service.breakdown(session, dimension, as_of, year, source) for dimension in Dimension
        ]
    return result


def assert_same_as_ledger(engine: Engine, days: set[date]) -> None:
    with Session(engine) as session:
        for day in sorted(days):
            assert views(session, day, "rollup") == views(session, day, "ledger"), day


def assert_rebuild_gives_the_same_rows(engine: Engine) -> None:
    with Session(engine) as session:
        kept = rollup.rows(session)
        assert kept, "the ledger steps did not reach the rollup"
        rollup.rebuild(session)
        assert rollup.rows(session) == kept
        session.rollback()


def around(*instants: datetime) -> set[date]:
    """China-time days just before, on and after each instant, and its month's ends."""
    days: set[date] = set()
    for instant in instants:
        day = calendar.market_today(instant)
        first = day.replace(day=1)
        days |= {
            day - timedelta(days=1),
            day,
            day + timedelta(days=1),
            first,
            first - timedelta(days=1),
        }
    return days


def test_rollup_equals_the_ledger_after_registrations_changes_and_cancellations(
    client: TestClient, cast: Cast, market: Market, clock: Clock, engine: Engine
) -> None:
    bureau = cast.bureau
    university = market.university_member(district="330206")
    steps: list[datetime] = []

    # A: registered in January 2025, changed at 23:59 on 31 March (still March in
    # Ningbo, 15:59 UTC), cancelled 30 s after midnight on 1 February 2026 (UTC: January).
    steps.append(clock.set(2025, 1, 15))
    a = registered_contract(
        client, cast.institute, cast.enterprise, bureau, total_fen=100_000_001, costs=(1,)
    )
    steps.append(clock.set(2025, 3, 31, 23, 59))
    change(client, bureau, a["id"], 120_000_050, costs=(20_000_000,))
    # B: a service contract of a university registered at 23:30 on 31 March, changed
    # ten minutes after midnight: April in Ningbo, still March 31 in UTC.
    steps.append(clock.set(2025, 3, 31, 23, 30))
    b = registered_contract(
        client,
        university,
        cast.enterprise,
        bureau,
        total_fen=7_000_000,
        contract_type="技术服务",
        subtype=None,
        license_scope=None,
        field="智能经济",
    )
    steps.append(clock.set(2025, 4, 1, 0, 10))
    change(client, bureau, b["id"], 6_500_000)
    # C: through the broker's deal, registered at 00:30 on 1 January 2026 (UTC: 2025).
    steps.append(clock.set(2026, 1, 1, 0, 30))
    deal = won_deal(client, cast)
    c = ok(
        client.post(
            "/contracts",
            json={**contract_terms(55_555_555), "deal_id": deal["id"]},
            headers=cast.institute.headers,
        ),
        201,
    )
    ok(client.post(f"/contracts/{c['id']}/submit", headers=cast.institute.headers))
    ok(client.post(f"/contracts/{c['id']}/register", headers=bureau.headers))
    steps.append(clock.set(2026, 2, 1, 0, 0, 30))
    cancel(client, bureau, a["id"])
    # D: registered now, in the real month.
    clock.real()
    registered_contract(client, university, cast.enterprise, bureau, total_fen=3_000_000)
    steps.append(datetime.now(UTC))

    # What the bureau saw on 31 March 2025 (A changed, B registered) and later.
    assert totals(client, bureau, as_of="2025-03-30") == (1, 100_000_001, 100_000_000)
    assert totals(client, bureau, as_of="2025-03-31") == (2, 127_000_050, 107_000_050)
    assert totals(client, bureau, as_of="2025-04-01") == (2, 126_500_050, 106_500_050)
    assert totals(client, bureau, as_of="2026-01-31") == (3, 182_055_605, 162_055_605)
    assert totals(client, bureau, as_of="2026-02-01") == (2, 62_055_555, 62_055_555)
    broker = ok(
        client.get(
            "/stats/breakdown/broker", params={"as_of": "2026-01-01"}, headers=bureau.headers
        )
    )["rows"]
    assert [(row["key"], row["technology_amount_fen"]) for row in broker] == [
        (str(cast.broker.organization_id), 55_555_555),
        ("", 106_500_050),
    ]

    assert_same_as_ledger(engine, around(*steps) | {date(2024, 12, 31), date(2030, 1, 1)})
    assert_rebuild_gives_the_same_rows(engine)


def test_rollup_equals_the_ledger_after_a_random_history(
    client: TestClient, cast: Cast, market: Market, clock: Clock, engine: Engine
) -> None:
    chance = random.Random(20261122)  # a reproducible history
    sellers = [
        cast.institute,
        market.university_member(district="330206"),
        market.enterprise_member(district="330281"),
    ]
    buyers = [cast.enterprise, market.enterprise_member(district="330225")]
    kinds = [
        {"contract_type": "技术服务", "subtype": None, "license_scope": None},
        {"contract_type": "技术咨询", "subtype": None, "license_scope": None},
        {},
    ]  # the default: an exclusive technical-secret licence
    instant = datetime(2024, 11, 20, 12, tzinfo=UTC)
    registered: list[int] = []
    steps: list[datetime] = []
    for _ in range(24):
        # Steps 0 to 40 days apart, at any minute of the day (month ends included).
        instant += timedelta(days=chance.randint(0, 40), minutes=chance.randint(0, 1439))
        clock.now = instant
        steps.append(instant)
        step = chance.random()
        if registered and step < 0.3:
            change(
                client,
                cast.bureau,
                chance.choice(registered),
                chance.randint(1, 10**9),
                costs=(chance.randint(0, 10**5),),
            )
        elif registered and step < 0.45:
            cancel(client, cast.bureau, registered.pop(chance.randrange(len(registered))))
        else:
            seller = chance.choice(sellers)
            contract = registered_contract(
                client,
                seller,
                chance.choice(buyers),
                cast.bureau,
                total_fen=chance.randint(1, 10**10),
                costs=(chance.randint(0, 10**5),),
                field=chance.choice(["新材料", "智能经济", "现代农业"]),
                **chance.choice(kinds),
            )
            registered.append(contract["id"])
    days = around(*steps) | {instant.date() + timedelta(days=n) for n in range(0, 60, 7)}
    assert_same_as_ledger(engine, days)
    assert_rebuild_gives_the_same_rows(engine)


# --- the migration fills the rollup from the ledger rows already there -------------------

# contract, sequence, kind, total, technology, count, effective_on, recorded_at, broker
LEDGER_ROWS = [
    # 23:59:59 on 31 January in Ningbo, then midnight: 1 February (UTC: still January).
    (
        1,
        1,
        "registration",
        100_000_001,
        100_000_000,
        1,
        date(2025, 1, 31),
        datetime(2025, 1, 31, 15, 59, 59, 999_999, tzinfo=UTC),
        None,
    ),
    (
        1,
        2,
        "change",
        999,
        1_000,
        0,
        date(2025, 1, 31),
        datetime(2025, 1, 31, 16, 0, tzinfo=UTC),
        None,
    ),
    (
        2,
        1,
        "registration",
        5_000,
        4_000,
        1,
        date(2025, 2, 1),
        datetime(2025, 1, 31, 16, 30, tzinfo=UTC),
        7,
    ),
    (
        1,
        3,
        "cancellation",
        -100_001_000,
        -100_001_000,
        -1,
        date(2025, 1, 31),
        datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
        None,
    ),
    (3, 1, "registration", 12, 12, 1, date(2026, 3, 2), datetime(2026, 3, 2, 2, 0, tzinfo=UTC), 12),
]


@contextmanager
def _empty_database(tmp_path: Path) -> Iterator[str]:
    server = postgres_server_url()
    if server is None:
        yield f"sqlite:///{tmp_path / 'migration.db'}"
        return
    with _fresh_postgres_database(server) as url:
        yield url


def _insert_ledger_rows(url: str) -> None:
    """Ledger rows without their contracts: SQLite without its foreign-key pragma,
    PostgreSQL with its triggers (foreign keys included) off for the session."""
    table = table_of(LedgerEntry)
    raw = create_engine(url)
    with raw.begin() as connection:
        if raw.dialect.name == "postgresql":
            connection.execute(text("SET session_replication_role = replica"))
        for (
            contract_id,
            sequence,
            kind,
            total,
            technology,
            count,
            effective_on,
            recorded_at,
            broker,
        ) in LEDGER_ROWS:
            connection.execute(
                table.insert().values(
                    contract_id=contract_id,
                    sequence=sequence,
                    kind=kind,
                    delta_total_fen=total,
                    delta_technology_fen=technology,
                    delta_count=count,
                    effective_on=effective_on,
                    effective_year=effective_on.year,
                    effective_month=effective_on.month,
                    effective_quarter=calendar.quarter_of(effective_on),
                    recorded_at=recorded_at,
                    contract_type="技术开发",
                    field="新材料",
                    seller_district_code="330212",
                    buyer_district_code="330205",
                    seller_kind="institute",
                    buyer_kind="enterprise",
                    broker_organization_id=broker,
                )
            )
    raw.dispose()


def test_the_migration_fills_the_rollup_from_the_ledger(tmp_path: Path) -> None:
    with _empty_database(tmp_path) as url:
        migrate.upgrade(url, "0004")
        _insert_ledger_rows(url)
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                filled = rollup.rows(session)
                period = {key[1:4]: sums for key, sums in filled.items() if key[0] == rollup.PERIOD}
                assert period == {
                    (2025, 1, 202501): (1, 100_000_001, 100_000_000),
                    (2025, 1, 202502): (0, 999, 1_000),
                    (2025, 2, 202502): (1, 5_000, 4_000),
                    (2025, 1, 202603): (-1, -100_001_000, -100_001_000),
                    (2026, 3, 202603): (1, 12, 12),
                }
                brokers = {key[4] for key, _ in filled.items() if key[0] == "broker"}
                assert brokers == {"", "7", "12"}
                assert {key[0] for key in filled} == set(rollup.DIMENSIONS)
                # What each entry would have added when written through the ledger.
                rollup.rebuild(session)
                assert rollup.rows(session) == filled
                assert views(session, date(2025, 1, 31), "rollup") == views(
                    session, date(2025, 1, 31), "ledger"
                )
                assert service.summary(session, date(2025, 1, 31), None).contract_count == 1
                assert service.summary(session, date(2025, 2, 1), None).contract_count == 2
                assert service.summary(session, date(2026, 3, 2), None).contract_count == 2
        finally:
            engine.dispose()


def test_rebuilding_from_the_command_line(
    client: TestClient, cast: Cast, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    with Session(engine) as session:
        kept = rollup.rows(session)
    monkeypatch.setenv("MARKET_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["stats", "rebuild-rollup"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "broker" in result.output and "ledger_rollup rebuilt: 8 rows" in result.output
    with Session(engine) as session:
        assert rollup.rows(session) == kept
