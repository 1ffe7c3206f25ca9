"""The gateway against a real localstripe server, over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from market.payments.gateway import (
    PaymentDeclined,
    PaymentGateway,
    PaymentIntentSnapshot,
    PaymentProviderUnavailable,
    PaymentRequestRejected,
    StripeCompatibility,
)
from tests.support.localstripe_server import LocalstripeServer

pytestmark = pytest.mark.stripe

VISA = "pm_card_visa"
DECLINING_CARD = "pm_card_chargeCustomerFail"


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


def create_intent(
    gateway: PaymentGateway, amount_fen: int, *, capture_method: str = "automatic"
) -> PaymentIntentSnapshot:
    return gateway.create_payment_intent(
        amount_fen,
        payment_method_types=["card"],
        capture_method=capture_method,  # type: ignore[arg-type]
        metadata={"contract_id": "42", "milestone_id": "7"},
        idempotency_key=new_key(),
    )


def paid_intent(gateway: PaymentGateway, amount_fen: int) -> PaymentIntentSnapshot:
    return gateway.confirm(create_intent(gateway, amount_fen).id, VISA)


def test_a_card_payment_in_fen_succeeds_and_reports_the_amount_received(
    gateway: PaymentGateway,
) -> None:
    created = create_intent(gateway, 12_345)
    assert created.status == "requires_payment_method"
    assert (created.amount_fen, created.currency) == (12_345, "cny")
    assert created.amount_received_fen == 0
    assert created.client_secret and created.client_secret.startswith(created.id)
    assert created.metadata == {"contract_id": "42", "milestone_id": "7"}

    paid = gateway.confirm(created.id, VISA)

    assert paid.status == "succeeded"
    assert paid.amount_received_fen == 12_345
    assert paid.latest_charge_id is not None
    assert gateway.retrieve(created.id) == paid


def test_a_declined_card_raises_payment_declined_and_leaves_the_intent_retryable(
    gateway: PaymentGateway,
) -> None:
    intent = create_intent(gateway, 5_000)

    with pytest.raises(PaymentDeclined) as declined:
        gateway.confirm(intent.id, DECLINING_CARD)

    assert declined.value.code == "card_declined"
    assert declined.value.http_status == 402
    assert declined.value.payment_intent_id == intent.id
    after = gateway.retrieve(intent.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error_code == "card_declined"
    assert after.amount_received_fen == 0


def test_a_hold_is_captured_in_part_and_the_rest_is_released(gateway: PaymentGateway) -> None:
    hold = gateway.confirm(create_intent(gateway, 10_000, capture_method="manual").id, VISA)
    assert hold.status == "requires_capture"
    assert hold.capture_method == "manual"
    assert (hold.amount_capturable_fen, hold.amount_received_fen) == (10_000, 0)

    captured = gateway.capture(hold.id, 6_000)

    assert captured.status == "succeeded"
    assert captured.amount_received_fen == 6_000
    assert captured.amount_capturable_fen == 0
    # The released 4 000 fen show on the charge as refunded (localstripe, like the
    # Charges API, records the uncaptured remainder as an automatic refund).
    assert captured.amount_refunded_fen == 4_000


def test_a_hold_that_is_cancelled_is_released_without_receiving_money(
    gateway: PaymentGateway,
) -> None:
    hold = gateway.confirm(create_intent(gateway, 8_000, capture_method="manual").id, VISA)

    released = gateway.cancel(hold.id)

    assert released.status == "canceled"
    assert released.amount_received_fen == 0
    assert released.amount_capturable_fen == 0
    assert gateway.retrieve(hold.id).status == "canceled"
    # Not asserted: that capturing it now fails. Real Stripe refuses; localstripe
    # 1.15.10 accepts the capture (see docs/PAYMENTS.md, quirks).


def test_capturing_more_than_the_hold_is_rejected(gateway: PaymentGateway) -> None:
    hold = gateway.confirm(create_intent(gateway, 3_000, capture_method="manual").id, VISA)

    with pytest.raises(PaymentRequestRejected):
        gateway.capture(hold.id, 3_001)

    assert gateway.retrieve(hold.id).status == "requires_capture"


def test_a_paid_intent_cannot_be_cancelled(gateway: PaymentGateway) -> None:
    paid = paid_intent(gateway, 1_000)

    with pytest.raises(PaymentRequestRejected):
        gateway.cancel(paid.id)


def test_refunds_in_part_then_in_full_add_up(gateway: PaymentGateway) -> None:
    paid = paid_intent(gateway, 20_000)

    first = gateway.refund(
        paid.id, 5_000, idempotency_key=new_key(), metadata={"requested_by": "bureau"}
    )
    assert (first.amount_fen, first.status, first.currency) == (5_000, "succeeded", "cny")
    assert first.payment_intent_id == paid.id
    assert first.charge_id == paid.latest_charge_id
    assert first.metadata == {"requested_by": "bureau"}
    assert gateway.retrieve(paid.id).amount_refunded_fen == 5_000

    rest = gateway.refund(paid.id, 15_000, idempotency_key=new_key())

    after = gateway.retrieve(paid.id)
    assert after.amount_refunded_fen == 20_000
    assert after.amount_received_fen == 20_000  # received stays what was captured
    assert {refund.id for refund in gateway.list_refunds(paid.id)} == {first.id, rest.id}


def test_an_unpaid_intent_cannot_be_refunded(gateway: PaymentGateway) -> None:
    intent = create_intent(gateway, 2_000)

    with pytest.raises(PaymentRequestRejected):
        gateway.refund(intent.id, 2_000, idempotency_key=new_key())


def test_an_unknown_intent_is_a_rejected_request(gateway: PaymentGateway) -> None:
    with pytest.raises(PaymentRequestRejected) as rejected:
        gateway.retrieve("pi_doesnotexist")

    assert rejected.value.http_status == 404


def test_reconciliation_lists_intents_created_after_a_moment(gateway: PaymentGateway) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    paid = paid_intent(gateway, 1_100)
    open_intent = create_intent(gateway, 2_200)

    listed = {intent.id: intent for intent in gateway.list_payment_intents(before)}

    assert {paid.id, open_intent.id} <= listed.keys()
    assert listed[paid.id].status == "succeeded"
    assert listed[paid.id].amount_received_fen == 1_100
    assert listed[open_intent.id].status == "requires_payment_method"
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert list(gateway.list_payment_intents(later)) == []


def test_credentials_localstripe_refuses_are_a_provider_problem_without_the_key(
    localstripe: LocalstripeServer,
) -> None:
    # localstripe accepts any key that starts with sk_; this one does not.
    wrong_key = "pk_test_wrong_kind_of_key_0123456789"
    gateway = PaymentGateway(
        wrong_key,
        api_base=localstripe.base_url,
        compatibility=StripeCompatibility.LOCALSTRIPE,
        max_network_retries=0,
    )

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        gateway.retrieve("pi_anything")

    assert unavailable.value.http_status == 401
    assert wrong_key not in str(unavailable.value)
    assert wrong_key not in repr(unavailable.value)


def test_localstripe_state_stays_in_its_throwaway_folder(
    gateway: PaymentGateway, localstripe: LocalstripeServer
) -> None:
    intent = create_intent(gateway, 999)

    assert localstripe.state_file.is_file()
    assert intent.id.encode() in localstripe.state_file.read_bytes()
    assert localstripe.base_url.startswith("http://127.0.0.1:")
