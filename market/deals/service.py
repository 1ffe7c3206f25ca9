"""Interests, proposals and deals: who may do what, and how listings follow.

Visibility is decided by the queries (deals/repository.py): an interest or proposal is
seen by the two organisations involved, by brokers (whose job is to follow up stale
approaches) and by bureau staff; a deal only by its two parties, its broker's agency and
bureau staff. Anyone else gets a 404, as if the row did not exist.

Answers to approaches and deal stages move by compare-and-set (market.common.
transitions): of parallel answers one is recorded, the others get a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from market.audit import service as audit
from market.auth.actor import Actor
from market.auth.models import Role, User
from market.auth.organization import (
    DEMAND_KINDS,
    SUPPLY_KINDS,
    Organization,
    OrganizationKind,
)
from market.common import transitions
from market.common.pagination import PageParams
from market.db import utcnow
from market.deals import repository
from market.deals.models import (
    NEXT_STAGE,
    OPEN_STAGES,
    Deal,
    DealEvent,
    DealEventKind,
    DealStage,
    Interest,
    OutreachBase,
    OutreachStatus,
    Proposal,
)
from market.deals.repository import OutreachT
from market.deals.schemas import DealCreate, Decline, InterestCreate, ProposalCreate, StageChange
from market.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from market.listings import service as listings
from market.listings.models import ListingKind, ListingStatus
from market.outbox import service as outbox

DEFAULT_STALE_AFTER_DAYS = 7
ENTITY_BY_MODEL: dict[type[OutreachBase], str] = {Interest: "interest", Proposal: "proposal"}


# --- shared checks -------------------------------------------------------------------


def _require_verified(actor: Actor) -> None:
    if not actor.organization_verified:
        raise Forbidden("Your organisation must be verified by the bureau first")


def acts_as_broker(actor: Actor) -> bool:
    return actor.is_broker or actor.organization_kind == OrganizationKind.BROKER_AGENCY


def _sees_every_approach(actor: Actor) -> bool:
    # Following up stale approaches is a broker's job, so brokers see them all.
    return actor.is_bureau or acts_as_broker(actor)


# --- interests and proposals ---------------------------------------------------------


def express_interest(
    session: Session, actor: Actor, result_id: int, data: InterestCreate
) -> Interest:
    """An enterprise tells a result's holder that it wants the technology."""
    if actor.organization_kind not in DEMAND_KINDS:
        raise Forbidden("Only enterprises express interest in results")
    _require_verified(actor)
    result = listings.get_for_reference(session, ListingKind.RESULT, result_id)
    _require_open_listing(result.status)
    interest = Interest(
        result_id=result_id,
        owner_organization_id=result.organization_id,
        organization_id=actor.organization_id,
        created_by_user_id=actor.user_id,
        message=data.message,
    )
    return _add_outreach(session, actor, interest)


def propose(session: Session, actor: Actor, demand_id: int, data: ProposalCreate) -> Proposal:
    """揭榜: a university or institute answers an enterprise's demand."""
    if actor.organization_kind not in SUPPLY_KINDS:
        raise Forbidden("Only universities and institutes answer demands")
    _require_verified(actor)
    demand = listings.get_for_reference(session, ListingKind.DEMAND, demand_id)
    _require_open_listing(demand.status)
    proposal = Proposal(
        demand_id=demand_id,
        owner_organization_id=demand.organization_id,
        organization_id=actor.organization_id,
        created_by_user_id=actor.user_id,
        message=data.message,
        quoted_price_fen=data.quoted_price_fen,
    )
    return _add_outreach(session, actor, proposal)


def _require_open_listing(status: str) -> None:
    if status == ListingStatus.TRANSACTED:
        raise InvalidTransition("This listing has already been transacted")


