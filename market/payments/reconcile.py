"""`market payments reconcile`: compare our payments with Stripe's PaymentIntents.

Two passes, because each side can miss what the other has:
- Stripe's list of intents created since the date: any intent we have no payment for
  is reported (a request that created it and then failed to commit, or a payment made
  outside the platform on our account);
- each of our payments since the date, retrieved by id: missing at Stripe, a different
  amount, amount received, or a status that does not match Stripe's.
Exit code 1 when there is any difference, so a scheduler can alert on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated

import typer
from sqlmodel import Session, col, select

from market.config import get_settings
from market.db import make_engine, session_scope
from market.payments.gateway import (
    PaymentGateway,
    PaymentGatewayError,
    PaymentIntentSnapshot,
    PaymentRequestRejected,
)
from market.payments.models import Payment, PaymentStatus
from market.payments.service import PaymentsUnavailable, build_config

# Our statuses Stripe's intent status allows (refund statuses sit on top of a
# succeeded intent; a failed attempt is an intent waiting for a payment method).
EXPECTED_STATUSES: dict[str, frozenset[PaymentStatus]] = {
    "requires_payment_method": frozenset({PaymentStatus.PENDING, PaymentStatus.FAILED}),
    "requires_confirmation": frozenset({PaymentStatus.PENDING}),
    "requires_action": frozenset({PaymentStatus.PENDING}),
    "processing": frozenset({PaymentStatus.PROCESSING}),
    "requires_capture": frozenset({PaymentStatus.HELD}),
    "succeeded": frozenset(
        {
            PaymentStatus.PAID,
            PaymentStatus.CAPTURED,
            PaymentStatus.REFUNDED_PARTIALLY,
            PaymentStatus.REFUNDED,
        }
    ),
    "canceled": frozenset({PaymentStatus.CANCELED, PaymentStatus.RELEASED}),
}


@dataclass(frozen=True)
class Difference:
    kind: str  # missing_here, missing_at_stripe, status, amount, amount_received
    payment_id: int | None
    intent_id: str
    ours: str
    stripe: str

    def line(self) -> str:
        payment = f"payment {self.payment_id}" if self.payment_id is not None else "no payment"
        return f"{self.kind}: {self.intent_id} ({payment}) ours={self.ours} stripe={self.stripe}"


def reconcile(session: Session, gateway: PaymentGateway, since: datetime) -> list[Difference]:
    ours = list(
        session.exec(
            select(Payment).where(col(Payment.created_at) >= since).order_by(col(Payment.id))
        )
    )
    known_intents = set(
        session.exec(
            select(Payment.stripe_payment_intent_id).where(
                col(Payment.stripe_payment_intent_id).is_not(None)
            )
        )
    )
    differences = [
        Difference("missing_here", None, intent.id, "-", f"{intent.status} {intent.amount_fen}")
        for intent in gateway.list_payment_intents(since)
        if intent.id not in known_intents
    ]
    for payment in ours:
        differences.extend(_compare_one(gateway, payment))
    return differences


def _compare_one(gateway: PaymentGateway, payment: Payment) -> Iterator[Difference]:
    intent_id = payment.stripe_payment_intent_id or ""
    try:
        intent = gateway.retrieve(intent_id)
    except PaymentRequestRejected:
        yield Difference("missing_at_stripe", payment.id, intent_id, str(payment.status), "-")
        return
    yield from compare(payment, intent)


def compare(payment: Payment, intent: PaymentIntentSnapshot) -> Iterable[Difference]:
    """What differs between one payment and its intent."""
    differences = []
    if PaymentStatus(payment.status) not in EXPECTED_STATUSES.get(intent.status, frozenset()):
        differences.append(_difference("status", payment, payment.status, intent.status))
    if payment.amount_fen != intent.amount_fen:
        differences.append(_difference("amount", payment, payment.amount_fen, intent.amount_fen))
    if payment.amount_received_fen != intent.amount_received_fen:
        differences.append(
            _difference(
                "amount_received", payment, payment.amount_received_fen, intent.amount_received_fen
            )
        )
    return differences


def _difference(kind: str, payment: Payment, ours: object, stripe: object) -> Difference:
    return Difference(
        kind, payment.id, payment.stripe_payment_intent_id or "", str(ours), str(stripe)
    )


# --- the command ----------------------------------------------------------------------------

payments_cli = typer.Typer(help="Online payments (Stripe).", no_args_is_help=True)


@payments_cli.command("reconcile")
def reconcile_command(
    since: Annotated[
        datetime,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Compare payments and intents created from this day (UTC)",
        ),
    ],
) -> None:
    """Report every difference between our payments and Stripe's; exit 1 if any."""
    settings = get_settings()
    try:
        config = build_config(settings)
    except PaymentsUnavailable as error:
        typer.secho(str(error), err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    start = datetime.combine(date(since.year, since.month, since.day), time(), UTC)
    engine = make_engine(settings.effective_database_url)
    try:
        with session_scope(engine) as session:
            differences = reconcile(session, config.gateway, start)
    except PaymentGatewayError as error:
        typer.secho(f"Stripe: {error.message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    for difference in differences:
        typer.echo(difference.line())
    typer.echo(f"{len(differences)} difference(s) since {start.date().isoformat()}")
    if differences:
        raise typer.Exit(1)
