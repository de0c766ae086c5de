"""Replies to users survive Telegram's flood control.

``RetryMiddleware`` is a request middleware of the bot's session: while an update is being
handled (``replying()``, entered by the dispatcher for every update), a request refused with
429 waits ``retry_after`` and goes again, up to a total wait of a minute and a few attempts;
5xx and network errors are retried briefly for requests that are safe to repeat (answering a
callback, editing, reading), never for a new message, which could then arrive twice.

Outside an update nothing is retried: the outbox sender handles 429 itself, deferring the
recipient's rows rather than waiting in line, so its requests pass straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
# Requests that do the same thing when repeated: retried after a 5xx or a network error too.
REPEATABLE = (AnswerCallbackQuery, DeleteMessage, EditMessageReplyMarkup, EditMessageText, GetMe)

_replying: ContextVar[bool] = ContextVar("replying", default=False)


@contextlib.contextmanager
def replying() -> Iterator[None]:
    """Requests made inside answer a user's update: they are retried."""
    token = _replying.set(True)
    try:
        yield
    finally:
        _replying.reset(token)


class RetryMiddleware(BaseRequestMiddleware):
    def __init__(self, max_wait: float = 60.0, attempts: int = 5, sleep: Sleep = asyncio.sleep,
                 server_error_delay: float = 1.0) -> None:
        self.max_wait = max_wait
        self.attempts = attempts
        self.sleep = sleep
        self.server_error_delay = server_error_delay

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if not _replying.get():
            return await make_request(bot, method)
        waited = 0.0
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                delay = float(exc.retry_after)
                if not self._again(method, attempt, waited, delay, exc):
                    raise
            except (TelegramServerError, TelegramNetworkError) as exc:
                delay = self.server_error_delay * attempt
                if not isinstance(method, REPEATABLE) or not self._again(
                        method, attempt, waited, delay, exc):
                    raise
            await self.sleep(delay)
            waited += delay
            attempt += 1

    def _again(self, method: TelegramMethod[Any], attempt: int, waited: float, delay: float,
               exc: Exception) -> bool:
        name = type(method).__name__
        if attempt >= self.attempts or waited + delay > self.max_wait:
            log.warning("%s failed after %d attempts and %.0f s of waiting: %s", name, attempt,
                        waited, exc)
            return False
        log.info("%s: %s; retrying in %.1f s", name, exc, delay)
        return True
