"""Embedders as tests use them: the real model, with a count of what it was asked."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from search.embedding import Embedder, Vectors


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed (safe across threads)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.embedded: list[str] = []
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self._lock = threading.Lock()

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self._count(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        self._count(texts)
        return self.inner.embed_passages(texts)

    def _count(self, texts: Sequence[str]) -> None:
        with self._lock:
            self.embedded.extend(texts)
