"""Demand <-> result matching: an engine query for recall, then a re-ranking with reasons.

The engine is good at words and blind to everything else a technology broker weighs,
so matching runs in two steps:

1. Recall. The source listing's most specific terms (`search.text.extract_key_terms`:
   keywords first, then title words, then a few words of the description or summary;
   demand phrasing such as 寻求/征集/需求 and generic
   words such as 技术 removed; at most 20 words, sent as combined queries of at most 10,
   the engines' limit, so no key term is silently dropped) go to the engine with the
   "frequency" matching strategy, which tolerates missing words: far more precise than
   Meilisearch's default "last" on demand titles (docs/SEARCH.md; the figures in
   docs/PERFORMANCE.md, "Figures behind the code's comments"). The engine returns up
   to `DEFAULT_CANDIDATES` published candidates with ranking scores.
   "frequency" never drops the rarest query word, so when that returns too few
   candidates the leading terms are also searched one by one, within the source's key
   field and everywhere, and the key field's newest listings join
   (`_broadening_queries`). These searches go to the engine together, in one round trip
   (`SearchBackend.search_many`).
   With the source's stored passage vector (`SemanticSide`), the nearest listings by
   cosine join as candidates, in the same round trip as the combined query: they find
   the counterpart told in other words (a symptom against a method), which no word
   search can.

2. Re-ranking. Each (demand, result) pair gets

       score = Σ weight_c × component_c          (weights below, summing to 1)

   with every component in 0..1:

   - semantic  cosine of the two passage vectors, mapped from e5's narrow band
               (`SEMANTIC_FLOOR`..`SEMANTIC_CEILING`) to 0..1. Symmetric: the same pair
               scores the same from both sides. A pair without both vectors is scored
               without it, with `LEXICAL_WEIGHTS`;
   - text      0.5 × engine relevance (the candidate's ranking score divided by the best
               candidate's, so scores of either engine become comparable within one list)
               + 0.5 × query-term coverage (share of query terms, or their synonyms, found
               in the candidate; a hit only in the long text counts `BODY_TERM_CREDIT`);
   - field     same key field 1, different 0, unknown `NEUTRAL`;
   - ipc       deepest shared IPC level: subgroup 1, main group 0.85, subclass 0.7,
               class 0.4, section 0.15, none 0, unknown `NEUTRAL`;
   - budget    asking price within the demand's budget 1, above it decaying linearly
               from 0.7 to 0 at twice the budget, 面议 on either side `NEGOTIABLE_CREDIT`;
   - maturity  of the result: 产业化 1, 中试 0.85, 小试 0.45, 研发 0.2 (enterprises
               usually need something they can put into production);
   - mode      the demand's cooperation modes and the result's transfer modes share a
               mode 1, are compatible (委托开发 with 合作开发/技术服务...) 0.6, neither 0,
               unknown `NEUTRAL`;
   - district  same district 1, else 0 (a small bonus: local partners are easier).

   Unknown attributes score `NEUTRAL` rather than 0, so a listing that leaves a field
   empty is neither rewarded nor punished for it.

Everything here works on plain mappings (search documents, or the same keys built from
a row), never on ORM objects; `find_matches` is the only function that talks to an engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from search.backend import (
    MAX_PAGE_SIZE,
    Condition,
    MatchingStrategy,
    SearchBackend,
    SearchFilters,
    SearchHit,
    SearchPage,
    SearchQuery,
    Visibility,
    filter_conditions,
)
from search.documents import Catalogue, DocumentError, ipc_prefixes
from search.text import (
    ENGINE_MAX_QUERY_WORDS,
    extract_key_terms,
    load_dictionary,
    query_chunks,
    segment_query,
)

Direction = Literal["demand_to_results", "result_to_demands"]

# --- weights (sum to 1) -------------------------------------------------------------------
# Meaning weighs most: of the splits measured with scripts/search_quality.py on the
# plain-language and the topic demands, this one put the most plain-language demands'
# records in the top 10 (the figures: docs/PERFORMANCE.md, "Figures behind the code's
# comments").
WEIGHT_TEXT = 0.20
WEIGHT_SEMANTIC = 0.45
WEIGHT_FIELD = 0.11
WEIGHT_IPC = 0.07
WEIGHT_BUDGET = 0.05
WEIGHT_MODE = 0.04
WEIGHT_MATURITY = 0.04
WEIGHT_DISTRICT = 0.04
WEIGHTS: dict[str, float] = {
    "text": WEIGHT_TEXT,
    "semantic": WEIGHT_SEMANTIC,
    "field": WEIGHT_FIELD,
    "ipc": WEIGHT_IPC,
    "budget": WEIGHT_BUDGET,
    "mode": WEIGHT_MODE,
    "maturity": WEIGHT_MATURITY,
    "district": WEIGHT_DISTRICT,
}
# A pair whose meaning is unknown (no embedder, or a listing not embedded yet) is judged
# on its words and attributes with the weights matching had before vectors, so that a
# deployment without an embedder ranks exactly as before (a neutral meaning would have
# shifted the balance from the words to the attributes: the plain-language demands'
# top 10 fell from 0.539 to 0.496 when measured).
LEXICAL_WEIGHTS: dict[str, float] = {
    "text": 0.45,
    "field": 0.15,
    "ipc": 0.10,
    "budget": 0.10,
    "mode": 0.08,
    "maturity": 0.07,
    "district": 0.05,
}

# An attribute one side leaves empty: no evidence either way.
NEUTRAL = 0.5
# 面议 is a willingness to talk, slightly better than knowing nothing.
NEGOTIABLE_CREDIT = 0.6
# A query term found only in the summary/description is weaker evidence than in the
# title or the keywords the owner chose.
BODY_TERM_CREDIT = 0.6
# A compound term (多层生产计划) not found whole earns this share of the credit its
# words found one by one would earn: 生产 and 计划 apart are weak evidence.
COMPOUND_PART_CREDIT = 0.5
ENGINE_SHARE_OF_TEXT = 0.5

# Deepest shared IPC level -> component. Levels as `search.documents.ipc_prefixes` yields
# them: section H, class H01, subclass H01M, main group H01M10/00, subgroup H01M10/052.
IPC_LEVEL_CREDIT = {
    "subgroup": 1.0,
    "main_group": 0.85,
    "subclass": 0.7,
    "class": 0.4,
    "section": 0.15,
}
IPC_LEVEL_NAMES = {
    "subgroup": "同一小组",
    "main_group": "同一大组",
    "subclass": "同一小类",
    "class": "同一大类",
    "section": "同一部",
}

MATURITY_CREDIT = {"产业化": 1.0, "中试": 0.85, "小试": 0.45, "研发": 0.2}
# Stages an enterprise can usually act on without funding more research.
READY_STAGES = frozenset({"中试", "产业化"})

# Price above the budget: credit falls from this value at the budget to 0 at
# OVER_BUDGET_LIMIT × budget.
OVER_BUDGET_START_CREDIT = 0.7
OVER_BUDGET_LIMIT = 2.0

MODE_COMPATIBLE_CREDIT = 0.6
# Demand-side modes a result's transfer modes can still serve, though not literally equal.
COMPATIBLE_MODES: dict[str, frozenset[str]] = {
    "委托开发": frozenset({"合作开发", "技术服务"}),
    "合作开发": frozenset({"委托开发"}),
    "技术咨询": frozenset({"技术服务"}),
    "技术服务": frozenset({"技术咨询"}),
    "转让": frozenset({"许可"}),
    "许可": frozenset({"转让"}),
}

# e5 puts almost every pair of listings at a cosine of 0.8-0.9: the band is stretched
# to 0..1 so that the component separates neighbours from strangers. The floor sits a
# little above the median pair of records, where the plain-language demands (the case
# meaning is for) did best, at some cost to the topic demands' P@10; credit 0.5 (an
# agreement in the explanation) starts above the 99th percentile of record pairs. The
# distribution and the trade-off: docs/PERFORMANCE.md, "Figures behind the code's
# comments".
SEMANTIC_FLOOR = 0.86
SEMANTIC_CEILING = 0.92
# From this credit on the explanation says the pair is close in meaning.
SEMANTIC_AGREEMENT = 0.5
# Nearest listings by vector fetched beside the word searches.
SEMANTIC_CANDIDATES = 50

DEFAULT_CANDIDATES = 50
# When the combined query finds fewer than the wanted candidates, this many leading
# terms are also searched alone (see `_broadening_queries`) within the source's key field,
# and this many of them in every field, each search for this many hits...
BROADENING_TERMS = 5
BROADENING_TERMS_ANY_FIELD = 2
BROADENING_LIMIT = 20
# ...and the engine's opinion of those hits counts this much: a one-word match is
# weaker evidence than a hit of the combined query.
BROADENED_RELEVANCE = 0.5
DEFAULT_LIMIT = 10
MATCHING_STRATEGY: MatchingStrategy = "frequency"
# The query may hold twice what one engine query reads: past the 10th word, the terms
# go to a second combined query in the same round trip instead of being dropped.
MATCHING_QUERY_WORDS = 2 * ENGINE_MAX_QUERY_WORDS


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One attribute's verdict on a pair, in Chinese for people and a code for programs."""

    code: str
    message: str


