"""The catalogue's test helpers: valid payloads and the steps of the lifecycle over HTTP
(the `catalogue` fixture is registered by tests/listings/conftest.py and others)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from market.common.calendar import market_today
from market.listings.patents import check_character
from tests.support.factories import Account, Market

_serials = itertools.count(1)


def today() -> date:
    return market_today()


def days_from_today(days: int) -> str:
    return (today() + timedelta(days=days)).isoformat()


def new_invention_number() -> str:
    """A fresh, valid 2017 invention application number (fixtures only)."""
    digits = f"20171{next(_serials):07d}"
    return f"CN{digits}.{check_character(digits)}"


def result_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "title": f"一种高镍三元正极材料的共沉淀制备方法{next(_serials)}",
        "summary": "本成果提供一种高镍三元正极材料的共沉淀制备方法，循环寿命提升百分之三十以上。",
        "keywords": ["锂电池", "正极材料"],
        "field": "新材料",
        "ipc_codes": ["H01M10/052"],
        "ip_form": "技术秘密",
        "maturity_stage": "中试",
        "transfer_modes": ["转让", "许可"],
        "price_fen": 50_000_000,
        "valid_until": days_from_today(180),
    }
    payload.update(overrides)
    return payload


def demand_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "title": f"注塑件表面缩痕缺陷的工艺改进需求{next(_serials)}",
        "description": (
            "我公司生产的家电外壳注塑件存在表面缩痕，需要从模具和工艺两方面提出改进方案。"
        ),
        "keywords": ["注塑", "缩痕"],
        "field": "高端装备",
        "cooperation_modes": ["合作开发"],
        "budget_min_fen": 10_000_000,
        "budget_max_fen": 30_000_000,
        "valid_until": days_from_today(90),
    }
    payload.update(overrides)
    return payload


PAYLOADS = {"result": result_payload, "demand": demand_payload}


@dataclass
class Catalogue:
    """Drives the catalogue over HTTP the way its users do."""

    client: TestClient
    market: Market
    engine: Engine
    _bureau: Account | None = field(default=None, init=False)

    @property
    def bureau(self) -> Account:
        if self._bureau is None:
            self._bureau = self.market.bureau_staff()
        return self._bureau

    def maker(self, kind: str, **kwargs: Any) -> Account:
        """A member of an organisation that may post this kind of listing."""
        if kind == "result":
            return self.market.institute_member(**kwargs)
        return self.market.enterprise_member(**kwargs)

    def create(self, kind: str, owner: Account, **overrides: Any) -> dict[str, Any]:
        response = self.client.post(
            f"/{kind}s", json=PAYLOADS[kind](**overrides), headers=owner.headers
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def submit(self, kind: str, owner: Account, listing_id: int) -> dict[str, Any]:
        response = self.client.post(f"/{kind}s/{listing_id}/submit", headers=owner.headers)
        assert response.status_code == 200, response.text
        submitted: dict[str, Any] = response.json()
        return submitted

    def review(self, kind: str, listing_id: int, decision: str, reason: str = "") -> Any:
        return self.client.post(
            f"/{kind}s/{listing_id}/review",
            json={"decision": decision, "reason": reason},
            headers=self.bureau.headers,
        )

    def submitted(self, kind: str, owner: Account, **overrides: Any) -> dict[str, Any]:
        listing = self.create(kind, owner, **overrides)
        return self.submit(kind, owner, listing["id"])

    def published(self, kind: str, owner: Account, **overrides: Any) -> dict[str, Any]:
        listing = self.submitted(kind, owner, **overrides)
        response = self.review(kind, listing["id"], "approve")
        assert response.status_code == 200, response.text
        published: dict[str, Any] = response.json()
        return published

    def get(self, kind: str, listing_id: int, account: Account | None = None) -> Any:
        headers = account.headers if account else {}
        return self.client.get(f"/{kind}s/{listing_id}", headers=headers)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        """Look at (or age) rows directly, as the worker or a clock change would."""
        with self.engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []


@pytest.fixture
def catalogue(client: TestClient, market: Market, engine: Engine) -> Iterator[Catalogue]:
    yield Catalogue(client, market, engine)
