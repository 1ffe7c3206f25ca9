"""Property-based tests of every operation against the app's own OpenAPI schema.

Schemathesis generates requests from the schema (valid and invalid) and checks that
the API never answers 5xx, that every status and body it answers is documented, and
that content types match. Each operation runs with a bounded number of examples, once
as an institute administrator and once as bureau staff, so authenticated paths are
exercised too. MARKET_SCHEMATHESIS_EXAMPLES raises the bound for a deeper run.

The schema is the one `market openapi` renders, loaded at import so that every
operation becomes its own test; requests go through the suite's TestClient.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
import schemathesis
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks

from market.auth.organization import OrganizationKind
from market.openapi_export import render_openapi
from tests.support.factories import Market

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

MAX_EXAMPLES = int(os.environ.get("MARKET_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(yaml.safe_load(render_openapi()))


def _headers(market: Market, identity: str) -> dict[str, str]:
    if identity == "bureau_staff":
        return market.bureau_staff().headers
    return market.org_admin(OrganizationKind.INSTITUTE).headers


@pytest.mark.parametrize("identity", ["institute_admin", "bureau_staff"])
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(
    case: OpenApiCase, identity: str, pay: TestClient, market: Market
) -> None:
    # `pay` is the app with payments switched on against localstripe, so that payment
    # operations run their real paths instead of answering 503.
    client = pay
    headers = _headers(market, identity)
    request = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    response = client.request(
        request["method"],
        request["url"],
        params=request.get("params"),
        headers=request.get("headers"),
        json=request.get("json"),
        content=request.get("data"),
    )
    case.validate_response(response, checks=CHECKS)
