"""Login, token refresh with rotation, logout and password changes."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, update

from market.auth import ratelimit
from market.auth.models import RefreshToken, User
from market.auth.passwords import hash_password, needs_rehash, verify_password
from market.auth.schemas import TokenPair
from market.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from market.config import Settings
from market.db import session_scope, utcnow
from market.errors import Unauthorized


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == normalize_email(email))).first()


def login(
    session: Session, engine: Engine, settings: Settings, email: str, password: str, address: str
) -> TokenPair:
    email = normalize_email(email)
    ratelimit.check_not_locked(session, settings, email, address)
    user = find_user_by_email(session, email)
    valid = verify_password(user.password_hash if user else None, password)
    ratelimit.record_attempt(engine, email, address, succeeded=valid and bool(user))
    if user is None or not valid or not user.is_active:
        raise Unauthorized("Wrong email or password", code="invalid_credentials")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return _issue_tokens(session, settings, user, family_id=secrets.token_hex(16))


def refresh(
    session: Session, engine: Engine, settings: Settings, presented_token: str
) -> TokenPair:
    stored = session.exec(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(presented_token))
    ).first()
    if stored is None or stored.revoked_at is not None or stored.expires_at <= utcnow():
        raise Unauthorized("The refresh token is invalid or expired", code="invalid_refresh_token")
    if stored.used_at is not None:
        # A rotated token came back: someone holds a copy. Revoke the whole family, in
        # a transaction of its own so that it survives the error response below.
        with session_scope(engine) as revocation:
            _revoke_family(revocation, stored.family_id)
        raise Unauthorized("The refresh token was already used", code="refresh_token_reused")
    user = session.get(User, stored.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("The account is disabled", code="invalid_refresh_token")
    stored.used_at = utcnow()
    return _issue_tokens(session, settings, user, family_id=stored.family_id)


def logout(session: Session, presented_token: str) -> None:
    stored = session.exec(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(presented_token))
    ).first()
    if stored is not None:
        _revoke_family(session, stored.family_id)


def logout_everywhere(session: Session, user: User) -> None:
    """Revoke every refresh token and invalidate access tokens already issued."""
    user.token_version += 1
    session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user.id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def change_password(session: Session, user: User, current_password: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise Unauthorized("The current password is wrong", code="invalid_credentials")
    user.password_hash = hash_password(new_password)
    logout_everywhere(session, user)


def _issue_tokens(session: Session, settings: Settings, user: User, family_id: str) -> TokenPair:
    assert user.id is not None
    access_token, lifetime = issue_access_token(settings, user.id, user.token_version)
    refresh_token = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            token_hash=hash_refresh_token(refresh_token),
            family_id=family_id,
            expires_at=utcnow() + timedelta(days=settings.refresh_token_days),
        )
    )
    return TokenPair(access_token=access_token, expires_in=lifetime, refresh_token=refresh_token)


def _revoke_family(session: Session, family_id: str) -> None:
    session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
