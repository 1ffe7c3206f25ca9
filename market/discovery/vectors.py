"""The vector store: embedding vectors by content hash, embedded only when missing.

`vectors_for(session, embedder, texts)` answers one unit vector per text: it looks the
texts' hashes up in `embedding_vectors`, embeds only the texts it has never seen (in
batches), stores them, and returns them in the order asked. A listing edit that does
not touch the embedded text (status, price, expiry) therefore costs one lookup.

Embedding takes seconds per batch on one core. `vectors_for` runs inside the caller's
session, so its connection stays checked out meanwhile; a worker that must not hold a
connection while it waits for the model uses `vectors_for_engine`, which looks up in
one short session, embeds with no connection held, and stores in another.

The outbox worker reads the store only (`attach_stored_vectors`: one lookup per batch
of documents); what it lacks is embedded later, outside any indexing batch, by
`market.discovery.backfill`.

The shipped cache (market/data/csl_research_results.vectors.npz) holds the vectors of
the demo's 1,000 research records; `load_shipped_vectors` copies them into the store
without embedding anything, and `build_shipped_cache` regenerates the file
(`market embeddings build-cache`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from market.db import session_scope
from market.discovery.models import EmbeddingVector
from search.documents import VECTOR_KEY, Catalogue
from search.embedding import (
    Embedder,
    Encoding,
    VectorCacheFile,
    Vectors,
    batches,
    content_hash,
    embed,
    passage_text_of_document,
    read_cache_file,
    result_passage_text,
    write_cache_file,
)

EMBED_BATCH = 32
LOOKUP_CHUNK = 500  # hashes per IN list
SHIPPED_CACHE_NAME = "csl_research_results.vectors.npz"

Progress = Callable[[int], None]


def vectors_for(
    session: Session,
    embedder: Embedder,
    texts: Sequence[str],
    encoding: Encoding = "passage",
    *,
    batch_size: int = EMBED_BATCH,
    progress: Progress | None = None,
) -> list[Vectors]:
    """One unit vector per text, from the store or freshly embedded and stored."""
    return _through_store(
        embedder,
        texts,
        encoding,
        lookup=lambda hashes: cached_vectors(session, hashes),
        store=lambda fresh: store_vectors(session, embedder.model_id, fresh),
        batch_size=batch_size,
        progress=progress,
    )


def vectors_for_engine(
    engine: Engine,
    embedder: Embedder,
    texts: Sequence[str],
    encoding: Encoding = "passage",
    *,
    batch_size: int = EMBED_BATCH,
    progress: Progress | None = None,
) -> list[Vectors]:
    """`vectors_for` holding no database connection while the model works."""

    def lookup(hashes: list[str]) -> dict[str, Vectors]:
        with session_scope(engine) as session:
            return cached_vectors(session, hashes)

    def store(fresh: dict[str, Vectors]) -> None:
        with session_scope(engine) as session:
            store_vectors(session, embedder.model_id, fresh)

    return _through_store(
        embedder,
        texts,
        encoding,
        lookup=lookup,
        store=store,
        batch_size=batch_size,
        progress=progress,
    )


def _through_store(
    embedder: Embedder,
    texts: Sequence[str],
    encoding: Encoding,
    *,
    lookup: Callable[[list[str]], dict[str, Vectors]],
    store: Callable[[dict[str, Vectors]], object],
    batch_size: int,
    progress: Progress | None,
) -> list[Vectors]:
    hashes = [content_hash(embedder.model_id, encoding, text) for text in texts]
    found = lookup(hashes)
    for batch in batches(_missing(texts, hashes, found), batch_size):
        fresh = _embed_batch(embedder, encoding, batch)
        store(fresh)
        found.update(fresh)
        if progress:
            progress(len(batch))
    return [found[digest] for digest in hashes]


def passage_hash(model_id: str, catalogue: Catalogue, document: Mapping[str, object]) -> str:
    """The content hash of a search document's passage vector."""
    return content_hash(model_id, "passage", passage_text_of_document(catalogue, document))


def attach_stored_vectors(
    session: Session,
    model_id: str | None,
    catalogue: Catalogue,
    documents: Sequence[MutableMapping[str, Any]],
) -> list[int]:
    """Give each search document its stored passage vector, or None when the store has
    none yet (or no embedder is configured: `model_id` None); returns the listing ids
    left without one. Looks up, never embeds: the caller may hold its connection."""
    if model_id is None:
        for document in documents:
            document[VECTOR_KEY] = None
        return []
    hashes = [passage_hash(model_id, catalogue, document) for document in documents]
    found = cached_vectors(session, hashes)
    missing: list[int] = []
    for document, digest in zip(documents, hashes, strict=True):
        vector = found.get(digest)
        # tolist, not `search.documents.with_vector`: stored vectors passed `unit_rows`
        # when embedded, and checking 384 floats per document again in Python would
        # cost a 2,000-row batch ~0.1 s.
        document[VECTOR_KEY] = None if vector is None else vector.tolist()
        if vector is None:
            missing.append(int(document["listing_id"]))
    return missing


