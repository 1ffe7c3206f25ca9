"""The plain-language demand set (market/data/plain_demands.json) is what it claims to be.

Each demand is written the way an enterprise posts a problem, for one real research
record that should solve it, and shares no word with that record's title or keywords:
the set measures whether search and matching understand a problem described in other
words (scripts/search_quality.py, docs/SEARCH.md "Plain-language demands"). A demand
that repeats the record's words would measure keyword lookup instead, so this check
runs on every build and keeps later edits of the set honest.

The rule, made precise:

- a demand's text is its title, description and keywords; a record's text is its
  title and each of its keywords (kept apart, so no word is found across a seam);
- both are folded with NFKC (full-width to half-width) and lower-cased;
- no word of two or more characters that jieba's search mode cuts from the demand's
  text (that is the whole words and their shorter parts: 钛白粉 yields 钛白 too)
  occurs as a substring anywhere in the record's text;
- and no keyword of the record occurs as a substring of the demand's text (this
  catches single-character keywords such as 锌 and words jieba would cut otherwise).

jieba's default dictionary is used on purpose, not the search package's segmenter:
the yardstick must not move when the search code's dictionary changes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import jieba
import pytest

from market.listings.models import TechField

DATA = Path(__file__).resolve().parents[2] / "market" / "data"
MINIMUM_DEMANDS = 80
# A word needs a letter, digit or CJK character: jieba also yields punctuation.
_WORD_CHARACTER = re.compile(r"[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff]")
_SENTENCE_END = re.compile(r"[。！？]")


def load_demands() -> list[dict[str, Any]]:
    demands: list[dict[str, Any]] = json.loads(
        (DATA / "plain_demands.json").read_text(encoding="utf-8")
    )
    return demands


@cache
def load_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(
        (DATA / "csl_research_results.json").read_text(encoding="utf-8")
    )
    return records


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


@cache
def _tokenizer() -> jieba.Tokenizer:
    return jieba.Tokenizer()


def demand_text(demand: dict[str, Any]) -> str:
    return fold("\n".join([demand["title"], demand["description"], *demand["keywords"]]))


def demand_words(demand: dict[str, Any]) -> set[str]:
    """Every word of two or more characters jieba's search mode cuts from the demand."""
    tokens = (token.strip() for token in _tokenizer().cut_for_search(demand_text(demand)))
    return {token for token in tokens if len(token) >= 2 and _WORD_CHARACTER.search(token)}


def shared_with_record(demand: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """What the demand shares with its record under the rule above; [] when nothing."""
    keywords = [fold(keyword).strip() for keyword in record["keywords"] if keyword.strip()]
    record_text = "\n".join([fold(record["title"]), *keywords])
    text = demand_text(demand)
    shared = {word for word in demand_words(demand) if word in record_text}
    shared |= {keyword for keyword in keywords if keyword in text}
    return sorted(shared)


DEMANDS = load_demands()


def test_the_set_is_large_enough_and_each_demand_aims_at_a_different_record() -> None:
    assert len(DEMANDS) >= MINIMUM_DEMANDS
    assert len({demand["id"] for demand in DEMANDS}) == len(DEMANDS)
    assert len({demand["record"] for demand in DEMANDS}) == len(DEMANDS)


@pytest.mark.parametrize("demand", DEMANDS, ids=[demand["id"] for demand in DEMANDS])
def test_the_demand_names_a_real_record_and_shares_no_word_with_it(
    demand: dict[str, Any],
) -> None:
    records = load_records()
    assert 0 <= demand["record"] < len(records)
    record = records[demand["record"]]
    # The title is stored beside the position so that a reordered records file fails here.
    assert demand["record_title"] == record["title"]
    assert shared_with_record(demand, record) == []


@pytest.mark.parametrize("demand", DEMANDS, ids=[demand["id"] for demand in DEMANDS])
def test_the_demand_reads_like_a_posted_demand(demand: dict[str, Any]) -> None:
    assert 4 <= len(demand["title"]) <= 60
    sentences = len(_SENTENCE_END.findall(demand["description"]))
    assert 2 <= sentences <= 4, demand["description"]
    assert 2 <= len(demand["keywords"]) <= 5
    assert all(keyword.strip() for keyword in demand["keywords"])
    assert demand["field"] in {field.value for field in TechField}


def test_the_set_spreads_over_the_records_disciplines() -> None:
    records = load_records()
    disciplines = Counter(records[demand["record"]]["discipline"] for demand in DEMANDS)
    categories = Counter(records[demand["record"]]["category"] for demand in DEMANDS)
    assert len(disciplines) >= 30
    assert {"工学", "农学", "医学", "理学"} <= set(categories)
    # No discipline dominates the figures.
    assert max(disciplines.values()) <= len(DEMANDS) // 8


def test_the_rule_catches_what_it_is_meant_to_catch() -> None:
    record = {"title": "钛白副产硫酸亚铁的提纯", "keywords": ["锌", "结晶法"]}

    def demand(description: str) -> dict[str, Any]:
        return {"title": "绿矾杂质多", "description": description, "keywords": ["除杂"]}

    assert shared_with_record(demand("二氧化钛颜料厂的七水绿矾。"), record) == []
    # A part of a longer word: 钛白粉 is cut into 钛白 as well.
    assert shared_with_record(demand("钛白粉厂的绿矾。"), record) == ["钛白"]
    # A single-character keyword anywhere in the demand.
    assert shared_with_record(demand("含锌偏高。"), record) == ["锌"]
    # Full-width and upper-case text is folded before comparing.
    assert shared_with_record(demand("用ＰＰＭ级测定。"), {"title": "ppm", "keywords": []}) == [
        "ppm"
    ]
