from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from market.auth.actor import BureauActor, CurrentActor
from market.auth.organization import OrganizationKind, VerificationStatus
from market.auth.schemas import UserCreate, UserRead
from market.common.ids import PathId
from market.common.pagination import Page, Paging
from market.db import DbSession
from market.errors import problem_responses
from market.organizations import service
from market.organizations.districts import all_districts
from market.organizations.schemas import (
    DistrictRead,
    OrganizationPublic,
    OrganizationRead,
    OrganizationUpdate,
    Registration,
    VerificationDecision,
)

router = APIRouter(tags=["organizations"])
OrganizationId = PathId


@router.get("/districts", response_model=list[DistrictRead])
def districts() -> list[DistrictRead]:
    """Ningbo's divisions (GB/T 2260) and functional zones (our own stable codes)."""
    return [DistrictRead(**vars(district)) for district in all_districts().values()]


@router.get(
    "/organizations",
    response_model=Page[OrganizationRead],
    responses=problem_responses(401, 403),
    summary="List organisations (bureau staff), e.g. those waiting for verification",
)
def list_organizations(
    actor: BureauActor,
    session: DbSession,
    paging: Paging,
    verification_status: Annotated[VerificationStatus | None, Query()] = None,
    kind: Annotated[OrganizationKind | None, Query()] = None,
) -> Page[OrganizationRead]:
    rows, total = service.list_for_bureau(session, paging, verification_status, kind)
    items = [OrganizationRead.model_validate(row) for row in rows]
    return Page.of(items, total, paging)


@router.get(
    "/organizations/{organization_id}",
    response_model=OrganizationRead,
    responses=problem_responses(401, 404),
)
def get_organization(
    organization_id: OrganizationId, actor: CurrentActor, session: DbSession
) -> OrganizationRead:
    return OrganizationRead.model_validate(service.get_visible(session, actor, organization_id))


@router.get(
    "/organizations/{organization_id}/profile",
    response_model=OrganizationPublic,
    responses=problem_responses(404),
    summary="Public profile of a verified organisation",
)
def public_profile(organization_id: OrganizationId, session: DbSession) -> OrganizationPublic:
    return OrganizationPublic.model_validate(service.get_public(session, organization_id))


@router.patch(
    "/organizations/{organization_id}",
    response_model=OrganizationRead,
    responses=problem_responses(401, 403, 404, 422),
)
def update_organization(
    organization_id: OrganizationId,
    changes: OrganizationUpdate,
    actor: CurrentActor,
    session: DbSession,
) -> OrganizationRead:
    organization = service.update(session, actor, organization_id, changes)
    return OrganizationRead.model_validate(organization)


@router.post(
    "/organizations/{organization_id}/verification",
    response_model=OrganizationRead,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Verify, reject or suspend an organisation (bureau staff)",
)
def decide_verification(
    organization_id: OrganizationId,
    decision: VerificationDecision,
    actor: BureauActor,
    session: DbSession,
) -> OrganizationRead:
    organization = service.decide_verification(session, actor, organization_id, decision)
    return OrganizationRead.model_validate(organization)


@router.get(
    "/organizations/{organization_id}/members",
    response_model=list[UserRead],
    responses=problem_responses(401, 404),
)
def list_members(
    organization_id: OrganizationId, actor: CurrentActor, session: DbSession
) -> list[UserRead]:
    return [
        UserRead.model_validate(user) for user in service.members(session, actor, organization_id)
    ]


@router.post(
    "/organizations/{organization_id}/members",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def add_member(
    organization_id: OrganizationId, body: UserCreate, actor: CurrentActor, session: DbSession
) -> UserRead:
    user = service.add_member(
        session, actor, organization_id, body.email, body.display_name, body.password, body.role
    )
    return UserRead.model_validate(user)


# Sign-up is an organisation's first step, so it lives here; the docs keep listing it
# with the other /auth endpoints, hence a router of its own with the auth tag (a tag on
# the route would be added to "organizations", not replace it).
sign_up = APIRouter(tags=["auth"])


@sign_up.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationRead,
    responses=problem_responses(409, 422),
    summary="Register an organisation with its first administrator",
)
def register(registration: Registration, session: DbSession) -> OrganizationRead:
    organization, _admin = service.register(session, registration)
    return OrganizationRead.model_validate(organization)


_organization_routes = router
router = APIRouter()
router.include_router(sign_up)
router.include_router(_organization_routes)
