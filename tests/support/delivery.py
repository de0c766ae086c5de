"""Delivering the outbox in tests: a sender whose waits move the test's clock."""

from __future__ import annotations

import asyncio

from bot.delivery import DeliveryWorker
from bot.i18n import create_i18n
from core.services.outbox import Outbox

# The token of the loopback Bot API fake the bot tests send to.
TOKEN = "123:TEST"


def virtual_sleep(clock):
    """The worker's waits move the test's clock instead of taking real time."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds=max(0.0, seconds))
        await asyncio.sleep(0)

    return sleep


def worker(bot, services, outbox: Outbox | None = None, **kw) -> DeliveryWorker:
    """A sender of ``services``' outbox through ``bot`` (a ``BotApi`` of the fake), in Russian
    unless a recipient chose otherwise, with limits that keep a test short."""
    kw.setdefault("per_chat_rate", 50)
    kw.setdefault("rate", 200)
    kw.setdefault("sleep", virtual_sleep(services.clock))
    return DeliveryWorker(bot, outbox or services.outbox, create_i18n("ru"), **kw)
