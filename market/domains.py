"""The domain packages of the application, in dependency order.

A domain imports only the domains listed before it; `make lint` checks it (the layers
contract in `[tool.importlinter]` of pyproject.toml lists them top layer first; a
test keeps the two lists in step). A lower domain that must reach a higher one at run time
(the outbox worker in discovery telling matching's saved searches about new listings)
goes through `domain_modules`, never an import.

Each may have `models.py` (tables) and `router.py` (HTTP endpoints); app.py and
market/models.py pick them up from this list, so adding a domain is one line here.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

DOMAINS = (
    "auth",
    "audit",
    "outbox",
    "organizations",
    "listings",
    "discovery",
    "matching",
    "deals",
    "contracts",
    "stats",
    "payments",
)


def domain_modules(kind: str) -> list[ModuleType]:
    """Import `market.<domain>.<kind>` for every domain that has one."""
    modules = []
    for domain in DOMAINS:
        package, name = f"market.{domain}", f"market.{domain}.{kind}"
        if importlib.util.find_spec(package) and importlib.util.find_spec(name):
            modules.append(importlib.import_module(name))
    return modules
