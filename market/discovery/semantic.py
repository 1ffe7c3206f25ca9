"""The semantic side of search and matching in the application: which embedder, the
query vectors of free-text searches, and the stored passage vectors of listings.

Two rules (docs/SEARCH.md, "Embeddings"):

- A listing is compared with listings by the passage vectors the outbox worker
  stored (`market.discovery.vectors`), found by the content hash of its passage text.
  A request never embeds a listing: one without a stored vector yet is matched by its
  words only.
- What someone types into the search box is embedded with the query encoding, once
  per distinct text and process (`QueryVectorCache`: a repeated query costs a
  dictionary look-up instead of a model run; docs/PERFORMANCE.md, "Figures behind the
  code's comments").

Without an embedder (`MARKET_EMBEDDER=none`) or when it fails, everything here answers
None and search and matching stay lexical, silently for the client (logged).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from fastapi import Depends, Request
from sqlmodel import Session

from market.discovery.engine import app_embedder
from market.discovery.vectors import cached_vectors
from search.documents import Catalogue
from search.embedding import (
    Embedder,
    EmbeddingError,
    Vectors,
    content_hash,
    passage_text_of_document,
    query_text,
)

logger = logging.getLogger("market.discovery")

# Distinct query texts whose vectors a process keeps: 1.5 KB each.
QUERY_CACHE_SIZE = 2048


async def get_embedder(request: Request) -> Embedder | None:
    """FastAPI dependency: the app's embedder (async: it never blocks)."""
    return app_embedder(request.app)


AppEmbedder = Annotated[Embedder | None, Depends(get_embedder)]


class QueryVectorCache:
    """Query vectors by (model, text), least recently used dropped first; thread-safe.

    Embedding happens outside the lock: two threads asking for the same new text may
    both embed it (the same vector), which is cheaper than making every search wait for
    another's embedding."""

    def __init__(self, size: int = QUERY_CACHE_SIZE) -> None:
        self._size = size
        self._vectors: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def vector(self, embedder: Embedder, text: str) -> Vectors:
        key = (embedder.model_id, query_text(text))
        with self._lock:
            found = self._vectors.get(key)
            if found is not None:
                self._vectors.move_to_end(key)
                return found
        vector: npt.NDArray[np.float32] = embedder.embed_queries([key[1]])[0]
        with self._lock:
            self._vectors[key] = vector
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        return vector

    def __len__(self) -> int:
        return len(self._vectors)


QUERY_VECTORS = QueryVectorCache()


def query_vector(embedder: Embedder | None, text: str) -> Vectors | None:
    """The query encoding of a search-box text, or None (no embedder, empty text, or
    the embedder failed: the search then runs on words alone)."""
    if embedder is None or not query_text(text):
        return None
    try:
        return QUERY_VECTORS.vector(embedder, text)
    except EmbeddingError as error:
        logger.warning("query not embedded, searching by keywords only: %s", error)
        return None


def passage_hash(embedder: Embedder, catalogue: Catalogue, document: Mapping[str, Any]) -> str:
    return content_hash(embedder.model_id, "passage", passage_text_of_document(catalogue, document))


def stored_passage_vector(
    session: Session,
    embedder: Embedder | None,
    catalogue: Catalogue,
    document: Mapping[str, Any],
) -> Vectors | None:
    """The listing's stored passage vector (None: no embedder, or not embedded yet)."""
    if embedder is None:
        return None
    digest = passage_hash(embedder, catalogue, document)
    return cached_vectors(session, [digest]).get(digest)


def stored_vectors_reader(
    session: Session, embedder: Embedder, catalogue: Catalogue
) -> Callable[[Sequence[Mapping[str, Any]]], list[Vectors | None]]:
    """For `search.matching.SemanticSide`: the stored vectors of candidate documents
    of `catalogue`, one look-up for all of them."""

    def read(documents: Sequence[Mapping[str, Any]]) -> list[Vectors | None]:
        hashes = [passage_hash(embedder, catalogue, document) for document in documents]
        found = cached_vectors(session, hashes)
        return [found.get(digest) for digest in hashes]

    return read
