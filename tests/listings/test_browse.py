"""Browsing: who sees which statuses, every filter, sorting with a stable tie-breaker,
bounded pagination, and the bureau's review queue."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.catalogue import Catalogue, days_from_today
from tests.support.factories import Account


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
def shelf(catalogue: Catalogue) -> dict[str, Any]:
    """Two institutes' results in various states."""
    haishu = catalogue.market.institute_member(district="330203")
    zhenhai = catalogue.market.institute_member(district="330211")
    made = {
        "battery": catalogue.published(
            "result",
            haishu,
            title="高能量密度锂电池正极材料",
            price_fen=8_000_000,
            ipc_codes=["H01M10/052"],
            maturity_stage="中试",
            transfer_modes=["转让"],
        ),
        "powder": catalogue.published(
            "result",
            haishu,
            title="金属粉末注射成形工艺",
            price_fen=2_000_000,
            ipc_codes=["B22F3/00", "H01M4/00"],
            maturity_stage="产业化",
            transfer_modes=["许可", "技术服务"],
            field="高端装备",
        ),
        "negotiable": catalogue.published(
            "result",
            zhenhai,
            title="海水淡化膜组件_100%国产化",
            price_fen=None,
            price_negotiable=True,
            ipc_codes=["C02F1/00"],
            maturity_stage="小试",
            transfer_modes=["合作开发"],
            field="海洋产业",
        ),
        "draft": catalogue.create("result", haishu, title="尚未提交的草稿成果"),
        "rival_draft": catalogue.create("result", zhenhai, title="镇海的草稿成果"),
    }
    return {"haishu": haishu, "zhenhai": zhenhai, **{k: v["id"] for k, v in made.items()}}


def browse(catalogue: Catalogue, account: Account | None = None, **params: Any) -> Any:
    headers = account.headers if account else {}
    return catalogue.client.get("/results", params=params, headers=headers)


def test_the_public_sees_published_listings_only(
    catalogue: Catalogue, shelf: dict[str, Any]
) -> None:
    everything = browse(catalogue)
    assert sorted(ids(everything)) == sorted(
        [shelf["battery"], shelf["powder"], shelf["negotiable"]]
    )
    assert everything.json()["total"] == 3
    assert ids(browse(catalogue, status="draft")) == []
    # another organisation's member sees no more than the public
    assert ids(browse(catalogue, catalogue.maker("result"), status="draft")) == []


def test_own_and_bureau_views(catalogue: Catalogue, shelf: dict[str, Any]) -> None:
    haishu = shelf["haishu"]
    assert sorted(ids(browse(catalogue, haishu, mine=True))) == sorted(
        [shelf["battery"], shelf["powder"], shelf["draft"]]
    )
    assert ids(browse(catalogue, haishu, status="draft")) == [shelf["draft"]]
    assert sorted(ids(browse(catalogue, catalogue.bureau, status="draft"))) == sorted(
        [shelf["draft"], shelf["rival_draft"]]
    )
    assert browse(catalogue, mine=True).status_code == 401


FILTER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"field": "新材料"}, ["battery"]),
    ({"ipc": "H01M"}, ["battery", "powder"]),
    ({"ipc": "h01m 10"}, ["battery"]),
    ({"ipc": "B22F3/"}, ["powder"]),
    ({"district": "330211"}, ["negotiable"]),
    ({"maturity_stage": "产业化"}, ["powder"]),
    ({"transfer_mode": "许可"}, ["powder"]),
    ({"price_min_fen": 2_000_000, "price_max_fen": 5_000_000}, ["powder"]),
    ({"price_min_fen": 5_000_000}, ["battery"]),
    ({"price_max_fen": 5_000_000, "include_negotiable": True}, ["powder", "negotiable"]),
    ({"q": "锂电池"}, ["battery"]),
    ({"q": "100%"}, ["negotiable"]),
    ({"q": "%"}, ["negotiable"]),  # a literal percent sign, not a wildcard
    ({"q": "_"}, ["negotiable"]),
]


def test_filters(catalogue: Catalogue, shelf: dict[str, Any]) -> None:
    # One shelf for all cases: building it is the expensive part.
    for params, expected in FILTER_CASES:
        found = ids(browse(catalogue, sort="title", **params))
        assert sorted(found) == sorted(shelf[name] for name in expected), params


def test_organisation_filter(catalogue: Catalogue, shelf: dict[str, Any]) -> None:
    zhenhai_org = shelf["zhenhai"].organization_id
    assert ids(browse(catalogue, organization_id=zhenhai_org)) == [shelf["negotiable"]]


