"""Schema migrations with Alembic, on SQLite and PostgreSQL, under a lock.

``upgrade()`` runs every revision not yet applied in one transaction that no other process runs
at the same time: on SQLite the write lock (``BEGIN IMMEDIATE``), on PostgreSQL a transaction-level
advisory lock. Two processes starting at once never apply a migration twice; the second finds the
work done.

A SQLite database made before Alembic carries its numbered SQL migrations in
``schema_migrations`` (``migrations/0001…0009``). Such a database is upgraded in place: the
numbered files it lacks are applied first, then it is stamped with the baseline revision, which
is exactly that schema, and the later revisions run as on any database.

Every process upgrades at start, and almost always finds the schema current. Finding that out
does not load Alembic: the revision is read from ``alembic_version`` and the head from the
revision files' ``revision``/``down_revision`` lines. Alembic (with Mako, and Pygments where it
is installed: 4–10 MB that a long-running worker would keep for nothing) is imported only to
migrate, or when the files are not a plain chain.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from core.storage.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent
SCRIPT_LOCATION = HERE / "alembic"
VERSIONS = SCRIPT_LOCATION / "versions"
LEGACY_DIR = HERE / "migrations"
# The revision that equals the last numbered SQL migration's schema.
BASELINE = "0001"
LEGACY_LAST = 9
# The advisory lock of schema migrations on PostgreSQL.
MIGRATION_LOCK = "schema-migrations"

log = logging.getLogger(__name__)
# Alembic tells of every plugin and revision at INFO; an operator hears one line of ours.
logging.getLogger("alembic").setLevel(logging.WARNING)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def head() -> str:
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


_REVISION = re.compile(r'^revision(?::[^=\n]*)? = "([^"]+)"\s*$', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision(?::[^=\n]*)? = (?:None|"([^"]+)")\s*$', re.MULTILINE)


def declared_head() -> str | None:
    """The head revision as the revision files declare it, read without Alembic; None when
    they are not one plain chain of single revisions (a merge, two heads: Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(text), _DOWN_REVISION.search(text)
        if len(revision) != 1 or down is None:
            return None
        revisions.add(revision[0])
        if down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


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
    from alembic import command

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
    current = await current_revision(db)
    if current is not None and current == (declared_head() or head()):
        return []
    async with db.locked(MIGRATION_LOCK) as tx:
        applied: list[str] = await tx.conn.run_sync(_upgrade)
    if applied:
        log.info("database schema upgraded to revision %s (%d %s applied)", applied[-1],
                 len(applied), "revision" if len(applied) == 1 else "revisions")
    return applied


def _current(conn: Connection) -> Any:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(db: Database) -> str | None:
    """The Alembic revision the database is at (None: not created yet)."""
    if "alembic_version" not in await db.tables():
        return None
    rows = await db.fetchall("SELECT version_num FROM alembic_version")
    if len(rows) == 1:
        return str(rows[0][0])
    async with db.read(snapshot=False) as tx:  # none, or several heads: Alembic says
        return await tx.conn.run_sync(_current)


async def pending_revisions(db: Database) -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    current = await current_revision(db)
    return [s.revision for s in reversed(list(script.iterate_revisions("head", current)))]
