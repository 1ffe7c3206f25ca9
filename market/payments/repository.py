"""The payments' queries, and the one UPDATE that changes a payment's money columns.

Who may see a payment is its contract's question (the service asks the contracts
service); these functions load rows without a scope and never decide about an actor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from market.db import utcnow
from market.payments.models import LIVE_STATUSES, Payment, Refund

MONEY_COLUMNS = (
    "amount_received_fen",
    "amount_capturable_fen",
    "amount_refunded_fen",
    "refund_reserved_fen",
    "updated_at",
)


def payment_by_id(session: Session, payment_id: int) -> Payment | None:
    return session.exec(select(Payment).where(col(Payment.id) == payment_id)).first()


def payment_by_intent_id(session: Session, intent_id: str) -> Payment | None:
    """The payment of a Stripe PaymentIntent, locked on PostgreSQL for the webhook that
    applies to it (the money columns themselves change only by `update_money`)."""
    query = select(Payment).where(col(Payment.stripe_payment_intent_id) == intent_id)
    return session.exec(query.with_for_update()).first()


def payments_of_contract(session: Session, contract_id: int) -> list[Payment]:
    query = select(Payment).where(col(Payment.contract_id) == contract_id).order_by(col(Payment.id))
    return list(session.exec(query))


def payments_of_milestone(session: Session, milestone_id: int) -> list[Payment]:
    """Every attempt to pay the milestone, whatever became of it."""
    return list(session.exec(select(Payment).where(col(Payment.milestone_id) == milestone_id)))


def live_payment_of_milestone(session: Session, milestone_id: int) -> Payment | None:
    """The milestone's payment that may still take money (a partial unique index allows
    one)."""
    query = select(Payment).where(
        col(Payment.milestone_id) == milestone_id, col(Payment.status).in_(LIVE_STATUSES)
    )
    return session.exec(query).first()


def refunds_of(session: Session, payment_id: int) -> list[Refund]:
    query = select(Refund).where(col(Refund.payment_id) == payment_id).order_by(col(Refund.id))
    return list(session.exec(query))


def refund_by_stripe_id(session: Session, stripe_refund_id: str) -> Refund | None:
    query = select(Refund).where(col(Refund.stripe_refund_id) == stripe_refund_id)
    return session.exec(query).first()


def update_money(
    session: Session, payment: Payment, condition: ColumnElement[bool] | None, **values: Any
) -> bool:
    """One UPDATE of the payment's money columns, computed by the database from the row
    as it is (never from what this request read), then reloaded into `payment`.

    `condition` makes it a compare-and-set: the row changes only where it holds, and
    the answer says whether it did.
    """
    statement = update(Payment).where(col(Payment.id) == payment.id)
    if condition is not None:
        statement = statement.where(condition)
    moved = session.execute(
        statement.values(updated_at=utcnow(), **values),
        execution_options={"synchronize_session": False},
    )
    session.refresh(payment, attribute_names=MONEY_COLUMNS)
    return bool(moved.rowcount)  # type: ignore[attr-defined]
