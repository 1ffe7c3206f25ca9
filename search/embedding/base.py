"""The embedder interface: texts in, unit vectors out.

An embedder turns texts into L2-normalised float32 vectors, one row per text, so that
a dot product is the cosine similarity. Models of the e5 family encode what a user
asks and what is indexed differently ("query: ..." against "passage: ..."), so the
interface has one method for each; a model without the distinction answers both the
same way. `model_id` names the vectors (two embedders with the same id must produce
interchangeable vectors): it is part of every content hash, so changing the model
never serves a stale vector.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Encoding = Literal["query", "passage"]
ENCODINGS: tuple[Encoding, ...] = ("query", "passage")


def as_encoding(name: str) -> Encoding:
    """The encoding a stored name stands for (ValueError for any other name)."""
    for encoding in ENCODINGS:
        if name == encoding:
            return encoding
    raise ValueError(f"unknown encoding {name!r}; expected 'query' or 'passage'")


class EmbeddingError(RuntimeError):
    """The embedder failed or answered something that is not a vector per text."""


class EmbeddingUnavailable(EmbeddingError):
    """The embedder cannot be reached (server down, timeout, overloaded): retry later."""


@runtime_checkable
class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Names the vector space; part of every content hash."""
        ...

    @property
    def dimensions(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dimensions) unit vectors for search queries and demands-as-asked."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dimensions) unit vectors for what is indexed (listings)."""
        ...


def embed(embedder: Embedder, encoding: Encoding, texts: Sequence[str]) -> Vectors:
    """Dispatch on the encoding name (the vector store keys vectors by it)."""
    if encoding == "query":
        return embedder.embed_queries(texts)
    if encoding == "passage":
        return embedder.embed_passages(texts)
    raise ValueError(f"unknown encoding {encoding!r}; expected 'query' or 'passage'")


def batches(texts: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def unit_rows(matrix: npt.ArrayLike, expected_rows: int, dimensions: int) -> Vectors:
    """Check an embedder's answer and normalise it: the one gate every vector passes.

    A wrong shape, NaN/inf or an all-zero row would silently poison every cosine
    computed with it later, so they raise here, where the culprit is still known.
    """
    vectors = np.asarray(matrix, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape != (expected_rows, dimensions):
        raise EmbeddingError(
            f"expected {expected_rows} vectors of {dimensions} dimensions, "
            f"got an array of shape {vectors.shape}"
        )
    if not np.isfinite(vectors).all():
        raise EmbeddingError("the embedder returned a vector with NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if expected_rows and float(norms.min()) == 0.0:
        raise EmbeddingError("the embedder returned an all-zero vector")
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)
