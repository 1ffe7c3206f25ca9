"""Argon2id password hashing (argon2-cffi's defaults follow RFC 9106's guidance)."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

# A real hash of a random password: verifying against it when the account does not
# exist keeps the response time the same, so login does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("dummy password that nobody has")

# Argon2 is CPU-bound by design: hashing more passwords at once than there are cores
# finishes none sooner, and a burst of logins would starve every other request's
# thread of CPU. At most one hash per core runs; the others queue (holding no database
# connection, see market/auth/service.py).
_CORES = os.cpu_count() or 1
_hashing_slots = threading.BoundedSemaphore(_CORES)
# Request handlers hash on threads of their own: a burst of logins queued for a hash
# must not occupy the server's worker threads, which every other synchronous endpoint
# (GET /health included) needs.
_hashing_threads = ThreadPoolExecutor(max_workers=_CORES, thread_name_prefix="argon2")

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


async def hash_password_off_thread(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(
        _hashing_threads, hash_password, password
    )


async def verify_password_off_thread(password_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(
        _hashing_threads, verify_password, password_hash, password
    )


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
