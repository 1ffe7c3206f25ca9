"""The catalogue's rules: who may do what to a listing, and its lifecycle.

    draft ──submit──▶ submitted ──approve──▶ published ──withdraw──▶ withdrawn
      ▲                   │                   │   ▲  ╲──(validity ends)──▶ expired
      └──edit── rejected ◀┘reject             ▼   │reopen_after_deal_lost
              (resubmit)                 in_negotiation ──▶ transacted

Every transition is a compare-and-set from the state it was decided on
(market.common.transitions), so of parallel requests one wins, and only the winner
records the audit event. Every change of a listing (creation, edit, deletion of a
draft, any transition) also writes a "listing.changed" outbox row in the same
transaction: the search index holds every listing, and search shows each caller
what the catalogue would (owners find their drafts, the public only published ones).
A published listing is not edited in place: what the bureau approved is what the
public sees; the owner withdraws it and submits a revised copy.

Visibility: the public sees PUBLIC_STATUSES; an organisation also sees its own
listings in any status; bureau staff see everything. A listing the actor cannot see is
a 404; one it sees but may not change is a 403.

Other domains call `mark_in_negotiation`, `mark_transacted`, `reopen_after_deal_lost`,
`hold_for_deals` and `get_for_reference`; expiry is `expire_due_listings` (also
re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from difflib import SequenceMatcher
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from market.audit import service as audit
from market.audit.models import AuditEvent
from market.auth.actor import Actor
from market.auth.organization import DEMAND_KINDS, SUPPLY_KINDS
from market.common import transitions
from market.common.calendar import market_today
from market.common.codes import join_codes
from market.common.pagination import PageParams
from market.common.text import comparable_title
from market.db import utcnow
from market.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Unauthorized,
)
from market.listings import expiry, repository, validation
from market.listings.expiry import LISTING_CHANGED, expire_due_listings
from market.listings.models import (
    EDITABLE_STATUSES,
    PUBLIC_STATUSES,
    Demand,
    Listing,
    ListingKind,
    ListingStatus,
    Result,
)
from market.listings.schemas import (
    DemandCreate,
    DemandFilters,
    DemandUpdate,
    ResultCreate,
    ResultFilters,
    ResultUpdate,
    ReviewDecision,
    ReviewDecisionKind,
)
from market.organizations import service as organizations
from market.outbox import service as outbox

__all__ = [
    "expire_due_listings",
    "get_for_reference",
    "hold_for_deals",
    "mark_in_negotiation",
    "mark_transacted",
    "reopen_after_deal_lost",
]

# Titles at least this similar (difflib ratio over comparable_title) are flagged.
SIMILAR_TITLE_RATIO = 0.9
MAX_SIMILAR_TITLE_FLAGS = 5
_CODE_COLUMNS = ("ipc_codes", "transfer_modes", "cooperation_modes")
_MAKERS = {ListingKind.RESULT: SUPPLY_KINDS, ListingKind.DEMAND: DEMAND_KINDS}
_KIND_NAMES = {ListingKind.RESULT: "research results", ListingKind.DEMAND: "technology demands"}


# --- creating and editing -------------------------------------------------------------


def create_result(session: Session, actor: Actor, data: ResultCreate) -> Result:
    _require_maker(actor, ListingKind.RESULT)
    result = Result(**_new_listing_values(session, actor, data.model_dump()))
    validation.raise_if_any(validation.result_problems(result, market_today()))
    _ensure_patent_not_listed(session, result)
    return _add(session, actor, ListingKind.RESULT, result)


def create_demand(session: Session, actor: Actor, data: DemandCreate) -> Demand:
    _require_maker(actor, ListingKind.DEMAND)
    demand = Demand(**_new_listing_values(session, actor, data.model_dump()))
    validation.raise_if_any(validation.demand_problems(demand, market_today()))
    return _add(session, actor, ListingKind.DEMAND, demand)


def update_listing(
    session: Session,
    actor: Actor,
    kind: ListingKind,
    listing_id: int,
    changes: ResultUpdate | DemandUpdate,
) -> Listing:
    listing = _owned(session, actor, kind, listing_id)
    _require_status(listing, EDITABLE_STATUSES, "edited (withdraw it and submit a revised copy)")
    # A submission racing the edit waits for it; an edit after a submission is refused.
    transitions.claim(session, listing)
    values = _as_columns(changes.model_dump(exclude_unset=True))
    for name, value in values.items():
        setattr(listing, name, value)
    validation.raise_if_any(_record_problems(listing, market_today()))
    if isinstance(listing, Result):
        _ensure_patent_not_listed(session, listing)
    listing.updated_at = utcnow()
    audit.record(
        session,
        actor,
        kind.value,
        listing.id,
        "listing.updated",
        details={"fields": sorted(values)},
    )
    _announce(session, kind, listing)
    return listing


def delete_draft(session: Session, actor: Actor, kind: ListingKind, listing_id: int) -> None:
    listing = _owned(session, actor, kind, listing_id)
    _require_status(listing, (ListingStatus.DRAFT,), "deleted (only drafts can be; withdraw it)")
    transitions.claim(session, listing)
    audit.record(
        session, actor, kind.value, listing.id, "listing.deleted", from_status=ListingStatus.DRAFT
    )
    _announce(session, kind, listing)  # the worker finds no row and drops the document
    session.delete(listing)


def _require_maker(actor: Actor, kind: ListingKind) -> None:
    if actor.organization_kind not in _MAKERS[kind]:
        makers = ", ".join(sorted(_MAKERS[kind]))
        raise Forbidden(
            f"Only members of a {makers} can post {_KIND_NAMES[kind]}; "
            f"yours is a {actor.organization_kind}",
            code="wrong_organization_kind",
        )


def _new_listing_values(session: Session, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    values = _as_columns(values)
    if values.get("district_code") is None:
        owner = organizations.get_visible(session, actor, actor.organization_id)
        values["district_code"] = owner.district_code
    return {
        **values,
        "organization_id": actor.organization_id,
        "created_by_user_id": actor.user_id,
        "status": ListingStatus.DRAFT,
    }


def _as_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Lists of codes become the "|"-delimited column format."""
    return {
        name: join_codes(value) if name in _CODE_COLUMNS else value
        for name, value in values.items()
    }


