"""What matching does when the outbox worker (`market.discovery.indexing`) has indexed
listings: saved searches that the newly published ones answer are notified.

Discovery sits below matching in `market.domains`, so the worker finds this module by
name (`domain_modules("hooks")`) instead of importing matching.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session

from market.listings.models import ListingKind
from market.matching import service


def listings_indexed(
    session: Session, kind: ListingKind, documents: Iterable[Mapping[str, Any]]
) -> None:
    """Called in the transaction that marks the listings' outbox rows processed."""
    service.notify_saved_searches(session, kind, documents)