@dataclass(frozen=True)
class Explanation:
    matched_terms: list[str]
    missing_terms: list[str]
    agreements: list[Reason]
    disagreements: list[Reason]
    components: dict[str, float]

    @property
    def summary(self) -> str:
        """One Chinese sentence: what the pair shares, then what speaks against it."""
        parts: list[str] = []
        if self.matched_terms:
            parts.append("共同关键词：" + "、".join(self.matched_terms))
        parts.extend(reason.message for reason in self.agreements)
        text = "；".join(parts) or "仅文本相近"
        if self.disagreements:
            text += "。需注意：" + "；".join(reason.message for reason in self.disagreements)
        return text + "。"

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "matched_terms": list(self.matched_terms),
            "missing_terms": list(self.missing_terms),
            "agreements": [asdict(reason) for reason in self.agreements],
            "disagreements": [asdict(reason) for reason in self.disagreements],
            "components": dict(self.components),
        }


@dataclass(frozen=True)
class Match:
    """A candidate listing for the source, with its score in 0..1 and the reasons."""

    catalogue: Catalogue  # the candidate's catalogue
    listing_id: int
    document: dict[str, Any]
    score: float
    engine_score: float | None
    explanation: Explanation
    # Cosine of the two passage vectors; None when either has none.
    semantic_score: float | None = None


