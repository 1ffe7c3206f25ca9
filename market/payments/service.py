"""Paying contract milestones, deposits (保证金), refunds and payouts.

Who may do what (a payment is visible to whoever sees its contract: the parties, the
broker agency, bureau staff; anyone else gets a 404):

| action | who |
|---|---|
| pay a milestone | members of the contract's buyer organisation |
| post a deposit | members of either party (the payer); the other party is the payee |
| cancel an unpaid payment | the payer's members, bureau staff |
| capture or release a deposit | the payee's members, bureau staff (never the payer) |
| refund | the payee's members (the seller for milestones), bureau staff |
| record a payout to the seller | bureau staff |

Stripe is called inside the request's transaction, after the payment row has claimed
the milestone (so the database's one-live-payment guarantee holds before any money can
move) and before the commit. If the commit then fails, Stripe holds an intent we do
not: the retry reuses the same idempotency key, and `market payments reconcile`
reports anything left over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from market.audit import service as audit
from market.auth.actor import Actor
from market.common import transitions
from market.common.calendar import market_today
from market.config import Settings
from market.contracts import repository as contract_queries
from market.contracts import service as contracts
from market.contracts.models import Contract, ContractMilestone, ContractStatus
from market.db import utcnow
from market.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    ServiceUnavailable,
)
from market.payments import ledger, repository
from market.payments.gateway import (
    PaymentDeclined,
    PaymentGateway,
    PaymentGatewayError,
    PaymentIntentSnapshot,
    PaymentProviderUnavailable,
    StripeCompatibility,
)
from market.payments.models import (
    LIVE_STATUSES,
    Payment,
    PaymentLedgerKind,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from market.payments.schemas import (
    CaptureRequest,
    ContractPayments,
    DepositCreate,
    MilestonePaymentCreate,
    MilestonePayments,
    MoneyTotals,
    PaymentRead,
    PaymentStats,
    PayoutCreate,
    PeriodMoney,
    RefundCreate,
    RefundRead,
)
from market.payments.webhooks import INTENT_STATUS_RANK, intent_state_rank
from market.stats import service as stats

ENTITY = "payment"
CURRENCY = "cny"
# Deposits are taken before registration too: a binding offer is a contract in draft.
DEPOSIT_CONTRACT_STATUSES = (
    ContractStatus.DRAFT,
    ContractStatus.SUBMITTED,
    ContractStatus.NEEDS_CORRECTION,
    ContractStatus.REGISTERED,
)
UNAVAILABLE_MESSAGE = (
    "Online payment is not configured on this server (no Stripe key); everything else works"
)


T = TypeVar("T")


class Started(NamedTuple):
    payment: Payment
    client_secret: str | None


class PaymentsUnavailable(ServiceUnavailable):
    code = "payments_unavailable"
    title = "Payments unavailable"


@dataclass(frozen=True)
class PaymentsConfig:
    """What the flows need from the settings, plus the one gateway of the process."""

    gateway: PaymentGateway
    payment_method_types: tuple[str, ...]
    platform_fee_basis_points: int
    broker_commission_basis_points: int
    # Server-side confirmation with Stripe test cards: development and tests only.
    test_confirmation_allowed: bool


def build_config(settings: Settings) -> PaymentsConfig:
    if not settings.stripe_secret_key:
        raise PaymentsUnavailable(UNAVAILABLE_MESSAGE)
    gateway = PaymentGateway(
        settings.stripe_secret_key,
        api_base=settings.stripe_api_base or None,
        compatibility=StripeCompatibility(settings.stripe_compatibility),
    )
    return PaymentsConfig(
        gateway=gateway,
        payment_method_types=tuple(settings.stripe_payment_method_types),
        platform_fee_basis_points=settings.platform_fee_basis_points,
        broker_commission_basis_points=settings.broker_commission_basis_points,
        test_confirmation_allowed=settings.environment in ("development", "test"),
    )


# --- reading ------------------------------------------------------------------------------


def get_visible(session: Session, actor: Actor, payment_id: int) -> Payment:
    payment = repository.payment_by_id(session, payment_id)
    if payment is None:
        raise NotFound(f"Payment {payment_id} not found")
    try:
        contracts.get_visible(session, actor, payment.contract_id)
    except NotFound:
        raise NotFound(f"Payment {payment_id} not found") from None
    return payment


def read(session: Session, payment: Payment) -> PaymentRead:
    view = PaymentRead.model_validate(payment)
    assert payment.id is not None
    view.refunds = [
        RefundRead.model_validate(refund) for refund in repository.refunds_of(session, payment.id)
    ]
    return view


# --- milestone payments -------------------------------------------------------------------


def milestone_net_received(session: Session, milestone_id: int) -> int:
    payments = repository.payments_of_milestone(session, milestone_id)
    return sum(p.amount_received_fen - p.amount_refunded_fen for p in payments)


def outstanding(session: Session, milestone: ContractMilestone) -> int:
    """What the buyer still owes on a milestone: its amount minus net receipts
    (received minus refunded). A refund therefore makes the refunded part payable
    again; paying it is a new payment."""
    assert milestone.id is not None
    return max(milestone.amount_fen - milestone_net_received(session, milestone.id), 0)


def pay_milestone(
    session: Session,
    actor: Actor,
    config: PaymentsConfig,
    contract_id: int,
    milestone_id: int,
    body: MilestonePaymentCreate,
    client_key: str | None,
) -> Started:
    """Create (and in tests confirm) the PaymentIntent for a milestone's outstanding
    amount."""
    contract = contracts.get_visible(session, actor, contract_id)
    milestone = session.get(ContractMilestone, milestone_id)
    if milestone is None or milestone.contract_id != contract.id:
        raise NotFound(f"Milestone {milestone_id} not found in contract {contract_id}")
    if not actor.belongs_to(contract.buyer_organization_id):
        raise Forbidden("Only the buyer organisation's members pay the contract's milestones")
    contracts.require_verified_parties(
        session, contract.seller_organization_id, contract.buyer_organization_id
    )
    key = f"milestone-{milestone_id}-user-{actor.user_id}-key-{client_key}" if client_key else None
    if contract.status != ContractStatus.REGISTERED:
        raise InvalidTransition(
            "Only a registered (认定登记) contract is paid online", code="contract_not_registered"
        )
    _refuse_test_confirmation_unless_allowed(config, body.confirm_with)
    _refuse_second_live_payment(session, milestone_id)
    amount = outstanding(session, milestone)
    if amount == 0:
        raise Conflict("This milestone is paid", code="milestone_paid")
    if body.amount_fen is not None and body.amount_fen != amount:
        raise InvalidInput.on(
            "body.amount_fen",
            f"must be the milestone's outstanding amount, {amount} fen",
            code="amount_mismatch",
        )
    payment = Payment(
        contract_id=contract_id,
        milestone_id=milestone_id,
        purpose=PaymentPurpose.MILESTONE,
        payer_organization_id=contract.buyer_organization_id,
        payee_organization_id=contract.seller_organization_id,
        amount_fen=amount,
        capture_method="automatic",
        status=PaymentStatus.PENDING,
        idempotency_key=key or _attempt_key(session, milestone_id),
        platform_fee_basis_points=config.platform_fee_basis_points,
        broker_commission_basis_points=(
            config.broker_commission_basis_points if contract.broker_organization_id else 0
        ),
        created_by_user_id=actor.user_id,
    )
    _claim(session, payment)
    secret = _start_intent(session, config, payment, body.confirm_with)
    audit.record(session, actor, ENTITY, payment.id, "created", to_status=payment.status)
    return Started(payment, secret)


def _attempt_key(session: Session, milestone_id: int) -> str:
    """Our idempotency key when the client sent none: the milestone and the attempt
    number. A request that failed before commit left no row, so its retry gets the same
    key and Stripe answers with the intent it already created."""
    attempts = repository.payments_of_milestone(session, milestone_id)
    return f"milestone-{milestone_id}-attempt-{len(attempts) + 1}"


def _refuse_second_live_payment(session: Session, milestone_id: int) -> None:
    live = repository.live_payment_of_milestone(session, milestone_id)
    if live is not None:
        raise Conflict(
            f"Payment {live.id} for this milestone is {live.status}: complete it, retry it "
            "with its client_secret, or cancel it first",
            code="payment_in_progress",
        )


def _claim(session: Session, payment: Payment) -> None:
    """Insert the row before calling Stripe: the partial unique index refuses a second
    live payment of the milestone even when two requests race past the check above."""
    try:
        with session.begin_nested():
            session.add(payment)
    except IntegrityError:
        raise Conflict(
            "Another payment of this milestone is in progress", code="payment_in_progress"
        ) from None


def client_secret_of(config: PaymentsConfig, intent_id: str) -> str | None:
    """The intent's client_secret, asked of Stripe: we never store it (a replayed answer
    gets it again this way)."""
    return _gateway_call(lambda: config.gateway.retrieve(intent_id)).client_secret


def _refuse_test_confirmation_unless_allowed(
    config: PaymentsConfig, payment_method: str | None
) -> None:
    if payment_method is not None and not config.test_confirmation_allowed:
        raise InvalidInput.on(
            "body.confirm_with", "server-side confirmation is for development and tests only"
        )


def _start_intent(
    session: Session, config: PaymentsConfig, payment: Payment, confirm_with: str | None
) -> str | None:
    assert payment.id is not None
    metadata = {
        "techmarket_payment_id": str(payment.id),
        "contract_id": str(payment.contract_id),
        "purpose": str(payment.purpose),
    }
    if payment.milestone_id is not None:
        metadata["milestone_id"] = str(payment.milestone_id)
    snapshot = _gateway_call(
        lambda: config.gateway.create_payment_intent(
            payment.amount_fen,
            currency=CURRENCY,
            payment_method_types=list(config.payment_method_types),
            capture_method="manual" if payment.capture_method == "manual" else "automatic",
            metadata=metadata,
            idempotency_key=payment.idempotency_key,
        )
    )
    payment.stripe_payment_intent_id = snapshot.id
    apply_api_answer(session, payment, snapshot)
    if confirm_with is not None:
        confirm_now(session, config, payment, confirm_with)
    return snapshot.client_secret


def confirm_now(
    session: Session, config: PaymentsConfig, payment: Payment, payment_method: str
) -> None:
    """Server-side confirmation (tests, development). A decline is an answer, not an
    error: the payment is kept as failed, so the row matches Stripe's intent."""
    intent_id = payment.stripe_payment_intent_id
    assert intent_id is not None
    try:
        snapshot = config.gateway.confirm(intent_id, payment_method)
    except PaymentDeclined as declined:
        snapshot = _gateway_call(lambda: config.gateway.retrieve(intent_id))
        apply_api_answer(session, payment, snapshot, failure_code=declined.code)
        return
    except PaymentGatewayError as error:
        raise _domain_error(error) from None
    apply_api_answer(session, payment, snapshot)


