"""The digest job at a city's scale: many accounts, few of them due at a tick.

The school is written straight into SQLite in bulk (rows, not imports), at revision 0003, and
then upgraded, so the upgrade of an existing database is measured too. Accounts: two guardians
per student, each guardian's account linked. Digest times: 1 % at 17:00, 3 % at 18:00, 18 % at
20:00 and 18 % at 21:00 of their own, the rest the default 19:00. Today (Tuesday 24 November):
a grade for 40 % of the students, absences for 5 %, an open dot for 10 %; tomorrow's lessons and
homework for every class; a history of grades in the term.

Figures: the upgrade to 0004 (the due moments and indexes), the first run after it (each
account's moment worked out), a tick when nothing is due, and the 17:00 tick (1 % due): time,
Python's peak memory (tracemalloc) and the longest the event loop went without a turn (what
polling and delivery in the same process would wait at most).
"""

from __future__ import annotations

import asyncio
import gc
import random
import sqlite3
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from alembic import command

from bench.data import SUBJECTS, WORKS
from bot.services import build_services
from core.clock import FrozenClock, to_db
from core.services.digest import DigestRun
from core.storage.db import Database
from core.storage.migrate import MIGRATION_LOCK, alembic_config, upgrade

TZ = ZoneInfo("Europe/Moscow")
TODAY = date(2026, 11, 24)  # a Tuesday
SECRET = b"bench-secret-0123456789abcdef"
OWN_TIMES = (("17:00", 0.01), ("18:00", 0.03), ("20:00", 0.18), ("21:00", 0.18))
BATCH = 50_000


def _msk(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC)


async def _upgrade_to(db: Database, revision: str) -> None:
    def run(conn) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    async with db.locked(MIGRATION_LOCK) as tx:
        await tx.conn.run_sync(run)


def _insert(conn: sqlite3.Connection, sql: str, rows) -> int:
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            conn.executemany(sql, batch)
            count += len(batch)
            batch = []
    if batch:
        conn.executemany(sql, batch)
        count += len(batch)
    return count


