from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from market.common.dates import PlausibleDate
from market.common.text import normalize_user_text
from market.payments.models import PaymentPurpose, PaymentStatus, RefundStatus

# The same ceiling as contract amounts: ten trillion yuan in fen.
MAX_FEN = 10**15
PositiveFen = Annotated[int, Field(gt=0, le=MAX_FEN)]
# Stripe's test payment methods, e.g. pm_card_visa; only honoured outside production.
TestPaymentMethod = Annotated[
    str, Field(min_length=3, max_length=100, pattern=r"^pm_[A-Za-z0-9_]+$")
]


def _multiline(value: str) -> str:
    return normalize_user_text(value, multiline=True)


Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_multiline)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MilestonePaymentCreate(_Strict):
    # Optional: a client may state what it expects to pay; it must equal the outstanding
    # amount, so a stale screen cannot pay the wrong sum.
    amount_fen: PositiveFen | None = None
    confirm_with: TestPaymentMethod | None = Field(
        default=None,
        description="Development and tests only: confirm server-side with this Stripe "
        "test payment method (pm_card_visa, pm_card_chargeCustomerFail)",
    )


class DepositCreate(_Strict):
    amount_fen: PositiveFen
    note: Annotated[str, Field(max_length=500), AfterValidator(_multiline)] = ""
    confirm_with: TestPaymentMethod | None = None


class PaymentConfirm(_Strict):
    confirm_with: TestPaymentMethod


class CaptureRequest(_Strict):
    # Omitted: capture the whole hold.
    amount_fen: PositiveFen | None = None


class RefundCreate(_Strict):
    amount_fen: PositiveFen
    reason: Reason


class PayoutCreate(_Strict):
    amount_fen: PositiveFen
    reference: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_multiline)]
    paid_on: PlausibleDate


class RefundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    payment_id: int
    stripe_refund_id: str
    amount_fen: int
    reason: str
    requested_by_user_id: int | None
    status: RefundStatus
    created_at: datetime


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contract_id: int
    milestone_id: int | None
    purpose: PaymentPurpose
    payer_organization_id: int
    payee_organization_id: int
    amount_fen: int
    currency: str
    capture_method: str
    status: PaymentStatus
    amount_received_fen: int
    amount_capturable_fen: int
    amount_refunded_fen: int
    stripe_payment_intent_id: str | None
    failure_code: str | None
    created_at: datetime
    updated_at: datetime
    refunds: list[RefundRead] = []


class PaymentStarted(PaymentRead):
    """What a client needs to complete the payment with Stripe.js."""

    client_secret: str | None


class MilestonePayments(BaseModel):
    milestone_id: int
    position: int
    title: str
    due_on: date
    amount_fen: int
    received_fen: int
    refunded_fen: int
    outstanding_fen: int
    # unpaid, pending, processing, failed, partially_paid, paid, refunded
    status: str


class MoneyTotals(BaseModel):
    received_fen: int
    refunded_fen: int
    net_received_fen: int  # 到账额
    platform_fee_fen: int
    broker_commission_fen: int
    payouts_fen: int
    payable_to_seller_fen: int  # what the ledger still owes the seller
    currency: str = "CNY"


class ContractPayments(BaseModel):
    contract_id: int
    total_amount_fen: int  # 成交额
    technology_amount_fen: int  # 技术交易额
    outstanding_fen: int  # milestones not yet covered by net receipts
    totals: MoneyTotals
    milestones: list[MilestonePayments]
    payments: list[PaymentRead]


class LedgerRowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    payment_id: int | None
    contract_id: int
    kind: str
    amount_fen: int
    effective_on: date
    reference: str
    recorded_at: datetime


class PeriodMoney(BaseModel):
    period: str  # "2026" or "2026-11"
    received_fen: int
    refunded_fen: int
    net_received_fen: int  # 到账额
    platform_fee_fen: int
    broker_commission_fen: int
    payouts_fen: int


class PaymentStats(BaseModel):
    """到账额 next to the registered trade volume, by period."""

    year: int | None
    granularity: str
    total_amount_fen: int  # 成交额, as /stats/summary counts it
    technology_amount_fen: int  # 技术交易额
    rows: list[PeriodMoney]
    totals: PeriodMoney


class WebhookAck(BaseModel):
    received: bool = True
    duplicate: bool = False
    outcome: str | None = None