def confirm(
    session: Session, actor: Actor, config: PaymentsConfig, payment_id: int, payment_method: str
) -> Payment:
    _refuse_test_confirmation_unless_allowed(config, payment_method)
    payment = get_visible(session, actor, payment_id)
    _require_member(actor, payment.payer_organization_id, "Only the payer confirms a payment")
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        raise InvalidTransition(f"A {payment.status} payment cannot be confirmed")
    previous = _claim_before_stripe(session, payment)
    confirm_now(session, config, payment, payment_method)
    audit.record(
        session,
        actor,
        ENTITY,
        payment.id,
        "confirmed",
        from_status=previous,
        to_status=payment.status,
    )
    return payment


def cancel(session: Session, actor: Actor, config: PaymentsConfig, payment_id: int) -> Payment:
    """Abandon an unpaid payment: the intent is cancelled at Stripe, so its
    client_secret can no longer take money, and the milestone may be paid anew."""
    payment = get_visible(session, actor, payment_id)
    if not actor.is_bureau:
        _require_member(
            actor, payment.payer_organization_id, "Only the payer or bureau staff cancel a payment"
        )
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        raise InvalidTransition(f"A {payment.status} payment cannot be cancelled")
    _claim_before_stripe(session, payment)
    return _cancel_at_stripe(session, actor, config, payment, "cancelled")


