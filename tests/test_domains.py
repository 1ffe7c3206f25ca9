"""The import contract that `make lint` checks follows market/domains.py's order."""

from __future__ import annotations

import tomllib
from pathlib import Path

from market.domains import DOMAINS

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _layers_contract() -> list[str]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return list(layers)


def test_layers_are_the_domains_top_first() -> None:
    assert _layers_contract() == [f"market.{domain}" for domain in reversed(DOMAINS)]


def test_every_domain_is_forbidden_to_the_shared_modules() -> None:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (shared,) = [c for c in config["contracts"] if "market.common" in c.get("source_modules", [])]
    assert sorted(shared["forbidden_modules"]) == sorted(f"market.{d}" for d in DOMAINS)
