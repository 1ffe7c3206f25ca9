"""POST /payments/stripe/webhook: signatures, storing once, order, unknown types.

Signed payloads for what localstripe never sends (refunds, cancel,
amount_capturable_updated, out-of-order and repeated deliveries), and one test where
localstripe itself delivers to the app served over HTTP by uvicorn.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.journey import Cast, ok
from tests.support.localstripe_server import LocalstripeServer, register_webhook
from tests.support.payments import (
    VISA,
    WEBHOOK_SECRET,
    client_side_gateway,
    deliver,
    event,
    intent_object,
    ledger_rows,
    milestone_ids,
    payment,
    refund_object,
    registered,
    start_payment,
    view,
)

pytestmark = pytest.mark.stripe


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def stored_outcomes(engine: Engine, event_id: str) -> list[str | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT outcome FROM webhook_events WHERE stripe_event_id = :id"),
            {"id": event_id},
        )
        return [row[0] for row in rows]


def pending_payment(pay: TestClient, cast: Cast, amount: int) -> tuple[dict[str, Any], str]:
    contract = registered(pay, cast, amount)
    started = start_payment(pay, cast.enterprise, contract["id"], milestone_ids(contract)[0])
    return started, started["stripe_payment_intent_id"]


# --- refusing deliveries ------------------------------------------------------------------


def test_a_wrong_signature_is_a_400_problem_and_nothing_is_stored(
    pay: TestClient, engine: Engine
) -> None:
    document = event(
        "payment_intent.succeeded", intent_object("pi_x", "succeeded", 100), event_id="evt_badsig"
    )

    response = deliver(pay, document, secret="whsec_not_ours")

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_webhook"
    assert stored_outcomes(engine, "evt_badsig") == []


def test_a_stale_signature_is_refused(pay: TestClient) -> None:
    document = event(
        "payment_intent.succeeded", intent_object("pi_x", "succeeded", 100), event_id="evt_stale"
    )

    response = deliver(pay, document, timestamp=int(time.time()) - 301)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_webhook")


def test_a_missing_signature_is_refused(pay: TestClient) -> None:
    response = pay.post("/payments/stripe/webhook", content=b'{"id": "evt_1"}')

    assert response.status_code == 400


def test_unknown_types_are_stored_and_ignored(pay: TestClient, engine: Engine) -> None:
    document = event(
        "customer.created", {"id": "cus_1", "object": "customer"}, event_id="evt_unknown_type"
    )

    assert ok(deliver(pay, document))["outcome"] == "ignored_unknown"
    assert stored_outcomes(engine, "evt_unknown_type") == ["ignored_unknown"]


def test_events_about_intents_that_are_not_ours_are_ignored(pay: TestClient) -> None:
    document = event(
        "payment_intent.succeeded",
        intent_object("pi_elsewhere", "succeeded", 5),
        event_id=new_id("evt"),
    )

    assert ok(deliver(pay, document))["outcome"] == "ignored_unmatched"


# --- ordering and repeats -------------------------------------------------------------------


def test_a_late_processing_never_overrides_succeeded(
    pay: TestClient, cast: Cast, engine: Engine
) -> None:
    started, intent_id = pending_payment(pay, cast, 20_000)
    now = int(time.time())
    succeeded = event(
        "payment_intent.succeeded",
        intent_object(intent_id, "succeeded", 20_000, amount_received=20_000),
        event_id=new_id("evt"),
        created=now,
    )
    processing = event(
        "payment_intent.processing",
        intent_object(intent_id, "processing", 20_000),
        event_id=new_id("evt"),
        created=now - 5,
    )

    assert ok(deliver(pay, succeeded))["outcome"] == "applied"
    assert ok(deliver(pay, processing))["outcome"] == "ignored_stale"

    assert payment(pay, cast.enterprise, started["id"])["status"] == "paid"
    assert stored_outcomes(engine, processing["id"]) == ["ignored_stale"]


def test_processing_then_succeeded_in_order(pay: TestClient, cast: Cast) -> None:
    started, intent_id = pending_payment(pay, cast, 3_000)

    ok(
        deliver(
            pay,
            event(
                "payment_intent.processing",
                intent_object(intent_id, "processing", 3_000),
                event_id=new_id("evt"),
            ),
        )
    )
    assert payment(pay, cast.enterprise, started["id"])["status"] == "processing"
    milestone = view(pay, cast.enterprise, started["contract_id"])["milestones"][0]
    assert milestone["status"] == "processing"

    ok(
        deliver(
            pay,
            event(
                "payment_intent.succeeded",
                intent_object(intent_id, "succeeded", 3_000, amount_received=3_000),
                event_id=new_id("evt"),
            ),
        )
    )
    assert payment(pay, cast.enterprise, started["id"])["status"] == "paid"


def test_a_failure_arriving_after_success_changes_nothing(pay: TestClient, cast: Cast) -> None:
    started, intent_id = pending_payment(pay, cast, 3_000)
    ok(
        deliver(
            pay,
            event(
                "payment_intent.succeeded",
                intent_object(intent_id, "succeeded", 3_000, amount_received=3_000),
                event_id=new_id("evt"),
            ),
        )
    )

    failed = event(
        "payment_intent.payment_failed",
        intent_object(
            intent_id,
            "requires_payment_method",
            3_000,
            last_payment_error={"code": "card_declined"},
        ),
        event_id=new_id("evt"),
        created=int(time.time()) - 60,
    )

    assert ok(deliver(pay, failed))["outcome"] == "ignored_stale"
    assert payment(pay, cast.enterprise, started["id"])["status"] == "paid"


def test_a_payment_failed_event_marks_the_payment_failed(pay: TestClient, cast: Cast) -> None:
    started, intent_id = pending_payment(pay, cast, 3_000)
    failed = event(
        "payment_intent.payment_failed",
        intent_object(
            intent_id,
            "requires_payment_method",
            3_000,
            last_payment_error={"code": "card_declined", "decline_code": "insufficient_funds"},
        ),
        event_id=new_id("evt"),
    )

    ok(deliver(pay, failed))

    body = payment(pay, cast.enterprise, started["id"])
    assert (body["status"], body["failure_code"]) == ("failed", "insufficient_funds")


def test_a_cancel_event_ends_an_unpaid_milestone_payment(pay: TestClient, cast: Cast) -> None:
    started, intent_id = pending_payment(pay, cast, 3_000)

    ok(
        deliver(
            pay,
            event(
                "payment_intent.canceled",
                intent_object(intent_id, "canceled", 3_000),
                event_id=new_id("evt"),
            ),
        )
    )

    assert payment(pay, cast.enterprise, started["id"])["status"] == "canceled"
    assert view(pay, cast.enterprise, started["contract_id"])["milestones"][0]["status"] == (
        "unpaid"
    )


def test_a_hold_learnt_by_amount_capturable_updated_then_released_by_cancel(
    pay: TestClient, cast: Cast
) -> None:
    contract = registered(pay, cast, 50_000)
    deposit = ok(
        pay.post(
            f"/contracts/{contract['id']}/deposits",
            json={"amount_fen": 8_000},
            headers=cast.enterprise.headers,
        ),
        201,
    )
    intent_id = deposit["stripe_payment_intent_id"]
    assert deposit["status"] == "pending"

    ok(
        deliver(
            pay,
            event(
                "payment_intent.amount_capturable_updated",
                intent_object(
                    intent_id,
                    "requires_capture",
                    8_000,
                    capture_method="manual",
                    amount_capturable=8_000,
                ),
                event_id=new_id("evt"),
            ),
        )
    )
    held = payment(pay, cast.enterprise, deposit["id"])
    assert (held["status"], held["amount_capturable_fen"]) == ("held", 8_000)

    ok(
        deliver(
            pay,
            event(
                "payment_intent.canceled",
                intent_object(intent_id, "canceled", 8_000, capture_method="manual"),
                event_id=new_id("evt"),
            ),
        )
    )
    released = payment(pay, cast.enterprise, deposit["id"])
    assert (released["status"], released["amount_capturable_fen"]) == ("released", 0)


# --- refunds learnt by webhook --------------------------------------------------------------


def test_a_dashboard_refund_delivered_three_times_counts_once(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 10_000)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    intent_id, refund_id = paid["stripe_payment_intent_id"], new_id("re")
    created = event(
        "refund.created",
        refund_object(refund_id, intent_id, 4_000, "pending"),
        event_id=new_id("evt"),
    )
    succeeded = event(
        "refund.updated",
        refund_object(refund_id, intent_id, 4_000, "succeeded"),
        event_id=new_id("evt"),
    )

    assert ok(deliver(pay, created))["outcome"] == "applied"
    pending = payment(pay, cast.bureau, paid["id"])
    assert (pending["status"], pending["refunds"][0]["status"]) == ("paid", "pending")
    answers = [ok(deliver(pay, succeeded)) for _ in range(3)]

    assert [a["duplicate"] for a in answers] == [False, True, True]
    refunded = payment(pay, cast.bureau, paid["id"])
    assert (refunded["status"], refunded["amount_refunded_fen"]) == ("refunded_partially", 4_000)
    assert refunded["refunds"][0]["requested_by_user_id"] is None
    # The pending refund arriving late (another event id) does not undo the success.
    late = event(
        "refund.updated",
        refund_object(refund_id, intent_id, 4_000, "pending"),
        event_id=new_id("evt"),
    )
    assert ok(deliver(pay, late))["outcome"] == "ignored_stale"
    assert ledger_rows(pay, cast.bureau, contract["id"]) == [
        ("received", 10_000),
        ("platform_fee", -150),
        ("refund", -4_000),
        ("platform_fee", 60),
    ]
    assert view(pay, cast.bureau, contract["id"])["totals"]["net_received_fen"] == 6_000


def test_a_refund_we_made_is_not_counted_again_by_its_webhook(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 10_000)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    refunded = ok(
        pay.post(
            f"/payments/{paid['id']}/refunds",
            json={"amount_fen": 10_000, "reason": "合同解除"},
            headers=cast.institute.headers,
        ),
        201,
    )
    stripe_refund = refunded["refunds"][0]["stripe_refund_id"]

    answer = ok(
        deliver(
            pay,
            event(
                "refund.updated",
                refund_object(stripe_refund, paid["stripe_payment_intent_id"], 10_000, "succeeded"),
                event_id=new_id("evt"),
            ),
        )
    )

    assert answer["outcome"] == "ignored_stale"
    assert payment(pay, cast.bureau, paid["id"])["amount_refunded_fen"] == 10_000


def test_charge_refunded_records_the_running_total_without_counting_money(
    pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 10_000)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    charge = {
        "id": "ch_1",
        "object": "charge",
        "status": "succeeded",
        "amount": 10_000,
        "amount_captured": 10_000,
        "amount_refunded": 2_000,
        "currency": "cny",
        "payment_intent": paid["stripe_payment_intent_id"],
        "metadata": {},
    }
    smaller = charge | {"amount_refunded": 1_000}

    assert (
        ok(deliver(pay, event("charge.refunded", charge, event_id=new_id("evt"))))["outcome"]
        == "applied"
    )
    assert (
        ok(deliver(pay, event("charge.refunded", smaller, event_id=new_id("evt"))))["outcome"]
        == "ignored_stale"
    )

    with engine.connect() as connection:
        total = connection.execute(
            text("SELECT stripe_charge_refunded_fen FROM payments WHERE id = :id"),
            {"id": paid["id"]},
        ).scalar_one()
    assert total == 2_000
    assert payment(pay, cast.bureau, paid["id"])["amount_refunded_fen"] == 0


# --- localstripe's own delivery, over HTTP, to the app under uvicorn ------------------------


@pytest.fixture
def served_app(pay_app: FastAPI) -> Iterator[str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(pay_app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def test_localstripe_delivers_its_signed_event_to_the_running_app(
    pay: TestClient, cast: Cast, localstripe: LocalstripeServer, served_app: str, engine: Engine
) -> None:
    register_webhook(
        localstripe.base_url,
        "techmarket-payments-app",
        url=f"{served_app}/payments/stripe/webhook",
        secret=WEBHOOK_SECRET,
        events=["payment_intent.succeeded", "payment_intent.payment_failed"],
    )
    try:
        started, intent_id = pending_payment(pay, cast, 15_500)
        client_side_gateway(localstripe).confirm(intent_id, VISA)

        deadline = time.monotonic() + 10
        while payment(pay, cast.enterprise, started["id"])["status"] != "paid":
            assert time.monotonic() < deadline, "localstripe's webhook never arrived"
            time.sleep(0.1)
    finally:
        # Later tests must not deliver to a server that is gone.
        register_webhook(
            localstripe.base_url,
            "techmarket-payments-app",
            url="http://127.0.0.1:9/gone",
            secret=WEBHOOK_SECRET,
            events=["payment_intent.canceled"],
        )

    assert payment(pay, cast.enterprise, started["id"])["amount_received_fen"] == 15_500
    with engine.connect() as connection:
        outcomes = connection.execute(
            text(
                "SELECT type, outcome FROM webhook_events WHERE CAST(payload AS TEXT) LIKE :intent"
            ),
            {"intent": f"%{intent_id}%"},
        ).all()
    assert [tuple(row) for row in outcomes] == [("payment_intent.succeeded", "applied")]


def test_a_pending_dashboard_refund_holds_its_amount_until_it_fails(
    pay: TestClient, cast: Cast
) -> None:
    contract = registered(pay, cast, 10_000)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    intent_id, refund_id = paid["stripe_payment_intent_id"], new_id("re")
    path, body = f"/payments/{paid['id']}/refunds", {"reason": "协商退款"}
    assert (
        ok(
            deliver(
                pay,
                event(
                    "refund.created",
                    refund_object(refund_id, intent_id, 4_000, "pending"),
                    event_id=new_id("evt"),
                ),
            )
        )["outcome"]
        == "applied"
    )

    too_much = pay.post(path, json={**body, "amount_fen": 6_001}, headers=cast.institute.headers)
    assert too_much.status_code == 422
    assert too_much.json()["errors"][0]["message"] == "at most 6000 fen can be refunded"
    ok(
        deliver(
            pay,
            event(
                "refund.updated",
                refund_object(refund_id, intent_id, 4_000, "failed"),
                event_id=new_id("evt"),
            ),
        )
    )

    whole = ok(
        pay.post(path, json={**body, "amount_fen": 10_000}, headers=cast.institute.headers), 201
    )
    assert (whole["status"], whole["amount_refunded_fen"]) == ("refunded", 10_000)
