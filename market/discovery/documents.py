"""Search documents from catalogue rows: the only place that maps ORM rows to `search/`.

`search.documents` knows plain mappings; this module reads a `Result` or `Demand` row
(plus the owner's name, which lives on the organisation) and hands the builders plain
values, decoding the "|"-delimited columns with `market.common.codes.split_codes`.
"""

from __future__ import annotations

import logging
from typing import Any

from market.common.codes import split_codes
from market.listings.models import Demand, Listing, ListingKind, Result
from search.documents import (
    Catalogue,
    DemandDocument,
    ResultDocument,
    demand_document,
    document_id,
    result_document,
)

logger = logging.getLogger("market.discovery")

# Every listing is indexed, whatever its status: the listings service announces every
# change (outbox row), and `search.backend.Visibility` decides who sees what, with the
# catalogue's own rule (the public: published; members: also their organisation's, drafts
# included; the bureau: all). See docs/SEARCH.md.

CATALOGUE_OF_KIND: dict[ListingKind, Catalogue] = {
    ListingKind.RESULT: "results",
    ListingKind.DEMAND: "demands",
}
MODEL_OF_CATALOGUE: dict[Catalogue, type[Result] | type[Demand]] = {
    "results": Result,
    "demands": Demand,
}


def search_id(catalogue: Catalogue, listing_id: int) -> str:
    """The engine id of a listing (`result-12`), also for deleting a vanished row."""
    return document_id(catalogue, listing_id)


def result_search_document(result: Result, organization_name: str = "") -> ResultDocument:
    """The search document of a research result row."""
    return result_document(
        {
            **_common_fields(result, organization_name),
            "kind": str(result.ip_form),
            "summary": result.summary,
            "maturity_stage": str(result.maturity_stage),
            "transfer_modes": [str(mode) for mode in split_codes(result.transfer_modes)],
            "price_fen": result.price_fen,
            "price_negotiable": result.price_negotiable or result.price_fen is None,
            "discipline": result.discipline or None,
            "inventors": list(result.inventors or []),
        }
    )


def demand_search_document(demand: Demand, organization_name: str = "") -> DemandDocument:
    """The search document of a technology demand row."""
    return demand_document(
        {
            **_common_fields(demand, organization_name),
            "description": demand.description,
            "technical_indicators": demand.technical_indicators,
            "cooperation_modes": split_codes(demand.cooperation_modes),
            "budget_min_fen": demand.budget_min_fen,
            "budget_max_fen": demand.budget_max_fen,
            "budget_negotiable": demand.budget_negotiable
            or (demand.budget_min_fen is None and demand.budget_max_fen is None),
            "deadline": demand.deadline,
        }
    )


def search_document(listing: Listing, organization_name: str = "") -> dict[str, Any]:
    """Either document, for code that handles both catalogues."""
    if isinstance(listing, Result):
        return dict(result_search_document(listing, organization_name))
    return dict(demand_search_document(listing, organization_name))


def _common_fields(listing: Listing, organization_name: str) -> dict[str, Any]:
    assert listing.id is not None, "only stored listings can be indexed"
    return {
        "listing_id": listing.id,
        "title": listing.title,
        "keywords": list(listing.keywords or []),
        "field": str(listing.field),
        "ipc_codes": split_codes(listing.ipc_codes),
        "district_code": listing.district_code,
        "organization_id": listing.organization_id,
        "organization_name": organization_name,
        "status": str(listing.status),
        "published_at": listing.published_at,
    }
