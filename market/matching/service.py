"""Matching for people: who may see matches, storing what was shown, feedback, quality,
saved searches and their notifications.

The scoring itself is `search.matching` (pure, engine side); this module feeds it the
source listing's attributes, stores what a broker or an owner was shown, and turns
engine failures into a 503 the client can act on.

Visibility: matches of a listing are for its owning organisation, brokers and bureau
staff. A listing the actor cannot see at all is a 404 (as everywhere in the catalogue);
one it sees but is not entitled to match is a 403.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, case, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from market.audit import service as audit
from market.auth.actor import Actor
from market.auth.models import User
from market.common import transitions
from market.common.codes import split_codes
from market.common.pagination import PageParams, paginate
from market.db import one_of, utcnow
from market.discovery import documents as discovery_documents
from market.discovery import semantic
from market.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceUnavailable
from market.listings import service as listings
from market.listings.models import (
    CooperationMode,
    Demand,
    Listing,
    ListingKind,
    ListingStatus,
    MaturityStage,
    TechField,
    TransferMode,
)
from market.matching.models import Notification, SavedSearch, StoredMatch
from market.matching.schemas import (
    ExplanationRead,
    FeedbackCreate,
    FeedbackRead,
    MatchedListing,
    MatchList,
    MatchRead,
    QualityBucket,
    QualityReport,
    SavedSearchCreate,
    SavedSearchFilters,
)
from search import matching
from search.backend import (
    InvalidQueryError,
    SearchBackend,
    SearchError,
    SearchFilters,
    SearchQuery,
    SearchUnavailable,
    validate_query,
)
from search.embedding import Embedder

MAX_SAVED_SEARCHES_PER_USER = 20
SAVED_SEARCH_TOPIC = "saved_search.match"
_DIRECTIONS: dict[ListingKind, matching.Direction] = {
    ListingKind.DEMAND: "demand_to_results",
    ListingKind.RESULT: "result_to_demands",
}
_KIND_NAMES = {ListingKind.RESULT: "科技成果", ListingKind.DEMAND: "技术需求"}
# Closed vocabularies a saved-search filter must use: a misspelt value would silently
# never match, so it is refused instead.
_FILTER_VOCABULARIES: dict[str, frozenset[str]] = {
    "field": frozenset(TechField),
    "maturity_stage": frozenset(MaturityStage),
    "transfer_mode": frozenset(TransferMode),
    "cooperation_mode": frozenset(CooperationMode),
}

logger = logging.getLogger("market.matching")


# --- matches ---------------------------------------------------------------------------------


def matches_for(
    session: Session,
    engine: SearchBackend,
    actor: Actor,
    kind: ListingKind,
    listing_id: int,
    limit: int,
    embedder: Embedder | None = None,
) -> MatchList:
    """The best counterparts of a listing, stored for brokers and owners.

    With an embedder, the listing's stored passage vector brings the nearest
    counterparts by meaning too (never embedded here: a listing the worker has not
    embedded yet is matched by its words)."""
    listing = _matchable_source(session, actor, kind, listing_id)
    source = listing_features(listing)
    query = matching.build_query(source)
    direction = _DIRECTIONS[kind]
    side = semantic_side(session, embedder, kind, source)
    try:
        found = matching.find_matches(engine, direction, source, limit=limit, semantic=side)
    except SearchError as error:
        # The engine's own message (its address, index names) goes to the log only.
        logger.warning("matching %s %s failed: %s", kind, listing_id, error)
        reason = "cannot be reached" if isinstance(error, SearchUnavailable) else "failed"
        raise ServiceUnavailable(
            f"Matching needs the search engine, which {reason}; retry later.",
            code="search_unavailable",
        ) from error
    stored = _store_shown(session, actor, listing, found) if _stores_views(actor) else {}
    items = [_present(match, stored.get(match.listing_id)) for match in found]
    assert listing.id is not None
    return MatchList(
        source_kind=kind.value, source_id=listing.id, query_terms=query.terms, items=items
    )


def semantic_side(
    session: Session, embedder: Embedder | None, kind: ListingKind, source: Mapping[str, Any]
) -> matching.SemanticSide | None:
    """The source's stored vector and the reader of its candidates' vectors, or None."""
    if embedder is None:
        return None
    own = discovery_documents.CATALOGUE_OF_KIND[kind]
    vector = semantic.stored_passage_vector(session, embedder, own, source)
    if vector is None:
        return None
    other = matching.candidate_catalogue(_DIRECTIONS[kind])
    return matching.SemanticSide(vector, semantic.stored_vectors_reader(session, embedder, other))


def listing_features(listing: Listing) -> dict[str, Any]:
    """What the matcher knows about a listing: its search document plus the IPC codes
    a demand's document leaves out (a demand may name the IPC area it needs)."""
    features = discovery_documents.search_document(listing)
    features["ipc_codes"] = split_codes(listing.ipc_codes)
    return features