# A new result comes back a Result, a new demand a Demand.
NewListingT = TypeVar("NewListingT", Result, Demand)


def _add(session: Session, actor: Actor, kind: ListingKind, listing: NewListingT) -> NewListingT:
    session.add(listing)
    session.flush()
    audit.record(
        session, actor, kind.value, listing.id, "listing.created", to_status=ListingStatus.DRAFT
    )
    _announce(session, kind, listing)
    return listing


def _record_problems(listing: Listing, today: date) -> list[Any]:
    if isinstance(listing, Result):
        return validation.result_problems(listing, today)
    return validation.demand_problems(listing, today)


# --- the lifecycle ----------------------------------------------------------------------


def submit(session: Session, actor: Actor, kind: ListingKind, listing_id: int) -> Listing:
    listing = _owned(session, actor, kind, listing_id)
    if not actor.organization_verified:
        raise Forbidden(
            "Your organisation must be verified by the bureau before it can submit listings; "
            "drafts can be prepared meanwhile",
            code="organization_not_verified",
        )
    _require_status(listing, EDITABLE_STATUSES, "submitted")
    # Claimed (and reloaded) before the checks: an edit racing the submission either
    # lands first and is checked here, or waits and is refused.
    transitions.claim(session, listing)
    today = market_today()
    validation.raise_if_any(
        [*_record_problems(listing, today), *validation.submission_problems(listing, today)]
    )
    if isinstance(listing, Result):
        _ensure_patent_not_listed(session, listing)
    flags = _similar_title_flags(session, kind, listing)
    with _refusing_duplicate_patent(listing):
        _move(
            session,
            actor,
            kind,
            listing,
            ListingStatus.SUBMITTED,
            "listing.submitted",
            review_flags=flags,
            submitted_at=utcnow(),
        )
    return listing


