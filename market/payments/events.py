"""Handling Stripe's webhook deliveries: store once, apply if news, answer fast.

Stripe delivers at least once, in any order, and retries until it gets a 2xx. So:
1. the event is stored under its id (unique): a repeat finds the row and changes
   nothing, even when two deliveries of one event race (the second waits for the
   first's commit on the unique index, then fails to insert);
2. the payment it is about is locked (PostgreSQL) and `webhooks.should_apply` decides
   whether the event moves it forward: a late `processing` never overrides
   `succeeded`, a smaller refund total never replaces a larger one;
3. only database work happens here, no call to Stripe, so the answer is quick.

Refunds are counted by refund id (refund.* events), never from a charge's running
`amount_refunded`, which also includes the part of a hold released at a partial
capture; charge.refunded only updates the total we compare in reconciliation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from market.db import utcnow
from market.payments import repository, service
from market.payments.models import (
    Payment,
    Refund,
    RefundStatus,
    WebhookEventRecord,
    WebhookOutcome,
)
from market.payments.schemas import WebhookAck
from market.payments.webhooks import (
    EventCategory,
    RecordedPaymentState,
    WebhookEvent,
    should_apply,
)

EXTERNAL_REFUND_REASON = "Refunded outside the platform (reported by Stripe)"


def receive(session: Session, event: WebhookEvent, raw_body: bytes) -> WebhookAck:
    record = WebhookEventRecord(
        stripe_event_id=event.id, type=event.type, payload=json.loads(raw_body)
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        return WebhookAck(duplicate=True)  # stored before: a repeat
    outcome = _handle(session, event, record.payload)
    record.outcome = outcome
    record.processed_at = utcnow()
    return WebhookAck(outcome=outcome)


def _handle(session: Session, event: WebhookEvent, payload: Mapping[str, Any]) -> WebhookOutcome:
    if not event.known:
        return WebhookOutcome.IGNORED_UNKNOWN
    payment = repository.payment_by_intent_id(session, event.payment_intent_id or "")
    if payment is None:
        return WebhookOutcome.IGNORED_UNMATCHED
    if not should_apply(_recorded_state(session, payment), event):
        return WebhookOutcome.IGNORED_STALE
    if event.category is EventCategory.PAYMENT_INTENT:
        service.apply_intent_state(
            session,
            payment,
            status=event.object_status or payment.stripe_status,
            received_fen=event.amount_received_fen,
            capturable_fen=event.amount_capturable_fen,
            failure_code=_failure_code(payload),
            event_created=event.created,
        )
    elif event.category is EventCategory.CHARGE_REFUNDED:
        payment.stripe_charge_refunded_fen = event.amount_refunded_fen or 0
    else:
        _apply_refund_event(session, payment, event)
    return WebhookOutcome.APPLIED


def _recorded_state(session: Session, payment: Payment) -> RecordedPaymentState:
    assert payment.id is not None
    return RecordedPaymentState(
        intent_status=payment.stripe_status,
        intent_status_event_created=payment.stripe_status_event_created,
        amount_refunded_fen=payment.stripe_charge_refunded_fen,
        refund_statuses={
            refund.stripe_refund_id: str(refund.status)
            for refund in repository.refunds_of(session, payment.id)
        },
    )


def _apply_refund_event(session: Session, payment: Payment, event: WebhookEvent) -> None:
    refund_id = event.object_id or ""
    new_status = RefundStatus.from_stripe(event.object_status)
    record = repository.refund_by_stripe_id(session, refund_id)
    before = record.status if record is not None else None
    if record is None:
        # Made in the Stripe Dashboard: we learn of it here and keep it like our own.
        assert payment.id is not None
        record = Refund(
            payment_id=payment.id,
            stripe_refund_id=refund_id,
            amount_fen=event.amount_fen or 0,
            reason=EXTERNAL_REFUND_REASON,
            requested_by_user_id=None,
            status=new_status,
        )
        session.add(record)
    record.status = new_status
    record.updated_at = utcnow()
    session.flush()
    service.refund_status_changed(
        session, payment, record, RefundStatus(before) if before else None, None
    )


def _failure_code(payload: Mapping[str, Any]) -> str | None:
    """The decline code of a payment_failed event (our WebhookEvent does not carry it)."""
    data = payload.get("data")
    intent = data.get("object") if isinstance(data, Mapping) else None
    error = intent.get("last_payment_error") if isinstance(intent, Mapping) else None
    if not isinstance(error, Mapping):
        return "payment_failed" if payload.get("type") == "payment_intent.payment_failed" else None
    code = error.get("decline_code") or error.get("code")
    return str(code) if code else "payment_failed"