def _matchable_source(
    session: Session, actor: Actor, kind: ListingKind, listing_id: int
) -> Listing:
    listing = listings.get_visible(session, actor, kind, listing_id)
    if actor.is_bureau or actor.is_broker or actor.belongs_to(listing.organization_id):
        return listing
    raise Forbidden(
        "Matches of a listing are for its owning organisation, brokers and bureau staff",
        code="matches_not_allowed",
    )


def _stores_views(actor: Actor) -> bool:
    # Bureau staff look at matches to supervise, not to act: nothing to give feedback on.
    return not actor.is_bureau


@dataclass(frozen=True)
class _Shown:
    """What the response needs of a stored match row."""

    id: int
    useful: bool | None
    feedback_reason: str


def _store_shown(
    session: Session, actor: Actor, listing: Listing, found: Sequence[matching.Match]
) -> dict[int, _Shown]:
    """Upsert one row per (pair, viewing organisation); returns counterpart id -> row.

    One `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` statement for every match shown:
    a pair shown again keeps its row (and its feedback) and gets the new score,
    explanation and viewer. Two requests racing on the same pair cannot fail: the
    database resolves the conflict (and one ORM row per match cost far more:
    docs/PERFORMANCE.md, "Figures behind the code's comments").
    """
    is_demand = isinstance(listing, Demand)
    assert listing.id is not None
    if actor.organization_id is None:
        return {}  # rows belong to the viewing organisation; there is none to keep them
    now = utcnow()
    rows: dict[int, dict[str, Any]] = {}
    for match in found:  # one row per counterpart: a statement may touch a row once
        demand_field = listing.field if is_demand else match.document.get("field")
        rows.setdefault(
            match.listing_id,
            {
                "demand_id": listing.id if is_demand else match.listing_id,
                "result_id": match.listing_id if is_demand else listing.id,
                "shown_from": "demand" if is_demand else "result",
                "field": str(demand_field or ""),
                "score": match.score,
                "engine_score": match.engine_score,
                "explanation": match.explanation.as_dict(),
                "shown_to_user_id": actor.user_id,
                "shown_to_organization_id": actor.organization_id,
                "times_shown": 1,
                "created_at": now,
                "last_shown_at": now,
                "useful": None,
                "feedback_reason": "",
            },
        )
    if not rows:
        return {}
    statement = _shown_matches_upsert(session.get_bind().dialect.name)
    # The rows as parameters of one cached single-row statement: SQLAlchemy sends them as
    # one multi-row INSERT ("insertmanyvalues") without compiling a new 150-parameter
    # statement per request (that compilation was a fifth of a match request: the figures
    # are in docs/PERFORMANCE.md, "Figures behind the code's comments").
    shown = session.execute(statement, list(rows.values()))
    stored: dict[int, _Shown] = {}
    for row_id, demand_id, result_id, useful, reason in shown:
        counterpart = result_id if is_demand else demand_id
        stored[int(counterpart)] = _Shown(int(row_id), useful, reason or "")
    return stored


@functools.cache
def _shown_matches_upsert(dialect: str) -> Any:
    """`INSERT ... ON CONFLICT (pair, viewer) DO UPDATE ... RETURNING` for one dialect,
    built once: constructing it (the `excluded` columns) costs as much as running it."""
    insert: Callable[[Table], Any]
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover
        raise NotImplementedError(f"storing shown matches on {dialect}")
    table: Table = StoredMatch.__table__  # type: ignore[attr-defined]
    statement = insert(table)
    fresh = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["demand_id", "result_id", "shown_to_organization_id"],
        set_={
            "score": fresh.score,
            "engine_score": fresh.engine_score,
            "explanation": fresh.explanation,
            "shown_to_user_id": fresh.shown_to_user_id,
            "last_shown_at": fresh.last_shown_at,
            "times_shown": table.c.times_shown + 1,
        },
    ).returning(
        table.c.id, table.c.demand_id, table.c.result_id, table.c.useful, table.c.feedback_reason
    )


