"""The real `diary run` process against the loopback Bot API fake."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime

from core.clock import to_db
from tests.support.botapi import FakeBotAPI
from tests.support.process import CLOCK_START, BotProcess, diary, env_for, school_now
from tests.support.school import ANNA_PHONE

ANNA = 777001


def today() -> str:
    return CLOCK_START[:10]


def grade_line(n: int, value: int = 5) -> str:
    return json.dumps({"id": f"live-{n}", "type": "grade", "grade_id": f"lg-{n}",
                       "student_id": "S-1001", "subject": "Алгебра", "date": today(),
                       "value": value, "weight": 2, "work": "Контрольная работа"},
                      ensure_ascii=False)


async def link_anna(api: FakeBotAPI) -> None:
    api.user_message(ANNA, "/start")
    await api.wait_for(lambda s: s.chat_id == ANNA and "Поделиться" in json.dumps(
        s.reply_markup or {}, ensure_ascii=False))
    api.user_contact(ANNA, ANNA_PHONE.replace("+", ""), ANNA)
    await api.wait_for(lambda s: s.chat_id == ANNA and "Аккаунт привязан." in (s.text or ""))


async def test_run_without_token_explains_where_to_get_one(tmp_path):
    result = diary(env_for(tmp_path, None), tmp_path, "run")
    assert result.returncode == 2
    assert "@BotFather" in result.stderr and ".env" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_parent_links_by_contact_and_sees_the_children(running, api):
    await link_anna(api)
    linked = next(s for s in api.sent if "Готово" in (s.text or ""))
    assert "Иван Петров, 7Б класс" in linked.text and "Мария Петрова, 5А класс" in linked.text
    assert {m for m, _ in api.calls} >= {"getme", "setmycommands", "getupdates"}
    assert api.unknown_methods == []


async def test_a_grade_imported_while_running_arrives_once_and_reimport_sends_nothing(
    running, api, school_env, tmp_path
):
    await link_anna(api)
    before = len(api.messages_to(ANNA))
    journal = tmp_path / "live.jsonl"
    journal.write_text(grade_line(1) + "\n", encoding="utf-8")
    started = asyncio.get_running_loop().time()
    result = diary(school_env, tmp_path, "journal", "import", str(journal))
    assert result.returncode == 0, result.stderr
    assert "1 push queued" in result.stdout
    push = await api.wait_for(lambda s: s.chat_id == ANNA and "Новая оценка 5" in (s.text or ""))
    assert asyncio.get_running_loop().time() - started < 10
    assert "Средний балл: 5,00 (первая оценка)" in push.text
    again = diary(school_env, tmp_path, "journal", "import", str(journal))
    assert again.returncode == 0 and "0 pushes queued" in again.stdout
    await asyncio.sleep(1.5)
    assert len(api.messages_to(ANNA)) == before + 1
    assert api.duplicates() == []


async def test_a_killed_bot_delivers_everything_after_restart(running, api, school_env, tmp_path):
    await link_anna(api)
    api.hold_sends()  # Telegram hangs: the bot claims the push and waits for an answer
    journal = tmp_path / "crash.jsonl"
    journal.write_text(grade_line(2, 4) + "\n", encoding="utf-8")
    assert diary(school_env, tmp_path, "journal", "import", str(journal)).returncode == 0
    for _ in range(100):
        if api.held:
            break
        await asyncio.sleep(0.05)
    assert api.held == 1
    running.kill()  # kill -9 with the push in flight
    api.release_sends(discard=True)
    status = diary(school_env, tmp_path, "status")
    assert "queue depth:         1" in status.stdout
    # The restarted bot goes on with school time where the first one was (not back to
    # CLOCK_START), and finds the push claimed by the dead process: it takes it when that
    # claim's lease runs out (5 s here; CLAIM_LEASE_SECONDS, 60 s by default).
    running.env = running.env | {
        "CLOCK_START": school_now(running).isoformat(timespec="seconds")}
    running.start()
    push = await api.wait_for(lambda s: s.chat_id == ANNA and "Новая оценка 4" in (s.text or ""),
                              timeout=30)
    assert "Контрольная работа" in push.text
    assert api.duplicates() == []
    status = diary(school_env, tmp_path, "status")
    assert "queue depth:         0" in status.stdout


async def test_demo_mode_lets_a_stranger_try_as_a_parent(tmp_path, api):
    bot = BotProcess(env_for(tmp_path, api.url), tmp_path, "demo", "--database",
                     str(tmp_path / "demo.sqlite3"))
    bot.start()
    try:
        for _ in range(400):
            if any(method == "setmycommands" for method, _ in api.calls):
                break
            assert bot.proc.poll() is None, "the demo bot exited:\n" + bot.output()
            await asyncio.sleep(0.05)
        api.user_message(ANNA, "/start")
        offer = await api.wait_for(lambda s: s.chat_id == ANNA and "демо-школа" in (s.text or ""))
        data = offer.reply_markup["inline_keyboard"][0][0]["callback_data"]
        api.user_callback(ANNA, data, offer.message_id)
        await api.wait_for(lambda s: s.method == "editmessagetext"
                           and "Готово! В демо вы следите за:" in (s.text or ""), timeout=20)
        api.user_message(ANNA, "/dots")
        await api.wait_for(lambda s: s.chat_id == ANNA and "📌 Точки" in (s.text or ""))
    finally:
        bot.stop()


async def test_start_up_answers_at_once_while_the_catch_up_digest_runs(school_env, tmp_path,
                                                                        api):
    """5,000 digests are due when the bot starts: it polls and answers from the start, also
    while the catch-up run decides them a chunk at a time, and the run queues them all."""
    crowd = range(900_000, 905_000)
    due = to_db(datetime.fromisoformat(CLOCK_START).replace(hour=9))  # an hour ago
    with sqlite3.connect(tmp_path / "diary.sqlite3") as conn:
        guardian = conn.execute("SELECT id FROM guardians ORDER BY id LIMIT 1").fetchone()[0]
        conn.executemany("INSERT INTO accounts (telegram_id, chat_id, created_at, updated_at,"
                         " digest_due_at) VALUES (?, ?, ?, ?, ?)",
                         [(tg, tg, due, due, due) for tg in crowd])
        conn.executemany("INSERT INTO account_links (telegram_id, guardian_id, via, linked_at)"
                         " VALUES (?, ?, 'support', ?)", [(tg, guardian, due) for tg in crowd])
        conn.executemany("INSERT INTO account_settings (telegram_id, digest_time, digest_empty)"
                         " VALUES (?, '09:00', 1)", [(tg,) for tg in crowd])
    bot = BotProcess(school_env, tmp_path)
    bot.start()
    loop = asyncio.get_running_loop()

    async def answered_in(user: int) -> float:
        asked = loop.time()
        api.user_message(user, "/start")
        await api.wait_for(lambda s: s.chat_id == user and "Поделиться" in json.dumps(
            s.reply_markup or {}, ensure_ascii=False), timeout=10)
        return loop.time() - asked

    try:
        for _ in range(400):
            if any(method == "getupdates" for method, _ in api.calls):
                break
            assert bot.proc.poll() is None, bot.output()
            await asyncio.sleep(0.05)
        assert await answered_in(ANNA) < 3  # polling is not behind the start-up jobs
        decided = 0
        with sqlite3.connect(tmp_path / "diary.sqlite3") as conn:
            for _ in range(600):  # the catch-up run starts a few seconds after start-up
                decided = conn.execute("SELECT COUNT(*) FROM digest_log").fetchone()[0]
                if decided:
                    break
                await asyncio.sleep(0.05)
        assert decided
        assert await answered_in(ANNA + 1) < 3  # nor behind a run under way
        for _ in range(600):
            if "job digest done" in bot.output():
                break
            await asyncio.sleep(0.1)
        assert "job digest done: {'sent': 5000, " in bot.output()
    finally:
        bot.stop()
