"""Every kind of bad access token is a 401 problem document, never a 500."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from jose import jwt

from market.config import Settings
from tests.support.factories import Account, Market


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, account: Account, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(account.user_id),
        "iat": now,
        "exp": now + 600,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "typ": "access",
        "ver": 0,
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(settings: Settings, claims: dict[str, object], algorithm: str = "HS256") -> str:
    return jwt.encode(claims, settings.jwt_secret, algorithm=algorithm)


def _unsigned(claims: dict[str, object]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


BadToken = Callable[[Settings, Account], str]

BAD_TOKENS: dict[str, BadToken] = {
    "garbage": lambda s, a: "not-a-token",
    "empty segments": lambda s, a: "..",
    "bad base64": lambda s, a: "eyJ!!!.eyJ###.sig",
    "json array header": lambda s, a: _b64(b"[1]") + "." + _b64(b"{}") + ".x",
    "alg none": lambda s, a: _unsigned(_claims(s, a)),
    "alg none uppercase": lambda s, a: _unsigned(_claims(s, a)).replace(
        _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
        _b64(json.dumps({"alg": "NONE", "typ": "JWT"}).encode()),
    ),
    "HS512 with the right secret": lambda s, a: _signed(s, _claims(s, a), "HS512"),
    "wrong secret": lambda s, a: jwt.encode(_claims(s, a), "x" * 48, algorithm="HS256"),
    "tampered payload": lambda s, a: _tamper(_signed(s, _claims(s, a))),
    "expired": lambda s, a: _signed(s, _claims(s, a, exp=int(time.time()) - 3600)),
    "missing exp": lambda s, a: _signed(s, _claims(s, a, exp=None)),
    "missing iat": lambda s, a: _signed(s, _claims(s, a, iat=None)),
    "missing sub": lambda s, a: _signed(s, _claims(s, a, sub=None)),
    "missing aud": lambda s, a: _signed(s, _claims(s, a, aud=None)),
    "missing iss": lambda s, a: _signed(s, _claims(s, a, iss=None)),
    "wrong audience": lambda s, a: _signed(s, _claims(s, a, aud="another-api")),
    "wrong issuer": lambda s, a: _signed(s, _claims(s, a, iss="someone-else")),
    "not yet valid": lambda s, a: _signed(s, _claims(s, a, nbf=int(time.time()) + 3600)),
    "refresh typed": lambda s, a: _signed(s, _claims(s, a, typ="refresh")),
    "untyped": lambda s, a: _signed(s, _claims(s, a, typ=None)),
    "non-numeric subject": lambda s, a: _signed(s, _claims(s, a, sub="admin")),
    "integer subject": lambda s, a: _signed(s, _claims(s, a, sub=a.user_id)),
    "unknown user": lambda s, a: _signed(s, _claims(s, a, sub="999999")),
    "old token version": lambda s, a: _signed(s, _claims(s, a, ver=-1)),
    "string version": lambda s, a: _signed(s, _claims(s, a, ver="0")),
    "string expiry": lambda s, a: _signed(s, _claims(s, a, exp="tomorrow")),
    # Validly signed, malformed claims (issue #10, finding 11): each was a 500, or
    # worse, another user.
    "superscript digit subject": lambda s, a: _signed(s, _claims(s, a, sub="\u00b2")),
    "arabic-indic digit subject": lambda s, a: _signed(s, _claims(s, a, sub="\u0661")),
    "thirty-digit subject": lambda s, a: _signed(s, _claims(s, a, sub="9" * 30)),
    "zero-padded subject": lambda s, a: _signed(s, _claims(s, a, sub=f"0{a.user_id}")),
    "subject with newline": lambda s, a: _signed(s, _claims(s, a, sub=f"{a.user_id}\n")),
    "subject zero": lambda s, a: _signed(s, _claims(s, a, sub="0")),
    "expiry 1e20": lambda s, a: _signed(s, _claims(s, a, exp=1e20)),
    "expiry 10**20": lambda s, a: _signed(s, _claims(s, a, exp=10**20)),
    "fractional expiry": lambda s, a: _signed(s, _claims(s, a, exp=time.time() + 600.5)),
    "expiry before issue": lambda s, a: _signed(
        s, _claims(s, a, iat=int(time.time()) + 30, exp=int(time.time()) + 20)
    ),
    "issued in the future": lambda s, a: _signed(s, _claims(s, a, iat=int(time.time()) + 3600)),
    "string issued-at": lambda s, a: _signed(s, _claims(s, a, iat="now")),
    "boolean version": lambda s, a: _signed(s, _claims(s, a, ver=False)),
    "missing version": lambda s, a: _signed(s, _claims(s, a, ver=None)),
}


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "1"
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_token_is_401(
    kind: str, client: TestClient, market: Market, settings: Settings
) -> None:
    account = market.institute_member()
    token = BAD_TOKENS[kind](settings, account)
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "unauthorized"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"


def test_public_key_as_hmac_secret_is_refused(
    client: TestClient, market: Market, settings: Settings
) -> None:
    """The python-jose RS256/HS256 confusion: an HS256 token signed with a public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public_der = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    account = market.institute_member()
    forged = jwt.encode(_claims(settings, account), public_der, algorithm="HS256")
    response = client.get("/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_issued_at_within_the_clock_skew_is_accepted(
    client: TestClient, market: Market, settings: Settings
) -> None:
    account = market.institute_member()
    token = _signed(settings, _claims(settings, account, iat=int(time.time()) + 30))
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_valid_token_works(client: TestClient, market: Market, settings: Settings) -> None:
    account = market.institute_member()
    token = _signed(settings, _claims(settings, account))
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["email"] == account.email


@pytest.mark.parametrize("header", ["Bearer", "Basic dXNlcjpwYXNz", "Token abc", "Bearer  "])
def test_malformed_authorization_header(client: TestClient, header: str) -> None:
    response = client.get("/me", headers={"Authorization": header})
    assert response.status_code == 401
