"""draft → submitted → rejected → resubmitted → published → withdrawn / expired, the
audit trail of every step, the outbox rows the search worker drains, and the functions
the deals domain calls."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from market.db import session_scope
from market.errors import InvalidTransition, NotFound
from market.listings import service as listings
from market.listings.models import ListingKind
from tests.support.catalogue import Catalogue, days_from_today, today

KINDS = ["result", "demand"]


def outbox_statuses(catalogue: Catalogue, kind: str, listing_id: int) -> list[str]:
    rows = catalogue.sql(
        "SELECT topic, payload FROM outbox_events WHERE entity_type = :kind "
        "AND entity_id = :id ORDER BY id",
        kind=kind,
        id=listing_id,
    )
    assert all(topic == "listing.changed" for topic, _ in rows)
    # PostgreSQL hands JSON back decoded, SQLite as text
    return [
        (payload if isinstance(payload, dict) else json.loads(payload))["status"]
        for _, payload in rows
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_rejection_resubmission_publication_and_withdrawal(catalogue: Catalogue, kind: str) -> None:
    owner = catalogue.maker(kind)
    client = catalogue.client
    draft = catalogue.create(kind, owner)
    assert draft["status"] == "draft" and draft["submitted_at"] is None
    listing_id = draft["id"]

    submitted = catalogue.submit(kind, owner, listing_id)
    assert submitted["status"] == "submitted" and submitted["submitted_at"]
    # a submitted listing is frozen until the bureau decides
    frozen = client.patch(
        f"/{kind}s/{listing_id}", json={"title": "改一下标题行不行"}, headers=owner.headers
    )
    assert frozen.status_code == 409 and frozen.json()["code"] == "invalid_transition"

    missing_reason = catalogue.review(kind, listing_id, "reject")
    assert missing_reason.status_code == 422
    assert missing_reason.json()["errors"][0]["field"] == "body.reason"
    rejected = catalogue.review(kind, listing_id, "reject", "请补充技术指标和应用案例")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    # the owner sees why, and may fix and resubmit
    seen = catalogue.get(kind, listing_id, owner).json()
    assert seen["last_decision_reason"] == "请补充技术指标和应用案例"
    edited = client.patch(
        f"/{kind}s/{listing_id}", json={"title": "补充应用案例后的新标题"}, headers=owner.headers
    )
    assert edited.status_code == 200, edited.text
    assert catalogue.submit(kind, owner, listing_id)["status"] == "submitted"

    approved = catalogue.review(kind, listing_id, "approve", "材料齐全")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "published" and approved.json()["published_at"]
    assert catalogue.get(kind, listing_id).status_code == 200  # the public sees it now
    twice = catalogue.review(kind, listing_id, "approve")
    assert twice.status_code == 409

    withdrawn = client.post(
        f"/{kind}s/{listing_id}/withdraw", json={"reason": "已另行转让"}, headers=owner.headers
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["closed_at"]
    assert catalogue.get(kind, listing_id).status_code == 404
    again = client.post(f"/{kind}s/{listing_id}/withdraw", headers=owner.headers)
    assert again.status_code == 409

    history = client.get(f"/{kind}s/{listing_id}/history", headers=owner.headers)
    assert history.status_code == 200, history.text
    steps = [
        (event["action"], event["from_status"], event["to_status"], event["reason"])
        for event in history.json()
    ]
    assert steps == [
        ("listing.created", None, "draft", ""),
        ("listing.submitted", "draft", "submitted", ""),
        ("listing.rejected", "submitted", "rejected", "请补充技术指标和应用案例"),
        ("listing.updated", None, None, ""),
        ("listing.submitted", "rejected", "submitted", ""),
        ("listing.approved", "submitted", "published", "材料齐全"),
        ("listing.withdrawn", "published", "withdrawn", "已另行转让"),
    ]
    bureau_id = catalogue.bureau.user_id
    assert [event["actor_user_id"] for event in history.json()] == [
        owner.user_id,
        owner.user_id,
        bureau_id,
        owner.user_id,
        owner.user_id,
        bureau_id,
        owner.user_id,
    ]
    # every change reaches the search index (owners search their drafts too)
    assert outbox_statuses(catalogue, kind, listing_id) == [
        "draft",
        "submitted",
        "rejected",
        "rejected",
        "submitted",
        "published",
        "withdrawn",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_only_drafts_can_be_deleted(catalogue: Catalogue, kind: str) -> None:
    owner = catalogue.maker(kind)
    draft = catalogue.create(kind, owner)
    submitted = catalogue.submitted(kind, owner)
    refused = catalogue.client.delete(f"/{kind}s/{submitted['id']}", headers=owner.headers)
    assert refused.status_code == 409
    deleted = catalogue.client.delete(f"/{kind}s/{draft['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert catalogue.get(kind, draft["id"], owner).status_code == 404
    actions = catalogue.sql(
        "SELECT action FROM audit_events WHERE entity_id = :id AND entity_type = :kind ORDER BY id",
        id=draft["id"],
        kind=kind,
    )
    assert [action for (action,) in actions] == ["listing.created", "listing.deleted"]


def test_unverified_organisation_drafts_but_cannot_submit(catalogue: Catalogue) -> None:
    owner = catalogue.market.institute_member(verified=False)
    draft = catalogue.create("result", owner)
    response = catalogue.client.post(f"/results/{draft['id']}/submit", headers=owner.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "organization_not_verified"
    assert catalogue.get("result", draft["id"], owner).json()["status"] == "draft"


def test_approval_refused_once_validity_has_ended(catalogue: Catalogue) -> None:
    owner = catalogue.maker("result")
    listing = catalogue.submitted("result", owner, valid_until=days_from_today(1))
    catalogue.sql(
        "UPDATE results SET valid_until = :day WHERE id = :id",
        day=today() - timedelta(days=1),
        id=listing["id"],
    )
    response = catalogue.review("result", listing["id"], "approve")
    assert response.status_code == 409 and response.json()["code"] == "validity_ended"
    assert catalogue.review("result", listing["id"], "reject", "请延长有效期").status_code == 200


# --- expiry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_expiry_sweep(catalogue: Catalogue, kind: str) -> None:
    owner = catalogue.maker(kind)
    ending_soon = catalogue.published(kind, owner, valid_until=days_from_today(3))
    lasting = catalogue.published(kind, owner, valid_until=days_from_today(30))
    open_ended = catalogue.published(kind, owner, valid_until=None)
    with session_scope(catalogue.engine) as session:
        assert listings.expire_due_listings(session, today() + timedelta(days=3)) == 0
    with session_scope(catalogue.engine) as session:
        assert listings.expire_due_listings(session, today() + timedelta(days=4)) == 1
    with session_scope(catalogue.engine) as session:  # a second run finds nothing to do
        assert listings.expire_due_listings(session, today() + timedelta(days=4)) == 0
    statuses = {
        row["id"]: row["status"]
        for row in (
            catalogue.get(kind, item["id"], owner).json()
            for item in (ending_soon, lasting, open_ended)
        )
    }
    assert statuses == {
        ending_soon["id"]: "expired",
        lasting["id"]: "published",
        open_ended["id"]: "published",
    }
    assert outbox_statuses(catalogue, kind, ending_soon["id"])[-2:] == ["published", "expired"]
    history = catalogue.client.get(
        f"/{kind}s/{ending_soon['id']}/history", headers=catalogue.bureau.headers
    ).json()
    assert history[-1]["action"] == "listing.expired"
    assert history[-1]["actor_user_id"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_reads_never_show_a_lapsed_listing_as_published(catalogue: Catalogue, kind: str) -> None:
    owner = catalogue.maker(kind)
    listing = catalogue.published(kind, owner, valid_until=days_from_today(5))
    # the clock moves past the validity before any sweep has run
    catalogue.sql(
        f"UPDATE {kind}s SET valid_until = :day WHERE id = :id",
        day=today() - timedelta(days=1),
        id=listing["id"],
    )
    assert catalogue.client.get(f"/{kind}s").json()["total"] == 0
    assert catalogue.get(kind, listing["id"]).status_code == 404
    mine = catalogue.get(kind, listing["id"], owner).json()
    assert mine["status"] == "expired" and mine["closed_at"]
    expired_events = catalogue.sql(
        "SELECT count(*) FROM audit_events WHERE entity_type = :kind AND entity_id = :id "
        "AND action = 'listing.expired'",
        kind=kind,
        id=listing["id"],
    )
    assert expired_events[0][0] == 1


# --- the functions the deals and contracts domains call ----------------------------------------


@pytest.mark.parametrize("kind", list(ListingKind))
def test_deal_hooks(catalogue: Catalogue, kind: ListingKind) -> None:
    owner = catalogue.maker(kind.value)
    listing_id = catalogue.published(kind.value, owner)["id"]
    draft_id = catalogue.create(kind.value, owner)["id"]
    with session_scope(catalogue.engine) as session:
        assert listings.get_for_reference(session, kind, listing_id).id == listing_id
        with pytest.raises(NotFound):
            listings.get_for_reference(session, kind, draft_id)
        with pytest.raises(NotFound):
            listings.get_for_reference(session, kind, 999_999)
        with pytest.raises(InvalidTransition):
            listings.mark_in_negotiation(session, kind, draft_id)
        listings.mark_in_negotiation(session, kind, listing_id)
        listings.mark_in_negotiation(session, kind, listing_id)  # idempotent
        # still publicly visible while negotiated
        assert listings.get_for_reference(session, kind, listing_id).status == "in_negotiation"
        listings.reopen_after_deal_lost(session, kind, listing_id)
        with pytest.raises(InvalidTransition):
            listings.reopen_after_deal_lost(session, kind, listing_id)
        listings.mark_in_negotiation(session, kind, listing_id)
        listings.mark_transacted(session, kind, listing_id)
        with pytest.raises(InvalidTransition):
            listings.mark_transacted(session, kind, listing_id)
    assert catalogue.get(kind.value, listing_id).json()["status"] == "transacted"
    assert outbox_statuses(catalogue, kind.value, listing_id) == [
        "draft",
        "submitted",
        "published",
        "in_negotiation",
        "published",
        "in_negotiation",
        "transacted",
    ]
    actions = catalogue.sql(
        "SELECT action FROM audit_events WHERE entity_type = :kind AND entity_id = :id ORDER BY id",
        kind=kind.value,
        id=listing_id,
    )
    assert [action for (action,) in actions][-4:] == [
        "listing.in_negotiation",
        "listing.reopened",
        "listing.in_negotiation",
        "listing.transacted",
    ]


def test_published_straight_to_transacted_and_reopen_of_lapsed_listing(
    catalogue: Catalogue,
) -> None:
    owner = catalogue.maker("result")
    sold = catalogue.published("result", owner)["id"]
    lapsing = catalogue.published("result", owner, valid_until=days_from_today(2))["id"]
    with session_scope(catalogue.engine) as session:
        listings.mark_transacted(session, ListingKind.RESULT, sold)
        listings.mark_in_negotiation(session, ListingKind.RESULT, lapsing)
    # the deal drags on past the listing's validity, then is lost
    catalogue.sql(
        "UPDATE results SET valid_until = :day WHERE id = :id",
        day=today() - timedelta(days=1),
        id=lapsing,
    )
    with session_scope(catalogue.engine) as session:
        listings.reopen_after_deal_lost(session, ListingKind.RESULT, lapsing)
    assert catalogue.get("result", sold).json()["status"] == "transacted"
    assert catalogue.get("result", lapsing, owner).json()["status"] == "expired"
