"""Sign-up, verification by the bureau, profiles and members, with the permission matrix."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from market.auth.models import Role
from market.auth.organization import OrganizationKind
from market.organizations.uscc import make_uscc
from tests.support.factories import Market, new_credit_code


def _registration(**organization: Any) -> dict[str, Any]:
    body = {
        "name": "宁波示例新材料有限公司",
        "kind": "enterprise",
        "credit_code": new_credit_code(),
        "district_code": "330206",
    }
    body.update(organization)
    return {
        "organization": body,
        "admin": {
            "email": "boss@example.cn",
            "display_name": "王总",
            "password": "long enough pw 1",
        },
    }


def test_sign_up_then_verification_then_login(client: TestClient, market: Market) -> None:
    response = client.post("/auth/register", json=_registration())
    assert response.status_code == 201, response.text
    organization = response.json()
    assert organization["verification_status"] == "pending"

    tokens = client.post(
        "/auth/login", json={"email": "boss@example.cn", "password": "long enough pw 1"}
    ).json()
    admin_headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = client.get("/me", headers=admin_headers).json()
    assert me["role"] == "org_admin"

    bureau = market.bureau_staff()
    queue = client.get(
        "/organizations", params={"verification_status": "pending"}, headers=bureau.headers
    ).json()
    assert [item["id"] for item in queue["items"]] == [organization["id"]]

    decided = client.post(
        f"/organizations/{organization['id']}/verification",
        json={"decision": "verify"},
        headers=bureau.headers,
    )
    assert decided.status_code == 200
    assert decided.json()["verification_status"] == "verified"
    own = client.get(f"/organizations/{organization['id']}", headers=admin_headers).json()
    assert own["verified_at"] is not None


def test_full_width_credit_code_is_normalised(client: TestClient) -> None:
    code = new_credit_code()
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code.lower())
    response = client.post("/auth/register", json=_registration(credit_code=f" {full_width} "))
    # lower-case full-width input: folded to half-width and upper case
    assert response.status_code == 201, response.text
    assert response.json()["credit_code"] == code


@pytest.mark.parametrize(
    ("credit_code", "message"),
    [
        ("91330200MA2H12349", "18 characters"),
        ("91330200MA2H1234OO", "digits and capitals"),
        ("91330200MA2H123492", "check character should be 1"),
        ("91330200MA2H124391", "organisation code"),
    ],
)
def test_bad_credit_codes_are_explained(client: TestClient, credit_code: str, message: str) -> None:
    assert make_uscc("91", "330200", "MA2H1234") == "91330200MA2H123491"
    response = client.post("/auth/register", json=_registration(credit_code=credit_code))
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "body.organization.credit_code"
    assert message in error["message"]


def test_unknown_district_and_bureau_kind_are_refused(client: TestClient) -> None:
    response = client.post("/auth/register", json=_registration(district_code="110101"))
    assert response.status_code == 422
    assert "district" in response.json()["errors"][0]["message"]
    response = client.post("/auth/register", json=_registration(kind="bureau"))
    assert response.status_code == 422


def test_duplicate_registration_is_409(client: TestClient) -> None:
    first = _registration()
    assert client.post("/auth/register", json=first).status_code == 201
    again = _registration(name="另一家公司")
    again["organization"]["credit_code"] = first["organization"]["credit_code"]
    again["admin"]["email"] = "other@example.cn"
    response = client.post("/auth/register", json=again)
    assert response.status_code == 409
    assert "credit code" in response.json()["detail"]


def test_districts_include_functional_zones(client: TestClient) -> None:
    districts = {item["code"]: item for item in client.get("/districts").json()}
    assert districts["330212"]["name"] == "鄞州区"
    assert districts["3302GX"]["kind"] == "functional_zone"
    assert len(districts) == 15


def test_verification_decisions_follow_the_rules(client: TestClient, market: Market) -> None:
    bureau = market.bureau_staff()
    organization_id = market.organization(OrganizationKind.ENTERPRISE, verified=False)
    url = f"/organizations/{organization_id}/verification"
    no_reason = client.post(url, json={"decision": "reject"}, headers=bureau.headers)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    rejected = client.post(
        url, json={"decision": "reject", "reason": "营业执照不清晰"}, headers=bureau.headers
    )
    assert rejected.json()["verification_status"] == "rejected"
    suspend = client.post(url, json={"decision": "suspend", "reason": "x"}, headers=bureau.headers)
    assert suspend.status_code == 409
    assert suspend.json()["code"] == "invalid_transition"
    assert client.post(url, json={"decision": "verify"}, headers=bureau.headers).status_code == 200


def test_org_admin_adds_members_with_roles_fitting_the_kind(
    client: TestClient, market: Market
) -> None:
    admin = market.org_admin(OrganizationKind.BROKER_AGENCY)
    url = f"/organizations/{admin.organization_id}/members"
    broker = {
        "email": "broker@example.cn",
        "display_name": "李经纪",
        "password": "long enough pw 2",
        "role": "broker",
    }
    assert client.post(url, json=broker, headers=admin.headers).status_code == 201
    bureau_role = {**broker, "email": "fake@example.cn", "role": "bureau_staff"}
    response = client.post(url, json=bureau_role, headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "role"
    emails = [user["email"] for user in client.get(url, headers=admin.headers).json()]
    assert "broker@example.cn" in emails
    duplicate = client.post(url, json=broker, headers=admin.headers)
    assert duplicate.status_code == 409


def test_plain_member_cannot_add_members_or_edit_profile(
    client: TestClient, market: Market
) -> None:
    member = market.institute_member()
    url = f"/organizations/{member.organization_id}"
    body = {"email": "n@example.cn", "display_name": "n", "password": "long enough pw 3"}
    assert client.post(f"{url}/members", json=body, headers=member.headers).status_code == 403
    assert client.patch(url, json={"address": "x"}, headers=member.headers).status_code == 403


def test_public_profile_only_for_verified(client: TestClient, market: Market) -> None:
    verified = market.organization(OrganizationKind.INSTITUTE)
    pending = market.organization(OrganizationKind.INSTITUTE, verified=False)
    assert client.get(f"/organizations/{verified}/profile").status_code == 200
    assert client.get(f"/organizations/{pending}/profile").status_code == 404
    assert "credit_code" not in client.get(f"/organizations/{verified}/profile").json()


# Every id-taking organisation endpoint, tried by a member of another organisation.
OTHER_ORG_REQUESTS = [
    ("get", "/organizations/{id}", None, 404),
    ("patch", "/organizations/{id}", {"address": "hijack"}, 404),
    ("get", "/organizations/{id}/members", None, 404),
    (
        "post",
        "/organizations/{id}/members",
        {"email": "x@example.cn", "display_name": "x", "password": "long enough pw 4"},
        404,
    ),
    ("post", "/organizations/{id}/verification", {"decision": "verify"}, 403),
    ("get", "/organizations", None, 403),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), OTHER_ORG_REQUESTS)
def test_other_organisations_cannot_read_or_change(
    client: TestClient, market: Market, method: str, path: str, body: Any, expected: int
) -> None:
    victim = market.org_admin(OrganizationKind.ENTERPRISE)
    intruder = market.org_admin(OrganizationKind.INSTITUTE)
    url = path.format(id=victim.organization_id)
    response = client.request(method, url, json=body, headers=intruder.headers)
    assert response.status_code == expected, response.text
    anonymous = client.request(method, url, json=body)
    assert anonymous.status_code == 401


def test_bureau_sees_any_organisation(client: TestClient, market: Market) -> None:
    bureau = market.bureau_staff()
    enterprise = market.org_admin(OrganizationKind.ENTERPRISE)
    url = f"/organizations/{enterprise.organization_id}"
    assert client.get(url, headers=bureau.headers).status_code == 200
    assert client.get(f"{url}/members", headers=bureau.headers).status_code == 200


def test_roles_are_fixed_per_kind() -> None:
    from market.organizations.service import ROLES_BY_KIND

    assert Role.BUREAU_STAFF not in ROLES_BY_KIND[OrganizationKind.ENTERPRISE]
    assert Role.BROKER in ROLES_BY_KIND[OrganizationKind.BROKER_AGENCY]
