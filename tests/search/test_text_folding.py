"""The t2s fast path: skipping OpenCC for text it cannot change gives the same result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from search.text import (
    _traditional_to_simplified,
    convertible_characters,
    fold_for_search,
    to_half_width,
)

if TYPE_CHECKING:
    from opencc import OpenCC

RECORDS = Path(__file__).resolve().parents[2] / "market" / "data" / "csl_research_results.json"


def _full_conversion(text: str) -> str:
    return str(_traditional_to_simplified().convert(text))


def _reference_normalize(text: str) -> str:
    """fold_for_search as it was before the fast path: always through OpenCC."""
    return " ".join(_full_conversion(to_half_width(text)).split())


def _record_texts() -> list[str]:
    records = json.loads(RECORDS.read_text(encoding="utf-8"))
    assert len(records) == 1000
    texts: list[str] = []
    for record in records:
        texts.extend([record["title"], record["abstract"], record["discipline"]])
        texts.extend(record["keywords"])
    return texts


def test_convertible_characters_come_from_the_t2s_dictionaries() -> None:
    characters = convertible_characters()
    assert len(characters) > 4000
    assert {"鋰", "電", "瞭"} <= characters
    # Simplified characters that t2s maps to themselves are not in the set.
    assert not {"锂", "电", "池", "了"} & characters


def test_fast_path_equals_full_conversion_on_the_real_records() -> None:
    texts = _record_texts()
    for text in texts:
        assert fold_for_search(text) == _reference_normalize(text), text


def test_fast_path_equals_full_conversion_on_traditional_records() -> None:
    """The same records written in traditional characters are converted, not skipped."""
    to_traditional = _s2t()
    texts = [to_traditional.convert(text) for text in _record_texts()[:600]]
    changed = [text for text in texts if not convertible_characters().isdisjoint(text)]
    assert len(changed) > 500  # the test does exercise the slow path
    for text in texts:
        assert fold_for_search(text) == _reference_normalize(text), text


def test_unchanged_text_is_exactly_the_text_opencc_leaves_alone() -> None:
    """Every single character outside the set converts to itself (whole dictionary)."""
    characters = convertible_characters()
    converter = _traditional_to_simplified()
    sample = [chr(code) for code in range(0x4E00, 0xA000)]
    for character in sample:
        if character not in characters:
            assert converter.convert(character) == character, character


def _s2t() -> OpenCC:
    opencc = pytest.importorskip("opencc")
    return opencc.OpenCC("s2t")
