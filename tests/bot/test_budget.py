"""The send budget: Telegram's free rate, one message a second per chat, paid broadcasts above
the free rate up to a daily limit — in one process, and shared in Redis by several senders."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime

import pytest

from bot.budget import FORGET_AT, LocalBudget, Rates, RedisBudget
from bot.delivery import DeliveryWorker
from bot.i18n import create_i18n
from core.clock import FrozenClock
from tests.bot.test_delivery import ANNA, IVAN, SERGEY, grades, linked
from tests.support.delivery import virtual_sleep
from tests.support.services import redis_url_or_skip

__all__ = ["linked"]  # a fixture shared with test_delivery
DAY = date(2026, 11, 23)


def recorder(clock: FrozenClock | None = None):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        if clock is not None:
            clock.advance(seconds=seconds)

    return waits, sleep


async def test_free_slots_first_then_paid_up_to_the_daily_limit_then_free_again():
    clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    waits, sleep = recorder(clock)
    budget = LocalBudget(Rates(free=2, per_chat=1, paid=8, paid_daily_limit=5), clock,
                         lambda: DAY, sleep)
    paid = [await budget.acquire(chat) for chat in range(10)]
    assert paid == [False, False, True, True, True, True, True, False, False, False]
    assert await budget.paid_today() == 5
    # The five paid ones fit the paid burst; past the limit the free rate (one per 0.5 s) rules.
    assert waits == [0.5, 0.5, 0.5]


async def test_a_chat_waits_a_second_between_its_messages_and_the_day_resets_the_limit():
    clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    waits, sleep = recorder(clock)
    day = [DAY]
    budget = LocalBudget(Rates(free=100, per_chat=1, paid=100, paid_daily_limit=1), clock,
                         lambda: day[0], sleep, paid_so_far=1)
    assert await budget.acquire(7) is False and await budget.acquire(7) is False
    assert waits == [1.0]
    assert await budget.paid_today() == 1  # read back from the database at start
    day[0] = date(2026, 11, 24)
    assert await budget.paid_today() == 0


async def test_the_budget_in_a_process_keeps_the_last_second_not_every_chat_ever_served():
    """A morning's pushes to 20,000 parents: what is kept is the chats whose second is not over
    yet, not a bucket for each parent ever served (30 MB for 100,000 of them)."""
    clock = FrozenClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    waits, sleep = recorder(clock)
    budget = LocalBudget(Rates(free=100, per_chat=1), clock, lambda: DAY, sleep)
    for chat in range(20_000):
        assert await budget.acquire(chat) is False
        assert len(budget.chats) <= FORGET_AT
    assert sum(waits) == pytest.approx(20_000 / 100 - 1, abs=0.1)  # the free rate, no more
    # A chat just served still waits for its second; one long served does not wait at all.
    waits.clear()
    await budget.acquire(19_999)
    assert waits == [0.99]  # the rest of its second (0.01 went by waiting for a free slot)
    waits.clear()
    await budget.acquire(0)
    assert waits == []


async def test_senders_in_two_processes_share_one_budget_in_redis():
    url = redis_url_or_skip(db=13)
    waits_a, sleep_a = recorder()
    waits_b, sleep_b = recorder()
    rates = Rates(free=10, per_chat=1, paid=20, paid_daily_limit=3)
    first = RedisBudget(url, rates, lambda: DAY, sleep_a)
    second = RedisBudget(url, rates, lambda: DAY, sleep_b)
    try:
        # The free burst (10) is one for both: then three paid, then free slots with waits.
        paid = []
        for n in range(16):
            paid.append(await (first if n % 2 else second).acquire(100 + n))
        assert paid.count(True) == 3 and paid[:10] == [False] * 10
        assert await first.paid_today() == await second.paid_today() == 3
        assert any(w > 0 for w in waits_a + waits_b)
        # One chat: the second message, from the other process, waits about a second.
        waits_a.clear()
        waits_b.clear()
        await first.acquire(555)
        await second.acquire(555)
        assert waits_b and waits_b[0] == pytest.approx(1.0, abs=0.05)
    finally:
        await first.close()
        await second.close()


async def test_the_sender_marks_paid_messages_and_records_them(linked, api, bot):
    await grades(linked, 5)
    budget = LocalBudget(Rates(free=1, per_chat=50, paid=100, paid_daily_limit=2),
                         linked.clock, lambda: DAY, virtual_sleep(linked.clock))
    worker = DeliveryWorker(bot, linked.outbox, create_i18n("ru"), budget=budget,
                            sleep=virtual_sleep(linked.clock))
    await worker.run_until_empty()
    sent = {s.chat_id: s.params.get("allow_paid_broadcast") for s in api.sent}
    assert sorted(sent) == sorted([ANNA, IVAN, SERGEY])
    assert sorted(v is True for v in sent.values()) == [False, True, True]  # JSON true
    assert worker.stats.paid == 2
    assert await linked.db.scalar("SELECT messages FROM paid_messages WHERE day = ?",
                                  (DAY.isoformat(),)) == 2
    assert (await linked.status.status()).paid_today == 2


async def test_messages_that_waited_for_their_chat_still_keep_the_global_rate():
    """A chat's wait does not let messages skip the global bucket: the free slot is reserved
    for the moment the message goes. Sixty chats that may each send again in about two
    seconds, while the global bucket is full again: at most its burst goes at one moment."""
    url = redis_url_or_skip(db=13)
    rate, burst = 30.0, 30
    waits, sleep = recorder()
    budget = RedisBudget(url, Rates(free=rate, per_chat=0.25), lambda: DAY, sleep)
    sends: list[float] = []

    async def round_of_sixty() -> None:
        for chat in range(60):
            called = time.monotonic()
            before = len(waits)
            await budget.acquire(900 + chat)
            sends.append(called + (waits[before] if len(waits) > before else 0.0))

    try:
        await round_of_sixty()
        await asyncio.sleep(2.2)  # the global bucket refills; each chat has ~1.8 s to go
        sends.clear()
        await round_of_sixty()
    finally:
        await budget.close()
    sends.sort()
    # GCRA conformance of the send moments: any j - i + 1 messages span enough time.
    for i in range(len(sends)):
        for j in range(i + burst, len(sends)):
            assert j - i + 1 <= burst + rate * (sends[j] - sends[i]) + 1, (i, j)
