"""Deposits (holds) with partial capture and release, and refunds, against localstripe."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import Account, Market
from tests.support.journey import Cast, ok
from tests.support.payments import (
    VISA,
    ledger_rows,
    milestone_ids,
    payment,
    registered,
    start_payment,
    view,
)

pytestmark = pytest.mark.stripe


def hold(pay: TestClient, payer: Account, contract_id: int, amount: int) -> dict[str, Any]:
    return ok(
        pay.post(
            f"/contracts/{contract_id}/deposits",
            json={"amount_fen": amount, "note": "履约保证金", "confirm_with": VISA},
            headers=payer.headers,
        ),
        201,
    )


def paid_milestone(pay: TestClient, cast: Cast, amount: int) -> tuple[dict[str, Any], int]:
    contract = registered(pay, cast, amount)
    paid = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    return contract, paid["id"]


def refund(
    pay: TestClient, actor: Account, payment_id: int, amount: int, reason: str = "部分验收不合格"
) -> Any:
    return pay.post(
        f"/payments/{payment_id}/refunds",
        json={"amount_fen": amount, "reason": reason},
        headers=actor.headers,
    )


# --- deposits -----------------------------------------------------------------------------


def test_a_deposit_is_held_then_captured_in_part_by_the_payee(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 50_000)
    deposit = hold(pay, cast.enterprise, contract["id"], 10_000)
    assert (deposit["purpose"], deposit["status"], deposit["capture_method"]) == (
        "deposit",
        "held",
        "manual",
    )
    assert (deposit["amount_capturable_fen"], deposit["amount_received_fen"]) == (10_000, 0)
    assert deposit["payee_organization_id"] == cast.institute.organization_id

    by_payer = pay.post(
        f"/payments/{deposit['id']}/capture",
        json={"amount_fen": 6_000},
        headers=cast.enterprise.headers,
    )
    assert by_payer.status_code == 403
    captured = ok(
        pay.post(
            f"/payments/{deposit['id']}/capture",
            json={"amount_fen": 6_000},
            headers=cast.institute.headers,
        )
    )

    assert (captured["status"], captured["amount_received_fen"]) == ("captured", 6_000)
    assert captured["amount_capturable_fen"] == 0
    # A deposit is money received, but not 到账额 of the contract and not charged a fee.
    assert ledger_rows(pay, cast.bureau, contract["id"]) == [("received", 6_000)]
    assert view(pay, cast.bureau, contract["id"])["totals"]["net_received_fen"] == 0


def test_capturing_more_than_the_hold_is_refused(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 50_000)
    deposit = hold(pay, cast.enterprise, contract["id"], 3_000)

    response = pay.post(
        f"/payments/{deposit['id']}/capture",
        json={"amount_fen": 3_001},
        headers=cast.bureau.headers,
    )

    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "body.amount_fen")
    assert payment(pay, cast.bureau, deposit["id"])["status"] == "held"


def test_a_released_deposit_cannot_be_captured(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 50_000)
    deposit = hold(pay, cast.institute, contract["id"], 2_000)  # the seller's guarantee

    released = ok(pay.post(f"/payments/{deposit['id']}/release", headers=cast.bureau.headers))
    capture = pay.post(
        f"/payments/{deposit['id']}/capture", json={}, headers=cast.enterprise.headers
    )

    assert (released["status"], released["amount_received_fen"]) == ("released", 0)
    assert (capture.status_code, capture.json()["code"]) == (409, "invalid_transition")
    assert ledger_rows(pay, cast.bureau, contract["id"]) == []


def test_the_payer_cannot_release_its_own_deposit(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 50_000)
    deposit = hold(pay, cast.enterprise, contract["id"], 2_000)

    response = pay.post(f"/payments/{deposit['id']}/release", headers=cast.enterprise.headers)

    assert response.status_code == 403
    assert payment(pay, cast.enterprise, deposit["id"])["status"] == "held"


def test_a_full_capture_without_an_amount_takes_the_whole_hold(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 50_000)
    deposit = hold(pay, cast.enterprise, contract["id"], 4_321)

    captured = ok(pay.post(f"/payments/{deposit['id']}/capture", headers=cast.institute.headers))

    assert (captured["status"], captured["amount_received_fen"]) == ("captured", 4_321)


# --- refunds ------------------------------------------------------------------------------


def test_partial_then_full_refund_by_the_seller_and_the_bureau(pay: TestClient, cast: Cast) -> None:
    contract, payment_id = paid_milestone(pay, cast, 10_001)

    first = ok(refund(pay, cast.institute, payment_id, 3_333), 201)
    assert (first["status"], first["amount_refunded_fen"]) == ("refunded_partially", 3_333)
    assert first["refunds"][0]["reason"] == "部分验收不合格"
    assert first["refunds"][0]["requested_by_user_id"] == cast.institute.user_id
    milestone = view(pay, cast.enterprise, contract["id"])["milestones"][0]
    assert (milestone["received_fen"], milestone["refunded_fen"], milestone["outstanding_fen"]) == (
        10_001,
        3_333,
        3_333,
    )
    assert milestone["status"] == "partially_paid"

    second = ok(refund(pay, cast.bureau, payment_id, 6_668, "合同解除"), 201)

    assert (second["status"], second["amount_refunded_fen"]) == ("refunded", 10_001)
    totals = view(pay, cast.bureau, contract["id"])["totals"]
    assert (totals["received_fen"], totals["refunded_fen"], totals["net_received_fen"]) == (
        10_001,
        10_001,
        0,
    )
    # 1.5 % of 10 001 is 150.015 → 150; of 6 668 net it is 100.02 → 100; of 0 it is 0.
    assert ledger_rows(pay, cast.bureau, contract["id"]) == [
        ("received", 10_001),
        ("platform_fee", -150),
        ("refund", -3_333),
        ("platform_fee", 50),
        ("refund", -6_668),
        ("platform_fee", 100),
    ]
    assert totals["platform_fee_fen"] == 0


def test_never_more_than_received_minus_refunded(pay: TestClient, cast: Cast) -> None:
    _, payment_id = paid_milestone(pay, cast, 5_000)
    ok(refund(pay, cast.institute, payment_id, 4_000), 201)

    too_much = refund(pay, cast.institute, payment_id, 1_001)

    assert too_much.status_code == 422
    assert too_much.json()["errors"][0]["code"] == "above_refundable"
    assert payment(pay, cast.institute, payment_id)["amount_refunded_fen"] == 4_000


def test_an_unpaid_payment_has_nothing_to_refund(pay: TestClient, cast: Cast) -> None:
    contract = registered(pay, cast, 5_000)
    pending = start_payment(pay, cast.enterprise, contract["id"], milestone_ids(contract)[0])

    response = refund(pay, cast.bureau, pending["id"], 1)

    assert response.status_code == 422


def test_a_refund_with_the_same_idempotency_key_happens_once(pay: TestClient, cast: Cast) -> None:
    _, payment_id = paid_milestone(pay, cast, 9_000)
    headers = {**cast.institute.headers, "Idempotency-Key": "refund-once"}
    body = {"amount_fen": 1_000, "reason": "多付"}

    first = pay.post(f"/payments/{payment_id}/refunds", json=body, headers=headers)
    second = pay.post(f"/payments/{payment_id}/refunds", json=body, headers=headers)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["amount_refunded_fen"] == 1_000
    assert len(second.json()["refunds"]) == 1


def test_a_refund_key_belongs_to_its_caller_and_its_body(
    pay: TestClient, cast: Cast, market: Market
) -> None:
    _, payment_id = paid_milestone(pay, cast, 9_000)
    colleague = market.account(cast.institute.organization_id)
    path, body = f"/payments/{payment_id}/refunds", {"amount_fen": 1_000, "reason": "多付"}

    first = pay.post(path, json=body, headers={**cast.institute.headers, "Idempotency-Key": "k"})
    theirs = pay.post(path, json=body, headers={**colleague.headers, "Idempotency-Key": "k"})
    other_body = pay.post(
        path,
        json={**body, "amount_fen": 2_000},
        headers={**cast.institute.headers, "Idempotency-Key": "k"},
    )
    again = pay.post(path, json=body, headers={**cast.institute.headers, "Idempotency-Key": "k"})

    assert (first.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert len(theirs.json()["refunds"]) == 2
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0] == {
        "field": "header.Idempotency-Key",
        "message": "this key was used for a different request",
        "code": "idempotency_key_reused",
    }
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert again.json() == first.json()


def test_a_refunded_part_can_be_paid_again(pay: TestClient, cast: Cast) -> None:
    contract, payment_id = paid_milestone(pay, cast, 7_000)
    ok(refund(pay, cast.institute, payment_id, 2_500), 201)

    again = start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )

    assert (again["amount_fen"], again["status"]) == (2_500, "paid")
    milestone = view(pay, cast.enterprise, contract["id"])["milestones"][0]
    assert (milestone["outstanding_fen"], milestone["status"]) == (0, "paid")
