"""Login throttling backed by the database.

Attempts are written in their own short transaction: the request's transaction is
rolled back when login fails, and a failure that vanished with it would never count.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from market.auth.models import LoginAttempt
from market.config import Settings
from market.db import session_scope, utcnow
from market.errors import RateLimited


def check_not_locked(session: Session, settings: Settings, email: str, address: str) -> None:
    since = utcnow() - timedelta(seconds=settings.login_failure_window_seconds)
    failures = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(col(LoginAttempt.attempted_at) >= since, col(LoginAttempt.succeeded).is_(False))
    )
    by_account = session.exec(failures.where(LoginAttempt.email == email)).one()
    by_address = session.exec(failures.where(LoginAttempt.client_address == address)).one()
    if (
        by_account >= settings.login_max_failures
        or by_address >= settings.login_max_failures * settings.login_ip_multiplier
    ):
        raise RateLimited(
            "Too many failed logins; try again later",
            headers={"Retry-After": str(settings.login_failure_window_seconds)},
        )


def record_attempt(engine: Engine, email: str, address: str, *, succeeded: bool) -> None:
    with session_scope(engine) as session:
        session.add(LoginAttempt(email=email, client_address=address, succeeded=succeeded))