def review(
    session: Session, actor: Actor, kind: ListingKind, listing_id: int, decision: ReviewDecision
) -> Listing:
    """The bureau's decision on a submitted listing (the router admits bureau staff only)."""
    listing = _visible(session, actor, kind, listing_id)
    _require_status(listing, (ListingStatus.SUBMITTED,), "reviewed")
    if decision.decision == ReviewDecisionKind.REJECT:
        if not decision.reason:
            raise InvalidInput.on(
                "body.reason", "a rejection needs a reason the owner can act on", "missing"
            )
        _move(
            session,
            actor,
            kind,
            listing,
            ListingStatus.REJECTED,
            "listing.rejected",
            decision.reason,
            last_decision_reason=decision.reason,
        )
        return listing
    _ensure_still_publishable(session, actor, listing)
    _move(
        session,
        actor,
        kind,
        listing,
        ListingStatus.PUBLISHED,
        "listing.approved",
        decision.reason,
        last_decision_reason=decision.reason,
        published_at=utcnow(),
    )
    return listing


def withdraw(
    session: Session, actor: Actor, kind: ListingKind, listing_id: int, reason: str
) -> Listing:
    listing = _owned(session, actor, kind, listing_id)
    _require_status(listing, (ListingStatus.PUBLISHED,), "withdrawn")
    _move(
        session,
        actor,
        kind,
        listing,
        ListingStatus.WITHDRAWN,
        "listing.withdrawn",
        reason,
        closed_at=utcnow(),
    )
    return listing


def _ensure_still_publishable(session: Session, actor: Actor, listing: Listing) -> None:
    valid_until = listing.valid_until
    if valid_until is not None and valid_until < market_today():
        raise InvalidTransition(
            f"The listing's validity ended on {valid_until}; reject it so the owner can extend it",
            code="validity_ended",
        )
    owner = organizations.get_visible(session, actor, listing.organization_id)
    if not owner.is_verified:
        raise InvalidTransition(
            "The owning organisation is no longer verified", code="organization_not_verified"
        )


# --- called by the deals and contracts domains ----------------------------------------------


def mark_in_negotiation(session: Session, kind: ListingKind, listing_id: int) -> None:
    """published → in_negotiation when a deal opens on the listing (idempotent)."""
    listing = _load(session, kind, listing_id)
    if listing.status == ListingStatus.IN_NEGOTIATION:
        return
    _follow(
        session,
        kind,
        listing,
        (ListingStatus.PUBLISHED,),
        ListingStatus.IN_NEGOTIATION,
        "listing.in_negotiation",
        "put in negotiation",
    )


def mark_transacted(session: Session, kind: ListingKind, listing_id: int) -> None:
    """published or in_negotiation → transacted when a contract is signed."""
    listing = _load(session, kind, listing_id)
    _follow(
        session,
        kind,
        listing,
        (ListingStatus.PUBLISHED, ListingStatus.IN_NEGOTIATION),
        ListingStatus.TRANSACTED,
        "listing.transacted",
        "marked transacted",
        closed_at=utcnow(),
    )


def reopen_after_deal_lost(session: Session, kind: ListingKind, listing_id: int) -> None:
    """in_negotiation → published when the deal is lost; expires at once if overdue."""
    listing = _load(session, kind, listing_id)
    _follow(
        session,
        kind,
        listing,
        (ListingStatus.IN_NEGOTIATION,),
        ListingStatus.PUBLISHED,
        "listing.reopened",
        "reopened",
    )
    expiry.expire_one(session, kind, listing_id, market_today())


def hold_for_deals(session: Session, kind: ListingKind, listing_id: int) -> None:
    """Deals opening on or leaving a listing take turns on its row (until commit), so
    "does another open deal still hold it?" is answered after the others committed;
    the row is reloaded, as the previous deal may have moved it."""
    model = repository.MODELS[kind]
    transitions.lock_owner_row(session, model, listing_id)
    session.get(model, listing_id, populate_existing=True)


