"""Search documents: what a result or a demand looks like inside an engine.

The application turns its rows into plain mappings and calls `result_document()` or
`demand_document()`; nothing here knows the ORM. Builders validate the closed
vocabularies (fields, maturity stages, modes), fold every text field to its canonical
form (simplified, half-width) and derive the attributes that only exist for searching
(`ipc_prefixes`, engine-safe `id`).

`CATALOGUE_SCHEMAS` says which attribute is searchable (in weight order), filterable,
sortable, facetable and highlighted; both engines configure themselves from it.

A document may also carry `"vector"` (`VECTOR_KEY`): the unit passage vector of its
text, or None while it has none (`with_vector` sets it). Engines store it their own way,
search it when a query has a vector, and never return it in hits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt

from search.text import fold_for_search

Catalogue = Literal["results", "demands"]
CATALOGUES: tuple[Catalogue, ...] = ("results", "demands")

PUBLISHED = "published"

# The key of a document's passage vector, and the name engines give the vector space
# (Meilisearch's embedder). Renaming the embedder means re-sending every vector.
VECTOR_KEY = "vector"
EMBEDDER_NAME = "e5"
# multilingual-e5-small; an engine is told otherwise through its constructor.
DEFAULT_VECTOR_DIMENSIONS = 384
# A vector as callers hold it: a list of floats or a row of an embedder's answer.
VectorLike = Sequence[float] | npt.NDArray[np.floating[Any]]

# The ten key fields of the city's technology plan: the top-level taxonomy.
TECHNICAL_FIELDS = (
    "智能经济",
    "新材料",
    "高端装备",
    "节能环保",
    "绿色石化",
    "时尚产业",
    "健康产业",
    "海洋产业",
    "现代物流",
    "现代农业",
)
MATURITY_STAGES = ("研发", "小试", "中试", "产业化")
TRANSFER_MODES = ("转让", "许可", "作价投资", "合作开发", "技术服务")
# A demand may also ask for commissioned development or consulting (技术开发/技术咨询 contracts).
COOPERATION_MODES = (*TRANSFER_MODES, "委托开发", "技术咨询")


class DocumentError(ValueError):
    """A listing cannot become a search document (unknown vocabulary, bad id...)."""


class ResultDocument(TypedDict):
    id: str
    listing_id: int
    kind: str | None
    title: str
    summary: str
    keywords: list[str]
    field: str | None
    ipc_codes: list[str]
    ipc_prefixes: list[str]
    district_code: str | None
    organization_id: int | None
    organization_name: str
    maturity_stage: str | None
    transfer_modes: list[str]
    price_fen: int | None
    price_negotiable: bool
    status: str
    published_at: int | None
    discipline: str | None
    # Searchable, so that an inventor's name finds the patent (the lowest weight).
    inventors: list[str]
    vector: NotRequired[list[float] | None]


class DemandDocument(TypedDict):
    id: str
    listing_id: int
    title: str
    description: str
    technical_indicators: str
    keywords: list[str]
    field: str | None
    # The IPC area the demand names: the matcher compares it from both sides.
    ipc_codes: list[str]
    district_code: str | None
    organization_id: int | None
    organization_name: str
    cooperation_modes: list[str]
    budget_min_fen: int | None
    budget_max_fen: int | None
    budget_negotiable: bool
    deadline: int | None
    status: str
    published_at: int | None
    vector: NotRequired[list[float] | None]


@dataclass(frozen=True)
class CatalogueSchema:
    """How one catalogue's documents are searched; both engines read this."""

    id_prefix: str
    searchable: tuple[str, ...]  # in order of weight, heaviest first
    filterable: tuple[str, ...]
    sortable: tuple[str, ...]
    facetable: tuple[str, ...]
    highlighted: tuple[str, ...]
    cropped: tuple[str, ...]  # long texts: highlighted and cut around the match
    list_attributes: tuple[str, ...]  # attributes whose value is a list of strings


RESULTS_SCHEMA = CatalogueSchema(
    id_prefix="result",
    searchable=("title", "keywords", "summary", "ipc_codes", "organization_name", "inventors"),
    filterable=(
        "listing_id",
        "kind",
        "field",
        "ipc_prefixes",
        "district_code",
        "organization_id",
        "maturity_stage",
        "transfer_modes",
        "price_fen",
        "price_negotiable",
        "status",
        "published_at",
        "discipline",
    ),
    sortable=("published_at", "price_fen", "listing_id"),
    facetable=(
        "kind",
        "field",
        "district_code",
        "maturity_stage",
        "transfer_modes",
        "status",
        "discipline",
    ),
    highlighted=("title", "keywords", "organization_name"),
    cropped=("summary",),
    list_attributes=("keywords", "ipc_codes", "ipc_prefixes", "transfer_modes"),
)

