"""Fixtures of the end-to-end tests: the Bot API fake, a school's environment, a running bot."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.botapi import FakeBotAPI
from tests.support.process import TOKEN, BotProcess, diary, env_for
from tests.support.school import EXAMPLE_ROSTER, journal_history_lines


@pytest.fixture
async def api():
    async with FakeBotAPI(TOKEN) as fake:
        yield fake


@pytest.fixture
def school_env(tmp_path, api):
    env = env_for(tmp_path, api.url)
    result = diary(env, tmp_path, "roster", "import", str(EXAMPLE_ROSTER))
    assert result.returncode == 0, result.stderr
    # The school's journal history, so the journal's events of a test are pushed.
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(journal_history_lines()) + "\n", encoding="utf-8")
    result = diary(env, tmp_path, "journal", "import", str(history), "--no-notify")
    assert result.returncode == 0, result.stderr
    return env


@pytest.fixture
async def running(school_env, tmp_path, api):
    bot = BotProcess(school_env, tmp_path)
    bot.start()
    # The bot is up when it has set its command menu (importing aiogram takes seconds on a busy
    # machine).
    for _ in range(1200):
        if any(method == "setmycommands" for method, _ in api.calls):
            break
        if bot.proc.poll() is not None:
            pytest.fail("the bot exited:\n" + bot.output())
        await asyncio.sleep(0.05)
    yield bot
    bot.stop()