def get_for_reference(session: Session, kind: ListingKind, listing_id: int) -> Result | Demand:
    """A listing another domain may point at (a deal, an interest): publicly visible only."""
    listing = _load(session, kind, listing_id)
    if not _is_public(listing, market_today()):
        raise NotFound(f"{kind.capitalize()} {listing_id} not found")
    return listing


# --- reading -------------------------------------------------------------------------------


def get_visible(
    session: Session, actor: Actor | None, kind: ListingKind, listing_id: int
) -> Listing:
    return _visible(session, actor, kind, listing_id)


def shows_review_notes(actor: Actor | None, listing: Listing) -> bool:
    """Review flags and the bureau's reasons are for the owner and the bureau only."""
    return actor is not None and (actor.is_bureau or actor.belongs_to(listing.organization_id))


def history(session: Session, actor: Actor, kind: ListingKind, listing_id: int) -> list[AuditEvent]:
    listing = _visible(session, actor, kind, listing_id)
    if not shows_review_notes(actor, listing):
        raise Forbidden("Only the owning organisation and the bureau may read the history")
    return audit.trail(session, kind.value, listing_id)


def browse_results(
    session: Session, actor: Actor | None, filters: ResultFilters, page: PageParams
) -> tuple[list[Result], int]:
    _require_actor_for_mine(actor, filters.mine)
    today = market_today()
    expiry.sweep_if_due(session, ListingKind.RESULT, today)
    return repository.browse_results(session, actor, filters, page, today)


def browse_demands(
    session: Session, actor: Actor | None, filters: DemandFilters, page: PageParams
) -> tuple[list[Demand], int]:
    _require_actor_for_mine(actor, filters.mine)
    today = market_today()
    expiry.sweep_if_due(session, ListingKind.DEMAND, today)
    return repository.browse_demands(session, actor, filters, page, today)


def review_queue(session: Session, page: PageParams) -> tuple[list[Listing], int]:
    return repository.review_queue(session, page)


def kind_of(listing: Listing) -> ListingKind:
    return ListingKind.RESULT if isinstance(listing, Result) else ListingKind.DEMAND


def _require_actor_for_mine(actor: Actor | None, mine: bool) -> None:
    if mine and actor is None:
        raise Unauthorized("mine=true needs a token: whose listings?")


# --- loading and permission checks ----------------------------------------------------------


def _load(session: Session, kind: ListingKind, listing_id: int) -> Listing:
    """The row, with lazy expiry applied so it never reads as published when overdue."""
    listing = repository.get(session, kind, listing_id)
    if listing is None:
        raise NotFound(f"{kind.capitalize()} {listing_id} not found")
    today = market_today()
    if listing.status == ListingStatus.PUBLISHED and _overdue(listing, today):
        expiry.expire_one(session, kind, listing_id, today)
        session.refresh(listing)
    return listing


def _visible(session: Session, actor: Actor | None, kind: ListingKind, listing_id: int) -> Listing:
    listing = _load(session, kind, listing_id)
    if not (_is_public(listing, market_today()) or shows_review_notes(actor, listing)):
        raise NotFound(f"{kind.capitalize()} {listing_id} not found")
    return listing


def _owned(session: Session, actor: Actor, kind: ListingKind, listing_id: int) -> Listing:
    listing = _visible(session, actor, kind, listing_id)
    if not actor.belongs_to(listing.organization_id):
        raise Forbidden(
            "Only members of the organisation that owns this listing may change it",
            code="not_listing_owner",
        )
    return listing


def _overdue(listing: Listing, today: date) -> bool:
    return listing.valid_until is not None and listing.valid_until < today


def _is_public(listing: Listing, today: date) -> bool:
    if listing.status == ListingStatus.PUBLISHED and _overdue(listing, today):
        return False
    return listing.status in PUBLIC_STATUSES


def _require_status(listing: Listing, allowed: tuple[ListingStatus, ...], verb: str) -> None:
    if listing.status not in allowed:
        states = ", ".join(allowed)
        raise InvalidTransition(f"A {listing.status} listing cannot be {verb}; it must be {states}")


