"""The trade-volume ledger: append-only movements of 成交额, 技术交易额 and counts.

Only this module writes `ledger_entries`, and only by inserting. Each entry's `sequence`
is the contract's revision after the step that wrote it, so the database's unique
(contract_id, sequence) constraint turns any double write (a retried or concurrent
registration that slipped past the status check) into an error instead of a double
count. Statistics are sums over these entries, which is why "as of" any past date is
just a filter on `recorded_at`.

Each entry is also added, in the same transaction, to the monthly roll-up the dashboard
reads (`market.contracts.rollup`): derived data, rebuildable from this ledger.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from market.common.calendar import market_today, quarter_of
from market.contracts import rollup
from market.contracts.models import Contract, LedgerEntry, LedgerEntryKind
from market.db import utcnow
from market.errors import Conflict


def record_registration(session: Session, contract: Contract, user_id: int) -> LedgerEntry:
    return _append(
        session,
        contract,
        user_id,
        LedgerEntryKind.REGISTRATION,
        contract.total_amount_fen,
        contract.technology_amount_fen,
        1,
    )


def record_change(
    session: Session,
    contract: Contract,
    user_id: int,
    previous_total_fen: int,
    previous_technology_fen: int,
) -> LedgerEntry:
    return _append(
        session,
        contract,
        user_id,
        LedgerEntryKind.CHANGE,
        contract.total_amount_fen - previous_total_fen,
        contract.technology_amount_fen - previous_technology_fen,
        0,
    )


def record_cancellation(session: Session, contract: Contract, user_id: int) -> LedgerEntry:
    """Reverse what the contract counts for now (registration plus every change)."""
    total, technology, count = balance(session, contract.id or 0)
    return _append(
        session, contract, user_id, LedgerEntryKind.CANCELLATION, -total, -technology, -count
    )


def balance(session: Session, contract_id: int) -> tuple[int, int, int]:
    entries = entries_for(session, contract_id)
    return (
        sum(entry.delta_total_fen for entry in entries),
        sum(entry.delta_technology_fen for entry in entries),
        sum(entry.delta_count for entry in entries),
    )


def entries_for(session: Session, contract_id: int) -> list[LedgerEntry]:
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.contract_id == contract_id)
        .order_by(col(LedgerEntry.sequence))
    )
    return list(session.exec(query))


def _append(
    session: Session,
    contract: Contract,
    user_id: int,
    kind: LedgerEntryKind,
    delta_total_fen: int,
    delta_technology_fen: int,
    delta_count: int,
) -> LedgerEntry:
    assert contract.id is not None and contract.registered_on is not None
    effective_on = contract.registered_on
    entry = LedgerEntry(
        contract_id=contract.id,
        sequence=contract.revision,
        kind=kind,
        delta_total_fen=delta_total_fen,
        delta_technology_fen=delta_technology_fen,
        delta_count=delta_count,
        effective_on=effective_on,
        effective_year=effective_on.year,
        effective_quarter=quarter_of(effective_on),
        effective_month=effective_on.month,
        recorded_at=utcnow(),
        recorded_by_user_id=user_id,
        contract_type=contract.contract_type,
        field=contract.field,
        seller_district_code=contract.seller_district_code,
        buyer_district_code=contract.buyer_district_code,
        seller_kind=contract.seller_kind,
        buyer_kind=contract.buyer_kind,
        broker_organization_id=contract.broker_organization_id,
    )
    session.add(entry)
    try:
        session.flush()  # the constraints speak now, inside the request's transaction
    except IntegrityError as error:
        # Only reachable if a status check was bypassed: the database refuses to count
        # a contract twice, and the client gets a 409 rather than a 500.
        raise Conflict(
            "This step is already in the trade-volume ledger", code="already_counted"
        ) from error
    rollup.record(session, entry, market_today(entry.recorded_at))
    return entry
