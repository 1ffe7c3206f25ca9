"""Saved searches and the notifications a newly published listing brings."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from market.db import session_scope
from market.listings.models import Demand, Result
from market.matching import service
from market.matching.service import MAX_SAVED_SEARCHES_PER_USER, listing_features
from tests.support.catalogue import Catalogue
from tests.support.factories import Account
from tests.support.matching import MAGNET_RESULT, OFF_TOPIC_RESULT


def save(client: TestClient, account: Account, **body: Any) -> Any:
    payload = {"catalogue": "results", "name": "磁材", "q": "钕铁硼", **body}
    return client.post("/saved-searches", json=payload, headers=account.headers)


def notify(engine: Engine, kind: str, listing_id: int) -> int:
    """What the outbox worker does with the document it wrote for a listing."""
    with session_scope(engine) as session:
        listing: Result | Demand | None = (
            session.get(Result, listing_id) if kind == "result" else session.get(Demand, listing_id)
        )
        documents = [listing_features(listing)] if listing is not None else []
        return service.notify_saved_searches(session, kind, documents)


def inbox(client: TestClient, account: Account, **params: Any) -> Any:
    response = client.get("/notifications", headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_save_list_get_delete(client: TestClient, catalogue: Catalogue) -> None:
    member = catalogue.market.enterprise_member()
    created = save(client, member, filters={"field": "新材料", "price_max_fen": 10**8})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["filters"]["field"] == "新材料" and body["filters"]["price_max_fen"] == 10**8
    second = save(client, member, name="电池", q="锂电池").json()
    listed = client.get("/saved-searches", headers=member.headers).json()
    assert [item["id"] for item in listed["items"]] == [second["id"], body["id"]]
    assert listed["total"] == 2
    one = client.get(f"/saved-searches/{body['id']}", headers=member.headers)
    assert one.status_code == 200 and one.json()["q"] == "钕铁硼"
    deleted = client.delete(f"/saved-searches/{body['id']}", headers=member.headers)
    assert deleted.status_code == 204
    assert client.get(f"/saved-searches/{body['id']}", headers=member.headers).status_code == 404


def test_bad_filters_are_422_naming_the_field(client: TestClient, catalogue: Catalogue) -> None:
    member = catalogue.market.enterprise_member()
    wrong_field = save(client, member, filters={"field": "新能源"})
    assert wrong_field.status_code == 422
    assert wrong_field.json()["errors"][0]["field"] == "body.filters.field"
    other_catalogue = save(client, member, filters={"cooperation_mode": "合作开发"})
    assert other_catalogue.status_code == 422
    assert other_catalogue.json()["errors"][0]["field"] == "body.filters"
    bad_ipc = save(client, member, filters={"ipc_prefix": "not-ipc"})
    assert bad_ipc.status_code == 422
    unknown = save(client, member, filters={"colour": "red"})
    assert unknown.status_code == 422
    negative = save(client, member, filters={"price_min_fen": -1})
    assert negative.status_code == 422


def test_saved_searches_per_user_are_capped(client: TestClient, catalogue: Catalogue) -> None:
    member = catalogue.market.enterprise_member()
    for number in range(MAX_SAVED_SEARCHES_PER_USER):
        assert save(client, member, name=f"s{number}").status_code == 201
    refused = save(client, member, name="one too many")
    assert refused.status_code == 409 and refused.json()["code"] == "saved_search_limit"


def test_publishing_a_matching_listing_notifies_once(
    client: TestClient, catalogue: Catalogue
) -> None:
    searcher = catalogue.market.enterprise_member()
    search_id = save(client, searcher, filters={"field": "新材料"}).json()["id"]
    uninterested = catalogue.market.enterprise_member()
    save(client, uninterested, q="水稻")
    institute = catalogue.market.institute_member()
    magnet = catalogue.published("result", institute, **MAGNET_RESULT)
    rice = catalogue.published("result", institute, **OFF_TOPIC_RESULT)

    assert notify(catalogue.engine, "result", magnet["id"]) == 1
    assert notify(catalogue.engine, "result", magnet["id"]) == 0  # redelivered outbox row
    assert notify(catalogue.engine, "result", rice["id"]) == 1  # the other user's search

    box = inbox(client, searcher)
    assert box["total"] == 1 and box["unread"] == 1
    item = box["items"][0]
    assert (item["listing_kind"], item["listing_id"]) == ("result", magnet["id"])
    assert item["saved_search_id"] == search_id and item["read_at"] is None
    assert "磁材" in item["message"] and magnet["title"] in item["message"]
    assert [n["listing_id"] for n in inbox(client, uninterested)["items"]] == [rice["id"]]


def test_unpublished_and_own_listings_do_not_notify(
    client: TestClient, catalogue: Catalogue
) -> None:
    institute = catalogue.market.institute_member()
    save(client, institute)  # an institute member watching results, its own among them
    competitor = catalogue.market.institute_member()
    own = catalogue.published("result", institute, **MAGNET_RESULT)
    draft = catalogue.create("result", competitor, **MAGNET_RESULT)
    assert notify(catalogue.engine, "result", own["id"]) == 0
    assert notify(catalogue.engine, "result", draft["id"]) == 0
    assert notify(catalogue.engine, "result", 999_999) == 0
    assert notify(catalogue.engine, "demand", own["id"]) == 0  # a results search, not demands


def test_demand_searches_see_demand_only_modes(client: TestClient, catalogue: Catalogue) -> None:
    institute = catalogue.market.institute_member()
    save(client, institute, catalogue="demands", q="注塑", filters={"cooperation_mode": "委托开发"})
    enterprise = catalogue.market.enterprise_member()
    demand = catalogue.published("demand", enterprise, cooperation_modes=["委托开发"])
    assert notify(catalogue.engine, "demand", demand["id"]) == 1


def test_inbox_order_read_and_read_all(client: TestClient, catalogue: Catalogue) -> None:
    searcher = catalogue.market.enterprise_member()
    save(client, searcher, q="")
    institute = catalogue.market.institute_member()
    ids = [catalogue.published("result", institute)["id"] for _ in range(3)]
    for listing_id in ids:
        notify(catalogue.engine, "result", listing_id)
    box = inbox(client, searcher)
    assert [n["listing_id"] for n in box["items"]] == list(reversed(ids))  # newest first
    oldest = box["items"][-1]["id"]
    read = client.post(f"/notifications/{oldest}/read", headers=searcher.headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    newest = box["items"][0]["id"]
    client.post(f"/notifications/{newest}/read", headers=searcher.headers)
    box = inbox(client, searcher)
    assert box["unread"] == 1
    assert [n["listing_id"] for n in box["items"]] == [ids[1], ids[2], ids[0]]  # unread first
    page = inbox(client, searcher, limit=1, offset=1)
    assert len(page["items"]) == 1 and page["total"] == 3
    assert (
        client.get("/notifications", headers=searcher.headers, params={"limit": 101}).status_code
        == 422
    )
    marked = client.post("/notifications/read-all", headers=searcher.headers)
    assert marked.json() == {"marked_read": 1}
    assert inbox(client, searcher)["unread"] == 0


def test_deleting_a_saved_search_keeps_its_notifications(
    client: TestClient, catalogue: Catalogue
) -> None:
    searcher = catalogue.market.enterprise_member()
    search_id = save(client, searcher).json()["id"]
    magnet = catalogue.published("result", catalogue.market.institute_member(), **MAGNET_RESULT)
    notify(catalogue.engine, "result", magnet["id"])
    client.delete(f"/saved-searches/{search_id}", headers=searcher.headers)
    items = inbox(client, searcher)["items"]
    assert len(items) == 1 and items[0]["saved_search_id"] is None
