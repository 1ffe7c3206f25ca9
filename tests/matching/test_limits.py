"""Per-account limits hold under parallel requests (SQLite and PostgreSQL).

Counting and inserting are two statements: without a lock on the owner, parallel
creations all count the same number and all insert. `market.common.transitions.
lock_owner` serialises them on the account's row, so the limit is exact.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import Engine

from market.matching.service import MAX_SAVED_SEARCHES_PER_USER
from tests.support.factories import Market
from tests.support.parallel import fire, post, statuses

RACERS = 25


def _saved_searches_of(engine: Engine, user_id: int) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM saved_searches WHERE user_id = :id"), {"id": user_id}
            ).scalar_one()
        )


def test_parallel_saved_search_creations_stop_at_the_limit(
    app: FastAPI, market: Market, engine: Engine
) -> None:
    member = market.enterprise_member()
    colleague = market.enterprise_member()
    calls = [
        post(
            "/saved-searches",
            member.headers,
            {"catalogue": "results", "name": f"磁材{n}", "q": "钕铁硼"},
        )
        for n in range(RACERS)
    ]
    # A colleague's searches count against the colleague only, even in the same race.
    calls += [
        post(
            "/saved-searches",
            colleague.headers,
            {"catalogue": "demands", "name": f"注塑{n}", "q": "缩痕"},
        )
        for n in range(3)
    ]

    responses = fire(app, calls)

    mine = responses[:RACERS]
    assert statuses(mine) == {
        201: MAX_SAVED_SEARCHES_PER_USER,
        409: RACERS - MAX_SAVED_SEARCHES_PER_USER,
    }, [r.text for r in mine if r.status_code not in (201, 409)]
    assert {r.json()["code"] for r in mine if r.status_code == 409} == {"saved_search_limit"}
    assert statuses(responses[RACERS:]) == {201: 3}
    assert _saved_searches_of(engine, member.user_id) == MAX_SAVED_SEARCHES_PER_USER
    assert _saved_searches_of(engine, colleague.user_id) == 3
