"""Text preparation shared by the document builders and both engines.

Everything that reaches an index or a query goes through `fold_for_search` first, so a
listing typed in traditional characters or full-width Latin is found by a simplified,
half-width query and the other way round. Meilisearch does fold traditional characters
itself, but it then cuts traditional text into single characters (see
docs/SEARCH.md), so folding has to happen before indexing.

The domain dictionary (synonyms, stop words) lives in `search/dictionary/` as data files
that non-programmers can review; `load_dictionary()` reads them once per process.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jieba
import yaml
from opencc import OpenCC

DICTIONARY_DIR = Path(__file__).parent / "dictionary"

# Meilisearch uses only the first 10 words of a query and silently ignores the rest.
ENGINE_MAX_QUERY_WORDS = 10

_FULL_WIDTH_OFFSET = 0xFEE0
_FULL_WIDTH_TO_HALF_WIDTH = {
    code_point: code_point - _FULL_WIDTH_OFFSET for code_point in range(0xFF01, 0xFF5F)
}
_FULL_WIDTH_TO_HALF_WIDTH[0x3000] = ord(" ")  # ideographic space
_WHITESPACE_RUN = re.compile(r"\s+")
# A token is worth indexing when it holds at least one letter, digit or CJK character;
# jieba also yields punctuation and spaces as tokens.
_WORD_CHARACTER = re.compile(r"[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff]")

# jieba logs its dictionary loading at INFO to stderr, which clutters every CLI run.
logging.getLogger("jieba").setLevel(logging.WARNING)


@functools.cache
def _traditional_to_simplified() -> OpenCC:
    return OpenCC("t2s")


@functools.cache
def convertible_characters() -> frozenset[str]:
    """Characters of which any text that t2s would change contains at least one.

    OpenCC t2s replaces dictionary keys (phrases, then single characters) by their values
    and leaves everything else as it is; a key mapped to itself changes nothing. So the
    conversion can only alter text that contains a whole key with a different value. The
    set holds every single-character key with a different value, plus, for each such
    phrase that contains none of those (沈默 → 沉默), its characters that change. Every
    changing key therefore contains a member, and text with no member comes out
    unchanged (tests/search/test_text_folding.py checks it on the real records and on
    every CJK character).
    """
    converter = _traditional_to_simplified()
    converter.convert("")  # loads the dictionaries
    entries = [
        (key, value)
        for group in converter._dict_chain_data
        for _max_len, _min_len, mapping in group
        for key, value in mapping.items()
        if key != value
    ]
    characters = {key for key, _value in entries if len(key) == 1}
    for key, value in entries:
        if characters.isdisjoint(key):
            if len(key) == len(value):
                characters.update(k for k, v in zip(key, value, strict=True) if k != v)
            else:
                characters.update(key)
    return frozenset(characters)


def to_half_width(text: str) -> str:
    """Map full-width ASCII variants (ＰＬＣ, ３Ｄ, ，) and the ideographic space to ASCII."""
    return text.translate(_FULL_WIDTH_TO_HALF_WIDTH)


def to_simplified(text: str) -> str:
    # The pure-Python converter is slow per abstract (docs/PERFORMANCE.md, "Figures behind
    # the code's comments"); almost all listings are already simplified, and a set test
    # in C proves that nothing would change.
    if convertible_characters().isdisjoint(text):
        return text
    return str(_traditional_to_simplified().convert(text))


def fold_for_search(text: str) -> str:
    """The canonical form of any text that is indexed or searched."""
    half_width = to_half_width(text)
    simplified = to_simplified(half_width)
    return _WHITESPACE_RUN.sub(" ", simplified).strip()


def normalize_term(term: str) -> str:
    """The canonical form of a single word, as both engines compare words: lower case."""
    return fold_for_search(term).lower()


@dataclass(frozen=True)
class Dictionary:
    """The maintained domain dictionary: synonym groups and stop words (normalized)."""

    synonym_groups: tuple[tuple[str, ...], ...]
    stop_words: frozenset[str]
    _group_index: dict[str, tuple[int, ...]] = field(repr=False, compare=False)

    @classmethod
    def from_data(
        cls, synonym_groups: Iterable[Sequence[str]], stop_words: Iterable[str]
    ) -> Dictionary:
        groups = tuple(
            tuple(dict.fromkeys(fold_for_search(term) for term in group if term.strip()))
            for group in synonym_groups
        )
        group_index: dict[str, tuple[int, ...]] = {}
        for position, group in enumerate(groups):
            for term in group:
                key = term.lower()
                group_index[key] = (*group_index.get(key, ()), position)
        return cls(
            synonym_groups=groups,
            stop_words=frozenset(normalize_term(word) for word in stop_words if word.strip()),
            _group_index=group_index,
        )

    def synonyms_of(self, term: str) -> tuple[str, ...]:
        """The other members of every group `term` belongs to (case-insensitive)."""
        key = normalize_term(term)
        others: dict[str, None] = {}
        for position in self._group_index.get(key, ()):
            for member in self.synonym_groups[position]:
                if member.lower() != key:
                    others[member] = None
        return tuple(others)

    def is_stop_word(self, word: str) -> bool:
        return normalize_term(word) in self.stop_words

    def all_terms(self) -> list[str]:
        return [term for group in self.synonym_groups for term in group]

    def meilisearch_synonyms(self) -> dict[str, list[str]]:
        """Multi-way synonyms in the shape of Meilisearch's `synonyms` setting."""
        synonyms: dict[str, dict[str, None]] = {}
        for group in self.synonym_groups:
            for term in group:
                others = synonyms.setdefault(term, {})
                others.update((member, None) for member in group if member != term)
        return {term: list(others) for term, others in synonyms.items() if others}


