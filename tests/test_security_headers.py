"""What every response tells a browser, and what the schema tells a client."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from market.http_surface import SECURITY_HEADERS
from tests.support.factories import Market

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
EXTERNAL_SOURCE = re.compile(r'<(?:script|link)[^>]* (?:src|href)="(https://[^/"]+)')


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("GET", "/results"),
        ("GET", "/openapi.json"),
        ("GET", "/no/such/page"),
        ("POST", "/auth/login"),
        ("DELETE", "/results"),
    ],
)
def test_every_response_carries_the_security_headers(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, json={})

    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (path, name)


def test_a_csv_download_carries_them_too(client: TestClient, market: Market) -> None:
    bureau = market.bureau_staff()
    response = client.get("/stats/breakdown/year", params={"format": "csv"}, headers=bureau.headers)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_docs_pages_allow_exactly_what_they_load(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    page = response.text
    for script in INLINE_SCRIPT.findall(page):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    for origin in EXTERNAL_SOURCE.findall(page):
        assert (
            origin in policy["script-src"]
            or origin in policy["style-src"]
            or origin in policy["img-src"]
        ), origin
    assert response.headers["x-content-type-options"] == "nosniff"


def test_health_tells_an_anonymous_caller_only_that_it_is_up(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/results", "GET, POST"),
        ("PUT", "/results/1", "DELETE, GET, PATCH"),
        ("GET", "/auth/login", "POST"),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["code"] == "method_not_allowed"


def _operations(client: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    document = client.get("/openapi.json").json()
    return {
        (method, path): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


ANONYMOUS_OR_SIGNED_IN = [
    ("get", "/results"),
    ("get", "/results/{listing_id}"),
    ("get", "/demands"),
    ("get", "/demands/{listing_id}"),
    ("get", "/search/results"),
    ("get", "/search/demands"),
    ("get", "/results/{listing_id}/similar"),
    ("get", "/demands/{listing_id}/similar"),
]


def test_routes_that_serve_anonymous_callers_declare_optional_security(
    client: TestClient,
) -> None:
    operations = _operations(client)
    for key in ANONYMOUS_OR_SIGNED_IN:
        assert operations[key]["security"] == [{}, {"HTTPBearer": []}], key
    optional = {key for key, operation in operations.items() if {} in operation.get("security", [])}
    assert optional == set(ANONYMOUS_OR_SIGNED_IN)
    # a route that needs a token keeps requiring it; a public one declares none
    assert operations[("get", "/contracts/{contract_id}")]["security"] == [{"HTTPBearer": []}]
    assert "security" not in operations[("post", "/auth/login")]


def test_anonymous_reads_really_work_without_a_token(client: TestClient) -> None:
    for path in ("/results", "/demands"):
        assert client.get(path).status_code == 200


def test_idempotent_replays_document_their_200(client: TestClient) -> None:
    operations = _operations(client)
    for key in [
        ("post", "/contracts/{contract_id}/milestones/{milestone_id}/payments"),
        ("post", "/contracts/{contract_id}/deposits"),
        ("post", "/payments/{payment_id}/refunds"),
    ]:
        responses = operations[key]["responses"]
        assert {"200", "201"} <= set(responses), key
        assert responses["200"]["content"] == responses["201"]["content"]
