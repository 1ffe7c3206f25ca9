from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from market.common.text import normalize_user_text


class Dimension(StrEnum):
    """What a breakdown groups the trade volume by."""

    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    CONTRACT_TYPE = "contract_type"
    FIELD = "field"
    SELLER_DISTRICT = "seller_district"  # 输出: where the technology comes from
    BUYER_DISTRICT = "buyer_district"  # 吸纳: where it goes
    SELLER_KIND = "seller_kind"
    BUYER_KIND = "buyer_kind"
    BROKER = "broker"


class Totals(BaseModel):
    contract_count: int
    total_amount_fen: int  # 成交额
    technology_amount_fen: int  # 技术交易额
    currency: str = "CNY"


class BreakdownRow(Totals):
    key: str
    label: str


class Breakdown(BaseModel):
    dimension: Dimension
    as_of: date
    year: int | None
    rows: list[BreakdownRow]
    totals: Totals


class Summary(Totals):
    as_of: date
    year: int | None


class TargetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    year: int
    technology_amount_fen: int
    note: str
    updated_at: datetime


class TargetSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    technology_amount_fen: Annotated[int, Field(gt=0, le=10**16)]
    note: Annotated[str, Field(max_length=300)] = ""

    def clean_note(self) -> str:
        return normalize_user_text(self.note)


class Progress(BaseModel):
    """How far the year's 技术交易额 is from its target, as of a day."""

    year: int
    as_of: date
    target_fen: int
    reached_fen: int
    remaining_fen: int
    share_reached: float  # reached / target, e.g. 0.4375
    months_remaining: int
    pace_needed_per_month_fen: int | None  # None once the year is over
    days_elapsed: int
    projected_year_fen: int | None  # at the run rate so far; None before the year starts
    on_track: bool | None
