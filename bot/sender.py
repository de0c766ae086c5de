"""The outbox sender's parts (`diary deliver`, and the sender of `diary run`): its Bot API client,
its worker and its send budget.

A sender loads the services, the push renderers and the Bot API client, and nothing of aiogram,
the chat handlers or the scheduler: every copy of it stays small (see the README's RSS figures).
"""

from __future__ import annotations

import logging
from datetime import date

from bot.budget import Budget, LocalBudget, RedisBudget
from bot.config import Settings
from bot.delivery import DeliveryWorker
from bot.i18n import I18n
from bot.services import Services
from bot.telegram import BotApi

log = logging.getLogger(__name__)


def create_sender_api(settings: Settings) -> BotApi:
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
        doorbell=services.doorbell,
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
