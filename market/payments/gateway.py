"""Stripe behind a small interface that speaks fen and returns plain frozen values.

The rest of the application never sees a stripe object or a stripe exception: it gets
`PaymentIntentSnapshot` / `RefundSnapshot` values and the `PaymentGatewayError` tree,
so the payments domain can be written and tested without knowing stripe-python.

What we send to Stripe is built by pure functions (`payment_intent_params`,
`refund_params`, `payment_intent_list_params`) so the exact parameters can be unit
tested, including the ones the localstripe test server refuses. `StripeCompatibility`
names the server we talk to; `LOCALSTRIPE` leaves out exactly the fields localstripe
rejects with a 400 (see docs/PAYMENTS.md for the list and for what that leaves untested
against a server).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal, NoReturn

import stripe

CaptureMethod = Literal["automatic", "manual"]
# The only values Stripe accepts for a refund's `reason`; our own free-text reason
# (who asked for the refund and why) travels in the refund's metadata instead.
RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]
REFUND_REASONS: Final[frozenset[str]] = frozenset(
    {"duplicate", "fraudulent", "requested_by_customer"}
)

# Stripe's documented metadata limits; checking them here turns a 400 from Stripe
# into an immediate, precise error in our own code.
METADATA_MAX_KEYS: Final = 50
METADATA_KEY_MAX_LENGTH: Final = 40
METADATA_VALUE_MAX_LENGTH: Final = 500

# Real Stripe returns `latest_charge` as an id unless expanded; we need the charge to
# report refunded totals (and, with localstripe, the captured amount).
EXPAND_LATEST_CHARGE: Final = ("latest_charge",)
LIST_PAGE_SIZE: Final = 100

_SECRET_KEY_PATTERN: Final = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+")


class StripeCompatibility(StrEnum):
    """Which Stripe-compatible server the gateway talks to."""

    STRIPE = "stripe"
    # localstripe answers 400 to parameters it does not know; in this mode the
    # gateway leaves those out instead of failing.
    LOCALSTRIPE = "localstripe"


# ---------------------------------------------------------------------------
# Errors: a plain hierarchy the HTTP layer maps to problem responses.
# ---------------------------------------------------------------------------


class PaymentGatewayError(Exception):
    """Base of every error the gateway raises; the message never holds the key."""

    def __init__(
        self,
        message: str,
        *,
        stripe_code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stripe_code = stripe_code
        self.http_status = http_status
        self.request_id = request_id


class PaymentDeclined(PaymentGatewayError):
    """The payer's bank or card network refused the payment (HTTP 402 from Stripe)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        decline_code: str | None = None,
        payment_intent_id: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, stripe_code=code, http_status=http_status, request_id=request_id)
        self.code = code
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id


class PaymentProviderUnavailable(PaymentGatewayError):
    """Stripe could not be reached, failed, throttled us or refused our credentials."""


class PaymentRequestRejected(PaymentGatewayError):
    """Stripe refused the request itself (bad parameter, wrong state, unknown id)."""

    def __init__(
        self,
        message: str,
        *,
        stripe_code: str | None = None,
        param: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, stripe_code=stripe_code, http_status=http_status, request_id=request_id
        )
        self.param = param


# ---------------------------------------------------------------------------
# Values returned to the application.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentIntentSnapshot:
    """What Stripe said about a PaymentIntent at one moment; amounts in fen."""

    id: str
    status: str
    amount_fen: int
    currency: str
    capture_method: str
    amount_capturable_fen: int
    amount_received_fen: int
    # As the charge reports it: after a partial capture the released remainder is
    # counted here too (measured on localstripe; Charges API: "automatically refunded").
    amount_refunded_fen: int
    created: int
    client_secret: str | None
    latest_charge_id: str | None
    customer_id: str | None
    last_payment_error_code: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundSnapshot:
    id: str
    payment_intent_id: str | None
    charge_id: str | None
    amount_fen: int
    currency: str
    status: str
    reason: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Request parameters: pure functions, so tests can pin exactly what Stripe receives.
# ---------------------------------------------------------------------------


