"""The whole path over the API, checking the statistics to the fen after each step:
interest → deal → stages → contract → 补正 → registration → change → cancellation."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from market.common.calendar import market_today
from tests.support.journey import (
    STAGES,
    Cast,
    advance,
    contract_terms,
    express_interest,
    listing_status,
    ok,
    publish_result,
    totals,
)

NOTHING = (0, 0, 0)


def listed(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def breakdown(client: TestClient, cast: Cast, dimension: str) -> dict[str, tuple[int, int, int]]:
    body = ok(client.get(f"/stats/breakdown/{dimension}", headers=cast.bureau.headers))
    return {
        row["key"]: (row["contract_count"], row["total_amount_fen"], row["technology_amount_fen"])
        for row in body["rows"]
    }


def test_from_interest_to_cancelled_registration(client: TestClient, cast: Cast) -> None:
    year = market_today().year
    yesterday = (market_today() - timedelta(days=1)).isoformat()

    # An enterprise is interested in a published result; the institute accepts.
    result_id = publish_result(client, cast.institute, cast.bureau)
    interest_id = express_interest(client, cast, result_id)
    accepted = ok(client.post(f"/interests/{interest_id}/accept", headers=cast.institute.headers))
    assert accepted["status"] == "accepted" and accepted["responded_at"] is not None
    assert totals(client, cast.bureau) == NOTHING

    # The broker opens a deal from it: the result is now in negotiation.
    deal = ok(
        client.post(
            "/deals",
            json={"title": "正极材料技术许可", "interest_id": interest_id},
            headers=cast.broker.headers,
        ),
        201,
    )
    assert (deal["seller_organization_id"], deal["buyer_organization_id"]) == (
        cast.institute.organization_id,
        cast.enterprise.organization_id,
    )
    assert deal["broker_organization_id"] == cast.broker.organization_id
    assert listing_status(client, "results", result_id, cast.outsider) == "in_negotiation"

    # Through the stages, with a note on the way.
    advance(client, deal["id"], cast.broker, "contacted", "negotiating")
    ok(
        client.post(
            f"/deals/{deal['id']}/notes",
            json={"note": "双方就许可费达成一致"},
            headers=cast.enterprise.headers,
        ),
        201,
    )
    advance(client, deal["id"], cast.institute, *STAGES[2:])
    timeline = listed(client.get(f"/deals/{deal['id']}/events", headers=cast.bureau.headers))
    assert [(event["from_stage"], event["to_stage"]) for event in timeline] == [
        (None, "lead"),
        ("lead", "contacted"),
        ("contacted", "negotiating"),
        (None, None),
        ("negotiating", "signed"),
        ("signed", "won"),
    ]
    assert totals(client, cast.bureau) == NOTHING

    # The seller enters the contract: 成交额 ¥1,000,000.00 with ¥150,000.00 of equipment.
    body = {**contract_terms(100_000_000, costs=(15_000_000,)), "deal_id": deal["id"]}
    contract = ok(client.post("/contracts", json=body, headers=cast.institute.headers), 201)
    contract_id = contract["id"]
    assert contract["technology_amount_fen"] == 85_000_000
    assert contract["broker_organization_id"] == cast.broker.organization_id
    ok(client.post(f"/contracts/{contract_id}/submit", headers=cast.institute.headers))
    assert totals(client, cast.bureau) == NOTHING

    # 补正: the bureau asks for the equipment invoice; the seller corrects and resubmits.
    asked = ok(
        client.post(
            f"/contracts/{contract_id}/request-correction",
            json={"reason": "请补充设备采购发票"},
            headers=cast.bureau.headers,
        )
    )
    assert asked["status"] == "needs_correction" and asked["status_reason"] == "请补充设备采购发票"
    corrected = contract_terms(100_000_000, costs=(12_000_000, 3_000_001))
    edited = ok(
        client.put(f"/contracts/{contract_id}", json=corrected, headers=cast.institute.headers)
    )
    assert edited["technology_amount_fen"] == 84_999_999
    ok(client.post(f"/contracts/{contract_id}/submit", headers=cast.institute.headers))
    assert totals(client, cast.bureau) == NOTHING

    # Registration: a number, a ledger entry, the result transacted, the volume counted.
    registered = ok(client.post(f"/contracts/{contract_id}/register", headers=cast.bureau.headers))
    assert registered["status"] == "registered"
    assert re.fullmatch(rf"3302{year}\d{{6}}", registered["registration_number"])
    assert listing_status(client, "results", result_id, cast.outsider) == "transacted"
    assert totals(client, cast.bureau) == (1, 100_000_000, 84_999_999)
    assert totals(client, cast.bureau, as_of=yesterday) == NOTHING
    assert breakdown(client, cast, "seller_district") == {"330212": (1, 100_000_000, 84_999_999)}
    assert breakdown(client, cast, "buyer_district") == {"330205": (1, 100_000_000, 84_999_999)}
    assert breakdown(client, cast, "broker") == {
        str(cast.broker.organization_id): (1, 100_000_000, 84_999_999)
    }
    assert breakdown(client, cast, "contract_type") == {"技术许可": (1, 100_000_000, 84_999_999)}

    # A change of the amounts: the ledger adds the difference.
    change = {
        **{
            k: v
            for k, v in contract_terms(120_000_050, costs=(20_000_000,)).items()
            if k in ("total_amount_fen", "non_technical_costs", "milestones")
        },
        "reason": "补充协议增加培训服务费",
    }
    changed = ok(
        client.post(f"/contracts/{contract_id}/change", json=change, headers=cast.bureau.headers)
    )
    assert changed["status"] == "registered"
    assert changed["technology_amount_fen"] == 100_000_050
    assert totals(client, cast.bureau) == (1, 120_000_050, 100_000_050)
    assert breakdown(client, cast, "year") == {str(year): (1, 120_000_050, 100_000_050)}

    # Cancellation reverses everything the contract counted.
    cancelled = ok(
        client.post(
            f"/contracts/{contract_id}/cancel",
            json={"reason": "合同双方解除合同"},
            headers=cast.bureau.headers,
        )
    )
    assert cancelled["status"] == "cancelled"
    assert totals(client, cast.bureau) == NOTHING
    assert breakdown(client, cast, "field") == {}
    entries = listed(client.get(f"/contracts/{contract_id}/ledger", headers=cast.institute.headers))
    assert [
        (e["kind"], e["delta_total_fen"], e["delta_technology_fen"], e["delta_count"])
        for e in entries
    ] == [
        ("registration", 100_000_000, 84_999_999, 1),
        ("change", 20_000_050, 15_000_051, 0),
        ("cancellation", -120_000_050, -100_000_050, -1),
    ]
