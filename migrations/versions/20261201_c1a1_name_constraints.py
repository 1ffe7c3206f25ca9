"""name constraints

Gives every primary key, unique and foreign key constraint the name of the naming
convention in market/db.py: pk_<table>, uq_<table>_<columns>, fk_<table>_<columns>_<referred
table> (copied here: a migration must keep doing what it did when the convention changes).

A database made before the convention has PostgreSQL's own names (<table>_pkey,
<table>_<columns>_key, <table>_<columns>_fkey) or, on SQLite, none. One made since has the
convention's names already (Alembic's create_table applies the models' convention), and
then this migration changes nothing. The constraints that 0001-0006 named themselves keep
their names, both ways.

PostgreSQL renames in place (ALTER TABLE ... RENAME CONSTRAINT: no rewrite, a moment's
lock). SQLite cannot rename a constraint, so a table whose names change is rebuilt in batch
mode (copy, drop, rename) with foreign keys off meanwhile, as SQLite's own procedure for
altering a table prescribes: dropping a referenced table would otherwise fail. The
references are checked (no broken one may appear) before foreign keys are on again, and
the append-only triggers, which a rebuild drops with the old table, are created again.

Revision ID: c1a1
Revises: 0006
Created: 2026-12-01 20:40:00
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import op

revision: str = "c1a1"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names 0001-0006 gave in their own right (one happens to be the convention's too): they
# are never renamed, in either direction.
NAMED_BY_EARLIER_MIGRATIONS = frozenset(
    {
        "uq_idempotency_keys_scope_key",
        "uq_contract_milestones_position",
        "uq_ledger_entries_contract_sequence",
        "uq_matches_pair_viewer",
        "uq_notifications_search_listing",
    }
)
# Tables with a trigger refusing UPDATE (0002, 0004) that a SQLite rebuild must restore.
APPEND_ONLY_TABLES = ("ledger_entries", "deal_events", "payment_ledger")


@dataclass(frozen=True)
class Named:
    """A primary key ("pk"), unique ("uq") or foreign key ("fk") constraint."""

    table: str
    kind: str
    columns: tuple[str, ...]
    referred_table: str | None = None

    @property
    def conventional_name(self) -> str:
        joined = "_".join(self.columns)
        return {
            "pk": f"pk_{self.table}",
            "uq": f"uq_{self.table}_{joined}",
            "fk": f"fk_{self.table}_{joined}_{self.referred_table}",
        }[self.kind]

    @property
    def postgresql_default_name(self) -> str:
        # PostgreSQL's choice for an unnamed constraint; ours are all far below the 63
        # characters where it would start shortening them.
        if self.kind == "pk":
            return f"{self.table}_pkey"
        suffix = {"uq": "key", "fk": "fkey"}[self.kind]
        return f"{self.table}_{'_'.join(self.columns)}_{suffix}"


# Given a constraint and its current name, the name it should have (maybe the same).
Renaming = Callable[[Named, str | None], str | None]


def _to_convention(constraint: Named, current: str | None) -> str | None:
    if current in (None, constraint.postgresql_default_name):
        return constraint.conventional_name
    return current


def _from_convention(constraint: Named, current: str | None) -> str | None:
    if current == constraint.conventional_name and current not in NAMED_BY_EARLIER_MIGRATIONS:
        is_postgresql = op.get_bind().dialect.name == "postgresql"
        return constraint.postgresql_default_name if is_postgresql else None
    return current


def upgrade() -> None:
    _apply(_to_convention)


def downgrade() -> None:
    _apply(_from_convention)


def _apply(renaming: Renaming) -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rename_on_postgresql(renaming)
    else:
        _rebuild_on_sqlite(renaming)


def _application_tables(bind: sa.Connection) -> list[str]:
    return [name for name in sa.inspect(bind).get_table_names() if name != "alembic_version"]


def _rename_on_postgresql(renaming: Renaming) -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in _application_tables(bind):
        primary_key = inspector.get_pk_constraint(table)
        found = [
            (Named(table, "pk", tuple(primary_key["constrained_columns"])), primary_key["name"])
        ]
        found += [
            (Named(table, "uq", tuple(unique["column_names"])), unique["name"])
            for unique in inspector.get_unique_constraints(table)
        ]
        found += [
            (
                Named(
                    table, "fk", tuple(foreign["constrained_columns"]), foreign["referred_table"]
                ),
                foreign["name"],
            )
            for foreign in inspector.get_foreign_keys(table)
        ]
        for constraint, current in found:
            wanted = renaming(constraint, current)
            if wanted != current:
                op.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{current}" TO "{wanted}"')


def _rebuild_on_sqlite(renaming: Renaming) -> None:
    bind = op.get_bind()
    with op.get_context().autocommit_block():  # the pragma is ignored inside a transaction
        op.execute("PRAGMA foreign_keys=OFF")
    broken_before = _broken_references(bind)
    rebuilt = [table for table in _application_tables(bind) if _rebuild_one(bind, table, renaming)]
    for table in set(rebuilt) & set(APPEND_ONLY_TABLES):
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: insert a correcting row instead'); END
        """)
    # Rows that referred to nothing before are not this migration's to judge; any new one
    # would mean a rebuild lost rows.
    broken = _broken_references(bind) - broken_before
    if broken:
        raise RuntimeError(f"rows refer to rows that do not exist: {sorted(broken)[:5]}")
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=ON")


def _broken_references(bind: sa.Connection) -> set[tuple[object, ...]]:
    return {tuple(row) for row in bind.exec_driver_sql("PRAGMA foreign_key_check")}


def _rebuild_one(bind: sa.Connection, table_name: str, renaming: Renaming) -> bool:
    """Rebuild the table if any of its constraints changes name; True when it did."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=bind)
    changed = False
    for constraint in table.constraints:
        described = _described(table_name, constraint)
        if described is None:
            continue
        wanted = renaming(described, constraint.name)  # type: ignore[arg-type]
        if wanted != constraint.name:
            constraint.name = wanted
            changed = True
    if changed:
        with op.batch_alter_table(table_name, copy_from=table, recreate="always"):
            pass
    return changed


def _described(table: str, constraint: sa.Constraint) -> Named | None:
    columns = tuple(column.name for column in constraint.columns)  # type: ignore[attr-defined]
    if isinstance(constraint, sa.PrimaryKeyConstraint):
        return Named(table, "pk", columns)
    if isinstance(constraint, sa.UniqueConstraint):
        return Named(table, "uq", columns)
    if isinstance(constraint, sa.ForeignKeyConstraint):
        return Named(table, "fk", columns, constraint.referred_table.name)
    return None