def _add_outreach(session: Session, actor: Actor, outreach: OutreachT) -> OutreachT:
    if outreach.owner_organization_id == actor.organization_id:
        raise InvalidInput.on("path", "this listing is your own organisation's")
    session.add(outreach)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        # The partial unique index: one pending approach per organisation and listing.
        raise Conflict(
            "Your organisation already has an unanswered approach on this listing",
            code="already_pending",
        ) from error
    assert outreach.id is not None
    entity = ENTITY_BY_MODEL[type(outreach)]
    audit.record(session, actor, entity, outreach.id, "created", to_status=OutreachStatus.PENDING)
    outbox.enqueue(
        session,
        f"{entity}.created",
        entity,
        outreach.id,
        {"owner_organization_id": outreach.owner_organization_id},
    )
    return outreach


def get_outreach(
    session: Session, actor: Actor, model: type[OutreachT], outreach_id: int
) -> OutreachT:
    outreach = repository.visible_outreach(
        session, model, actor, outreach_id, sees_all=_sees_every_approach(actor)
    )
    if outreach is None:
        raise NotFound(f"{ENTITY_BY_MODEL[model].capitalize()} {outreach_id} not found")
    return outreach


def list_outreach(
    session: Session,
    actor: Actor,
    model: type[OutreachT],
    page: PageParams,
    *,
    status: OutreachStatus | None = None,
    stale_after_days: int | None = None,
) -> tuple[list[OutreachT], int]:
    """Approaches the actor may see, newest first; or the stale ones, oldest first."""
    sees_all = _sees_every_approach(actor)
    if stale_after_days is None:
        return repository.page_of_outreach(
            session, model, actor, page, sees_all=sees_all, status=status
        )
    return repository.page_of_stale_outreach(
        session,
        model,
        actor,
        page,
        sees_all=sees_all,
        created_before=utcnow() - timedelta(days=stale_after_days),
    )


def accept(session: Session, actor: Actor, model: type[OutreachT], outreach_id: int) -> OutreachT:
    outreach = _answerable(session, actor, model, outreach_id)
    return _answer(session, actor, outreach, OutreachStatus.ACCEPTED)


def decline(
    session: Session, actor: Actor, model: type[OutreachT], outreach_id: int, data: Decline
) -> OutreachT:
    outreach = _answerable(session, actor, model, outreach_id)
    return _answer(
        session,
        actor,
        outreach,
        OutreachStatus.DECLINED,
        decline_reason=data.reason,
        decline_note=data.note,
    )


def _answerable(
    session: Session, actor: Actor, model: type[OutreachT], outreach_id: int
) -> OutreachT:
    outreach = get_outreach(session, actor, model, outreach_id)
    if not actor.belongs_to(outreach.owner_organization_id):
        raise Forbidden("Only the listing's owner answers this")
    if outreach.status != OutreachStatus.PENDING:
        raise InvalidTransition(f"This was already {outreach.status}")
    return outreach


def _answer(
    session: Session, actor: Actor, outreach: OutreachT, to: OutreachStatus, **columns: Any
) -> OutreachT:
    # Compare-and-set from pending: of answers sent at once only the first is recorded.
    transitions.move(
        session,
        outreach,
        {
            "status": to,
            "responded_at": utcnow(),
            "responded_by_user_id": actor.user_id,
            **columns,
        },
        lost="Someone answered this meanwhile; reload it",
    )
    assert outreach.id is not None
    entity = ENTITY_BY_MODEL[type(outreach)]
    audit.record(
        session,
        actor,
        entity,
        outreach.id,
        str(to),
        from_status=OutreachStatus.PENDING,
        to_status=to,
        reason=outreach.decline_note,
        details={"decline_reason": outreach.decline_reason},
    )
    outbox.enqueue(
        session,
        f"{entity}.{to}",
        entity,
        outreach.id,
        {"organization_id": outreach.organization_id},
    )
    return outreach


# --- deals ---------------------------------------------------------------------------


@dataclass
class _Parties:
    seller_organization_id: int
    buyer_organization_id: int
    result_id: int | None = None
    demand_id: int | None = None
    interest_id: int | None = None
    proposal_id: int | None = None


def get_deal(session: Session, actor: Actor, deal_id: int) -> Deal:
    deal = repository.visible_deal(session, actor, deal_id)
    if deal is None:
        raise NotFound(f"Deal {deal_id} not found")
    return deal


