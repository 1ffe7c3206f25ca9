"""Paying contract milestones over HTTP, against a real localstripe server."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from tests.support.journey import Cast, direct_contract, ok, submit
from tests.support.localstripe_server import LocalstripeServer
from tests.support.payments import (
    DECLINING_CARD,
    VISA,
    client_side_gateway,
    deliver,
    ledger_rows,
    localstripe_events_for,
    milestone_ids,
    payment,
    registered,
    start_payment,
    view,
)

pytestmark = pytest.mark.stripe


def succeeded_event(localstripe: LocalstripeServer, intent_id: str) -> dict[str, Any]:
    events = localstripe_events_for(localstripe, intent_id)
    return next(e for e in events if e["type"] == "payment_intent.succeeded")


def test_paying_a_milestone_end_to_end_with_the_events_localstripe_recorded(
    pay: TestClient, cast: Cast, localstripe: LocalstripeServer
) -> None:
    contract = registered(pay, cast, 30_001, 69_999)
    first, second = milestone_ids(contract)

    started = start_payment(pay, cast.enterprise, contract["id"], first)

    assert (started["status"], started["amount_fen"], started["currency"]) == (
        "pending",
        30_001,
        "CNY",
    )
    intent_id = started["stripe_payment_intent_id"]
    assert started["client_secret"].startswith(intent_id)
    # The buyer's browser confirms with the client secret; we learn of it by webhook.
    client_side_gateway(localstripe).confirm(intent_id, VISA)
    assert payment(pay, cast.enterprise, started["id"])["status"] == "pending"

    recorded = localstripe_events_for(localstripe, intent_id)
    succeeded = next(e for e in recorded if e["type"] == "payment_intent.succeeded")
    answer = ok(deliver(pay, succeeded))

    assert answer == {"received": True, "duplicate": False, "outcome": "applied"}
    paid = payment(pay, cast.enterprise, started["id"])
    assert (paid["status"], paid["amount_received_fen"]) == ("paid", 30_001)
    contract_view = view(pay, cast.institute, contract["id"])
    milestones = {m["milestone_id"]: m for m in contract_view["milestones"]}
    assert (milestones[first]["status"], milestones[first]["outstanding_fen"]) == ("paid", 0)
    assert (milestones[second]["status"], milestones[second]["outstanding_fen"]) == (
        "unpaid",
        69_999,
    )
    assert contract_view["totals"]["net_received_fen"] == 30_001
    assert contract_view["outstanding_fen"] == 69_999


def test_the_same_event_delivered_three_times_changes_state_and_totals_once(
    pay: TestClient, cast: Cast, localstripe: LocalstripeServer
) -> None:
    contract = registered(pay, cast, 10_000)
    started = start_payment(pay, cast.enterprise, contract["id"], milestone_ids(contract)[0])
    client_side_gateway(localstripe).confirm(started["stripe_payment_intent_id"], VISA)
    succeeded = succeeded_event(localstripe, started["stripe_payment_intent_id"])

    answers = [ok(deliver(pay, succeeded)) for _ in range(3)]

    assert [a["duplicate"] for a in answers] == [False, True, True]
    # 1.5 % platform fee; no broker on a direct contract.
    assert ledger_rows(pay, cast.bureau, contract["id"]) == [
        ("received", 10_000),
        ("platform_fee", -150),
    ]
    assert view(pay, cast.bureau, contract["id"])["totals"]["net_received_fen"] == 10_000


def test_server_side_confirmation_pays_at_once_and_the_late_webhook_is_stale(
    pay: TestClient, cast: Cast, localstripe: LocalstripeServer
) -> None:
    contract = registered(pay, cast, 12_345)

    paid = start_payment(
        pay,
        cast.enterprise,
        contract["id"],
        milestone_ids(contract)[0],
        confirm_with=VISA,
        amount_fen=12_345,
    )

    assert (paid["status"], paid["amount_received_fen"]) == ("paid", 12_345)
    succeeded = succeeded_event(localstripe, paid["stripe_payment_intent_id"])
    assert ok(deliver(pay, succeeded))["outcome"] == "ignored_stale"
    assert ledger_rows(pay, cast.bureau, contract["id"]) == [
        ("received", 12_345),
        ("platform_fee", -185),
    ]


def test_a_declined_card_leaves_a_failed_payment_that_can_be_retried(
    pay: TestClient, cast: Cast
) -> None:
    contract = registered(pay, cast, 5_000)
    milestone = milestone_ids(contract)[0]

    failed = start_payment(
        pay, cast.enterprise, contract["id"], milestone, confirm_with=DECLINING_CARD
    )

    assert (failed["status"], failed["failure_code"], failed["amount_received_fen"]) == (
        "failed",
        "card_declined",
        0,
    )
    second = pay.post(
        f"/contracts/{contract['id']}/milestones/{milestone}/payments",
        json={},
        headers=cast.enterprise.headers,
    )
    assert (second.status_code, second.json()["code"]) == (409, "payment_in_progress")

    # localstripe 1.15.10 refuses to confirm a declined intent again (real Stripe
    # allows it): the refusal is a 409 and the payment stays as it was.
    retried = pay.post(
        f"/payments/{failed['id']}/confirm",
        json={"confirm_with": VISA},
        headers=cast.enterprise.headers,
    )
    assert (retried.status_code, retried.json()["code"]) == (409, "payment_rejected")
    assert payment(pay, cast.enterprise, failed["id"])["status"] == "failed"

    # So the buyer abandons it and pays with a new intent.
    ok(pay.post(f"/payments/{failed['id']}/cancel", headers=cast.enterprise.headers))
    paid = start_payment(pay, cast.enterprise, contract["id"], milestone, confirm_with=VISA)

    assert (paid["status"], paid["failure_code"], paid["amount_received_fen"]) == (
        "paid",
        None,
        5_000,
    )
    assert view(pay, cast.enterprise, contract["id"])["milestones"][0]["status"] == "paid"


def test_a_paid_milestone_cannot_be_paid_again(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 8_000)
    milestone = milestone_ids(contract)[0]
    start_payment(pay, cast.enterprise, contract["id"], milestone, confirm_with=VISA)

    again = pay.post(
        f"/contracts/{contract['id']}/milestones/{milestone}/payments",
        json={},
        headers=cast.enterprise.headers,
    )

    assert (again.status_code, again.json()["code"]) == (409, "milestone_paid")


def test_a_cancelled_payment_frees_the_milestone_for_a_new_attempt(
    pay: TestClient, cast: Cast
) -> None:
    contract = registered(pay, cast, 4_000)
    milestone = milestone_ids(contract)[0]
    first = start_payment(pay, cast.enterprise, contract["id"], milestone)

    cancelled = ok(pay.post(f"/payments/{first['id']}/cancel", headers=cast.enterprise.headers))
    second = start_payment(pay, cast.enterprise, contract["id"], milestone)

    assert cancelled["status"] == "canceled"
    assert second["id"] != first["id"]
    assert second["stripe_payment_intent_id"] != first["stripe_payment_intent_id"]
    assert view(pay, cast.enterprise, contract["id"])["milestones"][0]["status"] == "pending"


def test_the_amount_must_be_exactly_the_outstanding_amount(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 10_000)

    response = pay.post(
        f"/contracts/{contract['id']}/milestones/{milestone_ids(contract)[0]}/payments",
        json={"amount_fen": 9_999},
        headers=cast.enterprise.headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.amount_fen"
    assert "10000" in response.json()["errors"][0]["message"]


def test_only_a_registered_contract_is_paid(pay: TestClient, cast: Cast) -> None:
    contract = direct_contract(pay, cast.institute, cast.enterprise.organization_id)
    submit(pay, contract["id"], cast.institute)

    response = pay.post(
        f"/contracts/{contract['id']}/milestones/{milestone_ids(contract)[0]}/payments",
        json={},
        headers=cast.enterprise.headers,
    )

    assert (response.status_code, response.json()["code"]) == (409, "contract_not_registered")


def test_an_idempotency_key_replays_the_first_payment(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 6_000)
    path = f"/contracts/{contract['id']}/milestones/{milestone_ids(contract)[0]}/payments"
    headers = {**cast.enterprise.headers, "Idempotency-Key": "pay-first-milestone-1"}

    first = pay.post(path, json={}, headers=headers)
    second = pay.post(path, json={}, headers=headers)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["client_secret"] == first.json()["client_secret"]


def test_the_database_refuses_two_live_payments_of_one_milestone(
    pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 7_000)
    started = start_payment(pay, cast.enterprise, contract["id"], milestone_ids(contract)[0])
    copy = text(
        "INSERT INTO payments (contract_id, milestone_id, purpose, payer_organization_id, "
        "payee_organization_id, amount_fen, currency, capture_method, status, "
        "amount_received_fen, amount_capturable_fen, amount_refunded_fen, idempotency_key, "
        "platform_fee_basis_points, broker_commission_basis_points, stripe_status, "
        "stripe_charge_refunded_fen, created_by_user_id, created_at, updated_at) "
        "SELECT contract_id, milestone_id, purpose, payer_organization_id, "
        "payee_organization_id, amount_fen, currency, capture_method, :status, 0, 0, 0, "
        ":key, 0, 0, stripe_status, 0, created_by_user_id, created_at, updated_at "
        "FROM payments WHERE id = :id"
    )

    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(copy, {"status": "processing", "key": "second", "id": started["id"]})
    # A payment that is over (here: cancelled) does not block the milestone.
    with engine.begin() as connection:
        connection.execute(copy, {"status": "canceled", "key": "third", "id": started["id"]})
