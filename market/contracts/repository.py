"""The contracts' queries: who sees a contract, its schedule, the registration counter.

A contract is seen by whom its deal would be seen (the parties, the broker's agency,
bureau staff), so the scope is the deals' one (`party_scope`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from market.auth.actor import Actor
from market.common.pagination import PageParams
from market.contracts.models import (
    Contract,
    ContractCost,
    ContractMilestone,
    ContractStatus,
    RegistrationCounter,
)
from market.contracts.schemas import CostItem
from market.deals import repository as deals


def visible_contract(session: Session, actor: Actor, contract_id: int) -> Contract | None:
    return deals.visible_party_record(session, Contract, actor, contract_id)


def page_of_contracts(
    session: Session, actor: Actor, page: PageParams, status: ContractStatus | None
) -> tuple[list[Contract], int]:
    conditions = [] if status is None else [col(Contract.status) == status]
    return deals.page_of_party_records(session, Contract, actor, page, *conditions)


# --- the schedule: non-technical costs and payment milestones --------------------------


def costs_of(session: Session, contract_id: int) -> list[ContractCost]:
    query = (
        select(ContractCost)
        .where(col(ContractCost.contract_id) == contract_id)
        .order_by(col(ContractCost.position))
    )
    return list(session.exec(query))


def milestones_of(session: Session, contract_id: int) -> list[ContractMilestone]:
    """The payment schedule in its order; payments read it too."""
    query = (
        select(ContractMilestone)
        .where(col(ContractMilestone.contract_id) == contract_id)
        .order_by(col(ContractMilestone.position))
    )
    return list(session.exec(query))


def replace_costs(session: Session, contract_id: int, costs: Sequence[CostItem]) -> None:
    """Costs have nothing pointing at them, so they are written anew, numbered from 1."""
    session.execute(delete(ContractCost).where(col(ContractCost.contract_id) == contract_id))
    for position, cost in enumerate(costs, start=1):
        session.add(ContractCost(contract_id=contract_id, position=position, **cost.model_dump()))


# --- registration numbers --------------------------------------------------------------


def take_registration_number(session: Session, year: int) -> int:
    """The year's next number, from a per-year counter row.

    The UPDATE locks the year's row until commit, so concurrent registrations take
    numbers one after the other; a rolled-back registration gives its number back.
    """
    if not _bump_counter(session, year):
        try:
            with session.begin_nested():
                session.add(RegistrationCounter(year=year, last_number=0))
                session.flush()
        except IntegrityError:
            pass  # another registration created the year's row first
        _bump_counter(session, year)
    query = select(RegistrationCounter.last_number).where(RegistrationCounter.year == year)
    return session.exec(query).one()


def _bump_counter(session: Session, year: int) -> bool:
    bumped = session.execute(
        update(RegistrationCounter)
        .where(col(RegistrationCounter.year) == year)
        .values(last_number=col(RegistrationCounter.last_number) + 1)
    )
    return bool(bumped.rowcount)  # type: ignore[attr-defined]
