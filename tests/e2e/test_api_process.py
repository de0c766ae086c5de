"""The real `diary run` with API_PORT: a grade a journal system posts reaches the parent."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import aiohttp
import pytest

from tests.support.botapi import FakeBotAPI
from tests.support.process import CLOCK_START, BotProcess, diary
from tests.support.school import ANNA_PHONE

ANNA = 777001
SCHOOL = "ГБОУ Школа № 1234"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def grade(n: str, day: str, value: int) -> dict:
    return {"id": f"api-{n}", "type": "grade", "grade_id": f"ag-{n}", "student_id": "S-1001",
            "subject": "Алгебра", "date": day, "value": value, "weight": 2,
            "work": "Контрольная работа"}


async def test_a_grade_posted_to_the_api_reaches_the_parent_at_once(school_env, tmp_path, api):
    port = free_port()
    env = school_env | {"API_PORT": str(port)}
    # The child's history is there before: the posted grade is news, not the first data.
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps(grade("old", "2026-11-10", 4), ensure_ascii=False) + "\n",
                       encoding="utf-8")
    result = diary(env, tmp_path, "journal", "import", str(history), "--no-notify")
    assert result.returncode == 0, result.stderr
    issued = diary(env, tmp_path, "tokens", "issue", "--school", SCHOOL)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()

    bot = BotProcess(env, tmp_path)
    bot.start()
    try:
        await _until_up(bot, api, port)
        await _link_anna(api)
        url = f"http://127.0.0.1:{port}/v1/events"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        body = json.dumps(grade("new", CLOCK_START[:10], 5), ensure_ascii=False) + "\n"
        async with aiohttp.ClientSession() as session:
            posted = time.monotonic()
            async with session.post(url, data=body.encode(), headers=headers) as response:
                assert response.status == 200, await response.text()
                answer = await response.json()
            assert answer["results"][0]["status"] == "accepted"
            assert answer["pushes"] == 1
            push = await api.wait_for(
                lambda s: s.chat_id == ANNA and "Новая оценка 5" in (s.text or ""), timeout=30)
            # Woken in-process, not found by the next poll: well within a second on an idle
            # machine; the bound here only leaves room for a busy one.
            assert push.at - posted < 5
            assert "Контрольная работа" in push.text
            async with session.post(url, data=body.encode(), headers=headers) as response:
                again = await response.json()
            assert again["results"][0]["status"] == "already_there" and again["pushes"] == 0
            async with session.post(url, data=body.encode(),
                                    headers={"Content-Type": "application/x-ndjson"}) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        await asyncio.sleep(1.0)
        assert len([s for s in api.messages_to(ANNA) if "Новая оценка" in (s.text or "")]) == 1
        assert token not in bot.output()
        await _sync_snapshots(api, port, token)
    finally:
        bot.stop()


def snapshot(sid: str, taken: str, marks: list[dict]) -> str:
    return json.dumps({"snapshot_id": sid, "student_id": "S-1001", "from": "2026-11-01",
                       "to": "2026-11-30", "taken_at": taken, "marks": marks},
                      ensure_ascii=False) + "\n"


async def _sync_snapshots(api: FakeBotAPI, port: int, token: str) -> None:
    """Snapshots posted to the running bot: the first one is stored silently, a mark new in the
    next one reaches the parent."""
    url = f"http://127.0.0.1:{port}/v1/snapshots"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    stored = [{k: v for k, v in grade(n, day, value).items() if k not in ("id", "type")}
              for n, day, value in (("old", "2026-11-10", 4), ("new", CLOCK_START[:10], 5))]
    fresh = {**stored[1], "grade_id": "ag-snap", "value": "5/4", "work": "Диктант"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, headers=headers,
                                data=snapshot("s1", CLOCK_START, stored).encode()) as response:
            assert response.status == 200, await response.text()
            first = await response.json()
        assert (first["snapshots"][0]["first"], first["pushes"]) == (1, 0)
        later = CLOCK_START.replace("T10:", "T11:")
        async with session.post(url, headers=headers,
                                data=snapshot("s2", later, [*stored, fresh]).encode()) as response:
            assert response.status == 200, await response.text()
            second = await response.json()
        assert (second["totals"]["new"], second["totals"]["unchanged"], second["pushes"]) == (
            1, 2, 1)
    push = await api.wait_for(
        lambda s: s.chat_id == ANNA and "Новая оценка 5/4" in (s.text or ""), timeout=30)
    assert "Диктант" in push.text


async def _until_up(bot: BotProcess, api: FakeBotAPI, port: int) -> None:
    """The bot polls and the API answers (importing aiogram takes seconds on a busy machine)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            if bot.proc.poll() is not None:
                pytest.fail("the bot exited:\n" + bot.output())
            if any(method == "setmycommands" for method, _ in api.calls):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/v1/openapi.json") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
            await asyncio.sleep(0.05)
    pytest.fail("the API did not come up:\n" + bot.output())


async def _link_anna(api: FakeBotAPI) -> None:
    api.user_message(ANNA, "/start")
    await api.wait_for(lambda s: s.chat_id == ANNA and "Поделиться" in json.dumps(
        s.reply_markup or {}, ensure_ascii=False))
    api.user_contact(ANNA, ANNA_PHONE.replace("+", ""), ANNA)
    await api.wait_for(lambda s: s.chat_id == ANNA and "Аккаунт привязан." in (s.text or ""))
