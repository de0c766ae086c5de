"""Resident memory of one `diary web` and one `diary deliver`, with a small and a large database
(2,000 and 200,000 linked accounts), on SQLite and on PostgreSQL (skipped with a plain message
when the server cannot be reached), with Redis as deployed (without it, if it cannot be reached:
the conversation state then lives in the database and the send budget in the process).

Each process is the real one (``python -m bot web`` / ``deliver``) against the Bot API fake. The
web worker serves a few hundred webhook updates from linked parents (``/start`` and ``/grades``,
half each, ten at a time); the sender delivers two waves of 2,000 pushes, one to each of as many
parents. Figures are read from ``/proc/PID/status``: ``VmRSS`` once started and idle, ``VmHWM``
(the peak) and ``VmRSS`` again after the work and a short rest (steady). Target: ≤ 200 MB each,
flat in the number of accounts. For scale, the bare interpreter and ``import aiogram`` alone.

The district is ``bench.bulk``'s with a lighter journal (5–10 grades a student): the variable
here is the number of accounts, not of grades.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.bulk import District, postgres_schema, postgres_server, postgres_unreachable
from core.clock import to_db
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.botapi import FakeBotAPI

TOKEN = "3:RSSBENCH"
SECRET_KEY = "bench-secret-0123456789abcdef"
WEBHOOK_SECRET = "rss-bench-secret_0123"
CLOCK_START = "2027-03-01T10:00:00+03:00"  # a Monday morning of the third quarter
SIZES = (2_000, 200_000)
UPDATES = 400
PUSHES = 2_000  # a wave: one to each of as many parents; two waves
WAVES = 2
TELEGRAM_BASE = 60_000_000_000
REDIS_DB = 11
ROOT = Path(__file__).resolve().parent.parent


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


def import_rss(statement: str) -> float:
    """VmRSS of a fresh interpreter after ``statement``, in MB."""
    code = (f"{statement}\nimport re\n"
            "print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return round(int(out.stdout.strip()) / 1024, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_url() -> str | None:
    """The local Redis (database 11, emptied), or None when it cannot be reached."""
    import redis

    base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
    url = f"{base}/{REDIS_DB}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
        client.flushdb()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return url


class Process:
    """One `diary` process of the benchmark, its output in a log file."""

    def __init__(self, role: str, env: dict[str, str], workdir: Path) -> None:
        self.log_path = workdir / f"{role}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", role], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the process exited:\n{self.log_path.read_text()[-3000:]}")

    def memory(self) -> dict[str, float]:
        return memory(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def environment(api: FakeBotAPI, database: str, redis: str | None, **extra: str
                ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "WEBHOOK_", "WEB_", "BOT_", "TELEGRAM_"))}
    env.update({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api.url, "DATABASE_URL": database,
                "SECRET_KEY": SECRET_KEY, "CLOCK_START": CLOCK_START, "QUIET_HOURS": "",
                "PYTHONUNBUFFERED": "1", **extra})
    if redis:
        env["REDIS_URL"] = redis
    return env


async def _until(condition, what: str, proc: Process, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        proc.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}:\n"
                               f"{proc.log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.05)


async def measure_web(api: FakeBotAPI, database: str, redis: str | None, accounts: list[int],
                      workdir: Path) -> dict[str, float]:
    import aiohttp

    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/updates"
    api.webhook = None
    env = environment(api, database, redis, WEBHOOK_URL=url, WEBHOOK_SECRET=WEBHOOK_SECRET,
                      WEB_HOST="127.0.0.1", WEB_PORT=str(port))
    proc = Process("web", env, workdir)
    try:
        async def up() -> bool:
            if api.webhook is None or not any(m == "setmycommands" for m, _ in api.calls):
                return False
            try:
                async with aiohttp.ClientSession() as session, session.get(
                        f"http://127.0.0.1:{port}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await _until(up, "the web worker", proc, 120)
        await asyncio.sleep(1)
        started = proc.memory()
        chosen = random.Random(5).sample(accounts, UPDATES)
        sent_before = len(api.sent)
        for n in range(0, UPDATES, 10):
            for k, tg in enumerate(chosen[n:n + 10], n):
                api.user_message(tg, "/grades" if k % 2 else "/start")
            expected = sent_before + min(UPDATES, n + 10)

            async def answered(expected: int = expected) -> bool:
                return len(api.sent) >= expected

            await _until(answered, "the answers", proc, 60)
        answers = [s.text or "" for s in api.sent[sent_before:]]
        assert sum(a.startswith("📊") for a in answers) == UPDATES // 2, answers[:4]
        await asyncio.sleep(2)
        after = proc.memory()
    finally:
        proc.stop()
    return {"web_started_mb": started["VmRSS"], "web_peak_mb": after["VmHWM"],
            "web_steady_mb": after["VmRSS"]}


async def queue_pushes(database: str, accounts: list[tuple[int, int]], tag: str) -> None:
    """A new grade for each (account, student), due now in the processes' clock."""
    created = datetime.fromisoformat(CLOCK_START) - timedelta(minutes=1)
    db = await Database(database).connect()
    try:
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO outbox (telegram_id, kind, student_id, payload, dedup_key,"
                " created_at, not_before) VALUES (?, 'grade_new', ?, ?, ?, ?, ?)",
                [(tg, sid, json.dumps({
                    "child": "Иван", "subject": "Алгебра", "value": 5, "weight": 2,
                    "work": "Контрольная работа", "date": CLOCK_START[:10], "comment": None,
                    "teacher": "Петрова М. И.", "avg_before": 4.38, "avg_after": 4.52},
                    ensure_ascii=False), f"rss:{tag}:{tg}:{sid}", to_db(created), to_db(created))
                 for tg, sid in accounts])
    finally:
        await db.close()


