from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from market.auth import service
from market.auth.actor import CurrentActor
from market.auth.models import User
from market.auth.schemas import LoginRequest, PasswordChange, RefreshRequest, TokenPair, UserRead
from market.db import DbSession
from market.errors import problem_responses

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=TokenPair, responses=problem_responses(401, 422, 429))
def login(credentials: LoginRequest, request: Request, session: DbSession) -> TokenPair:
    address = request.client.host if request.client else "unknown"
    return service.login(
        session,
        request.app.state.engine,
        request.app.state.settings,
        credentials.email,
        credentials.password,
        address,
    )


@router.post("/auth/refresh", response_model=TokenPair, responses=problem_responses(401, 422))
def refresh(body: RefreshRequest, request: Request, session: DbSession) -> TokenPair:
    return service.refresh(
        session, request.app.state.engine, request.app.state.settings, body.refresh_token
    )


@router.post(
    "/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(422)
)
def logout(body: RefreshRequest, session: DbSession) -> Response:
    service.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401)
)
def logout_everywhere(actor: CurrentActor, session: DbSession) -> Response:
    service.logout_everywhere(session, _user(session, actor.user_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/password", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 422)
)
def change_password(body: PasswordChange, actor: CurrentActor, session: DbSession) -> Response:
    service.change_password(
        session, _user(session, actor.user_id), body.current_password, body.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserRead, responses=problem_responses(401))
def me(actor: CurrentActor, session: DbSession) -> UserRead:
    return UserRead.model_validate(_user(session, actor.user_id))


def _user(session: DbSession, user_id: int) -> User:
    user = session.get(User, user_id)
    assert user is not None  # the actor was resolved from this row moments ago
    return user
