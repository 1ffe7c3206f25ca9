"""The `market` command: serve, migrate, load demo data, manage accounts."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from market import demo, logging_config, migrate
from market.config import ConfigurationError, Settings, get_settings
from market.db import make_engine, session_scope
from market.payments.reconcile import payments_cli
from market.stats.cli import stats_cli

app = typer.Typer(help="TechMarket: the Ningbo city technology market API.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data for trying every flow.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(payments_cli, name="payments")
app.add_typer(stats_cli, name="stats")


def _settings() -> Settings:
    settings = get_settings()
    settings.check_production_safety()
    logging_config.configure(settings)
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.effective_database_url)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Apply migrations, load demo data on an empty database, and serve the API."""
    import uvicorn

    settings = _settings()
    _refuse(settings.check_bind_safety, host)
    migrate.upgrade(settings.effective_database_url)
    if settings.demo_data_allowed:
        _load_demo(settings, only_if_empty=True)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    typer.secho(f"TechMarket API on http://{shown_host}:{port}", fg=typer.colors.GREEN)
    typer.secho(f"Interactive docs: http://{shown_host}:{port}/docs", fg=typer.colors.GREEN)
    trusted_proxies = trusted_proxy_addresses(settings)
    uvicorn.run(
        "market.asgi:app",
        host=host,
        port=port,
        workers=workers,
        # The stack's name and version help nobody but someone matching known flaws.
        server_header=False,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=trusted_proxies,
        log_config=logging_config.dict_config(settings),
    )


def trusted_proxy_addresses(settings: Settings) -> str | None:
    """Whose X-Forwarded-For/-Proto uvicorn believes; None: nobody's (proxy headers off).

    uvicorn's own default trusts them from 127.0.0.1, so any local client (or a proxy
    passing the header through) could choose its address and slip past the per-address
    login limits: only the proxies MARKET_FORWARDED_ALLOW_IPS names are believed."""
    return settings.forwarded_allow_ips.strip() or None


def _refuse(check: Callable[[str], None], value: str) -> None:
    """Run a safety check; an unsafe setting ends the command with its message."""
    try:
        check(value)
    except ConfigurationError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from error


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    settings = _settings()
    migrate.upgrade(settings.effective_database_url, revision)
    typer.echo(f"database at {revision}: {', '.join(sorted(_heads(settings)))}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
    """Migrate the schema down to REVISION."""
    settings = _settings()
    migrate.downgrade(settings.effective_database_url, revision)
    typer.echo(f"database at {', '.join(sorted(_heads(settings))) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database."""
    typer.echo(", ".join(sorted(_heads(_settings()))) or "base (empty)")


def _heads(settings: Settings) -> set[str]:
    return migrate.current_heads(settings.effective_database_url)


@demo_app.command("load")
def demo_load() -> None:
    """Load demo organisations, accounts, 1,000 real research results and demands."""
    settings = _settings()
    if settings.is_production:
        typer.secho(
            "error: demo data is never loaded in production (its accounts share a "
            "published password)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=2)
    migrate.upgrade(settings.effective_database_url)
    _load_demo(settings, only_if_empty=False)


def _load_demo(settings: Settings, *, only_if_empty: bool) -> None:
    engine = _engine(settings)
    with session_scope(engine) as session:
        if demo.is_loaded(session):
            if not only_if_empty:
                typer.echo("the database already has data; demo data not loaded")
            return
    # Vectors first: a worker indexing the new listings then finds theirs at once.
    _load_shipped_vectors(settings, engine)
    total = len(demo.research_records())
    with typer.progressbar(length=total, label="Loading demo research results") as bar:
        counts = demo.load(engine, progress=bar.update)
    typer.echo(", ".join(f"{count} {kind}" for kind, count in counts.items()))
    typer.echo(f"Demo accounts (password {demo.DEMO_PASSWORD!r}):")
    for prefix, display_name, _org, role in demo.ACCOUNTS:
        typer.echo(f"  {prefix + '@demo.techmarket.cn':<40} {role:<13} {display_name}")
    engine.dispose()


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="Login email of the new account")],
    name: Annotated[str, typer.Option(help="Display name")] = "管理员",
    bureau_name: Annotated[str, typer.Option(help="The bureau organisation")] = "宁波市科学技术局",
    credit_code: Annotated[
        str, typer.Option(help="Bureau's unified social credit code (needed if it is new)")
    ] = "",
    staff: Annotated[bool, typer.Option(help="Bureau staff rather than admin")] = False,
) -> None:
    """Create a bureau admin (or staff) account; the password is read from
    MARKET_ADMIN_PASSWORD or asked for."""
    from market.accounts_admin import create_bureau_account

    settings = _settings()
    password = os.environ.get("MARKET_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    engine = _engine(settings)
    try:
        user_id = create_bureau_account(
            engine,
            email=email,
            display_name=name,
            password=password,
            bureau_name=bureau_name,
            credit_code=credit_code,
            staff=staff,
        )
    except ValueError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from error
    typer.echo(f"created account {user_id} <{email}>")


@app.command()
def openapi(
    check: Annotated[bool, typer.Option(help="Fail if openapi.yaml is stale")] = False,
) -> None:
    """Write openapi.yaml from the application's routes and schemas."""
    from market.openapi_export import OPENAPI_FILE, render_openapi

    rendered = render_openapi()
    if check:
        current = OPENAPI_FILE.read_text(encoding="utf-8") if OPENAPI_FILE.exists() else ""
        if current != rendered:
            typer.secho("openapi.yaml is stale: run `market openapi`", fg=typer.colors.RED)
            raise typer.Exit(code=1)
        typer.echo("openapi.yaml is up to date")
        return
    OPENAPI_FILE.write_text(rendered, encoding="utf-8")
    typer.echo(f"wrote {OPENAPI_FILE}")


# --- search: worker, reindex, outbox operations (docs/SEARCH.md) ------------------------

outbox_app = typer.Typer(help="The outbox that feeds the search index.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Drain what is due, then exit")] = False,
) -> None:
    """Drain the outbox into the search engine, and give listings their vectors, until
    SIGTERM/SIGINT (several may run at once on PostgreSQL)."""
    from market.discovery import indexing, workers
    from market.discovery.engine import embedder_from_settings, search_engine_from_settings

    settings = _settings()
    engine = _engine(settings)
    search_engine = search_engine_from_settings(settings)
    embedder = embedder_from_settings(settings)
    if once:
        policy = indexing.OutboxPolicy.from_settings(settings)
        settled = workers.drain_all(engine, search_engine, policy, embedder)
        typer.echo(f"settled {settled} outbox rows")
        return
    loop = workers.worker_loop(settings, engine, search_engine, embedder)
    loop.stop_on_signals()
    typer.echo(f"outbox worker: {settings.search_backend} search, Ctrl-C to stop")
    loop.run()
    typer.echo("outbox worker stopped")


