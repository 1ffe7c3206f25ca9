"""Payments of contract milestones and deposits, their refunds, Stripe's webhook events
and the payments ledger.

One `payments` row per Stripe PaymentIntent. The database itself guarantees that a
milestone never has two live payments (a partial unique index on `milestone_id` over
the live statuses), so two concurrent "pay this milestone" requests cannot both
create an intent. Money is integer fen.

The payments ledger (`payment_ledger`) is append-only like the trade-volume ledger
(a trigger refuses UPDATE; migration 0004): every movement of money received, refunded, charged as a
fee or commission, or paid out to the seller is a new row, and a correction is a new
row with the opposite sign. 到账额 (money received minus refunds) is a sum over it and
never touches 成交额 / 技术交易额, which stay in `ledger_entries`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, String, text
from sqlmodel import Field, SQLModel

from market.db import utcnow


class PaymentPurpose(StrEnum):
    MILESTONE = "milestone"  # pays (part of) the contract's payment schedule
    DEPOSIT = "deposit"  # 保证金: a hold, captured if forfeited, released otherwise


class PaymentStatus(StrEnum):
    PENDING = "pending"  # intent created, waiting for the payer
    PROCESSING = "processing"  # the payer confirmed; the bank has not answered yet
    PAID = "paid"  # milestone money received in full
    FAILED = "failed"  # the last attempt was declined; the intent can be retried
    CANCELED = "canceled"  # an unpaid milestone intent abandoned (cancelled at Stripe)
    HELD = "held"  # deposit authorised, waiting to be captured or released
    CAPTURED = "captured"  # deposit captured in full or in part
    RELEASED = "released"  # deposit hold given back without capture
    REFUNDED_PARTIALLY = "refunded_partially"
    REFUNDED = "refunded"  # everything received has been refunded


# A payment that may still take (or is taking) the payer's money for its milestone.
# A failed attempt counts: its client_secret can still be confirmed with another card,
# so a second intent next to it could be paid twice.
LIVE_STATUSES = (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.FAILED)
_LIVE_CONDITION = "status IN ({})".format(
    ", ".join(f"'{status.value}'" for status in LIVE_STATUSES)
)


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="ck_payments_amount_positive"),
        CheckConstraint(
            "amount_received_fen >= 0 AND amount_received_fen <= amount_fen",
            name="ck_payments_received_within_amount",
        ),
        CheckConstraint(
            "amount_refunded_fen >= 0 AND amount_refunded_fen <= amount_received_fen",
            name="ck_payments_refunded_within_received",
        ),
        CheckConstraint(
            "(purpose = 'milestone' AND milestone_id IS NOT NULL) OR "
            "(purpose = 'deposit' AND milestone_id IS NULL)",
            name="ck_payments_purpose_milestone",
        ),
        Index(
            "uq_payments_one_live_per_milestone",
            "milestone_id",
            unique=True,
            sqlite_where=text(_LIVE_CONDITION),
            postgresql_where=text(_LIVE_CONDITION),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    milestone_id: int | None = Field(default=None, foreign_key="contract_milestones.id")
    purpose: PaymentPurpose = Field(sa_type=String(20))
    # The organisation whose money it is (the buyer for milestones, either party for
    # a deposit) and the one that would receive it.
    payer_organization_id: int = Field(foreign_key="organizations.id")
    payee_organization_id: int = Field(foreign_key="organizations.id")
    amount_fen: int = Field(sa_type=BigInteger)
    currency: str = Field(default="CNY", max_length=3)
    capture_method: str = Field(max_length=20)  # "automatic" or "manual" (holds)
    # NULL only inside the creating transaction, between claiming the milestone and
    # Stripe's answer; committed rows always have it.
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255, unique=True)
    status: PaymentStatus = Field(sa_type=String(20), index=True)
    amount_received_fen: int = Field(default=0, sa_type=BigInteger)
    amount_capturable_fen: int = Field(default=0, sa_type=BigInteger)
    # Refunds we know by id that have succeeded (never Stripe's charge total, which
    # also counts the part of a hold released at a partial capture).
    amount_refunded_fen: int = Field(default=0, sa_type=BigInteger)
    # Refunds asked for and not settled yet (in flight to Stripe, or pending there):
    # reserved by a compare-and-set before Stripe is called (service.reserve_refund).
    refund_reserved_fen: int = Field(default=0, sa_type=BigInteger)
    idempotency_key: str = Field(max_length=255, unique=True)
    failure_code: str | None = Field(default=None, max_length=100)
    # The rates at the time the payment was created: a later change of the settings
    # must not re-price money already received (ledger.fee_due).
    platform_fee_basis_points: int = 0
    broker_commission_basis_points: int = 0
    # What Stripe last said, for ordering webhook deliveries (webhooks.should_apply).
    stripe_status: str = Field(default="requires_payment_method", max_length=40)
    stripe_status_event_created: int | None = Field(default=None, sa_type=BigInteger)
    stripe_charge_refunded_fen: int = Field(default=0, sa_type=BigInteger)
    created_by_user_id: int = Field(foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @classmethod
    def from_stripe(cls, stripe_status: str | None) -> RefundStatus:
        """Stripe's refund status in our terms: anything still open (requires_action,
        bank details needed; or no status yet) is pending for us."""
        try:
            return cls(stripe_status or cls.PENDING)
        except ValueError:
            return cls.PENDING


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="ck_refunds_amount_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payments.id", index=True)
    stripe_refund_id: str = Field(max_length=255, unique=True)
    amount_fen: int = Field(sa_type=BigInteger)
    reason: str = Field(max_length=2000)
    # NULL for a refund made outside the platform (Stripe Dashboard), learnt by webhook.
    requested_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    status: RefundStatus = Field(sa_type=String(20))
    idempotency_key: str | None = Field(default=None, max_length=255, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookOutcome(StrEnum):
    APPLIED = "applied"
    IGNORED_STALE = "ignored_stale"  # older or repeated news (webhooks.should_apply)
    IGNORED_UNKNOWN = "ignored_unknown"  # an event type we do not act on
    IGNORED_UNMATCHED = "ignored_unmatched"  # about an intent that is not one of ours


class WebhookEventRecord(SQLModel, table=True):
    """Every verified delivery, once: the unique event id makes repeats a no-op."""

    __tablename__ = "webhook_events"

    id: int | None = Field(default=None, primary_key=True)
    stripe_event_id: str = Field(max_length=255, unique=True)
    type: str = Field(max_length=100, index=True)
    payload: dict[str, Any] = Field(sa_type=JSON)
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None
    outcome: WebhookOutcome | None = Field(default=None, sa_type=String(30))


class PaymentLedgerKind(StrEnum):
    RECEIVED = "received"
    REFUND = "refund"
    PLATFORM_FEE = "platform_fee"
    BROKER_COMMISSION = "broker_commission"
    PAYOUT_RECORDED = "payout_recorded"


class PaymentLedgerEntry(SQLModel, table=True):
    """One movement of money, signed as it changes what the platform owes the seller.

    received +, refund −, platform fee −, broker commission −, payout −; fee and
    commission adjustments after a refund are + (see service.fee_due). So the sum of a
    contract's rows is what is still to be paid out to the seller, and 到账额 is the sum
    of its received and refund rows.
    """

    __tablename__ = "payment_ledger"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('received', 'refund', 'platform_fee', 'broker_commission', "
            "'payout_recorded')",
            name="ck_payment_ledger_kind",
        ),
        CheckConstraint(
            "(kind = 'payout_recorded') = (payment_id IS NULL)",
            name="ck_payment_ledger_payment_unless_payout",
        ),
        Index("ix_payment_ledger_period", "effective_year", "effective_month"),
    )

    id: int | None = Field(default=None, primary_key=True)
    payment_id: int | None = Field(default=None, foreign_key="payments.id", index=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    kind: PaymentLedgerKind = Field(sa_type=String(30))
    amount_fen: int = Field(sa_type=BigInteger)
    # The China-time day the movement counts for: when the money moved, or the payout
    # date the bureau entered.
    effective_on: date
    effective_year: int
    effective_month: int
    reference: str = Field(default="", max_length=200)  # payout: the bank transfer reference
    recorded_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    recorded_at: datetime = Field(default_factory=utcnow)