def _present(match: matching.Match, row: _Shown | None) -> MatchRead:
    document = match.document
    return MatchRead(
        id=row.id if row else None,
        listing=MatchedListing(
            kind="result" if match.catalogue == "results" else "demand",
            id=match.listing_id,
            title=str(document.get("title") or ""),
            field=document.get("field"),
            organization_id=document.get("organization_id"),
            district_code=document.get("district_code"),
        ),
        score=match.score,
        engine_score=match.engine_score,
        semantic_score=match.semantic_score,
        explanation=ExplanationRead.model_validate(match.explanation.as_dict()),
        useful=row.useful if row else None,
        feedback_reason=row.feedback_reason if row else "",
    )


# --- feedback and quality ----------------------------------------------------------------------


def give_feedback(
    session: Session, actor: Actor, match_id: int, feedback: FeedbackCreate
) -> FeedbackRead:
    """The viewing organisation says whether a match it was shown was useful."""
    row = session.get(StoredMatch, match_id)
    if row is None or row.shown_to_organization_id != actor.organization_id:
        raise NotFound(f"Match {match_id} not found")
    reason = feedback.reason.strip()
    if not feedback.useful and not reason:
        # "Not useful" without a reason teaches nothing about what to change.
        raise InvalidInput.on("body.reason", "say why the match is not useful", "missing")
    previous = row.useful
    row.useful = feedback.useful
    row.feedback_reason = reason
    row.feedback_user_id = actor.user_id
    row.feedback_at = utcnow()
    audit.record(
        session,
        actor,
        "match",
        match_id,
        "match.feedback",
        reason=reason,
        details={"useful": feedback.useful, "previous": previous},
    )
    return FeedbackRead(
        match_id=match_id, useful=feedback.useful, reason=reason, feedback_at=row.feedback_at
    )


def quality(session: Session) -> QualityReport:
    """Precision of shown matches from feedback (useful / rated), overall and by field."""
    useful = func.sum(case((col(StoredMatch.useful).is_(True), 1), else_=0))
    rows = session.exec(
        select(col(StoredMatch.field), func.count(), func.count(col(StoredMatch.useful)), useful)
        .group_by(col(StoredMatch.field))
        .order_by(col(StoredMatch.field))
    ).all()
    by_field = [
        _bucket(field or None, shown, rated, int(good or 0)) for field, shown, rated, good in rows
    ]
    overall = _bucket(
        None,
        sum(bucket.shown for bucket in by_field),
        sum(bucket.rated for bucket in by_field),
        sum(bucket.useful for bucket in by_field),
    )
    return QualityReport(overall=overall, by_field=by_field)


def _bucket(field: str | None, shown: int, rated: int, useful: int) -> QualityBucket:
    precision = round(useful / rated, 4) if rated else None
    return QualityBucket(field=field, shown=shown, rated=rated, useful=useful, precision=precision)


# --- saved searches -------------------------------------------------------------------------


def save_search(session: Session, actor: Actor, body: SavedSearchCreate) -> SavedSearch:
    _validate_saved_search(body)
    # Parallel creations by one user take turns here, so each counts the others' rows.
    transitions.lock_owner_row(session, User, actor.user_id)
    count = session.exec(select(func.count()).where(SavedSearch.user_id == actor.user_id)).one()
    if count >= MAX_SAVED_SEARCHES_PER_USER:
        raise Conflict(
            f"At most {MAX_SAVED_SEARCHES_PER_USER} saved searches per user; delete one first",
            code="saved_search_limit",
        )
    saved = SavedSearch(
        user_id=actor.user_id,
        organization_id=actor.organization_id,
        catalogue=body.catalogue,
        name=body.name.strip(),
        q=body.q.strip(),
        filters=body.filters.model_dump(exclude_none=True),
    )
    session.add(saved)
    session.flush()
    return saved


def _validate_saved_search(body: SavedSearchCreate) -> None:
    for name, allowed in _FILTER_VOCABULARIES.items():
        value = getattr(body.filters, name)
        if value is not None and value not in allowed:
            raise InvalidInput.on(
                f"body.filters.{name}", f"{value!r} is not one of {', '.join(sorted(allowed))}"
            )
    try:
        validate_query(body.catalogue, SearchQuery(text=body.q, filters=_filters(body.filters)))
    except (InvalidQueryError, ValueError) as error:
        raise InvalidInput.on("body.filters", str(error)) from error


