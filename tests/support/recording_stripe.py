"""A stand-in Stripe API that records what stripe-python sends.

For what localstripe cannot show: parameters it refuses (description,
automatic_payment_methods, refund reason, list filters), headers it ignores
(Idempotency-Key), and error answers it never gives. The real StripeClient and our
real gateway talk to it over HTTP; only the server side is canned.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

CANNED_CREATED = 1_700_000_000


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    params: list[tuple[str, str]]  # form fields for POST, query for GET, in order
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    def param_names(self) -> set[str]:
        return {k for k, _ in self.params}


@dataclass
class CannedError:
    status: int
    error: dict[str, Any]


@dataclass
class RecordingStripe:
    calls: list[RecordedCall] = field(default_factory=list)
    # Answered (once each, in order) instead of the canned object.
    queued_errors: list[CannedError] = field(default_factory=list)
    listed_intents: list[dict[str, Any]] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RecordingStripe:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                stand_in._answer(self, "GET", url.path, urllib.parse.parse_qsl(url.query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qsl(self.rfile.read(length).decode())
                stand_in._answer(self, "POST", self.path, form)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _answer(
        self,
        handler: http.server.BaseHTTPRequestHandler,
        method: str,
        path: str,
        params: list[tuple[str, str]],
    ) -> None:
        with self._lock:
            self.calls.append(RecordedCall(method, path, params, dict(handler.headers.items())))
            request_number = len(self.calls)
            queued = self.queued_errors.pop(0) if self.queued_errors else None
        if queued is not None:
            status, body = queued.status, {"error": queued.error}
        else:
            status, body = 200, self._canned_object(method, path, dict(params))
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        # A Request-Id is what makes stripe-python send telemetry on the next call.
        handler.send_header("Request-Id", f"req_recorded_{request_number}")
        handler.end_headers()
        handler.wfile.write(payload)

    def _canned_object(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        if path == "/v1/refunds" and method == "POST":
            return {
                "id": "re_recorded",
                "object": "refund",
                "amount": int(params["amount"]),
                "currency": "cny",
                "status": "succeeded",
                "payment_intent": params.get("payment_intent"),
                "charge": "ch_recorded",
                "reason": params.get("reason"),
                "metadata": {},
            }
        if path == "/v1/payment_intents" and method == "GET":
            return {
                "object": "list",
                "url": "/v1/payment_intents",
                "has_more": False,
                "data": self.listed_intents,
            }
        return canned_intent(
            amount=int(params.get("amount", 10000)),
            metadata={
                key[len("metadata[") : -1]: value
                for key, value in params.items()
                if key.startswith("metadata[")
            },
        )


def canned_intent(
    *,
    intent_id: str = "pi_recorded",
    amount: int = 10000,
    created: int = CANNED_CREATED,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A PaymentIntent shaped like real Stripe's (which reports the amounts itself)."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": "requires_payment_method",
        "amount": amount,
        "currency": "cny",
        "capture_method": "automatic",
        "amount_capturable": 0,
        "amount_received": 0,
        "created": created,
        "client_secret": f"{intent_id}_secret_recorded",
        "latest_charge": None,
        "customer": None,
        "last_payment_error": None,
        "metadata": metadata or {},
    }