# --- deposits (保证金) ---------------------------------------------------------------------


def post_deposit(
    session: Session,
    actor: Actor,
    config: PaymentsConfig,
    contract_id: int,
    body: DepositCreate,
    client_key: str | None,
) -> Started:
    """A hold on the payer's card (manual capture), for a binding offer or performance."""
    contract = contracts.get_visible(session, actor, contract_id)
    parties = (contract.seller_organization_id, contract.buyer_organization_id)
    if actor.organization_id not in parties:
        raise Forbidden("Only a party to the contract posts a deposit")
    contracts.require_verified_parties(session, *parties)
    key = f"deposit-{contract_id}-user-{actor.user_id}-key-{client_key}" if client_key else None
    if contract.status not in DEPOSIT_CONTRACT_STATUSES:
        raise InvalidTransition(f"A {contract.status} contract takes no deposit")
    _refuse_test_confirmation_unless_allowed(config, body.confirm_with)
    payee = parties[1] if actor.organization_id == parties[0] else parties[0]
    payment = Payment(
        contract_id=contract_id,
        milestone_id=None,
        purpose=PaymentPurpose.DEPOSIT,
        payer_organization_id=actor.organization_id,
        payee_organization_id=payee,
        amount_fen=body.amount_fen,
        capture_method="manual",
        status=PaymentStatus.PENDING,
        idempotency_key=key or f"deposit-{contract_id}-{utcnow().timestamp():.6f}-{actor.user_id}",
        created_by_user_id=actor.user_id,
    )
    _claim(session, payment)
    secret = _start_intent(session, config, payment, body.confirm_with)
    audit.record(
        session, actor, ENTITY, payment.id, "created", to_status=payment.status, reason=body.note
    )
    return Started(payment, secret)


