"""Every id-taking matching endpoint, tried with another organisation's token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from market.db import session_scope
from market.listings.models import Result
from market.matching import service
from market.matching.service import listing_features
from tests.support.matching import MAGNET_DEMAND, MAGNET_RESULT, Scene


@pytest.mark.parametrize("kind", ["demand", "result"])
def test_who_may_see_matches_of_a_published_listing(
    client: TestClient, scene: Scene, kind: str
) -> None:
    listing_id = scene.demand["id"] if kind == "demand" else scene.result["id"]
    owner = scene.enterprise if kind == "demand" else scene.institute
    url = f"/{kind}s/{listing_id}/matches"
    for allowed in (owner, scene.broker, scene.bureau):
        assert client.get(url, headers=allowed.headers).status_code == 200
    other_maker = scene.catalogue.market.institute_member()
    for refused in (scene.stranger, other_maker):
        response = client.get(url, headers=refused.headers)
        assert response.status_code == 403 and response.json()["code"] == "matches_not_allowed"
    assert client.get(url).status_code == 401


@pytest.mark.parametrize("kind", ["demand", "result"])
def test_matches_of_a_draft_are_hidden_from_everyone_but_owner_and_bureau(
    client: TestClient, scene: Scene, kind: str
) -> None:
    owner = scene.enterprise if kind == "demand" else scene.institute
    payload = MAGNET_DEMAND if kind == "demand" else MAGNET_RESULT
    draft = scene.catalogue.create(kind, owner, **{**payload, "title": payload["title"] + "二"})
    url = f"/{kind}s/{draft['id']}/matches"
    assert client.get(url, headers=owner.headers).status_code == 200
    assert client.get(url, headers=scene.bureau.headers).status_code == 200
    for outsider in (scene.broker, scene.stranger):
        assert client.get(url, headers=outsider.headers).status_code == 404
    assert client.get(f"/{kind}s/999999/matches", headers=owner.headers).status_code == 404


def test_feedback_on_another_organisations_match_is_404(client: TestClient, scene: Scene) -> None:
    items = client.get(
        f"/demands/{scene.demand['id']}/matches", headers=scene.enterprise.headers
    ).json()["items"]
    match_id = items[0]["id"]
    colleague = scene.catalogue.market.account(scene.enterprise.organization_id)
    for outsider in (scene.broker, scene.stranger, scene.institute, scene.bureau):
        response = client.post(
            f"/matches/{match_id}/feedback", json={"useful": True}, headers=outsider.headers
        )
        assert response.status_code == 404, outsider
    ok = client.post(
        f"/matches/{match_id}/feedback", json={"useful": True}, headers=colleague.headers
    )
    assert ok.status_code == 200  # feedback belongs to the viewing organisation
    assert client.post(f"/matches/{match_id}/feedback", json={"useful": True}).status_code == 401


def test_saved_searches_are_private(client: TestClient, scene: Scene) -> None:
    created = client.post(
        "/saved-searches",
        json={"catalogue": "results", "name": "磁材", "q": "钕铁硼"},
        headers=scene.enterprise.headers,
    ).json()
    colleague = scene.catalogue.market.account(scene.enterprise.organization_id)
    for outsider in (colleague, scene.stranger, scene.bureau):
        url = f"/saved-searches/{created['id']}"
        assert client.get(url, headers=outsider.headers).status_code == 404
        assert client.delete(url, headers=outsider.headers).status_code == 404
        assert client.get("/saved-searches", headers=outsider.headers).json()["total"] == 0
    assert client.get(f"/saved-searches/{created['id']}").status_code == 401
    assert (
        client.get(f"/saved-searches/{created['id']}", headers=scene.enterprise.headers).status_code
        == 200
    )


def test_notifications_are_private(client: TestClient, scene: Scene) -> None:
    client.post(
        "/saved-searches",
        json={"catalogue": "results", "name": "磁材", "q": "钕铁硼"},
        headers=scene.stranger.headers,
    )
    with session_scope(scene.catalogue.engine) as session:
        result = session.get(Result, scene.result["id"])
        assert result is not None
        assert service.notify_saved_searches(session, "result", [listing_features(result)]) == 1
    notification = client.get("/notifications", headers=scene.stranger.headers).json()["items"][0]
    colleague = scene.catalogue.market.account(scene.stranger.organization_id)
    for outsider in (colleague, scene.enterprise, scene.bureau):
        read = client.post(f"/notifications/{notification['id']}/read", headers=outsider.headers)
        assert read.status_code == 404
        assert client.post("/notifications/read-all", headers=outsider.headers).json() == {
            "marked_read": 0
        }
        assert client.get("/notifications", headers=outsider.headers).json()["total"] == 0
    still = client.get("/notifications", headers=scene.stranger.headers).json()
    assert still["unread"] == 1
    assert client.post(f"/notifications/{notification['id']}/read").status_code == 401
