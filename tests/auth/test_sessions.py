"""Login, refresh-token rotation and revocation, password change, rate limiting."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine

from market.app import create_app
from market.auth import ratelimit
from market.auth.models import LoginThrottle
from market.db import session_scope, utcnow
from tests.support.factories import TEST_PASSWORD, Account, Market
from tests.support.settings import make_test_settings


def _login(client: TestClient, email: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def member(market: Market) -> Account:
    return market.enterprise_member()


def test_login_returns_working_tokens(client: TestClient, member: Account) -> None:
    tokens = _login(client, member.email.upper())  # emails are case-insensitive
    assert tokens["token_type"] == "bearer"
    assert 0 < int(tokens["expires_in"]) <= 120 * 60
    assert client.get("/me", headers=_bearer(tokens)).json()["id"] == member.user_id


def test_wrong_password_and_unknown_email_look_the_same(
    client: TestClient, member: Account
) -> None:
    wrong = client.post("/auth/login", json={"email": member.email, "password": "nope-nope-1"})
    unknown = client.post(
        "/auth/login", json={"email": "ghost@example.cn", "password": "nope-nope-1"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient, member: Account) -> None:
    first = _login(client, member.email)
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200

    # Presenting the already-used first token again: theft. The whole family dies.
    replay = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    latest = client.post("/auth/refresh", json={"refresh_token": third.json()["refresh_token"]})
    assert latest.status_code == 401


def test_logout_revokes_refresh_token(client: TestClient, member: Account) -> None:
    tokens = _login(client, member.email)
    assert (
        client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 204
    )
    response = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 401


def test_password_change_revokes_everything(client: TestClient, member: Account) -> None:
    tokens = _login(client, member.email)
    new_password = "a brand new passphrase 42"
    response = client.post(
        "/auth/password",
        headers=_bearer(tokens),
        json={"current_password": TEST_PASSWORD, "new_password": new_password},
    )
    assert response.status_code == 204, response.text
    # the access token issued before the change stops working at once
    assert client.get("/me", headers=_bearer(tokens)).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 401
    )
    assert (
        client.post(
            "/auth/login", json={"email": member.email, "password": TEST_PASSWORD}
        ).status_code
        == 401
    )
    _login(client, member.email, new_password)


def test_password_change_needs_the_current_password(client: TestClient, member: Account) -> None:
    response = client.post(
        "/auth/password",
        headers=member.headers,
        json={"current_password": "wrong-password", "new_password": "another good one 7"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("weak", ["short", "aaaaaaaaaaaaaaaa", "x" * 200])
def test_weak_new_password_is_named(client: TestClient, member: Account, weak: str) -> None:
    response = client.post(
        "/auth/password",
        headers=member.headers,
        json={"current_password": TEST_PASSWORD, "new_password": weak},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.new_password"


def test_logout_everywhere_invalidates_access_tokens(client: TestClient, member: Account) -> None:
    tokens = _login(client, member.email)
    assert client.post("/auth/logout-all", headers=_bearer(tokens)).status_code == 204
    assert client.get("/me", headers=_bearer(tokens)).status_code == 401


# A first wait longer than any test run, so that a slow machine cannot see it end
# between the failure that starts it and the attempt it must refuse.
_WAIT_OUTLASTS_TEST = {"login_backoff_base_seconds": 600.0, "login_backoff_max_seconds": 600.0}


def _throttled_client(engine: Engine, tmp_path: Path, **limits: object) -> TestClient:
    return TestClient(create_app(make_test_settings(tmp_path, **limits), engine))


def _fail(client: TestClient, email: str) -> int:
    response = client.post("/auth/login", json={"email": email, "password": "bad-guess-1"})
    status: int = response.status_code
    return status


def test_login_is_throttled_per_account_and_address_pair(
    one_connection_engine: Engine, tmp_path: Path
) -> None:
    settings = make_test_settings(tmp_path, login_max_failures=3, **_WAIT_OUTLASTS_TEST)
    member = Market(one_connection_engine, settings).enterprise_member()
    with TestClient(create_app(settings, one_connection_engine)) as client:
        assert [_fail(client, member.email) for _ in range(3)] == [401] * 3
        locked = client.post("/auth/login", json={"email": member.email, "password": TEST_PASSWORD})
        assert locked.status_code == 429
        assert locked.json()["code"] == "rate_limited"
        assert int(locked.headers["retry-after"]) > 0
        # another account is not locked: three failures stay under the per-address limit
        other = Market(one_connection_engine, settings).enterprise_member()
        ok = client.post("/auth/login", json={"email": other.email, "password": TEST_PASSWORD})
        assert ok.status_code == 200


def test_login_is_throttled_per_address(one_connection_engine: Engine, tmp_path: Path) -> None:
    with _throttled_client(
        one_connection_engine, tmp_path, login_address_max_failures=4, **_WAIT_OUTLASTS_TEST
    ) as client:
        for number in range(4):  # four different accounts guessed from one address
            assert _fail(client, f"x{number}@example.cn") == 401
        member = Market(one_connection_engine, make_test_settings(tmp_path)).enterprise_member()
        blocked = client.post(
            "/auth/login", json={"email": member.email, "password": TEST_PASSWORD}
        )
        assert blocked.status_code == 429


def test_the_wait_doubles_with_each_failure_up_to_the_cap(
    one_connection_engine: Engine, tmp_path: Path
) -> None:
    limits = {
        "login_max_failures": 2,
        "login_backoff_base_seconds": 30.0,
        "login_backoff_max_seconds": 100.0,
    }
    with _throttled_client(one_connection_engine, tmp_path, **limits) as client:
        waits = []
        for _ in range(4):
            while _fail(client, "owner@example.cn") == 401:
                pass
            response = client.post(
                "/auth/login", json={"email": "owner@example.cn", "password": "bad-guess-1"}
            )
            waits.append(int(response.headers["retry-after"]))
            _let_the_wait_pass(one_connection_engine)
    # Retry-After counts what is left of the wait: a slow machine may have used a second
    # or two of it by the time it answers.
    assert [
        expected - 5 < wait <= expected
        for wait, expected in zip(waits, [30, 60, 100, 100], strict=True)
    ] == [True] * 4


def _let_the_wait_pass(engine: Engine) -> None:
    """Time travel for the throttle: every key's wait ends now."""
    with engine.begin() as connection:
        connection.execute(update(LoginThrottle).values(blocked_until=utcnow()))


