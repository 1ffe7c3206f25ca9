"""`market payments reconcile` against localstripe: every kind of difference is reported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from market.cli import app as cli
from market.config import get_settings
from market.payments.reconcile import reconcile
from tests.support.journey import Cast
from tests.support.localstripe_server import TEST_SECRET_KEY, LocalstripeServer
from tests.support.payments import (
    VISA,
    client_side_gateway,
    milestone_ids,
    registered,
    start_payment,
)

pytestmark = pytest.mark.stripe


def a_little_before_now() -> datetime:
    # Stripe's `created` has whole seconds and the list is strictly "after".
    return datetime.now(UTC) - timedelta(seconds=5)


def test_every_kind_of_difference_is_found(
    pay: TestClient, cast: Cast, engine: Engine, localstripe: LocalstripeServer
) -> None:
    since = a_little_before_now()
    contract = registered(pay, cast, 10_000, 20_000, 30_000)
    first, second, third = milestone_ids(contract)
    in_step = start_payment(pay, cast.enterprise, contract["id"], first, confirm_with=VISA)
    paid = start_payment(pay, cast.enterprise, contract["id"], second, confirm_with=VISA)
    pending = start_payment(pay, cast.enterprise, contract["id"], third)
    stranger = client_side_gateway(localstripe).create_payment_intent(
        777,
        payment_method_types=["card"],
        metadata={},
        idempotency_key="not-ours",
    )
    with engine.begin() as connection:
        # We missed the success of one payment, and the other never reached Stripe.
        connection.execute(
            text("UPDATE payments SET status = 'pending', amount_received_fen = 0 WHERE id = :id"),
            {"id": paid["id"]},
        )
        connection.execute(
            text("UPDATE payments SET stripe_payment_intent_id = 'pi_lost' WHERE id = :id"),
            {"id": pending["id"]},
        )

    with Session(engine) as session:
        differences = reconcile(session, client_side_gateway(localstripe), since)

    found = {(d.kind, d.payment_id, d.intent_id) for d in differences}
    assert ("status", paid["id"], paid["stripe_payment_intent_id"]) in found
    assert ("amount_received", paid["id"], paid["stripe_payment_intent_id"]) in found
    assert ("missing_at_stripe", pending["id"], "pi_lost") in found
    assert ("missing_here", None, stranger.id) in found
    # The intent of the payment whose id we lost is on Stripe's side only now.
    assert ("missing_here", None, pending["stripe_payment_intent_id"]) in found
    assert not [d for d in differences if d.payment_id == in_step["id"]]


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, localstripe: LocalstripeServer
) -> Iterator[None]:
    monkeypatch.setenv("MARKET_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MARKET_STRIPE_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("MARKET_STRIPE_API_BASE", localstripe.base_url)
    monkeypatch.setenv("MARKET_STRIPE_COMPATIBILITY", "localstripe")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_command_lists_differences_and_exits_1(
    environment: None, pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 10_000)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE payments SET status = 'failed' WHERE id = :id"), {"id": paid["id"]}
        )
    today = datetime.now(UTC).date().isoformat()

    outcome = CliRunner().invoke(cli, ["payments", "reconcile", "--since", today])

    assert outcome.exit_code == 1, outcome.output
    assert (
        f"status: {paid['stripe_payment_intent_id']} (payment {paid['id']}) "
        "ours=failed stripe=succeeded"
    ) in outcome.output
    assert TEST_SECRET_KEY not in outcome.output


def test_the_command_exits_0_when_nothing_differs(environment: None) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    outcome = CliRunner().invoke(cli, ["payments", "reconcile", "--since", tomorrow])

    assert outcome.exit_code == 0, outcome.output
    assert "0 difference(s)" in outcome.output


def test_the_command_says_payments_are_off_without_a_key(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKET_STRIPE_SECRET_KEY", "")
    get_settings.cache_clear()

    outcome = CliRunner().invoke(cli, ["payments", "reconcile", "--since", "2026-01-01"])

    assert outcome.exit_code == 2
    assert "not configured" in outcome.output
