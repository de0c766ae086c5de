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
from core.services.outbox import record_worker
from core.storage.db import error_text

log = logging.getLogger(__name__)

SENT_RETENTION = timedelta(days=30)


async def housekeeping(services: Services) -> dict[str, int]:
    """Forget what is no longer needed: delivered pushes and digest decisions after 30 days,
    conversations abandoned for a week, old code failures, expired or used link codes."""
    now = services.clock.now()
    async with services.db.transaction() as tx:
        sent = await tx.execute(
            "DELETE FROM outbox WHERE (sent_at IS NOT NULL AND sent_at < ?)"
            " OR (dropped_at IS NOT NULL AND dropped_at < ?)",
            (to_db(now - SENT_RETENTION), to_db(now - SENT_RETENTION)),
        )
        failures = await tx.execute(
            "DELETE FROM code_failures WHERE at < ?", (to_db(now - timedelta(days=1)),)
        )
        codes = await tx.execute(
            "DELETE FROM link_codes WHERE expires_at < ? OR used_at < ?",
            (to_db(now - timedelta(days=1)), to_db(now - SENT_RETENTION)),
        )
        # A conversation abandoned for a week is forgotten (it may hold half-typed answers).
        states = await tx.execute(
            "DELETE FROM fsm_state WHERE updated_at IS NULL OR updated_at < ?",
            (to_db(now - timedelta(days=7)),),
        )
        digests = await tx.execute(
            "DELETE FROM digest_log WHERE day < ?",
            ((now - SENT_RETENTION).date().isoformat(),),
        )
        # Processes that have not shown a sign of life for a week are gone (restarts, old hosts).
        workers = await tx.execute(
            "DELETE FROM workers WHERE beat_at < ?", (to_db(now - timedelta(days=7)),))
    return {"outbox": sent.rowcount, "code_failures": failures.rowcount, "codes": codes.rowcount,
            "digest_log": digests.rowcount, "conversations": states.rowcount,
            "workers": workers.rowcount}


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


async def digest(services: Services) -> dict[str, int]:
    result = await services.digest.run()
    return {"sent": result.sent, "nothing_to_say": result.empty,
            "too_late": result.skipped_late}


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


def create_scheduler(
    services: Services, settings: Settings, on_queued: Callable[[], None] | None = None
) -> AsyncIOScheduler:
    # APScheduler logs every run at INFO ("Running job…", "executed successfully"): the log is
    # for what an operator needs, so only its warnings and errors; our jobs log their own lines.
    for name in ("apscheduler", "apscheduler.scheduler", "apscheduler.executors.default"):
        logging.getLogger(name).setLevel(logging.WARNING)
    scheduler = AsyncIOScheduler(timezone=settings.tz)

    async def dots() -> dict[str, int]:
        result = await expire_dots(services)
        if on_queued is not None and any(result.values()):
            on_queued()
        return result

    # Hourly (a few minutes past, in school time) and once at start-up, to catch up.
    scheduler.add_job(
        _logged("expire-dots", dots, services), "cron", minute=1, id="expire-dots",
        coalesce=True,
        misfire_grace_time=3600, next_run_time=datetime.now(settings.tz),
    )
    async def invitations() -> dict[str, int]:
        result = await expire_invitations(services)
        if on_queued is not None and result["expired"]:
            on_queued()
        return result

    scheduler.add_job(
        _logged("expire-invitations", invitations, services), "cron", minute=7,
        id="expire-invitations",
        coalesce=True, misfire_grace_time=3600, next_run_time=datetime.now(settings.tz),
    )
    async def digests() -> dict[str, int]:
        result = await digest(services)
        if on_queued is not None and result["sent"]:
            on_queued()
        return result

    # Every five minutes (each account has its own time) and at start-up, to catch up.
    scheduler.add_job(
        _logged("digest", digests, services), "cron", minute="*/5", id="digest", coalesce=True,
        misfire_grace_time=600, next_run_time=datetime.now(settings.tz),
    )
    scheduler.add_job(
        _logged("housekeeping", lambda: housekeeping(services), services),
        "cron", hour=3, minute=30, id="housekeeping", coalesce=True, misfire_grace_time=3600,
    )
    return scheduler
