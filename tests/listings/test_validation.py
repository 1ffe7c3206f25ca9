"""Every input rule over the API: good input accepted and normalised, bad input a 422
problem document naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.catalogue import Catalogue, days_from_today, demand_payload, result_payload
from tests.support.factories import Account, Market


@pytest.fixture
def institute(market: Market) -> Account:
    return market.institute_member(district="330203")


@pytest.fixture
def enterprise(market: Market) -> Account:
    return market.enterprise_member()


def post_result(client: TestClient, owner: Account, **overrides: Any) -> Any:
    return client.post("/results", json=result_payload(**overrides), headers=owner.headers)


def post_demand(client: TestClient, owner: Account, **overrides: Any) -> Any:
    return client.post("/demands", json=demand_payload(**overrides), headers=owner.headers)


def assert_invalid(
    response: Any, field: str, *, code: str | None = None, says: str | None = None
) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_failed"
    # A list item's problem names the item: body.keywords.3
    problems = [
        item
        for item in body["errors"]
        if item["field"] == f"body.{field}" or item["field"].startswith(f"body.{field}.")
    ]
    assert problems, f"no problem for body.{field}: {body['errors']}"
    if code:
        assert any(item["code"] == code for item in problems), problems
    if says:
        assert any(says in item["message"] for item in problems), problems


# --- patent numbers against the IP form -------------------------------------------------


@pytest.mark.parametrize(
    ("ip_form", "number"),
    [
        ("发明专利", "CN201610311380.X"),
        ("发明专利", "ZL 201880001234.4"),  # PCT invention entering China
        ("发明专利", "89100002.X"),  # pre-2003 8-digit number
        ("实用新型", "2019201234565"),
        ("实用新型", "201990004321.5"),  # PCT utility model
        ("外观设计", "202030012345.5"),
    ],
)
def test_patent_number_matching_its_form_is_accepted(
    client: TestClient, institute: Account, ip_form: str, number: str
) -> None:
    response = post_result(client, institute, ip_form=ip_form, patent_application_number=number)
    assert response.status_code == 201, response.text
    assert response.json()["patent_application_number"].startswith("CN")
    assert "." in response.json()["patent_application_number"]


def test_full_width_patent_number_is_stored_canonically(
    client: TestClient, institute: Account
) -> None:
    response = post_result(
        client,
        institute,
        ip_form="发明专利",
        patent_application_number="ＺＬ２０１６１０３１１３８０．ｘ",
        patent_publication_number="cn 106022747 a",
    )
    assert response.status_code == 201, response.text
    assert response.json()["patent_application_number"] == "CN201610311380.X"
    assert response.json()["patent_publication_number"] == "CN106022747A"


@pytest.mark.parametrize(
    ("overrides", "field", "code", "says"),
    [
        (
            {"ip_form": "发明专利", "patent_application_number": "2016103113807"},
            "patent_application_number",
            None,
            "expected X",
        ),
        (
            {"ip_form": "发明专利", "patent_application_number": "2019201234565"},
            "patent_application_number",
            "type_mismatch",
            "utility model",
        ),
        (
            {"ip_form": "实用新型", "patent_application_number": "CN201610311380.X"},
            "patent_application_number",
            "type_mismatch",
            "invention",
        ),
        (
            {"ip_form": "外观设计", "patent_application_number": "201880001234.4"},
            "patent_application_number",
            "type_mismatch",
            "PCT invention",
        ),
        ({"ip_form": "发明专利"}, "patent_application_number", "missing", None),
        (
            {"ip_form": "软件著作权", "patent_application_number": "CN201610311380.X"},
            "patent_application_number",
            None,
            "not a patent",
        ),
        (
            {"ip_form": "技术秘密", "patent_publication_number": "CN106022747A"},
            "patent_publication_number",
            None,
            "not a patent",
        ),
        (
            {
                "ip_form": "发明专利",
                "patent_application_number": "CN201610311380.X",
                "patent_publication_number": "CN206123456U",
            },
            "patent_publication_number",
            "type_mismatch",
            "kind code U",
        ),
        (
            {
                "ip_form": "发明专利",
                "patent_application_number": "CN201610311380.X",
                "patent_publication_number": "CN106022747",
            },
            "patent_publication_number",
            None,
            "kind code",
        ),
    ],
)
def test_patent_number_mistakes(
    client: TestClient,
    institute: Account,
    overrides: dict[str, Any],
    field: str,
    code: str | None,
    says: str | None,
) -> None:
    assert_invalid(post_result(client, institute, **overrides), field, code=code, says=says)


# --- IPC codes -------------------------------------------------------------------------------


def test_ipc_codes_are_normalised_and_deduplicated(client: TestClient, institute: Account) -> None:
    response = post_result(
        client, institute, ipc_codes=["h01m 10/052", "Ｈ０１Ｍ１０／０５２", "B22F3/00", "H01M"]
    )
    assert response.status_code == 201, response.text
    assert response.json()["ipc_codes"] == ["H01M10/052", "B22F3/00", "H01M"]


@pytest.mark.parametrize("code", ["H01Z10/00", "H01M99/00", "电池", "H01M10"])
def test_unknown_or_malformed_ipc_codes(client: TestClient, institute: Account, code: str) -> None:
    assert_invalid(post_result(client, institute, ipc_codes=["B22F3/00", code]), "ipc_codes")


def test_demands_check_ipc_codes_too(client: TestClient, enterprise: Account) -> None:
    assert_invalid(
        post_demand(client, enterprise, ipc_codes=["H01Z1/00"]), "ipc_codes", says="H01Z"
    )


def test_ipc_reference_endpoints(client: TestClient) -> None:
    group = client.get("/ipc/h01m 10/052")
    assert group.status_code == 200, group.text
    assert group.json() == {
        "code": "H01M10/00",
        "level": "group",
        "title_zh": "二次电池；及其制造",
        "title_en": "Secondary cells; Manufacture thereof",
    }
    listing = client.get("/ipc", params={"prefix": "H01M", "limit": 3})
    assert [entry["code"] for entry in listing.json()] == ["H01M", "H01M4/00", "H01M6/00"]
    assert "〔" not in listing.json()[0]["title_zh"]
    assert client.get("/ipc/H01M99/00").status_code == 404
    assert client.get("/ipc", params={"prefix": "9"}).status_code == 422


# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"price_fen": 1.5}, "price_fen", "whole fen"),
        ({"price_fen": 100.0}, "price_fen", "whole fen"),
        ({"price_fen": "100"}, "price_fen", "whole fen"),
        ({"price_fen": True}, "price_fen", "whole fen"),
        ({"price_fen": -1}, "price_fen", "greater than or equal"),
        ({"price_fen": 10**13 + 1}, "price_fen", "less than or equal"),
        ({"price_fen": 100, "price_negotiable": True}, "price_fen", "not both"),
        ({"price_fen": None}, "price_fen", "not neither"),
    ],
)
def test_price_mistakes(
    client: TestClient, institute: Account, overrides: dict[str, Any], field: str, says: str
) -> None:
    assert_invalid(post_result(client, institute, **overrides), field, says=says)


def test_negotiable_price_and_largest_price(client: TestClient, institute: Account) -> None:
    negotiable = post_result(client, institute, price_fen=None, price_negotiable=True)
    assert negotiable.status_code == 201, negotiable.text
    assert (negotiable.json()["price_fen"], negotiable.json()["price_negotiable"]) == (None, True)
    assert post_result(client, institute, price_fen=10**13).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        (
            {"budget_min_fen": 30_000_001, "budget_max_fen": 30_000_000},
            "budget_min_fen",
            "range_order",
        ),
        ({"budget_negotiable": True}, "budget_negotiable", "budget_or_negotiable"),
        ({"budget_min_fen": 100, "budget_max_fen": None}, "budget_max_fen", "budget_or_negotiable"),
        ({"budget_max_fen": 2.5}, "budget_max_fen", None),
    ],
)
def test_budget_mistakes(
    client: TestClient,
    enterprise: Account,
    overrides: dict[str, Any],
    field: str,
    code: str | None,
) -> None:
    assert_invalid(post_demand(client, enterprise, **overrides), field, code=code)


def test_budget_forms_that_are_fine(client: TestClient, enterprise: Account) -> None:
    negotiable = post_demand(
        client, enterprise, budget_min_fen=None, budget_max_fen=None, budget_negotiable=True
    )
    assert negotiable.status_code == 201, negotiable.text
    ceiling_only = post_demand(client, enterprise, budget_min_fen=None, budget_max_fen=500)
    assert ceiling_only.status_code == 201, ceiling_only.text
    equal = post_demand(client, enterprise, budget_min_fen=500, budget_max_fen=500)
    assert equal.status_code == 201, equal.text


# --- dates -----------------------------------------------------------------------------------


def test_validity_dates_must_be_in_order(client: TestClient, institute: Account) -> None:
    response = post_result(
        client, institute, valid_from=days_from_today(30), valid_until=days_from_today(10)
    )
    assert_invalid(response, "valid_until", code="date_order")


def test_validity_far_ahead_is_a_typo(client: TestClient, institute: Account) -> None:
    assert_invalid(
        post_result(client, institute, valid_until=days_from_today(3700)),
        "valid_until",
        code="too_far",
    )


def test_a_draft_may_have_lapsed_but_cannot_be_submitted(
    catalogue: Catalogue, institute: Account
) -> None:
    draft = catalogue.create("result", institute, valid_until=days_from_today(-1))
    response = catalogue.client.post(f"/results/{draft['id']}/submit", headers=institute.headers)
    assert_invalid(response, "valid_until", code="in_past")


def test_demand_deadline_rules(catalogue: Catalogue, enterprise: Account) -> None:
    early = post_demand(
        catalogue.client, enterprise, valid_from=days_from_today(10), deadline=days_from_today(5)
    )
    assert_invalid(early, "deadline", code="date_order")
    far = post_demand(catalogue.client, enterprise, deadline=days_from_today(4000))
    assert_invalid(far, "deadline", code="too_far")
    lapsed = catalogue.create("demand", enterprise, deadline=days_from_today(-3))
    response = catalogue.client.post(f"/demands/{lapsed['id']}/submit", headers=enterprise.headers)
    assert_invalid(response, "deadline", code="in_past")


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "电池"}, "title"),
        ({"title": "      "}, "title"),
        ({"title": "电" * 201}, "title"),
        ({"summary": "太短的摘要"}, "summary"),
        ({"summary": "长" * 5001}, "summary"),
        ({"keywords": []}, "keywords"),
        ({"keywords": [f"词{index}" for index in range(11)]}, "keywords"),
        ({"keywords": ["关" * 31]}, "keywords"),
        ({"keywords": ["   "]}, "keywords"),
        ({"inventors": [f"发明人{index}" for index in range(51)]}, "inventors"),
        ({"price": 100}, "price"),  # a misspelt field is not silently ignored
    ],
)
def test_text_limits(
    client: TestClient, institute: Account, overrides: dict[str, Any], field: str
) -> None:
    assert_invalid(post_result(client, institute, **overrides), field)


def test_text_is_normalised_and_keywords_deduplicated(
    client: TestClient, institute: Account
) -> None:
    response = post_result(
        client,
        institute,
        title="ＬＬＭ  大模型　推理加速方法",
        keywords=["锂电池", " 锂电池 ", "ＡＢＣ", "abc", "正极材料"],
        inventors=["张三", "张三", "李四"],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["title"] == "LLM 大模型 推理加速方法"
    assert body["keywords"] == ["锂电池", "ABC", "正极材料"]
    assert body["inventors"] == ["张三", "李四"]


def test_length_counts_after_normalisation(client: TestClient, institute: Account) -> None:
    # Five characters of content padded with ideographic spaces is still five.
    assert post_result(client, institute, title="　锂电池正极　").status_code == 201
    assert_invalid(post_result(client, institute, title="　锂电池　　"), "title")


# --- vocabularies and districts ----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"field": "人工智能"}, "field"),
        ({"maturity_stage": "量产"}, "maturity_stage"),
        ({"technology_readiness_level": 0}, "technology_readiness_level"),
        ({"technology_readiness_level": 10}, "technology_readiness_level"),
        ({"technology_readiness_level": 5.5}, "technology_readiness_level"),
        ({"transfer_modes": []}, "transfer_modes"),
        ({"transfer_modes": ["卖掉"]}, "transfer_modes"),
        ({"ip_form": "商标"}, "ip_form"),
        ({"district_code": "999999"}, "district_code"),
    ],
)
def test_result_vocabulary_mistakes(
    client: TestClient, institute: Account, overrides: dict[str, Any], field: str
) -> None:
    assert_invalid(post_result(client, institute, **overrides), field)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cooperation_modes": []}, "cooperation_modes"),
        ({"cooperation_modes": ["捐赠"]}, "cooperation_modes"),
        ({"field": "航天"}, "field"),
    ],
)
def test_demand_vocabulary_mistakes(
    client: TestClient, enterprise: Account, overrides: dict[str, Any], field: str
) -> None:
    assert_invalid(post_demand(client, enterprise, **overrides), field)


def test_district_defaults_to_the_owner_organisation(
    client: TestClient, institute: Account
) -> None:
    assert post_result(client, institute).json()["district_code"] == "330203"
    zone = post_result(
        client,
        institute,
        district_code="3302GX",
        technology_readiness_level=6,
        transfer_modes=["许可", "许可", "作价投资"],
    )
    assert zone.status_code == 201, zone.text
    assert zone.json()["district_code"] == "3302GX"
    assert zone.json()["transfer_modes"] == ["许可", "作价投资"]


# --- edits are validated on the whole record ----------------------------------------------


def test_patch_checks_the_merged_record(catalogue: Catalogue, institute: Account) -> None:
    draft = catalogue.create("result", institute)
    url = f"/results/{draft['id']}"
    client = catalogue.client
    assert_invalid(client.patch(url, json={"title": None}, headers=institute.headers), "title")
    # switching to 面议 while a price is still set contradicts itself
    assert_invalid(
        client.patch(url, json={"price_negotiable": True}, headers=institute.headers),
        "price_fen",
        code="price_or_negotiable",
    )
    # a patent form needs its number, even when only the form changes
    assert_invalid(
        client.patch(url, json={"ip_form": "发明专利"}, headers=institute.headers),
        "patent_application_number",
        code="missing",
    )
    fine = client.patch(
        url,
        json={"price_negotiable": True, "price_fen": None, "title": "ＮＥＷ 标题：正极材料"},
        headers=institute.headers,
    )
    assert fine.status_code == 200, fine.text
    assert (fine.json()["price_fen"], fine.json()["title"]) == (None, "NEW 标题：正极材料")
    assert catalogue.get("result", draft["id"], institute).json()["price_negotiable"] is True
