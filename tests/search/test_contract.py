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
import pytest

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
from search.documents import Catalogue, demand_document, result_document
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
    SearchQuery(text="", filters=SearchFilters(field="新材料"),
                visibility=Visibility.for_organization(INSTITUTE_OF_MATERIALS)),
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
            alone.total, alone.total_is_exact, alone.offset, alone.limit)
        assert page.facets == alone.facets
        assert [hit.highlights for hit in page.hits] == [hit.highlights for hit in alone.hits]
        assert [hit.score for hit in page.hits] == pytest.approx(
            [hit.score for hit in alone.hits])
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


def test_meilisearch_searches_reuse_one_connection(
    market: SearchBackend, meili_only: None
) -> None:
    assert isinstance(market, MeilisearchEngine)
    for _ in range(10):
        search(market, "钕铁硼")
        market.search_many("results", [SearchQuery(text="电机"), SearchQuery(text="电池")])
    assert market._connections._pool.num_connections == 1


def test_meilisearch_search_errors_are_search_errors_not_outages(
    meilisearch_server: MeilisearchServer, meili_only: None
) -> None:
    never_created = MeilisearchEngine(meilisearch_server.url, meilisearch_server.master_key,
                                      index_prefix="never_created")
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
            alone.total, alone.total_is_exact, alone.facets)
        assert [hit.highlights for hit in page.hits] == [hit.highlights for hit in alone.hits]


def test_concurrent_async_searches_each_get_their_own_answer(market: SearchBackend) -> None:
    texts = {"钕铁硼": [MAGNET], "矢量控制": [MOTOR], "分拣": [SORTING]}

    async def gathered() -> list[SearchPage]:
        return list(await asyncio.gather(*(
            market.search_async("results", SearchQuery(text=text))
            for text in list(texts) * 10
        )))

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
    search_engine.upsert("results", [
        result_document({"listing_id": 1, "title": "大鼠灌胃给药含药血清对成骨细胞的影响",
                         "keywords": ["箍趾病"], "status": "published"}),
        result_document({"listing_id": 2, "title": "钢铁冶炼余热回收", "status": "published"}),
    ])
    for text in ("含药 血清", "含药血清", " ".join(extract_key_terms("", ["箍趾病"]))):
        page = search_engine.search("results", SearchQuery(text=text))
        assert [hit.document["listing_id"] for hit in page.hits] == [1], text
