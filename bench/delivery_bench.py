"""Delivery against a loopback Bot API fake that enforces Telegram's limits with 429s."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.data import roster_csv
from bot.delivery import DeliveryWorker
from bot.i18n import create_i18n
from bot.services import build_services
from bot.telegram import BotApi
from core.clock import SystemClock, to_db
from core.importers.roster import parse_roster
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.botapi import FakeBotAPI

TZ = ZoneInfo("Europe/Moscow")
TOKEN = "1:BENCH"
RATE = 25.0


async def _setup(workdir: Path, name: str, students: int):
    db = await Database(workdir / f"{name}.sqlite3").connect()
    await upgrade(db)
    services = build_services(db, b"bench-secret-0123456789abcdef", TZ, SystemClock())
    services.outbox.quiet_default = None
    await services.roster.apply(parse_roster(roster_csv(students), "r.csv"), "r.csv")
    for i in range(students):
        await services.linking.support_link(20_000_000 + i, f"+7910{i:07d}")
    return db, services


async def _queue(services, chats: range, tag: str) -> None:
    now = datetime.now(UTC)
    async with services.db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO outbox (telegram_id, kind, payload, dedup_key, created_at, not_before)"
            " VALUES (?, 'grade_new', ?, ?, ?, ?)",
            [(tg, json.dumps({"child": "Иван", "subject": "Алгебра", "value": 5, "weight": 2,
                              "work": "Контрольная работа", "date": "2026-11-23",
                              "avg_before": 4.38, "avg_after": 4.52,
                              "comment": f"{tag}-{tg}"}, ensure_ascii=False),
              f"{tag}:{tg}", to_db(now), to_db(now)) for tg in chats],
        )


async def run(workdir: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    async with FakeBotAPI(TOKEN, global_rate=30, per_chat_rate=1, per_chat_burst=1) as api:
        bot = BotApi(TOKEN, api.url)
        try:
            # A: 2,000 pushes to 2,000 chats: the global limit is what matters.
            db, services = await _setup(workdir, "delivery_a", 2000)
            await _queue(services, range(20_000_000, 20_002_000), "a")
            worker = DeliveryWorker(bot, services.outbox, create_i18n("ru"), rate=RATE)
            started = time.perf_counter()
            await worker.run_until_empty()
            elapsed = time.perf_counter() - started
            pending = await services.outbox.pending()
            delivered = api.stats["delivered"]
            results.update({
                "a_pushes": 2000, "a_seconds": round(elapsed, 1),
                "a_messages_per_second": round(delivered / elapsed, 2),
                "a_share_of_configured_rate": round(delivered / elapsed / RATE, 3),
                "a_requests": api.stats["requests"], "a_429": api.stats["rejected_429"],
                "a_429_share": round(api.stats["rejected_429"] / max(1, api.stats["requests"]), 4),
                "a_lost": pending, "a_duplicates": len(api.duplicates()),
            })
            await db.close()

            # B: 100 chats, a new push for each every 0.25 s for 5 s (2,000 pushes): the
            # per-chat limit holds and what piles up goes out together.
            api.sent.clear()
            api.stats.clear()
            api.global_bucket.tokens = api.global_bucket.capacity
            db, services = await _setup(workdir, "delivery_b", 100)
            worker = DeliveryWorker(bot, services.outbox, create_i18n("ru"), rate=RATE)
            task = asyncio.create_task(worker.run())
            started = time.perf_counter()
            for wave in range(20):
                await _queue(services, range(20_000_000, 20_000_100), f"b{wave}")
                await asyncio.sleep(0.25)
            while await services.outbox.pending():
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            pushes_seen = sum((s.text or "").count("🔔") for s in api.sent)
            results.update({
                "b_pushes": 2000, "b_seconds": round(elapsed, 1),
                "b_messages": api.stats["delivered"], "b_pushes_delivered": pushes_seen,
                "b_429": api.stats["rejected_429"],
                "b_429_share": round(api.stats["rejected_429"] / max(1, api.stats["requests"]), 4),
                "b_duplicates": len(api.duplicates()),
            })
            await db.close()

            # C: a sender configured above Telegram's limit (40 msg/s against 30): the fake
            # answers 429 and the sender backs off; nothing is lost or sent twice.
            api.sent.clear()
            api.stats.clear()
            api.global_bucket.tokens = api.global_bucket.capacity
            db, services = await _setup(workdir, "delivery_c", 600)
            await _queue(services, range(20_000_000, 20_000_600), "c")
            worker = DeliveryWorker(bot, services.outbox, create_i18n("ru"), rate=40)
            started = time.perf_counter()
            while await services.outbox.pending():
                await worker.run_until_empty()
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - started
            results.update({
                "c_pushes": 600, "c_seconds": round(elapsed, 1),
                "c_messages_per_second": round(api.stats["delivered"] / elapsed, 2),
                "c_429": api.stats["rejected_429"],
                "c_lost": await services.outbox.pending(),
                "c_delivered": api.stats["delivered"], "c_duplicates": len(api.duplicates()),
            })
            await db.close()
        finally:
            await bot.close()
    return results
