"""Replies to users honour Telegram's 429 (retry_after) and arrive; the outbox sender is not
held up by it."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.methods import AnswerCallbackQuery, SendMessage
from pydantic import SecretStr

from bot.chatbot import create_bot
from bot.config import Settings
from bot.retry import RetryMiddleware, replying
from tests.support import updates as up
from tests.support.school import ANNA_PHONE

ANNA = 5001


@pytest.fixture
def slept(tg) -> list[float]:
    """The retry middleware on the test bot, with a sleep that only records."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    tg.bot.session.middleware(RetryMiddleware(sleep=sleep))
    return waits


async def test_ten_quick_help_requests_are_all_answered(tg, slept):
    for n in range(10):
        if n % 2:
            tg.session.flood(SendMessage, retry_after=3)
        await tg.feed(up.message(ANNA, "/help"))
    answered = tg.session.of(SendMessage)
    assert len(answered) == 10 and len(tg.session.refused) == 5
    assert len({c.text for c in answered}) == 1 and answered[0].text.startswith("Я — окно семьи")
    assert slept == [3.0] * 5


async def test_many_contacts_at_once_each_get_their_reply(tg, slept):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    tg.session.flood(SendMessage, retry_after=1, times=3)
    await asyncio.gather(*(tg.feed(up.contact(ANNA + n, "+7 999 000-00-0" + str(n), ANNA + n))
                           for n in range(1, 6)))
    replies = {c.chat_id for c in tg.session.of(SendMessage)
               if "нет в данных школы" in c.text}
    assert replies == {ANNA + n for n in range(1, 6)}
    assert slept == [1.0] * 3


async def test_a_callback_answer_refused_once_is_answered(tg, slept):
    tg.session.flood(AnswerCallbackQuery, retry_after=2)
    await tg.feed(up.callback(ANNA, "st:home:"))
    assert len(tg.session.of(AnswerCallbackQuery)) == 1  # and the fixture: exactly once
    assert len(tg.session.refused) == 1 and slept == [2.0]


async def test_it_gives_up_after_a_minute_of_waiting(tg):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    middleware = RetryMiddleware(sleep=sleep)
    calls = 0

    async def refused(bot, method):
        nonlocal calls
        calls += 1
        raise TelegramRetryAfter(method, "Too Many Requests", 25)

    with replying(), pytest.raises(TelegramRetryAfter):
        await middleware(refused, tg.bot, SendMessage(chat_id=1, text="x"))
    assert waits == [25.0, 25.0] and calls == 3


async def test_a_new_message_is_not_repeated_after_a_server_error(tg):
    middleware = RetryMiddleware(sleep=lambda s: asyncio.sleep(0))
    calls: list[str] = []

    async def broken(bot, method):
        calls.append(type(method).__name__)
        if len(calls) == 1 or isinstance(method, SendMessage):
            raise TelegramServerError(method, "Bad Gateway")
        return True

    with replying():
        assert await middleware(broken, tg.bot, AnswerCallbackQuery(callback_query_id="1"))
        with pytest.raises(TelegramServerError):
            await middleware(broken, tg.bot, SendMessage(chat_id=1, text="x"))
    assert calls == ["AnswerCallbackQuery", "AnswerCallbackQuery", "SendMessage"]


async def test_the_outbox_senders_requests_are_not_held(tg, slept):
    """Outside an update (the delivery worker) a 429 reaches the caller at once."""
    tg.session.flood(SendMessage, retry_after=30)
    with pytest.raises(TelegramRetryAfter):
        await tg.bot.send_message(ANNA, "push")
    assert slept == []


def test_the_real_bot_retries_replies():
    bot = create_bot(Settings(bot_token=SecretStr("42:TEST"), _env_file=None))
    assert any(isinstance(m, RetryMiddleware) for m in bot.session.middleware)
