"""`diary deliver`: a sender process, and the parts of it the all-in-one bot shares.

A sender loads the services, the push renderers and the Bot API client, and nothing of aiogram,
the chat handlers or the scheduler: every copy of it stays small (see the README's RSS figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import date

from bot.budget import Budget, LocalBudget, RedisBudget
from bot.config import Settings
from bot.delivery import DeliveryWorker
from bot.i18n import I18n, create_i18n
from bot.services import Services, open_services
from bot.telegram import BotApi

log = logging.getLogger(__name__)


def create_api(settings: Settings) -> BotApi:
    """The Bot API client of the outbox sender (``TELEGRAM_API_URL`` when set)."""
    assert settings.bot_token is not None
    return BotApi(settings.bot_token.get_secret_value(), settings.telegram_api_url)


def create_worker(api: BotApi, services: Services, i18n: I18n, settings: Settings,
                  budget: Budget | None = None) -> DeliveryWorker:
    return DeliveryWorker(
        api,
        services.outbox,
        i18n,
        rate=settings.send_rate,
        per_chat_rate=settings.send_rate_per_chat,
        budget=budget,
    )


async def create_budget(settings: Settings, services: Services) -> Budget:
    """Telegram's limits for this sender: shared in Redis with every other sender when
    ``REDIS_URL`` is set, else kept in this process (today's paid count read back)."""
    clock, tz = services.clock, services.tz

    def today() -> date:
        return clock.now().astimezone(tz).date()

    if settings.redis_url:
        return RedisBudget(settings.redis_url, settings.rates(), today)
    paid = await services.db.scalar("SELECT messages FROM paid_messages WHERE day = ?",
                                    (today().isoformat(),))
    return LocalBudget(settings.rates(), clock, today, paid_so_far=int(paid or 0))


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


async def run_deliver(settings: Settings) -> None:
    """`diary deliver`: one sender until SIGTERM/SIGINT."""
    async with open_services(settings) as services, create_api(settings) as api:
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
