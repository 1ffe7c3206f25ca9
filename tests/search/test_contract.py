"""The search contract: every test runs against the local engine and Meilisearch.

Where the engines legitimately differ, the test asserts per engine and docs/SEARCH.md
("Engines and how they differ") says why.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import meilisearch
import numpy as np
import pytest
from meilisearch.models.embedders import UserProvidedEmbedder

from search.backend import (
    MAX_PAGE_SIZE,
    InvalidQueryError,
    SearchBackend,
    SearchError,
    SearchFilters,
    SearchPage,
    SearchQuery,
    SearchUnavailable,
    SortKey,
    Visibility,
)
from search.documents import (
    DEFAULT_VECTOR_DIMENSIONS,
    EMBEDDER_NAME,
    Catalogue,
    demand_document,
    result_document,
    with_vector,
)
from search.local import LocalSearchEngine
from search.meili import MeilisearchEngine
from search.text import extract_key_terms
from tests.support.meili_server import MeilisearchServer

PUBLISHED_AT = 1_700_000_000
YUAN = 100  # fen per yuan

MAGNET = 1
MOTOR = 2
BATTERY = 3
GRAPHENE_DRAFT = 4
SORTING = 5
AQUACULTURE = 6

INSTITUTE_OF_MATERIALS = 10
UNIVERSITY = 11


def _result(listing_id: int, **fields: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "listing_id": listing_id,
        "status": "published",
        "published_at": PUBLISHED_AT + listing_id,
        "kind": "发明专利",
    }
    return dict(result_document({**defaults, **fields}))


RESULTS = [
    _result(
        MAGNET,
        title="高性能烧结钕铁硼永磁材料制备技术",
        summary="通过晶界扩散重稀土降低镝含量,矫顽力提高30%,适用于新能源汽车驱动电机。",
        keywords=["钕铁硼", "稀土永磁"],
        field="新材料",
        ipc_codes=["H01F1/057"],
        district_code="330212",
        organization_id=INSTITUTE_OF_MATERIALS,
        organization_name="中国科学院宁波材料技术与工程研究所",
        maturity_stage="中试",
        transfer_modes=["转让", "许可"],
        price_fen=500_000 * YUAN,
    ),
    _result(
        MOTOR,
        title="永磁同步电机高效矢量控制系统",
        summary="无位置传感器矢量控制算法,电机效率提升5%。",
        keywords=["永磁同步电机", "矢量控制"],
        field="高端装备",
        ipc_codes=["H02P21/00"],
        district_code="330206",
        organization_id=UNIVERSITY,
        organization_name="宁波大学",
        maturity_stage="产业化",
        transfer_modes=["许可"],
        price_fen=200_000 * YUAN,
    ),
    _result(
        BATTERY,
        title="锂离子电池正极材料及电池管理系统",
        summary="高镍三元正极材料与BMS均衡策略。",
        keywords=["锂离子电池", "BMS"],
        field="新材料",
        ipc_codes=["H01M10/052", "H01M4/58"],
        district_code="330212",
        organization_id=12,
        organization_name="宁波锂电研究院",
        maturity_stage="小试",
        transfer_modes=["合作开发"],
        price_fen=None,
    ),
    _result(
        GRAPHENE_DRAFT,
        title="石墨烯导热膜规模化制备",
        summary="石墨烯导热膜连续化生产工艺。",
        keywords=["石墨烯", "导热膜"],
        field="新材料",
        ipc_codes=["C01B32/184"],
        district_code="330203",
        organization_id=INSTITUTE_OF_MATERIALS,
        organization_name="中国科学院宁波材料技术与工程研究所",
        maturity_stage="研发",
        transfer_modes=["作价投资"],
        price_fen=800_000 * YUAN,
        status="draft",
    ),
    _result(
        SORTING,
        title="基于机器视觉的PLC分拣控制系统",
        summary="工业相机识别包裹,可编程逻辑控制器驱动分拣机构。",
        keywords=["机器视觉", "PLC"],
        field="智能经济",
        ipc_codes=["G06T7/00", "B07C5/342"],
        district_code="330206",
        organization_id=13,
        organization_name="宁波智能制造技术研究院",
        maturity_stage="产业化",
        transfer_modes=["技术服务", "许可"],
        price_fen=50_000 * YUAN,
        kind="软件著作权",
    ),
    _result(
        AQUACULTURE,
        title="海水养殖尾水生态处理技术",
        summary="多级生态塘与人工湿地组合处理养殖尾水。",
        keywords=["尾水处理", "海水养殖"],
        field="海洋产业",
        ipc_codes=["C02F9/00"],
        district_code="330225",
        organization_id=UNIVERSITY,
        organization_name="宁波大学",
        maturity_stage="中试",
        transfer_modes=["转让"],
        price_fen=30_000 * YUAN,
    ),
]

DEMANDS = [
    dict(
        demand_document(
            {
                "listing_id": 101,
                "title": "寻求钕铁硼永磁材料技术合作",
                "description": "企业生产伺服电机,需要高矫顽力磁钢。",
                "technical_indicators": "矫顽力不低于20kOe",
                "keywords": ["钕铁硼"],
                "field": "新材料",
                "district_code": "330212",
                "organization_id": 20,
                "organization_name": "宁波某电机有限公司",
                "cooperation_modes": ["转让", "合作开发"],
                "budget_min_fen": 100_000 * YUAN,
                "budget_max_fen": 600_000 * YUAN,
                "status": "published",
                "published_at": PUBLISHED_AT,
            }
        )
    ),
    dict(
        demand_document(
            {
                "listing_id": 102,
                "title": "征集锂电池热失控预警解决方案",
                "description": "储能电站需要提前预警电池热失控。",
                "keywords": ["锂电池", "热失控"],
                "field": "新材料",
                "district_code": "330206",
                "organization_id": 21,
                "organization_name": "宁波某储能科技有限公司",
                "cooperation_modes": ["技术服务"],
                "budget_max_fen": 50_000 * YUAN,
                "status": "published",
                "published_at": PUBLISHED_AT + 1,
            }
        )
    ),
    dict(
        demand_document(
            {
                "listing_id": 103,
                "title": "智能仓储AGV调度系统需求",
                "description": "多车调度与路径规划。",
                "keywords": ["AGV"],
                "field": "现代物流",
                "district_code": "330211",
                "organization_id": 20,
                "organization_name": "宁波某电机有限公司",
                "cooperation_modes": ["合作开发"],
                "status": "closed",
                "published_at": PUBLISHED_AT + 2,
            }
        )
    ),
]


@pytest.fixture
def market(search_engine: SearchBackend) -> SearchBackend:
    search_engine.upsert("results", RESULTS)
    search_engine.upsert("demands", DEMANDS)
    return search_engine


def search(
    engine: SearchBackend, text: str = "", catalogue: Catalogue = "results", **options: Any
) -> SearchPage:
    return engine.search(catalogue, SearchQuery(text=text, **options))


def listing_ids(page: SearchPage) -> list[int]:
    return [int(hit.document["listing_id"]) for hit in page.hits]


def browse_ids(engine: SearchBackend, **filters: Any) -> set[int]:
    visibility = filters.pop("visibility", Visibility.public())
    page = search(engine, filters=SearchFilters(**filters), visibility=visibility, limit=100)
    assert page.total == len(page.hits)
    return set(listing_ids(page))


# -- text matching ---------------------------------------------------------------------


def test_finds_results_by_chinese_words(market: SearchBackend) -> None:
    page = search(market, "钕铁硼")
    assert listing_ids(page) == [MAGNET]
    assert page.total == 1
    assert page.hits[0].id == "result-1"

    assert set(listing_ids(search(market, "永磁", matching_strategy="all"))) == {MAGNET, MOTOR}


@pytest.mark.parametrize("text", ["½«", '"', "*", "()", "AND", "\U0010ab60"])
def test_queries_of_symbols_or_operators_do_not_fail(market: SearchBackend, text: str) -> None:
    """Search syntax and symbols are plain text to us, never an engine error."""
    page = search(market, text, limit=100)
    assert page.total >= len(page.hits)
    assert all(hit.document["status"] == "published" for hit in page.hits)


def test_last_query_word_matches_as_prefix(market: SearchBackend) -> None:
    assert listing_ids(search(market, "矢量控")) == [MOTOR]


def test_traditional_query_finds_simplified_document(market: SearchBackend) -> None:
    assert listing_ids(search(market, "鋰離子電池")) == [BATTERY]
    assert listing_ids(search(market, "釹鐵硼")) == [MAGNET]


def test_traditional_document_is_found_by_simplified_query(search_engine: SearchBackend) -> None:
    search_engine.upsert("results", [_result(40, title="釹鐵硼磁體回收技術")])
    page = search(search_engine, "钕铁硼磁体")
    assert listing_ids(page) == [40]
    assert page.hits[0].document["title"] == "钕铁硼磁体回收技术"


def test_full_width_latin_matches_half_width(market: SearchBackend) -> None:
    assert listing_ids(search(market, "ＰＬＣ")) == [SORTING]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("NdFeB", MAGNET), ("ndfeb", MAGNET), ("PMSM", MOTOR), ("锂电池", BATTERY)],
)
def test_synonyms_find_the_other_spelling(market: SearchBackend, query: str, expected: int) -> None:
    assert listing_ids(search(market, query)) == [expected]


@pytest.mark.parametrize("strategy", ["frequency", "last"])
def test_demand_phrasing_is_ignored(market: SearchBackend, strategy: str) -> None:
    page = search(market, "寻求钕铁硼永磁材料", matching_strategy=strategy)
    assert listing_ids(page)[0] == MAGNET


def test_frequency_strategy_tolerates_missing_words(market: SearchBackend) -> None:
    # No listing has 伺服 or 磁钢; "all" finds nothing, "frequency" still finds the magnet.
    text = "钕铁硼 伺服 磁钢"
    assert search(market, text, matching_strategy="all").total == 0
    assert listing_ids(search(market, text, matching_strategy="frequency")) == [MAGNET]


def test_all_strategy_needs_every_word(market: SearchBackend) -> None:
    assert listing_ids(search(market, "永磁 矢量", matching_strategy="all")) == [MOTOR]


def test_ranking_scores_are_between_zero_and_one_and_descending(market: SearchBackend) -> None:
    page = search(market, "永磁 电机 矢量", matching_strategy="frequency", show_ranking_score=True)
    scores = [hit.score for hit in page.hits]
    assert page.hits[0].document["listing_id"] == MOTOR
    assert all(score is not None and 0 < score <= 1 for score in scores)
    known = [score for score in scores if score is not None]  # all of them, as just checked
    assert known == sorted(known, reverse=True)
    assert search(market, "永磁").hits[0].score is None


def test_demands_are_searchable(market: SearchBackend) -> None:
    assert listing_ids(search(market, "钕铁硼", catalogue="demands")) == [101]
    assert listing_ids(search(market, "热失控预警", catalogue="demands")) == [102]


# -- filters and visibility ------------------------------------------------------------


def test_every_result_filter(market: SearchBackend) -> None:
    assert browse_ids(market, field="新材料") == {MAGNET, BATTERY}
    assert browse_ids(market, field=["新材料", "海洋产业"]) == {MAGNET, BATTERY, AQUACULTURE}
    assert browse_ids(market, district_code="330206") == {MOTOR, SORTING}
    assert browse_ids(market, maturity_stage="产业化") == {MOTOR, SORTING}
    assert browse_ids(market, transfer_mode="许可") == {MAGNET, MOTOR, SORTING}
    assert browse_ids(market, transfer_mode=["合作开发", "转让"]) == {MAGNET, BATTERY, AQUACULTURE}
    assert browse_ids(market, kind="软件著作权") == {SORTING}
    assert browse_ids(market, organization_id=UNIVERSITY) == {MOTOR, AQUACULTURE}
    assert browse_ids(market, field="新材料", district_code="330212") == {MAGNET, BATTERY}


def test_price_range_filters_exclude_negotiable(market: SearchBackend) -> None:
    assert browse_ids(market, price_min_fen=200_000 * YUAN) == {MAGNET, MOTOR}
    assert browse_ids(market, price_max_fen=50_000 * YUAN) == {SORTING, AQUACULTURE}
    assert browse_ids(market, price_min_fen=40_000 * YUAN, price_max_fen=300_000 * YUAN) == {
        MOTOR,
        SORTING,
    }


def test_status_filter_with_unrestricted_visibility(market: SearchBackend) -> None:
    everything = Visibility.everything()
    assert browse_ids(market, status="draft", visibility=everything) == {GRAPHENE_DRAFT}
    assert browse_ids(market, visibility=everything) == {
        MAGNET,
        MOTOR,
        BATTERY,
        GRAPHENE_DRAFT,
        SORTING,
        AQUACULTURE,
    }


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("H", {MAGNET, MOTOR, BATTERY}),
        ("H01", {MAGNET, BATTERY}),
        ("H01M", {BATTERY}),
        ("h01m", {BATTERY}),
        ("H01M10", {BATTERY}),
        ("H01M10/00", {BATTERY}),
        ("H01M10/052", {BATTERY}),
        ("H01M4/00", {BATTERY}),
        ("H02P", {MOTOR}),
        ("G06T7/00", {SORTING}),
        ("A01", set()),
    ],
)
def test_ipc_prefix_filter(market: SearchBackend, prefix: str, expected: set[int]) -> None:
    assert browse_ids(market, ipc_prefix=prefix) == expected


def test_ipc_prefix_filter_rejects_non_ipc_text(market: SearchBackend) -> None:
    with pytest.raises(ValueError, match="not an IPC code"):
        browse_ids(market, ipc_prefix='H01" OR status = "draft')


def test_visibility_published_or_own_organization(market: SearchBackend) -> None:
    public = browse_ids(market)
    assert GRAPHENE_DRAFT not in public
    assert len(public) == 5
    assert browse_ids(market, visibility=Visibility.for_organization(INSTITUTE_OF_MATERIALS)) == {
        *public,
        GRAPHENE_DRAFT,
    }
    assert browse_ids(market, visibility=Visibility.for_organization(UNIVERSITY)) == public
    assert search(market, "石墨烯").total == 0
    owner = Visibility.for_organization(INSTITUTE_OF_MATERIALS)
    assert listing_ids(search(market, "石墨烯", visibility=owner)) == [GRAPHENE_DRAFT]


def test_visibility_applies_together_with_filters(market: SearchBackend) -> None:
    owner = Visibility.for_organization(INSTITUTE_OF_MATERIALS)
    # The OR of the visibility rule must not leak past the other filters.
    assert browse_ids(market, district_code="330206", visibility=owner) == {MOTOR, SORTING}


def test_demand_filters(market: SearchBackend) -> None:
    everything = Visibility.everything()
    assert browse_ids_of_demands(market, cooperation_mode="合作开发") == {101}
    assert browse_ids_of_demands(market, cooperation_mode="合作开发", visibility=everything) == {
        101,
        103,
    }
    assert browse_ids_of_demands(market, field="新材料", district_code="330206") == {102}
    # Budgets are ranges: a filter selects demands whose range overlaps it.
    assert browse_ids_of_demands(market, budget_min_fen=200_000 * YUAN) == {101}
    assert browse_ids_of_demands(market, budget_max_fen=10_000 * YUAN) == {102}
    assert browse_ids_of_demands(market, budget_min_fen=1, budget_max_fen=100_000 * YUAN) == {
        101,
        102,
    }


def browse_ids_of_demands(engine: SearchBackend, **filters: Any) -> set[int]:
    visibility = filters.pop("visibility", Visibility.public())
    page = engine.search(
        "demands",
        SearchQuery(filters=SearchFilters(**filters), visibility=visibility, limit=100),
    )
    return set(listing_ids(page))


@pytest.mark.parametrize(
    ("catalogue", "filters"),
    [
        ("demands", SearchFilters(transfer_mode="许可")),
        ("demands", SearchFilters(ipc_prefix="H01")),
        ("results", SearchFilters(cooperation_mode="许可")),
        ("results", SearchFilters(budget_max_fen=1)),
    ],
)
def test_filters_of_the_other_catalogue_are_rejected(
    market: SearchBackend, catalogue: Catalogue, filters: SearchFilters
) -> None:
    with pytest.raises(InvalidQueryError):
        market.search(catalogue, SearchQuery(filters=filters))


# -- facets, sorting, pagination -----------------------------------------------------


def test_facet_counts(market: SearchBackend) -> None:
    page = search(market, facets=["field", "transfer_modes", "maturity_stage"], limit=1)
    assert page.facets["field"] == {"新材料": 2, "高端装备": 1, "智能经济": 1, "海洋产业": 1}
    assert page.facets["transfer_modes"] == {"许可": 3, "转让": 2, "技术服务": 1, "合作开发": 1}
    assert page.facets["maturity_stage"] == {"中试": 2, "产业化": 2, "小试": 1}
    assert len(page.hits) == 1  # facets count every match, not just the page


def test_facet_counts_follow_text_and_visibility(market: SearchBackend) -> None:
    page = search(market, "永磁", facets=["field"], matching_strategy="all")
    assert page.facets["field"] == {"新材料": 1, "高端装备": 1}
    owner = Visibility.for_organization(INSTITUTE_OF_MATERIALS)
    assert search(market, facets=["field"], visibility=owner).facets["field"]["新材料"] == 3


def test_unknown_facet_and_sort_are_rejected(market: SearchBackend) -> None:
    with pytest.raises(InvalidQueryError):
        search(market, facets=["title"])
    with pytest.raises(InvalidQueryError):
        search(market, sort=[SortKey("title")])
    with pytest.raises(InvalidQueryError):
        SortKey.parse("price_fen:sideways")


def test_sort_by_price_puts_negotiable_last(market: SearchBackend) -> None:
    ascending = search(market, sort=[SortKey.parse("price_fen:asc")])
    assert listing_ids(ascending) == [AQUACULTURE, SORTING, MOTOR, MAGNET, BATTERY]
    descending = search(market, sort=[SortKey.parse("price_fen:desc")])
    assert listing_ids(descending) == [MAGNET, MOTOR, SORTING, AQUACULTURE, BATTERY]


def test_browse_defaults_to_newest_first(market: SearchBackend) -> None:
    assert listing_ids(search(market)) == [AQUACULTURE, SORTING, BATTERY, MOTOR, MAGNET]


def test_explicit_sort_wins_over_relevance(market: SearchBackend) -> None:
    page = search(market, "永磁", sort=[SortKey("published_at", descending=True)])
    assert listing_ids(page) == [MOTOR, MAGNET]


def test_pagination_is_bounded_and_consistent(market: SearchBackend) -> None:
    with pytest.raises(InvalidQueryError):
        search(market, limit=MAX_PAGE_SIZE + 1)
    with pytest.raises(InvalidQueryError):
        search(market, limit=0)
    with pytest.raises(InvalidQueryError):
        search(market, offset=-1)
    everything = listing_ids(search(market))
    pages = [search(market, offset=offset, limit=2) for offset in (0, 2, 4)]
    assert [listing_id for page in pages for listing_id in listing_ids(page)] == everything
    assert {page.total for page in pages} == {5}
    assert search(market, offset=10, limit=2).hits == []


def test_totals_stay_exact_past_a_thousand_hits(search_engine: SearchBackend) -> None:
    samples = [
        _result(1000 + number, title=f"样品检测方法{number}", field="新材料")
        for number in range(1200)
    ]
    search_engine.upsert("results", samples)
    assert search_engine.count("results") == 1200
    page = search(search_engine, "样品", limit=20, offset=1180, facets=["field"])
    assert page.total == 1200
    assert page.total_is_exact
    assert len(page.hits) == 20
    assert page.facets["field"] == {"新材料": 1200}
    assert search(search_engine, limit=100, offset=1100).total == 1200


# -- highlighting ----------------------------------------------------------------------


def test_highlights_wrap_matches_in_em(market: SearchBackend) -> None:
    page = search(market, "钕铁硼", highlight=True)
    highlights = page.hits[0].highlights
    assert "<em>钕铁硼</em>" in highlights["title"]
    assert "<em>钕铁硼</em>" in highlights["keywords"]
    assert "summary" in highlights
    assert search(market, "钕铁硼").hits[0].highlights == {}


def test_highlights_escape_html_in_listing_text(search_engine: SearchBackend) -> None:
    search_engine.upsert("results", [_result(50, title="<script>x</script>钕铁硼回收")])
    title = search(search_engine, "钕铁硼", highlight=True).hits[0].highlights["title"]
    assert "<script>" not in title
    assert "&lt;script&gt;" in title
    assert "<em>钕铁硼</em>" in title


def test_long_summaries_are_cropped_around_the_match(search_engine: SearchBackend) -> None:
    filler = "本项目涉及多种通用工艺流程与设备配置方案说明。" * 12
    search_engine.upsert(
        "results",
        [_result(60, title="通用工艺", summary=f"{filler}关键在于钕铁硼晶界扩散。{filler}")],
    )
    summary = search(search_engine, "钕铁硼", highlight=True).hits[0].highlights["summary"]
    assert "<em>钕铁硼</em>" in summary
    assert summary.startswith("…")
    assert summary.endswith("…")
    assert len(summary) < len(filler)


# -- writes ----------------------------------------------------------------------------


def test_upsert_replaces_by_id(market: SearchBackend) -> None:
    renamed = {**RESULTS[MAGNET - 1], "title": "钐钴永磁材料", "keywords": ["钐钴"]}
    market.upsert("results", [renamed])
    assert search(market, "钕铁硼").total == 0
    assert listing_ids(search(market, "钐钴")) == [MAGNET]
    assert market.count("results") == len(RESULTS)


def test_delete_removes_documents(market: SearchBackend) -> None:
    market.delete("results", ["result-1", "result-999"])
    assert search(market, "钕铁硼").total == 0
    assert market.count("results") == len(RESULTS) - 1
    assert market.count("demands") == len(DEMANDS)


def test_ids_meilisearch_would_reject_are_refused(search_engine: SearchBackend) -> None:
    bad = {**RESULTS[0], "id": "CN202310001234.5"}
    with pytest.raises(SearchError):
        search_engine.upsert("results", [bad])


def test_rebuild_swaps_in_new_content_while_searches_keep_answering(
    market: SearchBackend,
) -> None:
    replacement = [document for document in RESULTS if document["listing_id"] != AQUACULTURE] + [
        _result(1000 + number, title=f"重建批次{number}") for number in range(1500)
    ]
    errors: list[BaseException] = []
    answered: list[int] = []
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            try:
                answered.append(search(market, "钕铁硼").total)
            except BaseException as error:
                errors.append(error)

    searcher = threading.Thread(target=keep_searching)
    searcher.start()
    progress: list[int] = []
    try:
        indexed = market.rebuild("results", iter(replacement), progress=progress.append)
    finally:
        stop.set()
        searcher.join(timeout=30)
    assert errors == []
    assert answered and set(answered) == {1}  # the magnet is in both the old and new index
    assert indexed == len(replacement)
    assert progress == sorted(progress)
    assert progress[-1] == len(replacement)
    assert market.count("results") == len(replacement)
    assert search(market, "尾水").total == 0
    assert search(market, "重建批次").total == 1500
    assert market.count("demands") == len(DEMANDS)
    # The rebuilt index keeps its settings: synonyms and filters still work.
    assert listing_ids(search(market, "NdFeB")) == [MAGNET]
    assert browse_ids(market, ipc_prefix="H01M") == {BATTERY}


# -- availability ----------------------------------------------------------------------


def test_health_passes_on_a_running_engine(search_engine: SearchBackend) -> None:
    search_engine.health()


def test_unreachable_engine_raises_search_unavailable(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    broken = _unreachable_engine(engine_name, request)
    with pytest.raises(SearchUnavailable):
        broken.health()
    with pytest.raises(SearchUnavailable):
        broken.search("results", SearchQuery(text="钕铁硼"))
    with pytest.raises(SearchUnavailable):
        broken.upsert("results", RESULTS[:1])


def _unreachable_engine(engine_name: str, request: pytest.FixtureRequest) -> SearchBackend:
    if engine_name == "local":
        closed = LocalSearchEngine()
        closed.ensure_indexes()
        closed.close()
        return closed
    server: MeilisearchServer = request.getfixturevalue("meilisearch_server")
    return MeilisearchEngine(_closed_port_url(), server.master_key, request_timeout_s=2)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- the engine's query word limit ---------------------------------------------------

UNRELATED_WORDS = "桥梁 隧道 港口 码头 航道 船舶 集装箱 起重机 吊装 堆场"


def test_words_past_the_tenth_are_ignored(market: SearchBackend) -> None:
    # Both engines use only the first 10 query words, so the key word is lost here...
    text = f"{UNRELATED_WORDS} 钕铁硼"
    assert search(market, text, matching_strategy="frequency").total == 0


def test_key_terms_keep_the_specific_words_within_the_limit(market: SearchBackend) -> None:
    # ...and extract_key_terms() puts keywords first so that it is not.
    terms = extract_key_terms(UNRELATED_WORDS, keywords=["钕铁硼"])
    page = search(market, " ".join(terms), matching_strategy="frequency")
    assert listing_ids(page) == [MAGNET]


# -- where the engines differ ----------------------------------------------------------


def test_unaligned_offset_total_exactness(market: SearchBackend, engine_name: str) -> None:
    page = search(market, offset=1, limit=2)
    assert listing_ids(page) == listing_ids(search(market))[1:3]
    assert page.total == 5
    # Meilisearch counts hits exhaustively only in page mode (offset a multiple of limit).
    assert page.total_is_exact is (engine_name == "local")


def test_meilisearch_index_settings(
    search_engine: SearchBackend, engine_name: str, meili_only: None
) -> None:
    assert isinstance(search_engine, MeilisearchEngine)
    client = meilisearch.Client(search_engine.url, search_engine.api_key)
    index = client.index(search_engine.index_uid("results"))
    settings = index.get_settings()
    assert index.get_primary_key() == "id"
    assert settings["searchableAttributes"][:2] == ["title", "keywords"]
    assert {"ipc_prefixes", "organization_id", "status", "price_fen"} <= set(
        settings["filterableAttributes"]
    )
    assert settings["pagination"]["maxTotalHits"] == 100_000
    assert settings["localizedAttributes"] == [{"attributePatterns": ["*"], "locales": ["cmn"]}]
    assert "寻求" in settings["stopWords"]
    assert "钕铁硼" in settings["synonyms"]["NdFeB"]


# -- several searches at once (search_many) --------------------------------------------

MANY_QUERIES = [
    SearchQuery(text="钕铁硼"),
    SearchQuery(text="永磁 电机 矢量", matching_strategy="frequency", show_ranking_score=True),
    SearchQuery(text="", facets=["field", "maturity_stage"], limit=2),
    SearchQuery(
        text="",
        filters=SearchFilters(field="新材料"),
        visibility=Visibility.for_organization(INSTITUTE_OF_MATERIALS),
    ),
    SearchQuery(text="钕铁硼", highlight=True),
    SearchQuery(text="", sort=[SortKey("price_fen", descending=True)], offset=2, limit=2),
    SearchQuery(text="没有这样的词"),
]


def test_search_many_answers_like_separate_searches(market: SearchBackend) -> None:
    pages = market.search_many("results", MANY_QUERIES)
    assert len(pages) == len(MANY_QUERIES)
    for query, page in zip(MANY_QUERIES, pages, strict=True):
        alone = market.search("results", query)
        assert listing_ids(page) == listing_ids(alone)
        assert (page.total, page.total_is_exact, page.offset, page.limit) == (
            alone.total,
            alone.total_is_exact,
            alone.offset,
            alone.limit,
        )
        assert page.facets == alone.facets
        assert [hit.highlights for hit in page.hits] == [hit.highlights for hit in alone.hits]
        assert [hit.score for hit in page.hits] == pytest.approx([hit.score for hit in alone.hits])
    assert listing_ids(pages[0]) == [MAGNET]
    assert pages[2].facets["field"]["新材料"] == 2
    assert GRAPHENE_DRAFT in listing_ids(pages[3])
    assert pages[6].total == 0


def test_search_many_of_demands(market: SearchBackend) -> None:
    pages = market.search_many(
        "demands", [SearchQuery(text="钕铁硼"), SearchQuery(text="热失控预警")]
    )
    assert [listing_ids(page) for page in pages] == [[101], [102]]


def test_search_many_of_no_queries_is_empty(market: SearchBackend) -> None:
    assert market.search_many("results", []) == []


@pytest.mark.parametrize(
    "bad",
    [
        SearchQuery(text="钕铁硼", limit=MAX_PAGE_SIZE + 1),
        SearchQuery(facets=["title"]),
        SearchQuery(filters=SearchFilters(budget_max_fen=1)),  # a demand filter
    ],
)
def test_search_many_rejects_an_invalid_query_before_searching(
    market: SearchBackend, bad: SearchQuery
) -> None:
    with pytest.raises(InvalidQueryError):
        market.search_many("results", [SearchQuery(text="钕铁硼"), bad])


def test_search_many_on_an_unreachable_engine(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    broken = _unreachable_engine(engine_name, request)
    with pytest.raises(SearchUnavailable):
        broken.search_many("results", [SearchQuery(text="钕铁硼"), SearchQuery(text="电机")])


def test_searches_from_many_threads_at_once(market: SearchBackend) -> None:
    """The app shares one engine between request threads (and, for Meilisearch, one pool
    of kept-alive connections): concurrent searches must each get their own answer."""
    expected = {
        "钕铁硼": [MAGNET],
        "矢量控制": [MOTOR],
        "热失控预警": [102],
        "分拣": [SORTING],
    }
    failures: list[str] = []

    def worker(number: int) -> None:
        texts = list(expected)
        for round_ in range(15):
            text = texts[(number + round_) % len(texts)]
            catalogue: Catalogue = "demands" if text == "热失控预警" else "results"
            try:
                if round_ % 3 == 0:
                    pages = market.search_many(catalogue, [SearchQuery(text=text)] * 2)
                else:
                    pages = [market.search(catalogue, SearchQuery(text=text))]
                for page in pages:
                    if listing_ids(page) != expected[text]:
                        failures.append(f"{text}: {listing_ids(page)}")
            except Exception as error:  # collected and reported below
                failures.append(f"{text}: {error!r}")

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_meilisearch_searches_reuse_one_connection(market: SearchBackend, meili_only: None) -> None:
    assert isinstance(market, MeilisearchEngine)
    for _ in range(10):
        search(market, "钕铁硼")
        market.search_many("results", [SearchQuery(text="电机"), SearchQuery(text="电池")])
    assert market._connections._pool.num_connections == 1


def test_meilisearch_search_errors_are_search_errors_not_outages(
    meilisearch_server: MeilisearchServer, meili_only: None
) -> None:
    never_created = MeilisearchEngine(
        meilisearch_server.url, meilisearch_server.master_key, index_prefix="never_created"
    )
    with pytest.raises(SearchError) as raised:
        never_created.search("results", SearchQuery(text="钕铁硼"))
    assert not isinstance(raised.value, SearchUnavailable)
    assert "index_not_found" in str(raised.value)
    with pytest.raises(SearchError) as raised_async:
        asyncio.run(never_created.search_async("results", SearchQuery(text="钕铁硼")))
    assert not isinstance(raised_async.value, SearchUnavailable)
    assert "index_not_found" in str(raised_async.value)
    wrong_key = MeilisearchEngine(meilisearch_server.url, "not-the-key", index_prefix="x")
    with pytest.raises(SearchError):
        wrong_key.search_many("results", [SearchQuery(text="钕铁硼")])


def test_meilisearch_search_survives_a_server_closing_idle_connections(
    market: SearchBackend, meili_only: None
) -> None:
    assert isinstance(market, MeilisearchEngine)
    search(market, "钕铁硼")
    # Shut the kept-alive socket down under the pool, as a server's idle timeout would.
    pool = market._connections._pool
    assert pool.pool is not None
    connection = pool.pool.get_nowait()
    assert connection is not None and connection.sock is not None
    connection.sock.shutdown(socket.SHUT_RDWR)
    pool.pool.put(connection)
    assert listing_ids(search(market, "钕铁硼")) == [MAGNET]


# -- async searches (the API's endpoints) ------------------------------------------------


def test_search_async_answers_like_search(market: SearchBackend) -> None:
    async def all_pages() -> list[SearchPage]:
        return [await market.search_async("results", query) for query in MANY_QUERIES]

    for query, page in zip(MANY_QUERIES, asyncio.run(all_pages()), strict=True):
        alone = market.search("results", query)
        assert listing_ids(page) == listing_ids(alone)
        assert (page.total, page.total_is_exact, page.facets) == (
            alone.total,
            alone.total_is_exact,
            alone.facets,
        )
        assert [hit.highlights for hit in page.hits] == [hit.highlights for hit in alone.hits]


def test_concurrent_async_searches_each_get_their_own_answer(market: SearchBackend) -> None:
    texts = {"钕铁硼": [MAGNET], "矢量控制": [MOTOR], "分拣": [SORTING]}

    async def gathered() -> list[SearchPage]:
        return list(
            await asyncio.gather(
                *(
                    market.search_async("results", SearchQuery(text=text))
                    for text in list(texts) * 10
                )
            )
        )

    pages = asyncio.run(gathered())
    assert [listing_ids(page) for page in pages] == list(texts.values()) * 10


def test_async_searches_work_from_one_event_loop_after_another(market: SearchBackend) -> None:
    """Scripts and test clients run event loops one after another; a loop that opened no
    session searches with a session of its own, and nothing is left open behind it."""
    for _ in range(3):
        page = asyncio.run(market.search_async("results", SearchQuery(text="钕铁硼")))
        assert listing_ids(page) == [MAGNET]
    if isinstance(market, MeilisearchEngine):
        assert market._async_connections._sessions == {}


def test_async_search_on_an_unreachable_engine(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    broken = _unreachable_engine(engine_name, request)
    with pytest.raises(SearchUnavailable):
        asyncio.run(broken.search_async("results", SearchQuery(text="钕铁硼")))


def test_meilisearch_async_searches_reuse_one_connection(
    market: SearchBackend, meili_only: None
) -> None:
    assert isinstance(market, MeilisearchEngine)

    async def searches() -> int:
        await market.open_async()
        for _ in range(10):
            await market.search_async("results", SearchQuery(text="钕铁硼"))
        [session] = market._async_connections._sessions.values()
        connector = session.connector
        assert connector is not None
        kept_alive = sum(len(idle) for idle in connector._conns.values())
        await market.close_async()
        assert session.closed
        return kept_alive

    assert asyncio.run(searches()) == 1
    assert market._async_connections._sessions == {}


# -- words that occur literally are found, however jieba cuts them -------------------------


def test_a_word_found_literally_in_a_document_is_found_however_it_was_segmented(
    search_engine: SearchBackend,
) -> None:
    # In its sentence jieba cuts 药含药血清 into 药含 / 药 / 血清, while a query for
    # 含药 is the word 含药: the local engine found nothing until its literal column.
    search_engine.upsert(
        "results",
        [
            result_document(
                {
                    "listing_id": 1,
                    "title": "大鼠灌胃给药含药血清对成骨细胞的影响",
                    "keywords": ["箍趾病"],
                    "status": "published",
                }
            ),
            result_document({"listing_id": 2, "title": "钢铁冶炼余热回收", "status": "published"}),
        ],
    )
    for text in ("含药 血清", "含药血清", " ".join(extract_key_terms("", ["箍趾病"]))):
        page = search_engine.search("results", SearchQuery(text=text))
        assert [hit.document["listing_id"] for hit in page.hits] == [1], text


# -- vectors: semantic and hybrid search -----------------------------------------------
# Hand-made unit vectors: each listing points along a "topic" axis of the 384 dimensions,
# so that the expected cosines are known without a model.

DIMENSIONS = DEFAULT_VECTOR_DIMENSIONS
MAGNETISM, DRIVES, STORAGE, CARBON, VISION = range(5)


def unit(*components: tuple[int, float]) -> list[float]:
    vector = np.zeros(DIMENSIONS)
    for axis, weight in components:
        vector[axis] = weight
    return [float(value) for value in vector / np.linalg.norm(vector)]


RESULT_VECTORS: dict[int, list[float] | None] = {
    MAGNET: unit((MAGNETISM, 1.0), (DRIVES, 0.3)),
    MOTOR: unit((DRIVES, 1.0), (MAGNETISM, 0.4)),
    BATTERY: unit((STORAGE, 1.0)),
    GRAPHENE_DRAFT: unit((CARBON, 1.0), (STORAGE, 0.2)),
    SORTING: unit((VISION, 1.0)),
    AQUACULTURE: None,  # not embedded yet: found by keyword only
}


def cosine(left: list[float], right: list[float]) -> float:
    return float(np.dot(left, right))


@pytest.fixture
def semantic_market(search_engine: SearchBackend) -> SearchBackend:
    search_engine.upsert(
        "results",
        [with_vector(document, RESULT_VECTORS[document["listing_id"]]) for document in RESULTS],
    )
    search_engine.upsert("demands", DEMANDS)
    return search_engine


def semantic(
    engine: SearchBackend, vector: list[float], text: str = "", **options: Any
) -> SearchPage:
    return engine.search("results", SearchQuery(text=text, vector=vector, **options))


def test_a_vector_only_query_ranks_by_cosine(semantic_market: SearchBackend) -> None:
    query_vector = unit((MAGNETISM, 1.0), (DRIVES, 0.8), (STORAGE, 0.1))
    page = semantic(semantic_market, query_vector)
    published_with_vectors = [MAGNET, MOTOR, BATTERY, SORTING]
    by_cosine = sorted(
        published_with_vectors,
        key=lambda listing: -cosine(RESULT_VECTORS[listing] or [], query_vector),
    )
    # Every visible document is ranked; the one without a vector comes last, unscored.
    assert listing_ids(page) == [*by_cosine, AQUACULTURE]
    assert page.total == 5
    for hit in page.hits[:-1]:
        expected = cosine(RESULT_VECTORS[hit.document["listing_id"]] or [], query_vector)
        assert hit.semantic_score == pytest.approx(expected, abs=1e-5)
    assert page.hits[-1].semantic_score is None
    assert all("vector" not in hit.document and "_vectors" not in hit.document for hit in page.hits)


def test_a_hybrid_query_finds_by_meaning_and_a_vectorless_document_by_words(
    semantic_market: SearchBackend,
) -> None:
    # 尾水 occurs only in the aquaculture listing, which has no vector; the vector points
    # at the sorting system, which shares no word with the query.
    page = semantic(semantic_market, unit((VISION, 1.0)), "尾水", semantic_ratio=0.5)
    ranked = listing_ids(page)
    assert set(ranked[:2]) == {SORTING, AQUACULTURE}
    by_id = {hit.document["listing_id"]: hit for hit in page.hits}
    assert by_id[SORTING].semantic_score == pytest.approx(1.0, abs=1e-5)
    assert by_id[AQUACULTURE].semantic_score is None
    assert GRAPHENE_DRAFT not in ranked  # a draft, invisible to the public


def test_the_ratio_moves_hybrid_ranking_from_words_to_meaning(
    semantic_market: SearchBackend,
) -> None:
    """永磁 finds the magnet and the motor by words (the engines differ on which first);
    a vector pointing at the second one brings it up as the ratio grows."""
    first, second = listing_ids(search(semantic_market, "永磁"))[:2]
    assert {first, second} == {MAGNET, MOTOR}
    vector = RESULT_VECTORS[second] or []
    assert listing_ids(semantic(semantic_market, vector, "永磁", semantic_ratio=1.0))[0] == second
    assert listing_ids(semantic(semantic_market, vector, "永磁", semantic_ratio=0.1))[0] == first


def test_a_strong_keyword_match_keeps_its_lead_at_a_low_ratio(
    semantic_market: SearchBackend,
) -> None:
    """永磁 矢量: the motor has both words, the magnet only 永磁. The vector points at the
    magnet and away from the motor (fourth by cosine, behind two unrelated listings).
    At ratio 0.3 the words must still decide: ranks fused by reciprocal rank let the
    magnet overtake (issue #11, paraphrase MRR@10 0.895 on the local engine)."""
    vector = unit((MAGNETISM, 1.0), (DRIVES, -0.5), (STORAGE, 0.3), (VISION, 0.3))
    assert listing_ids(semantic(semantic_market, vector))[:4] == [MAGNET, BATTERY, SORTING, MOTOR]
    hybrid = semantic(semantic_market, vector, "永磁 矢量", semantic_ratio=0.3)
    assert listing_ids(hybrid)[:2] == [MOTOR, MAGNET]


@pytest.mark.parametrize("text", ["钕铁硼", "永磁 电机 矢量", "锂电池", "没有这样的词"])
def test_ratio_zero_is_the_keyword_search(semantic_market: SearchBackend, text: str) -> None:
    keyword = search(semantic_market, text, show_ranking_score=True, matching_strategy="frequency")
    with_vector_ = semantic(
        semantic_market,
        unit((VISION, 1.0)),
        text,
        semantic_ratio=0.0,
        show_ranking_score=True,
        matching_strategy="frequency",
    )
    assert listing_ids(with_vector_) == listing_ids(keyword)
    assert with_vector_.total == keyword.total
    assert [hit.score for hit in with_vector_.hits] == [hit.score for hit in keyword.hits]
    assert all(hit.semantic_score is None for hit in with_vector_.hits)


@pytest.mark.parametrize("ratio", [0.0, 0.5])
def test_a_vector_with_text_of_symbols_only(semantic_market: SearchBackend, ratio: float) -> None:
    """Symbols have no words: at ratio 0 the search browses as without a vector, above
    it the vector ranks alone."""
    page = semantic(semantic_market, unit((VISION, 1.0)), "*", semantic_ratio=ratio, limit=100)
    assert page.total >= len(page.hits)
    if ratio == 0.0:
        assert listing_ids(page) == listing_ids(search(semantic_market, "*", limit=100))
    else:
        assert listing_ids(page)[0] == SORTING


def test_without_a_vector_the_ratio_changes_nothing(semantic_market: SearchBackend) -> None:
    assert listing_ids(search(semantic_market, "永磁", semantic_ratio=0.9)) == listing_ids(
        search(semantic_market, "永磁")
    )


def test_filters_and_visibility_hold_on_the_vector_side(semantic_market: SearchBackend) -> None:
    draft_vector = RESULT_VECTORS[GRAPHENE_DRAFT] or []
    public = semantic(semantic_market, draft_vector)
    assert GRAPHENE_DRAFT not in listing_ids(public)
    assert listing_ids(public)[0] == BATTERY  # the nearest visible one
    own = semantic(
        semantic_market,
        draft_vector,
        visibility=Visibility.for_organization(INSTITUTE_OF_MATERIALS),
    )
    assert listing_ids(own)[0] == GRAPHENE_DRAFT
    everything = semantic(semantic_market, draft_vector, visibility=Visibility.everything())
    assert listing_ids(everything)[0] == GRAPHENE_DRAFT
    filtered = semantic(
        semantic_market,
        draft_vector,
        filters=SearchFilters(field="新材料"),
        visibility=Visibility.everything(),
    )
    assert set(listing_ids(filtered)) == {GRAPHENE_DRAFT, BATTERY, MAGNET}
    assert filtered.total == 3
    hybrid = semantic(
        semantic_market,
        unit((VISION, 1.0)),
        "永磁",
        semantic_ratio=0.5,
        filters=SearchFilters(district_code="330206"),
    )
    assert set(listing_ids(hybrid)) == {MOTOR, SORTING}


def test_semantic_facets_and_totals_count_the_filtered_documents(
    semantic_market: SearchBackend,
) -> None:
    page = semantic(semantic_market, unit((VISION, 1.0)), facets=["field"], limit=2)
    assert page.total == 5
    assert page.facets["field"] == {"新材料": 2, "高端装备": 1, "智能经济": 1, "海洋产业": 1}


def test_semantic_pages_follow_one_ranking(semantic_market: SearchBackend) -> None:
    vector = unit((MAGNETISM, 1.0), (STORAGE, 0.5))
    whole = listing_ids(semantic(semantic_market, vector))
    pages = [
        listing_ids(semantic(semantic_market, vector, offset=offset, limit=2))
        for offset in (0, 2, 4)
    ]
    assert [listing for page in pages for listing in page] == whole


def test_an_explicit_sort_makes_a_vector_query_a_sorted_browse(
    semantic_market: SearchBackend,
) -> None:
    newest_first = [SortKey("published_at", descending=True)]
    sorted_semantic = semantic(semantic_market, unit((VISION, 1.0)), sort=newest_first)
    assert listing_ids(sorted_semantic) == listing_ids(search(semantic_market, sort=newest_first))
    assert all(hit.semantic_score is None for hit in sorted_semantic.hits)


def test_deleting_a_document_removes_its_vector(semantic_market: SearchBackend) -> None:
    vector = unit((VISION, 1.0))
    assert listing_ids(semantic(semantic_market, vector))[0] == SORTING
    semantic_market.delete("results", ["result-5"])
    assert SORTING not in listing_ids(semantic(semantic_market, vector))
    # Back without a vector: found by its words only, and last in a vector ranking.
    semantic_market.upsert("results", [with_vector(RESULTS[SORTING - 1], None)])
    page = semantic(semantic_market, vector)
    assert set(listing_ids(page)[-2:]) == {SORTING, AQUACULTURE}
    assert [hit.semantic_score for hit in page.hits[-2:]] == [None, None]
    assert listing_ids(search(semantic_market, "分拣")) == [SORTING]


def test_a_changed_vector_is_searched_at_once(semantic_market: SearchBackend) -> None:
    vector = unit((VISION, 1.0))
    assert listing_ids(semantic(semantic_market, vector))[0] == SORTING
    moved = with_vector(RESULTS[AQUACULTURE - 1], unit((VISION, 1.0), (CARBON, 0.1)))
    semantic_market.upsert("results", [moved])
    page = semantic(semantic_market, vector)
    assert listing_ids(page)[:2] == [SORTING, AQUACULTURE]
    assert page.hits[1].semantic_score == pytest.approx(cosine(moved["vector"], vector), abs=1e-5)


def test_documents_with_and_without_the_vector_key_are_indexed(
    search_engine: SearchBackend,
) -> None:
    # Meilisearch fails a whole batch over a document without `_vectors`: the engine
    # must send null for both a missing key and None.
    search_engine.upsert(
        "results",
        [
            RESULTS[0],
            with_vector(RESULTS[1], None),
            with_vector(RESULTS[2], unit((STORAGE, 1.0))),
        ],
    )
    assert search_engine.count("results") == 3
    page = semantic(search_engine, unit((STORAGE, 1.0)))
    assert listing_ids(page)[0] == BATTERY
    assert [hit.semantic_score is None for hit in page.hits] == [False, True, True]


def test_vectors_of_the_wrong_size_or_ratio_are_refused(semantic_market: SearchBackend) -> None:
    with pytest.raises(InvalidQueryError, match="dimensions"):
        semantic(semantic_market, [1.0, 0.0, 0.0])
    with pytest.raises(InvalidQueryError, match="semantic_ratio"):
        semantic(semantic_market, unit((VISION, 1.0)), "永磁", semantic_ratio=1.5)
    with pytest.raises(InvalidQueryError, match="finite"):
        semantic(semantic_market, [float("nan")] * DIMENSIONS)
    with pytest.raises(SearchError, match="dimensions"):
        semantic_market.upsert("results", [with_vector(RESULTS[0], [1.0, 0.0])])
    assert listing_ids(search(semantic_market, "钕铁硼")) == [MAGNET]  # nothing was written


SEMANTIC_QUERIES = [
    SearchQuery(vector=unit((MAGNETISM, 1.0))),
    SearchQuery(text="永磁", vector=unit((DRIVES, 1.0)), semantic_ratio=0.7),
    SearchQuery(text="尾水", vector=unit((VISION, 1.0)), semantic_ratio=0.3, highlight=True),
    SearchQuery(text="钕铁硼", vector=unit((VISION, 1.0))),  # ratio 0: keyword
    SearchQuery(
        vector=unit((CARBON, 1.0)),
        filters=SearchFilters(field="新材料"),
        visibility=Visibility.everything(),
        facets=["field"],
        offset=1,
        limit=1,
    ),
]


def _page_summary(page: SearchPage) -> tuple[Any, ...]:
    return (
        listing_ids(page),
        [None if hit.semantic_score is None else round(hit.semantic_score, 5) for hit in page.hits],
        [hit.highlights for hit in page.hits],
        page.total,
        page.facets,
    )


def test_semantic_search_many_and_async_answer_like_search(
    semantic_market: SearchBackend,
) -> None:
    alone = [_page_summary(semantic_market.search("results", query)) for query in SEMANTIC_QUERIES]
    many = semantic_market.search_many("results", SEMANTIC_QUERIES)
    assert [_page_summary(page) for page in many] == alone

    async def all_pages() -> list[SearchPage]:
        return [await semantic_market.search_async("results", query) for query in SEMANTIC_QUERIES]

    assert [_page_summary(page) for page in asyncio.run(all_pages())] == alone


def test_semantic_searches_from_many_threads_while_vectors_change(
    semantic_market: SearchBackend,
) -> None:
    """Concurrent vector searches each get their own answer while another thread keeps
    rewriting a document's vector (the local engine reloads its matrix meanwhile)."""
    expected = {VISION: SORTING, STORAGE: BATTERY, DRIVES: MOTOR}
    failures: list[str] = []
    stop = threading.Event()

    def rewrite() -> None:
        for round_ in range(20):
            axis = MAGNETISM if round_ % 2 else CARBON
            semantic_market.upsert("results", [with_vector(RESULTS[MAGNET - 1], unit((axis, 1.0)))])
        stop.set()

    def searcher(number: int) -> None:
        axes = list(expected)
        round_ = 0
        while not stop.is_set() or round_ < 5:
            axis = axes[(number + round_) % len(axes)]
            try:
                first = listing_ids(semantic(semantic_market, unit((axis, 1.0))))[0]
                if first != expected[axis]:
                    failures.append(f"axis {axis}: {first}")
            except Exception as error:  # collected and reported below
                failures.append(repr(error))
            round_ += 1

    threads = [threading.Thread(target=searcher, args=(number,)) for number in range(4)]
    writer = threading.Thread(target=rewrite)
    for thread in [*threads, writer]:
        thread.start()
    for thread in [*threads, writer]:
        thread.join(timeout=120)
    assert failures == []
    # The last rewrite (round 19) put the magnet on the MAGNETISM axis.
    final = semantic(semantic_market, unit((MAGNETISM, 1.0)))
    assert listing_ids(final)[0] == MAGNET
    assert final.hits[0].semantic_score == pytest.approx(1.0, abs=1e-5)


def test_rebuild_keeps_vectors_searchable(semantic_market: SearchBackend) -> None:
    assert listing_ids(semantic(semantic_market, unit((VISION, 1.0))))[0] == SORTING
    replacement = [
        with_vector(document, RESULT_VECTORS[document["listing_id"]])
        for document in RESULTS
        if document["listing_id"] != SORTING
    ]
    semantic_market.rebuild("results", iter(replacement))
    page = semantic(semantic_market, unit((VISION, 1.0), (STORAGE, 0.1)))
    assert listing_ids(page)[0] == BATTERY
    assert SORTING not in listing_ids(page)
    assert page.hits[0].semantic_score == pytest.approx(
        cosine(RESULT_VECTORS[BATTERY] or [], unit((VISION, 1.0), (STORAGE, 0.1))), abs=1e-5
    )


def test_meilisearch_embedder_settings(search_engine: SearchBackend, meili_only: None) -> None:
    assert isinstance(search_engine, MeilisearchEngine)
    client = meilisearch.Client(search_engine.url, search_engine.api_key)
    for catalogue in ("results", "demands"):
        embedders = client.index(search_engine.index_uid(catalogue)).get_embedders()
        assert embedders is not None
        embedder = embedders.embedders[EMBEDDER_NAME]
        assert isinstance(embedder, UserProvidedEmbedder)
        assert embedder.dimensions == DIMENSIONS


def test_local_engine_sees_vectors_written_by_another_process(tmp_path: Any) -> None:
    """The API and the outbox worker are separate processes on one index file: a
    matrix cached by one must be reloaded after the other writes vectors."""
    path = tmp_path / "search.sqlite3"
    api, worker = LocalSearchEngine(path), LocalSearchEngine(path)
    try:
        api.ensure_indexes()
        worker.upsert("results", [with_vector(RESULTS[0], unit((VISION, 1.0)))])
        assert listing_ids(semantic(api, unit((VISION, 1.0)))) == [MAGNET]
        worker.upsert(
            "results",
            [
                with_vector(RESULTS[0], unit((CARBON, 1.0))),
                with_vector(RESULTS[4], unit((VISION, 1.0))),
            ],
        )
        page = semantic(api, unit((VISION, 1.0)))
        assert listing_ids(page) == [SORTING, MAGNET]
        assert page.hits[1].semantic_score == pytest.approx(0.0, abs=1e-6)
    finally:
        api.close()
        worker.close()


def test_local_matrix_follows_many_removals_and_returns(tmp_path: Any) -> None:
    """Past a thousand dead slots the cached matrix is built afresh; before, removals
    and returns are applied in place. Either way the ranking is the stored vectors'."""
    path = tmp_path / "search.sqlite3"
    api, worker = LocalSearchEngine(path), LocalSearchEngine(path)
    try:
        api.ensure_indexes()
        many = [
            with_vector(
                _result(2000 + number, title=f"批次{number}"),
                unit((VISION, 1.0), (CARBON, number / 1500)),
            )
            for number in range(1500)
        ]
        worker.upsert("results", many)
        assert listing_ids(semantic(api, unit((VISION, 1.0)), limit=3)) == [2000, 2001, 2002]
        worker.delete("results", [document["id"] for document in many[:10]])
        assert listing_ids(semantic(api, unit((VISION, 1.0)), limit=1)) == [2010]
        worker.upsert("results", many[:1])  # back, in a new slot
        assert listing_ids(semantic(api, unit((VISION, 1.0)), limit=2)) == [2000, 2010]
        worker.delete("results", [document["id"] for document in many[:1400]])
        page = semantic(api, unit((VISION, 1.0)), limit=100)
        assert listing_ids(page) == list(range(3400, 3500))
        assert page.total == 100
    finally:
        api.close()
        worker.close()


def test_meilisearch_index_from_before_vectors_keeps_answering_until_a_reindex(
    search_engine: SearchBackend, meili_only: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An index filled before the embedder existed holds documents without `_vectors`:
    Meilisearch refuses the embedder there. Start-up must still succeed (keyword search
    goes on), and the reindex's fresh index gets the embedder and the vectors."""
    assert isinstance(search_engine, MeilisearchEngine)
    client = meilisearch.Client(search_engine.url, search_engine.api_key)
    uid = search_engine.index_uid("results")
    client.wait_for_task(client.delete_index(uid).task_uid)
    client.wait_for_task(client.create_index(uid, {"primaryKey": "id"}).task_uid)
    legacy = client.index(uid).add_documents([RESULTS[0]], primary_key="id")
    assert client.wait_for_task(legacy.task_uid).status == "succeeded"

    with caplog.at_level("WARNING", logger="search.meili"):
        search_engine.ensure_indexes()
    assert "market reindex" in caplog.text
    assert listing_ids(search(search_engine, "钕铁硼")) == [MAGNET]

    search_engine.rebuild(
        "results",
        iter(
            [with_vector(document, RESULT_VECTORS[document["listing_id"]]) for document in RESULTS]
        ),
    )
    page = semantic(search_engine, unit((VISION, 1.0)))
    assert listing_ids(page)[0] == SORTING
    assert page.hits[0].semantic_score == pytest.approx(1.0, abs=1e-5)
