"""`market stats ...`: maintenance of the statistics' derived data."""

from __future__ import annotations

import time

import typer

from market.config import get_settings
from market.contracts import rollup
from market.db import make_engine, session_scope

stats_cli = typer.Typer(help="Trade-volume statistics.", no_args_is_help=True)


@stats_cli.command("rebuild-rollup")
def rebuild_rollup() -> None:
    """Recompute the dashboard's monthly roll-up from the ledger, in one transaction.

    Safe while the application runs: dashboards keep reading the old rows until the
    commit, and on PostgreSQL new ledger entries wait for it."""
    engine = make_engine(get_settings().effective_database_url)
    started = time.perf_counter()

    def progress(dimension: str, rows: int) -> None:
        typer.echo(f"{dimension:<16} {rows:>8,} rows  {time.perf_counter() - started:6.1f} s")

    try:
        with session_scope(engine) as session:
            typer.echo(f"rebuilding ledger_rollup ({len(rollup.DIMENSIONS)} dimensions)")
            written = rollup.rebuild(session, progress)
    finally:
        engine.dispose()
    typer.echo(f"ledger_rollup rebuilt: {written:,} rows in {time.perf_counter() - started:.1f} s")
