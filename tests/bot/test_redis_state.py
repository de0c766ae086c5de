"""Conversation state and per-chat ordering in Redis (`REDIS_URL`), as several web processes
share them: a conversation begun in one process goes on in another."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.fsm.storage.base import StorageKey

from bot.app import create_dispatcher
from bot.config import Settings
from bot.i18n import create_i18n
from bot.web import CONVERSATION_TTL, conversation_storage
from tests.support import updates as up
from tests.support.recording import make_bot
from tests.support.services import redis_url_or_skip


@pytest.fixture
async def redis_state(school):
    settings = Settings(_env_file=None, redis_url=redis_url_or_skip(db=14))
    made = [conversation_storage(settings, school) for _ in range(2)]  # two processes
    yield made
    for storage, isolation in made:
        await storage.close()
        await isolation.close()


async def test_a_conversation_started_in_one_process_goes_on_in_another(school, redis_state):
    (storage_a, isolation_a), (storage_b, isolation_b) = redis_state
    i18n = create_i18n("ru")
    first = create_dispatcher(school, i18n, storage_a, isolation=isolation_a)
    second = create_dispatcher(school, i18n, storage_b, isolation=isolation_b)
    bot, session = make_bot()
    codes = await school.linking.issue_codes(student_external_id="S-1005")
    await first.feed_update(bot, up.message(6005, "🔑 У меня есть код"))
    key = StorageKey(bot_id=bot.id, chat_id=6005, user_id=6005)
    assert await storage_b.get_state(key) == await storage_a.get_state(key) is not None
    assert 0 < await storage_a.redis.ttl(storage_a.key_builder.build(key, "state")) \
        <= CONVERSATION_TTL
    typed = codes[0].code[:4] + "-" + codes[0].code[4:]
    await second.feed_update(bot, up.message(6005, typed))
    assert "Артём Волков" in session.last_text()
    assert await storage_a.get_state(key) is None  # the conversation is over in both


async def test_updates_of_one_chat_wait_for_each_other_across_processes(school, redis_state):
    (_storage_a, isolation_a), (_storage_b, isolation_b) = redis_state
    key = StorageKey(bot_id=1, chat_id=42, user_id=42)
    order: list[str] = []

    async def handle(isolation, name: str, pause: float) -> None:
        async with isolation.lock(key):
            order.append(f"{name} start")
            await asyncio.sleep(pause)
            order.append(f"{name} end")

    await asyncio.gather(handle(isolation_a, "a", 0.3), handle(isolation_b, "b", 0))
    assert order in (["a start", "a end", "b start", "b end"],
                     ["b start", "b end", "a start", "a end"])
