"""Which text of a listing is embedded, and the content hash that names its vector.

A passage is the listing's title, its keywords and the start of its summary (results)
or problem description (demands). The start only: the model's time grows with the
tokens (measured on one thread: 29 passages/s for title + keywords, 13/s with 60
characters of summary, 8.6/s with 120, 5.9/s with 200), and the opening of a CSL
abstract or a demand's description is where the problem and method are stated. 120
characters keeps 1,000 listings at about two minutes of one core
(docs/PERFORMANCE.md, "Embeddings").

Every builder folds the text the way search documents are folded
(`search.text.fold_for_search`), so the text built from a raw record, from a form and
from an indexed document is the same string, and so is its hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from search.documents import Catalogue
from search.embedding.base import Encoding
from search.text import fold_for_search

SUMMARY_CHARS = 120
# A search box query is short; a pasted paragraph is cut where a passage would be.
QUERY_CHARS = 200


def result_passage_text(title: str, keywords: Sequence[str], summary: str | None) -> str:
    """The embedded text of a research result."""
    return _listing_text(title, keywords, summary)


def demand_passage_text(title: str, keywords: Sequence[str], description: str | None) -> str:
    """The embedded text of a technology demand (matching compares its vector with the
    results' passage vectors: docs/SEARCH.md, "What is embedded")."""
    return _listing_text(title, keywords, description)


def passage_text_of_document(catalogue: Catalogue, document: Mapping[str, Any]) -> str:
    """The passage text of a search document (`search.documents`) of either catalogue."""
    body_field = "summary" if catalogue == "results" else "description"
    return _listing_text(
        document.get("title") or "", document.get("keywords") or (), document.get(body_field)
    )


def query_text(text: str) -> str:
    """The embedded text of a free-text search query."""
    return _clean(text)[:QUERY_CHARS]


def content_hash(model_id: str, encoding: Encoding, text: str) -> str:
    """sha256 hex of model, encoding and text: equal hashes mean an equal vector.

    The encoding is part of it because e5 embeds the same words differently as a
    query and as a passage. NUL separators keep ("ab", "c") and ("a", "bc") apart.
    """
    payload = "\0".join((model_id, encoding, text)).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def _listing_text(title: str, keywords: Sequence[str], body: str | None) -> str:
    parts = [_clean(title)]
    words = [cleaned for cleaned in (_clean(word) for word in keywords) if cleaned]
    if words:
        parts.append("、".join(words))
    opening = _clean(body or "")[:SUMMARY_CHARS]
    if opening:
        parts.append(opening)
    return "。".join(part for part in parts if part)


def _clean(text: str) -> str:
    """Folded, with runs of whitespace (line breaks in a description) as one space."""
    return " ".join(fold_for_search(text).split())