def build(path: Path, accounts: int, history: int) -> dict[str, object]:
    """The school's rows, in bulk (the schema must be at 0003). Returns who has which time."""
    rnd = random.Random(11)
    students = accounts // 2
    classes = (students + 24) // 25
    old = to_db(_msk(date(2026, 10, 1), 10))
    today = to_db(_msk(TODAY, 10))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO schools (id, name) VALUES (1, 'Город')")
    _insert(conn, "INSERT INTO classes (id, school_id, name) VALUES (?, 1, ?)",
            ((c + 1, f"{5 + c % 7}-{c}") for c in range(classes)))
    _insert(conn, "INSERT INTO students (id, external_id, school_id, class_id, last_name,"
            " first_name, created_at, updated_at) VALUES (?, ?, 1, ?, 'Петров', 'Иван', ?, ?)",
            ((s + 1, f"S{s:07d}", s // 25 + 1, old, old) for s in range(students)))
    _insert(conn, "INSERT INTO guardians (id, last_name, first_name, created_at, updated_at)"
            " VALUES (?, 'Петрова', 'Анна', ?, ?)", ((g + 1, old, old) for g in range(accounts)))
    _insert(conn, "INSERT INTO guardianships (guardian_id, student_id, relation)"
            " VALUES (?, ?, 'mother')", ((g + 1, g // 2 + 1) for g in range(accounts)))
    _insert(conn, "INSERT INTO accounts (telegram_id, chat_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?)",
            ((10_000_000 + g, 10_000_000 + g, old, old) for g in range(accounts)))
    _insert(conn, "INSERT INTO account_links (telegram_id, guardian_id, via, linked_at)"
            " VALUES (?, ?, 'phone', ?)", ((10_000_000 + g, g + 1, old) for g in range(accounts)))
    own: dict[str, list[int]] = {}
    order = list(range(accounts))
    rnd.shuffle(order)
    start = 0
    for hhmm, share in OWN_TIMES:
        n = int(accounts * share)
        own[hhmm] = [10_000_000 + g for g in order[start:start + n]]
        start += n
    _insert(conn, "INSERT INTO account_settings (telegram_id, digest_time) VALUES (?, ?)",
            ((tg, hhmm) for hhmm, ids in own.items() for tg in ids))
    term = [date(2026, 9, 1) + timedelta(days=d) for d in range(80)]

    def grades():
        for s in range(1, students + 1):
            for _ in range(history):
                day = rnd.choice(term).isoformat()
                value = rnd.randint(2, 5)
                yield (s, rnd.choice(SUBJECTS), day, value, 1, rnd.choice(WORKS),
                       old, old, str(value), value)
            if rnd.random() < 0.4:
                value = rnd.randint(2, 5)
                yield (s, rnd.choice(SUBJECTS), TODAY.isoformat(), value,
                       rnd.choice((1, 2)), rnd.choice(WORKS), today, today, str(value), value)

    _insert(conn, "INSERT INTO grades (student_id, subject, date, value, weight, work,"
            " created_at, updated_at, shown, points, parts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)", grades())
    _insert(conn, "INSERT INTO attendance (external_id, student_id, date, lesson, subject,"
            " mark, created_at) VALUES (?, ?, ?, 2, 'Физика', 'absent', ?)",
            ((f"a{s}", s, TODAY.isoformat(), today) for s in range(1, students + 1, 20)))
    _insert(conn, "INSERT INTO dots (external_id, student_id, subject, date, expires,"
            " created_at) VALUES (?, ?, 'Химия', ?, ?, ?)",
            ((f"d{s}", s, TODAY.isoformat(), (TODAY + timedelta(days=3)).isoformat(), today)
             for s in range(1, students + 1, 10)))
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    _insert(conn, "INSERT INTO lessons (class_id, date, number, subject, start_time, end_time,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((c, tomorrow, n, SUBJECTS[(c + n) % len(SUBJECTS)], f"{7 + n:02d}:30",
              f"{8 + n:02d}:15", today) for c in range(1, classes + 1) for n in range(1, 7)))
    _insert(conn, "INSERT INTO homework (external_id, class_id, subject, due, text, updated_at)"
            " VALUES (?, ?, ?, ?, 'Параграф 12, вопросы 1–5', ?)",
            ((f"h{c}-{n}", c, SUBJECTS[(c + n) % len(SUBJECTS)], tomorrow, today)
             for c in range(1, classes + 1) for n in range(3)))
    conn.execute("COMMIT")
    conn.close()
    return {"own": own, "students": students, "classes": classes}


async def _timed(make: Callable[[], Awaitable[DigestRun]]) -> tuple[float, float, DigestRun]:
    """Seconds, and the longest the event loop waited for a turn (ms), of one run."""
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        while running:
            asked = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - asked - 0.005)

    watch = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    result = await make()
    elapsed = time.perf_counter() - started
    running = False
    await watch
    return elapsed, worst * 1000, result


async def _peak_mb(make: Callable[[], Awaitable[DigestRun]]) -> float:
    """Python's peak allocations during one run, above what was allocated before it (MB)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    await make()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return round((peak - base) / 2**20, 1)


async def at_scale(workdir: Path, accounts: int, history: int = 5,
                   repeats: int = 3) -> dict[str, object]:
    path = workdir / f"digest-scale-{accounts}.sqlite3"
    db = await Database(path).connect()
    await _upgrade_to(db, "0003")
    await db.close()
    started = time.perf_counter()
    made = await asyncio.to_thread(build, path, accounts, history)
    build_s = time.perf_counter() - started
    db = await Database(path).connect()
    started = time.perf_counter()
    assert await upgrade(db) == ["0004"]
    upgrade_s = time.perf_counter() - started
    clock = FrozenClock(_msk(TODAY, 12))
    services = build_services(db, SECRET, TZ, clock)
    digest = services.digest

    started = time.perf_counter()
    first = await digest.run()  # after the upgrade: every moment worked out
    first_s = time.perf_counter() - started
    assert first.sent == 0, first

    figures: dict[str, object] = {
        "accounts": accounts, "students": made["students"], "classes": made["classes"],
        "grades": await db.scalar("SELECT COUNT(*) FROM grades"),
        "build_seconds": round(build_s, 1), "upgrade_0004_seconds": round(upgrade_s, 1),
        "first_run_seconds": round(first_s, 1), "first_run_considered": first.considered,
    }

    # Nothing due (12:05).
    clock.moment = _msk(TODAY, 12, 5)
    runs = [await _timed(digest.run) for _ in range(max(repeats, 5))]
    assert all(r[2].considered == 0 for r in runs)
    figures["idle_tick_ms"] = round(statistics.median(r[0] for r in runs) * 1000, 1)
    figures["idle_tick_peak_mb"] = await _peak_mb(digest.run)

    # 17:00: the accounts of 17:00 are due.
    due = made["own"]["17:00"]
    moment = to_db(_msk(TODAY, 17))

    async def reset() -> None:
        async with db.transaction() as tx:
            await tx.execute("DELETE FROM digest_log")
            await tx.execute("DELETE FROM outbox")
            for i in range(0, len(due), 500):
                part = due[i:i + 500]
                await tx.execute(
                    f"UPDATE accounts SET digest_due_at = ?"
                    f" WHERE telegram_id IN ({', '.join('?' * len(part))})", (moment, *part))

    clock.moment = _msk(TODAY, 17)
    ticks = []
    for _ in range(repeats):
        await reset()
        ticks.append(await _timed(digest.run))
        result = ticks[-1][2]
        assert (result.considered, result.sent) == (len(due), len(due)), result
    await reset()
    figures.update({
        "due": len(due),
        "due_tick_seconds": round(statistics.median(t[0] for t in ticks), 2),
        "due_tick_per_second": round(len(due) / statistics.median(t[0] for t in ticks)),
        "due_tick_peak_mb": await _peak_mb(digest.run),
        "due_tick_longest_loop_wait_ms": round(max(t[1] for t in ticks), 1),
        "chunk": digest.chunk,
    })
    await db.close()
    return figures
