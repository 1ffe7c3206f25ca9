from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from market.auth.organization import OrganizationKind, VerificationStatus
from market.auth.schemas import DisplayName, NewPassword
from market.common.text import normalize_user_text, paragraphs
from market.organizations.districts import is_known_district
from market.organizations.uscc import InvalidCreditCode, normalize_uscc


def _credit_code(raw: str) -> str:
    try:
        return normalize_uscc(raw)
    except InvalidCreditCode as error:
        raise ValueError(f"unified social credit code {error}") from error


def _district(code: str) -> str:
    if not is_known_district(code):
        raise ValueError(f"unknown district code {code!r}; see GET /districts")
    return code


def _clean_line(text: str) -> str:
    return normalize_user_text(text)


CreditCode = Annotated[str, Field(min_length=18, max_length=24), AfterValidator(_credit_code)]
DistrictCode = Annotated[str, Field(min_length=6, max_length=6), AfterValidator(_district)]
OrganizationName = Annotated[
    str, StringConstraints(min_length=2, max_length=200), AfterValidator(_clean_line)
]


class SelfRegistrableKind(StrEnum):
    """The bureau's own organisation is created by an administrator, not by sign-up."""

    UNIVERSITY = OrganizationKind.UNIVERSITY.value
    INSTITUTE = OrganizationKind.INSTITUTE.value
    ENTERPRISE = OrganizationKind.ENTERPRISE.value
    BROKER_AGENCY = OrganizationKind.BROKER_AGENCY.value


class OrganizationCreate(BaseModel):
    name: OrganizationName
    kind: SelfRegistrableKind
    credit_code: CreditCode
    district_code: DistrictCode
    address: Annotated[str, Field(max_length=300), AfterValidator(_clean_line)] = ""
    contact_name: Annotated[str, Field(max_length=100), AfterValidator(_clean_line)] = ""
    contact_phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9+\- ]*$")] = ""
    description: Annotated[str, Field(max_length=4000), AfterValidator(paragraphs)] = ""


class OrganizationUpdate(BaseModel):
    address: Annotated[str, Field(max_length=300), AfterValidator(_clean_line)] | None = None
    contact_name: Annotated[str, Field(max_length=100), AfterValidator(_clean_line)] | None = None
    contact_phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9+\- ]*$")] | None = None
    description: Annotated[str, Field(max_length=4000), AfterValidator(paragraphs)] | None = None
    district_code: DistrictCode | None = None


class AdminAccount(BaseModel):
    email: EmailStr
    display_name: DisplayName
    password: NewPassword


class Registration(BaseModel):
    """Sign-up of a new organisation together with its first administrator."""

    organization: OrganizationCreate
    admin: AdminAccount


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: OrganizationKind
    credit_code: str
    district_code: str
    address: str
    contact_name: str
    contact_phone: str
    description: str
    verification_status: VerificationStatus
    verification_note: str
    verified_at: datetime | None
    created_at: datetime


class OrganizationPublic(BaseModel):
    """What anyone may see of an organisation that holds published listings."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: OrganizationKind
    district_code: str
    verification_status: VerificationStatus


class VerificationDecisionKind(StrEnum):
    VERIFY = "verify"
    REJECT = "reject"
    SUSPEND = "suspend"


class VerificationDecision(BaseModel):
    decision: VerificationDecisionKind
    reason: Annotated[str, Field(max_length=1000), AfterValidator(paragraphs)] = ""


class DistrictRead(BaseModel):
    code: str
    name: str
    kind: str
    parent_code: str | None
