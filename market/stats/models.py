from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint
from sqlmodel import Field, SQLModel

from market.db import utcnow


class TradeTarget(SQLModel, table=True):
    """The bureau's 技术交易额 target for a year: data, so a new plan is an update, not code."""

    __tablename__ = "trade_targets"
    __table_args__ = (
        CheckConstraint("technology_amount_fen > 0", name="ck_trade_targets_positive"),
    )

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    technology_amount_fen: int = Field(sa_type=BigInteger)
    note: str = Field(default="", max_length=300)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_user_id: int | None = Field(default=None, foreign_key="users.id")
