"""The outbox sender: Telegram's limits, retries, 403 handling, and no push lost or sent twice.

- A global token bucket keeps to ``SEND_RATE`` messages a second; each chat gets at most
  ``SEND_RATE_PER_CHAT``. A chat that is cooling down is not claimed, so whatever piles up for it
  meanwhile goes out together as one message.
- 429: the chat waits ``retry_after`` (the rows are released, not failed).
- 5xx, network errors, timeouts: retried with exponential back-off.
- 403 (blocked), deactivated or missing chat: the account is marked unreachable and its pending
  rows are dropped; it is reachable again when the user sends /start.
- Rows are claimed in a write transaction with this process's identity; after a crash the next
  sender takes the claims back, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.utils.i18n import I18n

from bot.i18n import pick_locale
from bot.notify import Outgoing, render_batch
from core.services.outbox import Batch, Outbox

log = logging.getLogger(__name__)

MAX_BACKOFF = 600.0


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


def backoff(attempts: int) -> float:
    """1 s, 2 s, 4 s … up to ten minutes."""
    return min(MAX_BACKOFF, 2.0 ** max(0, attempts))


@dataclass
class DeliveryStats:
    messages: int = 0
    rows: int = 0
    retries: int = 0
    rate_limited: int = 0
    unreachable: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)


class DeliveryWorker:
    def __init__(
        self,
        bot: Bot,
        outbox: Outbox,
        i18n: I18n,
        rate: float = 25,
        per_chat_rate: float = 1,
        concurrency: int = 8,
        poll_interval: float = 0.2,
    ) -> None:
        self.bot = bot
        self.outbox = outbox
        self.i18n = i18n
        self.bucket = TokenBucket(rate)
        self.chat_interval = 1.0 / per_chat_rate
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.stats = DeliveryStats()
        self._chat_ready: dict[int, float] = {}  # telegram_id -> monotonic time it may get more
        self._busy: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)

    def wake(self) -> None:
        """Something was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    def _cooling(self) -> set[int]:
        now = time.monotonic()
        for tg in [tg for tg, t in self._chat_ready.items() if t <= now]:
            del self._chat_ready[tg]
        return set(self._chat_ready) | self._busy

    async def run(self) -> None:
        """Deliver until cancelled."""
        released = await self.outbox.release_dead_claims()
        if released:
            log.info("took back %d pushes claimed by a sender that is gone", released)
        try:
            while True:
                if not await self.step():
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            await self._drain()

    async def run_until_empty(self, idle_grace: float = 0.0) -> DeliveryStats:
        """Deliver what is due now (used by `diary jobs run deliver` and benchmarks)."""
        await self.outbox.release_dead_claims()
        while True:
            progressed = await self.step()
            if not progressed and not self._tasks:
                if not await self.outbox.has_due():
                    break
                await asyncio.sleep(min(self.poll_interval, 0.05))
            elif not progressed:
                await asyncio.sleep(0.01)
        await self._drain()
        return self.stats

    async def step(self) -> bool:
        """Claim and start sending what is due; True if anything was started."""
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            return True
        if not await self.outbox.has_due():
            return False
        batches = await self.outbox.claim(recipients=free, exclude=self._cooling())
        for batch in batches:
            self._busy.add(batch.telegram_id)
            task = asyncio.create_task(self._deliver(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return bool(batches)

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(self, batch: Batch) -> None:
        try:
            async with self._slots:
                await self._send_batch(batch)
        except Exception:  # the worker must survive anything one batch does
            log.exception("delivery to one recipient failed; will retry")
            await self.outbox.retry(batch.ids, timedelta(seconds=backoff(1)), "internal error")
        finally:
            self._busy.discard(batch.telegram_id)

    async def _send_batch(self, batch: Batch) -> None:
        locale = pick_locale(batch.locale, batch.language_code, self.i18n.default_locale)
        with self.i18n.context(), self.i18n.use_locale(locale):
            messages, unknown = render_batch(batch.items)
        if unknown:
            log.error("no renderer for %d outbox rows; dropped", len(unknown))
            await self.outbox.drop(unknown, "no renderer")
        attempts = max(item.attempts for item in batch.items)
        created = {item.id: item.created_at for item in batch.items}
        for number, message in enumerate(messages):
            rest = [i for m in messages[number:] for i in m.ids]
            if not await self._send_message(batch, message, rest, attempts):
                return
            if not message.ids:
                continue  # the first part of a long message: its rows go with the last part
            await self.outbox.sent(message.ids)
            now = self.outbox.clock.now()
            self.stats.messages += 1
            self.stats.rows += len(message.ids)
            self.stats.latencies.extend((now - created[i]).total_seconds() for i in message.ids)

    async def _send_message(self, batch: Batch, message: Outgoing, rest: list[int],
                            attempts: int) -> bool:
        """Send one message. On failure settle ``rest`` — this message's rows and those after
        it — and return False."""
        try:
            await self.bucket.take()
            await self._wait_for_chat(batch.telegram_id)
            await self.bot.send_message(batch.chat_id, message.text, reply_markup=message.markup)
            self._chat_ready[batch.telegram_id] = time.monotonic() + self.chat_interval
            return True
        except TelegramRetryAfter as exc:
            self.stats.rate_limited += 1
            wait = float(exc.retry_after)
            self._chat_ready[batch.telegram_id] = time.monotonic() + wait
            await self.outbox.defer(rest, self.outbox.clock.now() + timedelta(seconds=wait))
        except TelegramForbiddenError as exc:
            self.stats.unreachable += 1
            await self.outbox.unreachable(batch.telegram_id, exc.message)
        except TelegramBadRequest as exc:
            text_lower = exc.message.lower()
            if "chat not found" in text_lower or "deactivated" in text_lower:
                self.stats.unreachable += 1
                await self.outbox.unreachable(batch.telegram_id, exc.message)
            else:
                # Only this message is at fault; the next ones go with the next claim.
                self.stats.dropped += len(message.ids)
                log.error("Telegram refused a push for good: %s", exc.message)
                await self.outbox.drop(message.ids, exc.message)
                later = [i for i in rest if i not in message.ids]
                if later:
                    await self.outbox.defer(later, self.outbox.clock.now())
        except TelegramUnauthorizedError:
            # The token is wrong or revoked: nothing can be sent; keep every row for later.
            log.critical("Telegram rejects the bot token; pushes are kept for later")
            await self.outbox.retry(rest, timedelta(seconds=MAX_BACKOFF), "unauthorized")
        except TelegramNotFound as exc:
            # 404 is the Bot API server's (a wrong TELEGRAM_API_URL), not the chat's.
            log.critical("the Bot API answers 404: check TELEGRAM_API_URL; pushes are kept")
            self.stats.retries += 1
            await self.outbox.retry(rest, timedelta(seconds=backoff(attempts)), exc.message)
        except (TelegramServerError, TelegramNetworkError, TimeoutError, OSError) as exc:
            self.stats.retries += 1
            await self.outbox.retry(rest, timedelta(seconds=backoff(attempts)),
                                    f"{type(exc).__name__}: {exc}")
        return False

    async def _wait_for_chat(self, telegram_id: int) -> None:
        ready = self._chat_ready.get(telegram_id)
        if ready is not None:
            delay = ready - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
