"""Technology contracts and their registration (认定登记).

The seller side enters a contract (from a won deal, or for a deal made off the
platform), corrects it while it is a draft or after the bureau asked for material
(补正), and submits it. Bureau staff register it (issuing a registration number and
writing the ledger entry), refuse it, or ask for correction; later they may change its
amounts or cancel it, each with a reason. Every status move is a compare-and-set on
(status, revision), so of two concurrent requests only one takes effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from market.audit import service as audit
from market.auth.actor import Actor
from market.auth.organization import Organization, OrganizationKind
from market.common import transitions
from market.common.calendar import market_today
from market.common.pagination import PageParams
from market.contracts import ledger, repository
from market.contracts.models import (
    EDITABLE_STATUSES,
    SUBTYPES_BY_TYPE,
    Contract,
    ContractMilestone,
    ContractStatus,
    ContractType,
)
from market.contracts.schemas import (
    AmountsChange,
    ContractCreate,
    ContractRead,
    ContractTerms,
    CostItem,
    CostRead,
    MilestoneItem,
    MilestoneRead,
)
from market.db import utcnow
from market.deals import service as deals
from market.errors import (
    Conflict,
    DomainError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from market.listings import service as listings
from market.listings.models import ListingKind
from market.outbox import service as outbox

ENTITY = "contract"
# Organisations that can be a party to a technology contract.
PARTY_KINDS = frozenset(
    {OrganizationKind.UNIVERSITY, OrganizationKind.INSTITUTE, OrganizationKind.ENTERPRISE}
)
# Ningbo's administrative prefix starts every registration number issued here.
REGISTRATION_PREFIX = "3302"


class PartyNotVerified(DomainError):
    status = 422
    code = "party_not_verified"
    title = "Party not verified"


# --- reading -------------------------------------------------------------------------


def get_visible(session: Session, actor: Actor, contract_id: int) -> Contract:
    contract = repository.visible_contract(session, actor, contract_id)
    if contract is None:
        raise NotFound(f"Contract {contract_id} not found")
    return contract


def list_visible(
    session: Session, actor: Actor, page: PageParams, status: ContractStatus | None = None
) -> tuple[list[Contract], int]:
    return repository.page_of_contracts(session, actor, page, status)


def read(session: Session, contract: Contract) -> ContractRead:
    assert contract.id is not None
    costs = repository.costs_of(session, contract.id)
    milestones = repository.milestones_of(session, contract.id)
    view = ContractRead.model_validate(contract)
    view.non_technical_costs = [CostRead.model_validate(cost) for cost in costs]
    view.milestones = [MilestoneRead.model_validate(milestone) for milestone in milestones]
    return view


# --- the terms and their checks ------------------------------------------------------


def technology_amount(total_fen: int, costs: Sequence[CostItem], claimed_fen: int | None) -> int:
    """技术交易额 = 成交额 − non-technical costs; a client's own figure must agree."""
    technology_fen = total_fen - sum(cost.amount_fen for cost in costs)
    if technology_fen < 0:
        raise InvalidInput.on(
            "body.non_technical_costs", "non-technical costs exceed the contract total (成交额)"
        )
    if claimed_fen is not None and claimed_fen != technology_fen:
        raise InvalidInput.on(
            "body.technology_amount_fen",
            f"must be 成交额 minus non-technical costs = {technology_fen}",
            code="inconsistent",
        )
    return technology_fen


def _check_milestones(total_fen: int, milestones: Sequence[MilestoneItem]) -> None:
    scheduled = sum(milestone.amount_fen for milestone in milestones)
    if scheduled != total_fen:
        raise InvalidInput.on(
            "body.milestones",
            f"milestone amounts add up to {scheduled} fen, the contract total is {total_fen}",
            code="inconsistent",
        )


def _check_classification(terms: ContractTerms) -> None:
    allowed = SUBTYPES_BY_TYPE[terms.contract_type]
    if allowed and terms.subtype not in allowed:
        names = ", ".join(sorted(allowed))
        raise InvalidInput.on(
            "body.subtype", f"a {terms.contract_type} contract is one of: {names}"
        )
    if not allowed and terms.subtype is not None:
        raise InvalidInput.on("body.subtype", f"a {terms.contract_type} contract has no subtype")
    is_license = terms.contract_type == ContractType.LICENSE
    if is_license and terms.license_scope is None:
        raise InvalidInput.on("body.license_scope", "a licence is 独占, 排他 or 普通")
    if not is_license and terms.license_scope is not None:
        raise InvalidInput.on("body.license_scope", "only a licence has a scope")


def _check_dates(terms: ContractTerms) -> None:
    if terms.term_end < terms.term_start:
        raise InvalidInput.on("body.term_end", "the term ends before it starts")
    if terms.signed_on > market_today():
        raise InvalidInput.on("body.signed_on", "a contract is registered after it is signed")


