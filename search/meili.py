"""The Meilisearch engine (official `meilisearch` client).

Index uids are `<prefix>_<catalogue>` (e.g. `market_results`), so several deployments or
test runs can share one server. Every write waits for its task and checks the task's
final status: the client's `wait_for_task` returns failed tasks without raising.

Settings are chosen for Chinese technical text; the measurements behind them are in
docs/SEARCH.md.

Searches (`search`, `search_many`) do not go through the official client: it opens a new
HTTP connection per call (module-level `requests.post`). They are sent over a pool of
kept-alive connections (`_SearchConnections`, urllib3, thread-safe); `search_async`, for
the API's async endpoints, over kept-alive aiohttp sessions (`_AsyncSearchConnections`).
Admin calls and tasks (indexes, settings, documents, waiting) keep the official client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import aiohttp
import meilisearch
import urllib3
from meilisearch.errors import (
    MeilisearchApiError,
    MeilisearchCommunicationError,
    MeilisearchError,
    MeilisearchTimeoutError,
)
from meilisearch.index import Index

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
    EMBEDDER_NAME,
    PUBLISHED,
    VECTOR_KEY,
    Catalogue,
    CatalogueSchema,
    document_vector,
)
from search.highlight import (
    CROP_MARKER,
    MATCH_END,
    MATCH_START,
    render_marked,
    render_marked_list,
)
from search.text import fold_for_search, load_dictionary

logger = logging.getLogger(__name__)

# Hit counts are capped at this; the default of 1000 made "N results" wrong past 1000.
MAX_TOTAL_HITS = 100_000
BATCH_SIZE = 1_000
# Batches enqueued ahead of the one being waited for: enqueueing ahead indexes much
# faster than send-wait-send (docs/PERFORMANCE.md, "Figures behind the code's comments"),
# while keeping progress reports honest.
PENDING_BATCHES = 4
CROP_LENGTH_WORDS = 30
# "sort" first: an explicit sort (price, newest) must win over relevance. Without a sort
# parameter the rule does nothing and relevance decides.
RANKING_RULES = ["sort", "words", "typo", "proximity", "attribute", "exactness"]
# What Meilisearch answers when the embedder cannot be set on an index that holds
# documents indexed before it (no `_vectors` at all) or vectors of other dimensions.
EMBEDDER_REFUSED_BY_DOCUMENTS = ("vector_embedding_error", "invalid_vector_dimensions")
# Kept-alive connections for searches: about one per thread searching at once (uvicorn's
# thread pool). Past it, extra connections are opened and closed after their request.
SEARCH_CONNECTIONS = 32


def index_settings(
    schema: CatalogueSchema, vector_dimensions: int = DEFAULT_VECTOR_DIMENSIONS
) -> dict[str, Any]:
    """The full settings of one catalogue's index."""
    dictionary = load_dictionary()
    return {
        "searchableAttributes": list(schema.searchable),
        # `id` is filterable only so that deletes can select documents by id.
        "filterableAttributes": ["id", *schema.filterable],
        "sortableAttributes": list(schema.sortable),
        "displayedAttributes": ["*"],
        "rankingRules": RANKING_RULES,
        "synonyms": dictionary.meilisearch_synonyms(),
        "stopWords": sorted(dictionary.stop_words),
        # Language detection already works on our simplified corpus; declaring the
        # locale keeps short, mostly-Latin texts (e.g. "PLC 控制") segmented as Chinese.
        "localizedAttributes": [{"attributePatterns": ["*"], "locales": ["cmn"]}],
        "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
        "faceting": {"maxValuesPerFacet": 200, "sortFacetValuesBy": {"*": "count"}},
        # We send the vectors (the outbox worker embeds them); Meilisearch only stores
        # and searches them. Changing the dimensions needs every vector sent again.
        "embedders": {EMBEDDER_NAME: {"source": "userProvided", "dimensions": vector_dimensions}},
    }


