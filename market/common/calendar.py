"""The market's calendar: what day it is in Ningbo, and the periods statistics use.

Dates the market reasons about (a listing's last valid day, a contract's registration
day, the "as of" day of the bureau's statistics) are China Standard Time calendar days,
whatever zone the server's clock is in. China has had no daylight saving since 1991, so
a fixed offset is exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from market.db import utcnow

CHINA_TIME = timezone(timedelta(hours=8), "CST")


def market_today(now: datetime | None = None) -> date:
    """Today's date in China (or the China-time date of `now`)."""
    return (now or utcnow()).astimezone(CHINA_TIME).date()


def end_of_market_day(day: date) -> datetime:
    """The first UTC instant after `day` ends in China: the cut-off for "as of day"."""
    return datetime.combine(day + timedelta(days=1), time(), CHINA_TIME).astimezone(UTC)


def quarter_of(day: date) -> int:
    return (day.month - 1) // 3 + 1


def month_number(day: date) -> int:
    """YYYYMM: how the statistics' roll-up names a month."""
    return day.year * 100 + day.month
