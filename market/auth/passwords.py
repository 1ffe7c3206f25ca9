"""Argon2id password hashing (argon2-cffi's defaults follow RFC 9106's guidance)."""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

# A real hash of a random password: verifying against it when the account does not
# exist keeps the response time the same, so login does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("dummy password that nobody has")

# Argon2 is CPU-bound by design: hashing more passwords at once than there are cores
# finishes none sooner, and a burst of logins would starve every other request's
# thread of CPU. At most one hash per core runs; the others queue here (holding no
# database connection, see market/auth/service.py).
_hashing_slots = threading.BoundedSemaphore(os.cpu_count() or 1)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128


def hash_password(password: str) -> str:
    with _hashing_slots:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        with _hashing_slots:
            matches = _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if len(set(password)) < 5:
        return "is too repetitive"
    return None
