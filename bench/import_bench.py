"""Journal import throughput: 100,000 grade events for 2,000 students; then 10,000 fresh grades
with a push each, and the same file with --no-notify into the same database as it was before."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.data import journal_lines, roster_csv
from bot.services import Services, build_services
from core.clock import FrozenClock
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from core.services.journal import JournalSummary
from core.storage.db import Database, upgrade

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET = b"bench-secret-0123456789abcdef"
LIVE = 10_000


def services_of(db: Database) -> Services:
    return build_services(db, SECRET, TZ, FrozenClock(NOW))


def history_lines(students: int, events: int) -> list[str]:
    """Grades of September–November: stored without pushes (older than three days)."""
    return journal_lines(students, events, date(2026, 9, 1), 80)


def live_lines(students: int, events: int = LIVE, prefix: str = "live",
               first_student: int = 0) -> list[str]:
    """Fresh grades of yesterday and today: each is announced."""
    return journal_lines(students, events, date(2026, 11, 30), 2, seed=3, prefix=prefix,
                         first_student=first_student)


async def link_guardians(services: Services, students: int) -> None:
    """Every guardian of the roster links a Telegram account."""
    for i in range(students):
        await services.linking.support_link(10_000_000 + i, f"+7910{i:07d}")


async def timed_import(services: Services, lines: list[str], name: str, *,
                       notify: bool = True) -> tuple[float, JournalSummary]:
    parsed = parse_journal(lines, name)
    started = time.perf_counter()
    summary, _ = await services.journal.import_journal(parsed, name, notify=notify)
    return time.perf_counter() - started, summary


async def run(workdir: Path, students: int = 2000, events: int = 100_000) -> dict[str, float]:
    path = workdir / "import.sqlite3"
    db = await Database(path).connect()
    await upgrade(db)
    services = services_of(db)
    roster = parse_roster(roster_csv(students), "roster.csv")
    started = time.perf_counter()
    await services.roster.apply(roster, "roster.csv")
    roster_s = time.perf_counter() - started

    lines = history_lines(students, events)
    started = time.perf_counter()
    parsed = parse_journal(lines, "journal.jsonl")
    parse_s = time.perf_counter() - started
    summary, _ = await services.journal.import_journal(parsed, "journal.jsonl")
    total_s = time.perf_counter() - started
    assert summary.applied_total == events, summary

    # Live day: every guardian linked, 10,000 fresh grades. The database as it is now is copied:
    # the same file goes into the copy with --no-notify.
    await link_guardians(services, students)
    await db.close()
    quiet_path = workdir / "import-no-notify.sqlite3"
    shutil.copyfile(path, quiet_path)
    db = await Database(path).connect()
    services = services_of(db)
    live = live_lines(students)
    live_s, live_summary = await timed_import(services, live, "live.jsonl")
    assert live_summary.pushes == LIVE, live_summary
    async with Database(quiet_path) as quiet_db:
        quiet_s, quiet_summary = await timed_import(services_of(quiet_db), live, "live.jsonl",
                                                    notify=False)
    assert quiet_summary.applied_total == LIVE and quiet_summary.pushes == 0, quiet_summary

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
        "live_events": LIVE,
        "live_seconds": round(live_s, 2),
        "live_events_per_second": round(LIVE / live_s),
        "live_no_notify_seconds": round(quiet_s, 2),
        "live_no_notify_events_per_second": round(LIVE / quiet_s),
        "live_pushes_vs_no_notify": round(live_s / quiet_s, 2),
        "reimport_seconds": round(again_s, 2),
    }
