"""The application factory."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from market import __doc__ as market_doc
from market import http_surface
from market.auth.actor import current_actor, released_actor
from market.config import Settings, get_settings
from market.db import make_engine, read_only
from market.domains import domain_modules
from market.errors import ServiceUnavailable, install_error_handlers, problem_responses

logger = logging.getLogger("market")
PROBLEM_REF = "#/components/schemas/Problem"

API_DESCRIPTION = """
The API of the Ningbo city technology market (宁波科技大市场): research results and
patents from universities and institutes, technology demands from enterprises, the
bureau's review, matching, deals, technology contract registration and the trade
volume ledger.

Authenticate with `POST /auth/login` and send the access token as
`Authorization: Bearer <token>`. Every error is an RFC 9457 problem document.
"""


class Health(BaseModel):
    # Only the verdict: which database and versions run here is nobody's business
    # but the operator's, who has the logs.
    status: str


async def _completed(outcome: Any) -> None:
    """Start-up and shutdown hooks may be plain functions or coroutines (async resources)."""
    if inspect.isawaitable(outcome):
        await outcome


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production_safety()
    engine = engine or make_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for start in app.state.on_startup:
            await _completed(start(app))
        yield
        for stop in reversed(app.state.on_shutdown):
            await _completed(stop(app))

    app = FastAPI(
        title="TechMarket API",
        version="0.1.0",
        summary=market_doc,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # served by market.http_surface, with a Content-Security-Policy of their own
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    # Domains that run background work (the outbox worker) register hooks here.
    app.state.on_startup = []
    app.state.on_shutdown = []
    install_error_handlers(app)
    http_surface.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    for module in domain_modules("router"):
        app.include_router(module.router)
        if hasattr(module, "install"):
            module.install(app)

    _document_problem_responses(app)

    @app.get("/health", response_model=Health, tags=["health"], responses=problem_responses(503))
    async def health() -> Health:
        # On the event loop, not in the request threads, and with a thread of its own for
        # the database: a health check must not queue behind the traffic it checks.
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.run_in_executor(_HEALTH_THREAD, _ping, engine), HEALTH_DEADLINE_SECONDS
            )
        except (TimeoutError, SQLAlchemyError) as error:
            raise ServiceUnavailable(
                "The database does not answer", code="database_unavailable"
            ) from error
        return Health(status="ok")

    return app


HEALTH_DEADLINE_SECONDS = 2.0
_HEALTH_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")


def _ping(engine: Engine) -> None:
    with read_only(engine).connect() as connection:
        connection.exec_driver_sql("SELECT 1")


def _document_problem_responses(app: FastAPI) -> None:
    """Make the schema say what the handlers send: validation errors are problem
    documents too, not FastAPI's default HTTPValidationError shape."""
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build_schema()
        _mark_optional_security(app, document)
        _document_idempotent_replays(document)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if operation.get("security"):
                    responses.setdefault("401", {"description": "Authentication required"})
                if operation.get("requestBody"):
                    responses.setdefault("400", {"description": "Malformed request body"})
                for status, response in responses.items():
                    if status.startswith(("4", "5")):
                        response["content"] = {
                            "application/problem+json": {"schema": {"$ref": PROBLEM_REF}}
                        }
        schemas = document.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = document
        return document

    # FastAPI's documented way to extend the schema: replace the method on the instance.
    app.openapi = openapi  # type: ignore[method-assign]


def _mark_optional_security(app: FastAPI, document: dict[str, Any]) -> None:
    """Routes that read the bearer token but also serve anonymous callers (published
    listings, search) say so: `[{}, {bearer}]` is OpenAPI's "no authentication, or
    this". FastAPI marks every route that reads the token as requiring it."""
    # iter_route_contexts walks included routers the way FastAPI's own get_openapi does
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        if _requires_actor(route.dependant):
            continue
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation and operation.get("security"):
                operation["security"] = [{}, *operation["security"]]


# The dependencies that answer 401 without a token (the bureau's builds on current_actor).
_ACTOR_REQUIRED = (current_actor, released_actor)


def _requires_actor(dependant: Dependant) -> bool:
    return any(
        dependency.call in _ACTOR_REQUIRED or _requires_actor(dependency)
        for dependency in dependant.dependencies
    )


IDEMPOTENCY_HEADER = "Idempotency-Key"


def _document_idempotent_replays(document: dict[str, Any]) -> None:
    """A retry with a used Idempotency-Key answers 200 with the first result instead
    of creating it again (201); the schema documents that answer."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            parameters = operation.get("parameters", [])
            if not any(p.get("name") == IDEMPOTENCY_HEADER for p in parameters):
                continue
            responses = operation.get("responses", {})
            created = responses.get("201")
            if created is None or "200" in responses:
                continue
            responses["200"] = {
                **created,
                "description": f"A retry with an {IDEMPOTENCY_HEADER} already used for the "
                "same request: the first request's result, not done again",
            }