class MeilisearchEngine:
    """`SearchBackend` on a Meilisearch server."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        index_prefix: str = "market",
        request_timeout_s: int = 10,
        task_timeout_s: float = 300.0,
        vector_dimensions: int = DEFAULT_VECTOR_DIMENSIONS,
    ) -> None:
        self._url = url
        self._vector_dimensions = vector_dimensions
        self._api_key = api_key
        self._index_prefix = index_prefix
        self._request_timeout_s = request_timeout_s
        self._task_timeout_ms = int(task_timeout_s * 1000)
        # The client mutates shared request headers per call, so one client must not
        # serve two threads at once (a search could go out without its Content-Type).
        self._local = threading.local()
        self._connections = _SearchConnections(url, api_key, timeout_s=request_timeout_s)
        self._async_connections = _AsyncSearchConnections(url, api_key, timeout_s=request_timeout_s)

    # -- SearchBackend -------------------------------------------------------------

    def ensure_indexes(self) -> None:
        for catalogue in CATALOGUES:
            self._create_index(self.index_uid(catalogue), catalogue)

    def upsert(self, catalogue: Catalogue, documents: Iterable[Document]) -> None:
        self.wait([self.upsert_async(catalogue, documents)])

    def delete(self, catalogue: Catalogue, ids: Iterable[str]) -> None:
        self.wait([self.delete_async(catalogue, ids)])

    def search(self, catalogue: Catalogue, query: SearchQuery) -> SearchPage:
        schema = self._validated(catalogue, query)
        response = self._connections.post(self._search_path(catalogue), _search_body(schema, query))
        return _search_page(schema, query, response)

    async def search_async(self, catalogue: Catalogue, query: SearchQuery) -> SearchPage:
        schema = self._validated(catalogue, query)
        response = await self._async_connections.post(
            self._search_path(catalogue), _search_body(schema, query)
        )
        return _search_page(schema, query, response)

    def search_many(self, catalogue: Catalogue, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        """All queries in one `POST /multi-search` round trip; pages in query order."""
        if not queries:
            return []
        schemas = [self._validated(catalogue, query) for query in queries]
        uid = self.index_uid(catalogue)
        bodies = [
            {"indexUid": uid, **_search_body(schema, query)}
            for schema, query in zip(schemas, queries, strict=True)
        ]
        response = self._connections.post("/multi-search", {"queries": bodies})
        results = response["results"]
        return [
            _search_page(schema, query, result)
            for schema, query, result in zip(schemas, queries, results, strict=True)
        ]

    def count(self, catalogue: Catalogue) -> int:
        with _translated_errors():
            stats = self._index(self.index_uid(catalogue)).get_stats()
        return int(stats.number_of_documents)

    def rebuild(
        self,
        catalogue: Catalogue,
        documents: Iterable[Document],
        progress: ProgressCallback | None = None,
    ) -> int:
        live_uid = self.index_uid(catalogue)
        fresh_uid = f"{live_uid}__rebuild"
        # Swapping needs both indexes; a leftover from a crashed rebuild is discarded.
        self._create_index(live_uid, catalogue)
        self._delete_index(fresh_uid)
        self._create_index(fresh_uid, catalogue)
        try:
            indexed = self._fill(self._index(fresh_uid), documents, progress)
            self._swap(live_uid, fresh_uid)
        finally:
            # After the swap this holds the old content; before it, a partial build.
            self._delete_index(fresh_uid)
        return indexed

    def health(self) -> None:
        try:
            status = self._client().health().get("status")
        except MeilisearchError as error:
            raise SearchUnavailable(
                f"Meilisearch at {self._url} is unreachable: {error}"
            ) from error
        if status != "available":
            raise SearchUnavailable(f"Meilisearch at {self._url} reports status {status!r}")

    def drop_indexes(self) -> None:
        """Delete this prefix's indexes (tests, decommissioning); not part of the interface."""
        for catalogue in CATALOGUES:
            self._delete_index(self.index_uid(catalogue))

    def close(self) -> None:
        """Close the kept-alive search connections (they reopen on the next search)."""
        self._connections.close()

    async def open_async(self) -> None:
        """Keep a search session open for this event loop (the API, at start-up)."""
        await self._async_connections.open()

    async def close_async(self) -> None:
        """Close this event loop's search session (the API, at shutdown)."""
        await self._async_connections.close()

    # -- helpers -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def api_key(self) -> str | None:
        return self._api_key

    def index_uid(self, catalogue: Catalogue) -> str:
        return f"{self._index_prefix}_{catalogue}"

    @property
    def vector_dimensions(self) -> int:
        return self._vector_dimensions

    def _validated(self, catalogue: Catalogue, query: SearchQuery) -> CatalogueSchema:
        return validate_query(catalogue, query, vector_dimensions=self._vector_dimensions)

    def _engine_documents(self, documents: Iterable[Document]) -> Iterator[dict[str, Any]]:
        """Our documents as Meilisearch takes them: the vector moved into `_vectors`.

        Every document names the embedder, with null when it has no vector: a
        document without `_vectors` fails its whole batch.
        """
        for document in documents:
            vector = document_vector(document)
            if vector is not None:
                check_vector_dimensions(
                    vector,
                    self._vector_dimensions,
                    f"document {document.get('id')}'s vector",
                    error=SearchError,
                )
            engine_document = {key: value for key, value in document.items() if key != VECTOR_KEY}
            engine_document["_vectors"] = {EMBEDDER_NAME: vector}
            yield engine_document

    def _search_path(self, catalogue: Catalogue) -> str:
        return f"/indexes/{self.index_uid(catalogue)}/search"

    def _client(self) -> meilisearch.Client:
        client: meilisearch.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = meilisearch.Client(self._url, self._api_key, timeout=self._request_timeout_s)
            self._local.client = client
        return client

    def _index(self, uid: str) -> Index:
        return self._client().index(uid)

    def _create_index(self, uid: str, catalogue: Catalogue) -> None:
        """Create `uid` if missing, then (re)apply the catalogue's settings."""
        with _translated_errors():
            task_uid = self._client().create_index(uid, {"primaryKey": "id"}).task_uid
        self._wait(task_uid, tolerated_errors=("index_already_exists",))
        settings = index_settings(CATALOGUE_SCHEMAS[catalogue], self._vector_dimensions)
        embedders = {"embedders": settings.pop("embedders")}
        with _translated_errors():
            task_uid = self._index(uid).update_settings(settings).task_uid
        self._wait(task_uid)
        # Apart, so that an index from before vectors keeps its other settings and
        # keeps answering keyword searches until a reindex gives it the embedder.
        with _translated_errors():
            task_uid = self._index(uid).update_settings(embedders).task_uid
        refused = self._wait(task_uid, tolerated_errors=EMBEDDER_REFUSED_BY_DOCUMENTS)
        if refused is not None:
            logger.warning(
                "Meilisearch index %s holds documents without vectors of %d dimensions (%s):"
                " vector search there is off until `market reindex` rebuilds it",
                uid,
                self._vector_dimensions,
                refused,
            )

    def _delete_index(self, uid: str) -> None:
        with _translated_errors():
            task_uid = self._client().delete_index(uid).task_uid
        self._wait(task_uid, tolerated_errors=("index_not_found",))

    def _swap(self, live_uid: str, fresh_uid: str) -> None:
        with _translated_errors():
            task_uid = self._client().swap_indexes([{"indexes": [live_uid, fresh_uid]}]).task_uid
        self._wait(task_uid)

    def _fill(
        self, index: Index, documents: Iterable[Document], progress: ProgressCallback | None
    ) -> int:
        pending: list[tuple[int, int]] = []  # (task uid, documents in the batch)
        indexed = 0

        def wait_oldest() -> None:
            nonlocal indexed
            task_uid, size = pending.pop(0)
            self._wait(task_uid)
            indexed += size
            if progress is not None:
                progress(indexed)

        for batch in _batches(self._engine_documents(documents), BATCH_SIZE):
            with _translated_errors():
                task_uid = index.add_documents(batch, primary_key="id").task_uid
            pending.append((task_uid, len(batch)))
            if len(pending) > PENDING_BATCHES:
                wait_oldest()
        while pending:
            wait_oldest()
        return indexed

    def _wait(self, task_uid: int, *, tolerated_errors: Sequence[str] = ()) -> str | None:
        """Wait for a task and raise SearchError unless it succeeded or failed with one
        of `tolerated_errors` (whose code it returns; None for a success)."""
        try:
            task = self._client().wait_for_task(
                task_uid, timeout_in_ms=self._task_timeout_ms, interval_in_ms=25
            )
        except MeilisearchTimeoutError as error:
            raise SearchError(
                f"Meilisearch task {task_uid} did not finish in {self._task_timeout_ms} ms"
            ) from error
        except MeilisearchCommunicationError as error:
            raise SearchUnavailable(
                f"Meilisearch at {self._url} is unreachable: {error}"
            ) from error
        if task.status == "succeeded":
            return None
        error_details = task.error or {}
        code = error_details.get("code")
        if code in tolerated_errors:
            return str(code)
        raise SearchError(
            f"Meilisearch task {task_uid} ({task.type} on {task.index_uid}) {task.status}: "
            f"{error_details.get('code')}: {error_details.get('message')}"
        )

    # -- pipelined writes (search.backend.AsyncWrites) ------------------------------

    def upsert_async(self, catalogue: Catalogue, documents: Iterable[Document]) -> PendingWrite:
        """Enqueue the documents (batches of BATCH_SIZE) without waiting for the tasks."""
        index = self._index(self.index_uid(catalogue))
        with _translated_errors():
            task_uids = tuple(
                index.add_documents(batch, primary_key="id").task_uid
                for batch in _batches(self._engine_documents(documents), BATCH_SIZE)
            )
        return PendingWrite(catalogue, task_uids)

    def delete_async(self, catalogue: Catalogue, ids: Iterable[str]) -> PendingWrite:
        """Enqueue deletes by id filter without waiting for the tasks."""
        index = self._index(self.index_uid(catalogue))
        task_uids = []
        with _translated_errors():
            for batch in _batches(ids, BATCH_SIZE):
                id_filter = f"id IN [{', '.join(_quoted(str(id_)) for id_ in batch)}]"
                task_uids.append(index.delete_documents(filter=id_filter).task_uid)
        return PendingWrite(catalogue, tuple(task_uids))

    def wait(self, writes: Iterable[PendingWrite]) -> None:
        """Wait for every task, in order; SearchError unless each one succeeded."""
        for write in writes:
            for task_uid in write.task_ids:
                self._wait(task_uid)


