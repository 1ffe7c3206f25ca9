"""What the gateway sends to real Stripe, where localstripe cannot tell us.

The pure parameter builders are checked for exact dicts; the wire tests run the real
StripeClient against a recording stand-in server to see headers and encoded fields.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from market.payments.gateway import (
    PaymentDeclined,
    PaymentGateway,
    PaymentProviderUnavailable,
    PaymentRequestRejected,
    StripeCompatibility,
    payment_intent_list_params,
    payment_intent_params,
    refund_params,
)
from tests.support.recording_stripe import CannedError, RecordingStripe, canned_intent

SECRET_KEY = "sk_test_51TechMarketNeverShowThisKey0123456789abcdef"
STRIPE = StripeCompatibility.STRIPE
LOCALSTRIPE = StripeCompatibility.LOCALSTRIPE


@pytest.fixture
def stand_in() -> Iterator[RecordingStripe]:
    with RecordingStripe() as server:
        yield server


@pytest.fixture
def real_stripe_gateway(stand_in: RecordingStripe) -> PaymentGateway:
    return PaymentGateway(SECRET_KEY, api_base=stand_in.base_url, max_network_retries=0)


# -- pure parameter builders ---------------------------------------------------


def test_payment_intent_params_for_real_stripe_are_exact() -> None:
    params = payment_intent_params(
        amount_fen=150_000,
        currency="CNY",
        payment_method_types=["card", "wechat_pay"],
        capture_method="automatic",
        metadata={"contract_id": "42", "milestone_id": "7"},
        customer="cus_123",
        description="合同 HT-2024-0042 第 2 期",
    )

    assert params == {
        "amount": 150_000,
        "currency": "cny",
        "capture_method": "automatic",
        "metadata": {"contract_id": "42", "milestone_id": "7"},
        "expand": ["latest_charge"],
        "payment_method_types": ["card", "wechat_pay"],
        "customer": "cus_123",
        "description": "合同 HT-2024-0042 第 2 期",
    }


def test_without_explicit_methods_real_stripe_chooses_automatically() -> None:
    params = payment_intent_params(
        amount_fen=100,
        currency="cny",
        payment_method_types=None,
        capture_method="manual",
        metadata={},
    )

    assert params["automatic_payment_methods"] == {"enabled": True}
    assert "payment_method_types" not in params
    assert params["capture_method"] == "manual"


def test_localstripe_mode_leaves_out_what_localstripe_refuses() -> None:
    params = payment_intent_params(
        amount_fen=100,
        currency="cny",
        payment_method_types=None,
        capture_method="automatic",
        metadata={"k": "v"},
        description="refused by localstripe",
        compatibility=LOCALSTRIPE,
    )

    assert params == {
        "amount": 100,
        "currency": "cny",
        "capture_method": "automatic",
        "metadata": {"k": "v"},
        "expand": ["latest_charge"],
    }


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "100"])
def test_amounts_must_be_positive_whole_fen(amount: object) -> None:
    with pytest.raises(ValueError, match="fen"):
        payment_intent_params(
            amount_fen=amount,  # type: ignore[arg-type]
            currency="cny",
            payment_method_types=["card"],
            capture_method="automatic",
            metadata={},
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": "yuan"}, "ISO 4217"),
        ({"capture_method": "later"}, "capture_method"),
        ({"metadata": {"contract_id": 42}}, "strings"),
        ({"metadata": {"k" * 41: "v"}}, "not accepted"),
        ({"metadata": {"items[0]": "v"}}, "not accepted"),
        ({"metadata": {"k": "v" * 501}}, "longer"),
        ({"metadata": {str(n): "v" for n in range(51)}}, "at most 50"),
    ],
)
def test_parameters_stripe_would_refuse_fail_before_any_request(
    changes: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "amount_fen": 100,
        "currency": "cny",
        "payment_method_types": ["card"],
        "capture_method": "automatic",
        "metadata": {},
    } | changes
    with pytest.raises(ValueError, match=message):
        payment_intent_params(**arguments)  # type: ignore[arg-type]


def test_refund_params_for_real_stripe_carry_the_reason() -> None:
    params = refund_params(
        payment_intent_id="pi_1",
        amount_fen=2_500,
        reason="requested_by_customer",
        metadata={"requested_by": "seller", "note": "合同解除"},
    )

    assert params == {
        "payment_intent": "pi_1",
        "amount": 2_500,
        "reason": "requested_by_customer",
        "metadata": {"requested_by": "seller", "note": "合同解除"},
    }


def test_refund_params_for_localstripe_drop_only_the_reason() -> None:
    params = refund_params(
        payment_intent_id="pi_1",
        amount_fen=2_500,
        reason="duplicate",
        metadata={"note": "x"},
        compatibility=LOCALSTRIPE,
    )

    assert params == {"payment_intent": "pi_1", "amount": 2_500, "metadata": {"note": "x"}}


def test_refund_reasons_are_limited_to_stripes_list() -> None:
    with pytest.raises(ValueError, match="requested_by_customer"):
        refund_params(payment_intent_id="pi_1", amount_fen=1, reason="changed mind")  # type: ignore[arg-type]


def test_list_params_filter_by_creation_on_real_stripe_only() -> None:
    after = datetime(2025, 1, 1, tzinfo=UTC)

    assert payment_intent_list_params(created_after=after) == {
        "limit": 100,
        "expand": ["data.latest_charge"],
        "created": {"gt": 1_735_689_600},
    }
    localstripe_params = payment_intent_list_params(created_after=after, compatibility=LOCALSTRIPE)
    assert "created" not in localstripe_params
    with pytest.raises(ValueError, match="timezone"):
        payment_intent_list_params(created_after=datetime(2025, 1, 1))


# -- on the wire ---------------------------------------------------------------


def test_create_sends_our_idempotency_key_and_the_real_stripe_fields(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    intent = real_stripe_gateway.create_payment_intent(
        88_800,
        payment_method_types=None,
        metadata={"milestone_id": "7"},
        idempotency_key="milestone-7-attempt-1",
        description="合同 42 第 1 期",
    )

    (call,) = stand_in.calls
    assert (call.method, call.path) == ("POST", "/v1/payment_intents")
    assert call.header("Idempotency-Key") == "milestone-7-attempt-1"
    assert call.header("Authorization") == f"Bearer {SECRET_KEY}"
    assert call.param("amount") == "88800"
    assert call.param("currency") == "cny"
    assert call.param("description") == "合同 42 第 1 期"
    assert call.param("automatic_payment_methods[enabled]") == "true"
    assert call.param("metadata[milestone_id]") == "7"
    assert call.param("expand[0]") == "latest_charge"
    assert intent.metadata == {"milestone_id": "7"}


def test_refund_sends_our_idempotency_key_and_reason(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    refund = real_stripe_gateway.refund(
        "pi_paid", 1_234, idempotency_key="refund-99", reason="requested_by_customer"
    )

    (call,) = stand_in.calls
    assert (call.method, call.path) == ("POST", "/v1/refunds")
    assert call.header("Idempotency-Key") == "refund-99"
    assert dict(call.params) == {
        "payment_intent": "pi_paid",
        "amount": "1234",
        "reason": "requested_by_customer",
    }
    assert refund.reason == "requested_by_customer"


def test_an_empty_idempotency_key_is_refused_before_any_request(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    with pytest.raises(ValueError, match="idempotency key"):
        real_stripe_gateway.create_payment_intent(
            100, payment_method_types=["card"], metadata={}, idempotency_key=""
        )

    assert stand_in.calls == []


def test_confirm_sets_the_payment_method_first_then_confirms_without_it(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    real_stripe_gateway.confirm("pi_recorded", "pm_card_visa")

    update, confirm = stand_in.calls
    assert (update.path, dict(update.params)) == (
        "/v1/payment_intents/pi_recorded",
        {"payment_method": "pm_card_visa"},
    )
    assert confirm.path == "/v1/payment_intents/pi_recorded/confirm"
    assert "payment_method" not in confirm.param_names()


def test_capture_sends_the_amount_to_capture(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    real_stripe_gateway.capture("pi_recorded", 6_000)

    (call,) = stand_in.calls
    assert call.path == "/v1/payment_intents/pi_recorded/capture"
    assert call.param("amount_to_capture") == "6000"


def test_listing_asks_real_stripe_to_filter_and_still_filters_itself(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    stand_in.listed_intents = [
        canned_intent(intent_id="pi_old", created=1_000),
        canned_intent(intent_id="pi_new", created=2_000),
    ]

    listed = list(real_stripe_gateway.list_payment_intents(datetime.fromtimestamp(1_500, UTC)))

    (call,) = stand_in.calls
    assert call.param("created[gt]") == "1500"
    assert [intent.id for intent in listed] == ["pi_new"]


def test_listing_with_a_naive_datetime_fails_at_the_call_not_later(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    with pytest.raises(ValueError, match="timezone"):
        real_stripe_gateway.list_payment_intents(datetime(2025, 1, 1))

    assert stand_in.calls == []


def test_telemetry_headers_are_never_sent(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    real_stripe_gateway.retrieve("pi_recorded")
    real_stripe_gateway.retrieve("pi_recorded")

    assert all(call.header("X-Stripe-Client-Telemetry") is None for call in stand_in.calls)


# -- errors --------------------------------------------------------------------


def test_a_card_error_becomes_payment_declined_with_the_decline_code(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    stand_in.queued_errors.append(
        CannedError(
            402,
            {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
        )
    )

    with pytest.raises(PaymentDeclined) as declined:
        real_stripe_gateway.confirm("pi_recorded", "pm_card_visa")

    assert declined.value.code == "card_declined"
    assert declined.value.decline_code == "insufficient_funds"
    assert declined.value.message == "Your card has insufficient funds."
    assert declined.value.payment_intent_id == "pi_recorded"


def test_an_invalid_request_becomes_payment_request_rejected_naming_the_parameter(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    stand_in.queued_errors.append(
        CannedError(
            400,
            {
                "type": "invalid_request_error",
                "code": "amount_too_large",
                "param": "amount",
                "message": "Amount must be no more than ¥999,999.99",
            },
        )
    )

    with pytest.raises(PaymentRequestRejected) as rejected:
        real_stripe_gateway.create_payment_intent(
            100_000_000, payment_method_types=["card"], metadata={}, idempotency_key="k"
        )

    assert (rejected.value.stripe_code, rejected.value.param) == ("amount_too_large", "amount")
    assert rejected.value.request_id == "req_recorded_1"


@pytest.mark.parametrize(
    ("status", "error_type"), [(500, "api_error"), (429, "rate_limit_error"), (403, "api_error")]
)
def test_server_side_failures_mean_the_provider_is_unavailable(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway, status: int, error_type: str
) -> None:
    stand_in.queued_errors.append(CannedError(status, {"type": error_type, "message": "no"}))

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        real_stripe_gateway.retrieve("pi_recorded")

    assert unavailable.value.http_status == status


def test_an_unreachable_server_means_the_provider_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gateway = PaymentGateway(
        SECRET_KEY,
        api_base=f"http://127.0.0.1:{closed_port}",
        connect_timeout_seconds=1,
        max_network_retries=0,
    )

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        gateway.retrieve("pi_anything")

    assert SECRET_KEY not in str(unavailable.value)


# -- the secret key stays secret -------------------------------------------------


def test_the_secret_key_is_not_in_the_gateways_repr(real_stripe_gateway: PaymentGateway) -> None:
    assert SECRET_KEY not in repr(real_stripe_gateway)
    assert SECRET_KEY not in str(real_stripe_gateway)
    assert "compatibility='stripe'" in repr(real_stripe_gateway)


def test_an_error_echoing_the_key_is_redacted_and_not_chained(
    stand_in: RecordingStripe, real_stripe_gateway: PaymentGateway
) -> None:
    stand_in.queued_errors.append(
        CannedError(
            401,
            {"type": "invalid_request_error", "message": f"Invalid API Key provided: {SECRET_KEY}"},
        )
    )

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        real_stripe_gateway.retrieve("pi_recorded")

    error = unavailable.value
    assert SECRET_KEY not in str(error)
    assert SECRET_KEY not in repr(error)
    assert all(SECRET_KEY not in str(value) for value in vars(error).values())
    assert "Invalid API Key provided" in error.message
    assert error.__cause__ is None  # the stripe error quoting the key is not attached


def test_logs_at_debug_level_never_contain_the_key(
    stand_in: RecordingStripe,
    real_stripe_gateway: PaymentGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        real_stripe_gateway.create_payment_intent(
            100, payment_method_types=["card"], metadata={}, idempotency_key="k"
        )
        stand_in.queued_errors.append(CannedError(500, {"type": "api_error", "message": "boom"}))
        with pytest.raises(PaymentProviderUnavailable):
            real_stripe_gateway.retrieve("pi_recorded")

    assert caplog.records, "stripe-python logs requests at debug level"
    assert SECRET_KEY not in caplog.text
