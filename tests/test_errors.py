"""The one error shape, for errors the routes raise and for ones nobody planned."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError

from market.app import create_app
from market.config import Settings
from market.db import make_engine


def _app_with_failing_routes() -> FastAPI:
    app = create_app(
        Settings(environment="test", jwt_secret=secrets.token_urlsafe(48), load_demo_data=False),
        make_engine("sqlite://"),
    )

    @app.get("/boom/data")
    def data_error() -> None:
        raise DataError("SELECT 1", {}, Exception("integer out of range"))

    @app.get("/boom/bug")
    def bug() -> None:
        raise RuntimeError("secret internals")

    return app


def test_database_range_errors_are_422_problems() -> None:
    with TestClient(_app_with_failing_routes()) as client:
        response = client.get("/boom/data")
    assert response.status_code == 422
    assert response.json()["code"] == "value_out_of_range"
    assert response.headers["content-type"].startswith("application/problem+json")


def test_unexpected_errors_are_500_problems_that_leak_nothing() -> None:
    with TestClient(_app_with_failing_routes(), raise_server_exceptions=False) as client:
        response = client.get("/boom/bug")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret internals" not in response.text


def test_unknown_route_and_method_use_the_problem_shape(client: TestClient) -> None:
    missing = client.get("/no/such/route")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong_method = client.delete("/districts")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"


def test_malformed_json_names_the_problem(client: TestClient) -> None:
    response = client.post(
        "/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert response.json()["title"]
