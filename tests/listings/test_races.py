"""Parallel lifecycle requests on one listing: exactly one takes effect.

Every transition is a compare-and-set (market.common.transitions), so of many requests
that start from the same state only one moves the listing; the others answer 409 and
leave no audit event and no outbox row behind. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from tests.support.catalogue import Catalogue
from tests.support.parallel import (
    Call,
    audit_actions,
    fire,
    outbox_topics,
    post,
    statuses,
    winners,
)

RACERS = 10
KINDS = ("result", "demand")


def _decisions(count: int) -> list[dict[str, str]]:
    """Approvals and rejections, alternating, as from several bureau reviewers."""
    return [
        {"decision": "approve", "reason": ""}
        if n % 2 == 0
        else {"decision": "reject", "reason": f"请补充第{n}项材料"}
        for n in range(count)
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_parallel_reviews_of_one_submission_have_one_winner(
    app: FastAPI, catalogue: Catalogue, engine: Engine, kind: str
) -> None:
    owner = catalogue.maker(kind)
    listing = catalogue.submitted(kind, owner)
    path = f"/{kind}s/{listing['id']}/review"
    before = outbox_topics(engine, kind, listing["id"])

    responses = fire(
        app, [post(path, catalogue.bureau.headers, body) for body in _decisions(RACERS)]
    )

    [winner] = winners(responses)
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"invalid_transition"}
    decided = winner.json()["status"]
    assert decided in ("published", "rejected")
    assert catalogue.get(kind, listing["id"], owner).json()["status"] == decided
    action = "listing.approved" if decided == "published" else "listing.rejected"
    assert audit_actions(engine, kind, listing["id"]) == [
        "listing.created",
        "listing.submitted",
        action,
    ]
    assert outbox_topics(engine, kind, listing["id"]) == [*before, "listing.changed"]


@pytest.mark.parametrize("kind", KINDS)
def test_parallel_submissions_of_one_draft_have_one_winner(
    app: FastAPI, catalogue: Catalogue, engine: Engine, kind: str
) -> None:
    owner = catalogue.maker(kind)
    draft = catalogue.create(kind, owner)
    path = f"/{kind}s/{draft['id']}/submit"

    responses = fire(app, [post(path, owner.headers)] * RACERS)

    winners(responses)
    assert audit_actions(engine, kind, draft["id"]) == ["listing.created", "listing.submitted"]
    assert outbox_topics(engine, kind, draft["id"]) == ["listing.changed"] * 2


def test_parallel_withdrawals_of_one_listing_have_one_winner(
    app: FastAPI, catalogue: Catalogue, engine: Engine
) -> None:
    owner = catalogue.maker("result")
    listing = catalogue.published("result", owner)
    path = f"/results/{listing['id']}/withdraw"

    responses = fire(
        app, [post(path, owner.headers, {"reason": f"撤回{n}"}) for n in range(RACERS)]
    )

    winners(responses)
    assert audit_actions(engine, "result", listing["id"])[-2:] == [
        "listing.approved",
        "listing.withdrawn",
    ]


def test_an_edit_racing_a_submission_never_changes_what_was_submitted(
    app: FastAPI, catalogue: Catalogue, engine: Engine
) -> None:
    """An edit either lands before the submission (and is submitted) or is refused."""
    owner = catalogue.maker("result")
    draft = catalogue.create("result", owner, title="原始标题的成果用于并发编辑测试")
    edits = [
        Call("PATCH", f"/results/{draft['id']}", owner.headers, {"title": f"修改后的标题第{n}版"})
        for n in range(RACERS - 1)
    ]
    calls = [*edits, post(f"/results/{draft['id']}/submit", owner.headers)]

    responses = fire(app, calls)

    assert set(statuses(responses)) <= {200, 409}, [r.text for r in responses]
    submitted = responses[-1]
    assert submitted.status_code == 200, submitted.text
    accepted_edits = [r for r in responses[:-1] if r.status_code == 200]
    final = catalogue.get("result", draft["id"], owner).json()
    assert final["status"] == "submitted"
    # What the bureau reviews is the submitted title: the last edit before the submission.
    assert final["title"] == submitted.json()["title"]
    edited = audit_actions(engine, "result", draft["id"]).count("listing.updated")
    assert edited == len(accepted_edits)
