"""Statistics for the bureau: breakdowns, CSV, targets and progress, permissions."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from market.common.calendar import market_today
from market.stats.service import months_remaining, yuan
from tests.support.factories import Market
from tests.support.journey import Cast, contract_terms, ok, registered_contract, won_deal

ENDPOINTS = (
    "/stats/summary",
    "/stats/breakdown/year",
    "/stats/breakdown/field?format=csv",
    "/stats/targets",
    "/stats/progress/2020",
)


def test_only_bureau_staff_see_statistics(client: TestClient, cast: Cast) -> None:
    for path in ENDPOINTS:
        assert client.get(path).status_code == 401, path
        for actor in (cast.institute, cast.enterprise, cast.broker):
            assert client.get(path, headers=actor.headers).status_code == 403, path
    assert (
        client.put(
            "/stats/targets/2026", json={"technology_amount_fen": 1}, headers=cast.broker.headers
        ).status_code
        == 403
    )


def test_every_breakdown_to_the_fen(client: TestClient, cast: Cast, market: Market) -> None:
    registered_contract(
        client, cast.institute, cast.enterprise, cast.bureau, total_fen=30_000_001, costs=(1,)
    )
    university = market.university_member(district="330206")
    registered_contract(
        client,
        university,
        cast.enterprise,
        cast.bureau,
        total_fen=7_000_000,
        contract_type="技术服务",
        subtype=None,
        license_scope=None,
        field="智能经济",
    )
    today = market_today()
    quarter = (today.month - 1) // 3 + 1
    both = (2, 37_000_001, 37_000_000)
    expected = {
        "year": {str(today.year): both},
        "quarter": {f"{today.year}-Q{quarter}": both},
        "month": {f"{today.year}-{today.month:02d}": both},
        "contract_type": {
            "技术许可": (1, 30_000_001, 30_000_000),
            "技术服务": (1, 7_000_000, 7_000_000),
        },
        "field": {"新材料": (1, 30_000_001, 30_000_000), "智能经济": (1, 7_000_000, 7_000_000)},
        "seller_district": {
            "330212": (1, 30_000_001, 30_000_000),
            "330206": (1, 7_000_000, 7_000_000),
        },
        "buyer_district": {"330205": both},
        "seller_kind": {
            "institute": (1, 30_000_001, 30_000_000),
            "university": (1, 7_000_000, 7_000_000),
        },
        "buyer_kind": {"enterprise": both},
        "broker": {"": both},
    }
    for dimension, rows in expected.items():
        body = ok(client.get(f"/stats/breakdown/{dimension}", headers=cast.bureau.headers))
        got = {
            row["key"]: (
                row["contract_count"],
                row["total_amount_fen"],
                row["technology_amount_fen"],
            )
            for row in body["rows"]
        }
        assert got == rows, dimension
        assert (body["totals"]["contract_count"], body["totals"]["total_amount_fen"]) == both[:2]
    labels = {
        row["key"]: row["label"]
        for row in ok(client.get("/stats/breakdown/seller_district", headers=cast.bureau.headers))[
            "rows"
        ]
    }
    assert labels == {"330212": "鄞州区", "330206": "北仑区"}
    other_year = ok(
        client.get(
            "/stats/breakdown/field", params={"year": today.year - 1}, headers=cast.bureau.headers
        )
    )
    assert other_year["rows"] == [] and other_year["totals"]["contract_count"] == 0
    bad = client.get("/stats/breakdown/colour", headers=cast.bureau.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.dimension"


def test_the_broker_breakdown_credits_the_introducing_agency(
    client: TestClient, cast: Cast
) -> None:
    deal = won_deal(client, cast)
    body = {**contract_terms(total_fen=5_000_000), "deal_id": deal["id"]}
    contract = ok(client.post("/contracts", json=body, headers=cast.institute.headers), 201)
    ok(client.post(f"/contracts/{contract['id']}/submit", headers=cast.institute.headers))
    ok(client.post(f"/contracts/{contract['id']}/register", headers=cast.bureau.headers))
    rows = ok(client.get("/stats/breakdown/broker", headers=cast.bureau.headers))["rows"]
    assert [(row["key"], row["technology_amount_fen"]) for row in rows] == [
        (str(cast.broker.organization_id), 5_000_000)
    ]
    assert rows[0]["label"].startswith("测试broker_agency")


def test_csv_export_with_chinese_headers(client: TestClient, cast: Cast) -> None:
    registered_contract(
        client, cast.institute, cast.enterprise, cast.bureau, total_fen=12_345_678, costs=(45_678,)
    )
    response = client.get(
        "/stats/breakdown/field",
        params={"format": "csv", "headers": "zh"},
        headers=cast.bureau.headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "代码",
        "名称",
        "合同数",
        "成交额(分)",
        "技术交易额(分)",
        "成交额(元)",
        "技术交易额(元)",
    ]
    assert rows[1] == ["新材料", "新材料", "1", "12345678", "12300000", "123456.78", "123000.00"]
    assert rows[2][1] == "合计" and rows[2][4] == "12300000"
    english = client.get(
        "/stats/breakdown/year", params={"format": "csv"}, headers=cast.bureau.headers
    ).content.decode("utf-8")
    assert english.lstrip("\ufeff").startswith("key,label,contract_count,total_amount_fen")
    bad = client.get(
        "/stats/breakdown/year", params={"format": "xlsx"}, headers=cast.bureau.headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.format"


def test_as_of_a_past_day_shows_the_ledger_as_it_was(client: TestClient, cast: Cast) -> None:
    registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    yesterday = market_today() - timedelta(days=1)
    then = ok(
        client.get(
            "/stats/summary", params={"as_of": yesterday.isoformat()}, headers=cast.bureau.headers
        )
    )
    now = ok(client.get("/stats/summary", headers=cast.bureau.headers))
    assert (then["contract_count"], then["technology_amount_fen"]) == (0, 0)
    assert (now["contract_count"], now["technology_amount_fen"]) == (1, 100_000_000)
    bad = client.get("/stats/summary", params={"as_of": "yesterday"}, headers=cast.bureau.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.as_of"


def test_progress_against_this_years_target(client: TestClient, cast: Cast) -> None:
    today = market_today()
    target = ok(
        client.put(
            f"/stats/targets/{today.year}",
            json={"technology_amount_fen": 1_000_000_000, "note": "年度目标"},
            headers=cast.bureau.headers,
        )
    )
    assert target["technology_amount_fen"] == 1_000_000_000
    registered_contract(
        client,
        cast.institute,
        cast.enterprise,
        cast.bureau,
        total_fen=300_000_000,
        costs=(50_000_000,),
    )
    progress = ok(client.get(f"/stats/progress/{today.year}", headers=cast.bureau.headers))
    days_elapsed = (today - date(today.year, 1, 1)).days + 1
    days_in_year = (date(today.year, 12, 31) - date(today.year, 1, 1)).days + 1
    months_left = months_remaining(today.year, today)
    assert progress["reached_fen"] == 250_000_000
    assert progress["remaining_fen"] == 750_000_000
    assert progress["share_reached"] == 0.25
    assert progress["days_elapsed"] == days_elapsed
    assert progress["projected_year_fen"] == 250_000_000 * days_in_year // days_elapsed
    if months_left:
        assert progress["pace_needed_per_month_fen"] == -(-750_000_000 // months_left)
    listed = client.get("/stats/targets", headers=cast.bureau.headers)
    assert [t["year"] for t in listed.json()] == [today.year]
    missing = client.get("/stats/progress/2031", headers=cast.bureau.headers)
    assert missing.status_code == 404
    zero = client.put(
        "/stats/targets/2031", json={"technology_amount_fen": 0}, headers=cast.bureau.headers
    )
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["field"] == "body.technology_amount_fen"


def test_progress_of_a_past_year_as_of_its_end(client: TestClient, cast: Cast) -> None:
    ok(
        client.put(
            "/stats/targets/2020",
            json={"technology_amount_fen": 100_0000_0000 * 100},
            headers=cast.bureau.headers,
        )
    )
    progress = ok(
        client.get(
            "/stats/progress/2020", params={"as_of": "2020-12-31"}, headers=cast.bureau.headers
        )
    )
    assert (progress["months_remaining"], progress["pace_needed_per_month_fen"]) == (0, None)
    assert progress["days_elapsed"] == 366 and progress["projected_year_fen"] == 0
    assert progress["on_track"] is False
    before = ok(
        client.get(
            "/stats/progress/2020", params={"as_of": "2019-06-01"}, headers=cast.bureau.headers
        )
    )
    assert before["months_remaining"] == 12 and before["projected_year_fen"] is None
    assert before["pace_needed_per_month_fen"] == 100_0000_0000 * 100 // 12 + 1


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (date(2020, 1, 1), 12),
        (date(2020, 1, 31), 11),
        (date(2020, 6, 15), 7),
        (date(2020, 6, 30), 6),
        (date(2020, 12, 30), 1),
        (date(2020, 12, 31), 0),
        (date(2019, 12, 31), 12),
        (date(2021, 1, 1), 0),
    ],
)
def test_months_remaining(as_of: date, expected: int) -> None:
    assert months_remaining(2020, as_of) == expected


def test_yuan_formatting_is_exact() -> None:
    assert [yuan(v) for v in (0, 5, 123_456, -1_050, 10**15)] == [
        "0.00",
        "0.05",
        "1234.56",
        "-10.50",
        "10000000000000.00",
    ]


def test_as_of_out_of_the_calendars_range_is_422(client: TestClient, cast: Cast) -> None:
    for day in ("0001-01-01", "9999-12-31"):
        for path in ("/stats/summary", "/stats/breakdown/broker", "/stats/progress/2020"):
            response = client.get(path, params={"as_of": day}, headers=cast.bureau.headers)
            assert response.status_code == 422, (path, day, response.text)
            assert response.json()["errors"][0]["field"] == "query.as_of"
