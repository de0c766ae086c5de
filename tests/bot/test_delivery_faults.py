"""The sender under database faults: it never stops, and what went out is never sent again."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from bot.budget import LocalBudget, Rates
from bot.delivery import DeliveryWorker
from bot.i18n import create_i18n
from core.clock import FrozenClock
from core.services.outbox import Outbox
from tests.bot.test_delivery import ANNA, IVAN, SERGEY, grades, linked
from tests.support.delivery import virtual_sleep

__all__ = ["linked"]  # a fixture shared with test_delivery


class FlakyOutbox(Outbox):
    """An outbox whose chosen operations fail a few times as a locked database does."""

    def __init__(self, base: Outbox, fail: dict[str, int]) -> None:
        super().__init__(base.db, base.clock, base.tz, base.quiet_default, base.lease,
                         owner=base.owner)
        self.fail = dict(fail)
        self.calls: dict[str, int] = {}

    def _maybe_fail(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            raise sqlite3.OperationalError("database is locked")

    async def claim(self, *args, **kwargs):
        self._maybe_fail("claim")
        return await super().claim(*args, **kwargs)

    async def sent(self, *args, **kwargs):
        self._maybe_fail("sent")
        return await super().sent(*args, **kwargs)


def flaky_worker(bot, services, outbox) -> DeliveryWorker:
    return DeliveryWorker(bot, outbox, create_i18n("ru"), rate=200, per_chat_rate=50,
                          sleep=virtual_sleep(services.clock), poll_interval=0.01)


async def run_for(worker: DeliveryWorker, api, count: int) -> None:
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(500):
            if len([s for s in api.sent if s.method == "sendmessage"]) >= count:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_worker_survives_failing_claims_and_delivers_after(linked, api, bot, caplog):
    await grades(linked, 5)
    outbox = FlakyOutbox(linked.outbox, {"claim": 3})
    worker = flaky_worker(bot, linked, outbox)
    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        await run_for(worker, api, 3)
    assert sorted(s.chat_id for s in api.sent) == [ANNA, IVAN, SERGEY]
    assert worker.stats.failures == 3
    assert await linked.outbox.pending() == 0
    text = caplog.text
    assert "delivery paused: OperationalError: database is locked; retrying in 0.5 s" in text
    assert "delivery resumed after 3 failed rounds" in text


async def test_a_message_telegram_accepted_is_recorded_not_resent(linked, api, bot, caplog):
    await grades(linked, 5)
    outbox = FlakyOutbox(linked.outbox, {"sent": 4})  # marking sent fails four times
    worker = flaky_worker(bot, linked, outbox)
    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        await run_for(worker, api, 3)
    assert sorted(s.chat_id for s in api.sent) == [ANNA, IVAN, SERGEY]
    assert api.duplicates() == []
    assert await linked.db.scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL") == 3
    assert await linked.outbox.pending() == 0
    assert "could not record a sent message: OperationalError: database is locked" in caplog.text


async def test_progress_is_recorded_with_the_sent_rows(linked, api, bot):
    await grades(linked, 5)
    worker = flaky_worker(bot, linked, linked.outbox)
    await run_for(worker, api, 3)
    row = await linked.db.fetchone("SELECT * FROM workers WHERE role = 'delivery'")
    assert row["owner"] == linked.outbox.owner
    assert row["progress_at"] is not None and row["last_error"] is None


async def test_the_token_bucket_waits_on_the_injected_clock():
    clock = FrozenClock(linked_moment())
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        clock.advance(seconds=seconds)

    bucket = LocalBudget(Rates(free=2, per_chat=1000), clock, linked_moment().date, sleep)
    for chat in range(5):
        await bucket.acquire(chat)
    assert waits == [0.5, 0.5, 0.5]  # two at once, then one every half second
    clock.advance(seconds=10)
    await bucket.acquire(5)
    assert waits == [0.5, 0.5, 0.5]  # saved up again, no wait


def linked_moment():
    from datetime import UTC, datetime

    return datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_an_error_recovered_from_leaves_no_stale_error_behind(linked, api, bot):
    await grades(linked, 5)
    worker = flaky_worker(bot, linked, FlakyOutbox(linked.outbox, {"sent": 1}))
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(300):
            if await linked.outbox.pending() == 0:
                break
            await asyncio.sleep(0.01)
        assert await linked.outbox.pending() == 0
        linked.clock.advance(seconds=20)  # the next sign of life is due
        await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    row = await linked.db.fetchone("SELECT last_error FROM workers WHERE role = 'delivery'")
    assert row["last_error"] is None


async def test_a_worker_whose_rounds_keep_failing_records_its_error(linked, api, bot):
    await grades(linked, 5)
    worker = flaky_worker(bot, linked, FlakyOutbox(linked.outbox, {"claim": 10**6}))
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(20):
            linked.clock.advance(seconds=20)
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert worker.stats.failures > 5
    rows = await linked.db.fetchall("SELECT role, last_error FROM workers")
    assert [tuple(r) for r in rows] == [("delivery", "OperationalError: database is locked")]


async def test_a_clock_set_back_does_not_stall_a_cooling_chat(linked, api, bot):
    from datetime import timedelta

    from tests.bot.test_delivery import worker as make_worker

    await grades(linked, 5)
    w = make_worker(bot, linked, per_chat_rate=1)
    await w.run_until_empty()
    linked.clock.moment -= timedelta(hours=1)
    await grades(linked, 4, start=10)
    await asyncio.wait_for(w.run_until_empty(), 10)
    assert await linked.outbox.pending() == 0


async def test_one_recipient_with_unreadable_data_does_not_hold_up_the_others(linked, api, bot):
    from tests.bot.test_delivery import worker as make_worker

    await grades(linked, 5)
    async with linked.db.transaction() as tx:
        await tx.execute("INSERT INTO account_settings (telegram_id, quiet_hours) VALUES (?, ?)",
                         (ANNA, "not-a-time"))
        await tx.execute("UPDATE outbox SET payload = '{broken' WHERE telegram_id = ?", (IVAN,))
    await make_worker(bot, linked).run_until_empty()
    assert sorted(s.chat_id for s in api.sent) == [ANNA, SERGEY]  # Anna: the default hours
    assert await linked.db.scalar(
        "SELECT last_error FROM outbox WHERE telegram_id = ?", (IVAN,)) == "unreadable payload"
    assert await linked.outbox.pending() == 0
