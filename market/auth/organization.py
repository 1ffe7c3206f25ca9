"""The organisation every user belongs to: the table the actor reads its kind and
verification from. Registration, verification and membership are `market.organizations`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from market.db import utcnow


class OrganizationKind(StrEnum):
    UNIVERSITY = "university"
    INSTITUTE = "institute"
    ENTERPRISE = "enterprise"
    BROKER_AGENCY = "broker_agency"
    BUREAU = "bureau"


# Who may offer research results (supply) and who may post demands.
SUPPLY_KINDS = frozenset({OrganizationKind.UNIVERSITY, OrganizationKind.INSTITUTE})
DEMAND_KINDS = frozenset({OrganizationKind.ENTERPRISE})


class VerificationStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    kind: OrganizationKind = Field(sa_type=String(20), index=True)
    credit_code: str = Field(max_length=18, unique=True)
    district_code: str = Field(max_length=6, index=True)
    address: str = Field(default="", max_length=300)
    contact_name: str = Field(default="", max_length=100)
    contact_phone: str = Field(default="", max_length=40)
    description: str = Field(default="", max_length=4000)
    verification_status: VerificationStatus = Field(
        default=VerificationStatus.PENDING, sa_type=String(20), index=True
    )
    verification_note: str = Field(default="", max_length=1000)
    verified_at: datetime | None = None
    verified_by_user_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def is_verified(self) -> bool:
        return self.verification_status == VerificationStatus.VERIFIED