def _checked_terms(terms: ContractTerms) -> int:
    """Validate the terms as a whole; returns the computed 技术交易额."""
    _check_classification(terms)
    _check_dates(terms)
    _check_milestones(terms.total_amount_fen, terms.milestones)
    return technology_amount(
        terms.total_amount_fen, terms.non_technical_costs, terms.technology_amount_fen
    )


def _term_columns(terms: ContractTerms, technology_fen: int) -> dict[str, Any]:
    return {
        "title": terms.title,
        "contract_type": terms.contract_type,
        "subtype": terms.subtype,
        "license_scope": terms.license_scope,
        "field": terms.field,
        "signed_on": terms.signed_on,
        "term_start": terms.term_start,
        "term_end": terms.term_end,
        "total_amount_fen": terms.total_amount_fen,
        "technology_amount_fen": technology_fen,
    }


def _assign(contract: Contract, columns: dict[str, Any]) -> None:
    for name, value in columns.items():
        setattr(contract, name, value)


def _replace_schedule(
    session: Session,
    contract_id: int,
    costs: Sequence[CostItem],
    milestones: Sequence[MilestoneItem],
) -> None:
    repository.replace_costs(session, contract_id, costs)
    _sync_milestones(session, contract_id, milestones)


def _sync_milestones(
    session: Session, contract_id: int, milestones: Sequence[MilestoneItem]
) -> None:
    """Update milestones in place by position, so payments keep pointing at their row."""
    existing = {row.position: row for row in repository.milestones_of(session, contract_id)}
    for position, item in enumerate(milestones, start=1):
        row = existing.pop(position, None)
        if row is None:
            session.add(
                ContractMilestone(contract_id=contract_id, position=position, **item.model_dump())
            )
        else:
            row.title, row.due_on, row.amount_fen = item.title, item.due_on, item.amount_fen
    for row in existing.values():
        session.delete(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(
            "A milestone that already has a payment cannot be removed", code="milestone_has_payment"
        ) from error


# --- entering and editing ------------------------------------------------------------


def create(session: Session, actor: Actor, data: ContractCreate) -> Contract:
    if actor.organization_kind not in PARTY_KINDS:
        raise Forbidden("The seller side enters a technology contract")
    if not actor.organization_verified:
        raise Forbidden("Your organisation must be verified by the bureau first")
    technology_fen = _checked_terms(data)
    origin = _origin(session, actor, data)
    require_verified_parties(
        session, origin["seller_organization_id"], origin["buyer_organization_id"]
    )
    contract = Contract(
        **origin,
        **_term_columns(data, technology_fen),
        **_party_snapshot(
            session, origin["seller_organization_id"], origin["buyer_organization_id"]
        ),
        created_by_user_id=actor.user_id,
    )
    session.add(contract)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(
            "This deal already has a contract in progress or registered", code="contract_exists"
        ) from error
    assert contract.id is not None
    _replace_schedule(session, contract.id, data.non_technical_costs, data.milestones)
    audit.record(session, actor, ENTITY, contract.id, "created", to_status=ContractStatus.DRAFT)
    return contract


def _origin(session: Session, actor: Actor, data: ContractCreate) -> dict[str, Any]:
    """The parties, listings and broker: from the won deal, or as the seller names them."""
    if data.deal_id is not None:
        deal = deals.won_deal_for_contract(session, actor, data.deal_id)
        for name in ("buyer_organization_id", "result_id", "demand_id"):
            sent = getattr(data, name)
            if sent is not None and sent != getattr(deal, name):
                raise InvalidInput.on(f"body.{name}", "differs from the deal's")
        return {
            "deal_id": deal.id,
            "result_id": deal.result_id,
            "demand_id": deal.demand_id,
            "seller_organization_id": deal.seller_organization_id,
            "buyer_organization_id": deal.buyer_organization_id,
            "broker_user_id": deal.broker_user_id,
            "broker_organization_id": deal.broker_organization_id,
        }
    if data.buyer_organization_id is None:
        raise InvalidInput.on("body.buyer_organization_id", "name the buyer (or give deal_id)")
    if data.buyer_organization_id == actor.organization_id:
        raise InvalidInput.on("body.buyer_organization_id", "seller and buyer must differ")
    buyer = session.get(Organization, data.buyer_organization_id)
    if buyer is None or OrganizationKind(buyer.kind) not in PARTY_KINDS:
        raise InvalidInput.on("body.buyer_organization_id", "no such contracting organisation")
    _check_listing(session, ListingKind.RESULT, data.result_id, actor.organization_id, "result_id")
    _check_listing(session, ListingKind.DEMAND, data.demand_id, buyer.id, "demand_id")
    return {
        "result_id": data.result_id,
        "demand_id": data.demand_id,
        "seller_organization_id": actor.organization_id,
        "buyer_organization_id": buyer.id,
    }


def _check_listing(
    session: Session, kind: ListingKind, listing_id: int | None, owner_id: int | None, name: str
) -> None:
    if listing_id is None:
        return
    try:
        listing = listings.get_for_reference(session, kind, listing_id)
    except NotFound as error:
        raise InvalidInput.on(f"body.{name}", "no such published listing") from error
    if listing.organization_id != owner_id:
        raise InvalidInput.on(f"body.{name}", "this listing belongs to neither party's side")


def _party_snapshot(session: Session, seller_id: int, buyer_id: int) -> dict[str, Any]:
    """The parties' name, kind and district as they are now."""
    seller = session.get(Organization, seller_id)
    buyer = session.get(Organization, buyer_id)
    assert seller is not None and buyer is not None
    return {
        "seller_name": seller.name,
        "seller_kind": str(seller.kind),
        "seller_district_code": seller.district_code,
        "buyer_name": buyer.name,
        "buyer_kind": str(buyer.kind),
        "buyer_district_code": buyer.district_code,
    }


def require_verified_parties(session: Session, seller_id: int, buyer_id: int) -> None:
    """Only organisations the bureau has verified contract and pay: entering, submitting
    and registering a contract, paying it and posting a deposit all ask here, because a
    party may still be pending, or lose its verification, between those steps."""
    for role, organization_id in (("seller", seller_id), ("buyer", buyer_id)):
        organization = session.get(Organization, organization_id)
        if organization is not None and organization.is_verified:
            continue
        name = organization.name if organization else "unknown"
        message = (
            f"The {role}, {name} (organisation {organization_id}), is not verified by the bureau"
        )
        raise PartyNotVerified(
            message,
            errors=[
                FieldProblem(
                    field=f"{role}_organization_id", message=message, code="party_not_verified"
                )
            ],
        )


def _snapshot_parties(session: Session, contract: Contract) -> None:
    _assign(
        contract,
        _party_snapshot(session, contract.seller_organization_id, contract.buyer_organization_id),
    )


def _require_seller(actor: Actor, contract: Contract) -> None:
    if not actor.belongs_to(contract.seller_organization_id):
        raise Forbidden("Only the seller side edits and submits the contract")


def edit(session: Session, actor: Actor, contract_id: int, terms: ContractTerms) -> Contract:
    contract = get_visible(session, actor, contract_id)
    _require_seller(actor, contract)
    if contract.status not in EDITABLE_STATUSES:
        raise InvalidTransition(f"A {contract.status} contract cannot be edited")
    # An edit racing a submission lands before it or is refused, never after it.
    transitions.claim(
        session,
        contract,
        also=(col(Contract.revision) == contract.revision,),
        lost="The contract changed meanwhile; reload it and try again",
    )
    technology_fen = _checked_terms(terms)
    _assign(contract, _term_columns(terms, technology_fen))
    contract.updated_at = utcnow()
    assert contract.id is not None
    _replace_schedule(session, contract.id, terms.non_technical_costs, terms.milestones)
    audit.record(
        session,
        actor,
        ENTITY,
        contract.id,
        "edited",
        from_status=contract.status,
        to_status=contract.status,
    )
    return contract


# --- the registration workflow -------------------------------------------------------


def submit(session: Session, actor: Actor, contract_id: int, note: str) -> Contract:
    contract = get_visible(session, actor, contract_id)
    _require_seller(actor, contract)
    require_verified_parties(
        session, contract.seller_organization_id, contract.buyer_organization_id
    )
    _snapshot_parties(session, contract)
    previous = _move(
        session,
        contract,
        EDITABLE_STATUSES,
        ContractStatus.SUBMITTED,
        submitted_at=utcnow(),
        status_reason="",
    )
    audit.record(
        session,
        actor,
        ENTITY,
        contract.id,
        "submitted",
        from_status=previous,
        to_status=ContractStatus.SUBMITTED,
        reason=note,
    )
    outbox.enqueue(session, "contract.submitted", ENTITY, contract_id)
    return contract


def register(session: Session, actor: Actor, contract_id: int, note: str) -> Contract:
    contract = _for_bureau(session, actor, contract_id)
    require_verified_parties(
        session, contract.seller_organization_id, contract.buyer_organization_id
    )
    # The kind and district the statistics count under are those at registration.
    _snapshot_parties(session, contract)
    today = market_today()
    previous = _move(
        session,
        contract,
        (ContractStatus.SUBMITTED,),
        ContractStatus.REGISTERED,
        registered_on=today,
        registered_at=utcnow(),
        registered_by_user_id=actor.user_id,
        status_reason="",
        revision=col(Contract.revision) + 1,
    )
    contract.registration_number = _next_registration_number(session, today.year)
    session.flush()
    ledger.record_registration(session, contract, actor.user_id)
    deals.mark_listings_transacted(session, contract.result_id, contract.demand_id)
    audit.record(
        session,
        actor,
        ENTITY,
        contract.id,
        "registered",
        from_status=previous,
        to_status=ContractStatus.REGISTERED,
        reason=note,
        details={"registration_number": contract.registration_number},
    )
    outbox.enqueue(session, "contract.registered", ENTITY, contract_id)
    return contract


def refuse(session: Session, actor: Actor, contract_id: int, reason: str) -> Contract:
    contract = _for_bureau(session, actor, contract_id)
    previous = _move(
        session, contract, (ContractStatus.SUBMITTED,), ContractStatus.REFUSED, status_reason=reason
    )
    audit.record(
        session,
        actor,
        ENTITY,
        contract.id,
        "refused",
        from_status=previous,
        to_status=ContractStatus.REFUSED,
        reason=reason,
    )
    outbox.enqueue(session, "contract.refused", ENTITY, contract_id)
    return contract


def request_correction(session: Session, actor: Actor, contract_id: int, reason: str) -> Contract:
    contract = _for_bureau(session, actor, contract_id)
    previous = _move(
        session,
        contract,
        (ContractStatus.SUBMITTED,),
        ContractStatus.NEEDS_CORRECTION,
        status_reason=reason,
    )
    audit.record(
        session,
        actor,
        ENTITY,
        contract.id,
        "correction_requested",
        from_status=previous,
        to_status=ContractStatus.NEEDS_CORRECTION,
        reason=reason,
    )
    outbox.enqueue(session, "contract.needs_correction", ENTITY, contract_id)
    return contract


def change_amounts(
    session: Session, actor: Actor, contract_id: int, change: AmountsChange
) -> Contract:
    contract = _for_bureau(session, actor, contract_id)
    _check_milestones(change.total_amount_fen, change.milestones)
    technology_fen = technology_amount(
        change.total_amount_fen, change.non_technical_costs, change.technology_amount_fen
    )
    previous_total, previous_technology = contract.total_amount_fen, contract.technology_amount_fen
    _move(
        session,
        contract,
        (ContractStatus.REGISTERED,),
        ContractStatus.REGISTERED,
        total_amount_fen=change.total_amount_fen,
        technology_amount_fen=technology_fen,
        status_reason=change.reason,
        revision=col(Contract.revision) + 1,
    )
    assert contract.id is not None
    _replace_schedule(session, contract.id, change.non_technical_costs, change.milestones)
    entry = ledger.record_change(
        session, contract, actor.user_id, previous_total, previous_technology
    )
    audit.record(
        session,
        actor,
        ENTITY,
        contract.id,
        "changed",
        from_status=ContractStatus.REGISTERED,
        to_status=ContractStatus.REGISTERED,
        reason=change.reason,
        details={
            "delta_total_fen": entry.delta_total_fen,
            "delta_technology_fen": entry.delta_technology_fen,
        },
    )
    return contract


def cancel(session: Session, actor: Actor, contract_id: int, reason: str) -> Contract:
    contract = _for_bureau(session, actor, contract_id)
    previous = _move(
        session,
        contract,
        (ContractStatus.REGISTERED,),
        ContractStatus.CANCELLED,
        status_reason=reason,
        revision=col(Contract.revision) + 1,
    )
    ledger.record_cancellation(session, contract, actor.user_id)
    audit.record(
        session,
        actor,
        ENTITY,
        contract.id,
        "cancelled",
        from_status=previous,
        to_status=ContractStatus.CANCELLED,
        reason=reason,
    )
    outbox.enqueue(session, "contract.cancelled", ENTITY, contract_id)
    return contract


def _for_bureau(session: Session, actor: Actor, contract_id: int) -> Contract:
    if not actor.is_bureau:
        raise Forbidden("Only science and technology bureau staff register contracts")
    return get_visible(session, actor, contract_id)


def _move(
    session: Session,
    contract: Contract,
    allowed_from: Sequence[ContractStatus],
    to: ContractStatus,
    **values: Any,
) -> ContractStatus:
    """Compare-and-set on (status, revision): fails with 409 if another request moved
    or changed it first."""
    current = ContractStatus(contract.status)
    if current not in allowed_from:
        raise InvalidTransition(f"A {current} contract cannot become {to}")
    transitions.move(
        session,
        contract,
        {"status": to, "updated_at": utcnow(), **values},
        also=(col(Contract.revision) == contract.revision,),
        lost="The contract changed meanwhile; reload it and try again",
    )
    return current


def _next_registration_number(session: Session, year: int) -> str:
    """ "3302" + year + the year's next number in six digits."""
    number = repository.take_registration_number(session, year)
    return f"{REGISTRATION_PREFIX}{year}{number:06d}"
