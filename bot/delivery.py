"""The outbox sender: Telegram's limits, retries, 403 handling, and no push lost or sent twice.

- A global token bucket keeps to ``SEND_RATE`` messages a second; each chat gets at most
  ``SEND_RATE_PER_CHAT``. A chat that is cooling down is not claimed, so whatever piles up for it
  meanwhile goes out together as one message.
- 429: the chat waits ``retry_after`` (the rows are released, not failed).
- 5xx, network errors, timeouts: retried with exponential back-off.
- 403 (blocked), deactivated or missing chat: the account is marked unreachable and its pending
  rows are dropped; it is reachable again when the user sends /start.
- Rows are claimed under a lease with this process's identity (on PostgreSQL with
  ``FOR UPDATE SKIP LOCKED``, side by side with other senders). The worker renews the lease of
  what it holds; after a crash the lease runs out and another sender takes the rows, so nothing
  is lost.
- Idle, the worker sleeps until the next push is due; on PostgreSQL a ``NOTIFY`` from whatever
  queued a push (a webhook worker, an import, the scheduler) wakes it at once. On SQLite it
  looks every ``poll_interval``.
- The worker never stops on an error: a failing claim (the database locked for longer than its
  busy timeout, a full disk) is logged with its cause and retried with back-off. What Telegram
  has accepted is never sent again because the database was busy: the bookkeeping is retried,
  not the send.
- Time comes from the injected clock (intervals from ``clock.monotonic()``), so tests control it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot.budget import Budget, LocalBudget, Rates, Sleep
from bot.i18n import I18n, pick_locale
from bot.notify import Outgoing, render_batch
from bot.telegram import (
    BadRequest,
    BotApi,
    Forbidden,
    NetworkError,
    NotFound,
    RetryAfter,
    ServerError,
    Unauthorized,
)
from core.clock import Clock
from core.services.conversations import note_delivered
from core.services.outbox import CHANNEL, Batch, Doorbell, Outbox
from core.storage.db import error_text

log = logging.getLogger(__name__)

MAX_BACKOFF = 600.0
LOOP_BACKOFF_MAX = 30.0  # the longest pause of the worker after a failing claim
BOOK_BACKOFF_MAX = 5.0  # the longest pause between two tries of recording an outcome
HEARTBEAT_EVERY = 15.0  # seconds between two records of the worker's liveness
COUNTS_EVERY = 1.0  # seconds between two records of what it sent (progress, counters, paid)
PREFETCH = 4  # a claim takes up to this many times ``concurrency`` recipients
RENEW_CHECK = 1.0  # seconds: the longest the worker waits on busy sends before looking again
IDLE_MAX = 5.0  # the longest sleep of an idle worker that notifications wake
LISTEN_BACKOFF_MAX = 30.0  # the longest pause before listening again after a lost connection
DRAIN_TIMEOUT = 15.0



def backoff(attempts: int) -> float:
    """1 s, 2 s, 4 s … up to ten minutes."""
    return min(MAX_BACKOFF, 2.0 ** max(0, attempts))


def describe(exc: BaseException) -> str:
    """An exception and its cause in one line, for the log."""
    text = error_text(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and cause is not getattr(exc, "orig", None):
        text += f" (caused by {error_text(cause)})"
    return text


@dataclass
class DeliveryStats:
    messages: int = 0
    rows: int = 0
    retries: int = 0
    rate_limited: int = 0
    unreachable: int = 0
    dropped: int = 0
    failures: int = 0  # rounds of the worker that failed (database errors) and were retried
    paid: int = 0  # messages sent as paid broadcasts
    # Seconds from queuing to sending of the latest pushes (a window: a sender runs for months).
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))


class DeliveryWorker:
    def __init__(
        self,
        bot: BotApi,
        outbox: Outbox,
        i18n: I18n,
        rate: float = 25,
        per_chat_rate: float = 1,
        concurrency: int = 8,
        poll_interval: float = 0.2,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        role: str = "delivery",
        budget: Budget | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.bot = bot
        self.outbox = outbox
        self.i18n = i18n
        self.clock = clock or outbox.clock
        self.sleep = sleep
        self.role = role
        # Telegram's limits: in this process unless a shared budget (Redis) is given.
        self.budget = budget or LocalBudget(
            Rates(free=rate, per_chat=per_chat_rate), self.clock,
            lambda: self.clock.now().astimezone(outbox.tz).date(), sleep)
        self.chat_interval = 1.0 / per_chat_rate
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.stats = DeliveryStats()
        self._chat_ready: dict[int, float] = {}  # telegram_id -> clock.monotonic() it may get more
        self._busy: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.doorbell = doorbell or Doorbell()
        self._wake = self.doorbell.event
        self._slots = asyncio.Semaphore(concurrency)
        self._last_beat: float | None = None
        self._last_error: str | None = None
        # Counted since the last record in the database (``_heartbeat``).
        self._counted = {"messages": 0, "rate_limited": 0, "paid": 0}
        self._backlog = False  # the last claim took all it asked for: more is waiting
        self._sent_waiting: list[tuple[list[int], asyncio.Future[None]]] = []
        self._sent_writer: asyncio.Task[None] | None = None
        # Outbox rows this worker has claimed and not settled -> until when (clock.monotonic())
        # its lease on them is known to hold.
        self._held: dict[int, float] = {}
        self._closing = False  # shutting down: batches not yet started are given back
        self._beat_failing = False
        self._last_renew: float | None = None
        self._lease = outbox.lease.total_seconds()
        self._listening = False

    def wake(self) -> None:
        """Something was queued in this process: look now rather than at the next poll."""
        self.doorbell.ring()

    def _cooling(self) -> set[int]:
        now = self.clock.monotonic()
        for tg in [tg for tg, t in self._chat_ready.items() if t <= now]:
            del self._chat_ready[tg]
        return set(self._chat_ready) | self._busy

    async def run(self) -> None:
        """Deliver until cancelled. No error stops it: each is logged with its cause, and the
        worker backs off (0.5 s, 1 s, 2 s … 30 s) and goes on."""
        failures = 0
        listener = asyncio.create_task(self._listen(), name="outbox-listener")
        try:
            while True:
                self._wake.clear()  # before looking: a wake-up meanwhile is not lost
                try:
                    progressed = await self.step()
                    await self._beat_safely()
                    idle = None if progressed else await self._idle_wait()
                except Exception as exc:
                    failures += 1
                    self.stats.failures += 1
                    self._last_error = describe(exc)
                    delay = min(LOOP_BACKOFF_MAX, 0.5 * 2 ** (failures - 1))
                    if failures == 1:
                        log.exception("delivery paused: %s; retrying in %.1f s",
                                      self._last_error, delay)
                    else:
                        log.error("delivery still failing (%d in a row): %s; retrying in %.1f s",
                                  failures, self._last_error, delay)
                    with contextlib.suppress(Exception):  # the database may be what fails
                        await self._heartbeat()
                    await self.sleep(delay)
                    continue
                if failures:
                    log.warning("delivery resumed after %d failed rounds", failures)
                    failures = 0
                    self._last_error = None
                if idle is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), idle)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            self._closing = True
            await self._drain(DRAIN_TIMEOUT)
            try:
                await self._heartbeat(force=True)  # what was sent since the last record
            except Exception as exc:
                log.warning("could not record the last counts at shutdown: %s", describe(exc))

    async def _beat_safely(self) -> None:
        """A failing record of liveness or counters never fails the round: it is retried at
        the next one (``diary status`` shows the worker as silent meanwhile)."""
        try:
            await self._heartbeat()
        except Exception as exc:
            if not self._beat_failing:
                log.warning("could not record the sender's progress: %s", describe(exc))
            self._beat_failing = True
        else:
            self._beat_failing = False

    async def _idle_wait(self) -> float:
        """How long to sleep with nothing to do: until the next push is due, when
        notifications wake the worker for new ones; else ``poll_interval``."""
        if not self._listening:
            return self.poll_interval
        due = await self.outbox.next_due()
        if due is None:
            return IDLE_MAX
        wait = (due - self.clock.now()).total_seconds()
        # Due already yet not claimed: its chat is busy or cooling down; look again shortly.
        return self.poll_interval if wait <= 0 else min(IDLE_MAX, wait)

    async def _listen(self) -> None:
        """Keep a PostgreSQL listener that wakes the worker for each queued push; lost, it is
        opened again (meanwhile the worker polls). On SQLite there is nothing to listen to."""
        failures = 0
        while True:
            try:
                listener = await self.outbox.db.listen(CHANNEL, self.wake)
                if listener is None:
                    return
            except Exception as exc:
                failures += 1
                delay = min(LISTEN_BACKOFF_MAX, 2.0 ** failures)
                log.warning("cannot listen for queued pushes (%s); polling, trying again in"
                            " %.0f s", describe(exc), delay)
                await self.sleep(delay)
                continue
            failures = 0
            self._listening = True
            self.wake()  # whatever was queued while not listening
            try:
                await listener.closed()
                log.warning("the connection listening for queued pushes was lost; polling")
            finally:
                self._listening = False
                await listener.close()

    async def _heartbeat(self, force: bool = False) -> None:
        """Record that this worker is alive, every ``HEARTBEAT_EVERY`` seconds, and what it has
        sent, every ``COUNTS_EVERY`` (``diary status`` and /metrics show them; the paid
        broadcasts add to today's count). Written apart from the rows, so that senders side
        by side never queue for their shared counters."""
        now = self.clock.monotonic()
        since = None if self._last_beat is None else now - self._last_beat
        counted = dict(self._counted)
        if not force and since is not None and since < HEARTBEAT_EVERY and not (
                any(counted.values()) and since >= COUNTS_EVERY):
            return
        rate = counted["messages"] / since if since else None
        await self.outbox.heartbeat(self.role, self._last_error,
                                    progress=counted["messages"] > 0, rate=rate, **counted)
        self._last_beat = now
        for key, value in counted.items():
            self._counted[key] -= value

    async def run_until_empty(self, idle_grace: float = 0.0) -> DeliveryStats:
        """Deliver what is due now (used by `diary jobs run deliver` and benchmarks)."""
        while True:
            progressed = await self.step()
            await self._beat_safely()
            if not progressed and not self._tasks:
                if not await self.outbox.has_due():
                    break
                await self.sleep(min(self.poll_interval, 0.05))
            elif not progressed:
                await asyncio.sleep(0.01)
        await self._drain()
        await self._heartbeat(force=True)
        return self.stats

    async def step(self) -> bool:
        """Claim and start sending what is due; True if anything was started."""
        await self._renew()
        # Claims are taken ahead of the sends (the sends themselves wait for one of the
        # ``concurrency`` slots), so that one claim serves many messages.
        room = self.concurrency * PREFETCH - len(self._tasks)
        if room < self.concurrency:
            # Not forever: the leases of what is held are renewed at the next step even while
            # every send hangs.
            await asyncio.wait(self._tasks, timeout=RENEW_CHECK,
                               return_when=asyncio.FIRST_COMPLETED)
            return True
        if not self._backlog and not await self.outbox.has_due():
            return False
        batches = await self.outbox.claim(recipients=room, exclude=self._cooling())
        self._backlog = len(batches) == room
        for batch in batches:
            self._busy.add(batch.telegram_id)
            until = self.clock.monotonic() + self._lease
            self._held.update(dict.fromkeys(batch.ids, until))
            task = asyncio.create_task(self._deliver(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return bool(batches)

    async def _renew(self) -> None:
        """Extend the lease of the rows in flight, every quarter of the lease."""
        now = self.clock.monotonic()
        if self._last_renew is not None and now - self._last_renew < self._lease / 4:
            return
        self._last_renew = now
        if not self._held:
            return
        ids = sorted(self._held)
        kept = await self.outbox.renew(ids)
        lost = 0
        for i in ids:
            # Rows settled meanwhile (sent, deferred, dropped) are gone from ``_held``; a row
            # still here and not kept lost its lease (another sender took it) and is never sent
            # from here: ``_leased`` says so before each message.
            if i in self._held:
                if i in kept:
                    self._held[i] = now + self._lease
                else:
                    self._held[i] = float("-inf")
                    lost += 1
        if lost:
            log.warning("lost the lease of %d pushes (another sender has them now)", lost)

    def _leased(self, ids: list[int]) -> bool:
        """The lease on these rows holds for a while yet (a quarter of it, for clock skew
        between hosts and the send itself)."""
        limit = self.clock.monotonic() + self._lease / 4
        return all(self._held.get(i, float("-inf")) > limit for i in ids)

    async def _record_sent(self, ids: list[int]) -> None:
        """Mark rows sent, together with those of the other sends that finished meanwhile
        (one transaction for all: a group commit), and return when it is written."""
        done = asyncio.get_running_loop().create_future()
        self._sent_waiting.append((ids, done))
        if self._sent_writer is None or self._sent_writer.done():
            self._sent_writer = asyncio.create_task(self._write_sent())
        await asyncio.shield(done)

    async def _write_sent(self) -> None:
        while self._sent_waiting:
            group, self._sent_waiting = self._sent_waiting, []
            ids = [i for rows, _ in group for i in rows]
            await self._book("a sent message", functools.partial(self.outbox.sent, ids))
            for i in ids:  # settled: no lease to renew any more
                self._held.pop(i, None)
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    async def _drain(self, limit: float | None = None) -> None:
        pending: set[asyncio.Task[None]] = set()
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=limit)
        if pending:
            log.error("%d deliveries still waiting for the database at shutdown; their claims "
                      "are taken back when their lease runs out", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        writer = self._sent_writer
        if writer is not None and not writer.done():
            _done, late = await asyncio.wait([writer], timeout=limit)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _book(self, what: str, action: Callable[[], Awaitable[object]],
                    give_up_after: float | None = None) -> None:
        """Record an outcome in the outbox, trying until the database takes it.

        What happened at Telegram is never done again because the bookkeeping failed: the rows
        stay claimed by this worker (and the chat stays busy) until the record is written.
        An outcome whose loss is harmless (a retry, a deferral: the claim's lease gives the rows
        back anyway) is given up after ``give_up_after`` seconds of trying."""
        attempt = 0
        waited = 0.0
        while True:
            try:
                await action()
            except Exception as exc:
                attempt += 1
                self._last_error = describe(exc)
                if attempt == 1:
                    log.warning("could not record %s: %s; retrying", what, self._last_error)
                pause = min(BOOK_BACKOFF_MAX, 0.25 * 2 ** attempt)
                if give_up_after is not None and waited + pause > give_up_after:
                    log.error("gave up recording %s after %.0f s: %s; the claim's lease gives"
                              " the rows back", what, waited, self._last_error)
                    return
                await self.sleep(pause)
                waited += pause
            else:
                if attempt:
                    log.info("recorded %s after %d retries", what, attempt)
                    self._last_error = None
                return

    async def _deliver(self, batch: Batch) -> None:
        unsettled = set(batch.ids)
        try:
            async with self._slots:
                if self._closing:
                    # Shutting down before this batch began: give its rows back now rather
                    # than leaving them to their lease.
                    await self._book("a batch given back", lambda: self.outbox.defer(
                        sorted(unsettled), self.clock.now()), give_up_after=5)
                    unsettled.clear()
                    return
                await self._send_batch(batch, unsettled)
        except Exception as exc:  # the worker must survive anything one batch does
            log.error("delivery to one recipient failed: %s; will retry", describe(exc),
                      exc_info=exc)
            if unsettled:
                ids = sorted(unsettled)
                # A failure that repeats is tried less and less often.
                delay = timedelta(seconds=backoff(max(i.attempts for i in batch.items) + 1))
                await self._book("a retry", lambda: self.outbox.retry(
                    ids, delay, "internal error"), give_up_after=self._lease)
        finally:
            self._busy.discard(batch.telegram_id)
            for i in batch.ids:
                self._held.pop(i, None)

    async def _send_batch(self, batch: Batch, unsettled: set[int]) -> None:
        """Send the batch; every row settled is taken out of ``unsettled``."""
        locale = pick_locale(batch.locale, batch.language_code, self.i18n.default_locale)
        with self.i18n.context(), self.i18n.use_locale(locale):
            messages, unknown = render_batch(batch.items)
        if unknown:
            log.error("no renderer for %d outbox rows; dropped", len(unknown))
            await self._book("dropped rows", lambda: self.outbox.drop(unknown, "no renderer"))
            unsettled.difference_update(unknown)
        attempts = max(item.attempts for item in batch.items)
        created = {item.id: item.created_at for item in batch.items}
        for number, message in enumerate(messages):
            rest = [i for m in messages[number:] for i in m.ids]
            if not await self._send_message(batch, message, rest, attempts):
                unsettled.difference_update(rest)
                return
            if not message.ids:
                continue  # the first part of a long message: its rows go with the last part
            ids = list(message.ids)
            await self._record_sent(ids)
            unsettled.difference_update(ids)
            self._counted["messages"] += 1
            now = self.clock.now()
            self.stats.messages += 1
            self.stats.rows += len(ids)
            self.stats.latencies.extend((now - created[i]).total_seconds() for i in ids)

    async def _send(self, chat_id: int, message: Outgoing, paid: bool) -> object:
        """One message: a text, or a photo with the text as its caption; an answer goes as a
        reply to the message it answers (or alone, if that one was deleted)."""
        markup = message.markup.to_dict() if message.markup is not None else None
        photo = message.upload or message.photo
        if photo:
            return await self.bot.send_photo(chat_id, photo, caption=message.text,
                                             reply_markup=markup, reply_to=message.reply_to,
                                             paid=paid)
        return await self.bot.send_message(chat_id, message.text, reply_markup=markup,
                                           reply_to=message.reply_to, paid=paid)

    async def _send_message(self, batch: Batch, message: Outgoing, rest: list[int],
                            attempts: int) -> bool:
        """Send one message. On failure settle ``rest`` — this message's rows and those after
        it — and return False."""
        try:
            paid = await self.budget.acquire(batch.telegram_id)
            if not self._leased(rest):
                # The lease ran out (this process stalled) or is about to: another sender may
                # have these rows, so they are not sent from here; any still held go back.
                log.warning("the lease of %d pushes ran out before their send; given back",
                            len(rest))
                await self._book("a lapsed claim", lambda: self.outbox.defer(
                    rest, self.clock.now()), give_up_after=self._lease)
                return False
            sent = await self._send(batch.chat_id, message, paid)
            delivered_id = getattr(sent, "message_id", None)
            if message.note is not None and delivered_id is not None:
                # A conversation's message: its id in this chat, for the answers to come.
                note, delivered = message.note, delivered_id
                await self._book("a delivered message's id", lambda: note_delivered(
                    self.outbox.db, note, delivered), give_up_after=self._lease)
            self._chat_ready[batch.telegram_id] = self.clock.monotonic() + self.chat_interval
            if paid:
                self.stats.paid += 1
                self._counted["paid"] += 1
            return True
        except RetryAfter as exc:
            self.stats.rate_limited += 1
            self._counted["rate_limited"] += 1
            wait = float(exc.retry_after)
            self._chat_ready[batch.telegram_id] = self.clock.monotonic() + wait
            until = self.clock.now() + timedelta(seconds=wait)
            await self._book("a rate limit", lambda: self.outbox.defer(rest, until),
                             give_up_after=self._lease)
        except Forbidden as exc:
            self.stats.unreachable += 1
            reason = exc.message
            await self._book("a blocked chat",
                             lambda: self.outbox.unreachable(batch.telegram_id, reason))
        except BadRequest as exc:
            reason = exc.message
            if "chat not found" in reason.lower() or "deactivated" in reason.lower():
                self.stats.unreachable += 1
                await self._book("a missing chat",
                                 lambda: self.outbox.unreachable(batch.telegram_id, reason))
            else:
                # Only this message is at fault; the next ones go with the next claim.
                self.stats.dropped += len(message.ids)
                log.error("Telegram refused a push for good: %s", reason)
                await self._book("a refused push",
                                 lambda: self.outbox.drop(list(message.ids), reason))
                later = [i for i in rest if i not in message.ids]
                if later:
                    now = self.clock.now()
                    await self._book("a deferral", lambda: self.outbox.defer(later, now),
                                     give_up_after=self._lease)
        except Unauthorized:
            # The token is wrong or revoked: nothing can be sent; keep every row for later.
            log.critical("Telegram rejects the bot token; pushes are kept for later")
            await self._book("a retry", lambda: self.outbox.retry(
                rest, timedelta(seconds=MAX_BACKOFF), "unauthorized"))
        except NotFound as exc:
            # 404 is the Bot API server's (a wrong TELEGRAM_API_URL), not the chat's.
            log.critical("the Bot API answers 404: check TELEGRAM_API_URL; pushes are kept")
            self.stats.retries += 1
            reason = exc.message
            await self._book("a retry", lambda: self.outbox.retry(
                rest, timedelta(seconds=backoff(attempts)), reason))
        except (ServerError, NetworkError, TimeoutError, OSError) as exc:
            self.stats.retries += 1
            error = f"{type(exc).__name__}: {exc}"
            await self._book("a retry", lambda: self.outbox.retry(
                rest, timedelta(seconds=backoff(attempts)), error))
        return False
