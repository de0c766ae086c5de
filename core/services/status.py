"""Operational counts for `diary status`, and whether delivery has stalled."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.models import Status, WorkerState
from core.storage.db import Database
from core.storage.migrate import current_revision

# Work due for this long with no delivery meanwhile means the senders are stuck or gone.
STALL_AFTER = timedelta(minutes=1)
# Pushes that failed and wait for a retry, with nothing delivered for this long: stuck too.
FAILING_FOR = timedelta(minutes=5)
_PENDING = "sent_at IS NULL AND dropped_at IS NULL"


class StatusService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz

    async def status(self) -> Status:
        async def count(sql: str, params: tuple = ()) -> int:
            return int(await self.db.scalar(sql, params) or 0)

        now = self.clock.now()
        tables = await self.db.tables()
        queue_depth, oldest, due_now, due_since, last_delivery = 0, None, 0, None, None
        if "outbox" in tables:
            row = await self.db.fetchone(
                f"SELECT COUNT(*), MIN(created_at) FROM outbox WHERE {_PENDING}")
            assert row is not None  # an aggregate has its row
            queue_depth, oldest = int(row[0]), from_db(row[1]) if row[1] else None
            row = await self.db.fetchone(
                f"SELECT COUNT(*), MIN(not_before) FROM outbox WHERE {_PENDING}"
                " AND not_before <= ?", (to_db(now),))
            assert row is not None
            due_now, due_since = int(row[0]), from_db(row[1]) if row[1] else None
            raw = await self.db.scalar("SELECT MAX(sent_at) FROM outbox")
            last_delivery = from_db(raw) if raw else None
        workers: list[WorkerState] = []
        if "workers" in tables:
            for r in await self.db.fetchall(
                    "SELECT * FROM workers ORDER BY role, beat_at DESC"):
                progress = from_db(r["progress_at"]) if r["progress_at"] else None
                counters = {k: r[k] for k in ("messages", "rate_limited", "paid",
                                              "sent_per_second") if k in r.keys()}
                workers.append(WorkerState(r["role"], r["owner"], from_db(r["started_at"]),
                                           from_db(r["beat_at"]), progress, r["last_error"],
                                           **counters))
                if r["role"] == "delivery" and progress is not None:
                    last_delivery = max(last_delivery or progress, progress)
        quiet_for = None if last_delivery is None else now - last_delivery
        stalled = (
            due_now > 0 and due_since is not None and now - due_since >= STALL_AFTER
            and (quiet_for is None or quiet_for >= STALL_AFTER)
        )
        if not stalled and "outbox" in tables and (quiet_for is None or quiet_for >= FAILING_FOR):
            # Telegram (or the token) keeps failing: the rows are retried later and later, so
            # none stays due, yet nothing goes out.
            stalled = bool(await self.db.scalar(
                f"SELECT 1 FROM outbox WHERE {_PENDING} AND attempts > 0 LIMIT 1"))
        paid_today = 0
        if "paid_messages" in tables:
            paid_today = await count("SELECT messages FROM paid_messages WHERE day = ?",
                                     (now.astimezone(self.tz).date().isoformat(),))
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
            schema_version=await current_revision(self.db) or "-",
            due_now=due_now,
            due_since=due_since,
            last_delivery=last_delivery,
            workers=tuple(workers),
            stalled=stalled,
            paid_today=paid_today,
        )
