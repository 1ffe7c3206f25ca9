"""The duplicate guard: one active listing per patent (409 duplicate_patent, also when
two submissions race past the check), and near-identical titles flagged for review."""

from __future__ import annotations

import pytest

from market.listings import repository
from tests.support.catalogue import Catalogue, result_payload

PATENT = {"ip_form": "发明专利", "patent_application_number": "CN201610311380.X"}


def test_a_patent_is_listed_once_while_active(catalogue: Catalogue) -> None:
    first_owner = catalogue.maker("result")
    second_owner = catalogue.maker("result")
    listed = catalogue.published("result", first_owner, **PATENT)
    # the same number spelt differently is still the same patent
    response = catalogue.client.post(
        "/results",
        headers=second_owner.headers,
        json={
            **result_payload(),
            "ip_form": "发明专利",
            "patent_application_number": "ZL2016103113 80X",
        },
    )
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "duplicate_patent"
    assert "CN201610311380.X" in response.json()["detail"]

    # once withdrawn, the patent may be listed again
    withdrawn = catalogue.client.post(
        f"/results/{listed['id']}/withdraw", headers=first_owner.headers
    )
    assert withdrawn.status_code == 200
    relisted = catalogue.submitted("result", second_owner, **PATENT)
    assert relisted["status"] == "submitted"


def test_two_drafts_of_one_patent_collide_at_submission(catalogue: Catalogue) -> None:
    owner = catalogue.maker("result")
    first = catalogue.create("result", owner, **PATENT)
    second = catalogue.create("result", owner, **PATENT)
    catalogue.submit("result", owner, first["id"])
    clash = catalogue.client.post(f"/results/{second['id']}/submit", headers=owner.headers)
    assert clash.status_code == 409 and clash.json()["code"] == "duplicate_patent"
    # editing a draft onto an active listing's patent is refused as well
    third = catalogue.create("result", owner)
    edit = catalogue.client.patch(f"/results/{third['id']}", json=PATENT, headers=owner.headers)
    assert edit.status_code == 409 and edit.json()["code"] == "duplicate_patent"


def test_a_race_past_the_check_is_stopped_by_the_index(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = catalogue.maker("result")
    first = catalogue.create("result", owner, **PATENT)
    second = catalogue.create("result", owner, **PATENT)
    catalogue.submit("result", owner, first["id"])
    # As if the other submission committed between our check and our write.
    monkeypatch.setattr(repository, "active_result_with_patent", lambda *_args: None)
    clash = catalogue.client.post(f"/results/{second['id']}/submit", headers=owner.headers)
    assert clash.status_code == 409, clash.text
    assert clash.json()["code"] == "duplicate_patent"
    assert catalogue.get("result", second["id"], owner).json()["status"] == "draft"


def test_near_identical_titles_are_flagged_not_blocked(catalogue: Catalogue) -> None:
    owner = catalogue.maker("result")
    original = catalogue.published("result", owner, title="一种锂离子电池正极材料的制备方法")
    withdrawn = catalogue.published("result", owner, title="一种锂离子电池负极材料的制备工艺及装置")
    catalogue.client.post(f"/results/{withdrawn['id']}/withdraw", headers=owner.headers)
    unrelated = catalogue.submitted("result", owner, title="海水淡化反渗透膜的清洗方法")
    assert unrelated["review_flags"] == []

    again = catalogue.submitted("result", owner, title="一种锂离子电池正极材料的制备方法。")
    flags = again["review_flags"]
    assert [(flag["code"], flag["other_id"]) for flag in flags] == [
        ("similar_title", original["id"])
    ]
    assert flags[0]["similarity"] >= 0.9

    # the withdrawn listing does not count, and another organisation's title neither
    other = catalogue.submitted(
        "result", catalogue.maker("result"), title="一种锂离子电池正极材料的制备方法"
    )
    assert other["review_flags"] == []
    near_withdrawn = catalogue.submitted(
        "result", owner, title="一种锂离子电池负极材料的制备工艺及装置."
    )
    assert near_withdrawn["review_flags"] == []

    queue = catalogue.client.get("/review-queue", headers=catalogue.bureau.headers).json()
    queued = {item["id"]: item["review_flags"] for item in queue["items"]}
    assert queued[again["id"]][0]["other_id"] == original["id"]

    published = catalogue.review("result", again["id"], "approve").json()
    assert published["review_flags"]  # the bureau still sees it
    assert catalogue.get("result", again["id"]).json()["review_flags"] == []  # the public not
    assert catalogue.get("result", again["id"], owner).json()["review_flags"]


def test_demands_are_compared_with_the_enterprises_demands(catalogue: Catalogue) -> None:
    enterprise = catalogue.maker("demand")
    catalogue.submitted("demand", enterprise, title="注塑件表面缩痕缺陷的工艺改进")
    again = catalogue.submitted("demand", enterprise, title="注塑件表面缩痕缺陷的工艺改进 ")
    assert [flag["code"] for flag in again["review_flags"]] == ["similar_title"]
    assert again["review_flags"][0]["other_kind"] == "demand"