def cached_vectors(session: Session, hashes: Iterable[str]) -> dict[str, Vectors]:
    """The stored vectors among these hashes (absent ones are simply not in the dict)."""
    wanted = list(dict.fromkeys(hashes))
    found: dict[str, Vectors] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        digest_column = col(EmbeddingVector.content_hash)
        rows = session.execute(
            select(digest_column, col(EmbeddingVector.vector)).where(digest_column.in_(chunk))
        )
        for digest, blob in rows:
            found[digest] = np.frombuffer(blob, dtype="<f4")
    return found


def store_vectors(session: Session, model_id: str, vectors: Mapping[str, Vectors]) -> int:
    """Insert vectors by hash; a hash already stored (another worker, a rerun) is left
    as it is, in one statement and without a savepoint. Returns the rows sent."""
    if not vectors:
        return 0
    rows = [  # in hash order, for the reason given in `_missing`
        {
            "content_hash": digest,
            "model": model_id,
            "dimensions": int(vector.shape[0]),
            "vector": np.asarray(vector, dtype="<f4").tobytes(),
        }
        for digest, vector in sorted(vectors.items(), key=lambda item: item[0])
    ]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(EmbeddingVector).on_conflict_do_nothing(
        index_elements=["content_hash"]
    )
    session.execute(statement, rows)
    return len(rows)


def _missing(
    texts: Sequence[str], hashes: Sequence[str], found: Mapping[str, Vectors]
) -> list[str]:
    """Texts without a stored vector, each once, in hash order.

    Hash order because PostgreSQL locks each inserted key until the transaction ends:
    two workers inserting overlapping texts in opposite orders within one transaction
    (`vectors_for` stores batch after batch) could deadlock; in one global order they
    queue instead.
    """
    unique = {digest: text for digest, text in zip(hashes, texts, strict=True)}
    return [unique[digest] for digest in sorted(unique) if digest not in found]


def _embed_batch(
    embedder: Embedder, encoding: Encoding, texts: Sequence[str]
) -> dict[str, Vectors]:
    matrix = embed(embedder, encoding, texts)
    return {
        content_hash(embedder.model_id, encoding, text): row
        for text, row in zip(texts, matrix, strict=True)
    }


# --- the shipped cache of the demo's research records -------------------------------


def shipped_cache_path() -> Path:
    return Path(str(resources.files("market.data").joinpath(SHIPPED_CACHE_NAME)))


def shipped_record_texts() -> list[str]:
    """The passage texts of the demo's research results, built from the records as
    `market.demo` turns them into listings (same title cut, same keyword cleaning)."""
    from market import demo

    return [
        result_passage_text(
            record["title"][:200],
            demo._demo_keywords(record["keywords"]),
            record["abstract"][:5000],
        )
        for record in demo.research_records()
    ]


def build_shipped_cache(
    embedder: Embedder, path: Path | None = None, progress: Progress | None = None
) -> VectorCacheFile:
    """Embed every shipped record (minutes of one core) and write the cache file."""
    texts = list(dict.fromkeys(shipped_record_texts()))
    parts = []
    for batch in batches(texts, EMBED_BATCH):
        parts.append(embedder.embed_passages(batch))
        if progress:
            progress(len(batch))
    cache = VectorCacheFile(
        model_id=embedder.model_id,
        dimensions=embedder.dimensions,
        encoding="passage",
        hashes=[content_hash(embedder.model_id, "passage", text) for text in texts],
        vectors=np.concatenate(parts) if parts else np.empty((0, embedder.dimensions), "f4"),
    )
    write_cache_file(path or shipped_cache_path(), cache)
    return cache


def load_shipped_vectors(session: Session, model_id: str, path: Path | None = None) -> int:
    """Copy the shipped vectors of `model_id` into the store; 0 if the file holds
    another model's (the demo then embeds in the background as usual)."""
    source = path or shipped_cache_path()
    if not source.exists():
        return 0
    cache = read_cache_file(source)
    if cache.model_id != model_id:
        return 0
    return store_vectors(session, cache.model_id, cache.by_hash())
