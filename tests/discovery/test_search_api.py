"""Search over the API: indexing through the outbox, visibility, filters, facets, errors.

Runs on the local engine and, where marked with `any_search_engine`, on Meilisearch too.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.discovery import indexing
from market.discovery.engine import set_app_embedder
from search.backend import SearchBackend, SearchPage, SearchQuery
from search.documents import Catalogue as CatalogueName
from search.meili import MeilisearchEngine
from tests.support.catalogue import Catalogue
from tests.support.indexing import ids_of
from tests.support.semantic import e5, index_with_vectors, plain_demand, record_payload

pytestmark = pytest.mark.usefixtures("any_search_engine")


def search(
    api: TestClient, kind: str, headers: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    response = api.get(f"/search/{kind}s", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("kind", ["result", "demand"])
def test_a_published_listing_is_searchable_once_the_worker_drained_the_outbox(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer, kind: str
) -> None:
    owner = catalogue.maker(kind)
    listing = catalogue.published(kind, owner, keywords=["钕铁硼", "永磁"])

    assert search(api, kind, q="钕铁硼")["total"] == 0  # nothing indexed before the worker
    assert indexer.drain() == 3  # created, submitted, published

    page = search(api, kind, q="钕铁硼")
    assert ids_of(page) == [listing["id"]]
    hit = page["items"][0]
    assert hit["status"] == "published"
    assert hit["organization_id"] == owner.organization_id
    assert "<em>" in hit["highlights"]["keywords"]


@pytest.mark.parametrize("kind", ["result", "demand"])
def test_withdrawn_listings_leave_public_search_but_stay_visible_to_their_owner(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer, kind: str
) -> None:
    owner = catalogue.maker(kind)
    other = catalogue.maker(kind)
    listing = catalogue.published(kind, owner)
    indexer.drain()
    response = api.post(
        f"/{kind}s/{listing['id']}/withdraw", json={"reason": "已转让"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    indexer.drain()

    assert search(api, kind)["total"] == 0
    assert search(api, kind, headers=other.headers)["total"] == 0
    own = search(api, kind, headers=owner.headers)
    assert ids_of(own) == [listing["id"]]
    assert own["items"][0]["status"] == "withdrawn"
    assert ids_of(search(api, kind, headers=catalogue.bureau.headers)) == [listing["id"]]


@pytest.mark.parametrize("kind", ["result", "demand"])
def test_owners_find_their_drafts_and_submissions_and_nobody_else_does(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer, kind: str
) -> None:
    owner = catalogue.maker(kind)
    colleague_elsewhere = catalogue.maker(kind)
    draft = catalogue.create(kind, owner, keywords=["草稿专用词"])
    submitted = catalogue.submitted(kind, owner, keywords=["草稿专用词"])
    indexer.drain()

    own = search(api, kind, headers=owner.headers, q="草稿专用词", facets=["status"])
    assert sorted(ids_of(own)) == sorted([draft["id"], submitted["id"]])
    assert own["facets"]["status"] == {"draft": 1, "submitted": 1}
    assert ids_of(search(api, kind, headers=owner.headers, q="草稿专用词", status=["draft"])) == [
        draft["id"]
    ]
    for headers in ({}, colleague_elsewhere.headers):
        assert search(api, kind, headers=headers, q="草稿专用词")["total"] == 0
    assert search(api, kind, headers=catalogue.bureau.headers, q="草稿专用词")["total"] == 2


@pytest.mark.parametrize("kind", ["result", "demand"])
def test_editing_and_deleting_a_draft_reach_the_index(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer, kind: str
) -> None:
    owner = catalogue.maker(kind)
    draft = catalogue.create(kind, owner, keywords=["旧的关键词"])
    indexer.drain()
    edited = api.patch(
        f"/{kind}s/{draft['id']}", json={"keywords": ["新的关键词"]}, headers=owner.headers
    )
    assert edited.status_code == 200, edited.text
    indexer.drain()
    assert search(api, kind, headers=owner.headers, q="旧的关键词")["total"] == 0
    assert ids_of(search(api, kind, headers=owner.headers, q="新的关键词")) == [draft["id"]]

    deleted = api.delete(f"/{kind}s/{draft['id']}", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    indexer.drain()
    assert search(api, kind, headers=owner.headers, q="新的关键词")["total"] == 0


def test_facets_filters_sort_and_totals(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    owner = catalogue.maker("result")
    cheap = catalogue.published(
        "result", owner, field="新材料", price_fen=1_000_000, maturity_stage="中试"
    )
    dear = catalogue.published(
        "result", owner, field="新材料", price_fen=9_000_000, maturity_stage="产业化"
    )
    other = catalogue.published(
        "result",
        owner,
        field="高端装备",
        price_fen=5_000_000,
        ipc_codes=["B23K26/00"],
        maturity_stage="中试",
    )
    indexer.drain()

    page = search(api, "result", facets=["field", "maturity_stage"])
    assert page["total"] == 3
    assert page["total_source"] == "engine"
    assert page["facets"]["field"] == {"新材料": 2, "高端装备": 1}
    assert page["facets"]["maturity_stage"] == {"中试": 2, "产业化": 1}

    by_price = search(api, "result", sort="price_fen:desc")
    assert ids_of(by_price) == [dear["id"], other["id"], cheap["id"]]
    assert ids_of(search(api, "result", field="新材料", sort="price_fen:asc")) == [
        cheap["id"],
        dear["id"],
    ]
    assert ids_of(search(api, "result", price_min_fen=2_000_000, price_max_fen=6_000_000)) == [
        other["id"]
    ]
    assert ids_of(search(api, "result", ipc="B23K")) == [other["id"]]
    assert ids_of(search(api, "result", maturity_stage=["产业化"])) == [dear["id"]]

    first = search(api, "result", sort="price_fen:asc", limit=2)
    second = search(api, "result", sort="price_fen:asc", limit=2, offset=2)
    assert first["total"] == second["total"] == 3
    assert ids_of(first) + ids_of(second) == [cheap["id"], other["id"], dear["id"]]


def test_demand_filters_budget_overlap_and_cooperation_mode(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    owner = catalogue.maker("demand")
    small = catalogue.published(
        "demand",
        owner,
        budget_min_fen=100_000,
        budget_max_fen=500_000,
        cooperation_modes=["技术服务"],
    )
    large = catalogue.published(
        "demand",
        owner,
        budget_min_fen=5_000_000,
        budget_max_fen=9_000_000,
        cooperation_modes=["合作开发"],
    )
    indexer.drain()

    assert ids_of(search(api, "demand", budget_min_fen=1_000_000)) == [large["id"]]
    assert ids_of(search(api, "demand", budget_max_fen=200_000)) == [small["id"]]
    assert ids_of(search(api, "demand", cooperation_mode=["技术服务"])) == [small["id"]]
    facets = search(api, "demand", facets=["cooperation_modes"])["facets"]
    assert facets["cooperation_modes"] == {"技术服务": 1, "合作开发": 1}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"ipc": "Z99"}, "ipc"),
        ({"facets": ["price_fen"]}, "facets"),
        ({"sort": "title"}, "sort"),
        ({"price_min_fen": 5, "price_max_fen": 1}, "price_min_fen"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    api: TestClient, params: dict[str, Any], field: str
) -> None:
    response = api.get("/search/results", params=params)
    assert response.status_code == 422, response.text
    assert any(field in error["field"] for error in response.json()["errors"])


def test_an_unknown_cooperation_mode_is_422(api: TestClient) -> None:
    response = api.get("/search/demands", params={"cooperation_mode": "技术入股"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.cooperation_mode"


class CappedCountEngine:
    """Answers like an engine whose hit count was capped (Meilisearch past maxTotalHits)."""

    def __init__(self, inner: SearchBackend) -> None:
        self._inner = inner

    async def search_async(self, catalogue: CatalogueName, query: SearchQuery) -> SearchPage:
        page = await self._inner.search_async(catalogue, query)
        return replace(page, total=min(page.total, 1), total_is_exact=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_totals_stay_exact_when_the_engine_caps_its_count(
    client: TestClient,
    catalogue: Catalogue,
    indexer: indexing.Indexer,
    search_engine: SearchBackend,
) -> None:
    owner = catalogue.maker("result")
    for _ in range(3):
        catalogue.published("result", owner)
    indexer.drain()
    client.app.state.search_engine = CappedCountEngine(search_engine)  # type: ignore[attr-defined]
    try:
        page = search(client, "result", limit=1)
    finally:
        client.app.state.search_engine = None  # type: ignore[attr-defined]
    assert page["total"] == 3
    assert page["total_source"] == "facets"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_engine_is_a_503_and_browsing_still_works(
    client: TestClient, catalogue: Catalogue
) -> None:
    owner = catalogue.maker("result")
    listing = catalogue.published("result", owner)
    down = MeilisearchEngine(f"http://127.0.0.1:{closed_port()}", "key", request_timeout_s=2)
    client.app.state.search_engine = down  # type: ignore[attr-defined]
    try:
        for kind in ("results", "demands"):
            response = client.get(f"/search/{kind}", params={"q": "正极材料"})
            assert response.status_code == 503, response.text
            problem = response.json()
            assert problem["code"] == "search_unavailable"
            assert "cannot be reached" in problem["detail"]
            assert "127.0.0.1" not in problem["detail"]  # the engine's address stays private
            assert response.headers["retry-after"]
        browse = client.get("/results")
        assert browse.status_code == 200
        assert [item["id"] for item in browse.json()["items"]] == [listing["id"]]
    finally:
        client.app.state.search_engine = None  # type: ignore[attr-defined]


def test_a_closed_local_engine_is_a_503_too(
    client: TestClient, local_search_engine: SearchBackend
) -> None:
    local_search_engine.close()  # type: ignore[attr-defined]
    client.app.state.search_engine = local_search_engine  # type: ignore[attr-defined]
    try:
        response = client.get("/search/results")
    finally:
        client.app.state.search_engine = None  # type: ignore[attr-defined]
    assert response.status_code == 503
    assert response.json()["code"] == "search_unavailable"


def test_a_meilisearch_app_keeps_one_search_session_while_it_runs(
    engine: Engine, tmp_path: Any, search_engine: SearchBackend
) -> None:
    """The app opens its event loop's search session at start-up and closes it at
    shutdown: searches reuse kept-alive connections, and nothing is left open."""
    if not isinstance(search_engine, MeilisearchEngine):
        pytest.skip("the local engine has no connections to keep")
    from market.app import create_app
    from tests.support.settings import make_test_settings

    settings = make_test_settings(
        tmp_path,
        search_backend="meilisearch",
        meili_url=search_engine.url,
        meili_master_key=search_engine.api_key or "",
        meili_index_prefix="session_test",
    )
    app = create_app(settings, engine)
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/search/results", params={"q": "电池"}).status_code == 200
        meili = app.state.search_engine
        [session] = meili._async_connections._sessions.values()
        assert not session.closed
    assert session.closed
    assert meili._async_connections._sessions == {}
    meili.drop_indexes()


# --- words and meaning ------------------------------------------------------------------------


def test_single_characters_do_not_decide_a_search(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    # jieba cuts 高镍三元 into 高 / 镍 / 三元: the engines used to return every listing
    # with 高 in it. The run 高镍 is now one word (a phrase for Meilisearch).
    owner = catalogue.maker("result")
    right = catalogue.published(
        "result", owner, title="高镍三元正极材料的包覆改性研究", keywords=["正极材料", "包覆"]
    )
    # Titles where jieba, too, cuts 高 off as a character of its own (高氮, 高含盐, 高轨).
    for title in (
        "四嗪类高氮含能化合物的合成及表征",
        "高含盐油藏储层渗透率预测",
        "高轨大功率卫星电源系统设计",
    ):
        catalogue.published(
            "result",
            owner,
            title=title,
            keywords=["工艺优化"],
            summary="该成果面向工业领域的实际应用，已完成中试验证，可提供转让。",
        )
    in_summary = catalogue.published(
        "result",
        owner,
        title="锂电池正极前驱体共沉淀工艺",
        keywords=["前驱体"],
        summary="采用高镍三元前驱体与共沉淀工艺控制粒径分布，提高振实密度和循环寿命。",
    )
    indexer.drain()
    assert ids_of(search(api, "result", q="高镍三元")) == [right["id"], in_summary["id"]]
    assert ids_of(search(api, "result", q="高镍")) == [right["id"], in_summary["id"]]
    assert len(search(api, "result", q="高")["items"]) == 5  # one character, meant as typed


def semantic_scene(
    api: TestClient, catalogue: Catalogue, engine: Engine, search_engine: SearchBackend
) -> dict[int, dict[str, Any]]:
    """Records 626 (bromination of a vanillin intermediate), 37 and 16 as published
    results with their shipped vectors; the app embeds queries with e5."""
    set_app_embedder(api.app, e5())  # type: ignore[arg-type]
    owner = catalogue.maker("result")
    listings = {
        position: catalogue.published("result", owner, **record_payload(position))
        for position in (626, 37, 16)
    }
    index_with_vectors(engine, search_engine)
    return listings


def test_free_text_search_is_hybrid_by_default_and_keywords_only_on_request(
    api: TestClient, catalogue: Catalogue, engine: Engine, search_engine: SearchBackend
) -> None:
    listings = semantic_scene(api, catalogue, engine, search_engine)
    try:
        # Shares no word with the record's title or keywords (the plain-demand check).
        title = plain_demand("pd009")["title"]
        hybrid = search(api, "result", q=title)
        assert ids_of(hybrid)[0] == listings[626]["id"]
        # Scored by the vector side (Meilisearch reports no cosine for its keyword hits).
        assert any((item["semantic_score"] or 0) > 0.8 for item in hybrid["items"])
        # Sorting, facets and filters still hold on a hybrid search.
        newest = search(
            api, "result", q=title, sort="published_at:desc", field="绿色石化", facets=["field"]
        )
        assert {item["field"] for item in newest["items"]} <= {"绿色石化"}
        assert newest["total"] == sum(newest["facets"]["field"].values())
        words_only = search(api, "result", q=title, semantic="false")
        assert all(item["semantic_score"] is None for item in words_only["items"])
        assert len(words_only["items"]) < len(hybrid["items"])
        set_app_embedder(api.app, None)  # type: ignore[arg-type]
        no_embedder = search(api, "result", q=title)  # silently keywords only
        assert ids_of(no_embedder) == ids_of(words_only)
    finally:
        set_app_embedder(api.app, None)  # type: ignore[arg-type]


def test_similar_listings_by_meaning_and_who_may_ask(
    api: TestClient, catalogue: Catalogue, engine: Engine, search_engine: SearchBackend
) -> None:
    listings = semantic_scene(api, catalogue, engine, search_engine)
    try:
        source = listings[626]
        response = api.get(f"/results/{source['id']}/similar")
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert source["id"] not in [item["id"] for item in items]  # never itself
        assert {item["id"] for item in items} == {listings[37]["id"], listings[16]["id"]}
        assert all(item["semantic_score"] is not None for item in items)

        stranger = catalogue.maker("result")
        draft = catalogue.create("result", catalogue.maker("result"))
        hidden = api.get(f"/results/{draft['id']}/similar", headers=stranger.headers)
        assert hidden.status_code == 404, hidden.text
        assert api.get("/demands/999999/similar").status_code == 404
        assert api.get(f"/results/{source['id']}/similar", params={"limit": 0}).status_code == 422
    finally:
        set_app_embedder(api.app, None)  # type: ignore[arg-type]


def test_a_patent_number_however_written_finds_its_result(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    owner = catalogue.maker("result")
    patent = catalogue.published(
        "result",
        owner,
        ip_form="发明专利",
        patent_application_number="CN201610311380.X",
        patent_publication_number="CN106022747A",
        inventors=["张伟", "李娜"],
    )
    draft = catalogue.create(
        "result", owner, ip_form="发明专利", patent_application_number="CN201710000001.X"
    )
    indexer.drain()
    for typed in (
        "CN201610311380.X",
        "201610311380X",
        "ZL 2016 1031 1380.X",
        "201610311380",
        "ｃｎ２０１６１０３１１３８０．Ｘ",
        "CN106022747A",
        "106022747A",
    ):
        assert ids_of(search(api, "result", q=typed)) == [patent["id"]], typed
    # Visibility and filters hold: another organisation's draft stays hidden.
    assert search(api, "result", q="CN201710000001.X")["items"] == []
    assert ids_of(search(api, "result", headers=owner.headers, q="201710000001")) == [draft["id"]]
    assert search(api, "result", q="CN201610311380.X", field="现代农业")["items"] == []


def test_the_holders_name_finds_its_listings(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    holder = catalogue.market.institute_member(name="甬江材料与化工研究院")
    other = catalogue.market.institute_member(name="四明生命健康研究所")
    mine = catalogue.published("result", holder)
    catalogue.published("result", other)
    indexer.drain()
    assert ids_of(search(api, "result", q="甬江材料与化工研究院")) == [mine["id"]]


def test_an_inventors_name_finds_the_patent(
    api: TestClient, catalogue: Catalogue, indexer: indexing.Indexer
) -> None:
    owner = catalogue.maker("result")
    patent = catalogue.published("result", owner, inventors=["欧阳明远", "李娜"])
    catalogue.published("result", owner, inventors=["王强"])
    indexer.drain()
    for name in ("欧阳明远", "李娜"):
        assert ids_of(search(api, "result", q=name)) == [patent["id"]], name