DEMANDS_SCHEMA = CatalogueSchema(
    id_prefix="demand",
    searchable=(
        "title",
        "keywords",
        "description",
        "technical_indicators",
        "organization_name",
    ),
    filterable=(
        "listing_id",
        "field",
        "district_code",
        "organization_id",
        "cooperation_modes",
        "budget_min_fen",
        "budget_max_fen",
        "budget_negotiable",
        "deadline",
        "status",
        "published_at",
    ),
    sortable=("published_at", "budget_max_fen", "deadline", "listing_id"),
    facetable=("field", "district_code", "cooperation_modes", "status"),
    highlighted=("title", "keywords", "organization_name"),
    cropped=("description", "technical_indicators"),
    list_attributes=("keywords", "cooperation_modes"),
)

CATALOGUE_SCHEMAS: dict[Catalogue, CatalogueSchema] = {
    "results": RESULTS_SCHEMA,
    "demands": DEMANDS_SCHEMA,
}

# Meilisearch's rule for document ids; the local engine enforces it too, so that a bad
# id fails in development rather than in production.
VALID_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,511}$")

# Section, class, subclass, then main group and subgroup: H01M10/052.
_IPC_CODE = re.compile(r"^([A-H])(\d{2})([A-Z])(\d{1,4})/(\d{2,6})$")
_IPC_PARTIAL = re.compile(r"^([A-H])(?:(\d{2})(?:([A-Z])(?:(\d{1,4})(?:/(\d{2,6}))?)?)?)?$")


def document_id(catalogue: Catalogue, listing_id: int) -> str:
    """Engine id for a listing: only [A-Za-z0-9_-], as Meilisearch requires."""
    if isinstance(listing_id, bool) or not isinstance(listing_id, int) or listing_id < 0:
        raise DocumentError(f"listing_id must be a non-negative int, got {listing_id!r}")
    return f"{CATALOGUE_SCHEMAS[catalogue].id_prefix}-{listing_id}"


def normalize_ipc_code(code: str) -> str:
    """`h01m 10/052` -> `H01M10/052`; raises DocumentError for anything not IPC-shaped."""
    compact = re.sub(r"\s+", "", fold_for_search(code)).upper()
    if not _IPC_PARTIAL.match(compact):
        raise DocumentError(f"not an IPC code: {code!r}")
    return compact


def normalize_ipc_prefix(prefix: str) -> str:
    """A filter value for `ipc_prefixes`: a bare main group `H01M10` means `H01M10/00`."""
    compact = normalize_ipc_code(prefix)
    match = _IPC_PARTIAL.match(compact)
    assert match is not None  # normalize_ipc_code checked the shape
    group, subgroup = match.group(4), match.group(5)
    if group is not None and subgroup is None:
        return f"{compact}/00"
    return compact


def ipc_prefixes(codes: Iterable[str]) -> list[str]:
    """Every level a code belongs to, so that one equality filter finds all of them.

    H01M10/052 -> H, H01, H01M, H01M10/00, H01M10/052. Finer subgroup levels are
    not derivable from the code itself (IPC marks them with dots in the scheme), so a
    subgroup belongs to its main group only.
    """
    prefixes: dict[str, None] = {}
    for code in codes:
        compact = normalize_ipc_code(code)
        match = _IPC_CODE.match(compact)
        if match is None:
            prefixes[normalize_ipc_prefix(compact)] = None
            continue
        section, klass, subclass, group, _subgroup = match.groups()
        for prefix in (
            section,
            f"{section}{klass}",
            f"{section}{klass}{subclass}",
            f"{section}{klass}{subclass}{group}/00",
            compact,
        ):
            prefixes[prefix] = None
    return list(prefixes)


def result_document(fields: Mapping[str, Any]) -> ResultDocument:
    """Build a result (科技成果 / patent) document from a listing's plain fields.

    Required: listing_id, title, status. Everything else may be missing. `price_fen`
    None means 面议 (negotiable); `published_at` may be a datetime or a unix timestamp.
    """
    listing_id = _required_int(fields, "listing_id")
    price_fen = _optional_fen(fields, "price_fen")
    ipc_codes = [normalize_ipc_code(code) for code in _strings(fields, "ipc_codes")]
    return ResultDocument(
        id=document_id("results", listing_id),
        listing_id=listing_id,
        kind=_optional_text(fields, "kind"),
        title=_required_text(fields, "title"),
        summary=_text(fields, "summary"),
        keywords=_texts(fields, "keywords"),
        field=_choice(fields, "field", TECHNICAL_FIELDS),
        ipc_codes=ipc_codes,
        ipc_prefixes=ipc_prefixes(ipc_codes),
        district_code=_optional_code(fields, "district_code"),
        organization_id=_optional_int(fields, "organization_id"),
        organization_name=_text(fields, "organization_name"),
        maturity_stage=_choice(fields, "maturity_stage", MATURITY_STAGES),
        transfer_modes=_choices(fields, "transfer_modes", TRANSFER_MODES),
        price_fen=price_fen,
        price_negotiable=bool(fields.get("price_negotiable", price_fen is None)),
        status=_required_text(fields, "status"),
        published_at=_optional_timestamp(fields, "published_at"),
        discipline=_optional_text(fields, "discipline"),
        inventors=_texts(fields, "inventors"),
    )