def payment_intent_params(
    *,
    amount_fen: int,
    currency: str,
    payment_method_types: Sequence[str] | None,
    capture_method: CaptureMethod,
    metadata: Mapping[str, str],
    customer: str | None = None,
    description: str | None = None,
    compatibility: StripeCompatibility = StripeCompatibility.STRIPE,
) -> dict[str, Any]:
    """Parameters for `POST /v1/payment_intents`.

    Explicit `payment_method_types` come from the platform's settings; without them
    real Stripe chooses from the methods enabled in the Dashboard
    (`automatic_payment_methods`), which localstripe does not understand.
    """
    _require_positive_fen(amount_fen, "amount_fen")
    _require_metadata_within_stripe_limits(metadata)
    if capture_method not in ("automatic", "manual"):
        raise ValueError(f"capture_method must be 'automatic' or 'manual', not {capture_method!r}")
    params: dict[str, Any] = {
        "amount": amount_fen,
        "currency": _normalised_currency(currency),
        "capture_method": capture_method,
        "metadata": dict(metadata),
        "expand": list(EXPAND_LATEST_CHARGE),
    }
    if payment_method_types:
        params["payment_method_types"] = list(payment_method_types)
    elif compatibility is StripeCompatibility.STRIPE:
        params["automatic_payment_methods"] = {"enabled": True}
    if customer is not None:
        params["customer"] = customer
    if description is not None and compatibility is StripeCompatibility.STRIPE:
        params["description"] = description
    return params


def refund_params(
    *,
    payment_intent_id: str,
    amount_fen: int,
    reason: RefundReason | None = None,
    metadata: Mapping[str, str] | None = None,
    compatibility: StripeCompatibility = StripeCompatibility.STRIPE,
) -> dict[str, Any]:
    """Parameters for `POST /v1/refunds`; the amount is always explicit so a retried
    request can never turn a partial refund into a full one."""
    _require_positive_fen(amount_fen, "amount_fen")
    if reason is not None and reason not in REFUND_REASONS:
        raise ValueError(f"Stripe accepts refund reasons {sorted(REFUND_REASONS)}, not {reason!r}")
    params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount_fen}
    if metadata:
        _require_metadata_within_stripe_limits(metadata)
        params["metadata"] = dict(metadata)
    if reason is not None and compatibility is StripeCompatibility.STRIPE:
        params["reason"] = reason
    return params


def payment_intent_list_params(
    *,
    created_after: datetime,
    compatibility: StripeCompatibility = StripeCompatibility.STRIPE,
) -> dict[str, Any]:
    """Parameters for `GET /v1/payment_intents` when reconciling.

    localstripe refuses every list filter, so in that mode the gateway lists everything
    and filters by creation time itself.
    """
    params: dict[str, Any] = {
        "limit": LIST_PAGE_SIZE,
        "expand": [f"data.{path}" for path in EXPAND_LATEST_CHARGE],
    }
    if compatibility is StripeCompatibility.STRIPE:
        params["created"] = {"gt": unix_seconds(created_after)}
    return params


def unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        # A naive datetime would silently be read in the server's local zone.
        raise ValueError("created_after must be timezone-aware")
    return int(moment.timestamp())


def _require_positive_fen(amount: int, name: str) -> None:
    # bool is an int subclass; True fen is a bug, not one fen.
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"{name} must be a positive integer count of fen, not {amount!r}")


def _normalised_currency(currency: str) -> str:
    code = currency.strip().lower()
    if not re.fullmatch(r"[a-z]{3}", code):
        raise ValueError(f"currency must be an ISO 4217 code such as 'cny', not {currency!r}")
    return code


def _require_metadata_within_stripe_limits(metadata: Mapping[str, str]) -> None:
    if len(metadata) > METADATA_MAX_KEYS:
        raise ValueError(f"Stripe allows at most {METADATA_MAX_KEYS} metadata keys")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("metadata keys and values must be strings")
        if not key or len(key) > METADATA_KEY_MAX_LENGTH or "[" in key or "]" in key:
            raise ValueError(f"metadata key {key!r} is not accepted by Stripe")
        if len(value) > METADATA_VALUE_MAX_LENGTH:
            raise ValueError(f"metadata value for {key!r} is longer than Stripe allows")


# ---------------------------------------------------------------------------
# Reading Stripe's answers into our values.
# ---------------------------------------------------------------------------


