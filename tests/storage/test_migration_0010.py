"""Revision 0010: an existing database gains the teachers' tables in place, and loses them
again on a downgrade, its other data untouched."""

from __future__ import annotations

from alembic import command

from bot.services import build_services
from core.storage.db import Database
from core.storage.migrate import MIGRATION_LOCK, alembic_config, upgrade
from tests.support.school import SECRET, TZ, import_roster

TABLES = {"teachers", "teacher_classes", "teacher_links", "teacher_codes", "threads",
          "thread_messages"}


async def _run(db: Database, action: str, revision: str) -> None:
    def run(conn) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)

    async with db.locked(MIGRATION_LOCK) as tx:
        await tx.conn.run_sync(run)


async def test_0010_upgrades_in_place_and_downgrades(database_url):
    async with Database(database_url) as db:
        await _run(db, "upgrade", "0009")
        assert not TABLES & set(await db.tables())
        assert "0010" in await upgrade(db)
        assert TABLES <= set(await db.tables())
        services = build_services(db, SECRET, TZ)
        await import_roster(services)
        await _run(db, "downgrade", "0009")
        assert not TABLES & set(await db.tables())
        assert await db.scalar("SELECT COUNT(*) FROM students") == 5
        await upgrade(db)
        assert TABLES <= set(await db.tables())
