"""The embedded engine: SQLite FTS5 with jieba segmentation done in Python.

It lets the API search with no server at all (a newcomer's first run, small
deployments). It follows the Meilisearch engine's contract; where it cannot, the
difference is written down in docs/SEARCH.md ("Engines and how they differ").

Per catalogue, three tables:
- `<catalogue>_docs`: one row per document, the JSON document plus one column per
  scalar filterable/sortable attribute;
- `<catalogue>_values`: (document, attribute, value) rows for list attributes
  (transfer modes, IPC prefixes...), for filters and facets;
- `<catalogue>_fts`: an FTS5 table of space-joined jieba words, one column per
  searchable attribute, weighted like Meilisearch's attribute order, plus one
  `literal` column with the title and keywords cut into pairs of characters;
- `<catalogue>_vectors`: (document id, listing id, generation, float32 BLOB) for
  documents that have a vector, and `<catalogue>_vector_removals` (document id,
  generation) for vectors removed. Semantic queries rank a numpy matrix of them that
  the process keeps per catalogue (`_VectorMatrix`). Every write that really changes a
  vector stamps it with the next value of `search_vector_generation`; a search reads
  that value and applies only the rows stamped since its matrix's generation, whichever
  process (API, outbox worker) wrote them.

The literal column is there because jieba cuts the same characters differently in
different surroundings: 含药血清 in a query is 含药 / 血清, in 药含药血清 it is 药含 / 药 /
血清, so a query word that occurs literally in a title could find nothing. Every Chinese
query word of two or more characters also matches as a phrase of its character pairs in
that column (with a low weight: a word found as a word ranks first).

Matching strategies follow Meilisearch's semantics: "all" needs every query word; "last"
needs the first word and ranks documents by how long a prefix of the query they contain;
"frequency" does the same over the words ordered rarest first. The last query word also
matches as a prefix (石墨 finds 石墨烯).

Semantic and hybrid queries: see `_SemanticSearch`.

One connection guarded by a lock: SQLite serialises writes anyway, and the lock makes
the engine safe to share between the API's threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from search.backend import (
    Condition,
    Document,
    PendingWrite,
    ProgressCallback,
    SearchError,
    SearchHit,
    SearchPage,
    SearchQuery,
    SearchUnavailable,
    SortKey,
    Visibility,
    check_vector_dimensions,
    default_sort,
    filter_conditions,
    validate_query,
)
from search.documents import (
    CATALOGUE_SCHEMAS,
    CATALOGUES,
    DEFAULT_VECTOR_DIMENSIONS,
    PUBLISHED,
    VALID_DOCUMENT_ID,
    VECTOR_KEY,
    Catalogue,
    CatalogueSchema,
    VectorLike,
    document_vector,
)
from search.highlight import (
    CROP_MARKER,
    MATCH_END,
    MATCH_START,
    render_marked,
    render_marked_list,
)
from search.text import (
    ENGINE_MAX_QUERY_WORDS,
    characters_of_run,
    load_dictionary,
    segment_for_index,
    segment_query,
)

logger = logging.getLogger(__name__)

# Bumped whenever the table layout changes; an older file is emptied and must be rebuilt.
LAYOUT_VERSION = 4
BATCH_SIZE = 500
CROP_LENGTH_CHARACTERS = 60
CROP_CONTEXT_BEFORE_MATCH = 15
# Attribute weights for bm25, heaviest first, like Meilisearch's attribute ranking rule.
ATTRIBUTE_WEIGHTS = (10.0, 8.0, 3.0, 2.0, 1.0, 1.0)
LITERAL_COLUMN = "literal"
# The short texts only: over long texts the phrase queries cost 3x per search (measured
# on the 1,000 CSL records), and a listing is found by its title and keywords.
LITERAL_ATTRIBUTES = ("title", "keywords")
LITERAL_WEIGHT = 0.5
_CHINESE_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
# Between two runs of Chinese text, so that a phrase cannot match across a seam.
_RUN_SEPARATOR = "0"

# SQL in this module interpolates only identifiers taken from CATALOGUE_SCHEMAS and the
# table names built below; every value is a bound parameter. Hence the S608 waivers.


@dataclass(frozen=True)
class _Tables:
    docs: str
    values: str
    fts: str
    vectors: str
    vector_removals: str

    @classmethod
    def named(cls, base: str) -> _Tables:
        return cls(
            docs=f"{base}_docs",
            values=f"{base}_values",
            fts=f"{base}_fts",
            vectors=f"{base}_vectors",
            vector_removals=f"{base}_vector_removals",
        )

    def all(self) -> tuple[str, ...]:
        return (self.docs, self.values, self.fts, self.vectors, self.vector_removals)


def _live_tables(catalogue: Catalogue) -> _Tables:
    return _Tables.named(catalogue)


def _rebuild_tables(catalogue: Catalogue) -> _Tables:
    return _Tables.named(f"{catalogue}__rebuild")


def _scalar_columns(schema: CatalogueSchema) -> list[str]:
    attributes = dict.fromkeys((*schema.filterable, *schema.sortable))
    return [name for name in attributes if name not in schema.list_attributes]


def _quote(identifier: str) -> str:
    return f'"{identifier}"'


@dataclass(frozen=True)
class _QueryWord:
    """One query word with its synonyms, as an FTS5 expression and as display strings."""

    word: str
    fts_expression: str
    surface_forms: tuple[str, ...]


@dataclass
class _Where:
    """An AND of SQL conditions on `d` (the docs table) with their parameters."""

    clauses: list[str]
    params: list[Any]

    def add(self, clause: str, params: Sequence[Any] = ()) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "1"


class LocalSearchEngine:
    """`SearchBackend` on an SQLite file (or `:memory:`) in this process."""

    def __init__(
        self, path: str | Path = ":memory:", *, vector_dimensions: int = DEFAULT_VECTOR_DIMENSIONS
    ) -> None:
        self._path = str(path)
        self._vector_dimensions = vector_dimensions
        self._matrices: dict[Catalogue, _VectorMatrix] = {}
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA busy_timeout = 5000")
        if self._path != ":memory:":
            self._connection.execute("PRAGMA journal_mode = WAL")

    # -- SearchBackend -------------------------------------------------------------

    def ensure_indexes(self) -> None:
        with self._transaction() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS search_layout (catalogue TEXT PRIMARY KEY,"
                " version INTEGER NOT NULL)"
            )
            # generation: of the last vector change; reset: of the last time every
            # vector was replaced at once (a rebuild), which no cached matrix survives.
            connection.execute(
                "CREATE TABLE IF NOT EXISTS search_vector_generation"
                " (catalogue TEXT PRIMARY KEY, generation INTEGER NOT NULL,"
                " reset INTEGER NOT NULL)"
            )
            for catalogue in CATALOGUES:
                self._ensure_catalogue(connection, catalogue)

    def upsert(self, catalogue: Catalogue, documents: Iterable[Document]) -> None:
        schema = CATALOGUE_SCHEMAS[catalogue]
        for batch in _batches(documents, BATCH_SIZE):
            with self._transaction() as connection:
                live = _live_tables(catalogue)
                generation = _VectorGeneration.read(connection, catalogue).next
                if _write_documents(
                    connection, live, schema, batch, self._vector_dimensions, generation
                ):
                    _VectorGeneration.record(connection, catalogue, generation)

    def delete(self, catalogue: Catalogue, ids: Iterable[str]) -> None:
        for batch in _batches(ids, BATCH_SIZE):
            with self._transaction() as connection:
                live = _live_tables(catalogue)
                generation = _VectorGeneration.read(connection, catalogue).next
                _delete_documents(connection, live, batch)
                if _delete_vectors(connection, live, batch, generation):
                    _VectorGeneration.record(connection, catalogue, generation)

    def search(self, catalogue: Catalogue, query: SearchQuery) -> SearchPage:
        schema = self._validated(catalogue, query)
        with self._locked() as connection:
            return self._run(connection, catalogue, schema, query)

    async def search_async(self, catalogue: Catalogue, query: SearchQuery) -> SearchPage:
        # SQLite work is CPU and file I/O: it runs in a worker thread, off the event loop.
        return await asyncio.to_thread(self.search, catalogue, query)

    async def open_async(self) -> None:
        """Nothing to open: the engine lives in this process."""

    async def close_async(self) -> None:
        """Nothing to close."""

    def search_many(self, catalogue: Catalogue, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        """The queries one after another (there is no round trip to save), all validated
        before any runs, under one hold of the lock."""
        schemas = [self._validated(catalogue, query) for query in queries]
        with self._locked() as connection:
            return [
                self._run(connection, catalogue, schema, query)
                for schema, query in zip(schemas, queries, strict=True)
            ]

    def count(self, catalogue: Catalogue) -> int:
        docs = _live_tables(catalogue).docs
        with self._locked() as connection:
            row = _execute(connection, f"SELECT COUNT(*) FROM {_quote(docs)}").fetchone()  # noqa: S608
        return int(row[0])

    def rebuild(
        self,
        catalogue: Catalogue,
        documents: Iterable[Document],
        progress: ProgressCallback | None = None,
    ) -> int:
        schema = CATALOGUE_SCHEMAS[catalogue]
        fresh = _rebuild_tables(catalogue)
        self.ensure_indexes()
        with self._transaction() as connection:
            _drop_tables(connection, fresh)
            _create_tables(connection, fresh, schema)
        indexed = 0
        # One transaction per batch, so searches on the live tables run in between.
        for batch in _batches(documents, BATCH_SIZE):
            with self._transaction() as connection:
                # Generation 0: the swap resets every cached matrix anyway.
                _write_documents(connection, fresh, schema, batch, self._vector_dimensions, 0)
            indexed += len(batch)
            if progress is not None:
                progress(indexed)
        with self._transaction() as connection:
            live = _live_tables(catalogue)
            _drop_tables(connection, live)
            for fresh_name, live_name in zip(fresh.all(), live.all(), strict=True):
                connection.execute(
                    f"ALTER TABLE {_quote(fresh_name)} RENAME TO {_quote(live_name)}"
                )
            _record_layout(connection, catalogue)
            _VectorGeneration.reset_all(connection, catalogue)
        return indexed

    def health(self) -> None:
        with self._locked() as connection:
            _execute(connection, "SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- helpers -------------------------------------------------------------------

    @property
    def vector_dimensions(self) -> int:
        return self._vector_dimensions

    def _validated(self, catalogue: Catalogue, query: SearchQuery) -> CatalogueSchema:
        return validate_query(catalogue, query, vector_dimensions=self._vector_dimensions)

    def _run(
        self,
        connection: sqlite3.Connection,
        catalogue: Catalogue,
        schema: CatalogueSchema,
        query: SearchQuery,
    ) -> SearchPage:
        # A keyword query does no vector work at all: not even the generation lookup.
        if not query.is_semantic:
            return _Search(connection, catalogue, schema, query).run()
        matrix = self._vector_matrix(connection, catalogue)
        return _SemanticSearch(connection, catalogue, schema, query, matrix).run()

    def _vector_matrix(self, connection: sqlite3.Connection, catalogue: Catalogue) -> _VectorMatrix:
        """The catalogue's vectors, brought up to date with the writes made since.

        Runs under the engine's lock, like the search that uses the matrix, so the
        matrix is never changed while a search reads it.
        """
        state = _VectorGeneration.read(connection, catalogue)
        cached = self._matrices.get(catalogue)
        if cached is None or not cached.can_catch_up(state):
            cached = _VectorMatrix(self._vector_dimensions)
            self._matrices[catalogue] = cached
        if cached.generation != state.generation:
            cached.catch_up(connection, _live_tables(catalogue), state.generation)
        return cached

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._connection is None:
                raise SearchUnavailable(f"local search index {self._path} is closed")
            yield self._connection

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._locked() as connection:
            _execute(connection, "BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            _execute(connection, "COMMIT")

    def _ensure_catalogue(self, connection: sqlite3.Connection, catalogue: Catalogue) -> None:
        row = connection.execute(
            "SELECT version FROM search_layout WHERE catalogue = ?", (catalogue,)
        ).fetchone()
        live = _live_tables(catalogue)
        if row is not None and row[0] == LAYOUT_VERSION:
            return
        if row is not None:
            logger.warning(
                "local search index %s: %s has layout %s, expected %s; emptied it,"
                " run a reindex to fill it again",
                self._path,
                catalogue,
                row[0],
                LAYOUT_VERSION,
            )
        _drop_tables(connection, live)
        _create_tables(connection, live, CATALOGUE_SCHEMAS[catalogue])
        _record_layout(connection, catalogue)
        _VectorGeneration.reset_all(connection, catalogue)

    # -- pipelined writes (search.backend.AsyncWrites) ------------------------------
    # Writes here are synchronous: they are applied when submitted, `wait` has nothing
    # left to wait for.

    def upsert_async(self, catalogue: Catalogue, documents: Iterable[Document]) -> PendingWrite:
        self.upsert(catalogue, documents)
        return PendingWrite(catalogue)

    def delete_async(self, catalogue: Catalogue, ids: Iterable[str]) -> PendingWrite:
        self.delete(catalogue, ids)
        return PendingWrite(catalogue)

    def wait(self, writes: Iterable[PendingWrite]) -> None:
        return None


def _execute(
    connection: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> sqlite3.Cursor:
    try:
        return connection.execute(sql, params)
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            raise SearchError(f"search index missing ({error}); call ensure_indexes()") from error
        raise SearchError(f"local search failed: {error}") from error
    except sqlite3.ProgrammingError as error:
        raise SearchUnavailable(f"local search index unusable: {error}") from error


def _record_layout(connection: sqlite3.Connection, catalogue: Catalogue) -> None:
    connection.execute(
        "INSERT INTO search_layout (catalogue, version) VALUES (?, ?)"
        " ON CONFLICT (catalogue) DO UPDATE SET version = excluded.version",
        (catalogue, LAYOUT_VERSION),
    )


def _create_tables(
    connection: sqlite3.Connection, tables: _Tables, schema: CatalogueSchema
) -> None:
    # Index names must stay unique across renames, hence the random suffix.
    suffix = uuid.uuid4().hex[:8]
    scalar_columns = ", ".join(_quote(name) for name in _scalar_columns(schema))
    connection.execute(
        f"CREATE TABLE {_quote(tables.docs)} (doc_key INTEGER PRIMARY KEY, id TEXT NOT NULL,"
        f" document TEXT NOT NULL, {scalar_columns})"
    )
    connection.execute(
        f"CREATE UNIQUE INDEX {_quote('ix_' + suffix + '_id')} ON {_quote(tables.docs)} (id)"
    )
    connection.execute(
        f"CREATE TABLE {_quote(tables.values)} (doc_key INTEGER NOT NULL,"
        " attribute TEXT NOT NULL, value TEXT NOT NULL)"
    )
    connection.execute(
        f"CREATE INDEX {_quote('ix_' + suffix + '_lookup')} ON {_quote(tables.values)}"
        " (attribute, value, doc_key)"
    )
    connection.execute(
        f"CREATE INDEX {_quote('ix_' + suffix + '_doc')} ON {_quote(tables.values)} (doc_key)"
    )
    searchable = ", ".join(_quote(name) for name in (*schema.searchable, LITERAL_COLUMN))
    connection.execute(
        f"CREATE VIRTUAL TABLE {_quote(tables.fts)} USING fts5({searchable},"
        " tokenize = 'unicode61 remove_diacritics 2')"
    )
    # Keyed by document id, not doc_key: a document rewritten with the same vector (a
    # status change) keeps its row, and the cached matrix stays valid.
    connection.execute(
        f"CREATE TABLE {_quote(tables.vectors)} (id TEXT PRIMARY KEY,"
        " listing_id INTEGER NOT NULL, generation INTEGER NOT NULL, vector BLOB NOT NULL)"
    )
    connection.execute(
        f"CREATE INDEX {_quote('ix_' + suffix + '_vector_generation')}"
        f" ON {_quote(tables.vectors)} (generation)"
    )
    connection.execute(
        f"CREATE TABLE {_quote(tables.vector_removals)} (id TEXT PRIMARY KEY,"
        " generation INTEGER NOT NULL)"
    )


def _drop_tables(connection: sqlite3.Connection, tables: _Tables) -> None:
    for name in tables.all():
        connection.execute(f"DROP TABLE IF EXISTS {_quote(name)}")


def _delete_documents(connection: sqlite3.Connection, tables: _Tables, ids: Sequence[str]) -> None:
    placeholders = ", ".join("?" for _ in ids)
    keys = [
        row[0]
        for row in _execute(
            connection,
            f"SELECT doc_key FROM {_quote(tables.docs)} WHERE id IN ({placeholders})",  # noqa: S608
            list(ids),
        )
    ]
    for table in (tables.docs, tables.values):
        connection.executemany(
            f"DELETE FROM {_quote(table)} WHERE doc_key = ?",  # noqa: S608
            [(key,) for key in keys],
        )
    connection.executemany(
        f"DELETE FROM {_quote(tables.fts)} WHERE rowid = ?",  # noqa: S608
        [(key,) for key in keys],
    )


def _write_documents(
    connection: sqlite3.Connection,
    tables: _Tables,
    schema: CatalogueSchema,
    documents: Sequence[Document],
    vector_dimensions: int,
    generation: int,
) -> bool:
    """Write the documents, stamping changed vectors with `generation`; True when a
    vector was added, changed or removed."""
    # Later duplicates win, as when Meilisearch receives the same id twice in one batch.
    latest = {str(document["id"]): document for document in documents}
    invalid_ids = [id_ for id_ in latest if not VALID_DOCUMENT_ID.match(id_)]
    if invalid_ids:
        raise SearchError(f"invalid document ids {invalid_ids[:5]}: only [A-Za-z0-9_-] allowed")
    vectors = {
        document_id: _stored_vector(document, vector_dimensions)
        for document_id, document in latest.items()
    }
    _delete_documents(connection, tables, list(latest))
    scalar_columns = _scalar_columns(schema)
    column_list = ", ".join(_quote(name) for name in ("id", "document", *scalar_columns))
    placeholders = ", ".join("?" for _ in range(2 + len(scalar_columns)))
    searchable_list = ", ".join(_quote(name) for name in (*schema.searchable, LITERAL_COLUMN))
    fts_placeholders = ", ".join("?" for _ in range(2 + len(schema.searchable)))
    for document_id, document in latest.items():
        # A hit never carries the vector; it lives in the vectors table only.
        stored = {key: value for key, value in document.items() if key != VECTOR_KEY}
        cursor = connection.execute(
            f"INSERT INTO {_quote(tables.docs)} ({column_list}) VALUES ({placeholders})",  # noqa: S608
            [
                document_id,
                json.dumps(stored, ensure_ascii=False),
                *(_column_value(document.get(name)) for name in scalar_columns),
            ],
        )
        doc_key = cursor.lastrowid
        connection.executemany(
            f"INSERT INTO {_quote(tables.values)} (doc_key, attribute, value) VALUES (?, ?, ?)",  # noqa: S608
            [
                (doc_key, attribute, str(value))
                for attribute in schema.list_attributes
                for value in document.get(attribute) or []
            ],
        )
        connection.execute(
            f"INSERT INTO {_quote(tables.fts)} (rowid, {searchable_list})"  # noqa: S608
            f" VALUES ({fts_placeholders})",
            [
                doc_key,
                *(_indexed_words(document.get(name)) for name in schema.searchable),
                _literal_bigrams([document.get(name) for name in LITERAL_ATTRIBUTES]),
            ],
        )
    return _write_vectors(connection, tables, latest, vectors, generation)


def _stored_vector(document: Document, vector_dimensions: int) -> bytes | None:
    """The document's vector as the float32 bytes stored, checked against the engine."""
    vector = document_vector(document)
    if vector is None:
        return None
    check_vector_dimensions(
        vector, vector_dimensions, f"document {document.get('id')}'s vector", error=SearchError
    )
    return np.asarray(vector, dtype=np.float32).tobytes()


