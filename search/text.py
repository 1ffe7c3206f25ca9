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
    """The maintained domain dictionary (normalized): synonym groups, stop words, and
    generic words (searchable, but never a matching term on their own)."""

    synonym_groups: tuple[tuple[str, ...], ...]
    stop_words: frozenset[str]
    _group_index: dict[str, tuple[int, ...]] = field(repr=False, compare=False)
    generic_words: frozenset[str] = frozenset()

    @classmethod
    def from_data(
        cls,
        synonym_groups: Iterable[Sequence[str]],
        stop_words: Iterable[str],
        generic_words: Iterable[str] = (),
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
            generic_words=frozenset(normalize_term(word) for word in generic_words if word.strip()),
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

    def is_generic(self, word: str) -> bool:
        return normalize_term(word) in self.generic_words

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
        generic_words=_read_stop_words(directory / "generic_words.txt"),
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


def characters_of_run(word: str) -> list[str] | None:
    """The single characters jieba cuts `word` into, when it cuts it into nothing else
    (a word `segment_query` joined back from a run: 高镍 → 高 / 镍), else None.

    An index holds such a word as those characters side by side, so an engine looks
    for them as a phrase."""
    if len(word) < 2:
        return None
    parts = [token for token in _segmenter().cut(word) if token.strip()]
    return parts if len(parts) > 1 and all(map(_is_lone_character, parts)) else None


def segment_query(text: str) -> list[str]:
    """The distinct words of a query, in order, lower case, without stop words.

    A run of single characters is one word (`_words_with_rejoined_characters`): jieba
    cuts a word it does not know (高镍, 箍趾病) into characters, and each of them alone
    would match hundreds of listings."""
    return _words_with_rejoined_characters(text, keep_lone_characters=True)


def _is_lone_character(word: str) -> bool:
    return len(word) == 1 and not word.isascii()


# A keyword of at most this many words stays one matching term (多层生产计划, 晶界扩散):
# split, its generic parts (生产, 计划) would each pull in listings about anything.
COMPOUND_MAX_WORDS = 3
# Where an owner's keyword holds several keywords at once (大豆肽 抗氧化, A/B).
_KEYWORD_SEPARATORS = re.compile(r"[\s,;/|、，；]+")


def query_word_count(term: str) -> int:
    """How many words the engines count for a term (they read only the first 10)."""
    return max(len(segment_query(term)), 1)


def _words_with_rejoined_characters(text: str, *, keep_lone_characters: bool = False) -> list[str]:
    """jieba's words of a query, except that a run of single characters is joined back.

    jieba cuts a word it does not know (箍趾病, 癫癎, 去雾) into single characters, and
    a lone character says nothing; the run as a whole is the rare, telling word. A lone
    character between words is dropped unless `keep_lone_characters` (a query of one
    character, 钢, means it).
    """
    dictionary = load_dictionary()
    words: list[str] = []
    run: list[str] = []

    def end_run() -> None:
        if len(run) > 1 or (run and keep_lone_characters):
            words.append("".join(run))
        run.clear()

    for token in _segmenter().cut(fold_for_search(text)):
        word = token.strip().lower()
        if word in dictionary.stop_words or not _is_word(word):
            end_run()
        elif _is_lone_character(word):
            run.append(word)
        else:
            end_run()
            words.append(word)
    end_run()
    return list(dict.fromkeys(words))


def _meaningful(word: str) -> bool:
    return not load_dictionary().is_generic(word)


def keyword_terms(keyword: str) -> list[str]:
    """The matching terms of one keyword its owner chose.

    Short compounds stay whole (see `COMPOUND_MAX_WORDS`), a keyword that is one
    character stays as it is, longer ones give their words (runs of single characters
    rejoined, generic words such as 技术 dropped).
    """
    terms: list[str] = []
    for piece in _KEYWORD_SEPARATORS.split(to_half_width(keyword).lower()):
        words = segment_query(piece)
        if not words:
            continue
        if len(words) == 1:
            terms.append(words[0])  # as its owner wrote it, even 钢 or 应用
        elif 1 < len(words) <= COMPOUND_MAX_WORDS or all(map(_is_lone_character, words)):
            terms.append(piece.strip())
        else:
            terms.extend(filter(_meaningful, _words_with_rejoined_characters(piece)))
    return terms


# Words a listing's long text (a demand's problem description, a result's summary) may
# add to its matching terms, after the keywords' and the title's: the description is
# where an enterprise names the product and the symptom in its own words, but it is
# long, and every extra term dilutes the query.
BODY_MAX_TERMS = 6


def extract_key_terms(
    title: str,
    keywords: Sequence[str] = (),
    max_words: int = ENGINE_MAX_QUERY_WORDS,
    body: str = "",
) -> list[str]:
    """The most specific terms of a listing, for a matching query.

    Keywords come first (their owner chose them, see `keyword_terms`), then title
    words, longest first (longer Chinese words are rarer and more specific: 钕铁硼 before
    材料), then up to `BODY_MAX_TERMS` words of the long text `body`, longest first.
    Demand phrasing, function words, generic words (技术 of 相关技术) and lone
    Chinese characters are dropped. The terms hold at most `max_words` words as the
    engines count them, so with the default `" ".join(result)` is a query that loses
    nothing to the engines' 10-word limit (`query_chunks` cuts a longer list).
    """
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    keyword_part = [term for keyword in keywords for term in keyword_terms(keyword)]
    title_part = _longest_first(title)
    known = set(keyword_part) | set(title_part)
    body_part = [word for word in _longest_first(body) if word not in known][:BODY_MAX_TERMS]
    terms: list[str] = []
    words = 0
    for term in dict.fromkeys([*keyword_part, *title_part, *body_part]):
        count = query_word_count(term)
        if words + count > max_words:
            continue  # a shorter term further on may still fit
        terms.append(term)
        words += count
    return terms


def _longest_first(text: str) -> list[str]:
    if not text.strip():
        return []
    return sorted(filter(_meaningful, _words_with_rejoined_characters(text)), key=len, reverse=True)


def search_box_text(text: str) -> str:
    """A search-box query as the engines should read it: runs of single characters as
    phrases.

    jieba cuts a word it does not know into single characters (高镍三元 → 高 / 镍 /
    三元), and a lone character occurs in hundreds of listings: both engines' "last"
    strategy then returned every listing with 高 in it. A run of two or more single
    characters becomes a quoted phrase (`"高镍" 三元`): Meilisearch then wants those
    characters side by side, and the local engine reads the run as one word
    (`segment_query`), found literally in titles and keywords. Everything else, a lone
    character between words included, stays as typed.
    """
    folded = fold_for_search(text)
    parts: list[str] = []
    run: list[str] = []

    def end_run() -> None:
        parts.append(' "' + "".join(run) + '" ' if len(run) > 1 else "".join(run))
        run.clear()

    stop_words = load_dictionary().stop_words
    for token in _segmenter().cut(folded):
        if _is_lone_character(token) and _is_word(token) and token not in stop_words:
            run.append(token)
        else:
            end_run()
            parts.append(token)
    end_run()
    return _WHITESPACE_RUN.sub(" ", "".join(parts)).strip()


def query_chunks(terms: Sequence[str], max_words: int = ENGINE_MAX_QUERY_WORDS) -> list[str]:
    """The terms as query texts of at most `max_words` engine words each, in order."""
    chunks: list[list[str]] = []
    words = max_words
    for term in terms:
        count = query_word_count(term)
        if words + count > max_words:
            chunks.append([])
            words = 0
        chunks[-1].append(term)
        words += count
    return [" ".join(chunk) for chunk in chunks]
