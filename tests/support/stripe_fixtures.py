"""Stripe fixtures shared by every test folder: one localstripe per session and an app
with payments switched on against it (registered as a plugin in tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.app import create_app
from market.config import Settings
from tests.support.localstripe_server import (
    TEST_SECRET_KEY,
    LocalstripeServer,
    localstripe_installed,
    running_localstripe,
)

# CI sets this so that a missing localstripe fails the build instead of skipping
# every test that talks to a server.
REQUIRE_STRIPE_ENV = "MARKET_TEST_REQUIRE_STRIPE"
WEBHOOK_SECRET = "whsec_techmarket_payments_api_tests"


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalstripeServer]:
    if not localstripe_installed():
        reason = "localstripe is not installed (pip install 'localstripe>=1.15')"
        if os.environ.get(REQUIRE_STRIPE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_STRIPE_ENV}=1 requires it")
        pytest.skip(reason)
    with running_localstripe(tmp_path_factory.mktemp("localstripe-state")) as server:
        yield server


@pytest.fixture(scope="session")
def stripe_settings(settings: Settings, localstripe: LocalstripeServer) -> Settings:
    # Same JWT secret as `settings`, so the `market` factory's tokens work here too.
    return settings.model_copy(
        update={
            "stripe_secret_key": TEST_SECRET_KEY,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": localstripe.base_url,
            "stripe_compatibility": "localstripe",
            "stripe_payment_method_types": ["card"],
            "platform_fee_basis_points": 150,  # 1.5 %
            "broker_commission_basis_points": 250,  # 2.5 %
        }
    )


@pytest.fixture(scope="session")
def pay_app(stripe_settings: Settings, engine: Engine) -> FastAPI:
    return create_app(stripe_settings, engine)


@pytest.fixture(scope="session")
def pay(pay_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(pay_app) as test_client:
        yield test_client