def _write_vectors(
    connection: sqlite3.Connection,
    tables: _Tables,
    documents: Mapping[str, Document],
    vectors: Mapping[str, bytes | None],
    generation: int,
) -> bool:
    """Store or remove each document's vector; True when any row really changed.

    An unchanged vector (a status or price change) writes nothing, so cached matrices
    have nothing to catch up on after the outbox's many non-text updates.
    """
    table = _quote(tables.vectors)
    removed = [document_id for document_id, blob in vectors.items() if blob is None]
    changed = _delete_vectors(connection, tables, removed, generation)
    for document_id, blob in vectors.items():
        if blob is None:
            continue
        cursor = connection.execute(
            f"INSERT INTO {table} (id, listing_id, generation, vector)"  # noqa: S608
            " VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET vector = excluded.vector,"
            " listing_id = excluded.listing_id, generation = excluded.generation"
            " WHERE vector IS NOT excluded.vector OR listing_id IS NOT excluded.listing_id",
            [document_id, int(documents[document_id]["listing_id"]), generation, blob],
        )
        changed = changed or cursor.rowcount > 0
    return changed


def _delete_vectors(
    connection: sqlite3.Connection, tables: _Tables, ids: Sequence[str], generation: int
) -> bool:
    """Remove these documents' vectors, noting the removal; True when there was one."""
    if not ids:
        return False
    cursor = connection.execute(
        f"DELETE FROM {_quote(tables.vectors)} WHERE id IN (SELECT value FROM json_each(?))"  # noqa: S608
        " RETURNING id",
        [json.dumps(list(ids))],
    )
    removed = [(row[0], generation) for row in cursor.fetchall()]
    connection.executemany(
        f"INSERT INTO {_quote(tables.vector_removals)} (id, generation) VALUES (?, ?)"  # noqa: S608
        " ON CONFLICT (id) DO UPDATE SET generation = excluded.generation",
        removed,
    )
    return bool(removed)


