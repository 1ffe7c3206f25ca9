"""The query vectors of free-text searches: embedded once per text and process."""

from __future__ import annotations

import numpy as np

from market.discovery.semantic import QueryVectorCache, query_vector
from tests.support.semantic import CountingEmbedder, e5


def test_a_repeated_query_is_embedded_once_and_the_cache_is_bounded() -> None:
    embedder = CountingEmbedder(e5())
    cache = QueryVectorCache(size=2)
    first = cache.vector(embedder, "锂电池热失控")
    again = cache.vector(embedder, "  锂电池热失控 ")  # the same query text once folded
    assert embedder.calls == 1 and np.array_equal(first, again)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    cache.vector(embedder, "钕铁硼")
    cache.vector(embedder, "晶界扩散")
    assert len(cache) == 2 and embedder.calls == 3
    cache.vector(embedder, "锂电池热失控")  # dropped as least recently used
    assert embedder.calls == 4


def test_no_embedder_or_no_text_means_no_vector() -> None:
    assert query_vector(None, "钕铁硼") is None
    assert query_vector(CountingEmbedder(e5()), "   ") is None
