#!/usr/bin/env python
"""Load storm: the API under a burst of logins, refreshes and reviews (issue 10).

Not a test: a bounded run on loopback that says whether the API stays up and keeps its
rules when many requests arrive at once. It

1. makes a fresh database (an SQLite file in a temporary directory, or, with
   --database-url, a new database on that PostgreSQL server, dropped afterwards) with a
   few verified organisations and accounts;
2. starts `uvicorn market.asgi:app` on a free loopback port; the owner logs in, creates
   a research result and submits it for review; bureau staff and a member log in;
3. fires, all at once: --logins logins (half with the wrong password, all on one victim
   account; half right, spread over four other accounts), --refreshes redemptions of
   one refresh token, and --reviews decisions (approve and reject alternately) on the
   submitted result;
4. meanwhile, from a client of its own in another thread, times GET /health and an
   anonymous GET /search/results until the storm is over.

It prints the count of 5xx answers, /health and search p50/p99 during the storm, how
many refreshes and reviews succeeded (exactly one of each is allowed), how many wrong
passwords were evaluated against the configured limit (the throttling is exact when
that is the limit, not more), and it exits 1 when a target is missed. Everything stops
after --time-limit seconds at the latest.

    .venv/bin/python scripts/load_storm.py
    .venv/bin/python scripts/load_storm.py \\
        --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres

Targets (issue 10): no 5xx, /health p99 < 1 s during the storm, exactly one success
where one is allowed, throttling counts exact.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from market import migrate  # noqa: E402
from market.auth.models import Role, User  # noqa: E402
from market.auth.organization import (  # noqa: E402
    Organization,
    OrganizationKind,
    VerificationStatus,
)
from market.auth.passwords import hash_password  # noqa: E402
from market.db import make_engine, session_scope  # noqa: E402
from market.organizations.uscc import make_uscc  # noqa: E402

LOOPBACK = "127.0.0.1"
PASSWORD = "storm-password-2026"  # noqa: S105 - a throwaway database's accounts
WRONG_PASSWORD = "not-the-password"  # noqa: S105
DOMAIN = "storm.example.cn"
RIGHT_LOGIN_ACCOUNTS = ("alpha", "beta", "gamma", "delta")
HEALTH_P99_TARGET_MS = 1000.0
SEARCH_QUERY = "锂电池 正极材料"
# The server, for the watchdog to stop when the time limit strikes.
_children: list[subprocess.Popen[bytes]] = []


# --- the database and the server --------------------------------------------------------


@contextmanager
def fresh_database(server_url: str | None, workdir: Path) -> Iterator[str]:
    if server_url is None:
        yield f"sqlite:///{workdir / 'storm.db'}"
        return
    name = f"market_storm_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str) -> None:
    """Verified organisations and their accounts, all with PASSWORD."""
    migrate.upgrade(url)
    engine = make_engine(url)
    password_hash = hash_password(PASSWORD)
    people = [
        ("bureau", OrganizationKind.BUREAU, Role.BUREAU_STAFF),
        ("owner", OrganizationKind.INSTITUTE, Role.MEMBER),
        ("refresher", OrganizationKind.ENTERPRISE, Role.MEMBER),
        ("victim", OrganizationKind.ENTERPRISE, Role.MEMBER),
        *((name, OrganizationKind.ENTERPRISE, Role.MEMBER) for name in RIGHT_LOGIN_ACCOUNTS),
    ]
    with session_scope(engine) as session:
        for number, (name, kind, role) in enumerate(people, start=1):
            organization = Organization(
                name=f"风暴测试{name}",
                kind=kind,
                credit_code=make_uscc("91", "330212", f"MA{number:06d}"),
                district_code="330212",
                verification_status=VerificationStatus.VERIFIED,
            )
            session.add(organization)
            session.flush()
            assert organization.id is not None
            session.add(
                User(
                    email=f"{name}@{DOMAIN}",
                    display_name=name,
                    password_hash=password_hash,
                    role=role,
                    organization_id=organization.id,
                )
            )
    engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextmanager
def api_server(database_url: str, workdir: Path, max_failures: int) -> Iterator[str]:
    port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("MARKET_")},
        "MARKET_ENVIRONMENT": "test",
        "MARKET_JWT_SECRET": secrets.token_urlsafe(48),
        "MARKET_DATABASE_URL": database_url,
        "MARKET_DATA_DIR": str(workdir),
        "MARKET_LOAD_DEMO_DATA": "false",
        "MARKET_LOGIN_MAX_FAILURES": str(max_failures),
        # Past the allowance the wait doubles from this base: longer than the storm, so
        # no wait runs out during it and exactly the allowance is evaluated.
        "MARKET_LOGIN_BACKOFF_BASE_SECONDS": "3600",
        "MARKET_LOGIN_BACKOFF_MAX_SECONDS": "3600",
    }
    log_path = workdir / "uvicorn.log"
    with log_path.open("wb") as log_file:
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
            env=env,
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        _children.append(process)
        try:
            _wait_until_up(f"http://{LOOPBACK}:{port}", process, log_path)
            yield f"http://{LOOPBACK}:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("uvicorn did not answer /health within 60 s")


# --- before the storm: a submitted listing and the tokens -------------------------------


@dataclass(frozen=True)
class Stage:
    listing_id: int
    bureau_headers: dict[str, str]
    refresh_token: str


def _login(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.post("/auth/login", json={"email": f"{name}@{DOMAIN}", "password": PASSWORD})
    response.raise_for_status()
    tokens: dict[str, Any] = response.json()
    return tokens


def set_the_stage(base: str) -> Stage:
    with httpx.Client(base_url=base, timeout=30) as client:
        owner = {"Authorization": f"Bearer {_login(client, 'owner')['access_token']}"}
        created = client.post(
            "/results",
            headers=owner,
            json={
                "title": "高镍正极材料包覆改性技术（压力测试）",
                "summary": "一种锂离子电池高镍正极材料的表面包覆改性方法，提高循环稳定性与安全性。",
                "keywords": ["锂电池", "正极材料"],
                "field": "新材料",
                "ip_form": "技术秘密",
                "maturity_stage": "中试",
                "transfer_modes": ["许可"],
                "price_negotiable": True,
            },
        )
        created.raise_for_status()
        listing_id = int(created.json()["id"])
        client.post(f"/results/{listing_id}/submit", headers=owner).raise_for_status()
        bureau = {"Authorization": f"Bearer {_login(client, 'bureau')['access_token']}"}
        refresh_token = str(_login(client, "refresher")["refresh_token"])
    return Stage(listing_id, bureau, refresh_token)


# --- the probe: a separate client timing /health and a search ---------------------------


@dataclass
class Probe:
    base: str
    samples: dict[str, list[float]] = field(default_factory=lambda: {"health": [], "search": []})
    statuses: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        paths = {"health": "/health", "search": "/search/results"}
        params = {"health": {}, "search": {"q": SEARCH_QUERY}}
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                for name, path in paths.items():
                    started = time.perf_counter()
                    try:
                        status = str(client.get(path, params=params[name]).status_code)
                    except httpx.HTTPError as error:
                        status = type(error).__name__
                    self.samples[name].append((time.perf_counter() - started) * 1000)
                    self.statuses[f"{name} {status}"] += 1
                self.stop.wait(0.05)


# --- the storm ---------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "login-right", "login-wrong", "refresh", "review"
    status: str  # the HTTP status, or the transport error's name
    code: str = ""  # the problem document's code
    body: dict[str, Any] = field(default_factory=dict)


async def _fire(
    client: httpx.AsyncClient,
    go: asyncio.Event,
    kind: str,
    path: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Outcome:
    await go.wait()
    try:
        response = await client.post(path, json=payload, headers=headers)
    except httpx.HTTPError as error:
        return Outcome(kind, type(error).__name__)
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code", "") if isinstance(body, dict) else ""
    return Outcome(kind, str(response.status_code), code, body if response.is_success else {})


async def storm(base: str, stage: Stage, args: argparse.Namespace) -> list[Outcome]:
    go = asyncio.Event()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(
        base_url=base, timeout=args.request_timeout, limits=limits
    ) as client:
        requests: list[tuple[str, str, dict[str, Any], dict[str, str] | None]] = []
        for number in range(args.logins):
            if number % 2:
                requests.append(
                    (
                        "login-wrong",
                        "/auth/login",
                        {"email": f"victim@{DOMAIN}", "password": WRONG_PASSWORD},
                        None,
                    )
                )
            else:
                name = RIGHT_LOGIN_ACCOUNTS[number // 2 % len(RIGHT_LOGIN_ACCOUNTS)]
                requests.append(
                    (
                        "login-right",
                        "/auth/login",
                        {"email": f"{name}@{DOMAIN}", "password": PASSWORD},
                        None,
                    )
                )
        requests += [
            ("refresh", "/auth/refresh", {"refresh_token": stage.refresh_token}, None)
            for _ in range(args.refreshes)
        ]
        requests += [
            (
                "review",
                f"/results/{stage.listing_id}/review",
                {"decision": "approve"}
                if number % 2
                else {"decision": "reject", "reason": f"压力测试的驳回理由 {number}"},
                stage.bureau_headers,
            )
            for number in range(args.reviews)
        ]
        random.Random(10).shuffle(requests)
        tasks = [asyncio.create_task(_fire(client, go, *request)) for request in requests]
        await asyncio.sleep(0.2)  # every task is waiting on `go`
        go.set()
        return list(await asyncio.gather(*tasks))


def after_the_storm(base: str, stage: Stage, outcomes: list[Outcome]) -> dict[str, int | None]:
    """What the storm left behind: review decisions in the listing's history, and how
    many of the refresh tokens it handed out still work (None: the API did not answer;
    requests the storm's clients gave up on may still be queued in the server)."""
    decisions: int | None = None
    still_valid: int | None = None
    issued = [
        o.body["refresh_token"]
        for o in outcomes
        if o.kind == "refresh" and "refresh_token" in o.body
    ]
    with httpx.Client(base_url=base, timeout=60) as client:
        try:
            history = client.get(
                f"/results/{stage.listing_id}/history", headers=stage.bureau_headers
            ).json()
            decisions = sum(1 for event in history if event.get("from_status") == "submitted")
            still_valid = sum(
                client.post("/auth/refresh", json={"refresh_token": token}).status_code == 200
                for token in issued
            )
        except (httpx.HTTPError, ValueError) as error:
            print(f"after the storm: {type(error).__name__}", file=sys.stderr)
    return {
        "review_decisions_recorded": decisions,
        "issued_refresh_tokens_still_valid": still_valid,
    }


# --- the report --------------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(
    args: argparse.Namespace,
    database: str,
    outcomes: list[Outcome],
    probe: Probe,
    aftermath: dict[str, int | None],
    seconds: float,
) -> bool:
    by_kind = Counter((o.kind, o.status, o.code) for o in outcomes)
    server_errors = sum(1 for o in outcomes if o.status.startswith("5")) + sum(
        count for key, count in probe.statuses.items() if key.split()[1].startswith("5")
    )
    transport_errors = sum(1 for o in outcomes if not o.status.isdigit()) + sum(
        count for key, count in probe.statuses.items() if not key.split()[1].isdigit()
    )
    wrong = sum(1 for o in outcomes if o.kind == "login-wrong")
    evaluated = sum(
        n
        for (kind, status, code), n in by_kind.items()
        if kind == "login-wrong" and code == "invalid_credentials"
    )
    expected_evaluated = min(wrong, args.max_failures)
    right_ok = sum(
        n for (kind, status, _), n in by_kind.items() if kind == "login-right" and status == "200"
    )
    refresh_ok = sum(
        n for (kind, status, _), n in by_kind.items() if kind == "refresh" and status == "200"
    )
    review_ok = sum(
        n for (kind, status, _), n in by_kind.items() if kind == "review" and status == "200"
    )
    health, search = probe.samples["health"], probe.samples["search"]
    figures = {
        "database": database,
        "storm_seconds": round(seconds, 2),
        "responses_5xx": server_errors,
        "transport_errors": transport_errors,
        "health_p50_ms": round(statistics.median(health), 1) if health else None,
        "health_p99_ms": round(percentile(health, 0.99), 1),
        "health_max_ms": round(max(health), 1) if health else None,
        "health_samples": len(health),
        "search_p50_ms": round(statistics.median(search), 1) if search else None,
        "search_p99_ms": round(percentile(search, 0.99), 1),
        "right_logins_ok": f"{right_ok}/{args.logins - wrong}",
        "wrong_passwords_evaluated": f"{evaluated} (limit {args.max_failures})",
        "refresh_successes": f"{refresh_ok}/{args.refreshes}",
        "review_successes": f"{review_ok}/{args.reviews}",
        **aftermath,
    }
    targets = {
        "no 5xx": server_errors == 0,
        "every request answered": transport_errors == 0,
        "/health p99 < 1 s": percentile(health, 0.99) < HEALTH_P99_TARGET_MS,
        "exactly one refresh": refresh_ok == 1,
        "exactly one review": review_ok == 1 and aftermath["review_decisions_recorded"] == 1,
        "throttling exact": evaluated == expected_evaluated,
    }
    if args.json:
        print(
            json.dumps(
                {
                    "figures": figures,
                    "targets": targets,
                    "answers": {" ".join(k).strip(): n for k, n in by_kind.items()},
                    "probe": dict(probe.statuses),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for name, value in figures.items():
            print(f"{name:<36} {value}")
        print("answers by request kind, status and code:")
        for (kind, status, code), count in sorted(by_kind.items()):
            print(f"  {kind:<12} {status:<16} {code:<28} {count}")
        print("probe answers:", dict(sorted(probe.statuses.items())))
        for name, met in targets.items():
            print(f"{'PASS' if met else 'FAIL'}  {name}")
    return all(targets.values())


def _server_errors(log_path: Path) -> Counter[str]:
    """The exceptions behind any 5xx, from the server's log (the last line of each
    traceback), so a failed run says why."""
    lines = log_path.read_text(errors="replace").splitlines()
    return Counter(
        line.strip()[:200]
        for line in lines
        if re.match(r"^[\w.]+(Error|Exception|Timeout)\b", line.strip())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--reviews", type=int, default=100)
    parser.add_argument(
        "--max-failures", type=int, default=5, help="MARKET_LOGIN_MAX_FAILURES for the server"
    )
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument(
        "--time-limit",
        type=float,
        default=240.0,
        help="seconds after which the whole run stops, finished or not",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    # The last resort behind every bound below: the whole process ends by itself.
    watchdog = threading.Timer(args.time_limit, _give_up, args=(args.time_limit,))
    watchdog.daemon = True
    watchdog.start()

    with tempfile.TemporaryDirectory(prefix="market-storm-") as tmp:
        workdir = Path(tmp)
        with fresh_database(args.database_url, workdir) as url:
            seed(url)
            with api_server(url, workdir, args.max_failures) as base:
                stage = set_the_stage(base)
                probe = Probe(base)
                prober = threading.Thread(target=probe.run, daemon=True)
                prober.start()
                started = time.perf_counter()
                try:
                    outcomes = asyncio.run(
                        asyncio.wait_for(storm(base, stage, args), timeout=args.time_limit * 0.75)
                    )
                finally:
                    seconds = time.perf_counter() - started
                    probe.stop.set()
                    prober.join(timeout=35)
                aftermath = after_the_storm(base, stage, outcomes)
            database = make_url(url).get_backend_name()
            server_errors = _server_errors(workdir / "uvicorn.log")
    met = report(args, database, outcomes, probe, aftermath, seconds)
    for line, count in server_errors.most_common(10):
        print(f"server error x{count}: {line}")
    watchdog.cancel()
    sys.exit(0 if met else 1)


def _give_up(limit: float) -> None:
    print(f"load_storm: time limit of {limit:.0f} s reached, stopping", file=sys.stderr)
    for process in _children:
        process.kill()
    os._exit(3)


if __name__ == "__main__":
    main()