@pytest.mark.parametrize(
    "params",
    [
        {"ipc": "9X"},
        {"field": "航天"},
        {"price_min_fen": -1},
        {"status": "bogus"},
        {"sort": "price_fen"},
        {"limit": 101},
        {"limit": 0},
        {"offset": -1},
    ],
)
def test_bad_browse_parameters_are_422(catalogue: Catalogue, params: dict[str, Any]) -> None:
    response = browse(catalogue, **params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].startswith("query.")


def test_sorting(catalogue: Catalogue, shelf: dict[str, Any]) -> None:
    battery, powder, negotiable = shelf["battery"], shelf["powder"], shelf["negotiable"]
    assert ids(browse(catalogue, sort="price")) == [powder, battery, negotiable]  # 面议 last
    assert ids(browse(catalogue, sort="-price")) == [battery, powder, negotiable]
    assert ids(browse(catalogue, sort="published_at")) == [battery, powder, negotiable]
    assert ids(browse(catalogue)) == [negotiable, powder, battery]  # newest first by default
    titles = [item["title"] for item in browse(catalogue, sort="title").json()["items"]]
    assert titles == sorted(titles)


def test_equal_keys_fall_back_to_id_and_pages_do_not_overlap(catalogue: Catalogue) -> None:
    owner = catalogue.maker("result")
    made = [
        catalogue.published("result", owner, price_fen=1000, title=f"同价成果第{n}号样品")["id"]
        for n in range(5)
    ]
    pages = [ids(browse(catalogue, sort="price", limit=2, offset=offset)) for offset in (0, 2, 4)]
    assert pages == [made[0:2], made[2:4], made[4:5]]
    assert browse(catalogue, limit=2).json()["total"] == 5
    assert browse(catalogue, limit=2).json()["limit"] == 2


def test_demand_filters_and_sorting(catalogue: Catalogue) -> None:
    enterprise = catalogue.maker("demand", district="330206")
    small = catalogue.published(
        "demand",
        enterprise,
        budget_min_fen=100_000,
        budget_max_fen=500_000,
        deadline=days_from_today(30),
        cooperation_modes=["技术咨询"],
    )["id"]
    large = catalogue.published(
        "demand",
        enterprise,
        budget_min_fen=5_000_000,
        budget_max_fen=9_000_000,
        deadline=days_from_today(200),
        cooperation_modes=["委托开发", "合作开发"],
        ipc_codes=["G06N3/00"],
        field="智能经济",
    )["id"]
    open_budget = catalogue.published(
        "demand", enterprise, budget_min_fen=None, budget_max_fen=None, budget_negotiable=True
    )["id"]

    def find(**params: Any) -> list[int]:
        return sorted(ids(catalogue.client.get("/demands", params=params)))

    assert find() == sorted([small, large, open_budget])
    assert find(budget_min_fen=1_000_000) == [large]  # budgets reaching 1万元
    assert find(budget_max_fen=1_000_000) == [small]  # budgets starting below it
    assert find(budget_max_fen=1_000_000, include_negotiable=True) == sorted([small, open_budget])
    assert find(budget_min_fen=400_000, budget_max_fen=6_000_000) == sorted([small, large])
    assert find(cooperation_mode="委托开发") == [large]
    assert find(ipc="G06N") == [large]
    assert find(field="智能经济") == [large]
    assert find(district="330206") == sorted([small, large, open_budget])
    assert find(deadline_before=days_from_today(100)) == [small]
    assert find(deadline_after=days_from_today(100)) == [large]
    by_budget = ids(catalogue.client.get("/demands", params={"sort": "-budget"}))
    assert by_budget == [large, small, open_budget]
    by_deadline = ids(catalogue.client.get("/demands", params={"sort": "deadline"}))
    assert by_deadline == [small, large, open_budget]


def test_review_queue_lists_both_kinds_oldest_first(catalogue: Catalogue) -> None:
    institute = catalogue.maker("result")
    enterprise = catalogue.maker("demand")
    first = catalogue.submitted("result", institute)
    second = catalogue.submitted("demand", enterprise)
    third = catalogue.submitted("result", institute)
    catalogue.create("result", institute)  # drafts are not in the queue
    catalogue.published("demand", enterprise)  # nor decided ones
    queue = catalogue.client.get("/review-queue", headers=catalogue.bureau.headers).json()
    assert [(item["kind"], item["id"]) for item in queue["items"]] == [
        ("result", first["id"]),
        ("demand", second["id"]),
        ("result", third["id"]),
    ]
    assert queue["total"] == 3
    second_page = catalogue.client.get(
        "/review-queue", params={"offset": 1, "limit": 1}, headers=catalogue.bureau.headers
    ).json()
    assert [item["id"] for item in second_page["items"]] == [second["id"]]
