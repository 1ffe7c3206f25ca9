"""Searching the catalogues: who sees what, engine errors as API errors, exact totals."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from market.auth.actor import Actor
from market.errors import InvalidInput, ServiceUnavailable
from search.backend import (
    InvalidQueryError,
    SearchBackend,
    SearchError,
    SearchPage,
    SearchQuery,
    SearchUnavailable,
    Visibility,
)
from search.documents import Catalogue, DocumentError

from .schemas import TotalSource, hit_fields

logger = logging.getLogger("market.discovery")

SEARCH_UNAVAILABLE = "search_unavailable"
# When the engine cannot answer, clients may try again after this many seconds.
RETRY_AFTER_SECONDS = "30"


def visibility_for(actor: Actor | None) -> Visibility:
    """The public sees published listings; members also their own; the bureau all."""
    if actor is None:
        return Visibility.public()
    if actor.is_bureau:
        return Visibility.everything()
    return Visibility.for_organization(actor.organization_id)


def run_search(
    engine: SearchBackend, catalogue: Catalogue, query: SearchQuery
) -> tuple[SearchPage, TotalSource]:
    """The page, with a total that is exact even where the engine capped its count."""
    page = _engine_call(lambda: engine.search(catalogue, query))
    if page.total_is_exact:
        return page, TotalSource.ENGINE
    return replace(page, total=_total_from_facets(engine, catalogue, query)), TotalSource.FACETS


def page_items(page: SearchPage) -> list[dict[str, Any]]:
    return [
        {**hit_fields(hit.document), "score": hit.score, "highlights": hit.highlights}
        for hit in page.hits
    ]


def _total_from_facets(engine: SearchBackend, catalogue: Catalogue, query: SearchQuery) -> int:
    """Every document has exactly one status, and facet counts are never capped, so the
    status facet of the same query adds up to the exact number of matches."""
    counting = replace(query, facets=("status",), offset=0, limit=1, highlight=False)
    counted = _engine_call(lambda: engine.search(catalogue, counting))
    return sum(counted.facets.get("status", {}).values())


def _engine_call(call: Any) -> SearchPage:
    try:
        page: SearchPage = call()
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
    return page


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
