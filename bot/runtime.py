"""The composition root: Settings → database → services → Dispatcher → polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from bot.commands import set_commands
from bot.config import Settings
from bot.i18n import I18n, create_i18n
from bot.sender import create_api, create_budget, create_worker, keep_running
from bot.services import Services, open_services
from core.demo import DemoSchool

log = logging.getLogger(__name__)


def create_bot(settings: Settings) -> Bot:
    assert settings.bot_token is not None
    session = None
    if settings.telegram_api_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    bot = Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(link_preview_is_disabled=True),
    )
    # Replies to users wait out a 429; the outbox sender's requests (made outside an update)
    # pass straight through, as it defers the rows itself.
    from bot.retry import RetryMiddleware

    bot.session.middleware(RetryMiddleware())
    return bot


def demo_school(services: Services) -> DemoSchool:
    return DemoSchool(services.db, services.clock, services.tz, services.roster,
                      services.journal, services.linking)


async def run_bot(settings: Settings, demo: bool = False) -> None:
    """The bot; with ``demo`` the demo school (the database must be a demo one).

    Raises ``AlreadyRunning`` when another process already polls for this database."""
    from bot.singleton import poller_lock

    async with poller_lock(settings.database, settings.sqlite_path):
        await _run_bot(settings, demo)


async def _run_bot(settings: Settings, demo: bool) -> None:
    # Only the all-in-one process handles updates and schedules here: `diary deliver`, which
    # builds its bot and sender here too, loads neither the handlers nor the scheduler.
    from bot.app import create_dispatcher
    from bot.jobs import add_simulator, create_scheduler

    async with open_services(settings) as services:
        school = None
        if demo:
            school = demo_school(services)
            await school.seed()
        i18n = create_i18n(settings.default_locale)
        from bot.web import conversation_storage

        storage, isolation = conversation_storage(settings, services)
        dp = create_dispatcher(services, i18n, storage, demo=school, isolation=isolation)
        bot = create_bot(settings)
        sender_api = create_api(settings)  # the sender's own client: plain requests, no models
        budget = await create_budget(settings, services)
        worker = create_worker(sender_api, services, i18n, settings, budget)
        services.journal.on_queued = worker.wake
        scheduler = create_scheduler(services, settings, on_queued=worker.wake)
        if school is not None:
            add_simulator(scheduler, school, settings.demo_simulator_minutes, worker.wake)
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


class ApiUnavailable(Exception):
    """The ingestion API cannot listen where API_HOST and API_PORT say."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where, self.reason = where, reason


async def start_api(services: Services, settings: Settings) -> web.AppRunner | None:
    """The ingestion API on ``API_HOST``:``API_PORT`` when ``API_PORT`` is set: a grade it
    takes wakes this process's sender at once (``JournalService.on_queued``)."""
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


async def _set_commands(bot: Bot, i18n: I18n) -> None:
    try:
        await set_commands(bot, i18n)
    except Exception:  # the menu is a convenience: the bot works without it, next start retries
        log.warning("could not set the command menu", exc_info=True)
