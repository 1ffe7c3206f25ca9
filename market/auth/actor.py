"""Who is making the request, resolved from the bearer token.

`Actor` is what services receive for permission checks; they never look at tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from market.auth.models import BUREAU_ROLES, Role, User
from market.auth.organization import Organization, OrganizationKind
from market.auth.tokens import InvalidToken, decode_access_token
from market.config import Settings
from market.db import DbSession, session_scope
from market.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: Role
    organization_id: int
    organization_kind: OrganizationKind
    organization_verified: bool

    @property
    def is_bureau(self) -> bool:
        return self.role in BUREAU_ROLES

    @property
    def is_org_admin(self) -> bool:
        return self.role == Role.ORG_ADMIN

    @property
    def is_broker(self) -> bool:
        return self.role == Role.BROKER

    def belongs_to(self, organization_id: int) -> bool:
        return self.organization_id == organization_id


_bearer = HTTPBearer(auto_error=False, description="Access token from POST /auth/login")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def resolve_actor(session: Session, settings: Settings, token: str) -> Actor:
    try:
        claims = decode_access_token(settings, token)
    except InvalidToken as error:
        raise Unauthorized("The access token is invalid or expired") from error
    user = session.get(User, claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.token_version:
        raise Unauthorized("The access token is no longer valid; log in again")
    organization = session.get(Organization, user.organization_id)
    assert organization is not None and organization.id is not None and user.id is not None
    return Actor(
        user_id=user.id,
        role=Role(user.role),
        organization_id=organization.id,
        organization_kind=OrganizationKind(organization.kind),
        organization_verified=organization.is_verified,
    )


def optional_actor(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor | None:
    if credentials is None:
        return None
    return resolve_actor(session, _settings(request), credentials.credentials)


def current_actor(actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor:
    if actor is None:
        raise Unauthorized()
    return actor


def bureau_actor(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    if not actor.is_bureau:
        raise Forbidden("Only science and technology bureau staff may do this")
    return actor


def released_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """`current_actor`, resolved in a unit of work that is closed before the handler
    runs: for handlers that do slow work without a connection (password hashing) and
    open their own units, so the request holds no connection meanwhile."""
    if credentials is None:
        raise Unauthorized()
    with session_scope(request.app.state.engine, writes=False) as session:
        return resolve_actor(session, _settings(request), credentials.credentials)


CurrentActor = Annotated[Actor, Depends(current_actor)]
ReleasedActor = Annotated[Actor, Depends(released_actor)]
OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
BureauActor = Annotated[Actor, Depends(bureau_actor)]
