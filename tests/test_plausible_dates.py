"""Request dates are bounded to 1980-01-01 .. 2100-12-31: the calendar's extremes are
typing mistakes or overflow probes, and each is a 422 naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from market.payments.schemas import PayoutCreate
from tests.support.factories import Market
from tests.support.journey import contract_terms

EXTREMES = ("0001-01-01", "9999-12-31", "1979-12-31", "2101-01-01")


def _problem_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize("day", EXTREMES)
@pytest.mark.parametrize("field", ["signed_on", "term_start", "term_end"])
def test_contract_dates_out_of_range_are_422(
    client: TestClient, market: Market, field: str, day: str
) -> None:
    seller, buyer = market.institute_member(), market.enterprise_member()
    terms: dict[str, Any] = {field: day}
    body = {**contract_terms(**terms), "buyer_organization_id": buyer.organization_id}

    response = client.post("/contracts", json=body, headers=seller.headers)

    assert _problem_fields(response) == [f"body.{field}"]
    assert response.json()["errors"][0]["code"] == "date_out_of_range"


def test_a_milestone_due_in_year_9999_is_422(client: TestClient, market: Market) -> None:
    seller, buyer = market.institute_member(), market.enterprise_member()
    terms = contract_terms()
    terms["milestones"][1]["due_on"] = "9999-12-31"
    body = {**terms, "buyer_organization_id": buyer.organization_id}

    response = client.post("/contracts", json=body, headers=seller.headers)

    assert _problem_fields(response) == ["body.milestones.1.due_on"]


def test_the_range_itself_is_accepted(client: TestClient, market: Market) -> None:
    seller, buyer = market.institute_member(), market.enterprise_member()
    body = {
        **contract_terms(signed_on="1980-01-01", term_end="2100-12-31"),
        "buyer_organization_id": buyer.organization_id,
    }

    response = client.post("/contracts", json=body, headers=seller.headers)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("field", ["deadline", "valid_until"])
def test_demand_dates_out_of_range_are_422(client: TestClient, market: Market, field: str) -> None:
    owner = market.enterprise_member()
    body = {
        "title": "注塑件表面缩痕缺陷解决方案",
        "description": "汽车内饰注塑件表面出现缩痕，需要工艺或材料改进方案，要求良品率提升。",
        "keywords": ["注塑"],
        "field": "高端装备",
        "cooperation_modes": ["技术服务"],
        "budget_negotiable": True,
        field: "0001-01-01",
    }

    response = client.post("/demands", json=body, headers=owner.headers)

    assert _problem_fields(response) == [f"body.{field}"]


def test_a_browse_filter_date_out_of_range_is_422(client: TestClient) -> None:
    response = client.get("/demands", params={"deadline_before": "9999-12-31"})

    assert _problem_fields(response) == ["query.deadline_before"]


def test_a_payout_dated_year_one_is_refused() -> None:
    # The payout endpoint answers 503 before reading its body when Stripe is not
    # configured, so the schema is checked on its own here.
    with pytest.raises(ValidationError) as refused:
        PayoutCreate.model_validate(
            {"amount_fen": 100, "reference": "银行回单 001", "paid_on": "0001-01-01"}
        )
    assert [error["loc"] for error in refused.value.errors()] == [("paid_on",)]