@dataclass(frozen=True)
class _VectorGeneration:
    """A catalogue's row of `search_vector_generation`."""

    generation: int
    reset: int

    @property
    def next(self) -> int:
        """The stamp of the next change: writes are serialised (BEGIN IMMEDIATE), so the
        transaction that reads it is the only one to use it."""
        return self.generation + 1

    @classmethod
    def read(cls, connection: sqlite3.Connection, catalogue: Catalogue) -> _VectorGeneration:
        row = _execute(
            connection,
            "SELECT generation, reset FROM search_vector_generation WHERE catalogue = ?",
            [catalogue],
        ).fetchone()
        return cls(int(row[0]), int(row[1])) if row is not None else cls(0, 0)

    @staticmethod
    def record(connection: sqlite3.Connection, catalogue: Catalogue, generation: int) -> None:
        connection.execute(
            "INSERT INTO search_vector_generation (catalogue, generation, reset)"
            " VALUES (?, ?, 0) ON CONFLICT (catalogue) DO UPDATE SET generation = ?",
            [catalogue, generation, generation],
        )

    @classmethod
    def reset_all(cls, connection: sqlite3.Connection, catalogue: Catalogue) -> None:
        """Every vector was replaced: cached matrices must be rebuilt from scratch."""
        generation = cls.read(connection, catalogue).next
        connection.execute(
            "INSERT INTO search_vector_generation (catalogue, generation, reset)"
            " VALUES (?, ?, ?) ON CONFLICT (catalogue) DO UPDATE SET generation = ?, reset = ?",
            [catalogue, generation, generation, generation, generation],
        )


