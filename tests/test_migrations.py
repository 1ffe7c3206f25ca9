"""The migrations are the schema: they must match the models and run both ways."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from market import migrate
from market.models import metadata
from tests.support.database import migrated_database


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    summary = [_describe(difference) for difference in differences]
    assert summary == [], f"models differ from migrations (write a migration): {summary}"


def _describe(difference: object) -> str:
    if isinstance(difference, list):  # column-level changes come grouped
        return "; ".join(_describe(item) for item in difference)
    operation, *details = difference  # type: ignore[misc]
    names = [getattr(item, "name", None) or str(item) for item in details[:3]]
    return f"{operation} {' '.join(str(name) for name in names)}"


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    with migrated_database(tmp_path) as engine:
        url = engine.url.render_as_string(hide_password=False)
        command.downgrade(migrate.alembic_config(url), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        assert {"users", "organizations", "results", "demands"} <= set(
            inspect(engine).get_table_names()
        )


def test_single_head() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1, "migrations have branched: merge the heads"
