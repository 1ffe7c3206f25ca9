"""Text preparation, the domain dictionary and document building (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from search.documents import (
    VECTOR_KEY,
    DocumentError,
    demand_document,
    document_id,
    document_vector,
    ipc_prefixes,
    normalize_ipc_prefix,
    result_document,
    with_vector,
)
from search.text import (
    ENGINE_MAX_QUERY_WORDS,
    extract_key_terms,
    fold_for_search,
    keyword_terms,
    load_dictionary,
    query_chunks,
    query_word_count,
    segment_query,
)


def test_normalize_folds_traditional_and_full_width() -> None:
    assert fold_for_search("鋰電池　ＰＬＣ控制，３Ｄ打印") == "锂电池 PLC控制,3D打印"


def test_dictionary_has_real_synonym_groups_and_stop_words() -> None:
    dictionary = load_dictionary()
    assert len(dictionary.synonym_groups) >= 40
    assert "NdFeB" in dictionary.synonyms_of("钕铁硼")
    assert "钕铁硼" in dictionary.synonyms_of("ndfeb")
    assert "永磁同步电机" in dictionary.synonyms_of("PMSM")
    assert "增材制造" in dictionary.synonyms_of("3D打印")
    assert dictionary.synonyms_of("电池") == ()
    for phrase in ("寻求", "征集", "求购", "一种", "需求", "解决方案", "合作", "的", "关于"):
        assert dictionary.is_stop_word(phrase), phrase
    assert not dictionary.is_stop_word("技术")


def test_meilisearch_synonyms_are_multi_way() -> None:
    synonyms = load_dictionary().meilisearch_synonyms()
    assert "钕铁硼" in synonyms["NdFeB"]
    assert "NdFeB" in synonyms["钕铁硼"]
    assert all(term not in others for term, others in synonyms.items())


def test_dictionary_terms_stay_one_word() -> None:
    assert segment_query("寻求钕铁硼永磁材料") == ["钕铁硼", "永磁", "材料"]
    assert "3d打印" in segment_query("基于3D打印的零件")


def test_extract_key_terms_puts_keywords_first_and_drops_demand_phrasing() -> None:
    terms = extract_key_terms("寻求一种高矫顽力钕铁硼永磁材料的解决方案", ["晶界扩散"])
    # Keywords first; a short compound keyword stays one term.
    assert terms[0] == "晶界扩散"
    assert "钕铁硼" in terms
    assert not {"寻求", "一种", "解决方案", "的", "高"} & set(terms)


def test_extract_key_terms_never_exceeds_the_engine_word_limit() -> None:
    long_title = (
        "面向新能源汽车驱动电机的高性能烧结钕铁硼永磁材料晶界扩散重稀土减量化制备工艺"
        "及其在伺服电机压缩机风力发电机中的应用推广"
    )
    terms = extract_key_terms(long_title, ["钕铁硼", "晶界扩散"])
    # Counted as the engines count words: 晶界扩散 is two of them.
    assert sum(map(query_word_count, terms)) == ENGINE_MAX_QUERY_WORDS
    assert terms[:2] == ["钕铁硼", "晶界扩散"]
    assert "面向" not in terms
    # Longer (more specific) title words are kept before short generic ones.
    assert len(terms[2]) >= len(terms[-1])
    with pytest.raises(ValueError, match="at least 1"):
        extract_key_terms(long_title, max_words=0)


def test_a_longer_term_list_is_cut_into_queries_the_engines_read_whole() -> None:
    keywords = [f"关键术语{number}号材料" for number in range(30)]
    terms = extract_key_terms("", keywords, max_words=2 * ENGINE_MAX_QUERY_WORDS)
    chunks = query_chunks(terms)
    assert len(chunks) == 2
    assert all(len(segment_query(chunk)) <= ENGINE_MAX_QUERY_WORDS for chunk in chunks)
    assert " ".join(chunks).split() == terms


def test_rare_words_jieba_cuts_into_single_characters_stay_whole() -> None:
    # jieba knows none of these and yields one character at a time; before, every
    # character was dropped as a lone character and the keyword vanished from the query
    # (and a search-box query matched each character alone).
    for word in ("箍趾病", "癫癎", "去雾"):
        assert segment_query(word) == [word], word
        assert keyword_terms(word) == [word]
    assert "去雾" in extract_key_terms("图像去雾算法", [])
    assert "癫癎" in extract_key_terms("儿童癫癎的诊断", [])
    assert "脑卒中" in extract_key_terms("", ["脑卒中"])


def test_compound_keywords_stay_whole_and_long_ones_give_their_words() -> None:
    assert keyword_terms("多层生产计划") == ["多层生产计划"]
    assert keyword_terms("大豆肽 抗氧化") == ["大豆肽", "抗氧化"]
    assert keyword_terms("修正Rodrigues参数模型") == ["修正", "rodrigues", "参数", "模型"]


def test_generic_words_are_never_matching_terms_unless_they_are_the_keyword() -> None:
    dictionary = load_dictionary()
    assert dictionary.is_generic("技术") and not dictionary.is_stop_word("技术")
    terms = extract_key_terms("寻求凝胶、去雾相关技术解决方案")
    assert terms == ["凝胶", "去雾"]
    assert keyword_terms("应用") == ["应用"]
    assert keyword_terms("纳米技术") == ["纳米技术"]
    # Still words of the index: a search for 技术 finds what says 技术.
    assert segment_query("技术") == ["技术"]


def test_ipc_prefixes_cover_every_level() -> None:
    assert ipc_prefixes(["H01M10/052"]) == ["H", "H01", "H01M", "H01M10/00", "H01M10/052"]
    assert ipc_prefixes(["h01m 10/00", "H01M4/58"]) == [
        "H",
        "H01",
        "H01M",
        "H01M10/00",
        "H01M4/00",
        "H01M4/58",
    ]
    assert normalize_ipc_prefix("H01M10") == "H01M10/00"
    with pytest.raises(DocumentError):
        ipc_prefixes(["not a code"])


def test_result_document_folds_text_and_derives_search_fields() -> None:
    document = result_document(
        {
            "listing_id": 7,
            "title": "釹鐵硼磁體",
            "status": "published",
            "keywords": ["釹鐵硼", "钕铁硼"],
            "field": "新材料",
            "ipc_codes": ["H01F1/057"],
            "transfer_modes": ["许可"],
            "published_at": datetime(2024, 1, 1, tzinfo=UTC),
        }
    )
    assert document["id"] == "result-7"
    assert document["title"] == "钕铁硼磁体"
    assert document["keywords"] == ["钕铁硼"]
    assert document["ipc_prefixes"][-1] == "H01F1/057"
    assert document["price_fen"] is None
    assert document["price_negotiable"] is True
    assert document["published_at"] == 1_704_067_200


@pytest.mark.parametrize(
    "bad_fields",
    [
        {"field": "区块链"},
        {"maturity_stage": "量产"},
        {"transfer_modes": ["赠送"]},
        {"price_fen": 12.5},
        {"price_fen": -1},
        {"title": ""},
        {"listing_id": "7"},
    ],
)
def test_result_document_rejects_values_outside_the_vocabulary(
    bad_fields: dict[str, object],
) -> None:
    fields = {"listing_id": 7, "title": "钕铁硼", "status": "published", **bad_fields}
    with pytest.raises(DocumentError):
        result_document(fields)


def test_demand_budget_up_to_a_maximum_starts_at_zero() -> None:
    document = demand_document(
        {"listing_id": 3, "title": "征集方案", "status": "published", "budget_max_fen": 500}
    )
    assert (document["budget_min_fen"], document["budget_max_fen"]) == (0, 500)
    assert document["budget_negotiable"] is False
    negotiable = demand_document({"listing_id": 4, "title": "征集方案", "status": "published"})
    assert negotiable["budget_negotiable"] is True
    with pytest.raises(DocumentError):
        demand_document(
            {
                "listing_id": 5,
                "title": "x",
                "status": "published",
                "budget_min_fen": 9,
                "budget_max_fen": 1,
            }
        )


def test_document_ids_only_use_characters_meilisearch_accepts() -> None:
    assert document_id("demands", 42) == "demand-42"
    with pytest.raises(DocumentError):
        document_id("results", -1)


def test_key_terms_drop_lone_characters_of_keywords_but_keep_one_character_keywords() -> None:
    from search.text import extract_key_terms

    terms = extract_key_terms("海水鱼类保鲜技术", ["货架期", "钢"])
    assert "期" not in terms
    assert "货架期" in terms and "钢" in terms


def test_with_vector_carries_plain_floats_and_leaves_the_document_alone() -> None:
    document = result_document({"listing_id": 7, "title": "储能", "status": "published"})
    row = np.array([0.6, 0.8], dtype=np.float32)
    carrying = with_vector(document, row)
    assert VECTOR_KEY not in document
    assert carrying[VECTOR_KEY] == pytest.approx([0.6, 0.8])
    assert all(type(value) is float for value in carrying[VECTOR_KEY])
    assert document_vector(carrying) == carrying[VECTOR_KEY]
    assert with_vector(document, None)[VECTOR_KEY] is None
    assert document_vector(document) is None


@pytest.mark.parametrize("vector", [[], [0.1, float("nan")], [float("inf")]])
def test_with_vector_refuses_empty_or_non_finite_vectors(vector: list[float]) -> None:
    document = result_document({"listing_id": 7, "title": "储能", "status": "published"})
    with pytest.raises(DocumentError):
        with_vector(document, vector)
