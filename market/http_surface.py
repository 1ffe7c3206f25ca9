"""What every HTTP response carries, whichever route made it: security headers, a
complete `Allow` on 405, and the interactive docs pages with a policy that fits them.

These are pure ASGI middlewares (no BaseHTTPMiddleware): they touch only the response's
start message, so streaming bodies and the request's own timing are left alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API answers JSON (and CSV): nothing in a response may run, load or be framed.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": API_CONTENT_SECURITY_POLICY,
}

DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"
# Where FastAPI's docs pages load their bundles, styles, fonts and favicon from.
_DOCS_ASSET_HOSTS = "https://cdn.jsdelivr.net"
_DOCS_FONT_STYLES = "https://fonts.googleapis.com"
_DOCS_FONTS = "https://fonts.gstatic.com"
_DOCS_FAVICON_HOST = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response that does not set its own value (the
    docs pages bring their own Content-Security-Policy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CompleteAllowHeader:
    """A 405 lists every method the path accepts. Each FastAPI route carries one
    method, and Starlette answers from the first route whose path matched, so on its
    own `Allow` names only that route's method (RFC 9110 wants them all)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                MutableHeaders(scope=message)["Allow"] = ", ".join(self._allowed(scope))
            await send(message)

        await self.app(scope, receive, send_with_allow)

    def _allowed(self, scope: Scope) -> list[str]:
        methods: set[str] = set()
        for route in iter_route_contexts(self.api.router.routes):
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                methods.update(getattr(route, "methods", None) or ())
        return sorted(methods)


def install(app: FastAPI) -> None:
    app.add_middleware(CompleteAllowHeader, api=app)
    app.add_middleware(SecurityHeaders)
    _serve_docs_pages(app)


def _serve_docs_pages(app: FastAPI) -> None:
    """FastAPI's own Swagger UI and ReDoc pages, each with a Content-Security-Policy
    that allows exactly what it loads. The app is built with docs_url=None and
    redoc_url=None, so these routes replace FastAPI's."""
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
    )
    redoc = get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc")
    redirect = get_swagger_ui_oauth2_redirect_html()
    pages = {DOCS_URL: swagger, REDOC_URL: redoc, OAUTH2_REDIRECT_URL: redirect}
    for path, page in pages.items():
        body = bytes(page.body)
        _add_page(app, path, body, docs_page_policy(body))


def _add_page(app: FastAPI, path: str, body: bytes, policy: str) -> None:
    def page() -> HTMLResponse:
        return HTMLResponse(body, headers={"Content-Security-Policy": policy})

    app.add_api_route(path, page, methods=["GET"], include_in_schema=False)


def docs_page_policy(html: bytes) -> str:
    """The policy of one docs page: its inline scripts by hash (the page is fixed, so
    the hashes are too), bundles and styles from the CDN FastAPI links to, and requests
    only to this API. Styles stay 'unsafe-inline': both UIs set style attributes and
    ReDoc injects style elements at run time, which no hash can name."""
    script_hashes = " ".join(f"'{digest}'" for digest in _inline_script_hashes(html))
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {_DOCS_ASSET_HOSTS} {script_hashes}".rstrip(),
            f"style-src 'unsafe-inline' {_DOCS_ASSET_HOSTS} {_DOCS_FONT_STYLES}",
            f"font-src {_DOCS_FONTS}",
            f"img-src 'self' data: {_DOCS_FAVICON_HOST}",
            "connect-src 'self'",
            # ReDoc runs its search index in a worker made from a blob URL
            "worker-src blob:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def _inline_script_hashes(html: bytes) -> Iterable[str]:
    for script in _INLINE_SCRIPT.findall(html.decode()):
        digest = hashlib.sha256(script.encode()).digest()
        yield "sha256-" + base64.b64encode(digest).decode()
