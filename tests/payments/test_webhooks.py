"""Webhook verification, parsing and ordering.

One test takes a real signed delivery from localstripe; the rest sign payloads with
`sign_payload` for the events localstripe never sends (refunds, cancel,
amount_capturable_updated) and for the attacks a signature must stop.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
import stripe

from market.payments.gateway import PaymentDeclined, PaymentGateway
from market.payments.webhooks import (
    EventCategory,
    InvalidWebhookPayload,
    InvalidWebhookSignature,
    RecordedPaymentState,
    WebhookEvent,
    intent_state_rank,
    parse_event,
    should_apply,
    sign_payload,
    verify,
)
from tests.support.localstripe_server import (
    LocalstripeServer,
    WebhookReceiver,
    register_webhook,
)

SECRET = "whsec_techmarket_test_secret"


def intent_object(status: str, **fields: Any) -> dict[str, Any]:
    """A PaymentIntent shaped as real Stripe sends it in events (latest_charge is an id)."""
    return {
        "id": "pi_123",
        "object": "payment_intent",
        "status": status,
        "amount": 10_000,
        "currency": "cny",
        "capture_method": "automatic",
        "amount_capturable": 0,
        "amount_received": 0,
        "created": 1_700_000_000,
        "latest_charge": "ch_123",
        "metadata": {"milestone_id": "7"},
    } | fields


def event_document(
    event_type: str, stripe_object: dict[str, Any], *, event_id: str = "evt_1", created: int = 0
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created or int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": stripe_object},
    }


def signed(document: dict[str, Any], *, timestamp: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(document, indent=2).encode()
    return body, sign_payload(body, SECRET, timestamp or int(time.time()))


# -- a real delivery from localstripe ------------------------------------------


@pytest.mark.stripe
def test_localstripe_deliveries_verify_with_our_secret_and_parse(
    localstripe: LocalstripeServer, gateway: PaymentGateway, webhook_receiver: WebhookReceiver
) -> None:
    secret = f"whsec_{uuid.uuid4().hex}"
    # One id for the whole suite: registering again replaces the earlier receiver.
    register_webhook(
        localstripe.base_url,
        "techmarket-tests",
        url=webhook_receiver.url,
        secret=secret,
        events=["payment_intent.succeeded", "payment_intent.payment_failed"],
    )
    paid = gateway.create_payment_intent(
        4_321, payment_method_types=["card"], metadata={"milestone_id": "9"}, idempotency_key="w1"
    )
    gateway.confirm(paid.id, "pm_card_visa")
    failed = gateway.create_payment_intent(
        1_000, payment_method_types=["card"], metadata={}, idempotency_key="w2"
    )
    with pytest.raises(PaymentDeclined):
        gateway.confirm(failed.id, "pm_card_chargeCustomerFail")

    success = webhook_receiver.wait_for(lambda r: paid.id.encode() in r.body)
    failure = webhook_receiver.wait_for(lambda r: failed.id.encode() in r.body)

    event = verify(success.body, success.header("Stripe-Signature"), secret)
    assert (event.type, event.known, event.category) == (
        "payment_intent.succeeded",
        True,
        EventCategory.PAYMENT_INTENT,
    )
    assert (event.object_id, event.payment_intent_id, event.object_status) == (
        paid.id,
        paid.id,
        "succeeded",
    )
    assert (event.amount_fen, event.amount_received_fen) == (4_321, 4_321)
    assert event.metadata == {"milestone_id": "9"}
    assert event.id.startswith("evt_")

    failed_event = verify(failure.body, failure.header("Stripe-Signature"), secret)
    assert failed_event.type == "payment_intent.payment_failed"
    assert failed_event.amount_received_fen == 0

    with pytest.raises(InvalidWebhookSignature):
        verify(success.body, success.header("Stripe-Signature"), SECRET)


# -- signatures ------------------------------------------------------------------


def test_a_correctly_signed_body_verifies() -> None:
    body, header = signed(event_document("payment_intent.succeeded", intent_object("succeeded")))

    assert verify(body, header, SECRET).type == "payment_intent.succeeded"


def test_our_signature_matches_the_stripe_sdks() -> None:
    body = b'{"id": "evt_1", "object": "event"}'

    expected = stripe.WebhookSignature.generate_signature_header(
        body.decode(), SECRET, timestamp=1_700_000_000
    )

    assert sign_payload(body, SECRET, 1_700_000_000) == expected


def test_a_changed_body_is_refused() -> None:
    body, header = signed(event_document("payment_intent.succeeded", intent_object("succeeded")))
    tampered = body.replace(b"10000", b"99999")
    assert tampered != body

    with pytest.raises(InvalidWebhookSignature):
        verify(tampered, header, SECRET)


def test_a_reserialised_body_is_refused() -> None:
    body, header = signed(event_document("payment_intent.succeeded", intent_object("succeeded")))
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()

    with pytest.raises(InvalidWebhookSignature):
        verify(compact, header, SECRET)


def test_a_wrong_secret_is_refused() -> None:
    body, header = signed(event_document("payment_intent.succeeded", intent_object("succeeded")))

    with pytest.raises(InvalidWebhookSignature):
        verify(body, header, "whsec_someone_else")


def test_a_signature_older_than_five_minutes_is_refused() -> None:
    body, header = signed(
        event_document("payment_intent.succeeded", intent_object("succeeded")),
        timestamp=int(time.time()) - 301,
    )

    with pytest.raises(InvalidWebhookSignature, match="tolerance"):
        verify(body, header, SECRET)


def test_a_signature_just_inside_the_tolerance_is_accepted() -> None:
    body, header = signed(
        event_document("payment_intent.succeeded", intent_object("succeeded")),
        timestamp=int(time.time()) - 290,
    )

    assert verify(body, header, SECRET).id == "evt_1"


def test_a_signature_from_the_future_is_refused() -> None:
    # A timestamp far ahead would stay "fresh" for as long as the attacker likes.
    body, header = signed(
        event_document("payment_intent.succeeded", intent_object("succeeded")),
        timestamp=int(time.time()) + 3600,
    )

    with pytest.raises(InvalidWebhookSignature, match="future"):
        verify(body, header, SECRET)


def test_a_signature_a_few_seconds_ahead_is_clock_skew_and_accepted() -> None:
    body, header = signed(
        event_document("payment_intent.succeeded", intent_object("succeeded")),
        timestamp=int(time.time()) + 20,
    )

    assert verify(body, header, SECRET).id == "evt_1"


@pytest.mark.parametrize("header", [None, "", "garbage", "t=notanumber,v1=abc", "t=1700000000"])
def test_missing_or_malformed_headers_are_refused(header: str | None) -> None:
    body, _ = signed(event_document("payment_intent.succeeded", intent_object("succeeded")))

    with pytest.raises(InvalidWebhookSignature):
        verify(body, header, SECRET)


def test_during_secret_rotation_either_signature_is_enough() -> None:
    body, header = signed(event_document("payment_intent.succeeded", intent_object("succeeded")))
    old_secret_signature = sign_payload(body, "whsec_old", int(time.time())).split(",")[1]

    assert verify(body, f"{header},{old_secret_signature}", SECRET).id == "evt_1"


def test_a_body_that_is_not_utf8_is_refused_as_unsigned() -> None:
    body = b"\xff\xfe not utf-8"

    with pytest.raises(InvalidWebhookSignature, match="UTF-8"):
        verify(body, sign_payload(body, SECRET, int(time.time())), SECRET)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"object": "v2.core.event", "id": "evt_1", "type": "x"}',
        b'{"object": "event", "id": "evt_1", "type": "x", "created": 1}',
        b'{"object": "event", "id": "evt_1", "created": 1, "data": {"object": {}}}',
    ],
)
def test_signed_bodies_that_are_not_readable_events_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidWebhookPayload):
        verify(body, sign_payload(body, SECRET, int(time.time())), SECRET)


def test_a_missing_secret_is_our_configuration_error_not_the_senders() -> None:
    body, header = signed(event_document("payment_intent.succeeded", intent_object("succeeded")))

    with pytest.raises(ValueError, match="not configured"):
        verify(body, header, "")


# -- parsing the events localstripe does not send -------------------------------


def test_amount_capturable_updated_reports_the_hold() -> None:
    document = event_document(
        "payment_intent.amount_capturable_updated",
        intent_object("requires_capture", capture_method="manual", amount_capturable=10_000),
    )

    event = parse_event(document)

    assert event.category is EventCategory.PAYMENT_INTENT
    assert (event.object_status, event.amount_capturable_fen) == ("requires_capture", 10_000)
    assert event.amount_refunded_fen is None  # an intent event carries no refund total


def test_charge_refunded_reports_the_running_refund_total_and_the_intent() -> None:
    charge = {
        "id": "ch_123",
        "object": "charge",
        "status": "succeeded",
        "amount": 10_000,
        "amount_captured": 10_000,
        "amount_refunded": 2_500,
        "currency": "cny",
        "payment_intent": "pi_123",
        "metadata": {},
    }

    event = parse_event(event_document("charge.refunded", charge))

    assert event.category is EventCategory.CHARGE_REFUNDED
    assert (event.object_id, event.payment_intent_id) == ("ch_123", "pi_123")
    assert (event.amount_refunded_fen, event.amount_received_fen) == (2_500, 10_000)


def test_refund_updated_reports_one_refund() -> None:
    refund = {
        "id": "re_1",
        "object": "refund",
        "status": "failed",
        "amount": 2_500,
        "currency": "cny",
        "payment_intent": "pi_123",
        "charge": "ch_123",
        "metadata": {"requested_by": "bureau"},
    }

    event = parse_event(event_document("refund.updated", refund))

    assert event.category is EventCategory.REFUND
    assert (event.object_id, event.object_status, event.amount_fen) == ("re_1", "failed", 2_500)
    assert event.payment_intent_id == "pi_123"
    assert event.metadata == {"requested_by": "bureau"}


def test_unknown_event_types_parse_as_unknown_and_are_never_applied() -> None:
    document = event_document(
        "customer.created", {"id": "cus_1", "object": "customer", "metadata": {}}
    )

    event = parse_event(document)

    assert (event.known, event.category, event.object_id) == (False, None, "cus_1")
    assert should_apply(RecordedPaymentState(), event) is False


def test_a_known_event_missing_its_amount_is_refused() -> None:
    with pytest.raises(InvalidWebhookPayload, match="amount"):
        parse_event(event_document("charge.refunded", {"id": "ch_1", "object": "charge"}))


# -- ordering --------------------------------------------------------------------


def intent_event(
    status: str, *, event_type: str | None = None, created: int = 1_000, event_id: str = ""
) -> WebhookEvent:
    document = event_document(
        event_type or f"payment_intent.{status}",
        intent_object(status),
        event_id=event_id or f"evt_{status}_{created}",
        created=created,
    )
    return parse_event(document)


def test_intent_statuses_rank_along_the_lifecycle() -> None:
    lifecycle = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "succeeded",
    ]
    ranks = [intent_state_rank(status) for status in lifecycle]

    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert intent_state_rank("canceled") == intent_state_rank("succeeded")
    with pytest.raises(ValueError, match="unknown"):
        intent_state_rank("teleported")


@pytest.mark.parametrize(
    ("current", "incoming", "applies"),
    [
        (None, "processing", True),
        ("requires_payment_method", "processing", True),
        ("processing", "succeeded", True),
        ("succeeded", "processing", False),  # the late processing of the issue
        ("succeeded", "succeeded", False),  # a repeat changes nothing
        ("requires_capture", "processing", False),
        ("requires_capture", "succeeded", True),  # captured
        ("requires_capture", "canceled", True),  # released
        ("canceled", "succeeded", False),
        ("processing", "requires_capture", True),  # amount_capturable_updated
    ],
)
def test_intent_events_only_move_forward(current: str | None, incoming: str, applies: bool) -> None:
    event_type = {
        "requires_capture": "payment_intent.amount_capturable_updated",
        "canceled": "payment_intent.canceled",
    }.get(incoming)

    event = intent_event(incoming, event_type=event_type)

    assert should_apply(RecordedPaymentState(intent_status=current), event) is applies


def test_a_failed_attempt_applies_until_money_is_authorised() -> None:
    failure = intent_event("requires_payment_method", event_type="payment_intent.payment_failed")

    assert should_apply(RecordedPaymentState(intent_status="processing"), failure)
    assert should_apply(RecordedPaymentState(intent_status="requires_action"), failure)
    assert not should_apply(RecordedPaymentState(intent_status="requires_capture"), failure)
    assert not should_apply(RecordedPaymentState(intent_status="succeeded"), failure)


def test_a_failure_older_than_what_we_know_does_not_apply() -> None:
    # Attempt 1 failed at t=100, attempt 2 is processing since t=200; the first
    # attempt's failure arrives last.
    late_failure = intent_event(
        "requires_payment_method", event_type="payment_intent.payment_failed", created=100
    )
    state = RecordedPaymentState(intent_status="processing", intent_status_event_created=200)

    assert not should_apply(state, late_failure)
    assert should_apply(replace(state, intent_status_event_created=50), late_failure)


def test_charge_refunded_applies_only_a_larger_running_total() -> None:
    def charge_refunded(total: int) -> WebhookEvent:
        charge = {
            "id": "ch_123",
            "object": "charge",
            "status": "succeeded",
            "amount": 10_000,
            "amount_refunded": total,
            "payment_intent": "pi_123",
        }
        return parse_event(event_document("charge.refunded", charge, event_id=f"evt_{total}"))

    state = RecordedPaymentState(intent_status="succeeded", amount_refunded_fen=4_000)

    assert should_apply(state, charge_refunded(10_000))
    assert not should_apply(state, charge_refunded(4_000))
    assert not should_apply(state, charge_refunded(2_500))  # late, smaller total


@pytest.mark.parametrize(
    ("known", "incoming", "applies"),
    [
        (None, "pending", True),
        (None, "succeeded", True),
        ("pending", "succeeded", True),
        ("pending", "failed", True),
        ("succeeded", "pending", False),
        ("succeeded", "succeeded", False),
        ("failed", "succeeded", False),
    ],
)
def test_refund_events_move_each_refund_forward(
    known: str | None, incoming: str, applies: bool
) -> None:
    refund = {"id": "re_1", "object": "refund", "status": incoming, "amount": 100}
    event = parse_event(event_document("refund.updated", refund))
    state = RecordedPaymentState(refund_statuses={"re_1": known} if known else {})

    assert should_apply(state, event) is applies


# -- a caller's fold over deliveries: order and repeats do not matter -----------


def fold(deliveries: Iterable[WebhookEvent]) -> tuple[RecordedPaymentState, int]:
    """What the payments service will do: store each event id once, apply if news."""
    seen: set[str] = set()
    state, changes = RecordedPaymentState(), 0
    for event in deliveries:
        if event.id in seen:
            continue
        seen.add(event.id)
        if should_apply(state, event):
            changes += 1
            state = replace(
                state, intent_status=event.object_status, intent_status_event_created=event.created
            )
    return state, changes


def test_any_order_of_deliveries_ends_in_succeeded() -> None:
    events = [
        intent_event("processing", created=1),
        intent_event("requires_capture", event_type="payment_intent.amount_capturable_updated"),
        intent_event("succeeded", created=3),
    ]

    for order in itertools.permutations(events):
        final, _ = fold(order)
        assert final.intent_status == "succeeded", [e.type for e in order]


def test_the_same_event_three_times_changes_state_once() -> None:
    succeeded = intent_event("succeeded", event_id="evt_same")

    final, changes = fold([succeeded, succeeded, succeeded])

    assert (final.intent_status, changes) == ("succeeded", 1)
