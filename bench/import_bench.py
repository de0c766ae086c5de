"""Journal import throughput: 100,000 grade events for 2,000 students; then 10,000 fresh grades
with a push each, against the same file with --no-notify into the same data (each import into a
copy of the database as it was before it, a few times in turn: medians)."""

from __future__ import annotations

import gc
import shutil
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.data import journal_lines, roster_csv
from bot.services import Services, build_services
from core.clock import FrozenClock, to_db
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from core.services.journal import JournalSummary
from core.storage.db import Database
from core.storage.migrate import upgrade

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET = b"bench-secret-0123456789abcdef"
LIVE = 10_000


def services_of(db: Database) -> Services:
    return build_services(db, SECRET, TZ, FrozenClock(NOW))


def history_lines(students: int, events: int) -> list[str]:
    """Grades of September–November: the students' first journal data, stored without
    pushes."""
    return journal_lines(students, events, date(2026, 9, 1), 80)


def live_lines(students: int, events: int = LIVE, prefix: str = "live",
               first_student: int = 0) -> list[str]:
    """Fresh grades of yesterday and today: each is announced."""
    return journal_lines(students, events, date(2026, 11, 30), 2, seed=3, prefix=prefix,
                         first_student=first_student)


async def timed_import(services: Services, lines: list[str], name: str, *,
                       notify: bool = True) -> tuple[float, JournalSummary]:
    parsed = parse_journal(lines, name)
    # Each import starts from a collected heap: what the steps before it left (the parsed
    # events, an earlier import's garbage) is not collected on its clock, at whichever import
    # the collector's thresholds happen to fall.
    gc.collect()
    started = time.perf_counter()
    summary, _ = await services.journal.import_journal(parsed, name, notify=notify)
    return time.perf_counter() - started, summary


async def prepare(path: Path, students: int, events: int) -> dict[str, float]:
    """A school in the SQLite file ``path``: the roster, ``events`` grades of history (no
    pushes), every guardian linked to a Telegram account; the first two timed."""
    async with Database(path) as db:
        await upgrade(db)
        services = services_of(db)
        roster = parse_roster(roster_csv(students), "roster.csv")
        started = time.perf_counter()
        await services.roster.apply(roster, "roster.csv")
        figures: dict[str, float] = {"roster_students": students,
                                     "roster_seconds": round(time.perf_counter() - started, 2)}
        if events:
            lines = history_lines(students, events)
            started = time.perf_counter()
            parsed = parse_journal(lines, "journal.jsonl")
            parse_s = time.perf_counter() - started
            summary, _ = await services.journal.import_journal(parsed, "journal.jsonl")
            total_s = time.perf_counter() - started
            assert summary.applied_total == events, summary
            figures.update(events=events, parse_seconds=round(parse_s, 2),
                           import_seconds=round(total_s, 2),
                           events_per_second=round(events / total_s))
        for i in range(students):
            await services.linking.support_link(10_000_000 + i, f"+7910{i:07d}")
        # Every student has had journal history since yesterday (the imports that bring a
        # student's first data push nothing, for an hour): the live imports after are pushed.
        async with db.transaction() as tx:
            await tx.execute("UPDATE students SET journal_since = ?",
                             (to_db(NOW - timedelta(days=1)),))
    return figures


def copy_sqlite(source: Path, target: Path) -> None:
    """A closed SQLite database, file by file."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


def live_figures(seconds: dict[bool, list[float]], runs: int) -> dict[str, float]:
    live, quiet = (statistics.median(seconds[n]) for n in (True, False))
    return {
        "live_runs": runs,
        "live_events": LIVE,
        "live_seconds": round(live, 2),
        "live_events_per_second": round(LIVE / live),
        "live_no_notify_seconds": round(quiet, 2),
        "live_no_notify_events_per_second": round(LIVE / quiet),
        "live_pushes_vs_no_notify": round(statistics.median(
            a / b for a, b in zip(seconds[True], seconds[False], strict=True)), 2),
    }


async def run(workdir: Path, students: int = 2000, events: int = 100_000,
              runs: int = 3) -> dict[str, float]:
    path = workdir / "import.sqlite3"
    figures = await prepare(path, students, events)

    # Live day: 10,000 fresh grades, each queues a push; and the same with --no-notify.
    lines = live_lines(students)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(runs):
        for notify in (True, False):
            copy = workdir / "live.sqlite3"
            copy_sqlite(path, copy)
            async with Database(copy) as db:
                elapsed, summary = await timed_import(services_of(db), lines, "live.jsonl",
                                                      notify=notify)
            assert summary.applied_total == LIVE and summary.pushes == (LIVE if notify else 0)
            seconds[notify].append(elapsed)
    figures.update(live_figures(seconds, runs))

    # A re-import of everything changes nothing.
    history = history_lines(students, events)
    async with Database(path) as db:
        services = services_of(db)
        started = time.perf_counter()
        again, _ = await services.journal.import_journal(parse_journal(history, "j"), "j")
        figures["reimport_seconds"] = round(time.perf_counter() - started, 2)
    assert again.applied_total == 0 and again.pushes == 0
    return figures
