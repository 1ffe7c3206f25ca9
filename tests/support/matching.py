"""Matching test helpers: the catalogue driver, an engine for the app, and indexing.

Indexing here reads published rows straight into the engine rather than running the
outbox worker: these tests are about matching, and must not depend on the worker's
timing. (The worker path is exercised by the discovery tests and the benchmark.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from market.discovery import documents as discovery_documents
from market.discovery.engine import set_app_search_engine
from market.listings.models import Demand, ListingStatus, Result
from search.backend import SearchBackend
from search.local import LocalSearchEngine
from search.meili import MeilisearchEngine
from tests.support.catalogue import Catalogue, catalogue, demand_payload, result_payload
from tests.support.meili_server import MeilisearchServer, meilisearch_server

__all__ = ["catalogue", "demand_payload", "meilisearch_server", "result_payload"]


@pytest.fixture
def local_engine(app: FastAPI) -> Iterator[LocalSearchEngine]:
    """An empty embedded engine used by the app for this test only."""
    previous = getattr(app.state, "search_engine", None)
    engine = LocalSearchEngine()
    engine.ensure_indexes()
    set_app_search_engine(app, engine)
    yield engine
    set_app_search_engine(app, previous)
    engine.close()


@pytest.fixture
def meili_engine(app: FastAPI, meilisearch_server: MeilisearchServer) -> Iterator[SearchBackend]:
    previous = getattr(app.state, "search_engine", None)
    engine = MeilisearchEngine(
        meilisearch_server.url,
        meilisearch_server.master_key,
        index_prefix=f"test_{uuid.uuid4().hex[:12]}",
    )
    engine.ensure_indexes()
    set_app_search_engine(app, engine)
    yield engine
    set_app_search_engine(app, previous)
    engine.drop_indexes()


def index_published(search_engine: SearchBackend, db_engine: Engine) -> None:
    """Put every published listing into the engine, as the worker would."""
    with Session(db_engine) as session:
        for model, catalogue_name in ((Result, "results"), (Demand, "demands")):
            rows = session.exec(select(model).where(model.status == ListingStatus.PUBLISHED))
            documents = [
                discovery_documents.search_document(cast("Result | Demand", row)) for row in rows
            ]
            if documents:
                search_engine.upsert(catalogue_name, documents)  # type: ignore[arg-type]


MAGNET_DEMAND: dict[str, Any] = {
    "title": "寻求高矫顽力钕铁硼永磁材料晶界扩散技术",
    "description": "烧结钕铁硼磁体重稀土用量高，希望引进晶界扩散工艺。",
    "keywords": ["钕铁硼", "晶界扩散", "永磁材料"],
    "field": "新材料",
    "ipc_codes": ["H01F1/057"],
    "cooperation_modes": ["合作开发", "转让"],
    "budget_min_fen": 0,
    "budget_max_fen": 200_000_000,
}
MAGNET_RESULT: dict[str, Any] = {
    "title": "烧结钕铁硼磁体晶界扩散重稀土减量技术",
    "summary": "通过晶界扩散镝铽降低重稀土用量百分之三十以上，同时保持高温矫顽力。",
    "keywords": ["钕铁硼", "晶界扩散", "重稀土"],
    "field": "新材料",
    "ipc_codes": ["H01F1/057"],
    "maturity_stage": "中试",
    "transfer_modes": ["转让", "许可"],
    "price_fen": 100_000_000,
}
OFF_TOPIC_RESULT: dict[str, Any] = {
    "title": "一种水稻抗倒伏栽培方法",
    "summary": "通过调控氮肥施用时期与密度提高水稻茎秆强度和抗倒伏能力。",
    "keywords": ["水稻", "抗倒伏"],
    "field": "现代农业",
    "ipc_codes": ["A01G22/22"],
    "maturity_stage": "研发",
    "transfer_modes": ["技术服务"],
}
# Shares the demand's words (the engine finds it) but little else: field, price and
# maturity disagree, so the re-ranking must put it below MAGNET_RESULT.
WEAK_RESULT: dict[str, Any] = {
    "title": "高矫顽力钕铁硼永磁材料晶界扩散设备",
    "summary": "用于钕铁硼磁体晶界扩散的真空热处理设备，处理能力每炉五百公斤。",
    "keywords": ["钕铁硼", "晶界扩散", "永磁材料", "热处理设备"],
    "field": "高端装备",
    "ipc_codes": ["C21D1/773"],
    "maturity_stage": "小试",
    "transfer_modes": ["技术服务"],
    "price_fen": 900_000_000,
}


class Scene:
    """A published magnet demand, three published results, and the people around them."""

    def __init__(self, catalogue: Catalogue, search_engine: SearchBackend) -> None:
        self.catalogue = catalogue
        market = catalogue.market
        self.enterprise = market.enterprise_member()
        self.institute = market.institute_member()
        self.broker = market.broker()
        self.bureau = catalogue.bureau
        self.stranger = market.enterprise_member()
        self.demand = catalogue.published("demand", self.enterprise, **MAGNET_DEMAND)
        self.result = catalogue.published("result", self.institute, **MAGNET_RESULT)
        self.weak = catalogue.published("result", self.institute, **WEAK_RESULT)
        self.off_topic = catalogue.published("result", self.institute, **OFF_TOPIC_RESULT)
        index_published(search_engine, catalogue.engine)


@pytest.fixture
def scene(catalogue: Catalogue, local_engine: LocalSearchEngine) -> Scene:
    return Scene(catalogue, local_engine)
