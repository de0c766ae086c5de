"""A school-wide announcement to 2,000 families, delivered by the real sender against a
loopback Bot API fake that enforces Telegram's limits with 429s."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.data import roster_csv
from bot.delivery import DeliveryWorker
from bot.i18n import create_i18n
from bot.services import build_services
from bot.telegram import BotApi
from core.clock import SystemClock
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.botapi import FakeBotAPI

TZ = ZoneInfo("Europe/Moscow")
TOKEN = "1:BENCH"
RATE = 25.0  # SEND_RATE, as the delivery benchmark: below Telegram's 30 msg/s
FAMILIES = 2000
TELEGRAM_BASE = 30_000_000
TEXT = ("Уважаемые родители! 1 декабря с 9:00 до 12:00 в школе проходит день открытых дверей. "
        "Приглашаем вас познакомиться с учителями и посетить уроки.")


def announcement_lines() -> list[str]:
    """One announcement to the parents of the whole school (no ``classes``)."""
    return [json.dumps({"id": "ann-open-day", "type": "announcement",
                        "announcement_id": "open-day-2026", "text": TEXT,
                        "audience": "parents"}, ensure_ascii=False)]


async def run(workdir: Path, families: int = FAMILIES) -> dict[str, float]:
    async with Database(workdir / "announce.sqlite3") as db:
        await upgrade(db)
        services = build_services(db, b"bench-secret-0123456789abcdef", TZ, SystemClock())
        services.outbox.quiet_default = None
        started = time.perf_counter()
        await services.roster.apply(parse_roster(roster_csv(families), "roster.csv"),
                                    "roster.csv")
        for i in range(families):
            await services.linking.support_link(TELEGRAM_BASE + i, f"+7910{i:07d}")
        setup_s = time.perf_counter() - started
        guardians = set(range(TELEGRAM_BASE, TELEGRAM_BASE + families))

        started = time.perf_counter()
        summary, _ = await services.journal.import_journal(
            parse_journal(announcement_lines(), "announcement.jsonl"), "announcement.jsonl")
        import_s = time.perf_counter() - started
        queued = int(await db.scalar(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'announcement'") or 0)
        assert summary.applied_total == 1, summary

        figures: dict[str, float] = {
            "families": families, "setup_seconds": round(setup_s, 1),
            "import_seconds": round(import_s, 2), "pushes_queued": queued,
            "import_pushes": summary.pushes,
        }
        async with FakeBotAPI(TOKEN, global_rate=30, per_chat_rate=1, per_chat_burst=1) as api:
            bot = BotApi(TOKEN, api.url)
            try:
                worker = DeliveryWorker(bot, services.outbox, create_i18n("ru"), rate=RATE)
                started = time.perf_counter()
                await worker.run_until_empty()
                elapsed = time.perf_counter() - started
            finally:
                await bot.close()
            messages = [s for s in api.sent if s.method == "sendmessage"]
            per_chat = Counter(s.chat_id for s in messages)
            with_text = sum(1 for s in messages if TEXT in (s.text or ""))
            figures.update({
                "seconds": round(elapsed, 1),
                "messages_received": len(messages),
                "messages_with_text": with_text,
                "distinct_chats": len(per_chat),
                "strangers": len(set(per_chat) - guardians),
                # A chat that got the announcement more than once, or the same text twice.
                "duplicates": max(sum(n - 1 for n in per_chat.values()),
                                  len(api.duplicates())),
                "lost": len(guardians - set(per_chat)),
                "outbox_pending": await services.outbox.pending(),
                "requests": api.stats["requests"],
                "answers_429": api.stats["rejected_429"],
                "messages_per_second": round(len(messages) / elapsed, 2),
                "share_of_configured_rate": round(len(messages) / elapsed / RATE, 3),
            })

        # The same file again: every event already imported, nothing more queued.
        again, _ = await services.journal.import_journal(
            parse_journal(announcement_lines(), "announcement.jsonl"), "announcement.jsonl")
        figures.update({
            "reimport_already_imported": again.already_imported,
            "reimport_pushes": again.pushes,
            "reimport_pushes_queued": int(await db.scalar(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'announcement'") or 0) - queued,
        })
    assert figures["pushes_queued"] == families, figures
    assert figures["duplicates"] == 0 and figures["lost"] == 0, figures
    assert figures["reimport_pushes_queued"] == 0, figures
    return figures
