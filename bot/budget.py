"""The send budget: Telegram's limits for all senders together.

Telegram lets a bot send about 30 messages a second for free, one a second to one chat, and up
to 1,000 a second with paid broadcasts (``allow_paid_broadcast``, charged per message above the
free rate). A message first waits for its chat's slot; then it takes a free slot if one is
there now; with ``PAID_BROADCAST`` on and today's paid messages under ``PAID_DAILY_LIMIT`` it
takes a paid slot instead of waiting (the paid bucket adds ``SEND_RATE - FREE_SEND_RATE`` a
second); otherwise it waits for the next free slot.

Every bucket is a GCRA reservation ("virtual scheduling"): a sender is given the next free
moment at once and sleeps until then. ``LocalBudget`` keeps the buckets in this process (one
sender: `diary run`); ``RedisBudget`` keeps them in Redis, one atomic script per reservation
timed by Redis's own clock, so any number of sender processes on any number of hosts share one
global rate, one per-chat rate and one daily count of paid messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from core.clock import Clock

Sleep = Callable[[float], Awaitable[Any]]
Today = Callable[[], date]

NEVER = float("inf")
# The in-process budget looks for chats to forget when it keeps this many (or twice as many as
# were still waiting the last time).
FORGET_AT = 1024


@dataclass(frozen=True)
class Rates:
    free: float  # messages a second for free (all senders)
    per_chat: float  # messages a second to one chat
    paid: float = 0.0  # messages a second above ``free`` with paid broadcasts (0: off)
    paid_daily_limit: int = 0  # paid messages a day at most, then the free rate only


class Budget(Protocol):
    async def acquire(self, chat_id: int) -> bool:
        """Wait until a message to ``chat_id`` may go; True if it goes as a paid broadcast."""
        ...

    async def paid_today(self) -> int: ...

    async def close(self) -> None: ...


class _Gcra:
    """One bucket in memory: ``reserve`` gives the wait for the next slot, or None when that
    wait would exceed ``max_wait`` (nothing reserved then)."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.interval = 1.0 / rate
        self.tolerance = max(0.0, burst - 1) * self.interval
        self.clock = clock
        self.tat = clock.monotonic() - self.tolerance

    def reserve(self, max_wait: float = NEVER) -> float | None:
        now = self.clock.monotonic()
        tat = max(self.tat, now)
        wait = max(0.0, tat - self.tolerance - now)
        if wait > max_wait:
            return None
        self.tat = tat + self.interval
        return wait


class LocalBudget:
    def __init__(self, rates: Rates, clock: Clock, today: Today, sleep: Sleep = asyncio.sleep,
                 paid_so_far: int = 0) -> None:
        self.rates = rates
        self.clock = clock
        self.sleep = sleep
        self.today = today
        self.free = _Gcra(rates.free, max(1.0, rates.free), clock)
        self.paid = _Gcra(rates.paid, max(1.0, rates.paid), clock) if rates.paid > 0 else None
        # A chat's bucket holds one message (no burst), so all it needs is the moment its next
        # slot opens; a chat whose moment has passed is as good as new and is forgotten. What
        # is kept is the chats served within the last second or so, however many accounts
        # there are.
        self.chat_interval = 1.0 / rates.per_chat
        self.chats: dict[int, float] = {}
        self._forget_at = FORGET_AT
        self._paid_day: date = today()
        self._paid = paid_so_far

    def _chat_wait(self, chat_id: int) -> float:
        """Reserve the chat's next slot: how long to wait for it."""
        now = self.clock.monotonic()
        slot = max(self.chats.get(chat_id, now), now)
        self.chats[chat_id] = slot + self.chat_interval
        if len(self.chats) >= self._forget_at:
            self.chats = {k: t for k, t in self.chats.items() if t > now}
            self._forget_at = max(FORGET_AT, 2 * len(self.chats))
        return slot - now

    async def acquire(self, chat_id: int) -> bool:
        wait = self._chat_wait(chat_id)
        if wait:
            await self.sleep(wait)
        free_now = self.free.reserve(max_wait=0)
        if free_now is not None:
            return False
        if self.paid is not None and await self._paid_left():
            wait = self.paid.reserve()
            self._paid += 1
            if wait:
                await self.sleep(wait)
            return True
        wait = self.free.reserve()
        if wait:
            await self.sleep(wait)
        return False

    async def _paid_left(self) -> bool:
        day = self.today()
        if day != self._paid_day:
            self._paid_day, self._paid = day, 0
        return self._paid < self.rates.paid_daily_limit

    async def paid_today(self) -> int:
        await self._paid_left()
        return self._paid

    async def close(self) -> None:
        return None


# KEYS[1]: the bucket; ARGV: interval and tolerance in microseconds, the longest acceptable wait
# in microseconds (-1: any). Returns the wait in microseconds, or -1 when it would be longer.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if max_wait >= 0 and wait > max_wait then return -1 end
local ttl = math.floor((tat + interval - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', ttl)
return wait
"""


class RedisBudget:
    def __init__(self, url: str, rates: Rates, today: Today, sleep: Sleep = asyncio.sleep,
                 prefix: str = "diary:send") -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url)
        self.rates = rates
        self.today = today
        self.sleep = sleep
        self.prefix = prefix
        self._reserve = self.redis.register_script(_RESERVE)

    async def _take(self, key: str, rate: float, burst: float, max_wait: float) -> float | None:
        interval = 1_000_000 / rate
        tolerance = max(0.0, burst - 1) * interval
        limit = -1 if max_wait == NEVER else int(max_wait * 1_000_000)
        wait = int(await self._reserve(keys=[f"{self.prefix}:{key}"],
                                       args=[int(interval), int(tolerance), limit]))
        return None if wait < 0 else wait / 1_000_000

    async def acquire(self, chat_id: int) -> bool:
        wait = await self._take(f"chat:{chat_id}", self.rates.per_chat, 1, NEVER)
        if wait:
            await self.sleep(wait)
        free = max(1.0, self.rates.free)
        if await self._take("free", self.rates.free, free, 0) is not None:
            return False
        if self.rates.paid > 0:
            key = f"{self.prefix}:paid:{self.today().isoformat()}"
            spent = int(await self.redis.incr(key))
            if spent == 1:
                await self.redis.expire(key, 3 * 24 * 3600)
            if spent <= self.rates.paid_daily_limit:
                wait = await self._take("paid", self.rates.paid, max(1.0, self.rates.paid), NEVER)
                if wait:
                    await self.sleep(wait)
                return True
            await self.redis.decr(key)
        wait = await self._take("free", self.rates.free, free, NEVER)
        if wait:
            await self.sleep(wait)
        return False

    async def paid_today(self) -> int:
        raw = await self.redis.get(f"{self.prefix}:paid:{self.today().isoformat()}")
        return int(raw or 0)

    async def close(self) -> None:
        await self.redis.aclose()
