"""The "|a|b|" encoding of multi-valued code columns (IPC codes, transfer and cooperation
modes).

Each value is wrapped in delimiters so that "has code X" is `LIKE '%|X|%'` and "has a
code under X" is `LIKE '%|X%'`: portable filters on SQLite and PostgreSQL alike, with
no JSON-dialect differences. The empty list is stored as "".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def split_codes(value: Any) -> Any:
    """Stored "|a|b|" → ["a", "b"]; anything else (already a list) passes through, so
    this also serves as a pydantic "before" validator on read models."""
    if isinstance(value, str):
        return [part for part in value.split("|") if part]
    return value


def join_codes(values: Iterable[str]) -> str:
    items = list(values)
    return f"|{'|'.join(items)}|" if items else ""
