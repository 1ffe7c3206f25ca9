"""Bounded offset pagination shared by every list endpoint."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlmodel import Session, func, select
from sqlmodel.sql.expression import SelectOfScalar

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")


class PageParams(BaseModel):
    offset: int
    limit: int


def page_params(
    offset: Annotated[int, Query(ge=0, le=100_000, description="Items to skip")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page (max {MAX_PAGE_SIZE})")
    ] = DEFAULT_PAGE_SIZE,
) -> PageParams:
    return PageParams(offset=offset, limit=limit)


Paging = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    offset: int
    limit: int

    @classmethod
    def of(cls, items: list[ItemT], total: int, paging: PageParams) -> Page[ItemT]:
        """One page of already-presented items, echoing the request's paging."""
        return cls(items=items, total=total, offset=paging.offset, limit=paging.limit)


def paginate(
    session: Session, statement: SelectOfScalar[RowT], paging: PageParams, *order_by: Any
) -> tuple[list[RowT], int]:
    """One page of `statement`'s rows in `order_by` order, and how many rows there are.

    The count runs over the unordered statement (ordering a count is wasted work); the
    order should end with the id so that pages never overlap or skip a row.
    """
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    ordered = statement.order_by(*order_by).offset(paging.offset).limit(paging.limit)
    return list(session.exec(ordered).all()), total