def _filters(filters: SavedSearchFilters | dict[str, Any]) -> SearchFilters:
    values = filters.model_dump() if isinstance(filters, SavedSearchFilters) else filters
    return SearchFilters(**{name: value for name, value in values.items() if value is not None})


def list_saved_searches(
    session: Session, actor: Actor, page: PageParams
) -> tuple[list[SavedSearch], int]:
    mine = select(SavedSearch).where(SavedSearch.user_id == actor.user_id)
    return paginate(
        session, mine, page, col(SavedSearch.created_at).desc(), col(SavedSearch.id).desc()
    )


def get_saved_search(session: Session, actor: Actor, saved_search_id: int) -> SavedSearch:
    """A user's saved searches are private: anyone else's is a 404, even a colleague's."""
    saved = session.get(SavedSearch, saved_search_id)
    if saved is None or saved.user_id != actor.user_id:
        raise NotFound(f"Saved search {saved_search_id} not found")
    return saved


def delete_saved_search(session: Session, actor: Actor, saved_search_id: int) -> None:
    session.delete(get_saved_search(session, actor, saved_search_id))


# --- notifications ------------------------------------------------------------------------------


def notify_saved_searches(
    session: Session, kind: ListingKind | str, documents: Iterable[Mapping[str, Any]]
) -> int:
    """Notify every saved search that newly published listings answer; returns how many.

    The outbox worker calls it with the search documents it has just written, in the
    transaction that marks their rows processed (a crash loses neither). Only published
    listings notify, a listing is never announced to its own organisation, and a
    redelivered row finds its notifications already there. Two queries whatever the
    number of listings: the catalogue's saved searches and the notifications already sent.
    """
    kind = ListingKind(kind)
    published = {
        int(document["listing_id"]): document
        for document in documents
        if document.get("status") == ListingStatus.PUBLISHED
    }
    if not published:
        return 0
    catalogue = discovery_documents.CATALOGUE_OF_KIND[kind]
    searches = session.exec(
        select(SavedSearch).where(SavedSearch.catalogue == catalogue).order_by(col(SavedSearch.id))
    ).all()
    if not searches:
        return 0
    already = set(
        session.exec(
            select(Notification.saved_search_id, Notification.listing_id).where(
                Notification.listing_kind == kind.value,
                one_of(session, col(Notification.listing_id), list(published)),
            )
        ).all()
    )
    rules = [
        (saved, matching.SavedSearchRule.of(saved.q, _filters(saved.filters))) for saved in searches
    ]
    created = 0
    for listing_id, document in published.items():
        for saved, rule in rules:
            if saved.organization_id == document.get("organization_id"):
                continue
            if (saved.id, listing_id) not in already and rule.matches(document):
                session.add(_notification(saved, kind, listing_id, str(document["title"])))
                created += 1
    session.flush()
    return created


def _notification(
    saved: SavedSearch, kind: ListingKind, listing_id: int, title: str
) -> Notification:
    return Notification(
        user_id=saved.user_id,
        topic=SAVED_SEARCH_TOPIC,
        saved_search_id=saved.id,
        listing_kind=kind.value,
        listing_id=listing_id,
        title=title[:200],
        message=f"新的{_KIND_NAMES[kind]}符合您保存的搜索「{saved.name}」：{title}"[:500],
    )


def inbox(session: Session, actor: Actor, page: PageParams) -> tuple[list[Notification], int, int]:
    """The actor's notifications, unread first, then newest; with total and unread counts."""
    mine = select(Notification).where(Notification.user_id == actor.user_id)
    rows, total = paginate(
        session,
        mine,
        page,
        col(Notification.read_at).is_not(None),
        col(Notification.created_at).desc(),
        col(Notification.id).desc(),
    )
    unread = session.exec(
        select(func.count()).where(
            Notification.user_id == actor.user_id, col(Notification.read_at).is_(None)
        )
    ).one()
    return rows, total, unread


def mark_read(session: Session, actor: Actor, notification_id: int) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != actor.user_id:
        raise NotFound(f"Notification {notification_id} not found")
    if notification.read_at is None:
        notification.read_at = utcnow()
    return notification


def mark_all_read(session: Session, actor: Actor) -> int:
    statement = (
        update(Notification)
        .where(col(Notification.user_id) == actor.user_id, col(Notification.read_at).is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