def capture(
    session: Session, actor: Actor, config: PaymentsConfig, payment_id: int, body: CaptureRequest
) -> Payment:
    payment = _held_deposit_for_payee(session, actor, payment_id, "captures")
    amount = body.amount_fen if body.amount_fen is not None else payment.amount_capturable_fen
    if amount > payment.amount_capturable_fen:
        raise InvalidInput.on(
            "body.amount_fen",
            f"at most the {payment.amount_capturable_fen} fen held",
            code="above_hold",
        )
    intent_id = payment.stripe_payment_intent_id
    assert intent_id is not None
    snapshot = _gateway_call(lambda: config.gateway.capture(intent_id, amount))
    previous = payment.status
    apply_api_answer(session, payment, snapshot)
    audit.record(
        session,
        actor,
        ENTITY,
        payment.id,
        "captured",
        from_status=previous,
        to_status=payment.status,
        details={"amount_fen": amount},
    )
    return payment


def release(session: Session, actor: Actor, config: PaymentsConfig, payment_id: int) -> Payment:
    payment = _held_deposit_for_payee(session, actor, payment_id, "releases")
    return _cancel_at_stripe(session, actor, config, payment, "released")


def _held_deposit_for_payee(session: Session, actor: Actor, payment_id: int, verb: str) -> Payment:
    payment = get_visible(session, actor, payment_id)
    if not actor.is_bureau:
        # The payer must not decide about its own guarantee.
        _require_member(
            actor,
            payment.payee_organization_id,
            f"Only the deposit's beneficiary or bureau staff {verb} it",
        )
    if payment.purpose != PaymentPurpose.DEPOSIT or payment.status != PaymentStatus.HELD:
        raise InvalidTransition(
            f"Only a held deposit can be captured or released; "
            f"this payment is a {payment.status} {payment.purpose}"
        )
    _claim_before_stripe(session, payment)
    return payment


def _claim_before_stripe(session: Session, payment: Payment) -> PaymentStatus:
    """Compare-and-set before any call to Stripe: the payment is still in the state just
    checked, and stays in it until this request commits, so of parallel decisions
    (capture and release, two cancels) one reaches Stripe. `FOR UPDATE` would not do:
    SQLite ignores it. Returns the state claimed."""
    return PaymentStatus(
        transitions.claim(
            session,
            payment,
            lost="Another request changed this payment meanwhile; reload it",
        )
    )


def _cancel_at_stripe(
    session: Session, actor: Actor, config: PaymentsConfig, payment: Payment, action: str
) -> Payment:
    intent_id = payment.stripe_payment_intent_id
    assert intent_id is not None
    snapshot = _gateway_call(lambda: config.gateway.cancel(intent_id))
    previous = payment.status
    apply_api_answer(session, payment, snapshot)
    audit.record(
        session, actor, ENTITY, payment.id, action, from_status=previous, to_status=payment.status
    )
    return payment


# --- refunds ------------------------------------------------------------------------------
# A refund's amount is reserved on its payment (refund_reserved_fen) from before Stripe
# is asked until the refund settles: succeeded moves it to amount_refunded_fen, failed
# or canceled gives it back. The reservation is one compare-and-set UPDATE, so parallel
# refunds can never together exceed what was received, whatever the database's locks.


