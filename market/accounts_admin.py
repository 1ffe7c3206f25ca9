"""Operator tasks on accounts, used by the command line."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import select

from market.auth.models import Role
from market.auth.organization import Organization, OrganizationKind
from market.auth.schemas import UserCreate
from market.db import session_scope
from market.errors import DomainError
from market.organizations import service as organizations
from market.organizations.schemas import OrganizationCreate, SelfRegistrableKind


def create_bureau_account(
    engine: Engine,
    *,
    email: str,
    display_name: str,
    password: str,
    bureau_name: str,
    credit_code: str,
    staff: bool,
) -> int:
    """Create an admin or staff account in the bureau, creating the bureau if needed."""
    role = Role.BUREAU_STAFF if staff else Role.ADMIN
    try:
        account = UserCreate(email=email, display_name=display_name, password=password, role=role)
    except ValidationError as error:
        raise ValueError(_first_problem(error)) from error
    with session_scope(engine) as session:
        bureau = session.exec(
            select(Organization).where(
                Organization.kind == OrganizationKind.BUREAU, Organization.name == bureau_name
            )
        ).first()
        try:
            if bureau is None:
                bureau = organizations.create_organization(
                    session,
                    _bureau_profile(bureau_name, credit_code),
                    kind=OrganizationKind.BUREAU,
                    verified=True,
                )
            user = organizations.add_user(
                session, bureau, account.email, account.display_name, account.password, role
            )
        except DomainError as error:
            raise ValueError(error.detail) from error
        assert user.id is not None
        return user.id


def _bureau_profile(name: str, credit_code: str) -> OrganizationCreate:
    if not credit_code:
        raise ValueError("the bureau does not exist yet: pass its --credit-code")
    try:
        # The kind is overridden to bureau by the caller; the schema only validates.
        return OrganizationCreate(
            name=name,
            kind=SelfRegistrableKind.INSTITUTE,
            credit_code=credit_code,
            district_code="330212",
        )
    except ValidationError as error:
        raise ValueError(_first_problem(error)) from error


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return f"{field}: {first['msg'].removeprefix('Value error, ')}"
