"""State transitions as compare-and-set, and count-then-insert limits under concurrency.

A transition reads a row, decides from its state, then writes. Two requests that read
the same state would both decide yes and both write (the last writer wins, each writes
its own audit event). So the write itself checks the state it was decided on:

    UPDATE t SET status = :to, ... WHERE id = :id AND status = :seen [AND ...]

and the row count says whether this request won. The loser raises before it writes its
audit event or outbox row, so only the winner leaves a trace. This holds without
relying on any lock the caller took before: on PostgreSQL (READ COMMITTED) the second
UPDATE waits for the first transaction, then re-checks its WHERE on the new row version
and matches nothing; on SQLite writers are serialised and each UPDATE reads the latest
committed row.

`claim` is the same compare-and-set with the state kept: a change that is allowed
only in some states (editing a draft, calling Stripe for a held deposit) claims the
row first, which fails if the state moved and otherwise keeps the row (PostgreSQL's
row lock, SQLite's write lock) until the request commits.

`lock_owner_row` is for limits ("at most 20 saved searches per user"): counting and
inserting are two statements, so parallel requests would all count 19 and all insert.
A no-op UPDATE of the owning row before counting makes them take turns: on PostgreSQL
it takes the row lock (the next request's count, a new statement, sees the rows the
previous one committed), on SQLite the write lock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, inspect, update
from sqlmodel import Session, SQLModel

from market.errors import InvalidTransition

CHANGED_MEANWHILE = "It changed meanwhile (another request came first); reload it and try again"


def compare_and_set(
    session: Session,
    model: type[SQLModel],
    row_id: Any,
    *,
    expected: str | Collection[str],
    values: Mapping[str, Any],
    state: str = "status",
    also: Sequence[ColumnElement[bool]] = (),
) -> bool:
    """Apply `values` to the row only while its `state` column is `expected` (and the
    `also` conditions hold); True when this call changed it.

    Objects of the row already loaded in the session are brought up to date."""
    column = getattr(model, state)
    condition = column == expected if isinstance(expected, str) else column.in_(expected)
    statement = (
        update(model)
        .where(_primary_key(model) == row_id, condition, *also)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    return session.exec(statement).rowcount == 1


def move(
    session: Session,
    row: SQLModel,
    values: Mapping[str, Any],
    *,
    state: str = "status",
    also: Sequence[ColumnElement[bool]] = (),
    lost: str = CHANGED_MEANWHILE,
) -> str:
    """Compare-and-set from the state the caller loaded and decided on; returns that
    state. Raises InvalidTransition (409) when another request moved the row first.

    Pass the new state and every column that goes with it in `values` instead of
    setting them on the object: an attribute set beforehand would be flushed as a
    plain UPDATE ahead of the check. The row is reloaded after the move: a change
    another request committed meanwhile without moving the state (an edit) is part
    of what this request moved, and its response must show it."""
    seen = _loaded_state(row, state)
    if not compare_and_set(
        session, type(row), _identity(row), expected=seen, values=values, state=state, also=also
    ):
        raise InvalidTransition(lost)
    session.refresh(row)
    return seen


def claim(
    session: Session,
    row: SQLModel,
    *,
    state: str = "status",
    also: Sequence[ColumnElement[bool]] = (),
    lost: str = CHANGED_MEANWHILE,
) -> str:
    """Keep the row in the state the caller loaded for the rest of the transaction, or
    raise InvalidTransition if it is no longer in it; returns that state.

    The row is reloaded (see `move`): a request that waited here for another one sees
    what that one committed, so what it checks next is what it will write."""
    return move(session, row, {state: _loaded_state(row, state)}, state=state, also=also, lost=lost)


def lock_owner_row(session: Session, model: type[SQLModel], row_id: Any) -> None:
    """Make count-then-insert limits of one owner (a user, an organisation, a contract)
    take turns: call it before counting. Held until the transaction ends."""
    key = _primary_key(model)
    statement = (
        update(model)
        .where(key == row_id)
        .values({key.key: key})
        .execution_options(synchronize_session=False)
    )
    if session.exec(statement).rowcount != 1:
        raise LookupError(f"no {model.__name__} row {row_id} to lock")


def _primary_key(model: type[SQLModel]) -> Any:
    [key] = inspect(model).primary_key
    return getattr(model, key.key)


def _identity(row: SQLModel) -> Any:
    [row_id] = inspect(row).identity or (None,)
    if row_id is None:
        raise ValueError(f"{type(row).__name__} is not stored yet: nothing to compare")
    return row_id


def _loaded_state(row: SQLModel, state: str) -> str:
    attribute = inspect(row).attrs[state]
    if attribute.history.has_changes():
        # The compare would use the caller's new value, not the one it decided on.
        raise ValueError(f"{type(row).__name__}.{state} was set before the compare-and-set")
    return str(getattr(row, state))