def _column_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _indexed_words(value: Any) -> str:
    if value is None:
        return ""
    texts = [str(item) for item in value] if isinstance(value, list) else [str(value)]
    return " ".join(word for text in texts for word in segment_for_index(text))


def _literal_bigrams(values: Sequence[Any]) -> str:
    """Every pair of neighbouring Chinese characters of the texts, space-separated.

    Pairs, not single characters: a two-character query word is then one token to look
    up, a longer one a phrase of rare tokens (single characters made every search 2-3x
    slower, measured on the 1,000 CSL records). Documents are folded (simplified) by
    their builders, as query words are.
    """
    texts: list[str] = []
    for value in values:
        if isinstance(value, list):
            texts.extend(str(item) for item in value)
        elif value is not None:
            texts.append(str(value))
    runs = (_bigrams(run) for run in _CHINESE_RUN.findall(" ".join(texts)))
    return f" {_RUN_SEPARATOR} ".join(" ".join(pairs) for pairs in runs if pairs)


def _bigrams(run: str) -> list[str]:
    return [run[index : index + 2] for index in range(len(run) - 1)]


def _literal_phrase(word: str) -> str | None:
    """The word as a phrase of the literal column, for words of 2+ Chinese characters."""
    if len(word) < 2 or not _CHINESE_RUN.fullmatch(word):
        return None
    return f"{LITERAL_COLUMN} : " + _fts_phrase(" ".join(_bigrams(word)))


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _fts_phrase(word: str, *, prefix: bool = False) -> str:
    quoted = '"' + word.replace('"', '""') + '"'
    return f"{quoted}*" if prefix else quoted


