"""Ningbo's county-level divisions and the functional zones.

The ten divisions carry their GB/T 2260 codes (data/ningbo_districts.csv). The
functional zones have no division code of their own, so we define stable codes that
cannot collide with GB/T 2260 (letters after the city prefix 3302). A zone belongs to
a host division for roll-ups.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class District:
    code: str
    name: str
    kind: str  # "division" or "functional_zone"
    parent_code: str | None = None


FUNCTIONAL_ZONES = (
    District("3302GX", "宁波国家高新区", "functional_zone", "330212"),
    District("3302QW", "前湾新区（杭州湾新区）", "functional_zone", "330282"),
    District("3302DQ", "东钱湖旅游度假区", "functional_zone", "330212"),
    District("3302DX", "大榭开发区", "functional_zone", "330206"),
    District("3302MS", "梅山综合保税区", "functional_zone", "330206"),
)


@cache
def all_districts() -> dict[str, District]:
    data = resources.files("market.data").joinpath("ningbo_districts.csv")
    with data.open(encoding="utf-8") as handle:
        divisions = [
            District(row["code"], row["name"], "division") for row in csv.DictReader(handle)
        ]
    return {district.code: district for district in (*divisions, *FUNCTIONAL_ZONES)}


def is_known_district(code: str) -> bool:
    return code in all_districts()
