"""Fees and commission to the fen, payouts, 到账额 statistics, who may see and do what,
and payments switched off without Stripe settings."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from market.common.calendar import market_today
from market.payments.ledger import fee_due
from tests.support.journey import (
    Cast,
    contract_from_deal,
    ok,
    register,
    submit,
    won_deal,
)
from tests.support.localstripe_server import TEST_SECRET_KEY
from tests.support.payments import (
    VISA,
    WEBHOOK_SECRET,
    deliver,
    event,
    intent_object,
    ledger_rows,
    milestone_ids,
    registered,
    start_payment,
    view,
)

# --- the fee rule (no server needed) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("net", "basis_points", "fee"),
    [
        (10_000, 150, 150),
        (10_001, 150, 150),  # 150.015 → 150
        (10_034, 150, 151),  # 150.51 → 151
        (10_033, 150, 150),  # 150.495 → 150
        (100, 50, 1),  # 0.5 → 1: half up
        (99, 50, 0),  # 0.495 → 0
        (0, 250, 0),
        (123_456_789_012, 250, 3_086_419_725),  # 3 086 419 725.3 → exact in integers
        (5_000, 0, 0),
        (5_000, 10_000, 5_000),
    ],
)
def test_fees_round_half_up_to_the_fen(net: int, basis_points: int, fee: int) -> None:
    assert fee_due(net, basis_points) == fee


def test_fees_refuse_negative_amounts() -> None:
    with pytest.raises(ValueError):
        fee_due(-1, 100)


# --- against localstripe ----------------------------------------------------------------------


def brokered_contract(pay: TestClient, cast: Cast, amounts: tuple[int, ...]) -> dict[str, Any]:
    deal = won_deal(pay, cast)
    schedule = [
        {"title": f"第{n}期", "due_on": "2027-01-01", "amount_fen": amount}
        for n, amount in enumerate(amounts, start=1)
    ]
    contract = contract_from_deal(
        pay, cast, deal["id"], total_fen=sum(amounts), milestones=schedule
    )
    submit(pay, contract["id"], cast.institute)
    return register(pay, contract["id"], cast.bureau)


@pytest.mark.stripe
def test_a_brokered_payment_records_fee_and_commission_to_the_fen(
    pay: TestClient, cast: Cast
) -> None:
    contract = brokered_contract(pay, cast, (1_234_567, 100))
    assert contract["broker_organization_id"] == cast.broker.organization_id

    start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )

    # 1.5 % of 12 345.67 yuan = 18 518.505 fen → 18 519; 2.5 % = 30 864.175 → 30 864.
    assert ledger_rows(pay, cast.broker, contract["id"]) == [
        ("received", 1_234_567),
        ("platform_fee", -18_519),
        ("broker_commission", -30_864),
    ]
    totals = view(pay, cast.broker, contract["id"])["totals"]
    assert totals == {
        "received_fen": 1_234_567,
        "refunded_fen": 0,
        "net_received_fen": 1_234_567,
        "platform_fee_fen": 18_519,
        "broker_commission_fen": 30_864,
        "payouts_fen": 0,
        "payable_to_seller_fen": 1_234_567 - 18_519 - 30_864,
        "currency": "CNY",
    }


@pytest.mark.stripe
def test_payouts_are_recorded_by_the_bureau_up_to_what_is_payable(
    pay: TestClient, cast: Cast
) -> None:
    contract = registered(pay, cast, 20_000)
    start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )
    payable = 20_000 - 300
    path = f"/contracts/{contract['id']}/payouts"
    reference = "宁波银行 转账 20261122-001"
    body = {"amount_fen": 15_000, "reference": reference, "paid_on": "2026-11-20"}

    by_seller = pay.post(path, json=body, headers=cast.institute.headers)
    recorded = ok(pay.post(path, json=body, headers=cast.bureau.headers), 201)
    too_much = pay.post(
        path, json=body | {"amount_fen": payable - 15_000 + 1}, headers=cast.bureau.headers
    )

    assert by_seller.status_code == 403
    assert (recorded["kind"], recorded["amount_fen"], recorded["effective_on"]) == (
        "payout_recorded",
        -15_000,
        "2026-11-20",
    )
    assert recorded["reference"] == "宁波银行 转账 20261122-001"
    assert (too_much.status_code, too_much.json()["errors"][0]["code"]) == (422, "above_payable")
    totals = view(pay, cast.institute, contract["id"])["totals"]
    assert (totals["payouts_fen"], totals["payable_to_seller_fen"]) == (15_000, payable - 15_000)


@pytest.mark.stripe
def test_payment_statistics_show_net_receipts_next_to_the_trade_volume(
    pay: TestClient, cast: Cast
) -> None:
    first = registered(pay, cast, 10_000, 5_000)
    second = registered(pay, cast, 40_000)
    start_payment(pay, cast.enterprise, first["id"], milestone_ids(first)[0], confirm_with=VISA)
    paid = start_payment(
        pay, cast.enterprise, second["id"], milestone_ids(second)[0], confirm_with=VISA
    )
    ok(
        pay.post(
            f"/payments/{paid['id']}/refunds",
            json={"amount_fen": 1_000, "reason": "多付"},
            headers=cast.bureau.headers,
        ),
        201,
    )
    today = market_today()

    report = ok(
        pay.get("/stats/payments", params={"year": today.year}, headers=cast.bureau.headers)
    )
    refused = pay.get("/stats/payments", headers=cast.enterprise.headers)

    assert (report["total_amount_fen"], report["technology_amount_fen"]) == (55_000, 55_000)
    assert report["rows"] == [
        {
            "period": f"{today.year}-{today.month:02d}",
            "received_fen": 50_000,
            "refunded_fen": 1_000,
            "net_received_fen": 49_000,
            "platform_fee_fen": 150 + 585,
            "broker_commission_fen": 0,
            "payouts_fen": 0,
        }
    ]
    assert report["totals"]["net_received_fen"] == 49_000
    assert refused.status_code == 403


# --- who may see and do what ------------------------------------------------------------------


@pytest.mark.stripe
def test_permission_matrix(pay: TestClient, cast: Cast) -> None:
    contract = brokered_contract(pay, cast, (10_000, 20_000))
    first, second = milestone_ids(contract)
    path = f"/contracts/{contract['id']}/milestones/{second}/payments"

    # Only the buyer pays: the seller and the broker get 403, an outsider 404.
    assert pay.post(path, json={}, headers=cast.institute.headers).status_code == 403
    assert pay.post(path, json={}, headers=cast.broker.headers).status_code == 403
    assert pay.post(path, json={}, headers=cast.outsider.headers).status_code == 404
    assert pay.post(path, json={}, headers=cast.bureau.headers).status_code == 403
    paid = start_payment(pay, cast.enterprise, contract["id"], first, confirm_with=VISA)

    # Parties, broker and bureau see the payments; an outsider sees nothing.
    for viewer in (cast.enterprise, cast.institute, cast.broker, cast.bureau):
        assert view(pay, viewer, contract["id"])["totals"]["received_fen"] == 10_000
        assert ok(pay.get(f"/payments/{paid['id']}", headers=viewer.headers))["id"] == paid["id"]
    for outsider_path in (
        f"/contracts/{contract['id']}/payments",
        f"/payments/{paid['id']}",
        f"/contracts/{contract['id']}/payment-ledger",
    ):
        assert pay.get(outsider_path, headers=cast.outsider.headers).status_code == 404

    # Refunds: not the buyer, not the broker; an outsider does not even see the payment.
    refund = {"amount_fen": 100, "reason": "测试"}
    refund_path = f"/payments/{paid['id']}/refunds"
    assert pay.post(refund_path, json=refund, headers=cast.enterprise.headers).status_code == 403
    assert pay.post(refund_path, json=refund, headers=cast.broker.headers).status_code == 403
    assert pay.post(refund_path, json=refund, headers=cast.outsider.headers).status_code == 404
    for action in ("capture", "release", "cancel"):
        response = pay.post(f"/payments/{paid['id']}/{action}", headers=cast.outsider.headers)
        assert response.status_code == 404, action

    # Payouts and statistics: bureau staff only.
    payout = {"amount_fen": 1, "reference": "x", "paid_on": "2026-11-20"}
    for actor in (cast.enterprise, cast.institute, cast.broker, cast.outsider):
        response = pay.post(
            f"/contracts/{contract['id']}/payouts", json=payout, headers=actor.headers
        )
        assert response.status_code in (403, 404)
    assert pay.get(f"/payments/{paid['id']}").status_code == 401


# --- switched off, and the secret key ---------------------------------------------------------


def test_without_stripe_settings_payment_endpoints_are_503_and_the_rest_works(
    client: TestClient, cast: Cast
) -> None:
    contract = registered(client, cast, 10_000)
    milestone = milestone_ids(contract)[0]

    paying = client.post(
        f"/contracts/{contract['id']}/milestones/{milestone}/payments",
        json={},
        headers=cast.enterprise.headers,
    )
    webhook = deliver(
        client,
        event(
            "payment_intent.succeeded", intent_object("pi_1", "succeeded", 1), event_id="evt_off"
        ),
    )

    assert paying.status_code == 503
    assert paying.headers["content-type"] == "application/problem+json"
    assert paying.json()["code"] == "payments_unavailable"
    assert "not configured" in paying.json()["detail"]
    assert (webhook.status_code, webhook.json()["code"]) == (503, "payments_unavailable")
    # Reading works: nothing paid yet, and the contract itself is there.
    assert view(client, cast.enterprise, contract["id"])["outstanding_fen"] == 10_000
    assert ok(client.get(f"/contracts/{contract['id']}", headers=cast.enterprise.headers))


@pytest.mark.stripe
def test_the_secret_key_appears_in_no_response_and_no_log(
    pay: TestClient, cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    contract = registered(pay, cast, 10_000, 2_000)
    first, second = milestone_ids(contract)

    responses = [
        pay.post(
            f"/contracts/{contract['id']}/milestones/{first}/payments",
            json={"confirm_with": VISA},
            headers=cast.enterprise.headers,
        ),
        pay.post(
            f"/contracts/{contract['id']}/milestones/{second}/payments",
            json={"confirm_with": "pm_card_chargeCustomerFail"},
            headers=cast.enterprise.headers,
        ),
        pay.get(f"/contracts/{contract['id']}/payments", headers=cast.bureau.headers),
        deliver(
            pay,
            event(
                "payment_intent.succeeded", intent_object("pi_1", "succeeded", 1), event_id="evt_x"
            ),
            secret="whsec_wrong",
        ),
        pay.get("/openapi.json"),
    ]

    assert [r.status_code for r in responses] == [201, 201, 200, 400, 200]
    for response in responses:
        assert TEST_SECRET_KEY not in response.text
        assert WEBHOOK_SECRET not in response.text
    assert caplog.records, "expected the stripe SDK and our code to log something"
    assert TEST_SECRET_KEY not in caplog.text
    assert WEBHOOK_SECRET not in caplog.text


@pytest.mark.stripe
def test_a_provider_failure_is_a_503_without_the_key(
    pay_app: Any, cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient as Client

    from market.app import create_app

    key = "sk_test_refused_by_a_closed_port_0123456789"
    settings = pay_app.state.settings.model_copy(
        update={
            "stripe_secret_key": key,
            "stripe_api_base": "http://127.0.0.1:9",
        }
    )
    broken = Client(create_app(settings, pay_app.state.engine))
    contract = registered(broken, cast, 10_000)
    caplog.set_level(logging.DEBUG)

    response = broken.post(
        f"/contracts/{contract['id']}/milestones/{milestone_ids(contract)[0]}/payments",
        json={},
        headers=cast.enterprise.headers,
    )

    assert (response.status_code, response.json()["code"]) == (503, "payment_provider_unavailable")
    assert key not in response.text and key not in caplog.text
    # Nothing was kept: the milestone is still unpaid and free.
    assert view(broken, cast.enterprise, contract["id"])["payments"] == []


@pytest.mark.stripe
def test_ledger_rows_cannot_be_rewritten(pay: TestClient, cast: Cast, engine: Engine) -> None:
    contract = registered(pay, cast, 10_000)
    start_payment(
        pay, cast.enterprise, contract["id"], milestone_ids(contract)[0], confirm_with=VISA
    )

    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("UPDATE payment_ledger SET amount_fen = 0"))

    assert ledger_rows(pay, cast.bureau, contract["id"])[0] == ("received", 10_000)


def test_an_organisation_that_lost_its_verification_neither_pays_nor_posts_a_deposit(
    pay: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = registered(pay, cast, 8_000)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE organizations SET verification_status = 'pending' WHERE id = :id"),
            {"id": cast.enterprise.organization_id},
        )

    payment = pay.post(
        f"/contracts/{contract['id']}/milestones/{milestone_ids(contract)[0]}/payments",
        json={},
        headers=cast.enterprise.headers,
    )
    deposit = pay.post(
        f"/contracts/{contract['id']}/deposits",
        json={"amount_fen": 1_000, "note": "保证金"},
        headers=cast.institute.headers,
    )

    for response in (payment, deposit):
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "party_not_verified"
        assert response.json()["errors"][0]["field"] == "buyer_organization_id"
    assert (
        ok(pay.get(f"/contracts/{contract['id']}/payments", headers=cast.bureau.headers))[
            "payments"
        ]
        == []
    )
