"""Organisations and accounts for tests, made through the services themselves.

Hashing a password with argon2 takes tens of milliseconds, so every test account
shares one precomputed hash of TEST_PASSWORD; tokens are issued by the real token
code, and logging in over HTTP is tested in tests/auth.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy.engine import Engine

from market.auth.models import Role, User
from market.auth.passwords import hash_password
from market.auth.tokens import issue_access_token
from market.config import Settings
from market.db import session_scope
from market.organizations.models import Organization, OrganizationKind, VerificationStatus
from market.organizations.uscc import make_uscc

TEST_PASSWORD = "correct horse battery staple"

_counter = itertools.count(1)


@cache
def _shared_password_hash() -> str:
    return hash_password(TEST_PASSWORD)


def new_credit_code(district: str = "330212") -> str:
    return make_uscc("91", district, f"MA{next(_counter):06d}")


@dataclass
class Account:
    user_id: int
    organization_id: int
    email: str
    role: Role
    token: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Market:
    """Builds the cast of a test: organisations of each kind and their people."""

    engine: Engine
    settings: Settings

    def organization(
        self,
        kind: OrganizationKind,
        *,
        verified: bool = True,
        district: str = "330212",
        name: str | None = None,
    ) -> int:
        number = next(_counter)
        with session_scope(self.engine) as session:
            organization = Organization(
                name=name or f"测试{kind}{number}",
                kind=kind,
                credit_code=new_credit_code(district),
                district_code=district,
                verification_status=(
                    VerificationStatus.VERIFIED if verified else VerificationStatus.PENDING
                ),
            )
            session.add(organization)
            session.flush()
            assert organization.id is not None
            return organization.id

    def account(self, organization_id: int, role: Role = Role.MEMBER) -> Account:
        number = next(_counter)
        email = f"user{number}@example.cn"
        with session_scope(self.engine) as session:
            user = User(
                email=email,
                display_name=f"用户{number}",
                password_hash=_shared_password_hash(),
                role=role,
                organization_id=organization_id,
            )
            session.add(user)
            session.flush()
            assert user.id is not None
            user_id = user.id
        token, _ = issue_access_token(self.settings, user_id, 0)
        return Account(
            user_id=user_id,
            organization_id=organization_id,
            email=email,
            role=role,
            token=token,
            headers={"Authorization": f"Bearer {token}"},
        )

    # The cast most tests need, one call each.
    def institute_member(self, **kwargs: object) -> Account:
        return self.account(self.organization(OrganizationKind.INSTITUTE, **kwargs))  # type: ignore[arg-type]

    def university_member(self, **kwargs: object) -> Account:
        return self.account(self.organization(OrganizationKind.UNIVERSITY, **kwargs))  # type: ignore[arg-type]

    def enterprise_member(self, **kwargs: object) -> Account:
        return self.account(self.organization(OrganizationKind.ENTERPRISE, **kwargs))  # type: ignore[arg-type]

    def broker(self, **kwargs: object) -> Account:
        organization_id = self.organization(OrganizationKind.BROKER_AGENCY, **kwargs)  # type: ignore[arg-type]
        return self.account(organization_id, Role.BROKER)

    def bureau_staff(self) -> Account:
        return self.account(self.organization(OrganizationKind.BUREAU), Role.BUREAU_STAFF)

    def org_admin(self, kind: OrganizationKind = OrganizationKind.INSTITUTE) -> Account:
        return self.account(self.organization(kind), Role.ORG_ADMIN)
