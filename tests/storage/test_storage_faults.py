"""The storage adapter and the operator's view under faults and with an injected clock."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
import sqlalchemy.exc
from aiogram.fsm.storage.base import StorageKey

from bot.fsm import SQLiteStorage
from core.clock import to_db
from core.services.outbox import enqueue, record_worker
from core.storage.db import Database


async def test_a_full_database_reports_the_cause_not_a_failed_rollback(tmp_path):
    db = await Database(tmp_path / "full.sqlite3").connect()
    try:
        async with db.transaction() as tx:
            await tx.execute("CREATE TABLE t (x BLOB)")
        pages = await db.scalar("PRAGMA page_count")
        async with db.transaction() as tx:
            await tx.execute(f"PRAGMA max_page_count = {pages + 4}")
        with pytest.raises(sqlalchemy.exc.OperationalError,
                           match="database or disk is full") as err:
            async with db.transaction() as tx:
                for _ in range(50):
                    await tx.execute("INSERT INTO t VALUES (randomblob(100000))")
        assert isinstance(err.value.orig, sqlite3.OperationalError)
        # The connection is usable again: the next transaction starts and commits.
        async with db.transaction() as tx:
            await tx.execute(f"PRAGMA max_page_count = {pages + 1000}")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (x'00')")
        assert await db.scalar("SELECT COUNT(*) FROM t") == 1
    finally:
        await db.close()


async def test_conversation_state_is_stamped_by_the_injected_clock(services, clock):
    storage = SQLiteStorage(services.db, clock)
    key = StorageKey(bot_id=1, chat_id=2, user_id=2)
    await storage.set_state(key, "S:one")
    assert await services.db.scalar("SELECT updated_at FROM fsm_state") == to_db(clock.now())
    clock.advance(days=3)
    await storage.set_data(key, {"a": 1})
    assert await services.db.scalar("SELECT updated_at FROM fsm_state") == to_db(clock.now())


async def test_status_alerts_when_work_is_due_and_nothing_goes_out(services, clock):
    async with services.db.transaction() as tx:
        await enqueue(tx, 1, "relink", {}, "k1", clock.now())
    clock.advance(seconds=59)
    st = await services.status.status()
    assert st.due_now == 1 and not st.stalled  # due for less than a minute
    clock.advance(seconds=2)
    st = await services.status.status()
    assert st.stalled and st.last_delivery is None
    # A sender that delivered something a moment ago is not stalled (a long queue drains).
    async with services.db.transaction() as tx:
        await record_worker(tx, "delivery", "host:1", clock.now() - timedelta(seconds=5),
                            progress=True)
    st = await services.status.status()
    assert not st.stalled and st.last_delivery == clock.now() - timedelta(seconds=5)
    assert [(w.role, w.owner) for w in st.workers] == [("delivery", "host:1")]


async def test_held_pushes_are_not_due_work(services, clock):
    async with services.db.transaction() as tx:
        await enqueue(tx, 1, "relink", {}, "k1", clock.now(), hold=timedelta(hours=9))
    clock.advance(minutes=30)
    st = await services.status.status()
    assert st.queue_depth == 1 and st.due_now == 0 and not st.stalled


async def test_a_failing_worker_shows_its_error(services, clock):
    async with services.db.transaction() as tx:
        await record_worker(tx, "delivery", "host:1", clock.now(), progress=True)
        await record_worker(tx, "delivery", "host:1", clock.now() + timedelta(seconds=15),
                            error="OperationalError: database is locked")
    row = await services.db.fetchone("SELECT * FROM workers")
    assert row["progress_at"] == to_db(clock.now())
    assert row["beat_at"] == to_db(clock.now() + timedelta(seconds=15))
    assert row["last_error"] == "OperationalError: database is locked"


async def test_status_alerts_when_retried_pushes_pile_up_and_nothing_goes_out(services, clock):
    async with services.db.transaction() as tx:
        await enqueue(tx, 1, "relink", {}, "k1", clock.now())
        await record_worker(tx, "delivery", "host:1", clock.now(), progress=True)
        # Claimed by the sender, which then meets a 502.
        await tx.execute("UPDATE outbox SET claimed_by = ?", (services.outbox.owner,))
    await services.outbox.retry(
        [await services.db.scalar("SELECT id FROM outbox")], timedelta(minutes=10), "502")
    clock.advance(minutes=4)
    assert not (await services.status.status()).stalled  # retrying, delivered 4 min ago
    clock.advance(minutes=2)
    st = await services.status.status()
    assert st.due_now == 0 and st.stalled
