"""Auth under parallel requests, over real HTTP (uvicorn in a thread, a real pool), on
SQLite and on PostgreSQL (whichever the run's database is)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import select

from market.app import create_app
from market.auth.models import RefreshTokenFamily
from market.config import Settings
from market.db import session_scope
from tests.auth.support import http_client, in_parallel, serving, small_pool_engine
from tests.support.factories import TEST_PASSWORD, Account, Market
from tests.support.settings import make_test_settings

# Long enough that no attempt of a burst outlives the wait its predecessors set: the
# counts below are then exact, whatever the machine's speed.
POOL_TIMEOUT = 5.0
SLOW_BACKOFF = {"login_backoff_base_seconds": 600.0, "login_backoff_max_seconds": 600.0}


@pytest.fixture
def small_engine(engine: Engine) -> Iterator[Engine]:
    # SQLite's default pool size and no overflow: with a request holding one connection
    # while it waits for another, five parallel logins hold them all and every request
    # waits out the pool timeout (issue #10's freeze: 16 logins on 5+10).
    with small_pool_engine(engine, size=5, timeout=POOL_TIMEOUT) as small:
        yield small


def _api(engine: Engine, tmp_path: Path, **overrides: object) -> tuple[Settings, FastAPI]:
    settings = make_test_settings(tmp_path, **overrides)
    return settings, create_app(settings, engine)


def _login(client: httpx.Client, email: str, password: str, **headers: str) -> httpx.Response:
    return client.post("/auth/login", json={"email": email, "password": password}, headers=headers)


def test_a_burst_of_logins_leaves_the_api_answering(small_engine: Engine, tmp_path: Path) -> None:
    settings, app = _api(small_engine, tmp_path)
    members = [Market(small_engine, settings).enterprise_member() for _ in range(16)]
    health_times: list[float] = []
    health_codes: list[int] = []
    done = threading.Event()
    with serving(app, settings) as url, http_client(url) as client:

        def watch_health() -> None:
            while not done.is_set():
                started = time.monotonic()
                health_codes.append(client.get("/health").status_code)
                health_times.append(time.monotonic() - started)

        watcher = threading.Thread(target=watch_health)
        watcher.start()
        try:
            logins = in_parallel(16, lambda n: _login(client, members[n].email, TEST_PASSWORD))
        finally:
            done.set()
            watcher.join()
    assert [response.status_code for response in logins] == [200] * 16
    assert set(health_codes) == {200}
    # Well under the pool timeout that a frozen pool makes every request wait out
    # (typically 0.1-0.5 s here; the slack is for a machine shared with other work).
    assert max(health_times) < POOL_TIMEOUT * 0.6, f"GET /health took {max(health_times):.2f} s"


def test_parallel_wrong_passwords_on_one_account_get_exactly_the_allowance(
    engine: Engine, tmp_path: Path
) -> None:
    settings, app = _api(engine, tmp_path, login_max_failures=5, **SLOW_BACKOFF)
    member = Market(engine, settings).enterprise_member()
    with serving(app, settings) as url, http_client(url) as client:
        responses = in_parallel(25, lambda _: _login(client, member.email, "wrong-guess-1"))
    assert Counter(response.status_code for response in responses) == {401: 5, 429: 20}
    assert all(
        int(response.headers["retry-after"]) > 0
        for response in responses
        if response.status_code == 429
    )


def test_parallel_guesses_from_one_address_get_exactly_its_allowance(
    engine: Engine, tmp_path: Path
) -> None:
    settings, app = _api(engine, tmp_path, login_address_max_failures=10, **SLOW_BACKOFF)
    with serving(app, settings) as url, http_client(url) as client:
        responses = in_parallel(
            40, lambda n: _login(client, f"guess{n}@example.cn", "wrong-guess-1")
        )
    assert Counter(response.status_code for response in responses) == {401: 10, 429: 30}


def test_parallel_guesses_from_many_addresses_get_exactly_the_account_allowance(
    engine: Engine, tmp_path: Path
) -> None:
    """Through a trusted proxy each request comes from its own address: only the
    account-wide counter can stop them."""
    settings, app = _api(
        engine,
        tmp_path,
        login_account_max_failures=10,
        forwarded_allow_ips="127.0.0.1",
        **SLOW_BACKOFF,
    )
    member = Market(engine, settings).enterprise_member()
    with serving(app, settings) as url, http_client(url) as client:
        responses = in_parallel(
            25,
            lambda n: _login(
                client, member.email, "wrong-guess-1", **{"X-Forwarded-For": f"198.51.100.{n}"}
            ),
        )
    assert Counter(response.status_code for response in responses) == {401: 10, 429: 15}


@pytest.mark.parametrize(
    ("trusted", "expected"), [("", [401] * 3 + [429] * 3), ("127.0.0.1", [401] * 6)]
)
def test_forwarded_for_counts_only_from_a_configured_proxy(
    engine: Engine, tmp_path: Path, trusted: str, expected: list[int]
) -> None:
    """A client rotating X-Forwarded-For stays one address unless it is a configured
    proxy (the second case shows the header is read at all when it should be)."""
    settings, app = _api(
        engine,
        tmp_path,
        login_address_max_failures=3,
        forwarded_allow_ips=trusted,
        **SLOW_BACKOFF,
    )
    with serving(app, settings) as url, http_client(url) as client:
        statuses = [
            _login(
                client,
                f"victim{n}@example.cn",
                "wrong-guess-1",
                **{"X-Forwarded-For": f"192.0.2.{n}"},
            ).status_code
            for n in range(6)
        ]
    assert statuses == expected


def test_parallel_refreshes_of_one_token_succeed_once_and_revoke_the_family(
    engine: Engine, tmp_path: Path
) -> None:
    settings, app = _api(engine, tmp_path)
    member: Account = Market(engine, settings).enterprise_member()
    with serving(app, settings) as url, http_client(url) as client:
        tokens = _login(client, member.email, TEST_PASSWORD).json()
        responses = in_parallel(
            20,
            lambda _: client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
        )
        winners = [response for response in responses if response.status_code == 200]
        assert len(winners) == 1
        refusals = [r.json()["code"] for r in responses if r.status_code == 401]
        assert refusals == ["refresh_token_reused"] * 19
        # The losers saw the token reused: the winner's successor dies with its family.
        successor = winners[0].json()["refresh_token"]
        again = client.post("/auth/refresh", json={"refresh_token": successor})
        assert again.status_code == 401
    with session_scope(engine) as session:
        families = session.exec(select(RefreshTokenFamily)).all()
        assert [family.revoked_at is not None for family in families] == [True]


def _refresh_one_of(client: httpx.Client, tokens: list[str], number: int) -> httpx.Response:
    return client.post("/auth/refresh", json={"refresh_token": tokens[number]})


def test_a_successor_redeemed_during_the_revocation_is_dead_too(
    engine: Engine, tmp_path: Path
) -> None:
    """A thief and the owner race: the thief replays the used token (revoking the
    family) while the owner redeems the current one. Whichever commits last, no live
    refresh token is left in the family."""
    settings, app = _api(engine, tmp_path)
    member: Account = Market(engine, settings).enterprise_member()
    with serving(app, settings) as url, http_client(url) as client:
        for _ in range(5):
            first = _login(client, member.email, TEST_PASSWORD).json()["refresh_token"]
            current = client.post("/auth/refresh", json={"refresh_token": first}).json()
            replay_and_current = [first, current["refresh_token"]]
            results = in_parallel(2, partial(_refresh_one_of, client, replay_and_current))
            assert results[0].status_code == 401  # the replay
            if results[1].status_code == 200:  # the owner won the race: its token is dead
                latest = results[1].json()["refresh_token"]
                retry = client.post("/auth/refresh", json={"refresh_token": latest})
                assert retry.status_code == 401