VectorLike = Sequence[float] | npt.NDArray[np.float32]
CandidateVectors = Callable[[Sequence[Mapping[str, Any]]], Sequence[VectorLike | None]]


@dataclass(frozen=True)
class SemanticSide:
    """The source's stored passage vector, and where the candidates' vectors come from.

    `candidate_vectors(documents)` answers one stored vector (or None) per candidate
    document, in order; the application reads them from its vector store, so that every
    candidate, however it was found, gets the same symmetric passage-to-passage cosine.
    """

    vector: VectorLike
    candidate_vectors: CandidateVectors

    def similarities(self, documents: Sequence[Mapping[str, Any]]) -> list[float | None]:
        if not documents:
            return []
        source = np.asarray(self.vector, dtype=np.float32)
        found = self.candidate_vectors(documents)
        return [
            None if vector is None else float(np.dot(source, np.asarray(vector, "f4")))
            for vector in found
        ]


@dataclass(frozen=True)
class MatchQuery:
    terms: list[str]

    @property
    def chunks(self) -> list[str]:
        """The combined queries, each within the engines' 10-word limit."""
        return query_chunks(self.terms)

    @property
    def text(self) -> str:
        """The first combined query (the leading terms)."""
        return self.chunks[0] if self.terms else ""


@dataclass
class _Verdicts:
    components: dict[str, float] = field(default_factory=dict)
    agreements: list[Reason] = field(default_factory=list)
    disagreements: list[Reason] = field(default_factory=list)

    def add(
        self, name: str, credit: float, agree: Reason | None = None, disagree: Reason | None = None
    ) -> None:
        self.components[name] = round(credit, 4)
        if agree is not None:
            self.agreements.append(agree)
        if disagree is not None:
            self.disagreements.append(disagree)


# --- step 1: the engine query ---------------------------------------------------------------


def build_query(source: Mapping[str, Any]) -> MatchQuery:
    """The source listing's most specific words, never more than the engine reads."""
    terms = extract_key_terms(
        str(source.get("title") or ""),
        [str(keyword) for keyword in source.get("keywords") or ()],
        max_words=MATCHING_QUERY_WORDS,
        body=str(source.get("description") or source.get("summary") or ""),
    )
    return MatchQuery(terms=terms)


