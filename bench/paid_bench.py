"""Delivery at Telegram's paid limit: N `diary deliver` processes sharing one send budget in
Redis, against the Bot API fake enforcing 1,000 messages a second globally and one a second per
chat. Sustained rate, 429 share, lost and twice, and the CPU time per delivered message (the
two cores of this machine bind first: the figure to project the rate on more cores)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.pg import Unavailable, pg_schema
from core.clock import to_db
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.botapi import FakeBotAPI

TOKEN = "1:PAIDBENCH"
LIMIT = 1000.0
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


async def _seed(url: str, pushes: int) -> None:
    db = await Database(url).connect()
    await upgrade(db)
    now = to_db(datetime.now(UTC))
    payload = json.dumps({"child": "Иван", "subject": "Алгебра", "value": 5, "weight": 2,
                          "work": "Контрольная работа", "date": "2026-11-23",
                          "avg_before": 4.38, "avg_after": 4.52}, ensure_ascii=False)
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO accounts (telegram_id, chat_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?)", [(30_000_000 + i, 30_000_000 + i, now, now)
                                     for i in range(pushes)])
        await tx.executemany(
            "INSERT INTO outbox (telegram_id, kind, payload, dedup_key, created_at, not_before)"
            " VALUES (?, 'grade_new', ?, ?, ?, ?)",
            [(30_000_000 + i, payload, f"paid:{i}", now, now) for i in range(pushes)])
    await db.close()


async def run(workdir: Path, pushes: int = 20_000, senders: int = 4) -> dict[str, float]:
    """On SQLite (the embedded store)."""
    return await _run(workdir, f"sqlite:///{workdir / 'paid.sqlite3'}", pushes, senders)


async def run_postgresql(workdir: Path, pushes: int = 20_000,
                         senders: int = 4) -> dict[str, object]:
    """On PostgreSQL: senders claim side by side (SKIP LOCKED), woken by NOTIFY."""
    try:
        async with pg_schema() as url:
            return await _run(workdir, url, pushes, senders)
    except Unavailable as exc:
        return {"skipped": str(exc)}


async def _run(workdir: Path, db_url: str, pushes: int, senders: int) -> dict[str, float]:
    from tests.support.services import redis_url_or_skip

    redis_url = redis_url_or_skip(db=12)
    await _seed(db_url, pushes)
    async with FakeBotAPI(TOKEN, global_rate=LIMIT, per_chat_rate=1, per_chat_burst=1) as api:
        env = {**os.environ, "DATABASE_URL": db_url, "BOT_TOKEN": TOKEN,
               "TELEGRAM_API_URL": api.url, "SECRET_KEY": "bench-secret-0123456789",
               "REDIS_URL": redis_url, "SEND_RATE": str(LIMIT), "PAID_BROADCAST": "true",
               "FREE_SEND_RATE": "25", "PAID_DAILY_LIMIT": "10000000", "QUIET_HOURS": ""}
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "deliver", env=env, cwd=workdir,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            for _ in range(senders)]
        started = time.monotonic()
        # The steady state: from 5 % delivered (every sender has started: aiogram's start-up
        # costs about 1.5 s of CPU per process) to the last push.
        mark = max(1, pushes // 20)
        t0 = cpu0 = d0 = None
        last = None
        while time.monotonic() - started < 600:
            delivered = api.stats["delivered"]
            if t0 is None and delivered >= mark:
                t0, d0 = time.monotonic(), delivered
                cpu0 = sum(_cpu_seconds(p.pid) for p in procs)
                own0 = resource.getrusage(resource.RUSAGE_SELF)
            if delivered >= pushes:
                last = time.monotonic()
                break
            await asyncio.sleep(0.02)
        cpu1 = sum(_cpu_seconds(p.pid) for p in procs)
        own1 = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(2)  # anything sent twice would arrive now
        for p in procs:
            p.terminate()
        await asyncio.gather(*(p.wait() for p in procs))
        delivered = api.stats["delivered"]
        duplicates = len(api.duplicates())
        requests = api.stats["requests"]
        rejected = api.stats["rejected_429"]
        paid = sum(1 for s in api.sent if s.params.get("allow_paid_broadcast") in (True, "true"))
    db = await Database(db_url).connect()
    pending = await db.scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
    await db.close()
    end = last or time.monotonic()
    steady = delivered - (d0 or 0)
    elapsed = end - (t0 or started)
    rate = steady / elapsed if elapsed else 0.0
    cpu = cpu1 - (cpu0 or 0.0)
    fake_cpu = ((own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
                if t0 is not None else 0.0)
    return {
        "pushes": pushes,
        "senders": senders,
        "delivered": delivered,
        "steady_seconds": round(elapsed, 2),
        "messages_per_second": round(rate, 1),
        "share_of_1000": round(rate / LIMIT, 3),
        "share_429": round(rejected / requests, 4) if requests else 0.0,
        "paid_messages": paid,
        "lost": int(pending),
        "twice": duplicates,
        "sender_cpu_ms_per_message": round(1000 * cpu / max(1, steady), 3),
        "fake_api_cpu_ms_per_message": round(1000 * fake_cpu / max(1, steady), 3),
        "projected_messages_per_second_per_sender_core": round(steady / cpu, 1) if cpu else 0.0,
    }
