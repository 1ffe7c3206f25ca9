"""HTTP for online payment of contract milestones, deposits, refunds, payouts, webhooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel
from sqlmodel import Session

from market.auth.actor import Actor, BureauActor, CurrentActor
from market.common import idempotency
from market.common.idempotency import IdempotencyKeyHeader
from market.common.ids import PathId
from market.db import DbSession
from market.errors import DomainError, problem_responses
from market.payments import events, service
from market.payments.schemas import (
    CaptureRequest,
    ContractPayments,
    DepositCreate,
    LedgerRowRead,
    MilestonePaymentCreate,
    PaymentConfirm,
    PaymentRead,
    PaymentStarted,
    PaymentStats,
    PayoutCreate,
    RefundCreate,
    WebhookAck,
)
from market.payments.service import PaymentsConfig, PaymentsUnavailable
from market.payments.webhooks import SIGNATURE_HEADER, WebhookError, verify

logger = logging.getLogger(__name__)

router = APIRouter(tags=["payments"])
Id = PathId
READ = problem_responses(401, 404)
WRITE = problem_responses(401, 403, 404, 409, 422, 503)
START_ONCE = {**WRITE, **idempotency.replay_response(PaymentStarted)}
REFUND_ONCE = {**WRITE, **idempotency.replay_response(PaymentRead)}


def payments_config(request: Request) -> PaymentsConfig:
    """The payments settings and gateway, built once per app; 503 without a Stripe key."""
    config: PaymentsConfig | None = getattr(request.app.state, "payments_config", None)
    if config is None:
        config = service.build_config(request.app.state.settings)
        request.app.state.payments_config = config
    return config


Payments = Annotated[PaymentsConfig, Depends(payments_config)]


class InvalidWebhook(DomainError):
    status = 400
    code = "invalid_webhook"
    title = "Invalid webhook delivery"


def _start_once(
    session: Session,
    response: Response,
    actor: Actor,
    config: PaymentsConfig,
    endpoint: str,
    key: str | None,
    body: BaseModel,
    start: Callable[[], service.Started],
) -> PaymentStarted:
    """Create a payment at most once per Idempotency-Key; the client_secret is not kept
    with the stored answer but asked of Stripe again for a replay."""

    def work() -> PaymentStarted:
        started = start()
        view = service.read(session, started.payment)
        return PaymentStarted(**view.model_dump(), client_secret=started.client_secret)

    def with_secret(stored: PaymentStarted) -> PaymentStarted:
        assert stored.stripe_payment_intent_id is not None
        secret = service.client_secret_of(config, stored.stripe_payment_intent_id)
        return stored.model_copy(update={"client_secret": secret})

    result, replayed = idempotency.run_once(
        session,
        endpoint=endpoint,
        user_id=actor.user_id,
        key=key,
        request=body,
        response_model=PaymentStarted,
        work=work,
        unstored=("client_secret",),
        on_replay=with_secret,
    )
    if replayed:
        idempotency.mark_replayed(response)
    return result


@router.post(
    "/contracts/{contract_id}/milestones/{milestone_id}/payments",
    response_model=PaymentStarted,
    status_code=status.HTTP_201_CREATED,
    responses=START_ONCE,
    summary="Pay a milestone's outstanding amount (buyer): creates a Stripe PaymentIntent",
)
def pay_milestone(
    contract_id: Id,
    milestone_id: Id,
    actor: CurrentActor,
    session: DbSession,
    config: Payments,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    body: MilestonePaymentCreate | None = None,
) -> PaymentStarted:
    request = body or MilestonePaymentCreate()
    return _start_once(
        session,
        response,
        actor,
        config,
        f"payment.milestone:{milestone_id}",
        idempotency_key,
        request,
        lambda: service.pay_milestone(
            session, actor, config, contract_id, milestone_id, request, idempotency_key
        ),
    )


@router.post(
    "/contracts/{contract_id}/deposits",
    response_model=PaymentStarted,
    status_code=status.HTTP_201_CREATED,
    responses=START_ONCE,
    summary="Post a deposit (保证金) as a hold on the payer's card (a party to the contract)",
)
def post_deposit(
    contract_id: Id,
    body: DepositCreate,
    actor: CurrentActor,
    session: DbSession,
    config: Payments,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PaymentStarted:
    return _start_once(
        session,
        response,
        actor,
        config,
        f"payment.deposit:{contract_id}",
        idempotency_key,
        body,
        lambda: service.post_deposit(session, actor, config, contract_id, body, idempotency_key),
    )


@router.get(
    "/contracts/{contract_id}/payments",
    response_model=ContractPayments,
    responses=READ,
    summary="Per milestone: amount, received, refunded, outstanding; 到账额 totals",
)
def contract_payments(contract_id: Id, actor: CurrentActor, session: DbSession) -> ContractPayments:
    return service.contract_view(session, actor, contract_id)


@router.get(
    "/contracts/{contract_id}/payment-ledger",
    response_model=list[LedgerRowRead],
    responses=READ,
    summary="The contract's money movements, fees and payouts",
)
def contract_payment_ledger(
    contract_id: Id, actor: CurrentActor, session: DbSession
) -> list[LedgerRowRead]:
    rows = service.ledger_of_contract(session, actor, contract_id)
    return [LedgerRowRead.model_validate(row) for row in rows]


@router.post(
    "/contracts/{contract_id}/payouts",
    response_model=LedgerRowRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
    summary="Record a payout to the seller made outside Stripe (bureau staff)",
)
def record_payout(
    contract_id: Id, body: PayoutCreate, actor: CurrentActor, session: DbSession
) -> LedgerRowRead:
    return LedgerRowRead.model_validate(service.record_payout(session, actor, contract_id, body))


@router.get("/payments/{payment_id}", response_model=PaymentRead, responses=READ)
def get_payment(payment_id: Id, actor: CurrentActor, session: DbSession) -> PaymentRead:
    return service.read(session, service.get_visible(session, actor, payment_id))


@router.post(
    "/payments/{payment_id}/confirm",
    response_model=PaymentRead,
    responses=WRITE,
    summary="Development and tests: confirm with a Stripe test payment method",
)
def confirm_payment(
    payment_id: Id,
    body: PaymentConfirm,
    actor: CurrentActor,
    session: DbSession,
    config: Payments,
) -> PaymentRead:
    payment = service.confirm(session, actor, config, payment_id, body.confirm_with)
    return service.read(session, payment)


@router.post(
    "/payments/{payment_id}/cancel",
    response_model=PaymentRead,
    responses=WRITE,
    summary="Abandon an unpaid payment (payer or bureau staff)",
)
def cancel_payment(
    payment_id: Id, actor: CurrentActor, session: DbSession, config: Payments
) -> PaymentRead:
    return service.read(session, service.cancel(session, actor, config, payment_id))


@router.post(
    "/payments/{payment_id}/capture",
    response_model=PaymentRead,
    responses=WRITE,
    summary="Capture a held deposit in full or in part (payee or bureau staff)",
)
def capture_deposit(
    payment_id: Id,
    actor: CurrentActor,
    session: DbSession,
    config: Payments,
    body: CaptureRequest | None = None,
) -> PaymentRead:
    payment = service.capture(session, actor, config, payment_id, body or CaptureRequest())
    return service.read(session, payment)


@router.post(
    "/payments/{payment_id}/release",
    response_model=PaymentRead,
    responses=WRITE,
    summary="Release a held deposit without capturing it (payee or bureau staff)",
)
def release_deposit(
    payment_id: Id, actor: CurrentActor, session: DbSession, config: Payments
) -> PaymentRead:
    return service.read(session, service.release(session, actor, config, payment_id))


@router.post(
    "/payments/{payment_id}/refunds",
    response_model=PaymentRead,
    status_code=status.HTTP_201_CREATED,
    responses=REFUND_ONCE,
    summary="Refund in full or in part, with a reason (seller or bureau staff)",
)
def refund_payment(
    payment_id: Id,
    body: RefundCreate,
    actor: CurrentActor,
    session: DbSession,
    config: Payments,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PaymentRead:
    result, replayed = idempotency.run_once(
        session,
        endpoint=f"payment.refund:{payment_id}",
        user_id=actor.user_id,
        key=idempotency_key,
        request=body,
        response_model=PaymentRead,
        work=lambda: service.read(
            session, service.refund(session, actor, config, payment_id, body, idempotency_key)
        ),
    )
    if replayed:
        idempotency.mark_replayed(response)
    return result


async def _raw_body(request: Request) -> bytes:
    # The signature covers the exact bytes; never re-encoded JSON.
    return await request.body()


@router.post(
    "/payments/stripe/webhook",
    response_model=WebhookAck,
    responses=problem_responses(400, 503),
    summary="Stripe webhook deliveries (signed with the endpoint's secret)",
)
def stripe_webhook(
    request: Request, session: DbSession, raw_body: Annotated[bytes, Depends(_raw_body)]
) -> WebhookAck:
    secret = request.app.state.settings.stripe_webhook_secret
    if not secret:
        raise PaymentsUnavailable(service.UNAVAILABLE_MESSAGE)
    try:
        event = verify(raw_body, request.headers.get(SIGNATURE_HEADER), secret)
    except WebhookError as error:
        logger.warning("refused a Stripe webhook delivery: %s", error)
        raise InvalidWebhook(str(error)) from None
    return events.receive(session, event, raw_body)


@router.get(
    "/stats/payments",
    response_model=PaymentStats,
    responses=problem_responses(401, 403, 422),
    summary="到账额 (money received minus refunds) by period, next to 成交额/技术交易额",
    tags=["stats"],
)
def payment_stats(
    actor: BureauActor,
    session: DbSession,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    granularity: Annotated[Literal["year", "month"], Query()] = "month",
) -> PaymentStats:
    return service.payment_stats(session, year, by_month=granularity == "month")