def candidate_catalogue(direction: Direction) -> Catalogue:
    return "results" if direction == "demand_to_results" else "demands"


def find_matches(
    engine: SearchBackend,
    direction: Direction,
    source: Mapping[str, Any],
    *,
    candidates: int = DEFAULT_CANDIDATES,
    limit: int = DEFAULT_LIMIT,
    visibility: Visibility | None = None,
    semantic: SemanticSide | None = None,
) -> list[Match]:
    """Ask the engine for candidates and return the best `limit` after re-ranking.

    Raises the engine's `SearchUnavailable` when it cannot be reached. Candidates are
    published listings only (the default visibility): a match is a suggestion to
    contact someone, which makes sense only for listings on the market. With
    `semantic`, the source's nearest listings by vector are candidates too, and every
    candidate's cosine to the source is part of its score.
    """
    query = build_query(source)
    if not query.terms and semantic is None:
        return []
    catalogue = candidate_catalogue(direction)
    wanted = min(max(candidates, limit), MAX_PAGE_SIZE)
    visibility = visibility or Visibility.public()
    searches = [_recall_query(text, wanted, visibility) for text in query.chunks]
    if semantic is not None:
        searches.append(_nearest_query(semantic.vector, visibility))
    pages = _search_all(engine, catalogue, searches)
    nearest = pages.pop() if semantic is not None else None
    candidates_found = _Candidates()
    if pages:
        leading, *later = pages
        candidates_found.add(leading, 1.0)
        # The later terms' combined queries: weaker evidence than the leading terms'.
        for page in later:
            candidates_found.add(page, BROADENED_RELEVANCE)
    lexical_found = len(candidates_found.hits)
    if nearest is not None:
        # Found by meaning alone: the engine has no opinion about their words.
        candidates_found.add(nearest, 0.0, by_meaning=True)
    if query.terms and lexical_found < wanted:
        # A second round trip, only when needed: in a large catalogue the combined query
        # fills the candidates (all 100 sampled demands at 100,000 listings), in a small
        # one it comes back short for almost every listing (docs/SEARCH.md).
        field = source.get("field")
        searches = _broadening_queries(query, visibility, str(field) if field else None)
        for search, page in zip(searches, engine.search_many(catalogue, searches), strict=True):
            # A browse of the key field matched no words: the engine has no opinion.
            candidates_found.add(page, BROADENED_RELEVANCE if search.text else 0.0)
    similarities = (
        semantic.similarities([hit.document for hit in candidates_found.hits])
        if semantic is not None
        else None
    )
    return rerank(
        direction,
        source,
        query,
        candidates_found.hits,
        candidates_found.relevance,
        similarities,
        candidates_found.by_meaning,
    )[:limit]


@dataclass
class _Candidates:
    """Hits gathered from several searches, each once, with the engine's opinion of it
    (relative to the best hit of its own search, times the search's credit), and which
    of them the vector search brought (`by_meaning`)."""

    hits: list[SearchHit] = field(default_factory=list)
    relevance: list[float] = field(default_factory=list)
    by_meaning: set[str] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)

    def add(self, page: SearchPage, credit: float, *, by_meaning: bool = False) -> None:
        fresh = [hit for hit in page.hits if hit.id not in self._seen]
        if by_meaning:
            self.by_meaning.update(hit.id for hit in fresh)
        self._seen.update(hit.id for hit in fresh)
        self.hits += fresh
        self.relevance += [credit * value for value in relative_engine_scores(fresh)]


def _search_all(
    engine: SearchBackend, catalogue: Catalogue, searches: list[SearchQuery]
) -> list[SearchPage]:
    """The pages of the first round trip: one per combined query (usually one; terms
    past the engines' 10-word limit go to a second combined query rather than being
    dropped) and the vector search, all in one request."""
    if len(searches) == 1:
        return [engine.search(catalogue, searches[0])]
    return list(engine.search_many(catalogue, searches))


def _nearest_query(vector: VectorLike, visibility: Visibility) -> SearchQuery:
    """The source's nearest listings by cosine alone (no words: ratio 1)."""
    return SearchQuery(
        vector=list(vector),
        semantic_ratio=1.0,
        visibility=visibility,
        limit=SEMANTIC_CANDIDATES,
        show_ranking_score=True,
    )


