"""Operational counts for `diary status`."""

from __future__ import annotations

import json

from core.clock import from_db
from core.models import Status
from core.storage.db import Database, schema_version


class StatusService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def status(self) -> Status:
        async def count(sql: str) -> int:
            return int(await self.db.scalar(sql) or 0)

        tables = {r[0] for r in await self.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        queue_depth, oldest = 0, None
        if "outbox" in tables:
            queue_depth = await count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"
                                      " AND dropped_at IS NULL")
            raw = await self.db.scalar("SELECT MIN(created_at) FROM outbox WHERE sent_at IS NULL"
                                       " AND dropped_at IS NULL")
            oldest = from_db(raw) if raw else None
        last = await self.db.fetchone(
            "SELECT kind, source, finished_at, summary FROM imports ORDER BY id DESC LIMIT 1"
        )
        last_import = None
        if last is not None:
            last_import = {"kind": last["kind"], "source": last["source"],
                           "finished_at": last["finished_at"], **json.loads(last["summary"])}
        return Status(
            students=await count("SELECT COUNT(*) FROM students WHERE active = 1"),
            guardians=await count("SELECT COUNT(*) FROM guardians"),
            classes=await count("SELECT COUNT(*) FROM classes"),
            accounts=await count("SELECT COUNT(*) FROM accounts"),
            linked_accounts=await count("SELECT COUNT(DISTINCT telegram_id) FROM account_links"),
            unreachable_accounts=await count(
                "SELECT COUNT(*) FROM accounts WHERE unreachable_at IS NOT NULL"),
            queue_depth=queue_depth,
            oldest_undelivered=oldest,
            last_import=last_import,
            schema_version=await schema_version(self.db),
        )