@app.command()
def reindex(
    catalogue: Annotated[
        str, typer.Option(help="results, demands or all", case_sensitive=False)
    ] = "all",
) -> None:
    """Rebuild search indexes from the database and swap them in (no search downtime)."""
    from market.discovery import indexing
    from market.discovery.engine import embedder_from_settings, search_engine_from_settings
    from search.documents import CATALOGUES

    if catalogue not in (*CATALOGUES, "all"):
        typer.secho("--catalogue must be results, demands or all", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    settings = _settings()
    engine = _engine(settings)
    search_engine = search_engine_from_settings(settings)
    search_engine.ensure_indexes()
    chosen = [name for name in CATALOGUES if catalogue in (name, "all")]
    for name in chosen:
        # The document count is unknown while streaming, so a counter line, not a bar.
        def progress(indexed: int, name: str = name) -> None:
            typer.echo(f"\r{name}: {indexed} indexed", nl=False)

        report = indexing.reindex(
            engine, search_engine, name, progress, embedder=embedder_from_settings(settings)
        )
        typer.echo(
            f"\r{name}: {report.indexed} indexed, swapped in; "
            f"{report.reapplied} changed meanwhile re-applied"
        )


@outbox_app.command("failures")
def outbox_failures(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List outbox rows a worker gave up on, newest first."""
    from market.discovery import backfill, indexing

    with session_scope(_engine(_settings())) as session:
        rows, total = indexing.failed_events(session, 0, limit)
        status = indexing.outbox_status(session)
        waiting = backfill.pending_backfill(session)
    typer.echo(
        f"{total} failed, {status.pending} pending for search, "
        f"{waiting} listings waiting for a vector"
    )
    for row in rows:
        typer.echo(
            f"#{row.id} {row.topic} {row.entity_type} {row.entity_id} "
            f"attempts={row.attempts} failed_at={row.failed_at:%Y-%m-%d %H:%M:%S}"
            f"\n    {row.last_error}"
        )


@outbox_app.command("retry")
def outbox_retry(event_id: Annotated[int, typer.Argument(help="Outbox row id")]) -> None:
    """Queue a failed outbox row again."""
    from market.discovery import indexing

    with session_scope(_engine(_settings())) as session:
        event = indexing.retry_event(session, event_id)
    if event is None:
        typer.secho(f"no outbox row {event_id}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    typer.echo(f"outbox row {event_id} queued again")


# --- embeddings (docs/SEARCH.md, "Embeddings") ------------------------------------------

embeddings_app = typer.Typer(help="Embedding vectors for semantic search.", no_args_is_help=True)
app.add_typer(embeddings_app, name="embeddings")


@embeddings_app.command("build-cache")
def embeddings_build_cache(
    output: Annotated[
        Path | None, typer.Option(help="Where to write (default: the shipped file)")
    ] = None,
) -> None:
    """Embed the shipped research records (minutes of one core) into the cache file."""
    from market.discovery import vectors
    from market.discovery.engine import embedder_from_settings

    embedder = embedder_from_settings(get_settings())
    if embedder is None:
        typer.secho("MARKET_EMBEDDER=none: nothing to embed with", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    total = len(vectors.shipped_record_texts())
    label = f"Embedding with {embedder.model_id}"
    if sys.stdout.isatty():
        with typer.progressbar(length=total, label=label) as bar:
            cache = vectors.build_shipped_cache(embedder, output, progress=bar.update)
    else:  # under nohup or in a log a bar shows nothing until the end: count in lines
        done = 0

        def report(count: int) -> None:
            nonlocal done
            done += count
            typer.echo(f"{label}: {done}/{total}")

        cache = vectors.build_shipped_cache(embedder, output, progress=report)
    typer.echo(f"wrote {len(cache.hashes)} vectors to {output or vectors.shipped_cache_path()}")


@embeddings_app.command("load-cache")
def embeddings_load_cache() -> None:
    """Copy the shipped vectors into the database's vector store (no embedding)."""
    settings = _settings()
    _load_shipped_vectors(settings, _engine(settings))


def _load_shipped_vectors(settings: Settings, engine: Engine) -> None:
    """The demo records' vectors from the shipped file, so the demo embeds nothing."""
    from market.discovery import vectors
    from market.discovery.engine import embedder_from_settings

    embedder = embedder_from_settings(settings)
    if embedder is None:
        typer.echo("MARKET_EMBEDDER=none: no vectors loaded")
        return
    with session_scope(engine) as session:
        sent = vectors.load_shipped_vectors(session, embedder.model_id)
    typer.echo(f"{sent} shipped {embedder.model_id} vectors in the vector store")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
