"""localstripe for the test suite: loopback only, state in a throwaway folder.

localstripe 1.15.10's own entry point cannot do either. `localstripe --help` offers
only `--port` and `--from-scratch`; it binds "::" (every interface, IPv4 and IPv6),
and it pickles its whole state after every write to the hard-coded path
/tmp/localstripe.pickle (TMPDIR and the working directory are ignored), reloading it
on the next start. Every localstripe on the machine would share that file.

So this module is also a launcher. Run as a script, it imports localstripe's aiohttp
application, redirects the store's pickle into `--state-dir`, and serves on a socket
that the parent process has already bound to 127.0.0.1 and passed down. Binding in
the parent means the port is ours before the child starts: no race for a free port.

The rest is for tests: registering a webhook with localstripe, and a small HTTP
receiver that records the webhook requests localstripe delivers.
"""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

LOOPBACK = "127.0.0.1"
STATE_FILE_NAME = "localstripe.pickle"
LOG_FILE_NAME = "localstripe.log"
# localstripe accepts any key of this shape; it is not a secret.
TEST_SECRET_KEY = "sk_test_techmarket_localstripe_0123456789"


def localstripe_installed() -> bool:
    return importlib.util.find_spec("localstripe") is not None


# ---------------------------------------------------------------------------
# Parent side: start, wait, stop.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalstripeServer:
    base_url: str
    state_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE_NAME

    @property
    def log_file(self) -> Path:
        return self.state_dir / LOG_FILE_NAME

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-characters:]
        except FileNotFoundError:
            return ""


class LocalstripeDidNotStart(RuntimeError):
    pass


@contextmanager
def running_localstripe(
    state_dir: Path, *, startup_timeout_seconds: float = 20.0
) -> Iterator[LocalstripeServer]:
    """Start localstripe on a free loopback port and stop it on exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    with (state_dir / LOG_FILE_NAME).open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--listen-fd",
                str(listener.fileno()),
                "--state-dir",
                str(state_dir),
            ],
            pass_fds=(listener.fileno(),),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=state_dir,
            # Belt and braces: should a future localstripe honour TMPDIR, it lands here too.
            env={**os.environ, "TMPDIR": str(state_dir)},
        )
    listener.close()  # the child holds its own copy of the listening socket
    server = LocalstripeServer(f"http://{LOOPBACK}:{port}", state_dir, process)
    try:
        _wait_until_answering(server, startup_timeout_seconds)
        yield server
    finally:
        _stop(process)


def _wait_until_answering(server: LocalstripeServer, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LocalstripeDidNotStart(
                f"localstripe exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            status, _ = http_request(server.base_url, "GET", "/v1/customers?limit=1", timeout=1.0)
        except OSError:
            time.sleep(0.05)
            continue
        if status == 200:
            return
    raise LocalstripeDidNotStart(
        f"localstripe did not answer within {timeout_seconds} s:\n{server.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def http_request(
    base_url: str,
    method: str,
    path: str,
    *,
    form: Sequence[tuple[str, str]] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """A bare request to localstripe with the test key (for its `/_config` routes and
    for the readiness probe, which must not depend on the stripe SDK)."""
    data = urllib.parse.urlencode(list(form)).encode() if form is not None else None
    request = urllib.request.Request(  # noqa: S310 - always our own http://127.0.0.1 URL
        base_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TEST_SECRET_KEY}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def register_webhook(
    base_url: str, webhook_id: str, *, url: str, secret: str, events: Sequence[str]
) -> None:
    """Ask localstripe to deliver `events` to `url`, signed with `secret`.

    Registrations live in localstripe's memory only (they vanish on restart) and a
    second registration under the same id replaces the first.
    """
    form = [("url", url), ("secret", secret)] + [("events[]", event) for event in events]
    status, body = http_request(base_url, "POST", f"/_config/webhooks/{webhook_id}", form=form)
    if status != 200:
        raise RuntimeError(f"localstripe refused the webhook registration: {status} {body!r}")


# ---------------------------------------------------------------------------
# A receiver for webhook deliveries.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class WebhookReceiver:
    """Records every POST it gets and answers 200, on a free loopback port."""

    received: list[ReceivedRequest] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the receiver is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks/stripe"

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._record(ReceivedRequest(self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _record(self, request: ReceivedRequest) -> None:
        with self._arrived:
            self.received.append(request)
            self._arrived.notify_all()

    def wait_for(
        self, matches: Callable[[ReceivedRequest], bool], timeout_seconds: float = 10.0
    ) -> ReceivedRequest:
        """The first recorded request `matches` accepts, waiting for it if needed."""
        deadline = time.monotonic() + timeout_seconds
        with self._arrived:
            while True:
                found = next((r for r in self.received if matches(r)), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no matching webhook within {timeout_seconds} s; "
                        f"got {len(self.received)} other request(s)"
                    )
                self._arrived.wait(remaining)


# ---------------------------------------------------------------------------
# Child side: the launcher.
# ---------------------------------------------------------------------------


def _serve(listen_fd: int, state_dir: Path) -> None:
    import logging

    from aiohttp import web
    from localstripe import resources, server

    state_file = state_dir / STATE_FILE_NAME

    def dump_to_our_state_file(store: resources.Store) -> None:
        with state_file.open("wb") as file:
            pickle.dump(store, file, protocol=pickle.HIGHEST_PROTOCOL)

    def refuse_to_load(store: resources.Store) -> None:
        # Every test session starts from an empty store.
        return None

    # The two methods are the only places localstripe names its pickle path.
    resources.Store.dump_to_disk = dump_to_our_state_file
    resources.Store.try_load_from_disk = refuse_to_load

    # localstripe reports webhook deliveries on this logger; the log file keeps them.
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.INFO)
    access_log.addHandler(logging.StreamHandler())

    listening_socket = socket.socket(fileno=listen_fd)
    web.run_app(server.app, sock=listening_socket, access_log=access_log, print=None)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    _serve(args.listen_fd, args.state_dir)


if __name__ == "__main__":
    main()
