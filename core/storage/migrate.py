"""Schema migrations with Alembic, on SQLite and PostgreSQL, under a lock.

``upgrade()`` runs every revision not yet applied in one transaction that no other process runs
at the same time: on SQLite the write lock (``BEGIN IMMEDIATE``), on PostgreSQL a transaction-level
advisory lock. Two processes starting at once never apply a migration twice; the second finds the
work done.

A SQLite database made before Alembic carries its numbered SQL migrations in
``schema_migrations`` (``migrations/0001…0009``). Such a database is upgraded in place: the
numbered files it lacks are applied first, then it is stamped with the baseline revision, which
is exactly that schema, and the later revisions run as on any database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from core.storage.db import Database

HERE = Path(__file__).parent
SCRIPT_LOCATION = HERE / "alembic"
LEGACY_DIR = HERE / "migrations"
# The revision that equals the last numbered SQL migration's schema.
BASELINE = "0001"
LEGACY_LAST = 9
# The advisory lock of schema migrations on PostgreSQL.
MIGRATION_LOCK = "schema-migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (triggers included)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf[:80]!r}")
    return statements


def legacy_migrations() -> list[tuple[int, str, Path]]:
    """The numbered SQL migrations of SQLite databases made before Alembic."""
    found = []
    for path in sorted(LEGACY_DIR.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append((int(number), name, path))
    return found


def _finish_legacy(conn: Connection) -> list[str]:
    """Bring a pre-Alembic SQLite database to the last numbered migration; return what ran."""
    applied = {row[0] for row in conn.exec_driver_sql("SELECT version FROM schema_migrations")}
    done = []
    for number, name, path in legacy_migrations():
        if number in applied:
            continue
        for statement in split_statements(path.read_text(encoding="utf-8")):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (number, name))
        done.append(f"{number:04d}_{name}")
    return done


def _upgrade(conn: Connection) -> list[str]:
    tables = set(inspect(conn).get_table_names())
    config = alembic_config()
    config.attributes["connection"] = conn
    done: list[str] = []
    if "schema_migrations" in tables and "alembic_version" not in tables:
        done += _finish_legacy(conn)
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    return done + list(config.attributes.get("applied", []))


async def upgrade(db: Database) -> list[str]:
    """Apply every migration not yet applied, in one locked transaction. Idempotent: returns
    the revisions applied (empty when the schema was up to date)."""
    if await current_revision(db) == head():
        return []
    async with db.locked(MIGRATION_LOCK) as tx:
        return await tx.conn.run_sync(_upgrade)


def _current(conn: Connection) -> Any:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(db: Database) -> str | None:
    """The Alembic revision the database is at (None: not created yet)."""
    async with db.read(snapshot=False) as tx:
        return await tx.conn.run_sync(_current)


async def pending_revisions(db: Database) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    current = await current_revision(db)
    return [s.revision for s in reversed(list(script.iterate_revisions("head", current)))]