def payment_intent_snapshot(intent: Mapping[str, Any]) -> PaymentIntentSnapshot:
    """Our view of a PaymentIntent given as a plain dict (an API answer or the object
    inside a webhook event)."""
    charge = _expanded_charge(intent)
    status = str(intent["status"])
    amount = int(intent["amount"])
    return PaymentIntentSnapshot(
        id=str(intent["id"]),
        status=status,
        amount_fen=amount,
        currency=str(intent["currency"]),
        capture_method=str(intent.get("capture_method") or "automatic"),
        amount_capturable_fen=_amount_capturable(intent, status, amount),
        amount_received_fen=_amount_received(intent, charge),
        amount_refunded_fen=int(charge.get("amount_refunded") or 0) if charge else 0,
        created=int(intent["created"]),
        client_secret=intent.get("client_secret"),
        latest_charge_id=_latest_charge_id(intent),
        customer_id=_id_of(intent.get("customer")),
        last_payment_error_code=_last_payment_error_code(intent),
        metadata=string_metadata(intent.get("metadata")),
    )


def refund_snapshot(refund: Mapping[str, Any]) -> RefundSnapshot:
    return RefundSnapshot(
        id=str(refund["id"]),
        payment_intent_id=_id_of(refund.get("payment_intent")),
        charge_id=_id_of(refund.get("charge")),
        amount_fen=int(refund["amount"]),
        currency=str(refund["currency"]),
        status=str(refund.get("status") or "succeeded"),
        reason=refund.get("reason"),
        metadata=string_metadata(refund.get("metadata")),
    )


def _expanded_charge(intent: Mapping[str, Any]) -> Mapping[str, Any] | None:
    charge = intent.get("latest_charge")
    return charge if isinstance(charge, Mapping) else None


def _latest_charge_id(intent: Mapping[str, Any]) -> str | None:
    return _id_of(intent.get("latest_charge"))


def _id_of(reference: object) -> str | None:
    """Stripe references are an id string, or the object itself when expanded."""
    if isinstance(reference, Mapping):
        return str(reference["id"])
    return str(reference) if reference else None


def _amount_capturable(intent: Mapping[str, Any], status: str, amount: int) -> int:
    reported = intent.get("amount_capturable")
    if reported is not None:
        return int(reported)
    # localstripe does not report amount_capturable; a hold is the whole amount.
    return amount if status == "requires_capture" else 0


def _amount_received(intent: Mapping[str, Any], charge: Mapping[str, Any] | None) -> int:
    reported = intent.get("amount_received")
    if reported is not None:
        return int(reported)
    # Only localstripe gets here: it reports neither amount_received on the intent nor
    # amount_captured on the charge.
    if charge is None or not charge.get("captured") or charge.get("status") != "succeeded":
        return 0
    if charge.get("amount_captured") is not None:
        return int(charge["amount_captured"])
    return int(charge["amount"]) - _released_at_partial_capture(charge)


def _released_at_partial_capture(charge: Mapping[str, Any]) -> int:
    """localstripe records the uncaptured remainder of a partial capture as a refund
    made on the charge alone; refunds we ask for always name the payment intent."""
    refunds = charge.get("refunds")
    refund_list = refunds.get("data", []) if isinstance(refunds, Mapping) else []
    return sum(int(refund["amount"]) for refund in refund_list if not refund.get("payment_intent"))


def _last_payment_error_code(intent: Mapping[str, Any]) -> str | None:
    error = intent.get("last_payment_error")
    if isinstance(error, Mapping):
        code = error.get("decline_code") or error.get("code")
        return str(code) if code else None
    return None


def string_metadata(metadata: object) -> dict[str, str]:
    """Stripe metadata as plain strings (what we stored is what we get back; a missing
    or malformed mapping is none)."""
    if not isinstance(metadata, Mapping):
        return {}
    return {str(key): str(value) for key, value in metadata.items()}


def _as_dict(stripe_object: stripe.StripeObject) -> dict[str, Any]:
    # stripe-python 16 objects are not dicts (`.get` raises); work on plain data.
    return stripe_object.to_dict()


# ---------------------------------------------------------------------------
# The gateway.
# ---------------------------------------------------------------------------