def refundable(payment: Payment) -> int:
    """Received minus refunded, minus refunds in flight or pending at Stripe."""
    return payment.amount_received_fen - payment.amount_refunded_fen - payment.refund_reserved_fen


def refund(
    session: Session,
    actor: Actor,
    config: PaymentsConfig,
    payment_id: int,
    body: RefundCreate,
    client_key: str | None,
) -> Payment:
    payment = get_visible(session, actor, payment_id)
    if not actor.is_bureau:
        _require_member(
            actor,
            payment.payee_organization_id,
            "Only the seller (the payee) or bureau staff refund a payment",
        )
    reserve_refund(session, payment, body.amount_fen)
    # A retry after a failed commit sends the same key, so Stripe refunds only once.
    key = (
        f"refund-{payment_id}-user-{actor.user_id}-key-{client_key}"
        if client_key
        else f"refund-{payment_id}-{len(repository.refunds_of(session, payment_id)) + 1}"
    )
    intent_id = payment.stripe_payment_intent_id
    assert intent_id is not None
    # A refusal raises, and rolling the request back gives the reservation back.
    snapshot = _gateway_call(
        lambda: config.gateway.refund(
            intent_id,
            body.amount_fen,
            idempotency_key=key,
            metadata={"reason": body.reason[:500], "requested_by_user_id": str(actor.user_id)},
        )
    )
    record = Refund(
        payment_id=payment_id,
        stripe_refund_id=snapshot.id,
        amount_fen=snapshot.amount_fen,
        reason=body.reason,
        requested_by_user_id=actor.user_id,
        status=RefundStatus.from_stripe(snapshot.status),
        idempotency_key=key,
    )
    session.add(record)
    session.flush()
    previous = payment.status
    refund_status_changed(session, payment, record, RefundStatus.PENDING, actor.user_id)
    audit.record(
        session,
        actor,
        ENTITY,
        payment.id,
        "refunded",
        from_status=previous,
        to_status=payment.status,
        reason=body.reason,
        details={"refund_id": record.id, "amount_fen": record.amount_fen},
    )
    return payment


def reserve_refund(session: Session, payment: Payment, amount_fen: int) -> None:
    """Compare-and-set: reserve `amount_fen` only if it is still refundable; 422 if not."""
    reserved = repository.update_money(
        session,
        payment,
        col(Payment.amount_received_fen)
        - col(Payment.amount_refunded_fen)
        - col(Payment.refund_reserved_fen)
        >= amount_fen,
        refund_reserved_fen=col(Payment.refund_reserved_fen) + amount_fen,
    )
    if not reserved:
        raise InvalidInput.on(
            "body.amount_fen",
            f"at most {refundable(payment)} fen can be refunded",
            code="above_refundable",
        )


def refund_status_changed(
    session: Session,
    payment: Payment,
    record: Refund,
    before: RefundStatus | None,
    user_id: int | None,
) -> None:
    """Settle a refund whose status went from `before` (None: first heard of) to
    `record.status`: a pending refund stays reserved, a succeeded one is counted once
    (in the payment and the ledger), a failed or canceled one gives its reservation back."""
    if before == RefundStatus.SUCCEEDED:
        return  # counted already; Stripe does not undo a succeeded refund
    amount = record.amount_fen
    was_reserved = before == RefundStatus.PENDING
    now_reserved = record.status == RefundStatus.PENDING
    succeeded = record.status == RefundStatus.SUCCEEDED
    reserved_change = (amount if now_reserved else 0) - (amount if was_reserved else 0)
    if not reserved_change and not succeeded:
        return
    repository.update_money(
        session,
        payment,
        None,
        refund_reserved_fen=col(Payment.refund_reserved_fen) + reserved_change,
        amount_refunded_fen=col(Payment.amount_refunded_fen) + (amount if succeeded else 0),
    )
    if succeeded:
        payment.status = derive_status(payment)
        ledger.record_refund(session, payment, amount, user_id)


# --- applying what Stripe says ------------------------------------------------------------


def apply_api_answer(
    session: Session,
    payment: Payment,
    snapshot: PaymentIntentSnapshot,
    failure_code: str | None = None,
) -> None:
    """Take Stripe's answer to our own call, unless a webhook already told us more."""
    if not _api_answer_is_news(payment.stripe_status, snapshot.status):
        return
    apply_intent_state(
        session,
        payment,
        status=snapshot.status,
        received_fen=snapshot.amount_received_fen,
        capturable_fen=snapshot.amount_capturable_fen,
        failure_code=failure_code or snapshot.last_payment_error_code,
        event_created=None,
    )


