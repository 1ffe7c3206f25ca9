"""Organisations, accounts, listings, deals and contracts for tests.

Organisations and accounts come first in nearly every test. Listings, deals and contracts
are written straight to the database, for tests about what is done with them rather than
about how the API makes them (tests/support/journey.py walks the API for that).

Hashing a password with argon2 takes tens of milliseconds, so every test account
shares one precomputed hash of TEST_PASSWORD; tokens are issued by the real token
code, and logging in over HTTP is tested in tests/auth.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, TypedDict, Unpack

from sqlalchemy.engine import Engine

from market.auth.models import Role, User
from market.auth.organization import Organization, OrganizationKind, VerificationStatus
from market.auth.passwords import hash_password
from market.auth.tokens import issue_access_token
from market.common.calendar import market_today
from market.config import Settings
from market.contracts.models import Contract, ContractStatus, ContractType
from market.db import session_scope, utcnow
from market.deals.models import Deal, DealStage
from market.listings.models import (
    Demand,
    IpForm,
    ListingStatus,
    MaturityStage,
    Result,
    TechField,
)
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


class OrganizationOptions(TypedDict, total=False):
    """What a test may choose about the organisation behind a member (`Market.organization`)."""

    verified: bool
    district: str
    name: str | None


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
    def institute_member(self, **kwargs: Unpack[OrganizationOptions]) -> Account:
        return self.account(self.organization(OrganizationKind.INSTITUTE, **kwargs))

    def university_member(self, **kwargs: Unpack[OrganizationOptions]) -> Account:
        return self.account(self.organization(OrganizationKind.UNIVERSITY, **kwargs))

    def enterprise_member(self, **kwargs: Unpack[OrganizationOptions]) -> Account:
        return self.account(self.organization(OrganizationKind.ENTERPRISE, **kwargs))

    def broker(self, **kwargs: Unpack[OrganizationOptions]) -> Account:
        organization_id = self.organization(OrganizationKind.BROKER_AGENCY, **kwargs)
        return self.account(organization_id, Role.BROKER)

    def bureau_staff(self) -> Account:
        return self.account(self.organization(OrganizationKind.BUREAU), Role.BUREAU_STAFF)

    def org_admin(self, kind: OrganizationKind = OrganizationKind.INSTITUTE) -> Account:
        return self.account(self.organization(kind), Role.ORG_ADMIN)

    # --- listings, deals and contracts, straight into the database ------------------------

    def result(
        self, owner: Account, *, status: ListingStatus = ListingStatus.PUBLISHED, **fields: Any
    ) -> int:
        """A research result of `owner`'s organisation (published unless told otherwise)."""
        number = next(_counter)
        values: dict[str, Any] = {
            "title": f"一种高镍三元正极材料的共沉淀制备方法{number}",
            "summary": "循环寿命提升百分之三十以上的正极材料制备方法。",
            "keywords": ["正极材料"],
            "field": TechField.NEW_MATERIALS,
            "district_code": "330212",
            "ip_form": IpForm.TECHNICAL_SECRET,
            "maturity_stage": MaturityStage.PILOT,
            "transfer_modes": "|转让|",
            "price_fen": 50_000_000,
            **_listing_dates(status),
            **fields,
        }
        return self._add(
            Result(
                organization_id=owner.organization_id,
                created_by_user_id=owner.user_id,
                status=status,
                **values,
            )
        )

    def demand(
        self, owner: Account, *, status: ListingStatus = ListingStatus.PUBLISHED, **fields: Any
    ) -> int:
        """A technology demand of `owner`'s organisation (published unless told otherwise)."""
        number = next(_counter)
        values: dict[str, Any] = {
            "title": f"稀土永磁材料高温退磁问题攻关{number}",
            "description": "电机在一百五十摄氏度下磁钢退磁，需要提高矫顽力的工艺方案。",
            "keywords": ["永磁材料"],
            "field": TechField.NEW_MATERIALS,
            "district_code": "330206",
            "cooperation_modes": "|合作开发|",
            "budget_max_fen": 80_000_000,
            **_listing_dates(status),
            **fields,
        }
        return self._add(
            Demand(
                organization_id=owner.organization_id,
                created_by_user_id=owner.user_id,
                status=status,
                **values,
            )
        )

    def deal(
        self,
        seller: Account,
        buyer: Account,
        *,
        broker: Account | None = None,
        stage: DealStage = DealStage.LEAD,
        **fields: Any,
    ) -> int:
        """A deal between two organisations, opened by the broker (else by the seller)."""
        opener = broker or seller
        return self._add(
            Deal(
                title=f"技术转让洽谈{next(_counter)}",
                seller_organization_id=seller.organization_id,
                buyer_organization_id=buyer.organization_id,
                broker_user_id=broker.user_id if broker else None,
                broker_organization_id=broker.organization_id if broker else None,
                opened_by_user_id=opener.user_id,
                stage=stage,
                **fields,
            )
        )

    def contract(
        self,
        seller: Account,
        buyer: Account,
        *,
        total_amount_fen: int = 100_000_000,
        status: ContractStatus = ContractStatus.DRAFT,
        **fields: Any,
    ) -> int:
        """A technology transfer contract entered by the seller, all of it technology (a
        draft unless told otherwise: registration, which counts it, goes through the API)."""
        signed_on = market_today() - timedelta(days=7)
        with session_scope(self.engine) as session:
            sides = {
                side: session.get(Organization, account.organization_id)
                for side, account in (("seller", seller), ("buyer", buyer))
            }
            parties = {
                f"{side}_{name}": getattr(organization, attribute)
                for side, organization in sides.items()
                for name, attribute in (
                    ("name", "name"),
                    ("kind", "kind"),
                    ("district_code", "district_code"),
                )
            }
        return self._add(
            Contract(
                title=f"技术转让合同{next(_counter)}",
                contract_type=ContractType.TRANSFER,
                field=TechField.NEW_MATERIALS,
                seller_organization_id=seller.organization_id,
                buyer_organization_id=buyer.organization_id,
                signed_on=signed_on,
                term_start=signed_on,
                term_end=signed_on + timedelta(days=365),
                total_amount_fen=total_amount_fen,
                technology_amount_fen=total_amount_fen,
                status=status,
                created_by_user_id=seller.user_id,
                **{**parties, **fields},
            )
        )

    def _add(self, row: Result | Demand | Deal | Contract) -> int:
        with session_scope(self.engine) as session:
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id


def _listing_dates(status: ListingStatus) -> dict[str, Any]:
    """Timestamps that go with a status, and a validity that has not run out."""
    dates: dict[str, Any] = {"valid_until": market_today() + timedelta(days=180)}
    if status != ListingStatus.DRAFT:
        dates["submitted_at"] = utcnow()
    if status in (ListingStatus.PUBLISHED, ListingStatus.IN_NEGOTIATION, ListingStatus.TRANSACTED):
        dates["published_at"] = utcnow()
    return dates
