"""The payments ledger: append-only rows of money received, refunded, charged and paid out.

Only this module writes `payment_ledger`, and only by inserting.

Fees. The platform's service fee and the broker's commission are a rate in basis
points (1 bp = 0.01 %) of a milestone payment's *net* receipts (received minus
refunded), rounded half up to the fen (四舍五入), in integer arithmetic:

    fee_due(net, bp) = (net * bp + 5000) // 10000

After every change of a payment's net receipts the rows for each fee are topped up or
reversed so that their sum is exactly `fee_due(net)` at the rate fixed on the payment
when it was created. Rounding each refund's share separately could drift by a fen per
refund; recomputing on the net never does. Deposits carry no fee (they are a guarantee,
not a payment for the technology) and do not count in 到账额.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, func, select

from market.common.calendar import market_today
from market.payments.models import (
    Payment,
    PaymentLedgerEntry,
    PaymentLedgerKind,
    PaymentPurpose,
)

BASIS_POINTS_PER_UNIT = 10_000


def fee_due(net_received_fen: int, basis_points: int) -> int:
    """The fee on `net_received_fen` at `basis_points`, rounded half up to the fen."""
    if net_received_fen < 0 or basis_points < 0:
        raise ValueError("fees are computed on non-negative amounts and rates")
    return (net_received_fen * basis_points + BASIS_POINTS_PER_UNIT // 2) // BASIS_POINTS_PER_UNIT


def append(
    session: Session,
    *,
    contract_id: int,
    kind: PaymentLedgerKind,
    amount_fen: int,
    payment_id: int | None = None,
    effective_on: date | None = None,
    reference: str = "",
    user_id: int | None = None,
) -> PaymentLedgerEntry:
    day = effective_on or market_today()
    entry = PaymentLedgerEntry(
        payment_id=payment_id,
        contract_id=contract_id,
        kind=kind,
        amount_fen=amount_fen,
        effective_on=day,
        effective_year=day.year,
        effective_month=day.month,
        reference=reference,
        recorded_by_user_id=user_id,
    )
    session.add(entry)
    return entry


def record_received(session: Session, payment: Payment, delta_fen: int) -> None:
    assert payment.id is not None
    append(
        session,
        contract_id=payment.contract_id,
        payment_id=payment.id,
        kind=PaymentLedgerKind.RECEIVED,
        amount_fen=delta_fen,
    )
    _sync_fees(session, payment)


def record_refund(session: Session, payment: Payment, amount_fen: int, user_id: int | None) -> None:
    assert payment.id is not None
    append(
        session,
        contract_id=payment.contract_id,
        payment_id=payment.id,
        kind=PaymentLedgerKind.REFUND,
        amount_fen=-amount_fen,
        user_id=user_id,
    )
    _sync_fees(session, payment)


def _sync_fees(session: Session, payment: Payment) -> None:
    """Bring the fee and commission rows of `payment` to what its net receipts owe."""
    net = payment.amount_received_fen - payment.amount_refunded_fen
    rates = (
        (PaymentLedgerKind.PLATFORM_FEE, payment.platform_fee_basis_points),
        (PaymentLedgerKind.BROKER_COMMISSION, payment.broker_commission_basis_points),
    )
    session.flush()  # the rows appended in this request count in the sums below
    for kind, basis_points in rates:
        # Fee rows are negative (money the seller does not get): charged = -sum.
        charged = -_sum(
            session,
            col(PaymentLedgerEntry.payment_id) == payment.id,
            col(PaymentLedgerEntry.kind) == kind,
        )
        adjustment = fee_due(net, basis_points) - charged
        if adjustment:
            assert payment.id is not None
            append(
                session,
                contract_id=payment.contract_id,
                payment_id=payment.id,
                kind=kind,
                amount_fen=-adjustment,
            )


def _sum(session: Session, *conditions: ColumnElement[bool]) -> int:
    query = select_columns(func.coalesce(func.sum(PaymentLedgerEntry.amount_fen), 0)).where(
        *conditions
    )
    # PostgreSQL sums BIGINT into NUMERIC: back to an exact int.
    return int(session.execute(query).scalar_one())


# --- what the contract view and the statistics show -----------------------------------


@dataclass(frozen=True)
class MoneySums:
    received_fen: int = 0
    refunded_fen: int = 0  # positive: money given back
    platform_fee_fen: int = 0
    broker_commission_fen: int = 0
    payouts_fen: int = 0

    def __add__(self, other: MoneySums) -> MoneySums:
        return MoneySums(
            received_fen=self.received_fen + other.received_fen,
            refunded_fen=self.refunded_fen + other.refunded_fen,
            platform_fee_fen=self.platform_fee_fen + other.platform_fee_fen,
            broker_commission_fen=self.broker_commission_fen + other.broker_commission_fen,
            payouts_fen=self.payouts_fen + other.payouts_fen,
        )

    @property
    def net_received_fen(self) -> int:
        """到账额."""
        return self.received_fen - self.refunded_fen

    @property
    def payable_to_seller_fen(self) -> int:
        return (
            self.net_received_fen
            - self.platform_fee_fen
            - self.broker_commission_fen
            - self.payouts_fen
        )


def _counted_rows() -> ColumnElement[bool]:
    """Milestone money and payouts; deposits are kept apart (see the module doc)."""
    milestone_payments = select(Payment.id).where(col(Payment.purpose) == PaymentPurpose.MILESTONE)
    return or_(
        col(PaymentLedgerEntry.kind) == PaymentLedgerKind.PAYOUT_RECORDED,
        col(PaymentLedgerEntry.payment_id).in_(milestone_payments),
    )


def _sums_from(rows: Any) -> MoneySums:
    # Stored signs: received +, refund -, fees -, payouts -; shown as positive amounts.
    by_kind = {str(kind): int(amount) for kind, amount in rows}
    return MoneySums(
        received_fen=by_kind.get(PaymentLedgerKind.RECEIVED, 0),
        refunded_fen=-by_kind.get(PaymentLedgerKind.REFUND, 0),
        platform_fee_fen=-by_kind.get(PaymentLedgerKind.PLATFORM_FEE, 0),
        broker_commission_fen=-by_kind.get(PaymentLedgerKind.BROKER_COMMISSION, 0),
        payouts_fen=-by_kind.get(PaymentLedgerKind.PAYOUT_RECORDED, 0),
    )


def contract_sums(session: Session, contract_id: int) -> MoneySums:
    query = (
        select_columns(col(PaymentLedgerEntry.kind), func.sum(PaymentLedgerEntry.amount_fen))
        .where(and_(col(PaymentLedgerEntry.contract_id) == contract_id, _counted_rows()))
        .group_by(PaymentLedgerEntry.kind)
    )
    return _sums_from(session.execute(query))


def sums_by_period(session: Session, year: int | None, by_month: bool) -> dict[str, MoneySums]:
    """Money by the year (or month) it moved in, China time."""
    group: list[Any] = [col(PaymentLedgerEntry.effective_year)]
    if by_month:
        group.append(col(PaymentLedgerEntry.effective_month))
    columns = [*group, col(PaymentLedgerEntry.kind), func.sum(PaymentLedgerEntry.amount_fen)]
    query = select_columns(*columns).where(_counted_rows())
    if year is not None:
        query = query.where(col(PaymentLedgerEntry.effective_year) == year)
    query = query.group_by(*group, PaymentLedgerEntry.kind)
    grouped: dict[str, list[tuple[str, int]]] = {}
    for row in session.execute(query):
        keys, kind, amount = row[: len(group)], row[len(group)], row[len(group) + 1]
        period = f"{keys[0]}-{keys[1]:02d}" if by_month else str(keys[0])
        grouped.setdefault(period, []).append((kind, amount))
    return {period: _sums_from(rows) for period, rows in sorted(grouped.items())}


def entries_for_contract(session: Session, contract_id: int) -> list[PaymentLedgerEntry]:
    query = (
        select(PaymentLedgerEntry)
        .where(col(PaymentLedgerEntry.contract_id) == contract_id)
        .order_by(col(PaymentLedgerEntry.id))
    )
    return list(session.exec(query))