def list_deals(
    session: Session, actor: Actor, page: PageParams, stage: DealStage | None = None
) -> tuple[list[Deal], int]:
    return repository.page_of_deals(session, actor, page, stage)


def events(session: Session, actor: Actor, deal_id: int) -> list[DealEvent]:
    get_deal(session, actor, deal_id)
    return repository.events_of_deal(session, deal_id)


def open_deal(session: Session, actor: Actor, data: DealCreate) -> Deal:
    if actor.is_bureau:
        raise Forbidden("Bureau staff watch deals; brokers and the parties open them")
    _require_verified(actor)
    parties = _resolve_parties(session, actor, data)
    if not (
        acts_as_broker(actor)
        or actor.organization_id in (parties.seller_organization_id, parties.buyer_organization_id)
    ):
        raise Forbidden("Only a broker or one of the two parties opens a deal")
    broker_user_id, broker_organization_id = _introducing_broker(session, actor, data)
    deal = Deal(
        title=data.title,
        seller_organization_id=parties.seller_organization_id,
        buyer_organization_id=parties.buyer_organization_id,
        result_id=parties.result_id,
        demand_id=parties.demand_id,
        interest_id=parties.interest_id,
        proposal_id=parties.proposal_id,
        broker_user_id=broker_user_id,
        broker_organization_id=broker_organization_id,
        opened_by_user_id=actor.user_id,
    )
    session.add(deal)
    session.flush()
    assert deal.id is not None
    _append_event(session, actor, deal.id, DealEventKind.OPENED, None, DealStage.LEAD, data.note)
    audit.record(
        session,
        actor,
        "deal",
        deal.id,
        "opened",
        to_status=DealStage.LEAD,
        details={"broker_user_id": broker_user_id},
    )
    _mark_listings_in_negotiation(session, deal)
    outbox.enqueue(session, "deal.opened", "deal", deal.id)
    return deal


def _resolve_parties(session: Session, actor: Actor, data: DealCreate) -> _Parties:
    if data.interest_id is not None and data.proposal_id is not None:
        raise InvalidInput.on("body.proposal_id", "a deal comes from one interest or one proposal")
    if data.interest_id is not None:
        parties = _parties_from_interest(session, actor, data.interest_id)
    elif data.proposal_id is not None:
        parties = _parties_from_proposal(session, actor, data.proposal_id)
    else:
        parties = _parties_named(data)
    _merge_listing(parties, "result_id", data.result_id)
    _merge_listing(parties, "demand_id", data.demand_id)
    if parties.result_id is None and parties.demand_id is None:
        raise InvalidInput.on("body.result_id", "a deal is about a result and/or a demand")
    for field, organization_id in (
        ("body.seller_organization_id", parties.seller_organization_id),
        ("body.buyer_organization_id", parties.buyer_organization_id),
    ):
        _require_verified_organization(session, field, organization_id)
    _check_listing_owners(session, parties)
    return parties


def _parties_from_interest(session: Session, actor: Actor, interest_id: int) -> _Parties:
    interest = get_outreach(session, actor, Interest, interest_id)
    if interest.status == OutreachStatus.DECLINED:
        raise InvalidTransition("A declined interest cannot become a deal")
    return _Parties(
        seller_organization_id=interest.owner_organization_id,
        buyer_organization_id=interest.organization_id,
        result_id=interest.result_id,
        interest_id=interest.id,
    )


def _parties_from_proposal(session: Session, actor: Actor, proposal_id: int) -> _Parties:
    proposal = get_outreach(session, actor, Proposal, proposal_id)
    if proposal.status == OutreachStatus.DECLINED:
        raise InvalidTransition("A declined proposal cannot become a deal")
    return _Parties(
        seller_organization_id=proposal.organization_id,
        buyer_organization_id=proposal.owner_organization_id,
        demand_id=proposal.demand_id,
        proposal_id=proposal.id,
    )


