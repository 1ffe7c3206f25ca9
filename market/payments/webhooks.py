"""Stripe webhook deliveries: verify, read, and decide whether one may change our state.

Stripe delivers at least once and in no particular order, so the caller stores each
event once by its id and asks `should_apply` before moving a payment forward: a late
`processing` must never override `succeeded`, and a duplicate must change nothing.
Unknown event types are parsed with `known=False` so they can be stored and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import stripe

from market.payments.gateway import payment_intent_snapshot, string_metadata

# Stripe's own default: a captured delivery cannot be replayed after five minutes.
DEFAULT_TOLERANCE_SECONDS: Final = 300
# Stripe's check only bounds the age; a timestamp ahead of our clock by more than this
# much clock skew would keep a captured delivery replayable for as long as it likes.
FUTURE_TOLERANCE_SECONDS: Final = 60
SIGNATURE_HEADER: Final = "Stripe-Signature"


class WebhookError(Exception):
    """A delivery we must refuse (the endpoint answers 400)."""


class InvalidWebhookSignature(WebhookError):
    """Missing, malformed, wrong or stale `Stripe-Signature`."""


class InvalidWebhookPayload(WebhookError):
    """Correctly signed, but not a Stripe event we can read."""


class EventCategory(StrEnum):
    PAYMENT_INTENT = "payment_intent"  # the object is a PaymentIntent
    CHARGE_REFUNDED = "charge_refunded"  # the object is a charge with cumulative refunds
    REFUND = "refund"  # the object is one refund


EVENT_CATEGORIES: Final[Mapping[str, EventCategory]] = {
    "payment_intent.created": EventCategory.PAYMENT_INTENT,
    "payment_intent.processing": EventCategory.PAYMENT_INTENT,
    "payment_intent.requires_action": EventCategory.PAYMENT_INTENT,
    "payment_intent.amount_capturable_updated": EventCategory.PAYMENT_INTENT,
    "payment_intent.succeeded": EventCategory.PAYMENT_INTENT,
    "payment_intent.canceled": EventCategory.PAYMENT_INTENT,
    "payment_intent.payment_failed": EventCategory.PAYMENT_INTENT,
    "charge.refunded": EventCategory.CHARGE_REFUNDED,
    "refund.created": EventCategory.REFUND,
    "refund.updated": EventCategory.REFUND,
    "refund.failed": EventCategory.REFUND,
    "charge.refund.updated": EventCategory.REFUND,
}


@dataclass(frozen=True)
class WebhookEvent:
    """The parts of a Stripe event the payments domain acts on; amounts in fen."""

    id: str
    type: str
    created: int
    livemode: bool
    known: bool
    category: EventCategory | None
    object_type: str | None
    object_id: str | None
    object_status: str | None
    # The PaymentIntent the object belongs to (the object itself for intent events):
    # how the caller finds our payment record.
    payment_intent_id: str | None
    amount_fen: int | None = None
    amount_received_fen: int | None = None
    amount_capturable_fen: int | None = None
    amount_refunded_fen: int | None = None
    currency: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Verification and parsing.
# ---------------------------------------------------------------------------


def verify(
    raw_body: bytes,
    signature_header: str | None,
    secret: str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> WebhookEvent:
    """Check the signature over the exact bytes received, then parse them.

    Pass the request body as read, never re-encoded JSON: any change of bytes
    (whitespace, key order, escaping) breaks the signature, as it should.
    """
    if not secret:
        # Our misconfiguration, not the sender's fault: not an InvalidWebhookSignature.
        raise ValueError("the webhook signing secret is not configured")
    if tolerance_seconds <= 0:
        # stripe-python skips the age check entirely for a falsy tolerance.
        raise ValueError("tolerance_seconds must be positive")
    if not signature_header:
        raise InvalidWebhookSignature(f"missing {SIGNATURE_HEADER} header")
    # This is the check `stripe.Webhook.construct_event` performs; we call it directly
    # because we parse into our own values rather than a stripe Event object.
    try:
        stripe.WebhookSignature.verify_header(raw_body, signature_header, secret, tolerance_seconds)
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhookSignature(str(error)) from None
    except UnicodeDecodeError:
        raise InvalidWebhookSignature("the body is not UTF-8, so Stripe did not sign it") from None
    _refuse_future_timestamp(signature_header)
    try:
        document = json.loads(raw_body)
    except ValueError:
        raise InvalidWebhookPayload("the signed body is not JSON") from None
    return parse_event(document)


def _refuse_future_timestamp(signature_header: str) -> None:
    """The header's `t=` (already checked to be a signed integer by stripe) must not lie
    ahead of our clock beyond FUTURE_TOLERANCE_SECONDS."""
    pairs = (part.partition("=") for part in signature_header.split(","))
    stamps = [
        int(value)
        for key, _, value in pairs
        if key.strip() == "t" and value.strip().isascii() and value.strip().isdigit()
    ]
    if any(stamp > time.time() + FUTURE_TOLERANCE_SECONDS for stamp in stamps):
        raise InvalidWebhookSignature(
            f"the signature's timestamp is more than {FUTURE_TOLERANCE_SECONDS} s in the future"
        )


def parse_event(document: object) -> WebhookEvent:
    """Read an already verified event (also used to replay stored events)."""
    if not isinstance(document, Mapping) or document.get("object") != "event":
        raise InvalidWebhookPayload('not a Stripe event (expected "object": "event")')
    event_id, event_type, created = (
        document.get("id"),
        document.get("type"),
        document.get("created"),
    )
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise InvalidWebhookPayload("the event has no id or type")
    if not isinstance(created, int) or isinstance(created, bool):
        raise InvalidWebhookPayload("the event has no creation time")
    data = document.get("data")
    stripe_object = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(stripe_object, Mapping):
        raise InvalidWebhookPayload("the event carries no data.object")

    category = EVENT_CATEGORIES.get(event_type)
    try:
        object_fields = _object_fields(category, stripe_object)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidWebhookPayload(f"the {event_type} object lacks {error}") from None
    return WebhookEvent(
        id=event_id,
        type=event_type,
        created=created,
        livemode=bool(document.get("livemode", False)),
        known=category is not None,
        category=category,
        **object_fields,
    )


def _object_fields(
    category: EventCategory | None, stripe_object: Mapping[str, Any]
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "object_type": _optional_str(stripe_object.get("object")),
        "object_id": _optional_str(stripe_object.get("id")),
        "object_status": _optional_str(stripe_object.get("status")),
        "payment_intent_id": _reference_id(stripe_object.get("payment_intent")),
        "currency": _optional_str(stripe_object.get("currency")),
        "metadata": string_metadata(stripe_object.get("metadata")),
    }
    if category is EventCategory.PAYMENT_INTENT:
        intent = payment_intent_snapshot(stripe_object)
        fields.update(
            payment_intent_id=intent.id,
            amount_fen=intent.amount_fen,
            amount_received_fen=intent.amount_received_fen,
            amount_capturable_fen=intent.amount_capturable_fen,
        )
    elif category is EventCategory.CHARGE_REFUNDED:
        fields.update(
            amount_fen=int(stripe_object["amount"]),
            amount_received_fen=_optional_int(stripe_object.get("amount_captured")),
            amount_refunded_fen=int(stripe_object["amount_refunded"]),
        )
    elif category is EventCategory.REFUND:
        fields.update(amount_fen=int(stripe_object["amount"]))
    return fields


def _reference_id(reference: object) -> str | None:
    if isinstance(reference, Mapping):
        return _optional_str(reference.get("id"))
    return _optional_str(reference)


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"an integer amount, got {value!r}")
    return value


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` header value for `payload`, as Stripe computes it.

    For tests and local tools that need deliveries localstripe does not send.
    """
    signed = str(timestamp).encode("ascii") + b"." + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# ---------------------------------------------------------------------------