def _recall_query(
    text: str, limit: int, visibility: Visibility, filters: SearchFilters | None = None
) -> SearchQuery:
    return SearchQuery(
        text=text,
        filters=filters or SearchFilters(),
        visibility=visibility,
        limit=limit,
        matching_strategy=MATCHING_STRATEGY,
        show_ranking_score=True,
    )


def _broadening_queries(
    query: MatchQuery, visibility: Visibility, field: str | None
) -> list[SearchQuery]:
    """Each leading term (keywords first) on its own: within the source's key field,
    and the first ones in every field.

    A one-word hit is weak evidence; one in the same field is a plausible counterpart
    (it raised the matcher's precision on both engines: docs/SEARCH.md, and the figures in
    docs/PERFORMANCE.md, "Figures behind the code's comments"). The searches in every
    field keep counterparts of another field that share a leading keyword (equipment for
    a materials process). Without a field, every leading term is searched in every field.
    A one-term query has no field-free search to add: its combined query is that term.
    """
    searches: list[SearchQuery] = []
    any_field_terms = BROADENING_TERMS
    if field:
        in_field = SearchFilters(field=field)
        searches += [
            _recall_query(term, BROADENING_LIMIT, visibility, in_field)
            for term in query.terms[:BROADENING_TERMS]
        ]
        # The key field's own listings, newest first, for the re-ranking to judge. This
        # is what the generic word 技术 used to do by accident (a word of many listings
        # in every field): without it, dropping 技术 from queries lowered the local
        # engine's P@10 from 0.276 to 0.241 (docs/SEARCH.md).
        searches.append(_recall_query("", BROADENING_LIMIT, visibility, in_field))
        any_field_terms = BROADENING_TERMS_ANY_FIELD
    if len(query.terms) > 1:
        searches += [
            _recall_query(term, BROADENING_LIMIT, visibility)
            for term in query.terms[:any_field_terms]
        ]
    return searches


# --- step 2: re-ranking ----------------------------------------------------------------------


def rerank(
    direction: Direction,
    source: Mapping[str, Any],
    query: MatchQuery,
    hits: Sequence[SearchHit],
    relevance: Sequence[float] | None = None,
    similarities: Sequence[float | None] | None = None,
    by_meaning: Iterable[str] = (),
) -> list[Match]:
    """Score every hit against the source; best first, ties by engine order then id.

    `relevance` is the engine's opinion of each hit in 0..1 (default: each hit's score
    relative to the best hit's, see `relative_engine_scores`); `similarities` each hit's
    cosine to the source (None: unknown); `by_meaning` the ids the vector search found.
    """
    relevance = list(relevance) if relevance is not None else relative_engine_scores(hits)
    cosines = list(similarities) if similarities is not None else [None] * len(hits)
    found_by_meaning = set(by_meaning)
    scored: list[tuple[float, int, int, Match]] = []
    for rank, hit in enumerate(hits):
        match = score_candidate(
            direction,
            source,
            hit.document,
            query,
            relevance[rank],
            hit.score,
            cosines[rank],
            hit.id in found_by_meaning,
        )
        scored.append((-match.score, rank, match.listing_id, match))
    scored.sort(key=lambda item: item[:3])
    return [item[3] for item in scored]


def relative_engine_scores(hits: Sequence[SearchHit]) -> list[float]:
    """The engine's opinion of each hit in 0..1, relative to its best hit.

    Engines' raw scores are not comparable with each other (docs/SEARCH.md); relative to
    the best hit of the same list they are. Without scores, the rank stands in.
    """
    best = max((hit.score or 0.0 for hit in hits), default=0.0)
    count = len(hits)
    return [
        min(hit.score / best, 1.0) if hit.score is not None and best > 0 else 1.0 - rank / count
        for rank, hit in enumerate(hits)
    ]