def _query_words(text: str) -> list[_QueryWord]:
    """The query's words (first 10, like Meilisearch) with their synonym alternatives."""
    dictionary = load_dictionary()
    words = segment_query(text)[:ENGINE_MAX_QUERY_WORDS]
    query_words = []
    for position, word in enumerate(words):
        is_last = position == len(words) - 1
        alternatives = [_fts_phrase(word, prefix=is_last)]
        characters = characters_of_run(word)
        if characters is not None:  # indexed as characters side by side (高 镍)
            alternatives.append(_fts_phrase(" ".join(characters)))
        surface_forms = [word]
        for synonym in dictionary.synonyms_of(word):
            synonym_words = segment_query(synonym)
            if not synonym_words:
                continue
            alternatives.append(" AND ".join(_fts_phrase(part) for part in synonym_words))
            surface_forms.append(synonym)
        expression = " OR ".join(f"({alternative})" for alternative in alternatives)
        # Words match the word columns only: in the literal one, a last word 钢 (a prefix)
        # would match the pair 钢铁.
        expression = f"- {{{LITERAL_COLUMN}}} : ({expression})"
        literal = _literal_phrase(word)
        if literal is not None:
            expression = f"({expression}) OR ({literal})"
        query_words.append(_QueryWord(word, f"({expression})", tuple(surface_forms)))
    return query_words


@dataclass(frozen=True)
class _RankedHit:
    hit: SearchHit
    matched_words: int
    relevance: float  # SQLite's bm25: negative, lower is better; 0 without words


class _Search:
    """One search: builds the shared WHERE clause, then counts, pages and facets."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        catalogue: Catalogue,
        schema: CatalogueSchema,
        query: SearchQuery,
    ) -> None:
        self.connection = connection
        self.schema = schema
        self.query = query
        self.tables = _live_tables(catalogue)
        self.words = _query_words(query.text)
        self.is_text_search = bool(self.words)
        self.ordered_words = self._words_in_relaxation_order()
        self.matched_sql, self.matched_params = self._matched_word_count()
        self.where = self._where()

    def run(self) -> SearchPage:
        total = self._total()
        hits = self._hits()
        return SearchPage(
            hits=hits,
            total=total,
            total_is_exact=True,
            offset=self.query.offset,
            limit=self.query.limit,
            facets={name: self._facet_counts(name) for name in self.query.facets},
        )

    # -- matching ------------------------------------------------------------------

    def _words_in_relaxation_order(self) -> list[_QueryWord]:
        """Words in the order Meilisearch keeps them while relaxing the query.

        "last" drops words from the end, so it keeps the query order; "frequency" drops
        the most frequent words first, so it keeps the rarest first; a word found in no
        document at all is dropped outright (as Meilisearch does), or it would be the
        "rarest" and empty every result.
        """
        if self.query.matching_strategy != "frequency":
            return self.words
        frequencies = {word.word: self._document_frequency(word) for word in self.words}
        present = [word for word in self.words if frequencies[word.word] > 0]
        return sorted(present, key=lambda word: frequencies[word.word])

    def _document_frequency(self, word: _QueryWord) -> int:
        row = _execute(
            self.connection,
            f"SELECT COUNT(*) FROM {_quote(self.tables.fts)} WHERE {_quote(self.tables.fts)}"  # noqa: S608
            " MATCH ?",
            [word.fts_expression],
        ).fetchone()
        return int(row[0])

    def _contains(self, word: _QueryWord) -> tuple[str, list[Any]]:
        fts = _quote(self.tables.fts)
        return (
            f"d.doc_key IN (SELECT rowid FROM {fts} WHERE {fts} MATCH ?)",  # noqa: S608
            [word.fts_expression],
        )

    def _matched_word_count(self) -> tuple[str, list[Any]]:
        """SQL for how many words of the relaxation order a document keeps.

        For "all" every candidate keeps them all. Otherwise: the longest prefix of
        `ordered_words` the document contains, as nested (c1 * (1 + c2 * (1 + ...))).
        """
        if not self.is_text_search or self.query.matching_strategy == "all":
            return str(len(self.words)), []
        sql, params = "0", list[Any]()
        for word in reversed(self.ordered_words):
            contains_sql, contains_params = self._contains(word)
            sql = f"(({contains_sql}) * (1 + {sql}))"
            params = [*contains_params, *params]
        return sql, params

    def _where(self) -> _Where:
        where = _Where([], [])
        if self.is_text_search:
            required = (
                self.words if self.query.matching_strategy == "all" else self.ordered_words[:1]
            )
            if not required:
                where.add("0")
            for word in required:
                where.add(*self._contains(word))
            threshold = self.query.ranking_score_threshold
            if threshold is not None and self.query.matching_strategy != "all":
                minimum_words = threshold * len(self.words)
                where.add(f"{self.matched_sql} >= ?", [*self.matched_params, minimum_words])
        for condition in filter_conditions(self.query.filters):
            where.add(*self._condition_clause(condition))
        visibility = _visibility_clause(self.query.visibility)
        if visibility is not None:
            where.add(*visibility)
        return where

    def _condition_clause(self, condition: Condition) -> tuple[str, list[Any]]:
        placeholders = ", ".join("?" for _ in condition.values)
        if condition.attribute in self.schema.list_attributes:
            values = _quote(self.tables.values)
            return (
                f"EXISTS (SELECT 1 FROM {values} v WHERE v.doc_key = d.doc_key"  # noqa: S608
                f" AND v.attribute = ? AND v.value IN ({placeholders}))",
                [condition.attribute, *condition.values],
            )
        column = f"d.{_quote(condition.attribute)}"
        if condition.operator == "in":
            return f"{column} IN ({placeholders})", list(condition.values)
        return f"{column} {condition.operator} ?", [condition.values[0]]

    # -- results -------------------------------------------------------------------

    def _total(self) -> int:
        row = _execute(
            self.connection,
            f"SELECT COUNT(*) FROM {_quote(self.tables.docs)} d WHERE {self.where.sql()}",  # noqa: S608
            self.where.params,
        ).fetchone()
        return int(row[0])

    def _hits(self) -> list[SearchHit]:
        return [ranked.hit for ranked in self._ranked_hits()]

    def _ranked_hits(self) -> list[_RankedHit]:
        """The page's hits with what ranked them (words kept, bm25), for the fusion."""
        select, select_params = self._ranking_select()
        sql = (
            f"SELECT d.document, {select} FROM {_quote(self.tables.docs)} d"  # noqa: S608
            f"{self._relevance_join()} WHERE {self.where.sql()}"
            f" ORDER BY {self._order_by()} LIMIT ? OFFSET ?"
        )
        params = [
            *select_params,
            *self._relevance_join_params(),
            *self.where.params,
            self.query.limit,
            self.query.offset,
        ]
        rows = _execute(self.connection, sql, params).fetchall()
        return [
            _RankedHit(self._hit(json.loads(row[0]), row[1]), int(row[1]), float(row[2]))
            for row in rows
        ]

    def _ranking_select(self) -> tuple[str, list[Any]]:
        relevance = "r.relevance" if self.is_text_search else "0"
        return (
            f"{self.matched_sql} AS matched_words, {relevance} AS relevance",
            list(self.matched_params),
        )

    def _relevance_join(self) -> str:
        if not self.is_text_search:
            return ""
        fts = _quote(self.tables.fts)
        weights = ", ".join(
            str(weight)
            for weight in (*ATTRIBUTE_WEIGHTS[: len(self.schema.searchable)], LITERAL_WEIGHT)
        )
        return (
            f" JOIN (SELECT rowid AS doc_key, bm25({fts}, {weights}) AS relevance"  # noqa: S608
            f" FROM {fts} WHERE {fts} MATCH ?) r ON r.doc_key = d.doc_key"
        )

    def _relevance_join_params(self) -> list[Any]:
        if not self.is_text_search:
            return []
        return [" OR ".join(word.fts_expression for word in self.words)]

    def _order_by(self) -> str:
        # Text made only of symbols has no words to rank by: order it like a browse.
        # Without the vector too: a vector with no text would mean "rank by cosine".
        query = self.query if self.is_text_search else replace(self.query, text="", vector=None)
        sort = default_sort(query)
        if sort:
            return ", ".join(_sort_clause(key) for key in sort)
        # bm25 is lower-is-better in SQLite.
        return "matched_words DESC, r.relevance ASC, d.listing_id ASC"

    def _hit(self, document: dict[str, Any], matched_words: int) -> SearchHit:
        score = None
        if self.query.show_ranking_score:
            score = matched_words / len(self.words) if self.words else 1.0
        highlights = _highlights(self.schema, document, self.words) if self.query.highlight else {}
        return SearchHit(
            id=str(document["id"]), document=document, score=score, highlights=highlights
        )

    def _facet_counts(self, attribute: str) -> dict[str, int]:
        docs = _quote(self.tables.docs)
        if attribute in self.schema.list_attributes:
            sql = (
                f"SELECT v.value, COUNT(DISTINCT v.doc_key) FROM {_quote(self.tables.values)} v"  # noqa: S608
                f" JOIN {docs} d ON d.doc_key = v.doc_key"
                f" WHERE v.attribute = ? AND {self.where.sql()} GROUP BY v.value"
            )
            params = [attribute, *self.where.params]
        else:
            column = f"d.{_quote(attribute)}"
            sql = (
                f"SELECT {column}, COUNT(*) FROM {docs} d"  # noqa: S608
                f" WHERE {column} IS NOT NULL AND {self.where.sql()} GROUP BY {column}"
            )
            params = list(self.where.params)
        counts = {str(value): int(count) for value, count in _execute(self.connection, sql, params)}
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


