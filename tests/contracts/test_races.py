"""An edit racing the submission of a contract never changes what was submitted
(SQLite and PostgreSQL).

Editing claims the contract with the shared compare-and-set on (status, revision)
before it writes (market.common.transitions.claim): an edit either lands before the
submission, which then submits it, or finds the contract submitted and gets a 409.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.support.journey import Cast, contract_terms, direct_contract, ok
from tests.support.parallel import Call, audit_actions, fire, post, statuses

RACERS = 10


def test_an_edit_racing_a_submission_lands_before_it_or_is_refused(
    app: FastAPI, client: TestClient, cast: Cast, engine: Engine
) -> None:
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    path = f"/contracts/{contract['id']}"
    edits = [
        Call(
            "PUT",
            path,
            cast.institute.headers,
            contract_terms(title=f"高镍正极材料技术许可合同第{n}稿"),
        )
        for n in range(RACERS - 1)
    ]

    responses = fire(app, [*edits, post(f"{path}/submit", cast.institute.headers)])

    assert set(statuses(responses)) <= {200, 409}, [r.text for r in responses]
    submitted = responses[-1]
    assert submitted.status_code == 200, submitted.text
    final = ok(client.get(path, headers=cast.institute.headers))
    assert final["status"] == "submitted"
    assert final["title"] == submitted.json()["title"]
    accepted_edits = sum(r.status_code == 200 for r in responses[:-1])
    assert audit_actions(engine, "contract", contract["id"]).count("edited") == accepted_edits
