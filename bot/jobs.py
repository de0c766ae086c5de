"""Scheduled jobs (APScheduler): thin wrappers over core services, runnable one-off from the CLI."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import Settings
from bot.services import Services
from core.clock import to_db
from core.demo import DemoSchool
from core.services.digest import DrawWeek, WeekChart
from core.services.outbox import record_worker
from core.storage.db import error_text

log = logging.getLogger(__name__)

SENT_RETENTION = timedelta(days=30)
CHUNK = 5000  # rows per transaction when housekeeping deletes
# The catch-up runs at start-up come this long after the scheduler starts: the first updates
# and deliveries go first. Each is cheap (jobs read only what is due, through indexes) and
# works in chunks, so polling and delivery go on while it runs.
CATCH_UP_DELAY = timedelta(seconds=5)


async def _delete_chunked(services: Services, table: str, key: str, where: str,
                          params: tuple) -> int:
    """Delete the rows of ``table`` that match ``where`` (through an index), ``CHUNK`` rows per
    transaction, so the write lock is never held for long; returns how many went."""
    total = 0
    while True:
        async with services.db.transaction() as tx:
            cur = await tx.execute(
                f"DELETE FROM {table} WHERE ({key}) IN"
                f" (SELECT {key} FROM {table} WHERE {where} LIMIT {CHUNK})", params)
        total += max(cur.rowcount, 0)
        if cur.rowcount < CHUNK:
            return total


async def housekeeping(services: Services) -> dict[str, int]:
    """Forget what is no longer needed: delivered pushes and digest decisions after 30 days
    (the pictures of weekly charts after a day),
    conversations abandoned for a week, old code failures, expired or used link codes. Each
    reads only the rows to delete, by an index, a chunk per transaction."""
    now = services.clock.now()
    old = to_db(now - SENT_RETENTION)
    day_ago = to_db(now - timedelta(days=1))
    week_ago = to_db(now - timedelta(days=7))

    async def delete(table: str, key: str, *conditions: tuple[str, tuple]) -> int:
        return sum([await _delete_chunked(services, table, key, where, params)
                    for where, params in conditions])

    sent = await delete("outbox", "id", ("sent_at < ?", (old,)), ("dropped_at < ?", (old,)))
    # A weekly chart's row carries its picture (some 60 KB): gone a day after it went out.
    sent += await delete("outbox", "id", ("kind = 'week_chart' AND sent_at < ?", (day_ago,)),
                         ("kind = 'week_chart' AND dropped_at < ?", (day_ago,)))
    failures = await delete("code_failures", "telegram_id, at", ("at < ?", (day_ago,)))
    codes = await delete("link_codes", "code_hash", ("expires_at < ?", (day_ago,)),
                         ("used_at < ?", (old,)))
    codes += await delete("teacher_codes", "code_hash", ("expires_at < ?", (day_ago,)),
                          ("used_at < ?", (old,)))
    # A conversation abandoned for a week is forgotten (it may hold half-typed answers).
    states = await delete("fsm_state", "key", ("updated_at IS NULL", ()),
                          ("updated_at < ?", (week_ago,)))
    digests = await delete("digest_log", "telegram_id, day",
                           ("day < ?", ((now - SENT_RETENTION).date().isoformat(),)))
    # Processes that have not shown a sign of life for a week are gone (restarts, old hosts).
    workers = await delete("workers", "role, owner", ("beat_at < ?", (week_ago,)))
    return {"outbox": sent, "code_failures": failures, "codes": codes,
            "digest_log": digests, "conversations": states, "workers": workers}


def _logged(name: str, job: Callable[[], Awaitable[object]],
            services: Services | None = None) -> Callable[[], Awaitable[None]]:
    """A job that never takes the scheduler down: a failure is logged with its cause and the
    job runs again at its next time. With ``services``, each run is recorded for
    ``diary status`` (role ``job:NAME``)."""

    async def run() -> None:
        error = None
        try:
            result = await job()
            log.info("job %s done: %s", name, result)
        except Exception as exc:
            error = error_text(exc)
            log.exception("job %s failed", name)
        if services is None:
            return
        try:
            async with services.db.transaction() as tx:
                await record_worker(tx, f"job:{name}", services.outbox.owner,
                                    services.clock.now(), progress=error is None, error=error)
        except Exception as exc:
            log.warning("could not record the run of job %s: %s", name, error_text(exc))

    return run


async def expire_dots(services: Services) -> dict[str, int]:
    result = await services.dots.run()
    return {"graded": result.graded, "vanished": result.vanished, "reminders": result.reminders,
            "failed": result.failed}


async def digest(services: Services, draw_week: DrawWeek | None = None) -> dict[str, int]:
    result = await services.digest.run(draw_week)
    return {"sent": result.sent, "nothing_to_say": result.empty,
            "too_late": result.skipped_late, "accounts_due": result.considered,
            "weekly_charts": result.charts}


def week_drawer(settings: Settings) -> DrawWeek:
    """Friday's weekly charts, drawn in each reader's language (matplotlib is loaded when the
    first one is drawn)."""
    from bot import charts
    from bot.i18n import create_i18n

    i18n = create_i18n(settings.default_locale)

    async def draw(week: WeekChart, locale: str | None, language: str | None) -> bytes:
        return await charts.draw_week(week, locale, language, i18n)

    return draw


async def expire_invitations(services: Services) -> dict[str, int]:
    return {"expired": await services.trusted.expire()}


def add_simulator(scheduler: AsyncIOScheduler, school: DemoSchool, minutes: int,
                  on_queued: Callable[[], None]) -> None:
    """Demo mode: a new grade, dot or absence for each visitor's family every few minutes."""

    async def simulate() -> dict[str, int]:
        pushes = await school.simulate()
        if pushes:
            on_queued()
        return {"pushes": pushes}

    scheduler.add_job(_logged("demo-simulator", simulate), "interval", minutes=minutes,
                      id="demo-simulator", coalesce=True, max_instances=1)