def demand_document(fields: Mapping[str, Any]) -> DemandDocument:
    """Build a demand (技术需求) document from a listing's plain fields.

    A budget with only a maximum gets a minimum of 0 so that budget-range filters (which
    test for overlap) treat "up to X" as the range 0..X. No budget at all means 面议.
    """
    listing_id = _required_int(fields, "listing_id")
    budget_min = _optional_fen(fields, "budget_min_fen")
    budget_max = _optional_fen(fields, "budget_max_fen")
    if budget_min is None and budget_max is not None:
        budget_min = 0
    if budget_min is not None and budget_max is not None and budget_min > budget_max:
        raise DocumentError(f"budget_min_fen {budget_min} is above budget_max_fen {budget_max}")
    return DemandDocument(
        id=document_id("demands", listing_id),
        listing_id=listing_id,
        title=_required_text(fields, "title"),
        description=_text(fields, "description"),
        technical_indicators=_text(fields, "technical_indicators"),
        keywords=_texts(fields, "keywords"),
        field=_choice(fields, "field", TECHNICAL_FIELDS),
        ipc_codes=[normalize_ipc_code(code) for code in _strings(fields, "ipc_codes")],
        district_code=_optional_code(fields, "district_code"),
        organization_id=_optional_int(fields, "organization_id"),
        organization_name=_text(fields, "organization_name"),
        cooperation_modes=_choices(fields, "cooperation_modes", COOPERATION_MODES),
        budget_min_fen=budget_min,
        budget_max_fen=budget_max,
        budget_negotiable=bool(
            fields.get("budget_negotiable", budget_min is None and budget_max is None)
        ),
        deadline=_optional_timestamp(fields, "deadline"),
        status=_required_text(fields, "status"),
        published_at=_optional_timestamp(fields, "published_at"),
    )


def with_vector(document: Mapping[str, Any], vector: VectorLike | None) -> dict[str, Any]:
    """A copy of `document` carrying `vector` (None: the text has no vector yet).

    The vector becomes a list of plain floats (a numpy row is not JSON); one with a
    non-finite component is a bug upstream and raises DocumentError. Its length is
    checked by the engine, which knows its dimensions.
    """
    return {**document, VECTOR_KEY: None if vector is None else vector_values(vector)}


def vector_values(vector: VectorLike) -> list[float]:
    """`vector` as a non-empty list of finite floats, or DocumentError."""
    values = [float(value) for value in vector]
    if not values:
        raise DocumentError("a vector must have at least one component")
    if not all(math.isfinite(value) for value in values):
        raise DocumentError("a vector must have finite components only")
    return values


def document_vector(document: Mapping[str, Any]) -> list[float] | None:
    """The document's vector, None when it has none (missing key or None)."""
    vector = document.get(VECTOR_KEY)
    return None if vector is None else vector_values(vector)


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DocumentError(f"{name} must be text, got {type(value).__name__}")
    return fold_for_search(value)


def _required_text(fields: Mapping[str, Any], name: str) -> str:
    value = _text(fields, name)
    if not value:
        raise DocumentError(f"{name} is required")
    return value


def _optional_text(fields: Mapping[str, Any], name: str) -> str | None:
    return _text(fields, name) or None


def _optional_code(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else str(value)


def _strings(fields: Mapping[str, Any], name: str) -> list[str]:
    values = fields.get(name) or []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise DocumentError(f"{name} must be a list of text")
    return [str(value) for value in values if str(value).strip()]


def _texts(fields: Mapping[str, Any], name: str) -> list[str]:
    return list(dict.fromkeys(fold_for_search(value) for value in _strings(fields, name)))


def _choice(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _optional_text(fields, name)
    if value is not None and value not in allowed:
        raise DocumentError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return value


def _choices(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> list[str]:
    values = _texts(fields, name)
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise DocumentError(f"{name} {unknown!r} not in {', '.join(allowed)}")
    return values


def _optional_int(fields: Mapping[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DocumentError(f"{name} must be an int, got {value!r}")
    return value


def _required_int(fields: Mapping[str, Any], name: str) -> int:
    value = _optional_int(fields, name)
    if value is None:
        raise DocumentError(f"{name} is required")
    return value


def _optional_fen(fields: Mapping[str, Any], name: str) -> int | None:
    """Money is an integer count of fen; a float here is a bug upstream, not rounding."""
    value = _optional_int(fields, name)
    if value is not None and value < 0:
        raise DocumentError(f"{name} must not be negative")
    return value


def _optional_timestamp(fields: Mapping[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(aware.timestamp())
    if isinstance(value, date):
        return int(datetime.combine(value, time.min, tzinfo=UTC).timestamp())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DocumentError(f"{name} must be a datetime, date or unix timestamp, got {value!r}")