# --- transitions, audit and outbox -------------------------------------------------------


def _move(
    session: Session,
    actor: Actor | None,
    kind: ListingKind,
    listing: Listing,
    target: ListingStatus,
    action: str,
    reason: str = "",
    **columns: Any,
) -> None:
    """Compare-and-set the status (409 if another request moved it first), then the
    audit event and the outbox row, which only the winner writes."""
    source = transitions.move(
        session, listing, {"status": target, "updated_at": utcnow(), **columns}
    )
    audit.record(
        session,
        actor,
        kind.value,
        listing.id,
        action,
        from_status=source,
        to_status=target,
        reason=reason,
    )
    _announce(session, kind, listing)


def _follow(
    session: Session,
    kind: ListingKind,
    listing: Listing,
    allowed: tuple[ListingStatus, ...],
    target: ListingStatus,
    action: str,
    verb: str,
    **columns: Any,
) -> None:
    """A move another domain drives (a deal opened, a contract registered). Losing the
    race to a request that made the same move is success: two deals opening on one
    listing at once both go ahead."""
    _require_status(listing, allowed, verb)
    try:
        _move(session, None, kind, listing, target, action, **columns)
    except InvalidTransition:
        session.refresh(listing)
        if listing.status != target:
            raise


def _announce(session: Session, kind: ListingKind, listing: Listing) -> None:
    """Tell the search index (through the outbox) that this listing changed."""
    assert listing.id is not None
    payload = {"status": str(listing.status)}
    outbox.enqueue(session, LISTING_CHANGED, kind.value, listing.id, payload)


# --- the duplicate guard -----------------------------------------------------------------


def _ensure_patent_not_listed(session: Session, result: Result) -> None:
    number = result.patent_application_number
    if not number:
        return
    other = repository.active_result_with_patent(session, number, result.id)
    if other is not None:
        raise _duplicate_patent(number)


def _duplicate_patent(number: str) -> Conflict:
    return Conflict(
        f"Patent application {number} is already listed in an active result; "
        "a patent can be listed once at a time",
        code="duplicate_patent",
    )


@contextmanager
def _refusing_duplicate_patent(listing: Listing) -> Iterator[None]:
    """Two submissions of one patent can race past the check; the index stops the second."""
    # Read before the write: after a failed statement the row's attributes cannot be loaded.
    number = getattr(listing, "patent_application_number", None)
    try:
        yield
    except IntegrityError as error:
        if not number:
            raise
        raise _duplicate_patent(number) from error


def _similar_title_flags(
    session: Session, kind: ListingKind, listing: Listing
) -> list[dict[str, Any]]:
    """Near-identical titles among the organisation's other listings: flagged, not blocked."""
    assert listing.id is not None
    title = comparable_title(listing.title)
    flags: list[dict[str, Any]] = []
    for other_id, other_title in repository.sibling_titles(
        session, repository.MODELS[kind], listing.organization_id, listing.id
    ):
        similarity = _title_similarity(title, comparable_title(other_title))
        if similarity >= SIMILAR_TITLE_RATIO:
            flags.append(
                {
                    "code": "similar_title",
                    "message": f"the organisation already has {kind.value} {other_id} titled "
                    f"{other_title!r}",
                    "other_kind": kind.value,
                    "other_id": other_id,
                    "other_title": other_title,
                    "similarity": round(similarity, 3),
                }
            )
    flags.sort(key=lambda flag: (-flag["similarity"], flag["other_id"]))
    return flags[:MAX_SIMILAR_TITLE_FLAGS]


def _title_similarity(first: str, second: str) -> float:
    matcher = SequenceMatcher(None, first, second, autojunk=False)
    # The cheap upper bounds skip most pairs without the quadratic comparison.
    if matcher.real_quick_ratio() < SIMILAR_TITLE_RATIO:
        return 0.0
    if matcher.quick_ratio() < SIMILAR_TITLE_RATIO:
        return 0.0
    return matcher.ratio()