def create_scheduler(services: Services, settings: Settings) -> AsyncIOScheduler:
    """The scheduled jobs; what they queue rings the services' doorbell (this process's
    sender, if it has one, goes at once)."""
    # APScheduler logs every run at INFO ("Running job…", "executed successfully"): the log is
    # for what an operator needs, so only its warnings and errors; our jobs log their own lines.
    for name in ("apscheduler", "apscheduler.scheduler", "apscheduler.executors.default"):
        logging.getLogger(name).setLevel(logging.WARNING)
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    # Never awaited by start-up: the scheduler runs each job as a task of its own.
    catch_up = datetime.now(settings.tz) + CATCH_UP_DELAY

    async def dots() -> dict[str, int]:
        result = await expire_dots(services)
        if any(result.values()):
            services.doorbell.ring()
        return result

    # Hourly (a few minutes past, in school time) and once just after start-up, to catch up.
    scheduler.add_job(
        _logged("expire-dots", dots, services), "cron", minute=1, id="expire-dots",
        coalesce=True,
        misfire_grace_time=3600, next_run_time=catch_up,
    )
    async def invitations() -> dict[str, int]:
        result = await expire_invitations(services)
        if result["expired"]:
            services.doorbell.ring()
        return result

    scheduler.add_job(
        _logged("expire-invitations", invitations, services), "cron", minute=7,
        id="expire-invitations",
        coalesce=True, misfire_grace_time=3600, next_run_time=catch_up,
    )
    draw_week = week_drawer(settings)

    async def digests() -> dict[str, int]:
        result = await digest(services, draw_week)
        if result["sent"]:
            services.doorbell.ring()
        return result

    # Every five minutes (each account has its own time; a run reads only the accounts whose
    # moment has come) and once just after start-up, to catch up.
    scheduler.add_job(
        _logged("digest", digests, services), "cron", minute="*/5", id="digest", coalesce=True,
        misfire_grace_time=600, next_run_time=catch_up,
    )
    scheduler.add_job(
        _logged("housekeeping", lambda: housekeeping(services), services),
        "cron", hour=3, minute=30, id="housekeeping", coalesce=True, misfire_grace_time=3600,
    )
    return scheduler
