"""The aiogram bot of the chat front end (`diary run`, `diary web`): replies to users."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.config import Settings
from bot.retry import RetryMiddleware


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
    bot.session.middleware(RetryMiddleware())
    return bot
