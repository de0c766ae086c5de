"""The composition root: one function per process role, from Settings to a running process.

- `diary run` (``run_all``; ``demo`` for `diary demo`): long polling, one sender, the scheduler
  and, with ``API_PORT``, the ingestion API, in one process.
- `diary web` (``run_web``): the webhook server. Telegram posts every update to ``WEBHOOK_URL``
  with the secret token header; a request without the right ``WEBHOOK_SECRET`` gets 401. Any
  number may run behind a load balancer: conversation state and the per-chat order of updates
  then live in Redis (``REDIS_URL``). It also serves ``/healthz``, Prometheus ``/metrics`` and
  the ingestion API under ``/v1``.
- `diary deliver` (``run_deliver``): a sender. Any number may run: each claims whole recipients
  in a write transaction, so no row goes out twice, and takes back the claims of a sender that
  died. It loads nothing of aiogram, the chat handlers or the scheduler (every copy stays small).
- `diary scheduler` (``run_scheduler``): the scheduled jobs. Any number may run; one acts, the
  others wait for its lock and take over when it is gone.

Each role builds the services once (``bot.services.open_services``); what queues pushes in a
process rings the services' doorbell, which that process's sender waits on. The heavy parts
(aiogram, the handlers, the scheduler) are imported by the roles that run them, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.config import Settings
from bot.i18n import I18n, create_i18n
from bot.sender import create_budget, create_sender_api, create_worker
from bot.services import Services, open_services
from core.demo import DemoSchool

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)


# -- what every role shares ---------------------------------------------------------------------

async def keep_running(name: str, run: Callable[[], Awaitable[None]],
                       pause: float = 5.0) -> None:
    """Run a background loop for as long as the process lives: a loop that ends or raises
    (it should not: the delivery worker catches its own errors) is logged and started again."""
    while True:
        try:
            await run()
            log.critical("%s stopped unexpectedly; starting it again in %.0f s", name, pause)
        except Exception:
            log.critical("%s crashed; starting it again in %.0f s", name, pause, exc_info=True)
        await asyncio.sleep(pause)


async def until_stopped() -> None:
    """Wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class ApiUnavailable(Exception):
    """The ingestion API cannot listen where API_HOST and API_PORT say."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where, self.reason = where, reason


async def start_api(services: Services, settings: Settings) -> web.AppRunner | None:
    """The ingestion API on ``API_HOST``:``API_PORT`` when ``API_PORT`` is set: a grade it
    takes rings the doorbell of this process's sender."""
    if settings.api_port is None:
        return None
    from bot.api import mount_api

    app = web.Application()
    mount_api(app, services, settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.api_host, settings.api_port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ApiUnavailable(f"{settings.api_host}:{settings.api_port}",
                             exc.strerror or str(exc)) from exc
    log.info("ingestion API on http://%s:%d/v1", settings.api_host, settings.api_port)
    return runner


def demo_school(services: Services) -> DemoSchool:
    return DemoSchool(services.db, services.clock, services.tz, services.roster,
                      services.journal, services.linking)


async def _set_commands(bot: Bot, i18n: I18n) -> None:
    from bot.commands import set_commands

    try:
        await set_commands(bot, i18n)
    except Exception:  # the menu is a convenience: the bot works without it, next start retries
        log.warning("could not set the command menu", exc_info=True)


# -- the roles ----------------------------------------------------------------------------------

async def run_all(settings: Settings, demo: bool = False) -> None:
    """`diary run`; with ``demo`` the demo school (the database must be a demo one).

    Raises ``AlreadyRunning`` when another process already polls for this database."""
    from bot.singleton import poller_lock

    async with poller_lock(settings.database, settings.sqlite_path):
        await _run_all(settings, demo)


async def _run_all(settings: Settings, demo: bool) -> None:
    from bot.app import create_dispatcher
    from bot.chatbot import create_bot
    from bot.jobs import add_simulator, create_scheduler
    from bot.web import conversation_storage

    async with open_services(settings) as services:
        school = None
        if demo:
            school = demo_school(services)
            await school.seed()
        i18n = create_i18n(settings.default_locale)
        storage, isolation = conversation_storage(settings, services)
        dp = create_dispatcher(services, i18n, storage, demo=school, isolation=isolation)
        bot = create_bot(settings)
        sender_api = create_sender_api(settings)  # plain requests, no models
        budget = await create_budget(settings, services)
        worker = create_worker(sender_api, services, i18n, settings, budget)
        scheduler = create_scheduler(services, settings)
        if school is not None:
            add_simulator(scheduler, school, settings.demo_simulator_minutes,
                          services.doorbell.ring)
        delivery: asyncio.Task[None] | None = None
        commands: asyncio.Task[None] | None = None
        api: web.AppRunner | None = None
        try:
            api = await start_api(services, settings)
            me = await bot.me()
            log.info("starting as @%s", me.username)
            # Telegram keeps the menu between runs: it is set while polling starts, not before.
            commands = asyncio.create_task(_set_commands(bot, i18n), name="set-commands")
            delivery = asyncio.create_task(keep_running("delivery", worker.run),
                                           name="delivery")
            scheduler.start()
            await dp.start_polling(bot, handle_signals=True, close_bot_session=False)
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            if commands is not None and not commands.done():
                commands.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await commands
            if delivery is not None:
                delivery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await delivery
            await bot.session.close()
            await sender_api.close()
            if api is not None:
                await api.cleanup()
            await storage.close()
            if isolation is not None:
                await isolation.close()
            await budget.close()


async def run_web(settings: Settings) -> None:
    """`diary web` until SIGTERM/SIGINT."""
    from bot.api import mount_api
    from bot.app import create_dispatcher
    from bot.chatbot import create_bot
    from bot.commands import set_commands
    from bot.web import conversation_storage, create_web_app, webhook_path

    assert settings.webhook_url and settings.webhook_secret
    secret = settings.webhook_secret.get_secret_value()
    async with open_services(settings) as services:
        bot = create_bot(settings)
        storage, isolation = conversation_storage(settings, services)
        i18n = create_i18n(settings.default_locale)
        dp = create_dispatcher(services, i18n, storage, isolation=isolation)
        app = create_web_app(dp, bot, services, secret, webhook_path(settings.webhook_url))
        mount_api(app, services, settings)  # the ingestion API under /v1
        runner = web.AppRunner(app, access_log=None)
        try:
            await runner.setup()
            await web.TCPSite(runner, settings.web_host, settings.web_port).start()
            await bot.set_webhook(settings.webhook_url, secret_token=secret,
                                  allowed_updates=dp.resolve_used_update_types(),
                                  drop_pending_updates=False)
            await set_commands(bot, i18n)
            log.info("webhook server on %s:%d, updates at %s", settings.web_host,
                     settings.web_port, webhook_path(settings.webhook_url))
            await until_stopped()
        finally:
            await runner.cleanup()
            await storage.close()
            if isolation is not None:
                await isolation.close()
            await bot.session.close()


async def run_deliver(settings: Settings) -> None:
    """`diary deliver`: one sender until SIGTERM/SIGINT."""
    async with open_services(settings) as services, create_sender_api(settings) as api:
        budget = await create_budget(settings, services)
        worker = create_worker(api, services, create_i18n(settings.default_locale), settings,
                               budget)
        task = asyncio.create_task(keep_running("delivery", worker.run), name="delivery")
        log.info("sender %s started", services.outbox.owner)
        try:
            await until_stopped()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await budget.close()


async def run_scheduler(settings: Settings) -> None:
    """`diary scheduler`: waits for the scheduler's lock, then runs the jobs until stopped."""
    from bot.jobs import create_scheduler
    from bot.singleton import AlreadyRunning, process_lock

    stopping = asyncio.create_task(until_stopped())
    while not stopping.done():
        try:
            async with process_lock("scheduler", settings.database, settings.sqlite_path):
                async with open_services(settings) as services:
                    scheduler = create_scheduler(services, settings)
                    scheduler.start()
                    log.info("scheduler acting")
                    try:
                        await stopping
                    finally:
                        scheduler.shutdown(wait=False)
        except AlreadyRunning as exc:
            log.info("another scheduler (%s) acts; waiting to take over", exc.holder)
            await asyncio.wait({stopping}, timeout=5)


# The roles by command.
ROLES: dict[str, Callable[[Settings], Coroutine[Any, Any, None]]] = {
    "run": run_all, "web": run_web, "deliver": run_deliver, "scheduler": run_scheduler,
}
