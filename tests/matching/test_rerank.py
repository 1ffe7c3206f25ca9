"""The pure half of matching: the engine query, each component, the order and the reasons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from search.backend import SearchFilters, SearchHit, SearchPage, SearchQuery
from search.documents import Catalogue, demand_document, result_document
from search.local import LocalSearchEngine
from search.matching import (
    LEXICAL_WEIGHTS,
    WEIGHTS,
    MatchQuery,
    build_query,
    document_matches_saved_search,
    find_matches,
    rerank,
    score_candidate,
    shared_ipc_level,
    term_coverage,
)
from search.text import ENGINE_MAX_QUERY_WORDS, segment_query


def demand(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "listing_id": 1,
        "title": "寻求高矫顽力钕铁硼永磁材料晶界扩散技术",
        "keywords": ["钕铁硼", "晶界扩散"],
        "field": "新材料",
        "district_code": "330212",
        "cooperation_modes": ["合作开发"],
        "budget_min_fen": 0,
        "budget_max_fen": 200_000_000,
        "ipc_codes": ["H01F1/057"],
    }
    values.update(overrides)
    return values


def result(listing_id: int = 10, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "listing_id": listing_id,
        "title": "钕铁硼磁体晶界扩散重稀土减量技术",
        "keywords": ["钕铁硼", "晶界扩散", "重稀土"],
        "summary": "降低镝铽用量",
        "field": "新材料",
        "district_code": "330212",
        "transfer_modes": ["合作开发", "许可"],
        "price_fen": 100_000_000,
        "maturity_stage": "中试",
        "ipc_codes": ["H01F1/057"],
    }
    values.update(overrides)
    return values


def score(
    candidate: dict[str, Any],
    source: dict[str, Any] | None = None,
    relevance: float = 1.0,
    similarity: float | None = None,
) -> Any:
    source = source or demand()
    return score_candidate(
        "demand_to_results",
        source,
        candidate,
        build_query(source),
        relevance,
        similarity=similarity,
    )


def test_weights_sum_to_one() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert sum(LEXICAL_WEIGHTS.values()) == pytest.approx(1.0)
    assert set(WEIGHTS) - set(LEXICAL_WEIGHTS) == {"semantic"}


def test_query_drops_demand_phrasing_and_never_exceeds_the_engine_limit() -> None:
    query = build_query(demand())
    assert "寻求" not in query.terms
    assert query.terms[0] == "钕铁硼"  # the owner's keywords lead
    long_keywords = [f"关键术语{number}号材料" for number in range(30)]
    long = build_query(demand(keywords=long_keywords))
    # Past the 10th word the terms go to a second combined query, never dropped silently.
    assert len(long.chunks) == 2
    assert long.text == long.chunks[0]
    assert all(len(segment_query(chunk)) <= ENGINE_MAX_QUERY_WORDS for chunk in long.chunks)


def test_a_perfect_pair_scores_high_and_explains_itself() -> None:
    match = score(result(), similarity=0.93)
    assert match.score > 0.85
    assert "semantic" not in score(result()).explanation.components  # meaning unknown
    explanation = match.explanation
    assert "钕铁硼" in explanation.matched_terms
    codes = {reason.code for reason in explanation.agreements}
    assert {"field", "ipc", "budget", "mode", "maturity", "district"} <= codes
    assert explanation.disagreements == []
    assert "共同关键词" in explanation.summary and "同属新材料领域" in explanation.summary
    stored = explanation.as_dict()
    assert stored["components"]["field"] == 1.0 and stored["summary"] == explanation.summary


@pytest.mark.parametrize(
    ("change", "component", "expected"),
    [
        ({"field": "高端装备"}, "field", 0.0),
        ({"field": None}, "field", 0.5),
        ({"ipc_codes": ["H01F1/08"]}, "ipc", 0.85),  # same main group H01F1
        ({"ipc_codes": ["H01F7/02"]}, "ipc", 0.7),  # same subclass H01F
        ({"ipc_codes": ["H01L21/02"]}, "ipc", 0.4),  # same class H01
        ({"ipc_codes": ["H02K1/27"]}, "ipc", 0.15),  # only the section H
        ({"ipc_codes": ["C22C38/00"]}, "ipc", 0.0),
        ({"ipc_codes": []}, "ipc", 0.5),
        ({"price_fen": None}, "budget", 0.6),
        ({"price_fen": 300_000_000}, "budget", 0.35),  # 1.5x budget: halfway down from 0.7
        ({"price_fen": 400_000_000}, "budget", 0.0),
        ({"maturity_stage": "研发"}, "maturity", 0.2),
        ({"maturity_stage": "产业化"}, "maturity", 1.0),
        ({"transfer_modes": ["转让"]}, "mode", 0.0),
        ({"transfer_modes": ["委托开发"]}, "mode", 0.6),
        ({"district_code": "330203"}, "district", 0.0),
    ],
)
def test_each_component(change: dict[str, Any], component: str, expected: float) -> None:
    match = score(result(**change))
    assert match.explanation.components[component] == pytest.approx(expected, abs=1e-3)


def test_disagreements_are_named_in_chinese() -> None:
    match = score(result(field="高端装备", maturity_stage="小试", price_fen=300_000_000))
    messages = " ".join(reason.message for reason in match.explanation.disagreements)
    assert "领域不同" in messages and "小试" in messages and "超出预算" in messages
    assert "需注意" in match.explanation.summary


def test_each_disagreement_lowers_the_score() -> None:
    perfect = score(result()).score
    for change in (
        {"field": "高端装备"},
        {"ipc_codes": ["C22C38/00"]},
        {"price_fen": 400_000_000},
        {"maturity_stage": "研发"},
        {"transfer_modes": ["转让"]},
        {"district_code": "330203"},
    ):
        assert score(result(**change)).score < perfect, change


def test_term_coverage_counts_synonyms_and_discounts_body_only_hits() -> None:
    candidate = {"title": "NdFeB magnet", "keywords": [], "summary": "晶界扩散工艺"}
    matched, missing, coverage = term_coverage(["钕铁硼", "晶界扩散", "矫顽力"], candidate)
    assert matched == ["钕铁硼", "晶界扩散"]  # NdFeB is a dictionary synonym
    assert missing == ["矫顽力"]
    assert coverage == pytest.approx((1.0 + 0.6) / 3)


def test_shared_ipc_level_is_the_deepest_and_tolerates_bad_codes() -> None:
    assert shared_ipc_level(["H01M10/052"], ["H01M10/052"]) == ("subgroup", "H01M10/052")
    assert shared_ipc_level(["H01M10/052", "B22F3/00"], ["B22F1/00"]) == ("subclass", "B22F")
    assert shared_ipc_level(["not a code"], ["H01M10/052"]) is None


def test_rerank_lets_attributes_overturn_the_engine_order() -> None:
    source = demand()
    query = build_query(source)
    wrong_field = result(
        1,
        field="高端装备",
        maturity_stage="研发",
        transfer_modes=["转让"],
        price_fen=900_000_000,
        district_code="330203",
        ipc_codes=["C22C38/00"],
    )
    right = result(2)
    hits = [
        SearchHit(id="result-1", document=wrong_field, score=0.9),
        SearchHit(id="result-2", document=right, score=0.8),
    ]
    ranked = rerank("demand_to_results", source, query, hits)
    assert [match.listing_id for match in ranked] == [2, 1]
    assert ranked[1].engine_score == 0.9


def test_rerank_breaks_ties_by_engine_order_then_id() -> None:
    source = demand()
    hits = [SearchHit(id=f"result-{n}", document=result(n), score=None) for n in (5, 3)]
    twins = rerank("demand_to_results", source, MatchQuery(terms=["钕铁硼"]), hits)
    assert [match.listing_id for match in twins] == [5, 3]


def test_result_to_demands_judges_the_same_pair_the_same_way() -> None:
    pair_demand, pair_result = demand(), result()
    query = MatchQuery(terms=["钕铁硼"])
    forward = score_candidate("demand_to_results", pair_demand, pair_result, query, 1.0)
    backward = score_candidate("result_to_demands", pair_result, pair_demand, query, 1.0)
    assert backward.catalogue == "demands" and forward.catalogue == "results"
    for name in ("field", "ipc", "budget", "mode", "maturity", "district"):
        assert forward.explanation.components[name] == backward.explanation.components[name]


@pytest.mark.parametrize(
    ("text", "filters", "expected"),
    [
        ("钕铁硼", SearchFilters(), True),
        ("NdFeB 晶界扩散", SearchFilters(field="新材料"), True),
        ("钕铁硼 电池", SearchFilters(), False),  # every word must occur
        ("钕铁硼", SearchFilters(field="高端装备"), False),
        ("", SearchFilters(ipc_prefix="H01F"), True),
        ("", SearchFilters(ipc_prefix="H01M"), False),
        ("", SearchFilters(price_max_fen=50_000_000), False),
        ("", SearchFilters(price_min_fen=50_000_000, transfer_mode=["许可", "转让"]), True),
    ],
)
def test_saved_search_predicate(text: str, filters: SearchFilters, expected: bool) -> None:
    from search.documents import result_document

    document = result_document({**result(), "status": "published"})
    assert document_matches_saved_search(document, text, filters) is expected


def test_saved_search_never_matches_a_negotiable_price_under_a_price_bound() -> None:
    from search.documents import result_document

    document = result_document({**result(price_fen=None), "status": "published"})
    assert not document_matches_saved_search(document, "", SearchFilters(price_max_fen=10**12))


def test_budget_messages_read_naturally() -> None:
    within = score(result(price_fen=100_000_000))
    assert "报价100万元未超出预算（200万元以内）" in within.explanation.summary
    ranged = score(
        result(price_fen=300_000_000),
        source=demand(budget_min_fen=50_000_000, budget_max_fen=200_000_000),
    )
    assert "报价300万元超出预算（50-200万元）" in ranged.explanation.summary


class RecordingEngine:
    """The local engine, recording which searches the matcher sends."""

    def __init__(self, inner: LocalSearchEngine) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def search(self, catalogue: Catalogue, query: SearchQuery) -> SearchPage:
        self.calls.append(f"search {query.text}")
        return self.inner.search(catalogue, query)

    def search_many(self, catalogue: Catalogue, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        self.calls.append(f"search_many x{len(queries)}")
        return self.inner.search_many(catalogue, queries)


def indexed_results(count: int) -> LocalSearchEngine:
    engine = LocalSearchEngine()
    engine.ensure_indexes()
    engine.upsert(
        "results",
        [
            result_document(
                {
                    **result(listing_id=number),
                    "organization_id": 1,
                    "organization_name": "",
                    "status": "published",
                    "kind": "发明专利",
                    "price_negotiable": False,
                    "published_at": None,
                }
            )
            for number in range(1, count + 1)
        ],
    )
    return engine


def test_broadening_searches_are_sent_only_when_the_combined_query_comes_back_short() -> None:
    engine = RecordingEngine(indexed_results(4))
    source = demand()
    full = find_matches(engine, "demand_to_results", source, candidates=3, limit=3)  # type: ignore[arg-type]
    assert len(full) == 3
    assert engine.calls == [f"search {build_query(source).text}"]

    engine.calls.clear()
    short = find_matches(engine, "demand_to_results", source, candidates=10, limit=10)  # type: ignore[arg-type]
    assert len(short) == 4
    assert engine.calls[0].startswith("search ")
    assert engine.calls[1].startswith("search_many x")  # one more round trip, all at once
    assert len(engine.calls) == 2


def test_a_pair_scores_the_same_ipc_from_both_sides() -> None:
    # The demand as the candidate is its search document: it carries its IPC codes.
    demand_doc = demand_document({**demand(), "status": "published"})
    forward = score(result())
    backward = score_candidate(
        "result_to_demands", result(), dict(demand_doc), build_query(result()), 1.0
    )
    assert forward.explanation.components["ipc"] == 1.0
    assert backward.explanation.components["ipc"] == forward.explanation.components["ipc"]
    assert "ipc" in {reason.code for reason in backward.explanation.agreements}


def test_a_compound_term_found_only_in_parts_earns_part_credit() -> None:
    whole = term_coverage(["多层生产计划"], {"title": "多层生产计划的优化"})
    parts = term_coverage(["多层生产计划"], {"title": "多层仓库的生产与计划"})
    none = term_coverage(["多层生产计划"], {"title": "钕铁硼"})
    assert whole[0] == ["多层生产计划"] and whole[2] == 1.0
    assert parts[1] == ["多层生产计划"] and 0 < parts[2] < 0.6
    assert none[2] == 0.0


def test_terms_past_the_tenth_word_are_searched_in_the_same_round_trip() -> None:
    engine = RecordingEngine(indexed_results(2))
    many = [f"关键术语{number}号材料" for number in range(30)]
    find_matches(engine, "demand_to_results", demand(keywords=many), candidates=1, limit=1)  # type: ignore[arg-type]
    assert engine.calls[0] == "search_many x2"