def test_failures_from_strangers_do_not_lock_the_owner_out(
    one_connection_engine: Engine, tmp_path: Path
) -> None:
    """Five failures on the account from five addresses (the old hard lockout) leave the
    owner, at their own address, able to log in; and a success forgets the failures."""
    settings = make_test_settings(tmp_path)
    member = Market(one_connection_engine, settings).enterprise_member()
    with session_scope(one_connection_engine) as session:
        for number in range(5):
            ratelimit.reserve_attempt(session, settings, member.email, f"203.0.113.{number}")
    with TestClient(create_app(settings, one_connection_engine)) as client:
        _login(client, member.email)
    with session_scope(one_connection_engine) as session:
        account = ratelimit.throttle_keys(settings, member.email, "testclient")[1]
        assert session.get(LoginThrottle, account.key) is None


def test_token_responses_are_not_cached(client: TestClient, member: Account) -> None:
    login = client.post("/auth/login", json={"email": member.email, "password": TEST_PASSWORD})
    renewed = client.post("/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
    for response in (login, renewed):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"


def test_inactive_user_cannot_log_in(client: TestClient, member: Account, engine: Engine) -> None:
    from market.auth.models import User

    with session_scope(engine) as session:
        user = session.get(User, member.user_id)
        assert user is not None
        user.is_active = False
    assert (
        client.post(
            "/auth/login", json={"email": member.email, "password": TEST_PASSWORD}
        ).status_code
        == 401
    )
    assert client.get("/me", headers=member.headers).status_code == 401