async def measure_sender(api: FakeBotAPI, database: str, redis: str | None,
                         accounts: list[tuple[int, int]], workdir: Path) -> dict[str, float]:
    env = environment(api, database, redis, SEND_RATE="1000")
    delivered_before = api.stats["delivered"]
    proc = Process("deliver", env, workdir)
    try:
        async def ready() -> bool:
            return proc.log_path.read_text().count("sender ") > 0

        await _until(ready, "the sender", proc, 120)
        await asyncio.sleep(1)
        started = proc.memory()
        started_at = time.monotonic()
        for wave in range(1, WAVES + 1):
            await queue_pushes(database, accounts, f"{len(accounts)}-{wave}-{time.time()}")

            async def done(wave: int = wave) -> bool:
                return api.stats["delivered"] - delivered_before >= wave * len(accounts)

            await _until(done, "the pushes", proc, 600)
        seconds = time.monotonic() - started_at
        await asyncio.sleep(2)
        after = proc.memory()
    finally:
        proc.stop()
    return {"sender_started_mb": started["VmRSS"], "sender_peak_mb": after["VmHWM"],
            "sender_steady_mb": after["VmRSS"], "sender_seconds": round(seconds, 1)}


async def _backend(database: str, label: str, redis: str | None, workdir: Path,
                   sizes: tuple[int, ...]) -> dict[str, float]:
    results: dict[str, float] = {}
    db = await Database(database).connect()
    try:
        await upgrade(db)
        now = datetime.fromisoformat(CLOCK_START)
        district = District(db, SECRET_KEY.encode(), now.date(), now, marks=(5, 10))
        rnd = random.Random(17)
        linked: list[int] = []
        for size in sizes:
            await district.grow(size)
            new = range(len(linked), size)
            linked += await district.link(new, TELEGRAM_BASE)
            tag = f"{label}_{size // 1000}k"
            results[f"{tag}_accounts"] = len(linked)
            async with FakeBotAPI(TOKEN) as api:
                if redis:
                    redis_url()  # emptied between runs
                for key, value in (await measure_web(api, database, redis, linked,
                                                     workdir)).items():
                    results[f"{tag}_{key}"] = value
                students = rnd.sample(range(size), PUSHES)
                pushes = [(TELEGRAM_BASE + i, i + 1) for i in students]
                for key, value in (await measure_sender(api, database, redis, pushes,
                                                        workdir)).items():
                    results[f"{tag}_{key}"] = value
    finally:
        await db.close()
    return results


async def run(workdir: Path, sizes: tuple[int, ...] = SIZES) -> dict[str, object]:
    report: dict[str, object] = {
        "python_mb": import_rss("pass"),
        "import_aiogram_mb": import_rss("import aiogram"),
        "import_bot_web_mb": import_rss("import bot.web"),
    }
    redis = redis_url()
    report["redis"] = "yes" if redis else "not reachable: state in the database, budget local"
    report.update(await _backend(f"sqlite:///{workdir / 'rss.sqlite3'}", "sqlite", redis,
                                 workdir, sizes))
    server = postgres_server()
    why = await postgres_unreachable(server)
    if why is not None:
        report["postgresql"] = why
        return report
    async with postgres_schema(server) as url:
        report.update(await _backend(url, "postgresql", redis, workdir, sizes))
    return report
