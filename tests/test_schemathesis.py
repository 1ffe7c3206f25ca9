"""Property-based tests of every operation against the app's own OpenAPI schema.

Schemathesis generates requests from the schema (valid and invalid) and checks that
the API never answers 5xx, that every status and body it answers is documented, and
that content types match. Each operation runs with a bounded number of examples, once
as an institute administrator and once as bureau staff, so authenticated paths are
exercised too. MARKET_SCHEMATHESIS_EXAMPLES raises the bound for a deeper run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import checks

from market.organizations.models import OrganizationKind
from tests.support.factories import Market

MAX_EXAMPLES = int(os.environ.get("MARKET_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(params=["institute_admin", "bureau_staff"])
def auth_headers(request: pytest.FixtureRequest, market: Market) -> dict[str, str]:
    if request.param == "bureau_staff":
        return market.bureau_staff().headers
    return market.org_admin(OrganizationKind.INSTITUTE).headers


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, auth_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
