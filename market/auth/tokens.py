"""Access tokens (JWT, HS256 pinned) and opaque refresh tokens.

python-jose traps this module avoids (see docs/SECURITY.md):
- `algorithms` is always the list ["HS256"]: a string is matched as a substring, and
  allowing RS256 beside HS256 lets a public key be used as an HMAC secret.
- every claim we rely on is required via `options`; otherwise a token without `aud`
  or `exp` passes even when `audience=` is given.
- `JWKError` is not a `JWTError`: we catch `JOSEError` (and malformed-input errors),
  so any bad token is a 401, never a 500.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError

from market.config import Settings
from market.db import utcnow

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
_REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "iss")
_DECODE_OPTIONS = {f"require_{claim}": True for claim in _REQUIRED_CLAIMS} | {
    "verify_signature": True,
    "verify_exp": True,
    "verify_iat": True,
    "verify_aud": True,
    "verify_iss": True,
    "verify_sub": True,
    "leeway": 10,
}
# A clock ahead of ours by up to this much may issue a token we accept; an `iat` further
# in the future is a forgery or a broken clock.
CLOCK_SKEW_SECONDS = 60
# Far more than any lifetime we issue (access_token_minutes is at most 120).
MAX_TOKEN_SECONDS = 24 * 3600
_SUBJECT = re.compile(r"[1-9][0-9]{0,17}")


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (for logs, not clients)."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    token_version: int
    expires_at: datetime


def issue_access_token(settings: Settings, user_id: int, token_version: int) -> tuple[str, int]:
    """Return the token and its lifetime in seconds."""
    now = utcnow()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "typ": ACCESS_TOKEN_TYPE,
        "ver": token_version,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM), int(
        lifetime.total_seconds()
    )


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options=_DECODE_OPTIONS,
        )
    except InvalidToken:
        raise
    except (JOSEError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise InvalidToken(f"{type(error).__name__}: {error}") from error
    return _access_claims(claims)


def _access_claims(claims: dict[str, Any]) -> AccessClaims:
    """The claims we act on, each checked for exactly the shape we issue.

    python-jose checks signature, audience, issuer and expiry, but accepts any JSON
    value shape where we need an integer; a validly signed token is still input."""
    if claims.get("typ") != ACCESS_TOKEN_TYPE:
        raise InvalidToken("not an access token")
    now = int(utcnow().timestamp())
    issued = _bounded_integer(claims.get("iat"), "iat", 1, now + CLOCK_SKEW_SECONDS)
    expires = _bounded_integer(claims.get("exp"), "exp", issued + 1, issued + MAX_TOKEN_SECONDS)
    version = _bounded_integer(claims.get("ver"), "ver", 0, 2**31 - 1)
    return AccessClaims(
        user_id=_user_id(claims.get("sub")),
        token_version=version,
        expires_at=datetime.fromtimestamp(expires, tz=utcnow().tzinfo),
    )


def _user_id(subject: object) -> int:
    # An explicit ASCII pattern: str.isdigit() and int() also take "²" or "١", and an
    # id beyond 18 digits fits no database integer. No leading zeros: one id, one text.
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise InvalidToken("subject is not a user id")
    return int(subject)


def _bounded_integer(value: object, claim: str, lowest: int, highest: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lowest <= value <= highest:
        raise InvalidToken(f"{claim} is not an integer between {lowest} and {highest}")
    return value


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
