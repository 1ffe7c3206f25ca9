"""The domain packages of the application, in dependency order.

Each may have `models.py` (tables) and `router.py` (HTTP endpoints); app.py and
market/models.py pick them up from this list, so adding a domain is one line here.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

DOMAINS = (
    "organizations",
    "auth",
    "audit",
    "outbox",
    "listings",
    "discovery",
    "matching",
    "deals",
    "contracts",
    "payments",
    "stats",
)


def domain_modules(kind: str) -> list[ModuleType]:
    """Import `market.<domain>.<kind>` for every domain that has one."""
    modules = []
    for domain in DOMAINS:
        package, name = f"market.{domain}", f"market.{domain}.{kind}"
        if importlib.util.find_spec(package) and importlib.util.find_spec(name):
            modules.append(importlib.import_module(name))
    return modules
