from __future__ import annotations

import pytest

from tests.deals.journey import Cast, make_cast
from tests.support.factories import Market


@pytest.fixture
def cast(market: Market) -> Cast:
    return make_cast(market)
