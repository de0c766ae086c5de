"""A deployment by role, on SQLite and on PostgreSQL, with Redis: two `diary web` behind a (fake)
load balancer, two `diary deliver`, two `diary scheduler`, against the Bot API fake posting
updates to the webhooks. One sender is killed with -9 while it holds a push: the other delivers
it, and nothing arrives twice."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from core.storage.db import Database
from tests.support.botapi import FakeBotAPI
from tests.support.process import CLOCK_START, BotProcess, diary, env_for
from tests.support.school import ANNA_PHONE, EXAMPLE_ROSTER, journal_history_lines
from tests.support.services import redis_url_or_skip

ANNA = 777001
SECRET = "e2e-webhook-secret_0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def grade_line(n: int, value: int) -> str:
    return json.dumps({"id": f"dep-{n}", "type": "grade", "grade_id": f"dg-{n}",
                       "student_id": "S-1001", "subject": "Алгебра", "date": CLOCK_START[:10],
                       "value": value, "weight": 2, "work": "Контрольная работа"},
                      ensure_ascii=False)


class Deployment:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.processes: dict[str, BotProcess] = {}

    def start(self, name: str, *args: str, **extra: str) -> BotProcess:
        proc = BotProcess(self.env | extra, self.cwd, *args, log=f"{name}.log")
        proc.start()
        self.processes[name] = proc
        return proc

    def output(self, name: str) -> str:
        return self.processes[name].output()

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.proc is not None and proc.proc.poll() is None:
                proc.stop()


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


@pytest.fixture
async def school_env(database_url, tmp_path, api: FakeBotAPI):
    """The school's environment on each backend (SQLite file, PostgreSQL schema)."""
    env = env_for(tmp_path, api.url) | {"DATABASE_URL": database_url}
    result = diary(env, tmp_path, "roster", "import", str(EXAMPLE_ROSTER))
    assert result.returncode == 0, result.stderr
    # The school's journal history, so the journal's events of a test are pushed.
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(journal_history_lines()) + "\n", encoding="utf-8")
    result = diary(env, tmp_path, "journal", "import", str(history), "--no-notify")
    assert result.returncode == 0, result.stderr
    return env


async def pending_owner(env: dict[str, str]) -> str:
    async with Database(env["DATABASE_URL"]) as db:
        return await db.scalar("SELECT claimed_by FROM outbox WHERE sent_at IS NULL"
                               " AND claimed_by IS NOT NULL")


@pytest.fixture
async def deployment(school_env, tmp_path, api: FakeBotAPI):
    redis_url = redis_url_or_skip(db=15)
    ports = [free_port(), free_port()]
    env = school_env | {"WEBHOOK_URL": "http://127.0.0.1:9/tg/updates",
                        "WEBHOOK_SECRET": SECRET, "WEB_HOST": "127.0.0.1",
                        "REDIS_URL": redis_url, "SEND_RATE": "100",
                        "CLAIM_LEASE_SECONDS": "5"}
    dep = Deployment(env, tmp_path)
    for n, port in enumerate(ports, 1):
        dep.start(f"web{n}", "web", WEB_PORT=str(port))
    dep.start("sender1", "deliver")
    dep.start("sender2", "deliver")
    dep.start("scheduler1", "scheduler")
    dep.start("scheduler2", "scheduler")
    try:
        # Six processes import aiogram at once on two cores: allow for a busy machine.
        for _ in range(1200):
            if api.webhook is not None and all([await healthy(p) for p in ports]):
                break
            for name, proc in dep.processes.items():
                if proc.proc.poll() is not None:
                    pytest.fail(f"{name} exited:\n" + dep.output(name))
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the web processes did not come up")
        # The load balancer: updates go round-robin to both web processes.
        api.webhook_targets = [f"http://127.0.0.1:{p}/tg/updates" for p in ports]
        dep.ports = ports
        yield dep
    finally:
        dep.stop()


async def test_web_workers_behind_a_balancer_and_senders_that_die(deployment, api, tmp_path,
                                                                   school_env):
    assert api.webhook["url"] == "http://127.0.0.1:9/tg/updates"
    assert api.webhook["secret_token"] == SECRET
    # A request without the secret token is refused.
    update = {"message": {"message_id": 1, "date": 0, "chat": {"id": ANNA, "type": "private"},
                          "from": {"id": ANNA, "is_bot": False, "first_name": "Анна"},
                          "text": "/help"}}
    assert await api.post_with_secret(update, "wrong") == 401
    # Linking: /start and the contact go to different web processes.
    api.user_message(ANNA, "/start")
    await api.wait_for(lambda s: s.chat_id == ANNA and "Поделиться" in json.dumps(
        s.reply_markup or {}, ensure_ascii=False))
    api.user_contact(ANNA, ANNA_PHONE.replace("+", ""), ANNA)
    await api.wait_for(lambda s: s.chat_id == ANNA and "Аккаунт привязан." in (s.text or ""))
    assert set(api.webhook_answers) == {200, 401}

    # A grade goes out once, through one of the senders.
    journal = tmp_path / "one.jsonl"
    journal.write_text(grade_line(1, 5) + "\n", encoding="utf-8")
    assert diary(school_env, tmp_path, "journal", "import", str(journal)).returncode == 0
    await api.wait_for(lambda s: s.chat_id == ANNA and "Новая оценка 5" in (s.text or ""))

    # The sender holding the next push dies mid-send: its lease runs out (5 s here) and the
    # other one takes the push.
    api.hold_sends()
    journal.write_text(grade_line(2, 4) + "\n", encoding="utf-8")
    assert diary(school_env, tmp_path, "journal", "import", str(journal)).returncode == 0
    for _ in range(100):
        if api.held:
            break
        await asyncio.sleep(0.05)
    assert api.held == 1
    owner = await pending_owner(school_env)
    pid = int(owner.split(":")[-2])  # host:pid:token
    holder = next(n for n, p in deployment.processes.items() if p.proc.pid == pid)
    assert holder.startswith("sender")
    deployment.processes[holder].kill()
    api.release_sends(discard=True)
    push = await api.wait_for(lambda s: s.chat_id == ANNA and "Новая оценка 4" in (s.text or ""),
                              timeout=30)
    assert "Контрольная работа" in push.text
    await asyncio.sleep(1)
    assert api.duplicates() == []
    survivor = "sender2" if holder == "sender1" else "sender1"
    assert f"took over 1 push claimed by {owner}, whose lease ran out" in deployment.output(
        survivor)

    # One scheduler acts, the other waits.
    logs = [deployment.output("scheduler1"), deployment.output("scheduler2")]
    assert sum("scheduler acting" in log for log in logs) == 1
    assert sum("waiting to take over" in log for log in logs) == 1

    # The operator's view: health and metrics.
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{deployment.ports[0]}/metrics") as response:
            text = await response.text()
    assert response.status == 200
    assert "diary_outbox_pending 0" in text and "diary_delivery_stalled 0" in text
    assert 'diary_worker_last_progress_age_seconds{role="delivery"' in text
