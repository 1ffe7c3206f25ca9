"""The migrations are the schema: they must match the models and run both ways."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    ForeignKeyConstraint,
    PrimaryKeyConstraint,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.schema import DEFAULT_NAMING_CONVENTION, ColumnCollectionConstraint
from sqlmodel import Session

from market import migrate
from market.auth.models import Role, User
from market.auth.organization import Organization, OrganizationKind
from market.db import make_engine
from market.models import metadata
from tests.support.database import (
    _fresh_postgres_database,
    migrated_database,
    postgres_server_url,
)


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    summary = [_describe(difference) for difference in differences]
    assert summary == [], f"models differ from migrations (write a migration): {summary}"


def _describe(difference: tuple[Any, ...] | list[Any]) -> str:
    """One of Alembic's differences: an (operation, object...) tuple, or a list of them."""
    if isinstance(difference, list):  # column-level changes come grouped
        return "; ".join(_describe(item) for item in difference)
    operation, *details = difference
    names = [getattr(item, "name", None) or str(item) for item in details[:3]]
    return f"{operation} {' '.join(str(name) for name in names)}"


# (table, kind, columns, name) of every primary key, unique and foreign key constraint.
ConstraintName = tuple[str, str, tuple[str, ...], str | None]
BEFORE_NAMING = "0006"  # the last revision before constraints were named


def _model_constraint_names() -> set[ConstraintName]:
    kinds: dict[type[ColumnCollectionConstraint], str] = {
        PrimaryKeyConstraint: "pk",
        UniqueConstraint: "uq",
        ForeignKeyConstraint: "fk",
    }
    return {
        (
            table.name,
            kinds[type(constraint)],
            tuple(column.name for column in constraint.columns),
            str(constraint.name),
        )
        for table in metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, ColumnCollectionConstraint) and type(constraint) in kinds
    }


def _database_constraint_names(engine: Engine) -> set[ConstraintName]:
    inspector = inspect(engine)
    names: set[ConstraintName] = set()
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        primary_key = inspector.get_pk_constraint(table)
        names.add((table, "pk", tuple(primary_key["constrained_columns"]), primary_key["name"]))
        names |= {
            (table, "uq", tuple(unique["column_names"]), unique["name"])
            for unique in inspector.get_unique_constraints(table)
        }
        names |= {
            (table, "fk", tuple(foreign["constrained_columns"]), foreign["name"])
            for foreign in inspector.get_foreign_keys(table)
        }
    return names


def test_every_constraint_has_the_name_the_models_give_it(engine: Engine) -> None:
    """A later migration can drop or alter any constraint by its model's name, on both
    databases (compare_metadata above does not compare primary or foreign key names)."""
    assert _database_constraint_names(engine) == _model_constraint_names()


@contextmanager
def _empty_database(workdir: Path) -> Iterator[str]:
    """The URL of a database with no tables, on the server the suite runs against."""
    server_url = postgres_server_url()
    if server_url is None:
        yield f"sqlite:///{workdir / 'empty.db'}"
    else:
        with _fresh_postgres_database(server_url) as url:
            yield url


def _trigger_names(engine: Engine) -> set[str]:
    query = (
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    )
    with engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def test_a_database_made_before_the_naming_convention_gets_the_models_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _empty_database(tmp_path) as url:
        # Migrations 0001-0006 as they ran before the models had a naming convention.
        with monkeypatch.context() as before:
            before.setattr(metadata, "naming_convention", DEFAULT_NAMING_CONVENTION)
            migrate.upgrade(url, BEFORE_NAMING)
        engine = make_engine(url)
        unnamed = _database_constraint_names(engine)
        triggers = _trigger_names(engine)
        assert len(triggers) == 3  # the append-only tables', which a SQLite rebuild drops
        credit_code = {
            name
            for table, kind, columns, name in unnamed
            if (table, kind, columns) == ("organizations", "uq", ("credit_code",))
        }
        assert credit_code in ({None}, {"organizations_credit_code_key"})
        with Session(engine) as session:  # rows that refer to rows of other tables
            organization = Organization(
                name="宁波测试研究院",
                kind=OrganizationKind.INSTITUTE,
                credit_code="12330200MB0000000X",
                district_code="330212",
            )
            session.add(organization)
            session.flush()
            assert organization.id is not None  # flushed
            session.add(
                User(
                    email="a@example.cn",
                    display_name="张三",
                    password_hash="-",
                    role=Role.MEMBER,
                    organization_id=organization.id,
                )
            )
            session.commit()

        migrate.upgrade(url)
        assert _database_constraint_names(engine) == _model_constraint_names()
        assert _trigger_names(engine) == triggers
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT u.email, o.name FROM users u JOIN "
                    "organizations o ON o.id = u.organization_id"
                )
            ).all()
            assert [tuple(row) for row in rows] == [("a@example.cn", "宁波测试研究院")]
            with pytest.raises(IntegrityError):  # foreign keys are enforced again
                connection.execute(text("UPDATE users SET organization_id = 999"))

        migrate.downgrade(url, BEFORE_NAMING)
        assert _database_constraint_names(engine) == unnamed
        engine.dispose()


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