# -- vectors: the semantic side ----------------------------------------------------------


def _keyword_scores(ranked: Sequence[_RankedHit], word_count: int) -> dict[str, float]:
    """Each keyword hit's relevance in 0..1, falling with the keyword order.

    Like Meilisearch's ranking score, the words rule comes first: a hit keeping k of the
    query's n words scores within ((k - 1) / n, k / n], so a hit with more words always
    outscores one with fewer. Inside that band bm25 places it, relative to the query's
    best bm25 (bm25 is unbounded and depends on the catalogue; its ratio to the best hit
    of the same query is not). Relative, not min-max: the last hit of a tight keyword
    page keeps most of its score instead of dropping to 0.
    """
    if not ranked:
        return {}
    best = min(item.relevance for item in ranked)
    scores: dict[str, float] = {}
    for item in ranked:
        share = item.relevance / best if best < 0 else 1.0
        scores[item.hit.id] = (item.matched_words - 1 + min(max(share, 0.0), 1.0)) / word_count
    return scores


def _semantic_score(cosine: float) -> float:
    """A cosine as a 0..1 score, the mapping Meilisearch uses, (1 + cos) / 2.

    Not min-max over the candidates: e5's cosines bunch between 0.8 and 0.9, and
    stretching that band to 0..1 would let a small difference in meaning outweigh a
    large one in words; kept absolute, the vector side reorders close keyword hits and
    brings in what the words missed, as on Meilisearch at the same ratio.
    """
    return (1.0 + cosine) / 2.0


