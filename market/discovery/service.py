"""Searching the catalogues: who sees what, words and meaning, engine errors as API
errors, exact totals, and the listings similar to one."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select

from market.auth.actor import Actor
from market.discovery import documents as discovery_documents
from market.discovery import semantic
from market.errors import InvalidInput, ServiceUnavailable
from market.listings import patents
from market.listings import service as listings
from market.listings.models import ListingKind, Result
from search import matching
from search.backend import (
    MAX_PAGE_SIZE,
    PUBLISHED,
    InvalidQueryError,
    SearchBackend,
    SearchError,
    SearchHit,
    SearchPage,
    SearchQuery,
    SearchUnavailable,
    Visibility,
)
from search.documents import Catalogue, DocumentError
from search.embedding import Embedder, Vectors
from search.text import search_box_text

from .schemas import TotalSource, hit_fields

logger = logging.getLogger("market.discovery")

SEARCH_UNAVAILABLE = "search_unavailable"
# When the engine cannot answer, clients may try again after this many seconds.
RETRY_AFTER_SECONDS = "30"

# How much the query's meaning weighs against its words in a search-box query
# (`SearchQuery.semantic_ratio`). Measured on the 1,000 records (docs/SEARCH.md,
# "Quality"): a plain-language demand's title finds its record far more often with
# meaning, while known-item queries (a title, keywords) stay on top, which at 0.5 and
# above they no longer do: semantic hits crowd the keyword hits out.
SEARCH_SEMANTIC_RATIO = 0.3
# Similar listings: the source's own stored vector is the better evidence (its terms
# alone find only listings that share a rare word).
SIMILAR_SEMANTIC_RATIO = 0.7


def visibility_for(actor: Actor | None) -> Visibility:
    """The public sees published listings; members also their own; the bureau all."""
    if actor is None:
        return Visibility.public()
    if actor.is_bureau:
        return Visibility.everything()
    return Visibility.for_organization(actor.organization_id)


def patent_number_of(text: str) -> tuple[str, str] | None:
    """("application" | "publication", the stored spelling) when the query is a Chinese
    patent number however written (CN or ZL or neither, with or without the dot and the
    check character, full-width digits), else None."""
    compact = "".join(text.split()).upper()
    try:
        return "publication", patents.normalize_publication_number(compact)
    except patents.PatentNumberError:
        pass
    digits = compact.removeprefix("CN").removeprefix("ZL").replace(".", "")
    if digits.isdigit() and len(digits) in (8, 12):  # no check character: add it
        compact = digits + patents.check_character(digits)
    try:
        return "application", patents.normalize_application_number(compact)
    except patents.PatentNumberError:
        return None


def identifier_page(
    session: Session, catalogue: Catalogue, query: SearchQuery, typed: str
) -> SearchPage | None:
    """The results holding this patent number, read from the database, or None when the
    query is no patent number or no listing holds it (then the engine searches as usual).

    The engines index no patent numbers (a number would be cut into meaningless digit
    runs); they are columns of `results` (the application number indexed). The caller's
    search visibility and the query's filters apply as in the engine."""
    number = patent_number_of(typed) if catalogue == "results" else None
    if number is None:
        return None
    kind, spelling = number
    column = (
        Result.patent_application_number
        if kind == "application"
        else Result.patent_publication_number
    )
    rows = session.exec(select(Result).where(column == spelling).order_by(col(Result.id))).all()
    rule = matching.SavedSearchRule.of("", query.filters)
    documents = [
        document
        for document in (discovery_documents.search_document(row) for row in rows)
        if _visible_in_search(query.visibility, document) and rule.matches(document)
    ]
    if not documents:
        return None
    hits = [
        SearchHit(id=str(document["id"]), document=document, score=1.0)
        for document in documents[query.offset : query.offset + query.limit]
    ]
    return SearchPage(
        hits=hits, total=len(documents), total_is_exact=True, offset=query.offset, limit=query.limit
    )


def _visible_in_search(visibility: Visibility, document: Mapping[str, Any]) -> bool:
    return (
        visibility.unrestricted
        or document.get("status") == PUBLISHED
        or (
            visibility.organization_id is not None
            and document.get("organization_id") == visibility.organization_id
        )
    )


def search_box(query: SearchQuery) -> SearchQuery:
    """What someone typed, as the engines should read it (`search_box_text`: a run of
    single characters as a phrase, so that a lone character does not decide the
    ranking)."""
    return replace(query, text=search_box_text(query.text)) if query.text.strip() else query


