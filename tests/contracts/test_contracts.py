"""Technology contracts: terms, the registration workflow, permissions, idempotency."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, IntegrityError

from market import migrate
from market.auth.organization import OrganizationKind
from market.common.calendar import end_of_market_day, market_today
from market.db import make_engine
from tests.support.factories import Market
from tests.support.journey import (
    Cast,
    contract_from_deal,
    contract_terms,
    direct_contract,
    express_interest,
    ok,
    ok_list,
    publish_result,
    register,
    registered_contract,
    submit,
    won_deal,
)


def _create(client: TestClient, cast: Cast, **overrides: Any) -> Any:
    body = {
        **contract_terms(),
        "buyer_organization_id": cast.enterprise.organization_id,
        **overrides,
    }
    return client.post("/contracts", json=body, headers=cast.institute.headers)


def _field_of(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [error["field"] for error in response.json()["errors"]]


def test_technology_amount_is_computed_from_total_and_costs(client: TestClient, cast: Cast) -> None:
    contract = direct_contract(
        client,
        cast.institute,
        cast.enterprise.organization_id,
        total_fen=50_000_000,
        costs=(7_000_000, 3_000_001),
    )
    assert contract["technology_amount_fen"] == 39_999_999
    assert [cost["amount_fen"] for cost in contract["non_technical_costs"]] == [
        7_000_000,
        3_000_001,
    ]
    assert sum(m["amount_fen"] for m in contract["milestones"]) == 50_000_000
    assert (contract["seller_kind"], contract["seller_district_code"]) == ("institute", "330212")
    assert (contract["buyer_kind"], contract["buyer_district_code"]) == ("enterprise", "330205")
    agreeing = _create(client, cast, technology_amount_fen=100_000_000 - 0)
    assert agreeing.status_code == 201


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"technology_amount_fen": 99_999_999}, "body.technology_amount_fen"),
        (
            {"non_technical_costs": [{"kind": "parts", "amount_fen": 100_000_001}]},
            "body.non_technical_costs",
        ),
        (
            {"non_technical_costs": [{"kind": "rent", "amount_fen": 1}]},
            "body.non_technical_costs.0.kind",
        ),
        (
            {"milestones": [{"title": "一次付清", "due_on": "2030-01-01", "amount_fen": 1}]},
            "body.milestones",
        ),
        ({"milestones": []}, "body.milestones"),
        ({"total_amount_fen": -1}, "body.total_amount_fen"),
        ({"total_amount_fen": 1.5}, "body.total_amount_fen"),
        ({"total_amount_fen": 10**20}, "body.total_amount_fen"),
        ({"subtype": None}, "body.subtype"),
        ({"subtype": "委托开发"}, "body.subtype"),
        ({"license_scope": None}, "body.license_scope"),
        ({"license_scope": "全球"}, "body.license_scope"),
        ({"contract_type": "技术咨询", "license_scope": None}, "body.subtype"),
        ({"contract_type": "技术服务", "subtype": None}, "body.license_scope"),
        (
            {"contract_type": "技术开发", "subtype": "专利权转让", "license_scope": None},
            "body.subtype",
        ),
        ({"contract_type": "技术买卖"}, "body.contract_type"),
        ({"field": "航天"}, "body.field"),
        ({"term_end": "2000-01-01"}, "body.term_end"),
        ({"signed_on": "2999-01-01"}, "body.signed_on"),
        ({"signed_on": "not a date"}, "body.signed_on"),
        ({"buyer_organization_id": None}, "body.buyer_organization_id"),
        ({"buyer_organization_id": 2_000_000}, "body.buyer_organization_id"),
        ({"registration_number": "33022026000001"}, "body.registration_number"),
    ],
)
def test_bad_terms_are_422_naming_the_field(
    client: TestClient, cast: Cast, overrides: dict[str, Any], field: str
) -> None:
    assert field in _field_of(_create(client, cast, **overrides))


def test_valid_type_and_subtype_pairs(client: TestClient, cast: Cast) -> None:
    pairs = [
        ("技术开发", "委托开发", None),
        ("技术开发", "合作开发", None),
        ("技术转让", "专利权转让", None),
        ("技术转让", "专利申请权转让", None),
        ("技术转让", "技术秘密转让", None),
        ("技术转让", "其他", None),
        ("技术许可", "专利实施许可", "排他"),
        ("技术许可", "技术秘密使用许可", "普通"),
        ("技术咨询", None, None),
        ("技术服务", None, None),
    ]
    for contract_type, subtype, scope in pairs:
        response = _create(
            client, cast, contract_type=contract_type, subtype=subtype, license_scope=scope
        )
        assert response.status_code == 201, response.text


def test_correction_cycle_and_registration_number(client: TestClient, cast: Cast) -> None:
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    path = f"/contracts/{contract['id']}"
    assert client.post(f"{path}/register", headers=cast.bureau.headers).status_code == 409
    submitted = submit(client, contract["id"], cast.institute)
    assert submitted["status"] == "submitted" and submitted["submitted_at"]
    edit = client.put(path, json=contract_terms(), headers=cast.institute.headers)
    assert edit.status_code == 409
    no_reason = client.post(
        f"{path}/request-correction", json={"reason": ""}, headers=cast.bureau.headers
    )
    assert "body.reason" in _field_of(no_reason)
    ok(
        client.post(
            f"{path}/request-correction",
            json={"reason": "缺少技术秘密说明"},
            headers=cast.bureau.headers,
        )
    )
    edited = ok(
        client.put(path, json=contract_terms(total_fen=80_000_000), headers=cast.institute.headers)
    )
    assert edited["total_amount_fen"] == 80_000_000
    submit(client, contract["id"], cast.institute)
    registered = register(client, contract["id"], cast.bureau)
    year = market_today().year
    assert registered["registration_number"] == f"3302{year}000001"
    assert registered["registered_on"] == market_today().isoformat()
    second = registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    assert second["registration_number"] == f"3302{year}000002"
    for step, body in (
        ("register", None),
        ("refuse", {"reason": "x"}),
        ("request-correction", {"reason": "x"}),
    ):
        assert (
            client.post(f"{path}/{step}", json=body, headers=cast.bureau.headers).status_code == 409
        ), step
    assert client.post(f"{path}/submit", headers=cast.institute.headers).status_code == 409


def test_refused_is_final_and_cancelled_cannot_change(client: TestClient, cast: Cast) -> None:
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    submit(client, contract["id"], cast.institute)
    refused = ok(
        client.post(
            f"/contracts/{contract['id']}/refuse",
            json={"reason": "不属于技术合同"},
            headers=cast.bureau.headers,
        )
    )
    assert (refused["status"], refused["status_reason"]) == ("refused", "不属于技术合同")
    assert (
        client.post(
            f"/contracts/{contract['id']}/submit", headers=cast.institute.headers
        ).status_code
        == 409
    )
    registered = registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    path = f"/contracts/{registered['id']}"
    ok(client.post(f"{path}/cancel", json={"reason": "撤销"}, headers=cast.bureau.headers))
    assert (
        client.post(
            f"{path}/cancel", json={"reason": "再次撤销"}, headers=cast.bureau.headers
        ).status_code
        == 409
    )
    change = {
        "reason": "改",
        "total_amount_fen": 1,
        "milestones": [{"title": "付款", "due_on": "2030-01-01", "amount_fen": 1}],
    }
    assert (
        client.post(f"{path}/change", json=change, headers=cast.bureau.headers).status_code == 409
    )


def test_a_contract_from_a_won_deal_carries_its_parties_and_broker(
    client: TestClient, cast: Cast
) -> None:
    deal = won_deal(client, cast)
    contract = contract_from_deal(client, cast, deal["id"])
    assert contract["deal_id"] == deal["id"] and contract["result_id"] == deal["result_id"]
    assert contract["broker_user_id"] == cast.broker.user_id
    seen_by_broker = client.get(f"/contracts/{contract['id']}", headers=cast.broker.headers)
    assert seen_by_broker.status_code == 200
    body = {**contract_terms(), "deal_id": deal["id"]}
    duplicate = client.post("/contracts", json=body, headers=cast.institute.headers)
    assert duplicate.status_code == 409
    by_buyer = client.post("/contracts", json=body, headers=cast.enterprise.headers)
    assert by_buyer.status_code == 403
    by_outsider = client.post("/contracts", json=body, headers=cast.outsider.headers)
    assert by_outsider.status_code == 404


def test_a_contract_needs_a_won_deal(client: TestClient, cast: Cast) -> None:
    result_id = won_deal(client, cast)["result_id"]
    assert result_id
    other_result = publish_result(client, cast.institute, cast.bureau)
    interest_id = express_interest(client, cast, other_result)
    open_deal = ok(
        client.post(
            "/deals",
            json={"title": "未成交", "interest_id": interest_id},
            headers=cast.broker.headers,
        ),
        201,
    )
    body = {**contract_terms(), "deal_id": open_deal["id"]}
    assert client.post("/contracts", json=body, headers=cast.institute.headers).status_code == 409


def test_permission_matrix(client: TestClient, cast: Cast, market: Market) -> None:
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    path = f"/contracts/{contract['id']}"
    reason = {"reason": "理由"}
    change = {
        "reason": "改",
        "total_amount_fen": 1,
        "milestones": [{"title": "付款", "due_on": "2030-01-01", "amount_fen": 1}],
    }
    colleague = market.account(cast.institute.organization_id)
    assert client.get(path, headers=colleague.headers).status_code == 200
    assert client.get(path, headers=cast.enterprise.headers).status_code == 200
    # Another organisation sees nothing: 404 everywhere it could read or change.
    for method, suffix, body in (
        ("GET", "", None),
        ("PUT", "", contract_terms()),
        ("GET", "/ledger", None),
        ("POST", "/submit", None),
    ):
        response = client.request(method, path + suffix, json=body, headers=cast.outsider.headers)
        assert response.status_code == 404, (method, suffix)
    # The buyer sees it but may not edit or submit; only bureau staff decide.
    by_buyer = client.put(path, json=contract_terms(), headers=cast.enterprise.headers)
    assert by_buyer.status_code == 403
    assert client.post(f"{path}/submit", headers=cast.enterprise.headers).status_code == 403
    for suffix, body in (
        ("/register", None),
        ("/refuse", reason),
        ("/request-correction", reason),
        ("/change", change),
        ("/cancel", reason),
    ):
        for actor in (cast.institute, cast.enterprise, cast.outsider, cast.broker):
            response = client.post(path + suffix, json=body, headers=actor.headers)
            assert response.status_code == 403, (suffix, actor.role)
    assert client.get("/contracts/999999", headers=cast.bureau.headers).status_code == 404
    assert ok(client.get("/contracts", headers=cast.outsider.headers))["total"] == 0
    assert ok(client.get("/contracts", headers=cast.enterprise.headers))["total"] == 1
    assert (
        client.post("/contracts", json=contract_terms(), headers=cast.broker.headers).status_code
        == 403
    )


def test_the_snapshot_is_taken_at_registration(
    client: TestClient, cast: Cast, engine: Engine
) -> None:
    registered = registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE organizations SET district_code = '330206' WHERE id = :id"),
            {"id": cast.institute.organization_id},
        )
    after = ok(client.get(f"/contracts/{registered['id']}", headers=cast.bureau.headers))
    assert after["seller_district_code"] == "330212"
    seller_districts = ok(
        client.get("/stats/breakdown/seller_district", headers=cast.bureau.headers)
    )["rows"]
    assert [row["key"] for row in seller_districts] == ["330212"]


def test_idempotent_steps_replay_without_a_second_effect(client: TestClient, cast: Cast) -> None:
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    path = f"/contracts/{contract['id']}"
    submit_headers = {**cast.institute.headers, "Idempotency-Key": "submit-1"}
    first_submit = ok(client.post(f"{path}/submit", headers=submit_headers))
    replayed_submit = client.post(f"{path}/submit", headers=submit_headers)
    assert replayed_submit.status_code == 200 and replayed_submit.json() == first_submit
    assert replayed_submit.headers["Idempotent-Replayed"] == "true"

    first = register(client, contract["id"], cast.bureau, key="reg-1")
    again = register(client, contract["id"], cast.bureau, key="reg-1")
    assert again == first
    other_key = client.post(
        f"{path}/register", headers={**cast.bureau.headers, "Idempotency-Key": "reg-2"}
    )
    assert other_key.status_code == 409

    change = {
        "reason": "金额更正",
        "total_amount_fen": 100_000_100,
        "milestones": [{"title": "全款", "due_on": "2030-01-01", "amount_fen": 100_000_100}],
    }
    change_headers = {**cast.bureau.headers, "Idempotency-Key": "chg-1"}
    changed = ok(client.post(f"{path}/change", json=change, headers=change_headers))
    assert ok(client.post(f"{path}/change", json=change, headers=change_headers)) == changed
    different = client.post(
        f"{path}/change",
        json={
            **change,
            "total_amount_fen": 5,
            "milestones": [{"title": "全款", "due_on": "2030-01-01", "amount_fen": 5}],
        },
        headers=change_headers,
    )
    assert different.status_code == 422
    assert different.json()["errors"][0]["field"] == "header.Idempotency-Key"

    cancel_headers = {**cast.bureau.headers, "Idempotency-Key": "cxl-1"}
    cancelled = ok(client.post(f"{path}/cancel", json={"reason": "撤销"}, headers=cancel_headers))
    assert (
        ok(client.post(f"{path}/cancel", json={"reason": "撤销"}, headers=cancel_headers))
        == cancelled
    )
    entries = ok_list(client.get(f"{path}/ledger", headers=cast.bureau.headers))
    assert [(e["kind"], e["sequence"]) for e in entries] == [
        ("registration", 1),
        ("change", 2),
        ("cancellation", 3),
    ]
    assert sum(e["delta_total_fen"] for e in entries) == 0


def test_the_ledger_refuses_rewrites_and_double_registration(
    client: TestClient, cast: Cast, engine: Engine
) -> None:
    registered = registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    with pytest.raises(DatabaseError), engine.begin() as connection:
        connection.execute(text("UPDATE ledger_entries SET delta_total_fen = 0"))
    duplicate = text(
        "INSERT INTO ledger_entries (contract_id, sequence, kind, delta_total_fen, "
        "delta_technology_fen, delta_count, effective_on, effective_year, effective_quarter, "
        "effective_month, recorded_at, contract_type, field, seller_district_code, "
        "buyer_district_code, seller_kind, buyer_kind) SELECT contract_id, :sequence, :kind, "
        "delta_total_fen, delta_technology_fen, delta_count, effective_on, effective_year, "
        "effective_quarter, effective_month, recorded_at, contract_type, field, "
        "seller_district_code, buyer_district_code, seller_kind, buyer_kind "
        "FROM ledger_entries WHERE contract_id = :id"
    )
    for sequence, kind in ((1, "registration"), (2, "registration"), (1, "change")):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                duplicate, {"id": registered["id"], "sequence": sequence, "kind": kind}
            )
    with engine.begin() as connection:  # a first cancellation is fine; a second is not
        connection.execute(
            duplicate, {"id": registered["id"], "sequence": 2, "kind": "cancellation"}
        )
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            duplicate, {"id": registered["id"], "sequence": 3, "kind": "cancellation"}
        )


def test_the_migration_seeds_the_2020_target(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = list(
            connection.execute(text("SELECT year, technology_amount_fen FROM trade_targets"))
        )
    engine.dispose()
    assert rows == [(2020, 100_0000_0000 * 100)]  # 100亿元 in fen


def test_a_registration_counts_in_todays_period(client: TestClient, cast: Cast) -> None:
    registered = registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    entries = ok_list(
        client.get(f"/contracts/{registered['id']}/ledger", headers=cast.bureau.headers)
    )
    assert entries[0]["effective_on"] == market_today().isoformat()
    yesterday = market_today() - timedelta(days=1)
    assert end_of_market_day(yesterday).hour == 16  # midnight in China is 16:00 UTC


def test_a_change_keeps_milestone_ids_so_payments_stay_attached(
    client: TestClient, cast: Cast
) -> None:
    registered = registered_contract(client, cast.institute, cast.enterprise, cast.bureau)
    before = [milestone["id"] for milestone in registered["milestones"]]
    change: dict[str, Any] = {
        "reason": "尾款调整",
        "total_amount_fen": 100_000_500,
        "milestones": [
            {"title": m["title"], "due_on": m["due_on"], "amount_fen": m["amount_fen"]}
            for m in registered["milestones"]
        ],
    }
    change["milestones"][-1]["amount_fen"] += 500
    changed = ok(
        client.post(
            f"/contracts/{registered['id']}/change", json=change, headers=cast.bureau.headers
        )
    )
    assert [milestone["id"] for milestone in changed["milestones"]] == before
    last_before = registered["milestones"][-1]["amount_fen"]
    assert changed["milestones"][-1]["amount_fen"] == last_before + 500


def test_a_failed_request_leaves_its_idempotency_key_free(
    client: TestClient, cast: Cast, engine: Engine
) -> None:
    # A draft cannot be registered: the step fails after its key was claimed.
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    headers = {**cast.bureau.headers, "Idempotency-Key": "reg-too-early"}
    path = f"/contracts/{contract['id']}/register"

    first = client.post(path, headers=headers)
    retry = client.post(path, headers=headers)

    assert first.status_code == 409, first.text
    assert (retry.status_code, retry.json()["code"]) == (409, first.json()["code"])
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM idempotency_keys")).scalar() == 0
    submit(client, contract["id"], cast.institute)
    assert register(client, contract["id"], cast.bureau, key="reg-too-early")["status"] == (
        "registered"
    )


def test_the_same_key_from_another_user_is_never_replayed_to_them(
    client: TestClient, cast: Cast, market: Market
) -> None:
    contract = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    submit(client, contract["id"], cast.institute)
    colleague = market.bureau_staff()
    path = f"/contracts/{contract['id']}/register"

    first = client.post(path, headers={**cast.bureau.headers, "Idempotency-Key": "shared"})
    other = client.post(path, headers={**colleague.headers, "Idempotency-Key": "shared"})

    assert first.status_code == 200, first.text
    assert other.status_code == 409 and "Idempotent-Replayed" not in other.headers


def _set_verification(engine: Engine, organization_id: int, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE organizations SET verification_status = :status WHERE id = :id"),
            {"status": status, "id": organization_id},
        )


def _party_problem(response: Any) -> tuple[int, str, str]:
    problem = response.json()
    return response.status_code, problem["code"], problem["errors"][0]["field"]


def test_a_contract_naming_a_pending_buyer_is_refused(
    client: TestClient, cast: Cast, market: Market
) -> None:
    pending = market.organization(OrganizationKind.ENTERPRISE, verified=False, name="待审企业")

    response = _create(client, cast, buyer_organization_id=pending)

    assert _party_problem(response) == (422, "party_not_verified", "buyer_organization_id")
    assert "待审企业" in response.json()["detail"] and str(pending) in response.json()["detail"]
    listed = ok(client.get("/contracts", headers=cast.institute.headers))
    assert listed["total"] == 0


def test_a_contract_whose_buyer_lost_its_verification_is_neither_submitted_nor_registered(
    client: TestClient, cast: Cast, engine: Engine
) -> None:
    drafted = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    submitted = direct_contract(client, cast.institute, cast.enterprise.organization_id)
    submit(client, submitted["id"], cast.institute)
    _set_verification(engine, cast.enterprise.organization_id, "suspended")

    refused_submit = client.post(
        f"/contracts/{drafted['id']}/submit", headers=cast.institute.headers
    )
    refused_register = client.post(
        f"/contracts/{submitted['id']}/register", headers=cast.bureau.headers
    )

    for response in (refused_submit, refused_register):
        assert _party_problem(response) == (422, "party_not_verified", "buyer_organization_id")
    assert (
        ok(client.get(f"/contracts/{submitted['id']}", headers=cast.bureau.headers))["status"]
        == "submitted"
    )
    _set_verification(engine, cast.enterprise.organization_id, "verified")
    assert register(client, submitted["id"], cast.bureau)["status"] == "registered"
