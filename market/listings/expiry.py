"""Expiry: a published listing whose `valid_until` has passed becomes `expired`.

Two paths share `expire_due_listings`:
- the CLI command / worker runs it once a day (or more often) over everything due;
- reads apply it lazily: before a read, `sweep_if_due` looks (one indexed query) for
  published rows past their validity and, only when there are some, runs the sweep in
  the request's transaction. The visibility filter also hides overdue rows by date
  (repository.publicly_visible), so even a read racing a sweep never shows a listing
  as published after its validity ended.

Each row moves with the codebase's compare-and-set (market.common.transitions:
`... WHERE id = :id AND status = 'published' AND valid_until < :today`): when two
sweeps race, the second one's UPDATE matches nothing, so every expiry is audited and
announced exactly once.

"Today" is the market's calendar day in China Standard Time: a listing valid until
31 March is visible all of 31 March in Ningbo, whatever the server's clock zone.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col

from market.audit import service as audit
from market.common import transitions
from market.db import utcnow
from market.listings import repository
from market.listings.models import ListingKind, ListingStatus
from market.outbox import service as outbox

LISTING_CHANGED = "listing.changed"


def expire_due_listings(session: Session, today: date) -> int:
    """Expire every published listing valid until before `today`; return how many."""
    expired = 0
    for kind in ListingKind:
        for listing_id in repository.due_for_expiry(session, repository.MODELS[kind], today):
            expired += expire_one(session, kind, listing_id, today)
    return expired


def sweep_if_due(session: Session, kind: ListingKind, today: date) -> None:
    """The lazy path: a cheap look first, the sweep only when something is due."""
    if repository.due_for_expiry(session, repository.MODELS[kind], today, limit=1):
        for listing_id in repository.due_for_expiry(session, repository.MODELS[kind], today):
            expire_one(session, kind, listing_id, today)


def expire_one(session: Session, kind: ListingKind, listing_id: int, today: date) -> bool:
    """Expire one listing if it is still published and overdue; True when this call did."""
    model = repository.MODELS[kind]
    now = utcnow()
    if not transitions.compare_and_set(
        session,
        model,
        listing_id,
        expected=ListingStatus.PUBLISHED,
        values={"status": ListingStatus.EXPIRED, "closed_at": now, "updated_at": now},
        also=(col(model.valid_until) < today,),
    ):
        return False
    audit.record(
        session,
        None,
        kind.value,
        listing_id,
        "listing.expired",
        from_status=ListingStatus.PUBLISHED,
        to_status=ListingStatus.EXPIRED,
        reason=f"validity ended before {today.isoformat()}",
    )
    outbox.enqueue(
        session, LISTING_CHANGED, kind.value, listing_id, {"status": ListingStatus.EXPIRED.value}
    )
    return True