def _read_synonym_groups(path: Path) -> list[list[str]]:
    groups = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(groups, list) or not all(isinstance(group, list) for group in groups):
        raise ValueError(f"{path}: expected a YAML list of term lists")
    return [[str(term) for term in group] for group in groups]


def _read_stop_words(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


@functools.cache
def load_dictionary(directory: Path = DICTIONARY_DIR) -> Dictionary:
    return Dictionary.from_data(
        synonym_groups=_read_synonym_groups(directory / "synonyms.yaml"),
        stop_words=_read_stop_words(directory / "stopwords.txt"),
    )


@functools.cache
def _segmenter() -> jieba.Tokenizer:
    """A private jieba instance that knows the dictionary terms.

    Private so that adding our words never changes segmentation elsewhere in the process.
    Dictionary terms become single words, so 钕铁硼 or 3D打印 are never split apart.
    """
    segmenter = jieba.Tokenizer()
    for term in load_dictionary().all_terms():
        if " " not in term:
            segmenter.add_word(term)
    return segmenter


def warm_up() -> None:
    """Load the segmenter, the domain dictionary and the t2s tables now, not in the first
    request that needs them (jieba's dictionary alone takes a noticeable part of a second:
    docs/PERFORMANCE.md, "Figures behind the code's comments")."""
    segment_query("钕铁硼永磁材料")
    fold_for_search("臺灣積體電路")  # traditional text takes the path that loads OpenCC


def _is_word(token: str) -> bool:
    return bool(_WORD_CHARACTER.search(token))


def segment_for_index(text: str) -> list[str]:
    """Words to index for `text`: fine and coarse segments, lower case, no stop words.

    jieba's search mode yields both 同步电机 and its parts 同步 / 电机, so a query for
    either the whole word or a part of it finds the document.
    """
    dictionary = load_dictionary()
    words = (token.strip().lower() for token in _segmenter().cut_for_search(fold_for_search(text)))
    return [word for word in words if _is_word(word) and word not in dictionary.stop_words]


def segment_query(text: str) -> list[str]:
    """The distinct words of a query, in order, lower case, without stop words."""
    dictionary = load_dictionary()
    words = (token.strip().lower() for token in _segmenter().cut(fold_for_search(text)))
    meaningful = (word for word in words if _is_word(word) and word not in dictionary.stop_words)
    return list(dict.fromkeys(meaningful))


def _is_specific(word: str) -> bool:
    return len(word) > 1 or word.isascii()


def extract_key_terms(
    title: str, keywords: Sequence[str] = (), max_terms: int = ENGINE_MAX_QUERY_WORDS
) -> list[str]:
    """The most specific words of a listing, for a matching query.

    Keywords come first (their owner chose them), then title words, longest first
    (longer Chinese words are rarer and more specific: 钕铁硼 before 材料). Keywords
    are segmented too, because the engine counts their words. Demand phrasing, function
    words and single Chinese characters are dropped. `" ".join(result)` is a query
    that loses nothing to the engine's 10-word limit.
    """
    if not 1 <= max_terms <= ENGINE_MAX_QUERY_WORDS:
        raise ValueError(
            f"max_terms must be between 1 and {ENGINE_MAX_QUERY_WORDS}: the engine ignores "
            f"query words past the {ENGINE_MAX_QUERY_WORDS}th"
        )
    # A lone Chinese character (高, 新, the 期 of 货架期) is almost never what the listing
    # is about; a keyword that is one character as a whole is kept.
    keyword_words = [
        word
        for keyword in keywords
        for word in segment_query(keyword)
        if _is_specific(word) or word == keyword.strip()
    ]
    title_words = sorted(
        (word for word in segment_query(title) if _is_specific(word)), key=len, reverse=True
    )
    distinct = dict.fromkeys([*keyword_words, *title_words])
    return list(distinct)[:max_terms]