class _VectorMatrix:
    """One catalogue's vectors as unit rows, kept up to date by applying changes.

    Rows live in slots: a changed vector overwrites its slot, a new one takes a fresh
    slot at the end (capacity grows by doubling), a removed one leaves a dead slot that
    ranks nowhere. Too many dead slots and the matrix is built afresh. Equal cosines
    are broken by listing id (`_top_rows`), not by slot, so the order is deterministic.
    """

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.generation = -1  # nothing applied yet: catching up loads everything
        self.size = 0  # slots in use, dead or alive
        self.rows = np.zeros((0, dimensions), dtype=np.float32)
        self.listing_ids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}

    def can_catch_up(self, state: _VectorGeneration) -> bool:
        """False after a reset (a rebuild), or with more dead slots than live ones."""
        if self.generation < state.reset or self.generation > state.generation:
            return False
        return self.size - len(self.row_of) <= max(1_000, len(self.row_of))

    def catch_up(self, connection: sqlite3.Connection, tables: _Tables, generation: int) -> None:
        """Apply every change stamped after this matrix's generation, up to `generation`
        (read before the changes: a change committed meanwhile is applied again next
        time, harmlessly)."""
        since = self.generation
        if since >= 0:
            removed = _execute(
                connection,
                f"SELECT id FROM {_quote(tables.vector_removals)} WHERE generation > ?",  # noqa: S608
                [since],
            )
            for (id_,) in removed:
                self._remove(id_)
        # Removals first: a vector removed then stored again is in the vectors table.
        records = _execute(
            connection,
            f"SELECT id, listing_id, vector FROM {_quote(tables.vectors)}"  # noqa: S608
            " WHERE generation > ? ORDER BY listing_id, id",
            [since],
        ).fetchall()
        self._put(records)
        self.generation = generation

    def cosines(self, vector: VectorLike) -> npt.NDArray[np.float32]:
        """Cosine of every slot to `vector`; dead slots get -inf.

        einsum, not `@`: a matrix-vector product through a multi-threaded BLAS was 5x
        slower on a busy two-core machine (threads fighting for the cores), einsum stays
        on the calling thread.
        """
        query = _unit(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        scores: npt.NDArray[np.float32] = np.einsum("ij,j->i", self.rows[: self.size], query)
        scores[~self.alive[: self.size]] = -np.inf
        return scores

    def _remove(self, id_: str) -> None:
        row = self.row_of.pop(id_, None)
        if row is not None:
            self.alive[row] = False

    def _put(self, records: list[Any]) -> None:
        row_bytes = 4 * self.dimensions
        if any(len(record[2]) != row_bytes for record in records):
            raise SearchError(
                f"stored vectors are not {self.dimensions}-dimensional: the engine's"
                " dimensions changed since they were written; reindex"
            )
        if not records:
            return
        vectors = np.frombuffer(b"".join(record[2] for record in records), dtype=np.float32)
        vectors = _unit(vectors.reshape(len(records), self.dimensions))
        fresh = [index for index, record in enumerate(records) if record[0] not in self.row_of]
        self._reserve(len(fresh))
        for index, record in enumerate(records):
            id_ = record[0]
            row = self.row_of.get(id_)
            if row is None:
                row = self.size
                self.size += 1
                self.ids.append(id_)
                self.row_of[id_] = row
            self.rows[row] = vectors[index]
            self.listing_ids[row] = int(record[1])
            self.alive[row] = True

    def _reserve(self, extra: int) -> None:
        needed = self.size + extra
        capacity = len(self.rows)
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity)
        rows = np.zeros((capacity, self.dimensions), dtype=np.float32)
        rows[: self.size] = self.rows[: self.size]
        listing_ids = np.zeros(capacity, dtype=np.int64)
        listing_ids[: self.size] = self.listing_ids[: self.size]
        alive = np.zeros(capacity, dtype=bool)
        alive[: self.size] = self.alive[: self.size]
        self.rows, self.listing_ids, self.alive = rows, listing_ids, alive


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to length 1 (zero rows stay zero), so a dot product is the cosine
    whatever the caller sent, as Meilisearch computes it."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: npt.NDArray[np.float32] = (rows / norms).astype(np.float32, copy=False)
    return unit


def _top_rows(
    scores: npt.NDArray[np.float32], listing_ids: npt.NDArray[np.int64], count: int
) -> npt.NDArray[np.intp]:
    """At least the `count` best rows (all rows tied with the last one too), best first,
    equal scores by listing id. Partitions first: a full sort of a large catalogue for
    one page would cost more than the cosines."""
    if count >= len(scores):
        candidates = np.arange(len(scores))
    else:
        cut = len(scores) - count
        kth_best = np.partition(scores, cut)[cut]
        candidates = np.flatnonzero(scores >= kth_best)
    order = np.lexsort((listing_ids[candidates], -scores[candidates]))
    return candidates[order]