class _SearchConnections:
    """POST JSON to Meilisearch over kept-alive connections, safe to share between threads.

    Transport failures are `SearchUnavailable`; an error answer is `SearchError` (or
    `SearchUnavailable` for a gateway's 502/503/504).
    """

    def __init__(self, url: str, api_key: str | None, *, timeout_s: float) -> None:
        self._url = url
        self._base_path = (urllib3.util.parse_url(url).path or "").rstrip("/")
        self._pool = urllib3.connection_from_url(
            url,
            maxsize=SEARCH_CONNECTIONS,
            block=False,
            headers=_search_headers(api_key),
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            # Failures surface as themselves; `post` retries a kept-alive connection
            # the server had closed, once.
            retries=False,
        )

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        payload = _json_payload(body)
        url = self._base_path + path
        try:
            try:
                response = self._pool.urlopen("POST", url, body=payload)
            except urllib3.exceptions.ProtocolError:
                # A kept-alive connection closed by the server between two requests.
                response = self._pool.urlopen("POST", url, body=payload)
        except urllib3.exceptions.HTTPError as error:
            raise SearchUnavailable(
                f"Meilisearch at {self._url} is unreachable: {error}"
            ) from error
        return _decoded_answer(response.status, response.data)

    def close(self) -> None:
        self._pool.close()


class _AsyncSearchConnections:
    """POST JSON to Meilisearch from async code, over a kept-alive aiohttp session.

    The API's search endpoints are `async`: a sync search would cost each of them a hop
    to the thread pool and back, a good part of a search's time (docs/PERFORMANCE.md,
    "Figures behind the code's comments"). An aiohttp session belongs to the event loop
    that opened it and must be closed in that loop, so the owner of the loop opens and
    closes it (`open`/`close`: the API's lifespan). Without one (a script, a test), each search
    uses a session of its own: correct, only without the kept-alive connection.
    """

    def __init__(self, url: str, api_key: str | None, *, timeout_s: float) -> None:
        self._url = url.rstrip("/")
        self._headers = _search_headers(api_key)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        if loop not in self._sessions:
            self._sessions[loop] = self._new_session()

    async def close(self) -> None:
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        session = self._sessions.get(asyncio.get_running_loop())
        if session is not None:
            return await self._post(session, path, _json_payload(body))
        async with self._new_session() as one_off:
            return await self._post(one_off, path, _json_payload(body))

    async def _post(self, session: aiohttp.ClientSession, path: str, payload: bytes) -> Any:
        try:
            try:
                status, data = await _send(session, self._url + path, payload)
            except aiohttp.ServerDisconnectedError:
                # A kept-alive connection closed by the server between two requests.
                status, data = await _send(session, self._url + path, payload)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SearchUnavailable(
                f"Meilisearch at {self._url} is unreachable: {error!r}"
            ) from error
        return _decoded_answer(status, data)

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            headers=self._headers,
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=SEARCH_CONNECTIONS),
            auto_decompress=False,
        )


async def _send(session: aiohttp.ClientSession, url: str, payload: bytes) -> tuple[int, bytes]:
    async with session.post(url, data=payload) as response:
        return response.status, await response.read()


def _search_headers(api_key: str | None) -> dict[str, str]:
    # identity: a kept-alive session asking for gzip stalled on every response, many times
    # the uncompressed answer's time (docs/PERFORMANCE.md, "Figures behind the code's
    # comments").
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": "techmarket-search",
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _json_payload(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _decoded_answer(status: int, data: bytes) -> Any:
    if status >= 400:
        raise _answer_error(status, data)
    try:
        return json.loads(data)
    except ValueError as error:
        raise SearchError(f"Meilisearch answered with invalid JSON: {error}") from error


def _answer_error(status: int, data: bytes) -> SearchError:
    try:
        details = json.loads(data)
    except ValueError:
        details = None
    if not isinstance(details, dict):
        details = {"code": f"http_{status}", "message": data[:200].decode("utf-8", "replace")}
    text = f"Meilisearch refused the request: {details.get('code')}: {details.get('message')}"
    if status in (502, 503, 504):
        return SearchUnavailable(text)
    return SearchError(text)


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    """Client exceptions -> SearchUnavailable (cannot reach) or SearchError (refused)."""
    try:
        yield
    except (MeilisearchCommunicationError, MeilisearchTimeoutError) as error:
        raise SearchUnavailable(f"Meilisearch is unreachable: {error}") from error
    except MeilisearchApiError as error:
        raise SearchError(
            f"Meilisearch refused the request: {error.code}: {error.message}"
        ) from error


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _literal(value: str | int) -> str:
    return str(value) if isinstance(value, int) else _quoted(value)


def _condition_expression(condition: Condition) -> str:
    if condition.operator == "in":
        if len(condition.values) == 1:
            return f"{condition.attribute} = {_literal(condition.values[0])}"
        listed = ", ".join(_literal(value) for value in condition.values)
        return f"{condition.attribute} IN [{listed}]"
    return f"{condition.attribute} {condition.operator} {_literal(condition.values[0])}"


def _visibility_expression(visibility: Visibility) -> str | None:
    if visibility.unrestricted:
        return None
    published = f"status = {_quoted(PUBLISHED)}"
    if visibility.organization_id is None:
        return published
    return f"({published} OR organization_id = {visibility.organization_id})"


def filter_expression(query: SearchQuery) -> str | None:
    """The query's filters and visibility rule as one Meilisearch filter string."""
    parts = [_condition_expression(condition) for condition in filter_conditions(query.filters)]
    visibility = _visibility_expression(query.visibility)
    if visibility is not None:
        parts.append(visibility)
    return " AND ".join(parts) or None


def _search_body(schema: CatalogueSchema, query: SearchQuery) -> dict[str, Any]:
    return {"q": fold_for_search(query.text), **_search_params(schema, query)}


def _search_params(schema: CatalogueSchema, query: SearchQuery) -> dict[str, Any]:
    params: dict[str, Any] = {
        "matchingStrategy": query.matching_strategy,
        "locales": ["cmn"],
        "showRankingScore": query.show_ranking_score,
    }
    params.update(_pagination_params(query))
    expression = filter_expression(query)
    if expression is not None:
        params["filter"] = expression
    if query.facets:
        params["facets"] = list(query.facets)
    sort = default_sort(query)
    if sort:
        params["sort"] = [f"{key.attribute}:{'desc' if key.descending else 'asc'}" for key in sort]
    if query.ranking_score_threshold is not None:
        params["rankingScoreThreshold"] = query.ranking_score_threshold
    if query.is_semantic:
        assert query.vector is not None  # is_semantic says so
        params["vector"] = [float(value) for value in query.vector]
        params["hybrid"] = {
            "embedder": EMBEDDER_NAME,
            "semanticRatio": query.effective_semantic_ratio,
        }
        # The only place Meilisearch reports a hit's similarity to the query vector.
        params["showRankingScoreDetails"] = True
    if query.highlight:
        params.update(
            attributesToHighlight=[*schema.highlighted, *schema.cropped],
            attributesToCrop=list(schema.cropped),
            cropLength=CROP_LENGTH_WORDS,
            cropMarker=CROP_MARKER,
            highlightPreTag=MATCH_START,
            highlightPostTag=MATCH_END,
        )
    return params


def _pagination_params(query: SearchQuery) -> dict[str, int]:
    """Page mode when the offset allows it: only page mode counts hits exhaustively."""
    if query.offset % query.limit == 0:
        return {"hitsPerPage": query.limit, "page": query.offset // query.limit + 1}
    return {"offset": query.offset, "limit": query.limit}


def _search_page(
    schema: CatalogueSchema, query: SearchQuery, response: Mapping[str, Any]
) -> SearchPage:
    if "totalHits" in response:
        total = int(response["totalHits"])
        exact = total < MAX_TOTAL_HITS
    else:
        total = int(response["estimatedTotalHits"])
        exact = False
    return SearchPage(
        hits=[_search_hit(schema, hit, query.highlight) for hit in response["hits"]],
        total=total,
        total_is_exact=exact,
        offset=query.offset,
        limit=query.limit,
        facets={
            name: {str(value): int(count) for value, count in counts.items()}
            for name, counts in response.get("facetDistribution", {}).items()
        },
    )


# What Meilisearch adds to a hit (our documents have no field starting with "_").
_HIT_EXTRAS = (
    "_rankingScore",
    "_formatted",
    "_matchesPosition",
    "_rankingScoreDetails",
    "_federation",
    "_vectors",
    "_geoDistance",
)


def _search_hit(schema: CatalogueSchema, hit: Mapping[str, Any], highlight: bool) -> SearchHit:
    # The hit is a fresh dict from the JSON answer: taking the extras out of it is much
    # cheaper than copying every document (matching parses ~200 hits per request).
    document = dict(hit) if not isinstance(hit, dict) else hit
    extras = {key: document.pop(key) for key in _HIT_EXTRAS if key in document}
    score = extras.get("_rankingScore")
    return SearchHit(
        id=str(document["id"]),
        document=document,
        score=float(score) if score is not None else None,
        highlights=_highlights(schema, extras.get("_formatted", {})) if highlight else {},
        semantic_score=_semantic_score(extras.get("_rankingScoreDetails")),
    )


def _semantic_score(details: Mapping[str, Any] | None) -> float | None:
    """The cosine of a hit the vector side found, from its ranking details.

    Meilisearch reports `vectorSort.similarity` as (1 + cosine) / 2, and null for a
    document without a vector. Hits its keyword side found carry no similarity even when
    they have a vector (computing it ourselves would mean fetching every hit's vector).
    """
    if not details:
        return None
    similarity = details.get("vectorSort", {}).get("similarity")
    if similarity is None:
        return None
    return 2.0 * float(similarity) - 1.0


def _highlights(schema: CatalogueSchema, formatted: Mapping[str, Any]) -> dict[str, str]:
    highlights: dict[str, str] = {}
    for attribute in (*schema.highlighted, *schema.cropped):
        value = formatted.get(attribute)
        if isinstance(value, str) and value:
            highlights[attribute] = render_marked(value)
        elif isinstance(value, list) and value:  # a JSON array
            highlights[attribute] = render_marked_list([str(item) for item in value])
    return highlights
