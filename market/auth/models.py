from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from market.db import utcnow


class Role(StrEnum):
    MEMBER = "member"
    ORG_ADMIN = "org_admin"
    BROKER = "broker"
    BUREAU_STAFF = "bureau_staff"
    ADMIN = "admin"


BUREAU_ROLES = frozenset({Role.BUREAU_STAFF, Role.ADMIN})


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    display_name: str = Field(max_length=100)
    password_hash: str = Field(max_length=200)
    role: Role = Field(sa_type=String(20))
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    is_active: bool = True
    # Bumped on password change and "log out everywhere": access tokens carry it, so
    # they stop working at once instead of living out their 15 minutes.
    token_version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None

    @property
    def is_bureau(self) -> bool:
        return self.role in BUREAU_ROLES


class RefreshTokenFamily(SQLModel, table=True):
    """The chain of refresh tokens that one login started.

    Revocation marks the family, not its tokens: a redemption checks the family in the
    same statement that consumes the token, so a token issued by a redemption racing
    the revocation is dead too (it belongs to a revoked family).
    """

    __tablename__ = "refresh_token_families"

    id: str = Field(max_length=32, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class RefreshToken(SQLModel, table=True):
    """An opaque refresh token, stored only as its SHA-256.

    Tokens rotate: each use issues a new one in the same family and marks the old one
    used. Presenting a used token again means it was stolen, so the whole family is
    revoked.
    """

    __tablename__ = "refresh_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    family_id: str = Field(max_length=32, index=True)
    issued_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class LoginThrottle(SQLModel, table=True):
    """Failed-login counter of one throttle key (an account, an address, or the pair).

    In the database so that the limits hold across stateless API processes; one row
    per key so that counting and recording an attempt is one atomic upsert
    (`market.auth.ratelimit`).
    """

    __tablename__ = "login_throttles"

    # SHA-256 of scope and subject: fixed length whatever the email, and the table
    # holds no addresses or emails in clear.
    key: str = Field(max_length=64, primary_key=True)
    scope: str = Field(max_length=10)
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=utcnow)
    blocked_until: datetime | None = None