class PaymentGateway:
    """The calls the payments domain makes to Stripe.

    Create one per process: the underlying StripeClient is thread-safe and reuses
    connections.
    """

    def __init__(
        self,
        secret_key: str,
        *,
        api_base: str | None = None,
        compatibility: StripeCompatibility = StripeCompatibility.STRIPE,
        connect_timeout_seconds: float = 5.0,
        read_timeout_seconds: float = 30.0,
        max_network_retries: int = 1,
    ) -> None:
        if not secret_key:
            raise ValueError("a Stripe secret key is required")
        # Telemetry adds timing headers about earlier requests to every call; we gain
        # nothing from it and it is one more thing to explain in a privacy review.
        stripe.enable_telemetry = False
        self._secret_key = secret_key
        self.api_base = api_base or None
        self.compatibility = compatibility
        # Retries are safe because every mutating call carries an idempotency key
        # (ours for creates and refunds, the SDK's own for the rest).
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(
                timeout=(connect_timeout_seconds, read_timeout_seconds)
            ),
        )

    def __repr__(self) -> str:
        # Never show the key; these two are all an operator needs to recognise it.
        return (
            f"{type(self).__name__}(api_base={self.api_base or 'https://api.stripe.com'!r}, "
            f"compatibility={self.compatibility.value!r})"
        )

    # -- payment intents ----------------------------------------------------

    def create_payment_intent(
        self,
        amount_fen: int,
        *,
        currency: str = "cny",
        payment_method_types: Sequence[str] | None,
        capture_method: CaptureMethod = "automatic",
        metadata: Mapping[str, str],
        idempotency_key: str,
        customer: str | None = None,
        description: str | None = None,
    ) -> PaymentIntentSnapshot:
        params = payment_intent_params(
            amount_fen=amount_fen,
            currency=currency,
            payment_method_types=payment_method_types,
            capture_method=capture_method,
            metadata=metadata,
            customer=customer,
            description=description,
            compatibility=self.compatibility,
        )
        with self._stripe_errors_translated():
            intent = self._client.v1.payment_intents.create(
                params,  # type: ignore[arg-type]  # built and tested as a plain dict
                {"idempotency_key": _required_idempotency_key(idempotency_key)},
            )
        return payment_intent_snapshot(_as_dict(intent))

    def confirm(self, intent_id: str, payment_method: str) -> PaymentIntentSnapshot:
        """Attach a payment method and confirm server-side (tests, saved cards).

        Two calls: localstripe answers 500 to `confirm` with a payment_method, and the
        update-then-confirm sequence means the same to real Stripe.
        """
        with self._stripe_errors_translated(payment_intent_id=intent_id):
            self._client.v1.payment_intents.update(intent_id, {"payment_method": payment_method})
            intent = self._client.v1.payment_intents.confirm(
                intent_id, {"expand": list(EXPAND_LATEST_CHARGE)}
            )
        return payment_intent_snapshot(_as_dict(intent))

    def retrieve(self, intent_id: str) -> PaymentIntentSnapshot:
        with self._stripe_errors_translated(payment_intent_id=intent_id):
            intent = self._client.v1.payment_intents.retrieve(
                intent_id, {"expand": list(EXPAND_LATEST_CHARGE)}
            )
        return payment_intent_snapshot(_as_dict(intent))

    def capture(self, intent_id: str, amount_to_capture_fen: int) -> PaymentIntentSnapshot:
        """Capture part or all of a hold; Stripe releases the rest."""
        _require_positive_fen(amount_to_capture_fen, "amount_to_capture_fen")
        with self._stripe_errors_translated(payment_intent_id=intent_id):
            intent = self._client.v1.payment_intents.capture(
                intent_id,
                {"amount_to_capture": amount_to_capture_fen, "expand": list(EXPAND_LATEST_CHARGE)},
            )
        return payment_intent_snapshot(_as_dict(intent))

    def cancel(self, intent_id: str) -> PaymentIntentSnapshot:
        """Cancel an unpaid intent or release a hold."""
        with self._stripe_errors_translated(payment_intent_id=intent_id):
            intent = self._client.v1.payment_intents.cancel(
                intent_id, {"expand": list(EXPAND_LATEST_CHARGE)}
            )
        return payment_intent_snapshot(_as_dict(intent))

    def list_payment_intents(self, created_after: datetime) -> Iterator[PaymentIntentSnapshot]:
        """Every PaymentIntent created strictly after `created_after`, for reconciliation.

        Arguments are checked now; pages are fetched lazily as the result is iterated,
        and a failure on any page raises a gateway error.
        """
        params = payment_intent_list_params(
            created_after=created_after, compatibility=self.compatibility
        )
        return self._payment_intents_listed(params, unix_seconds(created_after))

    def _payment_intents_listed(
        self, params: dict[str, Any], created_after_unix: int
    ) -> Iterator[PaymentIntentSnapshot]:
        with self._stripe_errors_translated():
            first_page = self._client.v1.payment_intents.list(params)  # type: ignore[arg-type]
            for intent in first_page.auto_paging_iter():
                snapshot = payment_intent_snapshot(_as_dict(intent))
                # Redundant against real Stripe (it filters), needed for localstripe.
                if snapshot.created > created_after_unix:
                    yield snapshot

    # -- refunds ------------------------------------------------------------

    def refund(
        self,
        intent_id: str,
        amount_fen: int,
        *,
        idempotency_key: str,
        reason: RefundReason | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RefundSnapshot:
        params = refund_params(
            payment_intent_id=intent_id,
            amount_fen=amount_fen,
            reason=reason,
            metadata=metadata,
            compatibility=self.compatibility,
        )
        with self._stripe_errors_translated(payment_intent_id=intent_id):
            refund = self._client.v1.refunds.create(
                params,  # type: ignore[arg-type]  # built and tested as a plain dict
                {"idempotency_key": _required_idempotency_key(idempotency_key)},
            )
        return refund_snapshot(_as_dict(refund))

    def list_refunds(self, intent_id: str) -> list[RefundSnapshot]:
        with self._stripe_errors_translated(payment_intent_id=intent_id):
            refunds = self._client.v1.refunds.list(
                {"payment_intent": intent_id, "limit": LIST_PAGE_SIZE}
            )
            return [refund_snapshot(_as_dict(refund)) for refund in refunds.auto_paging_iter()]

    # -- error translation --------------------------------------------------

    @contextmanager
    def _stripe_errors_translated(self, payment_intent_id: str | None = None) -> Iterator[None]:
        try:
            yield
        except stripe.StripeError as error:
            self._raise_translated(error, payment_intent_id)

    def _raise_translated(
        self, error: stripe.StripeError, payment_intent_id: str | None
    ) -> NoReturn:
        message = self._redacted(error.user_message or type(error).__name__)
        details: dict[str, Any] = {
            "http_status": error.http_status,
            "request_id": error.request_id,
        }
        translated: PaymentGatewayError
        if isinstance(error, stripe.CardError):
            translated = PaymentDeclined(
                error.code or "card_declined",
                message,
                decline_code=_error_field(error, "decline_code"),
                payment_intent_id=payment_intent_id,
                **details,
            )
        elif isinstance(error, stripe.InvalidRequestError | stripe.IdempotencyError):
            translated = PaymentRequestRejected(
                message, stripe_code=error.code, param=_error_field(error, "param"), **details
            )
        else:
            # Connection failures, Stripe's 5xx, rate limits and credential problems:
            # none is the caller's fault, all mean "payments are unavailable now".
            translated = PaymentProviderUnavailable(message, stripe_code=error.code, **details)
        # Keep the stripe error as the cause for debugging unless it would carry the key.
        cause = None if self._secret_key in str(error) else error
        raise translated from cause

    def _redacted(self, text: str) -> str:
        return _SECRET_KEY_PATTERN.sub("sk_***", text.replace(self._secret_key, "***"))


def _required_idempotency_key(idempotency_key: str) -> str:
    # Stripe keys are at most 255 characters; an empty key would silently mean "none".
    if not idempotency_key or len(idempotency_key) > 255:
        raise ValueError("an idempotency key of 1 to 255 characters is required")
    return idempotency_key


def _error_field(error: stripe.StripeError, name: str) -> str | None:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    details = body.get("error")
    value = details.get(name) if isinstance(details, dict) else None
    return str(value) if value else None
