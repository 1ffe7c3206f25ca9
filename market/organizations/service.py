"""Organisations and their members; verification by bureau staff."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from market.audit import service as audit
from market.auth.actor import Actor
from market.auth.models import BUREAU_ROLES, Role, User
from market.auth.organization import Organization, OrganizationKind, VerificationStatus
from market.auth.passwords import hash_password
from market.auth.service import find_user_by_email, normalize_email
from market.common import transitions
from market.common.pagination import PageParams, paginate
from market.db import utcnow
from market.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from market.organizations.schemas import (
    OrganizationCreate,
    OrganizationUpdate,
    Registration,
    VerificationDecision,
    VerificationDecisionKind,
)

ENTITY = "organization"

# Which roles a member of each kind of organisation may hold.
ROLES_BY_KIND: dict[OrganizationKind, frozenset[Role]] = {
    OrganizationKind.UNIVERSITY: frozenset({Role.MEMBER, Role.ORG_ADMIN}),
    OrganizationKind.INSTITUTE: frozenset({Role.MEMBER, Role.ORG_ADMIN}),
    OrganizationKind.ENTERPRISE: frozenset({Role.MEMBER, Role.ORG_ADMIN}),
    OrganizationKind.BROKER_AGENCY: frozenset({Role.BROKER, Role.ORG_ADMIN}),
    OrganizationKind.BUREAU: frozenset(BUREAU_ROLES),
}

_DECISION_TARGETS = {
    VerificationDecisionKind.VERIFY: VerificationStatus.VERIFIED,
    VerificationDecisionKind.REJECT: VerificationStatus.REJECTED,
    VerificationDecisionKind.SUSPEND: VerificationStatus.SUSPENDED,
}
_ALLOWED_DECISIONS = {
    VerificationStatus.PENDING: {VerificationStatus.VERIFIED, VerificationStatus.REJECTED},
    VerificationStatus.REJECTED: {VerificationStatus.VERIFIED},
    VerificationStatus.VERIFIED: {VerificationStatus.SUSPENDED},
    VerificationStatus.SUSPENDED: {VerificationStatus.VERIFIED},
}


def register(session: Session, registration: Registration) -> tuple[Organization, User]:
    organization = create_organization(session, registration.organization)
    assert organization.id is not None
    admin = registration.admin
    user = add_user(
        session, organization, admin.email, admin.display_name, admin.password, Role.ORG_ADMIN
    )
    return organization, user


def create_organization(
    session: Session,
    data: OrganizationCreate,
    *,
    kind: OrganizationKind | None = None,
    verified: bool = False,
) -> Organization:
    _ensure_unique(session, data.name, data.credit_code)
    organization = Organization(
        **data.model_dump(exclude={"kind"}),
        kind=kind or OrganizationKind(data.kind.value),
        verification_status=VerificationStatus.VERIFIED if verified else VerificationStatus.PENDING,
        verified_at=utcnow() if verified else None,
    )
    _add_unique(
        session, organization, "An organisation with this name or credit code already exists"
    )
    return organization


def add_user(
    session: Session,
    organization: Organization,
    email: str,
    display_name: str,
    password: str,
    role: Role,
) -> User:
    kind = OrganizationKind(organization.kind)
    if role not in ROLES_BY_KIND[kind]:
        allowed = ", ".join(sorted(ROLES_BY_KIND[kind]))
        raise InvalidInput.on("role", f"a {kind} member can be one of: {allowed}")
    if find_user_by_email(session, email):
        raise Conflict("An account with this email already exists", code="email_taken")
    assert organization.id is not None
    user = User(
        email=normalize_email(email),
        display_name=display_name,
        password_hash=hash_password(password),
        role=role,
        organization_id=organization.id,
    )
    _add_unique(session, user, "An account with this email already exists")
    return user


def get_visible(session: Session, actor: Actor, organization_id: int) -> Organization:
    """Members see their own organisation; bureau staff see all."""
    organization = session.get(Organization, organization_id)
    if organization is None or not (actor.is_bureau or actor.belongs_to(organization_id)):
        raise NotFound(f"Organisation {organization_id} not found")
    return organization


def get_public(session: Session, organization_id: int) -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None or not organization.is_verified:
        raise NotFound(f"Organisation {organization_id} not found")
    return organization


def update(
    session: Session, actor: Actor, organization_id: int, changes: OrganizationUpdate
) -> Organization:
    organization = get_visible(session, actor, organization_id)
    if not (actor.is_bureau or actor.is_org_admin):
        raise Forbidden("Only the organisation's administrator can change its profile")
    for name, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(organization, name, value)
    organization.updated_at = utcnow()
    return organization


def list_for_bureau(
    session: Session,
    page: PageParams,
    status: VerificationStatus | None = None,
    kind: OrganizationKind | None = None,
) -> tuple[list[Organization], int]:
    query = select(Organization)
    if status:
        query = query.where(Organization.verification_status == status)
    if kind:
        query = query.where(Organization.kind == kind)
    return paginate(session, query, page, col(Organization.id))


def decide_verification(
    session: Session, actor: Actor, organization_id: int, decision: VerificationDecision
) -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise NotFound(f"Organisation {organization_id} not found")
    current = VerificationStatus(organization.verification_status)
    target = _DECISION_TARGETS[decision.decision]
    if target not in _ALLOWED_DECISIONS[current]:
        raise InvalidTransition(f"An organisation that is {current} cannot be {target}")
    if target != VerificationStatus.VERIFIED and not decision.reason.strip():
        raise InvalidInput.on("reason", "a reason is required to reject or suspend")
    now = utcnow()
    columns: dict[str, object] = {
        "verification_status": target,
        "verification_note": decision.reason,
        "updated_at": now,
    }
    if target == VerificationStatus.VERIFIED:
        columns |= {"verified_at": now, "verified_by_user_id": actor.user_id}
    # Compare-and-set: of two reviewers deciding at once, only the first decision counts.
    transitions.move(
        session,
        organization,
        columns,
        state="verification_status",
        lost="Another decision on this organisation came first; reload it",
    )
    assert organization.id is not None
    audit.record(
        session,
        actor,
        ENTITY,
        organization.id,
        f"verification.{decision.decision}",
        from_status=current,
        to_status=target,
        reason=decision.reason,
    )
    return organization


def members(session: Session, actor: Actor, organization_id: int) -> list[User]:
    get_visible(session, actor, organization_id)
    query = select(User).where(User.organization_id == organization_id).order_by(col(User.id))
    return list(session.exec(query))


def add_member(
    session: Session,
    actor: Actor,
    organization_id: int,
    email: str,
    display_name: str,
    password: str,
    role: Role,
) -> User:
    organization = get_visible(session, actor, organization_id)
    if not (actor.is_org_admin and actor.belongs_to(organization_id)) and not (
        actor.role == Role.ADMIN
    ):
        raise Forbidden("Only the organisation's administrator can add members")
    return add_user(session, organization, email, display_name, password, role)


def _ensure_unique(session: Session, name: str, credit_code: str) -> None:
    clash = session.exec(
        select(Organization).where(
            (Organization.name == name) | (Organization.credit_code == credit_code)
        )
    ).first()
    if clash is not None:
        field = "name" if clash.name == name else "credit_code"
        raise Conflict(
            f"An organisation with this {field.replace('_', ' ')} is already registered",
            code="organization_exists",
        )


def _add_unique(session: Session, row: SQLModel, message: str) -> None:
    """Insert in a savepoint, turning a unique-constraint race into a 409 instead of a
    500; what the request wrote before stays valid."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as error:
        raise Conflict(message) from error