def _parties_named(data: DealCreate) -> _Parties:
    if data.seller_organization_id is None:
        raise InvalidInput.on("body.seller_organization_id", "name the seller organisation")
    if data.buyer_organization_id is None:
        raise InvalidInput.on("body.buyer_organization_id", "name the buyer organisation")
    if data.seller_organization_id == data.buyer_organization_id:
        raise InvalidInput.on("body.buyer_organization_id", "seller and buyer must differ")
    return _Parties(data.seller_organization_id, data.buyer_organization_id)


def _merge_listing(parties: _Parties, name: str, requested: int | None) -> None:
    current = getattr(parties, name)
    if requested is None:
        return
    if current is not None and current != requested:
        raise InvalidInput.on(f"body.{name}", "differs from the one the approach was about")
    setattr(parties, name, requested)


def _require_verified_organization(session: Session, field: str, organization_id: int) -> None:
    organization = session.get(Organization, organization_id)
    if organization is None or not organization.is_verified:
        raise InvalidInput.on(field, f"no verified organisation {organization_id}")


def _check_listing_owners(session: Session, parties: _Parties) -> None:
    """The result must be the seller's and the demand the buyer's."""
    if parties.result_id is not None:
        result = listings.get_for_reference(session, ListingKind.RESULT, parties.result_id)
        if result.organization_id != parties.seller_organization_id:
            raise InvalidInput.on("body.result_id", "this result is not the seller's")
    if parties.demand_id is not None:
        demand = listings.get_for_reference(session, ListingKind.DEMAND, parties.demand_id)
        if demand.organization_id != parties.buyer_organization_id:
            raise InvalidInput.on("body.demand_id", "this demand is not the buyer's")


def _introducing_broker(
    session: Session, actor: Actor, data: DealCreate
) -> tuple[int | None, int | None]:
    """The broker credited with the deal: the opener if a broker, else whom the parties name."""
    if acts_as_broker(actor):
        if data.broker_user_id not in (None, actor.user_id):
            raise InvalidInput.on("body.broker_user_id", "a broker opens deals in their own name")
        return actor.user_id, actor.organization_id
    if data.broker_user_id is None:
        return None, None
    broker = session.get(User, data.broker_user_id)
    if broker is None or broker.role != Role.BROKER or not broker.is_active:
        raise InvalidInput.on("body.broker_user_id", "no active broker with this id")
    assert broker.id is not None
    return broker.id, broker.organization_id


def _listing_refs(deal: Deal) -> list[tuple[ListingKind, int]]:
    refs = []
    if deal.result_id is not None:
        refs.append((ListingKind.RESULT, deal.result_id))
    if deal.demand_id is not None:
        refs.append((ListingKind.DEMAND, deal.demand_id))
    return refs


def _mark_listings_in_negotiation(session: Session, deal: Deal) -> None:
    for kind, listing_id in _listing_refs(deal):
        listings.hold_for_deals(session, kind, listing_id)
        listing = listings.get_for_reference(session, kind, listing_id)
        # A listing already in negotiation (another deal) or transacted stays as it is.
        if listing.status == ListingStatus.PUBLISHED:
            listings.mark_in_negotiation(session, kind, listing_id)


def _reopen_listings_without_open_deals(session: Session, deal: Deal) -> None:
    for kind, listing_id in _listing_refs(deal):
        # Two deals on one listing lost at once must not each count the other as open.
        listings.hold_for_deals(session, kind, listing_id)
        assert deal.id is not None
        if repository.other_deals_not_lost(session, kind, listing_id, deal.id):
            continue
        try:
            listing = listings.get_for_reference(session, kind, listing_id)
        except NotFound:
            continue  # withdrawn or expired meanwhile: nothing to reopen
        if listing.status == ListingStatus.IN_NEGOTIATION:
            listings.reopen_after_deal_lost(session, kind, listing_id)


def mark_listings_transacted(
    session: Session, result_id: int | None, demand_id: int | None
) -> None:
    """Called by contracts when a contract about these listings is registered."""
    for kind, listing_id in (
        (ListingKind.RESULT, result_id),
        (ListingKind.DEMAND, demand_id),
    ):
        if listing_id is None:
            continue
        try:
            listing = listings.get_for_reference(session, kind, listing_id)
        except NotFound:
            continue
        if listing.status != ListingStatus.TRANSACTED:
            listings.mark_transacted(session, kind, listing_id)


