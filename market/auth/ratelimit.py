"""Login throttling: failure counters per (account, address), per account, per address.

Why three keys: the pair is throttled first and hardest, so guessing one account's
password from one place slows down at once. The account as a whole and the address as
a whole have higher allowances: an attacker spreading guesses over many addresses, or
over many accounts from one address, is slowed too, but five failures from strangers
do not shut the owner out, nor do a colleague's typos behind the same office NAT.

Past its allowance a key is not locked for a fixed time: it waits before the next
attempt, the wait doubling with each further failure up to a cap
(`login_backoff_base_seconds`, `login_backoff_max_seconds`). An attacker who keeps
guessing gets one guess per cap; the owner waits at most the cap, never a lockout.

Why this is exact under parallel requests: an attempt is counted as a failure *before*
the password is checked (reservation), in one transaction that upserts each key's
counter (`INSERT ... ON CONFLICT DO UPDATE ... WHERE not blocked RETURNING`). The
upsert locks the key's row on PostgreSQL and the database on SQLite, so of N parallel
attempts on one key exactly the allowance get through, and the reservation that uses up
the allowance sets the wait that refuses the rest. A login that then succeeds takes
its reservation back (`settle_success`). Keys are always upserted in the same order
(pair, account, address), so two logins never wait for each other's rows in a cycle.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from market.auth.models import LoginThrottle
from market.config import Settings
from market.db import utcnow
from market.errors import RateLimited


class Scope(StrEnum):
    PAIR = "pair"
    ACCOUNT = "account"
    ADDRESS = "address"


@dataclass(frozen=True)
class ThrottleKey:
    scope: Scope
    key: str
    allowance: int


def throttle_keys(settings: Settings, email: str, address: str) -> list[ThrottleKey]:
    """The keys an attempt counts against, in the order they are locked."""
    return [
        _key(Scope.PAIR, f"{email}\n{address}", settings.login_max_failures),
        _key(Scope.ACCOUNT, email, settings.login_account_max_failures),
        _key(Scope.ADDRESS, address, settings.login_address_max_failures),
    ]


def _key(scope: Scope, subject: str, allowance: int) -> ThrottleKey:
    digest = hashlib.sha256(f"{scope}\n{subject}".encode()).hexdigest()
    return ThrottleKey(scope, digest, allowance)


def reserve_attempt(session: Session, settings: Settings, email: str, address: str) -> None:
    """Count this attempt as a failure on every key, or raise RateLimited.

    Raising leaves the reservation to the caller's rollback: a refused attempt counts
    nowhere, so hammering a waiting key does not lengthen its wait.
    """
    now = utcnow()
    keys = throttle_keys(settings, email, address)
    counts: dict[str, int] = {}
    waits: list[float] = []
    for key in keys:
        failures = _count_failure(session, settings, key, now)
        if failures is None:
            waits.append(_remaining_wait(session, key, now))
        else:
            counts[key.key] = failures
    if waits:
        retry_after = max(1, math.ceil(max(waits)))
        raise RateLimited(
            f"Too many failed logins; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
    for key in keys:
        if counts[key.key] >= key.allowance:
            _block(session, key, now + _backoff(settings, counts[key.key] - key.allowance))


def settle_success(session: Session, settings: Settings, email: str, address: str) -> None:
    """Take back a successful attempt's reservation.

    The pair and the account are forgiven outright: the owner has shown the password.
    A shared address only gets this one attempt back, so logging into one's own account
    now and then does not wipe out failures guessed at other accounts from there.
    """
    pair, account, by_address = throttle_keys(settings, email, address)
    session.exec(delete(LoginThrottle).where(col(LoginThrottle.key).in_([pair.key, account.key])))
    remaining = col(LoginThrottle.failures) - 1
    session.exec(
        update(LoginThrottle)
        .where(col(LoginThrottle.key) == by_address.key, col(LoginThrottle.failures) > 0)
        .values(
            failures=remaining,
            blocked_until=case(
                (remaining < by_address.allowance, None), else_=LoginThrottle.blocked_until
            ),
        )
    )


def _count_failure(
    session: Session, settings: Settings, key: ThrottleKey, now: datetime
) -> int | None:
    """One more failure on the key: its new count, or None while the key must wait."""
    forgotten = col(LoginThrottle.last_failure_at) <= now - timedelta(
        seconds=settings.login_failure_window_seconds
    )
    not_waiting = col(LoginThrottle.blocked_until).is_(None) | (
        col(LoginThrottle.blocked_until) <= now
    )
    insert = _insert(session).values(
        key=key.key, scope=key.scope.value, failures=1, last_failure_at=now, blocked_until=None
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "failures": case((forgotten, 1), else_=LoginThrottle.failures + 1),
            "last_failure_at": now,
        },
        where=not_waiting,
    ).returning(LoginThrottle.failures)
    failures: int | None = session.exec(upsert).scalar()
    return failures


def _insert(session: Session) -> Any:
    """INSERT with ON CONFLICT for the session's database (the two dialects spell the
    same statement through different constructs)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(LoginThrottle)


def _remaining_wait(session: Session, key: ThrottleKey, now: datetime) -> float:
    blocked_until = session.exec(
        select(LoginThrottle.blocked_until).where(LoginThrottle.key == key.key)
    ).one()
    return (blocked_until - now).total_seconds() if blocked_until else 1.0


def _block(session: Session, key: ThrottleKey, until: datetime) -> None:
    session.exec(
        update(LoginThrottle).where(col(LoginThrottle.key) == key.key).values(blocked_until=until)
    )


def _backoff(settings: Settings, failures_beyond_allowance: int) -> timedelta:
    """The wait after a key's allowance is used up: base, then doubling, capped."""
    doublings = min(failures_beyond_allowance, 40)  # 2**40 seconds is past any cap
    seconds = settings.login_backoff_base_seconds * 2**doublings
    return timedelta(seconds=min(seconds, settings.login_backoff_max_seconds))