class _SemanticSearch:
    """A query with a vector: the vector ranking, alone or fused with the keyword one.

    Both sides see the same filters and visibility. The vector side has no cut-off: it
    ranks every filtered document with a vector by cosine (documents without one come
    last, by listing id, when the vector ranks alone), so `total` and the facets count
    every filtered document, as Meilisearch's hybrid search does.

    Hybrid ranking combines the two sides' 0..1 scores as Meilisearch does: a document
    scores (1 - ratio) * keyword score + ratio * semantic score, 0 on a side that did not
    return it (`_keyword_scores`, `_semantic_score`). Scores, not ranks: reciprocal-rank
    fusion makes neighbouring keyword ranks almost equal, so a document second by words
    and first by meaning overtook the first by words at almost any ratio (paraphrase
    search suffered: docs/PERFORMANCE.md); with scores a strong keyword match
    keeps its lead. Like Meilisearch, each side contributes its best offset + limit
    documents; equal scores go by listing id.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        catalogue: Catalogue,
        schema: CatalogueSchema,
        query: SearchQuery,
        matrix: _VectorMatrix,
    ) -> None:
        assert query.vector is not None  # only semantic queries come here
        self.connection = connection
        self.schema = schema
        self.query = query
        self.tables = _live_tables(catalogue)
        self.matrix = matrix
        self.window = query.offset + query.limit
        self.cosines = matrix.cosines(query.vector)
        # The filters and visibility without the words: what the vector side may rank.
        self.candidates = _Search(connection, catalogue, schema, replace(query, text=""))
        keyword = _Search(
            connection,
            catalogue,
            schema,
            replace(
                query,
                offset=0,
                limit=self.window,
                facets=(),
                highlight=False,
                show_ranking_score=True,
            ),
        )
        # Text of symbols only has no words: the vector ranks alone.
        use_keywords = keyword.is_text_search and query.effective_semantic_ratio < 1
        self.keyword = keyword if use_keywords else None

    def run(self) -> SearchPage:
        ranked = self.keyword._ranked_hits() if self.keyword is not None else []
        keyword_hits = [item.hit for item in ranked]
        semantic_ids = self._semantic_ranking()
        if self.keyword is None:
            ranking = semantic_ids + self._without_vectors(self.window - len(semantic_ids))
        else:
            ranking = self._fused(ranked, semantic_ids)
        page_ids = ranking[self.query.offset : self.window]
        documents = {hit.id: hit.document for hit in keyword_hits}
        documents.update(self._documents([id_ for id_ in page_ids if id_ not in documents]))
        keyword_scores = {hit.id: hit.score for hit in keyword_hits}
        return SearchPage(
            hits=[self._hit(documents[id_], keyword_scores.get(id_)) for id_ in page_ids],
            total=self.candidates._total(),
            total_is_exact=True,
            offset=self.query.offset,
            limit=self.query.limit,
            facets={name: self.candidates._facet_counts(name) for name in self.query.facets},
        )

    def _semantic_ranking(self) -> list[str]:
        """Ids of the best `window` filtered documents by cosine, best first.

        The matrix holds every document; the filters live in SQL. Rows are checked in
        growing slices of the cosine order until enough pass, so a public search (most
        documents pass) costs one small lookup.
        """
        scores = self.cosines
        threshold = self.query.ranking_score_threshold
        if threshold is not None:
            # Meilisearch's semantic ranking score is (1 + cosine) / 2.
            scores = np.where(scores >= 2 * threshold - 1, scores, -np.inf).astype(np.float32)
        eligible = int(np.count_nonzero(np.isfinite(scores)))
        found: list[str] = []
        examined = 0
        wanted = self.window if not self.candidates.where.clauses else 2 * self.window
        while len(found) < self.window and examined < eligible:
            best = _top_rows(scores, self.matrix.listing_ids[: self.matrix.size], wanted)
            rows = best[examined:eligible]
            ids = [self.matrix.ids[row] for row in rows.tolist()]
            allowed = self._allowed(ids)
            found.extend(id_ for id_ in ids if id_ in allowed)
            examined += len(ids)
            wanted *= 4
        return found[: self.window]

    def _allowed(self, ids: list[str]) -> set[str]:
        where = self.candidates.where
        if not where.clauses:
            return set(ids)
        rows = _execute(
            self.connection,
            f"SELECT d.id FROM {_quote(self.tables.docs)} d"  # noqa: S608
            f" WHERE d.id IN (SELECT value FROM json_each(?)) AND {where.sql()}",
            [json.dumps(ids), *where.params],
        )
        return {row[0] for row in rows}

    def _without_vectors(self, count: int) -> list[str]:
        """Filtered documents with no vector, by listing id: the end of a vector ranking.

        None under a ranking-score threshold: their semantic score is 0, below any.
        """
        if count <= 0 or self.query.ranking_score_threshold:
            return []
        where = self.candidates.where
        rows = _execute(
            self.connection,
            f"SELECT d.id FROM {_quote(self.tables.docs)} d WHERE {where.sql()}"  # noqa: S608
            f" AND NOT EXISTS (SELECT 1 FROM {_quote(self.tables.vectors)} v WHERE v.id = d.id)"
            " ORDER BY d.listing_id LIMIT ?",
            [*where.params, count],
        )
        return [row[0] for row in rows]

    def _fused(self, ranked: list[_RankedHit], semantic_ids: list[str]) -> list[str]:
        assert self.keyword is not None  # fusion needs both sides
        ratio = self.query.effective_semantic_ratio
        words = _keyword_scores(ranked, len(self.keyword.words))
        fused = {id_: (1 - ratio) * score for id_, score in words.items()}
        listing_of = {item.hit.id: int(item.hit.document["listing_id"]) for item in ranked}
        for id_ in semantic_ids:
            row = self.matrix.row_of[id_]
            fused[id_] = fused.get(id_, 0.0) + ratio * _semantic_score(float(self.cosines[row]))
            listing_of[id_] = int(self.matrix.listing_ids[row])
        return sorted(fused, key=lambda id_: (-fused[id_], listing_of[id_]))

    def _documents(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        rows = _execute(
            self.connection,
            f"SELECT id, document FROM {_quote(self.tables.docs)}"  # noqa: S608
            " WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        )
        return {row[0]: json.loads(row[1]) for row in rows}

    def _hit(self, document: dict[str, Any], keyword_score: float | None) -> SearchHit:
        id_ = str(document["id"])
        row = self.matrix.row_of.get(id_)
        cosine = float(self.cosines[row]) if row is not None else None
        score = None
        if self.query.show_ranking_score:
            # The side that found it scores it, as in Meilisearch's hybrid answers.
            if keyword_score is not None:
                score = keyword_score
            else:
                score = _semantic_score(cosine) if cosine is not None else 0.0
        words = self.keyword.words if self.keyword is not None else []
        return SearchHit(
            id=id_,
            document=document,
            score=score,
            highlights=_highlights(self.schema, document, words) if self.query.highlight else {},
            semantic_score=cosine,
        )


def _visibility_clause(visibility: Visibility) -> tuple[str, list[Any]] | None:
    if visibility.unrestricted:
        return None
    if visibility.organization_id is None:
        return "d.status = ?", [PUBLISHED]
    return "(d.status = ? OR d.organization_id = ?)", [PUBLISHED, visibility.organization_id]


def _sort_clause(key: SortKey) -> str:
    # Meilisearch puts documents without a value last in both directions.
    direction = "DESC" if key.descending else "ASC"
    return f"d.{_quote(key.attribute)} {direction} NULLS LAST"


def _highlights(
    schema: CatalogueSchema, document: Mapping[str, Any], words: Sequence[_QueryWord]
) -> dict[str, str]:
    pattern = _match_pattern(words)
    highlights: dict[str, str] = {}
    for attribute in (*schema.highlighted, *schema.cropped):
        value = document.get(attribute)
        if isinstance(value, list) and value:
            highlights[attribute] = render_marked_list(
                [_mark(str(item), pattern) for item in value]
            )
        elif isinstance(value, str) and value:
            text = _crop(value, pattern) if attribute in schema.cropped else value
            highlights[attribute] = render_marked(_mark(text, pattern))
    return highlights


def _match_pattern(words: Sequence[_QueryWord]) -> re.Pattern[str] | None:
    forms = {form for word in words for form in word.surface_forms if form}
    if not forms:
        return None
    alternation = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.compile(alternation, re.IGNORECASE)


def _mark(text: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is None:
        return text
    return pattern.sub(lambda match: f"{MATCH_START}{match.group(0)}{MATCH_END}", text)


def _crop(text: str, pattern: re.Pattern[str] | None) -> str:
    """A window of the text around its first match (or its start), marked with …."""
    if len(text) <= CROP_LENGTH_CHARACTERS:
        return text
    first_match = pattern.search(text) if pattern is not None else None
    start = max(0, first_match.start() - CROP_CONTEXT_BEFORE_MATCH) if first_match else 0
    start = min(start, len(text) - CROP_LENGTH_CHARACTERS)
    end = start + CROP_LENGTH_CHARACTERS
    prefix = CROP_MARKER if start > 0 else ""
    suffix = CROP_MARKER if end < len(text) else ""
    return f"{prefix}{text[start:end]}{suffix}"
