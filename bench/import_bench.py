"""Journal import throughput: 100,000 grade events for 2,000 students."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.data import journal_lines, roster_csv
from bot.services import build_services
from core.clock import FrozenClock
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from core.storage.db import Database, upgrade

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def run(workdir: Path, students: int = 2000, events: int = 100_000) -> dict[str, float]:
    db = await Database(workdir / "import.sqlite3").connect()
    await upgrade(db)
    services = build_services(db, b"bench-secret-0123456789abcdef", TZ, FrozenClock(NOW))
    roster = parse_roster(roster_csv(students), "roster.csv")
    started = time.perf_counter()
    await services.roster.apply(roster, "roster.csv")
    roster_s = time.perf_counter() - started

    # History: grades of September–November, stored without pushes (older than 3 days).
    lines = journal_lines(students, events, date(2026, 9, 1), 80)
    started = time.perf_counter()
    parsed = parse_journal(lines, "journal.jsonl")
    parse_s = time.perf_counter() - started
    summary, _ = await services.journal.import_journal(parsed, "journal.jsonl")
    total_s = time.perf_counter() - started
    assert summary.applied_total == events, summary

    # Live day: every guardian linked, 10,000 fresh grades, each queues a push.
    for i in range(students):
        await services.linking.support_link(10_000_000 + i, f"+7910{i:07d}")
    live = journal_lines(students, 10_000, date(2026, 11, 30), 2, seed=3, prefix="live")
    started = time.perf_counter()
    live_summary, _ = await services.journal.import_journal(
        parse_journal(live, "live.jsonl"), "live.jsonl")
    live_s = time.perf_counter() - started
    assert live_summary.pushes == 10_000, live_summary

    # A re-import of everything changes nothing.
    started = time.perf_counter()
    again, _ = await services.journal.import_journal(parse_journal(lines, "j"), "j")
    again_s = time.perf_counter() - started
    assert again.applied_total == 0 and again.pushes == 0
    await db.close()
    return {
        "roster_students": students,
        "roster_seconds": round(roster_s, 2),
        "events": events,
        "parse_seconds": round(parse_s, 2),
        "import_seconds": round(total_s, 2),
        "events_per_second": round(events / total_s),
        "live_events": 10_000,
        "live_seconds": round(live_s, 2),
        "live_events_per_second": round(10_000 / live_s),
        "reimport_seconds": round(again_s, 2),
    }
