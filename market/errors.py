"""The domain error tree and the one JSON error shape (RFC 9457 problem details).

Services raise `DomainError` subclasses; `install_error_handlers` turns them, request
validation errors, HTTP errors and anything unexpected into

    {"type": "...", "code": "...", "title": "...", "status": 404, "detail": "...",
     "errors": [{"field": "body.price_fen", "message": "...", "code": "..."}]}

with content type application/problem+json.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_BASE = "https://techmarket.example/problems/"


class FieldProblem(BaseModel):
    field: str
    message: str
    code: str = "invalid"


class Problem(BaseModel):
    """The body of every error response."""

    type: str
    code: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = []


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = errors or []
        self.headers = headers or {}


class InvalidInput(DomainError):
    """Well-formed input that breaks a domain rule (422 with the offending fields)."""

    status = 422
    code = "validation_failed"
    title = "Invalid input"

    @classmethod
    def on(cls, field: str, message: str, code: str = "invalid") -> InvalidInput:
        return cls(message, errors=[FieldProblem(field=field, message=message, code=code)])


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str = "A valid access token is required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "Not possible in the current state"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + code,
        code=code,
        title=title,
        status=status,
        detail=detail,
        errors=errors or [],
    )
    return JSONResponse(
        body.model_dump(),
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_failed", "Invalid input"),
    429: ("rate_limited", "Too many requests"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldProblem(
                field=_field_path(err["loc"]),
                message=err["msg"].removeprefix("Value error, "),
                code=err["type"],
            )
            for err in exc.errors()
        ]
        fields = ", ".join(sorted({problem.field for problem in errors})) or "request"
        return problem_response(
            422, "validation_failed", "Invalid input", f"Invalid value for: {fields}", errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        return problem_response(
            exc.status_code, code, title, str(exc.detail), headers=dict(exc.headers or {})
        )

    @app.exception_handler(DataError)
    async def database_data_error(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value (out of range, bad encoding) that validation let
        # through: the request's fault, so a 422 rather than a 500, but logged so the
        # missing validation gets added.
        logger.warning(
            "database refused a value on %s %s: %s", request.method, request.url.path, exc.orig
        )
        return problem_response(
            422,
            "value_out_of_range",
            "Invalid input",
            "A value in the request is out of the range the service can store.",
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal_error",
            "Internal error",
            "The server failed to handle this request; it has been logged.",
        )


# Responses every router can declare so the OpenAPI schema documents the error shape.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": Problem, "description": HTTP_CODES.get(status, ("", "Error"))[1]}
        for status in statuses
    }
