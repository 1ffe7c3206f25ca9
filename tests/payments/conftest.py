"""Fixtures for the Stripe-facing tests: one localstripe per session, webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from market.payments.gateway import PaymentGateway, StripeCompatibility
from tests.support.localstripe_server import (
    TEST_SECRET_KEY,
    LocalstripeServer,
    WebhookReceiver,
)


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