def score_candidate(
    direction: Direction,
    source: Mapping[str, Any],
    candidate: Mapping[str, Any],
    query: MatchQuery,
    engine_relevance: float,
    engine_score: float | None = None,
    similarity: float | None = None,
    found_by_meaning: bool = False,
) -> Match:
    """Score one pair. `engine_relevance` is the engine's relative opinion in 0..1,
    `similarity` the cosine of the two passage vectors (None: one has none)."""
    if direction == "demand_to_results":
        demand, result = source, candidate
    else:
        demand, result = candidate, source
    matched, missing, coverage = term_coverage(query.terms, candidate)
    verdicts = _Verdicts()
    text_credit = ENGINE_SHARE_OF_TEXT * engine_relevance + (1 - ENGINE_SHARE_OF_TEXT) * coverage
    verdicts.add("text", text_credit)
    _judge_meaning(verdicts, similarity, found_by_meaning)
    _judge_field(verdicts, demand, result)
    _judge_ipc(verdicts, demand, result)
    _judge_budget(verdicts, demand, result)
    _judge_mode(verdicts, demand, result)
    _judge_maturity(verdicts, result)
    _judge_district(verdicts, demand, result)
    weights = LEXICAL_WEIGHTS if similarity is None else WEIGHTS
    score = sum(weights[name] * credit for name, credit in verdicts.components.items())
    explanation = Explanation(
        matched_terms=matched,
        missing_terms=missing,
        agreements=verdicts.agreements,
        disagreements=verdicts.disagreements,
        components=verdicts.components,
    )
    return Match(
        catalogue=candidate_catalogue(direction),
        listing_id=int(candidate.get("listing_id") or 0),
        document=dict(candidate),
        score=round(min(max(score, 0.0), 1.0), 4),
        engine_score=engine_score,
        explanation=explanation,
        semantic_score=None if similarity is None else round(similarity, 4),
    )


# --- the components ----------------------------------------------------------------------------


def term_coverage(
    terms: Sequence[str], candidate: Mapping[str, Any]
) -> tuple[list[str], list[str], float]:
    """(matched terms, missing terms, coverage in 0..1) of the query over the candidate."""
    if not terms:
        return [], [], 0.0
    headline = _searchable_text(candidate, ("title", "keywords"))
    body = _searchable_text(candidate, ("summary", "description", "technical_indicators"))
    matched: list[str] = []
    missing: list[str] = []
    credit = 0.0
    for term in terms:
        found = _found_credit(term, headline, body)
        if found is not None:
            matched.append(term)
            credit += found
        else:
            missing.append(term)
            credit += COMPOUND_PART_CREDIT * _part_credit(term, headline, body)
    return matched, missing, credit / len(terms)


def _found_credit(term: str, headline: str, body: str) -> float | None:
    """1 for a term (or a synonym) in the title or keywords, less in the long text."""
    if _mentions(headline, term):
        return 1.0
    if _mentions(body, term):
        return BODY_TERM_CREDIT
    return None


def _part_credit(term: str, headline: str, body: str) -> float:
    """For a compound term not found whole: the mean credit of its words."""
    parts = _parts(term)
    if len(parts) < 2:
        return 0.0
    return sum(_found_credit(part, headline, body) or 0.0 for part in parts) / len(parts)


@functools.lru_cache(maxsize=4096)
def _parts(term: str) -> tuple[str, ...]:
    return tuple(segment_query(term))


def _searchable_text(document: Mapping[str, Any], attributes: Iterable[str]) -> str:
    parts: list[str] = []
    for attribute in attributes:
        value = document.get(attribute)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list | tuple):
            parts.extend(str(item) for item in value)
    # Documents and query terms are already folded (simplified, half-width) by the
    # builders and the segmenter; folding again here would run OpenCC over every
    # candidate's summary on every match request, the dominant cost when measured.
    return " ".join(parts).lower()


def _mentions(text: str, term: str) -> bool:
    """A term or one of its dictionary synonyms occurs in the (lower-cased) text."""
    return any(variant in text for variant in _variants(term))


@functools.lru_cache(maxsize=4096)
def _variants(term: str) -> tuple[str, ...]:
    return tuple(variant.lower() for variant in (term, *load_dictionary().synonyms_of(term)))


def semantic_credit(similarity: float) -> float:
    """A cosine of two passage vectors as a credit in 0..1 (see `SEMANTIC_FLOOR`)."""
    spread = (similarity - SEMANTIC_FLOOR) / (SEMANTIC_CEILING - SEMANTIC_FLOOR)
    return min(max(spread, 0.0), 1.0)