def _api_answer_is_news(current: str, incoming: str) -> bool:
    if current not in INTENT_STATUS_RANK or incoming not in INTENT_STATUS_RANK:
        return True
    if incoming == "requires_payment_method":  # a declined attempt
        return intent_state_rank(current) < INTENT_STATUS_RANK["requires_capture"]
    return intent_state_rank(incoming) >= intent_state_rank(current)


def apply_intent_state(
    session: Session,
    payment: Payment,
    *,
    status: str,
    received_fen: int | None,
    capturable_fen: int | None,
    failure_code: str | None,
    event_created: int | None,
) -> None:
    """Move the payment to what Stripe reports; new money received goes to the ledger."""
    payment.stripe_status = status
    payment.stripe_status_event_created = event_created
    payment.failure_code = failure_code if status == "requires_payment_method" else None
    if capturable_fen is not None:
        payment.amount_capturable_fen = capturable_fen if status == "requires_capture" else 0
    newly_received = _count_received(session, payment, received_fen or 0)
    payment.status = derive_status(payment)
    payment.updated_at = utcnow()
    if newly_received > 0:
        ledger.record_received(session, payment, newly_received)


def _count_received(session: Session, payment: Payment, reported_fen: int) -> int:
    """Raise `amount_received_fen` to what Stripe reports by compare-and-set from the
    value read, so that an API answer and a webhook racing over the same receipt count
    it once; returns the part this call counted."""
    while reported_fen > payment.amount_received_fen:
        seen = payment.amount_received_fen
        if repository.update_money(
            session,
            payment,
            col(Payment.amount_received_fen) == seen,
            amount_received_fen=reported_fen,
        ):
            return reported_fen - seen
        # Another request counted some of it first; `payment` now holds its count.
    return 0


def derive_status(payment: Payment) -> PaymentStatus:
    manual = payment.capture_method == "manual"
    refunded, received = payment.amount_refunded_fen, payment.amount_received_fen
    if refunded and refunded >= received:
        return PaymentStatus.REFUNDED
    if refunded:
        return PaymentStatus.REFUNDED_PARTIALLY
    by_stripe_status = {
        "succeeded": PaymentStatus.CAPTURED if manual else PaymentStatus.PAID,
        "canceled": PaymentStatus.RELEASED if manual else PaymentStatus.CANCELED,
        "requires_capture": PaymentStatus.HELD,
        "processing": PaymentStatus.PROCESSING,
    }
    if payment.stripe_status in by_stripe_status:
        return by_stripe_status[payment.stripe_status]
    return PaymentStatus.FAILED if payment.failure_code else PaymentStatus.PENDING


# --- payouts and the contract view --------------------------------------------------------


def record_payout(session: Session, actor: Actor, contract_id: int, body: PayoutCreate) -> Any:
    """Bureau staff record a transfer to the seller made outside Stripe (Connect does
    not pay out to mainland China); nothing is executed."""
    if not actor.is_bureau:
        raise Forbidden("Only bureau staff record payouts")
    contract = contracts.get_visible(session, actor, contract_id)
    # Parallel payouts of one contract take turns, so each sees what the others paid out.
    transitions.lock_owner_row(session, Contract, contract_id)
    payable = ledger.contract_sums(session, contract_id).payable_to_seller_fen
    if body.amount_fen > payable:
        raise InvalidInput.on(
            "body.amount_fen",
            f"at most the {payable} fen received and not yet paid out",
            code="above_payable",
        )
    entry = ledger.append(
        session,
        contract_id=contract_id,
        kind=PaymentLedgerKind.PAYOUT_RECORDED,
        amount_fen=-body.amount_fen,
        effective_on=body.paid_on,
        reference=body.reference,
        user_id=actor.user_id,
    )
    session.flush()
    assert entry.id is not None and contract.id is not None
    audit.record(
        session,
        actor,
        "contract",
        contract.id,
        "payout_recorded",
        details={
            "amount_fen": body.amount_fen,
            "reference": body.reference,
            "paid_on": body.paid_on.isoformat(),
            "ledger_entry_id": entry.id,
        },
    )
    return entry