# Ordering: may this event change what we recorded?
# ---------------------------------------------------------------------------

# How far along a PaymentIntent is. Stripe's lifecycle is not strictly monotonic (a
# failed attempt returns to requires_payment_method), so failures get their own rule
# in `should_apply`; everything else may only move forward.
INTENT_STATUS_RANK: Final[Mapping[str, int]] = {
    "requires_payment_method": 0,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "requires_capture": 4,
    "succeeded": 5,
    "canceled": 5,
}
FINAL_INTENT_STATUSES: Final = frozenset({"succeeded", "canceled"})
FAILED_ATTEMPT_EVENT: Final = "payment_intent.payment_failed"

REFUND_STATUS_RANK: Final[Mapping[str, int]] = {
    "pending": 0,
    "requires_action": 0,
    "succeeded": 1,
    "failed": 1,
    "canceled": 1,
}


def intent_state_rank(status: str) -> int:
    """Position of a PaymentIntent status in its lifecycle; ValueError if unknown."""
    try:
        return INTENT_STATUS_RANK[status]
    except KeyError:
        raise ValueError(f"unknown PaymentIntent status {status!r}") from None


@dataclass(frozen=True)
class RecordedPaymentState:
    """What we hold for one PaymentIntent when an event about it arrives."""

    intent_status: str | None = None  # None: nothing recorded yet
    # `created` of the event that set intent_status; None when it came from an API answer.
    intent_status_event_created: int | None = None
    # Cumulative, as the last applied charge.refunded reported it.
    amount_refunded_fen: int = 0
    # Last applied status per refund id.
    refund_statuses: Mapping[str, str] = field(default_factory=dict)


def should_apply(current: RecordedPaymentState, event: WebhookEvent) -> bool:
    """True when `event` carries news for `current`; False for stale or repeated news.

    Deduplication by event id is the caller's job; this function is what makes the
    order of distinct events irrelevant.
    """
    if not event.known:
        return False
    if event.category is EventCategory.PAYMENT_INTENT:
        return _intent_event_applies(current, event)
    if event.category is EventCategory.CHARGE_REFUNDED:
        # The charge reports a running total: only a larger one is news.
        return (event.amount_refunded_fen or 0) > current.amount_refunded_fen
    if event.category is EventCategory.REFUND:
        known_status = current.refund_statuses.get(event.object_id or "")
        return _refund_status_moves_forward(known_status, event.object_status)
    return False


def _intent_event_applies(current: RecordedPaymentState, event: WebhookEvent) -> bool:
    incoming = event.object_status
    if incoming is None or incoming not in INTENT_STATUS_RANK:
        return False
    if current.intent_status is None:
        return True
    if current.intent_status in FINAL_INTENT_STATUSES:
        return False
    current_rank = intent_state_rank(current.intent_status)
    if event.type == FAILED_ATTEMPT_EVENT:
        # A failure is news while nothing has been authorised yet, unless it is older
        # than what we already know (a retry may have moved on since that attempt).
        return current_rank < INTENT_STATUS_RANK["requires_capture"] and not _older_than(
            event, current.intent_status_event_created
        )
    return intent_state_rank(incoming) > current_rank


def _older_than(event: WebhookEvent, recorded_event_created: int | None) -> bool:
    return recorded_event_created is not None and event.created < recorded_event_created


def _refund_status_moves_forward(known_status: str | None, incoming_status: str | None) -> bool:
    if incoming_status is None or incoming_status not in REFUND_STATUS_RANK:
        return False
    if known_status is None:
        return True
    return REFUND_STATUS_RANK[incoming_status] > REFUND_STATUS_RANK.get(known_status, 0)
