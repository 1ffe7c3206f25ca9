"""Helpers that walk the market over the API: listings, approaches, deals, contracts.

Shared by tests/deals, tests/contracts and tests/stats. Listings are created, submitted
and approved through the listings API, so these tests exercise the real hand-over
between the domains.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from market.common.calendar import market_today
from tests.support.factories import Account, Market

_numbers = itertools.count(1)


@dataclass
class Cast:
    """Who takes part in a typical path from a result to a registered contract."""

    institute: Account  # the seller: holds the result
    enterprise: Account  # the buyer: wants the technology
    broker: Account
    bureau: Account
    outsider: Account  # an unrelated enterprise: must see nothing


def make_cast(market: Market) -> Cast:
    return Cast(
        institute=market.institute_member(district="330212"),  # 鄞州区
        enterprise=market.enterprise_member(district="330205"),  # 江北区
        broker=market.broker(district="330203"),
        bureau=market.bureau_staff(),
        outsider=market.enterprise_member(),
    )


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    """The JSON object of a response that must have `status`."""
    body: dict[str, Any] = _answered(response, status)
    return body


def ok_list(response: Any, status: int = 200) -> list[dict[str, Any]]:
    """The JSON array of objects (a timeline, a ledger) of a response that must have `status`."""
    items: list[dict[str, Any]] = _answered(response, status)
    return items


def _answered(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def publish_result(client: TestClient, owner: Account, bureau: Account) -> int:
    number = next(_numbers)
    body = {
        "title": f"高镍正极材料包覆改性技术 {number}",
        "summary": "一种锂离子电池高镍正极材料的表面包覆改性方法，提高循环稳定性与安全性。",
        "keywords": ["锂电池", "正极材料"],
        "field": "新材料",
        "ip_form": "技术秘密",
        "maturity_stage": "中试",
        "transfer_modes": ["许可", "转让"],
        "price_negotiable": True,
    }
    result_id: int = ok(client.post("/results", json=body, headers=owner.headers), 201)["id"]
    return _publish(client, "results", result_id, owner, bureau)


def publish_demand(client: TestClient, owner: Account, bureau: Account) -> int:
    number = next(_numbers)
    body = {
        "title": f"注塑件表面缩痕缺陷解决方案 {number}",
        "description": "汽车内饰注塑件表面出现缩痕，需要工艺或材料改进方案，"
        "要求良品率提升到98%以上。",
        "keywords": ["注塑", "缩痕"],
        "field": "高端装备",
        "cooperation_modes": ["委托开发", "技术服务"],
        "budget_negotiable": True,
    }
    demand_id: int = ok(client.post("/demands", json=body, headers=owner.headers), 201)["id"]
    return _publish(client, "demands", demand_id, owner, bureau)


def _publish(
    client: TestClient, base: str, listing_id: int, owner: Account, bureau: Account
) -> int:
    ok(client.post(f"/{base}/{listing_id}/submit", headers=owner.headers))
    review = {"decision": "approve"}
    published = ok(client.post(f"/{base}/{listing_id}/review", json=review, headers=bureau.headers))
    assert published["status"] == "published"
    return listing_id


def listing_status(client: TestClient, base: str, listing_id: int, viewer: Account) -> str:
    status: str = ok(client.get(f"/{base}/{listing_id}", headers=viewer.headers))["status"]
    return status


def express_interest(client: TestClient, cast: Cast, result_id: int) -> int:
    body = {"message": "我们希望引进该技术用于动力电池产线"}
    interest = ok(
        client.post(f"/results/{result_id}/interests", json=body, headers=cast.enterprise.headers),
        201,
    )
    interest_id: int = interest["id"]
    return interest_id


STAGES = ("contacted", "negotiating", "signed", "won")


def advance(client: TestClient, deal_id: int, actor: Account, *stages: str) -> dict[str, Any]:
    deal: dict[str, Any] = {}
    for stage in stages:
        deal = ok(
            client.post(f"/deals/{deal_id}/stage", json={"stage": stage}, headers=actor.headers)
        )
        assert deal["stage"] == stage
    return deal


def won_deal(client: TestClient, cast: Cast, result_id: int | None = None) -> dict[str, Any]:
    """A deal the broker opened from an accepted interest and carried to won."""
    result_id = result_id or publish_result(client, cast.institute, cast.bureau)
    interest_id = express_interest(client, cast, result_id)
    ok(client.post(f"/interests/{interest_id}/accept", headers=cast.institute.headers))
    deal = ok(
        client.post(
            "/deals",
            json={"title": "高镍正极技术许可", "interest_id": interest_id},
            headers=cast.broker.headers,
        ),
        201,
    )
    return advance(client, deal["id"], cast.broker, *STAGES)


def contract_terms(
    total_fen: int = 1_000_000_00, costs: tuple[int, ...] = (), **overrides: Any
) -> dict[str, Any]:
    """Valid terms: a licence, costs as given, two milestones adding up to the total."""
    today = market_today()
    first = total_fen // 3
    body: dict[str, Any] = {
        "title": "高镍正极材料包覆改性技术独占许可合同",
        "contract_type": "技术许可",
        "subtype": "技术秘密使用许可",
        "license_scope": "独占",
        "field": "新材料",
        "signed_on": (today - timedelta(days=3)).isoformat(),
        "term_start": today.isoformat(),
        "term_end": date(today.year + 3, 12, 31).isoformat(),
        "total_amount_fen": total_fen,
        "non_technical_costs": [
            {"kind": "equipment", "description": "中试设备", "amount_fen": amount}
            for amount in costs
        ],
        "milestones": [
            {"title": "签约首付款", "due_on": today.isoformat(), "amount_fen": first},
            {
                "title": "验收尾款",
                "due_on": (today + timedelta(days=180)).isoformat(),
                "amount_fen": total_fen - first,
            },
        ],
    }
    body.update(overrides)
    return body


def contract_from_deal(
    client: TestClient, cast: Cast, deal_id: int, **terms: Any
) -> dict[str, Any]:
    body = {**contract_terms(**terms), "deal_id": deal_id}
    return ok(client.post("/contracts", json=body, headers=cast.institute.headers), 201)


def direct_contract(
    client: TestClient, seller: Account, buyer_organization_id: int, **terms: Any
) -> dict[str, Any]:
    body = {**contract_terms(**terms), "buyer_organization_id": buyer_organization_id}
    return ok(client.post("/contracts", json=body, headers=seller.headers), 201)


def submit(client: TestClient, contract_id: int, seller: Account) -> dict[str, Any]:
    return ok(client.post(f"/contracts/{contract_id}/submit", headers=seller.headers))


def register(
    client: TestClient, contract_id: int, bureau: Account, key: str | None = None
) -> dict[str, Any]:
    headers = {**bureau.headers, **({"Idempotency-Key": key} if key else {})}
    return ok(client.post(f"/contracts/{contract_id}/register", headers=headers))


def registered_contract(
    client: TestClient, seller: Account, buyer: Account, bureau: Account, **terms: Any
) -> dict[str, Any]:
    contract = direct_contract(client, seller, buyer.organization_id, **terms)
    submit(client, contract["id"], seller)
    return register(client, contract["id"], bureau)


def summary(client: TestClient, bureau: Account, **params: Any) -> dict[str, Any]:
    return ok(client.get("/stats/summary", params=params, headers=bureau.headers))


def totals(client: TestClient, bureau: Account, **params: Any) -> tuple[int, int, int]:
    """(contract count, 成交额 fen, 技术交易额 fen) of the whole ledger, as of today."""
    body = summary(client, bureau, **params)
    return body["contract_count"], body["total_amount_fen"], body["technology_amount_fen"]