def ledger_of_contract(session: Session, actor: Actor, contract_id: int) -> list[Any]:
    contracts.get_visible(session, actor, contract_id)
    return ledger.entries_for_contract(session, contract_id)


def contract_view(session: Session, actor: Actor, contract_id: int) -> ContractPayments:
    contract = contracts.get_visible(session, actor, contract_id)
    assert contract.id is not None
    payments = repository.payments_of_contract(session, contract.id)
    milestones = _milestone_views(session, contract, payments)
    sums = ledger.contract_sums(session, contract.id)
    return ContractPayments(
        contract_id=contract.id,
        total_amount_fen=contract.total_amount_fen,
        technology_amount_fen=contract.technology_amount_fen,
        outstanding_fen=sum(m.outstanding_fen for m in milestones),
        totals=MoneyTotals(
            received_fen=sums.received_fen,
            refunded_fen=sums.refunded_fen,
            net_received_fen=sums.net_received_fen,
            platform_fee_fen=sums.platform_fee_fen,
            broker_commission_fen=sums.broker_commission_fen,
            payouts_fen=sums.payouts_fen,
            payable_to_seller_fen=sums.payable_to_seller_fen,
        ),
        milestones=milestones,
        payments=[read(session, payment) for payment in payments],
    )


def _milestone_views(
    session: Session, contract: Contract, payments: list[Payment]
) -> list[MilestonePayments]:
    assert contract.id is not None
    schedule = contract_queries.milestones_of(session, contract.id)
    views = []
    for milestone in schedule:
        own = [p for p in payments if p.milestone_id == milestone.id]
        received = sum(p.amount_received_fen for p in own)
        refunded = sum(p.amount_refunded_fen for p in own)
        assert milestone.id is not None
        views.append(
            MilestonePayments(
                milestone_id=milestone.id,
                position=milestone.position,
                title=milestone.title,
                due_on=milestone.due_on,
                amount_fen=milestone.amount_fen,
                received_fen=received,
                refunded_fen=refunded,
                outstanding_fen=max(milestone.amount_fen - received + refunded, 0),
                status=_milestone_status(milestone.amount_fen, received - refunded, refunded, own),
            )
        )
    return views


def _milestone_status(amount: int, net: int, refunded: int, payments: list[Payment]) -> str:
    live = next((p for p in payments if p.status in LIVE_STATUSES), None)
    if live is not None:
        return str(live.status)
    if amount and net >= amount:
        return "paid"
    if net > 0:
        return "partially_paid"
    return "refunded" if refunded else "unpaid"


def payment_stats(session: Session, year: int | None, by_month: bool) -> PaymentStats:
    by_period = ledger.sums_by_period(session, year, by_month)
    trade = stats.summary(session, market_today(), year)
    overall = sum(by_period.values(), ledger.MoneySums())
    return PaymentStats(
        year=year,
        granularity="month" if by_month else "year",
        total_amount_fen=trade.total_amount_fen,
        technology_amount_fen=trade.technology_amount_fen,
        rows=[_period_row(period, sums) for period, sums in by_period.items()],
        totals=_period_row("total", overall),
    )


def _period_row(period: str, sums: ledger.MoneySums) -> PeriodMoney:
    return PeriodMoney(
        period=period,
        received_fen=sums.received_fen,
        refunded_fen=sums.refunded_fen,
        net_received_fen=sums.net_received_fen,
        platform_fee_fen=sums.platform_fee_fen,
        broker_commission_fen=sums.broker_commission_fen,
        payouts_fen=sums.payouts_fen,
    )


# --- helpers ------------------------------------------------------------------------------


def _require_member(actor: Actor, organization_id: int, message: str) -> None:
    if not actor.belongs_to(organization_id):
        raise Forbidden(message)


def _gateway_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except PaymentGatewayError as error:
        raise _domain_error(error) from None


def _domain_error(error: PaymentGatewayError) -> Exception:
    """Stripe's refusals as problem responses; the gateway already removed the key."""
    if isinstance(error, PaymentProviderUnavailable):
        return PaymentsUnavailable(
            f"The payment provider is unavailable: {error.message}",
            code="payment_provider_unavailable",
        )
    if isinstance(error, PaymentDeclined):
        return Conflict(f"The payment was declined: {error.message}", code="payment_declined")
    return Conflict(
        f"The payment provider refused the request: {error.message}", code="payment_rejected"
    )
