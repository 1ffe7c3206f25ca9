"""Searching the catalogues: who sees what, engine errors as API errors, exact totals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
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
        {**hit_fields(hit.document), "score": hit.score, "highlights": hit.highlights}
        for hit in page.hits
    ]


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
