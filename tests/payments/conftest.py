"""Fixtures for the Stripe-facing tests: one localstripe per session, webhook receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from market.payments.gateway import PaymentGateway, StripeCompatibility
from tests.support.localstripe_server import (
    TEST_SECRET_KEY,
    LocalstripeServer,
    WebhookReceiver,
    localstripe_installed,
    running_localstripe,
)

# CI sets this so that a missing localstripe fails the build instead of skipping
# every test that talks to a server.
REQUIRE_STRIPE_ENV = "MARKET_TEST_REQUIRE_STRIPE"


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalstripeServer]:
    if not localstripe_installed():
        reason = "localstripe is not installed (pip install 'localstripe>=1.15')"
        if os.environ.get(REQUIRE_STRIPE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_STRIPE_ENV}=1 requires it")
        pytest.skip(reason)
    with running_localstripe(tmp_path_factory.mktemp("localstripe-state")) as server:
        yield server


@pytest.fixture
def gateway(localstripe: LocalstripeServer) -> PaymentGateway:
    # No retries: localstripe ignores idempotency keys, so a retried POST could
    # create a second object and hide a bug.
    return PaymentGateway(
        TEST_SECRET_KEY,
        api_base=localstripe.base_url,
        compatibility=StripeCompatibility.LOCALSTRIPE,
        max_network_retries=0,
    )


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver
