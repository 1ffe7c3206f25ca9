"""What the auth tests share: an app on a deliberately small pool, a real uvicorn
server in a thread, and firing requests in parallel."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from market.cli import trusted_proxy_addresses
from market.config import Settings
from market.db import make_engine

T = TypeVar("T")


@contextmanager
def small_pool_engine(engine: Engine, size: int, timeout: float) -> Iterator[Engine]:
    """The same database through make_engine, with a pool of `size` connections and no
    overflow: a request that holds one connection while it waits for another then
    fails after `timeout` seconds instead of passing unnoticed on a roomy pool."""
    small = make_engine(engine.url.render_as_string(hide_password=False))
    roomy = small.pool
    # Built like QueuePool.recreate() does, so the engine's connect listeners (SQLite
    # pragmas) carry over; only the size and the wait change.
    small.pool = QueuePool(
        roomy._creator,
        pool_size=size,
        max_overflow=0,
        timeout=timeout,
        dialect=roomy._dialect,
        _dispatch=roomy.dispatch,
    )
    roomy.dispose()
    try:
        yield small
    finally:
        small.dispose()


@contextmanager
def serving(app: FastAPI, settings: Settings) -> Iterator[str]:
    """Serve the app with uvicorn on a free loopback port (the proxy-header options
    `market serve` derives from the settings); yields the base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    trusted = trusted_proxy_addresses(settings)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def in_parallel(count: int, call: Callable[[int], T]) -> list[T]:
    """Run call(0..count-1) on `count` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def released(number: int) -> T:
        barrier.wait(timeout=30)
        return call(number)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(released, range(count)))


def http_client(base_url: str) -> httpx.Client:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.Client(base_url=base_url, timeout=60, limits=limits)
