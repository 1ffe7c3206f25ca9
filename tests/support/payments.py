"""The app with Stripe switched on against the session's localstripe, and helpers that
walk the payment flows over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

from market.payments.gateway import PaymentGateway
from market.payments.webhooks import sign_payload
from tests.support.factories import Account
from tests.support.journey import Cast, ok, registered_contract
from tests.support.localstripe_server import TEST_SECRET_KEY, LocalstripeServer, http_request
from tests.support.stripe_fixtures import WEBHOOK_SECRET as WEBHOOK_SECRET  # for the tests

VISA = "pm_card_visa"
DECLINING_CARD = "pm_card_chargeCustomerFail"


# --- contracts ------------------------------------------------------------------------------


def registered(pay: TestClient, cast: Cast, *milestones: int) -> dict[str, Any]:
    """A registered contract between the cast's institute (seller) and enterprise (buyer)
    whose milestones have exactly the given amounts in fen."""
    amounts = milestones or (30_000, 70_000)
    schedule = [
        {"title": f"第{number}期", "due_on": "2027-01-01", "amount_fen": amount}
        for number, amount in enumerate(amounts, start=1)
    ]
    return registered_contract(
        pay,
        cast.institute,
        cast.enterprise,
        cast.bureau,
        total_fen=sum(amounts),
        milestones=schedule,
    )


def milestone_ids(contract: dict[str, Any]) -> list[int]:
    return [milestone["id"] for milestone in contract["milestones"]]


# --- payments over the API ------------------------------------------------------------------


def start_payment(
    pay: TestClient,
    payer: Account,
    contract_id: int,
    milestone_id: int,
    status: int = 201,
    **body: Any,
) -> dict[str, Any]:
    response = pay.post(
        f"/contracts/{contract_id}/milestones/{milestone_id}/payments",
        json=body,
        headers=payer.headers,
    )
    return ok(response, status)


def view(pay: TestClient, viewer: Account, contract_id: int) -> dict[str, Any]:
    return ok(pay.get(f"/contracts/{contract_id}/payments", headers=viewer.headers))


def payment(pay: TestClient, viewer: Account, payment_id: int) -> dict[str, Any]:
    return ok(pay.get(f"/payments/{payment_id}", headers=viewer.headers))


def ledger_rows(pay: TestClient, viewer: Account, contract_id: int) -> list[tuple[str, int]]:
    response = pay.get(f"/contracts/{contract_id}/payment-ledger", headers=viewer.headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return [(row["kind"], row["amount_fen"]) for row in rows]


# --- webhooks ---------------------------------------------------------------------------------


def deliver(
    pay: TestClient,
    document: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> Any:
    body = json.dumps(document).encode()
    header = sign_payload(body, secret, timestamp or int(time.time()))
    return pay.post(
        "/payments/stripe/webhook",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def event(
    event_type: str, stripe_object: dict[str, Any], *, event_id: str, created: int | None = None
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created or int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": stripe_object},
    }


def intent_object(intent_id: str, status: str, amount: int, **fields: Any) -> dict[str, Any]:
    """A PaymentIntent as real Stripe puts it in events (latest_charge as an id)."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": status,
        "amount": amount,
        "currency": "cny",
        "capture_method": "automatic",
        "amount_capturable": 0,
        "amount_received": 0,
        "created": int(time.time()),
        "latest_charge": None,
        "metadata": {},
    } | fields


def refund_object(refund_id: str, intent_id: str, amount: int, status: str) -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "status": status,
        "amount": amount,
        "currency": "cny",
        "payment_intent": intent_id,
        "charge": None,
        "metadata": {},
    }


def localstripe_events_for(localstripe: LocalstripeServer, intent_id: str) -> list[dict[str, Any]]:
    """The events localstripe recorded about one intent, oldest first, as it sent them."""
    found: list[dict[str, Any]] = []
    after = ""
    while True:
        query = "/v1/events?limit=100" + (f"&starting_after={after}" if after else "")
        status, body = http_request(localstripe.base_url, "GET", query)
        assert status == 200, body
        page = json.loads(body)
        found += [e for e in page["data"] if e["data"]["object"].get("id") == intent_id]
        if not page.get("has_more") or not page["data"]:
            return sorted(found, key=lambda e: e["created"])
        after = page["data"][-1]["id"]


def client_side_gateway(localstripe: LocalstripeServer) -> PaymentGateway:
    """What Stripe.js would do in the buyer's browser, played by the server-side SDK."""
    from market.payments.gateway import StripeCompatibility

    return PaymentGateway(
        TEST_SECRET_KEY,
        api_base=localstripe.base_url,
        compatibility=StripeCompatibility.LOCALSTRIPE,
        max_network_retries=0,
    )
