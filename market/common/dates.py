"""Dates people enter: contracts, milestones, payouts, validity and deadlines.

The calendar allows 0001-01-01 to 9999-12-31, but no technology contract of this
market was signed before the reform era, and nothing is due after this century; such
dates are typing mistakes (or probes for overflow in day arithmetic), so every request
date field is a `PlausibleDate` and anything outside the range is a 422 naming it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

EARLIEST_PLAUSIBLE_DATE = date(1980, 1, 1)
LATEST_PLAUSIBLE_DATE = date(2100, 12, 31)


def plausible_date(value: date) -> date:
    if not EARLIEST_PLAUSIBLE_DATE <= value <= LATEST_PLAUSIBLE_DATE:
        raise PydanticCustomError(
            "date_out_of_range",
            "must be between {earliest} and {latest}",
            {
                "earliest": EARLIEST_PLAUSIBLE_DATE.isoformat(),
                "latest": LATEST_PLAUSIBLE_DATE.isoformat(),
            },
        )
    return value


PlausibleDate = Annotated[date, AfterValidator(plausible_date)]
