from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiogram import Bot, Dispatcher
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import Update

from bot.app import create_dispatcher
from bot.fsm import SQLiteStorage
from bot.i18n import create_i18n
from bot.services import Services
from bot.telegram import BotApi
from tests.support.botapi import FakeBotAPI
from tests.support.delivery import TOKEN
from tests.support.recording import RecordingSession, make_bot
from tests.support.school import journal_history


@dataclass
class Chat:
    """A dispatcher with a recording bot: feed updates, read what the user saw."""

    dp: Dispatcher
    bot: Bot
    session: RecordingSession
    services: Services

    async def feed(self, update: Update) -> None:
        await self.dp.feed_update(self.bot, update)
        query = update.callback_query
        if query is not None:
            answers = [c for c in self.session.of(AnswerCallbackQuery)
                       if c.callback_query_id == query.id]
            assert len(answers) == 1, (
                f"callback {query.data!r} answered {len(answers)} times, not once")


@pytest.fixture(autouse=True)
def no_handler_crashes(caplog: pytest.LogCaptureFixture):
    """Any update that ends in the catch-all error handler fails the test."""
    yield
    crashes = [r for r in caplog.records if r.name == "bot.routers.errors"]
    assert not crashes, f"a handler crashed: {crashes[0].getMessage()}"


@pytest.fixture
async def tg(school: Services) -> Chat:
    """A chat with the example school, whose journal history was imported before (so the
    journal's events of a test are pushed)."""
    await journal_history(school)
    dp = create_dispatcher(school, create_i18n("ru"), SQLiteStorage(school.db, school.clock))
    bot, session = make_bot()
    return Chat(dp, bot, session, school)


@pytest.fixture
async def api():
    """The loopback Bot API fake (``tests/support/botapi.py``)."""
    async with FakeBotAPI(TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(api):
    """A sender's Bot API client of the fake."""
    b = BotApi(TOKEN, api.url)
    yield b
    await b.close()
