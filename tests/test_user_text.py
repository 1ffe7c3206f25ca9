"""User text is stored as it reads: bidirectional controls (U+202E and friends), which
make a string display as something other than its characters, are stripped from every
free-text field before it is stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from market.common.text import normalize_user_text
from tests.support.factories import Market, new_credit_code

RIGHT_TO_LEFT_OVERRIDE = "\u202e"
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_an_organisation_name_loses_its_right_to_left_override(client: TestClient) -> None:
    registration = {
        "organization": {
            # displays as "宁波示例有限公司fdp.exe" in a right-to-left-obedient viewer
            "name": f"宁波示例有限公司{RIGHT_TO_LEFT_OVERRIDE}exe.pdf",
            "kind": "enterprise",
            "credit_code": new_credit_code(),
            "district_code": "330206",
            "description": f"简介{RIGHT_TO_LEFT_OVERRIDE}第二段",
        },
        "admin": {
            "email": "boss@example.cn",
            "display_name": f"王{RIGHT_TO_LEFT_OVERRIDE}总",
            "password": "long enough pw 1",
        },
    }

    response = client.post("/auth/register", json=registration)

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "宁波示例有限公司exe.pdf"
    assert response.json()["description"] == "简介第二段"


def test_a_result_title_loses_its_right_to_left_override(
    client: TestClient, market: Market
) -> None:
    owner = market.institute_member()
    body = {
        "title": f"高镍正极材料{RIGHT_TO_LEFT_OVERRIDE}包覆改性技术",
        "summary": f"一种锂离子电池高镍正极材料的表面包覆改性方法{BIDI_CONTROLS}，提高循环稳定性。",
        "keywords": [f"锂电池{RIGHT_TO_LEFT_OVERRIDE}"],
        "field": "新材料",
        "ip_form": "技术秘密",
        "maturity_stage": "中试",
        "transfer_modes": ["许可"],
        "price_negotiable": True,
    }

    created = client.post("/results", json=body, headers=owner.headers)

    assert created.status_code == 201, created.text
    stored = client.get(f"/results/{created.json()['id']}", headers=owner.headers).json()
    assert stored["title"] == "高镍正极材料包覆改性技术"
    assert stored["summary"] == "一种锂离子电池高镍正极材料的表面包覆改性方法，提高循环稳定性。"
    assert stored["keywords"] == ["锂电池"]


@pytest.mark.parametrize("control", list(BIDI_CONTROLS))
def test_every_bidirectional_control_is_stripped(control: str) -> None:
    assert normalize_user_text(f"a{control}b") == "ab"
    assert normalize_user_text(f"a{control}\nb", multiline=True) == "a\nb"


def test_arabic_and_hebrew_letters_stay() -> None:
    assert normalize_user_text("مرحبا שלום") == "مرحبا שלום"