def _judge_meaning(verdicts: _Verdicts, similarity: float | None, found_by_meaning: bool) -> None:
    if similarity is None:
        return  # judged without it (`LEXICAL_WEIGHTS`)
    credit = semantic_credit(similarity)
    if credit < SEMANTIC_AGREEMENT:
        verdicts.add("semantic", credit)
        return
    how = "按语义检索找到" if found_by_meaning else "文本语义也接近"
    verdicts.add(
        "semantic", credit, agree=Reason("semantic", f"语义相近：内容相似度{similarity:.2f}，{how}")
    )


def _judge_field(verdicts: _Verdicts, demand: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    wanted, offered = demand.get("field"), result.get("field")
    if not wanted or not offered:
        verdicts.add("field", NEUTRAL)
    elif wanted == offered:
        verdicts.add("field", 1.0, agree=Reason("field", f"同属{wanted}领域"))
    else:
        verdicts.add(
            "field", 0.0, disagree=Reason("field", f"领域不同（需求：{wanted}，成果：{offered}）")
        )


def shared_ipc_level(first: Iterable[str], second: Iterable[str]) -> tuple[str, str] | None:
    """The deepest IPC level two code lists share, as (level, shared prefix), or None."""
    try:
        mine = _ipc_levels(first)
        theirs = _ipc_levels(second)
    except DocumentError:
        return None  # a malformed code is no evidence, not an error in matching
    for level in IPC_LEVEL_CREDIT:
        shared = sorted(mine.get(level, set()) & theirs.get(level, set()))
        if shared:
            return level, shared[0]
    return None


def _ipc_levels(codes: Iterable[str]) -> dict[str, set[str]]:
    levels: dict[str, set[str]] = {}
    for prefix in ipc_prefixes(codes):
        levels.setdefault(_ipc_level_of(prefix), set()).add(prefix)
    return levels


def _ipc_level_of(prefix: str) -> str:
    if "/" in prefix:
        return "main_group" if prefix.endswith("/00") else "subgroup"
    return {1: "section", 3: "class"}.get(len(prefix), "subclass")


def _judge_ipc(verdicts: _Verdicts, demand: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    wanted, offered = demand.get("ipc_codes") or [], result.get("ipc_codes") or []
    if not wanted or not offered:
        verdicts.add("ipc", NEUTRAL)
        return
    shared = shared_ipc_level(wanted, offered)
    if shared is None:
        verdicts.add("ipc", 0.0, disagree=Reason("ipc", "IPC分类无共同部分"))
        return
    level, prefix = shared
    verdicts.add(
        "ipc",
        IPC_LEVEL_CREDIT[level],
        agree=Reason("ipc", f"IPC分类{IPC_LEVEL_NAMES[level]}（{prefix}）"),
    )


def _judge_budget(
    verdicts: _Verdicts, demand: Mapping[str, Any], result: Mapping[str, Any]
) -> None:
    price = result.get("price_fen")
    budget_max = demand.get("budget_max_fen")
    if price is None or budget_max is None:
        verdicts.add("budget", NEGOTIABLE_CREDIT, agree=Reason("budget", "价格面议，可协商"))
        return
    if price <= budget_max:
        verdicts.add(
            "budget",
            1.0,
            agree=Reason("budget", f"报价{_wan(price)}未超出预算（{_budget_text(demand)}）"),
        )
        return
    ratio = price / budget_max if budget_max else OVER_BUDGET_LIMIT
    over = (ratio - 1) / (OVER_BUDGET_LIMIT - 1)
    credit = max(0.0, OVER_BUDGET_START_CREDIT * (1 - over))
    verdicts.add(
        "budget",
        credit,
        disagree=Reason("budget", f"报价{_wan(price)}超出预算（{_budget_text(demand)}）"),
    )


def _wan(fen: int) -> str:
    """Fen as 万元, the unit Chinese technology markets quote prices in."""
    wan = fen / 1_000_000
    return f"{wan:g}万元"


def _budget_text(demand: Mapping[str, Any]) -> str:
    low, high = demand.get("budget_min_fen") or 0, int(demand["budget_max_fen"])
    if low:
        return f"{low / 1_000_000:g}-{high / 1_000_000:g}万元"
    return f"{high / 1_000_000:g}万元以内"


def _judge_mode(verdicts: _Verdicts, demand: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    wanted = set(demand.get("cooperation_modes") or ())
    offered = set(result.get("transfer_modes") or ())
    if not wanted or not offered:
        verdicts.add("mode", NEUTRAL)
        return
    common = sorted(wanted & offered)
    if common:
        verdicts.add("mode", 1.0, agree=Reason("mode", "合作方式一致：" + "、".join(common)))
        return
    compatible = sorted(
        mode for mode in wanted if COMPATIBLE_MODES.get(mode, frozenset()) & offered
    )
    if compatible:
        verdicts.add(
            "mode",
            MODE_COMPATIBLE_CREDIT,
            agree=Reason(
                "mode",
                f"合作方式相近（需求：{'、'.join(compatible)}，"
                f"成果：{'、'.join(sorted(offered))}）",
            ),
        )
        return
    verdicts.add(
        "mode",
        0.0,
        disagree=Reason(
            "mode",
            f"合作方式不一致（需求：{'、'.join(sorted(wanted))}，"
            f"成果：{'、'.join(sorted(offered))}）",
        ),
    )


def _judge_maturity(verdicts: _Verdicts, result: Mapping[str, Any]) -> None:
    stage = result.get("maturity_stage")
    if stage not in MATURITY_CREDIT:
        verdicts.add("maturity", NEUTRAL)
        return
    credit = MATURITY_CREDIT[str(stage)]
    if stage in READY_STAGES:
        verdicts.add("maturity", credit, agree=Reason("maturity", f"成果已达{stage}阶段"))
    else:
        verdicts.add(
            "maturity", credit, disagree=Reason("maturity", f"成果处于{stage}阶段，距产业化尚远")
        )


def _judge_district(
    verdicts: _Verdicts, demand: Mapping[str, Any], result: Mapping[str, Any]
) -> None:
    here, there = demand.get("district_code"), result.get("district_code")
    if here and here == there:
        verdicts.add("district", 1.0, agree=Reason("district", "同一区县，便于对接"))
    else:
        verdicts.add("district", 0.0)


# --- saved searches ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedSearchRule:
    """A saved search as a predicate over new documents: every filter and every query word.

    Stricter than a relevance search on purpose: a notification interrupts someone, so
    every meaningful query word (or a synonym) must occur in the listing's title,
    keywords or long text. Filters are the same `SearchFilters` the engines apply. Built
    once per saved search (segmenting the query is the costly part), then asked about
    every document of a batch.
    """

    words: tuple[str, ...]
    conditions: tuple[Condition, ...]

    @classmethod
    def of(cls, text: str, filters: SearchFilters) -> SavedSearchRule:
        return cls(tuple(segment_query(text)), tuple(filter_conditions(filters)))

    def matches(self, document: Mapping[str, Any]) -> bool:
        if not all(_condition_holds(document, condition) for condition in self.conditions):
            return False
        haystack = _searchable_text(
            document, ("title", "keywords", "summary", "description", "technical_indicators")
        )
        return all(_mentions(haystack, word) for word in self.words)


def document_matches_saved_search(
    document: Mapping[str, Any], text: str, filters: SearchFilters
) -> bool:
    """Whether a (new) document answers a saved search (`SavedSearchRule`)."""
    return SavedSearchRule.of(text, filters).matches(document)


def _condition_holds(document: Mapping[str, Any], condition: Condition) -> bool:
    value = document.get(condition.attribute)
    if condition.operator == "in":
        present = set(value) if isinstance(value, list | tuple) else {value}
        return bool(present & set(condition.values))
    if value is None:
        return False  # 面议 listings have no amount and fail an amount bound, as in search
    bound = condition.values[0]
    if condition.operator == "=":
        return bool(value == bound)
    if condition.operator == ">=":
        return bool(value >= bound)
    return bool(value <= bound)


__all__ = [
    "DEFAULT_CANDIDATES",
    "LEXICAL_WEIGHTS",
    "WEIGHTS",
    "Direction",
    "Explanation",
    "Match",
    "MatchQuery",
    "Reason",
    "SavedSearchRule",
    "SemanticSide",
    "build_query",
    "document_matches_saved_search",
    "find_matches",
    "rerank",
    "score_candidate",
    "semantic_credit",
    "shared_ipc_level",
    "term_coverage",
]