async def with_meaning(query: SearchQuery, embedder: Embedder | None, typed: str) -> SearchQuery:
    """The query made hybrid with the typed text's query vector (embedded off the event
    loop, once per text and process). Unchanged without an embedder, for an empty text
    or when embedding fails: then the search is by keywords, as before."""
    if embedder is None or not typed.strip():
        return query
    vector = await run_in_threadpool(semantic.query_vector, embedder, typed)
    return query if vector is None else hybrid(query, vector)


def hybrid(query: SearchQuery, vector: Sequence[float] | Vectors) -> SearchQuery:
    """A search-box query ranked by the words and by this query vector."""
    return replace(
        query, vector=[float(value) for value in vector], semantic_ratio=SEARCH_SEMANTIC_RATIO
    )


async def run_search(
    engine: SearchBackend, catalogue: Catalogue, query: SearchQuery
) -> tuple[SearchPage, TotalSource]:
    """The page, with a total that is exact even where the engine capped its count."""
    with _engine_errors():
        page = await engine.search_async(catalogue, query)
        if page.total_is_exact:
            return page, TotalSource.ENGINE
        total = await _total_from_facets(engine, catalogue, query)
    return replace(page, total=total), TotalSource.FACETS


def page_items(page: SearchPage) -> list[dict[str, Any]]:
    return [
        {
            **hit_fields(hit.document),
            "score": hit.score,
            "highlights": hit.highlights,
            "semantic_score": hit.semantic_score,
        }
        for hit in page.hits
    ]


def similar_listings(
    session: Session,
    engine: SearchBackend,
    embedder: Embedder | None,
    actor: Actor | None,
    kind: ListingKind,
    listing_id: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Listings of the same catalogue close to this one, best first, the listing itself
    left out: by its stored passage vector and its matching terms.

    The listing must be readable by the actor (another organisation's draft is a 404);
    the similar ones are what the actor may see in search. Without a stored vector (no
    embedder, or the worker has not embedded it yet) its words alone decide.
    """
    listing = listings.get_visible(session, actor, kind, listing_id)
    catalogue = discovery_documents.CATALOGUE_OF_KIND[kind]
    source = discovery_documents.search_document(listing)
    vector = semantic.stored_passage_vector(session, embedder, catalogue, source)
    terms = matching.build_query(source).text
    if vector is None and not terms:
        return []
    query = SearchQuery(
        text=terms,
        vector=None if vector is None else vector.tolist(),
        semantic_ratio=SIMILAR_SEMANTIC_RATIO if vector is not None else 0.0,
        visibility=visibility_for(actor),
        limit=min(limit + 1, MAX_PAGE_SIZE),
        matching_strategy=matching.MATCHING_STRATEGY,
        show_ranking_score=True,
    )
    with _engine_errors():
        page = engine.search(catalogue, query)
    others = [hit for hit in page.hits if hit.document.get("listing_id") != listing_id]
    return page_items(replace(page, hits=others[:limit]))


async def _total_from_facets(
    engine: SearchBackend, catalogue: Catalogue, query: SearchQuery
) -> int:
    """Every document has exactly one status, and facet counts are never capped, so the
    status facet of the same query adds up to the exact number of matches."""
    counting = replace(query, facets=("status",), offset=0, limit=1, highlight=False)
    counted = await engine.search_async(catalogue, counting)
    return sum(counted.facets.get("status", {}).values())


@contextmanager
def _engine_errors() -> Iterator[None]:
    """Engine failures as API problems: a bad query is a 422, an engine down a 503."""
    try:
        yield
    except InvalidQueryError as error:
        raise InvalidInput.on(_parameter_of(str(error)), str(error)) from error
    except DocumentError as error:  # an IPC prefix the engine cannot normalise
        raise InvalidInput.on("query.ipc", str(error)) from error
    except SearchError as error:
        # Unreachable or failing engine: say so (503), never a 500; browsing the
        # catalogue (GET /results, /demands) works from the database meanwhile. The
        # engine's own message (addresses, keys' names) goes to the log, not the client.
        logger.warning("search failed: %s", error)
        reason = (
            "the search engine cannot be reached"
            if isinstance(error, SearchUnavailable)
            else "the search engine failed to answer"
        )
        raise ServiceUnavailable(
            f"Search is unavailable right now: {reason}. Browse GET /results or "
            "GET /demands meanwhile, or retry later.",
            code=SEARCH_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from error


def _parameter_of(message: str) -> str:
    """The query parameter an engine complaint is about, for the problem's `errors`."""
    for word, parameter in (
        ("sort", "query.sort"),
        ("facet", "query.facets"),
        ("limit", "query.limit"),
        ("offset", "query.offset"),
        ("ipc", "query.ipc"),
    ):
        if word in message:
            return parameter
    return "query"
