"""The send budget: Telegram's limits for all senders together.

Telegram lets a bot send about 30 messages a second for free, one a second to one chat, and up
to 1,000 a second with paid broadcasts (``allow_paid_broadcast``, charged per message above the
free rate). A message first waits for its chat's slot; then it takes a free slot if one is
there now; with ``PAID_BROADCAST`` on and today's paid messages under ``PAID_DAILY_LIMIT`` it
takes a paid slot instead of waiting (the paid bucket adds ``SEND_RATE - FREE_SEND_RATE`` a
second); otherwise it waits for the next free slot.

Every bucket is a GCRA reservation ("virtual scheduling"): a sender is given the next free
moment at once and sleeps until then. ``LocalBudget`` keeps the buckets in this process (one
sender: `diary run`); ``RedisBudget`` keeps them in Redis, one atomic script a message (one
round trip) timed by Redis's own clock, so any number of sender processes on any number of
hosts share one global rate, one per-chat rate and one daily count of paid messages.
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
            wait = self.paid.reserve() or 0.0  # no max_wait: always a slot
            self._paid += 1
            if wait:
                await self.sleep(wait)
            return True
        wait = self.free.reserve() or 0.0
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


# One message's whole decision in one atomic script (one round trip), timed by Redis's clock.
# KEYS: the chat's bucket, the free bucket, the paid bucket, today's paid count.
# ARGV: interval and tolerance (microseconds) of the chat, free and paid buckets (paid interval
# 0: no paid broadcasts), the daily paid limit, the paid count's time to live (seconds).
# Returns {wait in microseconds, 1 if paid else 0}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Reserve the bucket's next slot for a message sent no sooner than ``at``: the wait from now,
-- or -1 when it would be longer than max_wait (-1: any).
local function reserve(key, interval, tolerance, max_wait, at)
  local tat = tonumber(redis.call('GET', key) or at)
  if tat < at then tat = at end
  local wait = tat - tolerance - now
  if wait < at - now then wait = at - now end
  if max_wait >= 0 and wait > max_wait then return -1 end
  local ttl = math.floor((tat + interval - now) / 1000) + 60000
  redis.call('SET', key, string.format('%.0f', tat + interval), 'PX', ttl)
  return wait
end
local chat = reserve(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), -1, now)
local at = now + chat
-- A free slot when the chat's turn comes (reserved for that moment, not for now).
if reserve(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), chat, at) >= 0 then
  return {chat, 0}
end
local paid_interval = tonumber(ARGV[5])
if paid_interval > 0 then
  local spent = redis.call('INCR', KEYS[4])
  if spent == 1 then redis.call('EXPIRE', KEYS[4], tonumber(ARGV[8])) end
  if spent <= tonumber(ARGV[7]) then
    return {reserve(KEYS[3], paid_interval, tonumber(ARGV[6]), -1, at), 1}
  end
  redis.call('DECR', KEYS[4])
end
return {reserve(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), -1, at), 0}
"""


def _bucket(rate: float, burst: float) -> tuple[int, int]:
    """A bucket's interval and tolerance in microseconds."""
    interval = 1_000_000 / rate
    return int(interval), int(max(0.0, burst - 1) * interval)


class RedisBudget:
    def __init__(self, url: str, rates: Rates, today: Today, sleep: Sleep = asyncio.sleep,
                 prefix: str = "diary:send") -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url)
        self.rates = rates
        self.today = today
        self.sleep = sleep
        self.prefix = prefix
        self._acquire = self.redis.register_script(_ACQUIRE)
        chat = _bucket(rates.per_chat, 1)
        free = _bucket(rates.free, max(1.0, rates.free))
        paid = _bucket(rates.paid, max(1.0, rates.paid)) if rates.paid > 0 else (0, 0)
        self._args = [*chat, *free, *paid, rates.paid_daily_limit, 3 * 24 * 3600]

    async def acquire(self, chat_id: int) -> bool:
        day = self.today().isoformat()
        wait, paid = await self._acquire(
            keys=[f"{self.prefix}:chat:{chat_id}", f"{self.prefix}:free",
                  f"{self.prefix}:paid", f"{self.prefix}:paid:{day}"],
            args=self._args)
        if wait:
            await self.sleep(int(wait) / 1_000_000)
        return bool(paid)

    async def paid_today(self) -> int:
        raw = await self.redis.get(f"{self.prefix}:paid:{self.today().isoformat()}")
        return int(raw or 0)

    async def close(self) -> None:
        await self.redis.aclose()
