"""Push latency: from the import's commit to the Bot API fake receiving the message, idle bot."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.data import roster_csv
from bot.services import build_services
from core.clock import SystemClock
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.botapi import FakeBotAPI

TZ = ZoneInfo("Europe/Moscow")
TOKEN = "2:LATENCY"
SECRET = "bench-secret-0123456789abcdef"
SAMPLES = 30


async def run(workdir: Path) -> dict[str, float]:
    path = workdir / "latency.sqlite3"
    db = await Database(path).connect()
    await upgrade(db)
    services = build_services(db, SECRET.encode(), TZ, SystemClock())
    await services.roster.apply(parse_roster(roster_csv(SAMPLES), "r.csv"), "r.csv")
    for i in range(SAMPLES):
        await services.linking.support_link(30_000_000 + i, f"+7910{i:07d}")
    # The students' journal history (an import that brings a student's first data pushes
    # nothing): a late mark each, long ago.
    history = [json.dumps({"id": f"hist{i}", "type": "attendance", "attendance_id": f"hist{i}",
                           "student_id": f"S{i:05d}", "date": "2026-09-07", "lesson": 1,
                           "subject": "История", "mark": "late"}, ensure_ascii=False)
               for i in range(SAMPLES)]
    await services.journal.import_journal(parse_journal(history, "h"), "h", notify=False)
    today = datetime.now(TZ).date().isoformat()
    latencies: list[float] = []
    async with FakeBotAPI(TOKEN) as api:
        env = dict(os.environ, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.url,
                   DATABASE_PATH=str(path), SECRET_KEY=SECRET, QUIET_HOURS="")
        log = open(workdir / "latency-bot.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=workdir,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            while not any(m == "setmycommands" for m, _ in api.calls):
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # let it settle: idle
            for i in range(SAMPLES):
                line = json.dumps({"id": f"lat{i}", "type": "grade", "grade_id": f"lat{i}",
                                   "student_id": f"S{i:05d}", "subject": "Физика",
                                   "date": today, "value": 5}, ensure_ascii=False)
                await services.journal.import_journal(parse_journal([line], "l"), "l")
                committed = time.monotonic()
                chat = 30_000_000 + i
                record = await api.wait_for(lambda s, chat=chat: s.chat_id == chat, timeout=10)
                latencies.append(record.at - committed)
                await asyncio.sleep(0.3)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            log.close()
            await db.close()
    latencies.sort()
    return {
        "samples": SAMPLES,
        "p50_ms": round(statistics.median(latencies) * 1000),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000),
        "max_ms": round(latencies[-1] * 1000),
    }
