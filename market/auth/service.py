"""Login, token refresh with rotation, logout and password changes.

Login, refresh and password change do not use the request's session: each is a few
short units of work of its own, one after the other, and the password hash (tens of
milliseconds of argon2) runs between them with no connection checked out. A request
that held its connection while hashing, or while opening a second unit, would let a
burst of logins hold the whole pool while waiting for it (issue #10's freeze).

Login and password change are coroutines: their units of work run on the server's
worker threads once it is their turn (`market.db.run_unit`, which waits on the
event loop) and the hash on the hashing threads
(`market.auth.passwords`), so a login waiting for its turn to hash holds neither a
connection nor a worker thread that other requests need.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, exists, select, update

from market.auth import ratelimit
from market.auth.models import RefreshToken, RefreshTokenFamily, User
from market.auth.passwords import (
    hash_password_off_thread,
    needs_rehash,
    verify_password_off_thread,
)
from market.auth.schemas import TokenPair
from market.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from market.config import Settings
from market.db import run_unit, session_scope, utcnow
from market.errors import Conflict, Unauthorized


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == normalize_email(email))).first()


@dataclass(frozen=True)
class _Credentials:
    """What login needs of the account, read in one unit and used after it closed."""

    user_id: int
    password_hash: str
    is_active: bool


async def login(
    engine: Engine, settings: Settings, email: str, password: str, address: str
) -> TokenPair:
    email = normalize_email(email)
    credentials = await run_unit(engine, _count_attempt, engine, settings, email, address)
    # The failure is already counted (the reservation): a wrong password needs no
    # further database work.
    valid = await verify_password_off_thread(
        credentials.password_hash if credentials else None, password
    )
    if credentials is None or not valid or not credentials.is_active:
        raise Unauthorized("Wrong email or password", code="invalid_credentials")
    upgraded_hash = (
        await hash_password_off_thread(password)
        if needs_rehash(credentials.password_hash)
        else None
    )
    return await run_unit(
        engine, _complete_login, engine, settings, email, address, credentials, upgraded_hash
    )


def _count_attempt(
    engine: Engine, settings: Settings, email: str, address: str
) -> _Credentials | None:
    with session_scope(engine) as session:
        ratelimit.reserve_attempt(session, settings, email, address)
        return _credentials(session, email)


def _complete_login(
    engine: Engine,
    settings: Settings,
    email: str,
    address: str,
    credentials: _Credentials,
    upgraded_hash: str | None,
) -> TokenPair:
    with session_scope(engine) as session:
        ratelimit.settle_success(session, settings, email, address)
        token_version = _record_login(session, credentials, upgraded_hash)
        if token_version is None:  # deactivated while the password was being checked
            raise Unauthorized("Wrong email or password", code="invalid_credentials")
        family_id = _new_family(session, credentials.user_id)
        return _issue_tokens(session, settings, credentials.user_id, token_version, family_id)


def _credentials(session: Session, email: str) -> _Credentials | None:
    user = session.exec(select(User).where(User.email == email)).first()
    if user is None or user.id is None:
        return None
    return _Credentials(user.id, user.password_hash, user.is_active)


def _record_login(
    session: Session, credentials: _Credentials, upgraded_hash: str | None
) -> int | None:
    """Stamp the login (and store an upgraded hash unless the password changed
    meanwhile); the token version to issue, or None if the account is now inactive."""
    user_id = credentials.user_id
    if upgraded_hash is not None:
        session.exec(
            update(User)
            .where(col(User.id) == user_id, col(User.password_hash) == credentials.password_hash)
            .values(password_hash=upgraded_hash)
        )
    token_version: int | None = session.exec(
        update(User)
        .where(col(User.id) == user_id, col(User.is_active).is_(True))
        .values(last_login_at=utcnow())
        .returning(col(User.token_version))
    ).scalar()
    return token_version


def refresh(engine: Engine, settings: Settings, presented_token: str) -> TokenPair:
    token_hash = hash_refresh_token(presented_token)
    with session_scope(engine) as session:
        outcome = _redeem(session, settings, token_hash)
    # Raised after the unit committed: a reuse's revocation must survive the 401.
    if isinstance(outcome, Unauthorized):
        raise outcome
    return outcome


def _redeem(session: Session, settings: Settings, token_hash: str) -> TokenPair | Unauthorized:
    """Consume the token and issue its successor, or say why not.

    The consuming UPDATE is the compare-and-set: of parallel redemptions exactly one
    finds `used_at` still empty (PostgreSQL re-checks the condition on the row after
    waiting for its lock; SQLite runs one writer at a time). It checks the family in
    the same statement, so a token of a revoked family is never redeemed.
    """
    now = utcnow()
    live_family = exists().where(
        col(RefreshTokenFamily.id) == RefreshToken.family_id,
        col(RefreshTokenFamily.revoked_at).is_(None),
    )
    redeemed = session.exec(
        update(RefreshToken)
        .where(
            col(RefreshToken.token_hash) == token_hash,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.expires_at) > now,
            live_family,
        )
        .values(used_at=now)
        .returning(col(RefreshToken.user_id), col(RefreshToken.family_id))
    ).first()
    if redeemed is None:
        return _refused(session, token_hash)
    user_id, family_id = redeemed
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        session.rollback()  # the token stays unused; the account may be re-enabled
        return Unauthorized("The account is disabled", code="invalid_refresh_token")
    return _issue_tokens(session, settings, user_id, user.token_version, family_id)


def _refused(session: Session, token_hash: str) -> Unauthorized:
    stored = session.exec(select(RefreshToken).where(RefreshToken.token_hash == token_hash)).first()
    if stored is not None and stored.used_at is not None:
        # A rotated token came back: someone holds a copy. The whole family dies,
        # including a successor issued by a redemption that raced this one.
        _revoke_families(session, col(RefreshTokenFamily.id) == stored.family_id)
        return Unauthorized("The refresh token was already used", code="refresh_token_reused")
    return Unauthorized("The refresh token is invalid or expired", code="invalid_refresh_token")


def logout(session: Session, presented_token: str) -> None:
    family_of_token = select(RefreshToken.family_id).where(
        RefreshToken.token_hash == hash_refresh_token(presented_token)
    )
    _revoke_families(session, col(RefreshTokenFamily.id).in_(family_of_token.scalar_subquery()))


def logout_everywhere(session: Session, user_id: int) -> None:
    """Revoke every refresh token and invalidate access tokens already issued."""
    session.exec(
        update(User).where(col(User.id) == user_id).values(token_version=User.token_version + 1)
    )
    _revoke_families(session, col(RefreshTokenFamily.user_id) == user_id)


async def change_password(
    engine: Engine, user_id: int, current_password: str, new_password: str
) -> None:
    old_hash = await run_unit(engine, _password_hash, engine, user_id, writes=False)
    if not await verify_password_off_thread(old_hash, current_password):
        raise Unauthorized("The current password is wrong", code="invalid_credentials")
    new_hash = await hash_password_off_thread(new_password)
    await run_unit(engine, _replace_password, engine, user_id, old_hash, new_hash)


def _password_hash(engine: Engine, user_id: int) -> str:
    with session_scope(engine, writes=False) as session:
        return session.exec(select(User.password_hash).where(User.id == user_id)).one()


def _replace_password(engine: Engine, user_id: int, old_hash: str, new_hash: str) -> None:
    with session_scope(engine) as session:
        # Compare-and-set on the hash that was verified: a concurrent change wins,
        # this one is refused rather than silently overwriting it.
        changed = session.exec(
            update(User)
            .where(col(User.id) == user_id, col(User.password_hash) == old_hash)
            .values(password_hash=new_hash)
        ).rowcount
        if changed != 1:
            raise Conflict("The password was changed meanwhile; log in again")
        logout_everywhere(session, user_id)


def _new_family(session: Session, user_id: int) -> str:
    family_id = secrets.token_hex(16)
    session.add(RefreshTokenFamily(id=family_id, user_id=user_id))
    session.flush()  # the family row before its first token
    return family_id


def _issue_tokens(
    session: Session, settings: Settings, user_id: int, token_version: int, family_id: str
) -> TokenPair:
    access_token, lifetime = issue_access_token(settings, user_id, token_version)
    refresh_token = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user_id,
            token_hash=hash_refresh_token(refresh_token),
            family_id=family_id,
            expires_at=utcnow() + timedelta(days=settings.refresh_token_days),
        )
    )
    return TokenPair(access_token=access_token, expires_in=lifetime, refresh_token=refresh_token)


def _revoke_families(session: Session, which: ColumnElement[bool]) -> None:
    session.exec(
        update(RefreshTokenFamily)
        .where(which, col(RefreshTokenFamily.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