def _require_participant(actor: Actor, deal: Deal) -> None:
    """Parties and the broker's agency work a deal; bureau staff only watch it."""
    if actor.is_bureau or actor.organization_id not in (
        deal.seller_organization_id,
        deal.buyer_organization_id,
        deal.broker_organization_id,
    ):
        raise Forbidden("Only the parties and the broker work on a deal")


def change_stage(session: Session, actor: Actor, deal_id: int, change: StageChange) -> Deal:
    deal = get_deal(session, actor, deal_id)
    _require_participant(actor, deal)
    current = DealStage(deal.stage)
    _check_transition(current, change)
    now = utcnow()
    values: dict[str, Any] = {"stage": change.stage, "updated_at": now}
    if change.stage in (DealStage.WON, DealStage.LOST):
        values["closed_at"] = now
    if change.stage == DealStage.LOST:
        values["lost_reason"] = change.lost_reason
        values["lost_note"] = change.note
    transitions.move(
        session,
        deal,
        values,
        state="stage",
        lost="The deal changed meanwhile; reload it and try again",
    )
    _append_event(
        session, actor, deal_id, DealEventKind.STAGE_CHANGED, current, change.stage, change.note
    )
    audit.record(
        session,
        actor,
        "deal",
        deal_id,
        "stage_changed",
        from_status=current,
        to_status=change.stage,
        reason=change.note,
        details={"lost_reason": change.lost_reason},
    )
    if change.stage == DealStage.LOST:
        _reopen_listings_without_open_deals(session, deal)
    outbox.enqueue(session, "deal.stage_changed", "deal", deal_id, {"stage": change.stage})
    return deal


def _check_transition(current: DealStage, change: StageChange) -> None:
    if change.stage == DealStage.LOST:
        if current not in OPEN_STAGES:
            raise InvalidTransition(f"A {current} deal cannot be lost")
        if change.lost_reason is None:
            raise InvalidInput.on("body.lost_reason", "say why the deal was lost")
        return
    if NEXT_STAGE.get(current) != change.stage:
        raise InvalidTransition(
            f"A deal moves from {current} to {NEXT_STAGE.get(current)}, not to {change.stage}"
        )
    if change.lost_reason is not None:
        raise InvalidInput.on("body.lost_reason", "only a lost deal has a lost reason")


def add_note(session: Session, actor: Actor, deal_id: int, note: str) -> DealEvent:
    deal = get_deal(session, actor, deal_id)
    _require_participant(actor, deal)
    event = _append_event(session, actor, deal_id, DealEventKind.NOTE, None, None, note)
    deal.updated_at = utcnow()
    session.flush()
    return event


def rename(session: Session, actor: Actor, deal_id: int, title: str | None) -> Deal:
    deal = get_deal(session, actor, deal_id)
    _require_participant(actor, deal)
    if title is not None:
        deal.title = title
        deal.updated_at = utcnow()
    return deal


def _append_event(
    session: Session,
    actor: Actor,
    deal_id: int,
    kind: DealEventKind,
    from_stage: DealStage | None,
    to_stage: DealStage | None,
    note: str,
) -> DealEvent:
    event = DealEvent(
        deal_id=deal_id,
        kind=kind,
        from_stage=from_stage,
        to_stage=to_stage,
        note=note,
        actor_user_id=actor.user_id,
        actor_organization_id=actor.organization_id,
    )
    session.add(event)
    return event


def won_deal_for_contract(session: Session, actor: Actor, deal_id: int) -> Deal:
    """The won deal a contract is entered from; the seller side enters it."""
    deal = get_deal(session, actor, deal_id)
    if deal.stage != DealStage.WON:
        raise InvalidTransition("A contract is entered from a won deal")
    if not actor.belongs_to(deal.seller_organization_id):
        raise Forbidden("The seller side enters the contract")
    return deal
