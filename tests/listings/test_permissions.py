"""The permission matrix: every id-taking endpoint, tried by every kind of stranger.

A listing the caller cannot see answers 404 whatever the verb; one it can see (a
published listing) but does not own answers 403 to any change. Review is bureau work:
403 for everyone else before the listing is even looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from market.auth.organization import OrganizationKind
from tests.support.catalogue import PAYLOADS, Catalogue
from tests.support.factories import Account

KINDS = ["result", "demand"]
# (method, path suffix, JSON body)
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "read": ("GET", "", None),
    "edit": ("PATCH", "", {"title": "别人的修改尝试标题"}),
    "delete": ("DELETE", "", None),
    "submit": ("POST", "/submit", None),
    "withdraw": ("POST", "/withdraw", None),
    "review": ("POST", "/review", {"decision": "approve"}),
    "history": ("GET", "/history", None),
}
# What a member of another organisation gets, by the listing's state.
STRANGER = {
    "draft": {
        "read": 404,
        "edit": 404,
        "delete": 404,
        "submit": 404,
        "withdraw": 404,
        "review": 403,
        "history": 404,
    },
    "published": {
        "read": 200,
        "edit": 403,
        "delete": 403,
        "submit": 403,
        "withdraw": 403,
        "review": 403,
        "history": 403,
    },
}
ANONYMOUS = {
    "draft": {"read": 404, **{name: 401 for name in ENDPOINTS if name != "read"}},
    "published": {"read": 200, **{name: 401 for name in ENDPOINTS if name != "read"}},
}
# The bureau sees everything and reviews, but never edits someone else's listing.
BUREAU = {
    "draft": {
        "read": 200,
        "edit": 403,
        "delete": 403,
        "submit": 403,
        "withdraw": 403,
        "review": 409,
        "history": 200,
    },
    "published": {
        "read": 200,
        "edit": 403,
        "delete": 403,
        "submit": 403,
        "withdraw": 403,
        "review": 409,
        "history": 200,
    },
}


def call(
    catalogue: Catalogue, kind: str, listing_id: int, endpoint: str, account: Account | None
) -> Any:
    method, suffix, body = ENDPOINTS[endpoint]
    headers = account.headers if account else {}
    return catalogue.client.request(
        method, f"/{kind}s/{listing_id}{suffix}", json=body, headers=headers
    )


def listing_in(catalogue: Catalogue, kind: str, owner: Account, state: str) -> int:
    if state == "draft":
        return int(catalogue.create(kind, owner)["id"])
    return int(catalogue.published(kind, owner)["id"])


def stranger(catalogue: Catalogue, kind: str, who: str) -> Account:
    """Members of organisations that do not own the listing."""
    market = catalogue.market
    makers: dict[str, Callable[[], Account]] = {
        "same_kind": lambda: catalogue.maker(kind),
        "other_kind": lambda: catalogue.maker("demand" if kind == "result" else "result"),
        "broker": market.broker,
        "unverified": lambda: catalogue.maker(kind, verified=False),
    }
    return makers[who]()


@pytest.mark.parametrize("state", ["draft", "published"])
@pytest.mark.parametrize("kind", KINDS)
def test_another_organisations_member(catalogue: Catalogue, kind: str, state: str) -> None:
    owner = catalogue.maker(kind)
    listing_id = listing_in(catalogue, kind, owner, state)
    before = catalogue.get(kind, listing_id, owner).json()
    for who in ("same_kind", "other_kind", "broker", "unverified"):
        account = stranger(catalogue, kind, who)
        for endpoint, expected in STRANGER[state].items():
            response = call(catalogue, kind, listing_id, endpoint, account)
            assert response.status_code == expected, (who, endpoint, response.text)
    assert catalogue.get(kind, listing_id, owner).json() == before  # nothing changed


@pytest.mark.parametrize("state", ["draft", "published"])
@pytest.mark.parametrize("kind", KINDS)
def test_anonymous_and_bureau(catalogue: Catalogue, kind: str, state: str) -> None:
    owner = catalogue.maker(kind)
    listing_id = listing_in(catalogue, kind, owner, state)
    before = catalogue.get(kind, listing_id, owner).json()
    for endpoint in ENDPOINTS:
        anonymous = call(catalogue, kind, listing_id, endpoint, None)
        assert anonymous.status_code == ANONYMOUS[state][endpoint], (endpoint, anonymous.text)
        bureau = call(catalogue, kind, listing_id, endpoint, catalogue.bureau)
        assert bureau.status_code == BUREAU[state][endpoint], (endpoint, bureau.text)
    assert catalogue.get(kind, listing_id, owner).json() == before


@pytest.mark.parametrize("kind", KINDS)
def test_any_member_of_the_owning_organisation_may_act(catalogue: Catalogue, kind: str) -> None:
    author = catalogue.maker(kind)
    colleague = catalogue.market.account(author.organization_id)
    listing_id = catalogue.create(kind, author)["id"]
    edited = catalogue.client.patch(
        f"/{kind}s/{listing_id}", json={"title": "同事修改后的标题"}, headers=colleague.headers
    )
    assert edited.status_code == 200, edited.text
    assert catalogue.submit(kind, colleague, listing_id)["status"] == "submitted"
    history = catalogue.client.get(f"/{kind}s/{listing_id}/history", headers=colleague.headers)
    assert history.status_code == 200


def test_unknown_ids_are_404_for_everyone(catalogue: Catalogue) -> None:
    owner = catalogue.maker("result")
    for account in (owner, catalogue.bureau, None):
        assert call(catalogue, "result", 987_654, "read", account).status_code == 404
    assert call(catalogue, "result", 987_654, "edit", owner).status_code == 404
    assert call(catalogue, "demand", 987_654, "review", catalogue.bureau).status_code == 404
    assert catalogue.client.get("/results/0").status_code == 422


@pytest.mark.parametrize(
    ("kind", "maker"),
    [
        ("result", OrganizationKind.ENTERPRISE),
        ("result", OrganizationKind.BROKER_AGENCY),
        ("result", OrganizationKind.BUREAU),
        ("demand", OrganizationKind.UNIVERSITY),
        ("demand", OrganizationKind.INSTITUTE),
        ("demand", OrganizationKind.BROKER_AGENCY),
    ],
)
def test_wrong_kind_of_organisation_cannot_create(
    catalogue: Catalogue, kind: str, maker: OrganizationKind
) -> None:
    account = catalogue.market.account(catalogue.market.organization(maker))
    payload = catalogue_payload(kind)
    response = catalogue.client.post(f"/{kind}s", json=payload, headers=account.headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "wrong_organization_kind"
    assert catalogue.client.post(f"/{kind}s", json=payload).status_code == 401


def test_universities_post_results_and_unverified_members_post_drafts(
    catalogue: Catalogue,
) -> None:
    university = catalogue.market.university_member()
    assert (
        catalogue.client.post(
            "/results", json=catalogue_payload("result"), headers=university.headers
        ).status_code
        == 201
    )
    unverified = catalogue.market.enterprise_member(verified=False)
    assert (
        catalogue.client.post(
            "/demands", json=catalogue_payload("demand"), headers=unverified.headers
        ).status_code
        == 201
    )


def test_review_queue_is_for_the_bureau(catalogue: Catalogue) -> None:
    assert catalogue.client.get("/review-queue").status_code == 401
    member = catalogue.maker("result")
    assert catalogue.client.get("/review-queue", headers=member.headers).status_code == 403
    bureau = catalogue.client.get("/review-queue", headers=catalogue.bureau.headers)
    assert bureau.status_code == 200


def test_review_notes_are_not_public(catalogue: Catalogue) -> None:
    owner = catalogue.maker("result")
    listing = catalogue.submitted("result", owner)
    catalogue.review("result", listing["id"], "approve", "内部备注：资料核实通过")
    assert catalogue.get("result", listing["id"]).json()["last_decision_reason"] == ""
    other = catalogue.maker("result")
    assert catalogue.get("result", listing["id"], other).json()["last_decision_reason"] == ""
    owned = catalogue.get("result", listing["id"], owner).json()
    assert owned["last_decision_reason"] == "内部备注：资料核实通过"


def catalogue_payload(kind: str) -> dict[str, Any]:
    return PAYLOADS[kind]()
