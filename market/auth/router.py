from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from market.auth import service
from market.auth.actor import CurrentActor, ReleasedActor
from market.auth.models import User
from market.auth.schemas import LoginRequest, PasswordChange, RefreshRequest, TokenPair, UserRead
from market.db import DbSession, run_unit
from market.errors import problem_responses

router = APIRouter(tags=["auth"])


# Token responses must not be kept by browsers or proxies (RFC 6749 section 5.1).
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _tokens_response(tokens: TokenPair) -> Response:
    return Response(tokens.model_dump_json(), media_type="application/json", headers=_NO_STORE)


# Login, refresh and password change take no request session (`DbSession`): they run
# short units of work of their own, so that no connection is held while a password is
# hashed or while another unit waits for the pool (market/auth/service.py).
@router.post("/auth/login", response_model=TokenPair, responses=problem_responses(401, 422, 429))
async def login(credentials: LoginRequest, request: Request) -> Response:
    # The TCP peer, or what a proxy listed in MARKET_FORWARDED_ALLOW_IPS forwarded
    # (uvicorn rewrites the client only for those): never a header any client can set.
    address = request.client.host if request.client else "unknown"
    return _tokens_response(
        await service.login(
            request.app.state.engine,
            request.app.state.settings,
            credentials.email,
            credentials.password,
            address,
        )
    )


@router.post("/auth/refresh", response_model=TokenPair, responses=problem_responses(401, 422))
async def refresh(body: RefreshRequest, request: Request) -> Response:
    engine = request.app.state.engine
    return _tokens_response(
        await run_unit(
            engine, service.refresh, engine, request.app.state.settings, body.refresh_token
        )
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
    service.logout_everywhere(session, actor.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 409, 422),
)
async def change_password(body: PasswordChange, actor: ReleasedActor, request: Request) -> Response:
    await service.change_password(
        request.app.state.engine, actor.user_id, body.current_password, body.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserRead, responses=problem_responses(401))
def me(actor: CurrentActor, session: DbSession) -> UserRead:
    return UserRead.model_validate(_user(session, actor.user_id))


def _user(session: DbSession, user_id: int) -> User:
    user = session.get(User, user_id)
    assert user is not None  # the actor was resolved from this row moments ago
    return user
