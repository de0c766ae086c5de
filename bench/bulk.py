"""A whole district written straight into the tables, fast: hundreds of thousands of students
with their guardians, a school year's grades, dots and absences, and linked accounts.

The rows are those the roster and journal importers write (the same columns, hashes, stamps and
defaults; grades of the history are quiet, as an import without pushes leaves them), in the
order a journal delivers them: day by day, so one student's grades lie scattered over the
table as they do in a real database. Only the import ledger (``journal_events``) and the
``imports`` log are left out: nothing a benchmark times reads them.

SQLite is written with the standard ``sqlite3`` module beside the service's own connection (WAL),
PostgreSQL with ``COPY`` over one asyncpg connection (without the foreign-key triggers when the
role may, as ``pg_restore --disable-triggers``). The tables' plain indexes are dropped for a
load and made again from their own definitions after it; PostgreSQL's sequences are then moved
past the ids written here, and its tables vacuumed and analysed, as autovacuum would after such
a load.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.data import FIRST, LAST, SUBJECTS, WORKS
from bench.pg import pg_schema
from core.clock import to_db
from core.identity import Hasher, normalize_phone
from core.storage.db import Database, server_settings

PER_SCHOOL = 1000  # students of a school
PER_CLASS = 25  # so 40 classes a school: grades 1–11, letters А–Г
CHUNK = 20_000  # students written (and their grades shuffled by day) at a time
TEACHERS = ["Петрова М. И.", "Орлов С. В.", "Киселёва А. А.", "Зайцев Д. Н.", "Фомина Е. Г."]
TEACHER = {subject: TEACHERS[n % len(TEACHERS)] for n, subject in enumerate(SUBJECTS)}

# The school year 2026/27 in quarters, as the journal's period events give it.
PERIODS = [
    ("q1-2026", "1 четверть", date(2026, 9, 1), date(2026, 10, 25)),
    ("q2-2026", "2 четверть", date(2026, 11, 5), date(2026, 12, 28)),
    ("q3-2026", "3 четверть", date(2027, 1, 12), date(2027, 3, 20)),
    ("q4-2026", "4 четверть", date(2027, 3, 30), date(2027, 5, 25)),
]

COLUMNS: dict[str, tuple[str, ...]] = {
    "schools": ("id", "name"),
    "classes": ("id", "school_id", "name"),
    "students": ("id", "external_id", "school_id", "class_id", "last_name", "first_name",
                 "middle_name", "phone_hash", "email_hash", "snils_hash", "active", "created_at",
                 "updated_at", "journal_since"),
    "guardians": ("id", "last_name", "first_name", "middle_name", "phone_hash", "email_hash",
                  "snils_hash", "created_at", "updated_at"),
    "guardianships": ("guardian_id", "student_id", "relation"),
    "periods": ("id", "external_id", "name", "start_date", "end_date"),
    "grades": ("id", "external_id", "student_id", "subject", "date", "value", "weight", "work",
               "comment", "teacher", "set_at", "dot_id", "deleted_at", "created_at",
               "updated_at", "quiet", "shown", "scale", "points", "parts"),
    "dots": ("id", "external_id", "student_id", "subject", "date", "expires", "work", "comment",
             "teacher", "value", "weight", "status", "closed_at", "grade_id", "created_at",
             "shown", "scale", "points", "parts"),
    "attendance": ("id", "external_id", "student_id", "date", "lesson", "subject", "mark",
                   "excused", "created_at"),
    "accounts": ("telegram_id", "chat_id", "locale", "language_code", "phone_hash",
                 "unreachable_at", "created_at", "updated_at"),
    "account_links": ("id", "telegram_id", "guardian_id", "student_id", "via", "linked_at"),
}
BULK_TABLES = ["students", "guardians", "guardianships", "grades", "dots", "attendance"]
SEQUENCED = ["schools", "classes", "students", "guardians", "periods", "grades", "dots",
             "attendance", "account_links"]


def guardian_phone(i: int) -> str:
    """The phone of student ``i``'s guardian, as ``LinkingService.support_link`` takes it."""
    return f"+7910{i:07d}"


def school_days(start: date, end: date) -> list[date]:
    """Monday to Friday within the quarters, from ``start`` to ``end``."""
    days = []
    for _key, _name, first, last in PERIODS:
        day = max(first, start)
        while day <= min(last, end):
            if day.weekday() < 5:
                days.append(day)
            day += timedelta(days=1)
    return days


class District:
    """Writes students ``[0, n)`` in steps; student ``i`` is ``S{i:06d}`` with guardian ``i``
    (phone ``guardian_phone(i)``), in school ``i // 1000`` and class ``i // 25``."""

    def __init__(self, db: Database, secret: bytes, today: date, now: datetime,
                 seed: int = 1, marks: tuple[int, int] = (30, 60)) -> None:
        self.db = db
        self.hasher = Hasher(secret)
        self.today = today
        self.stamp = to_db(now)
        self.seed = seed
        self.marks = marks  # the fewest and most grades of a student
        self.days = school_days(PERIODS[0][2], today)
        self.students = 0
        self.grades = 0
        self.dots = 0
        self.absences = 0
        self.links = 0
        self._schools_written = 0

    # -- rows -----------------------------------------------------------------------------

    def _people(self, first: int, last: int) -> dict[str, list[tuple[Any, ...]]]:
        rnd = random.Random(self.seed * 1_000_003 + first)
        rows: dict[str, list[tuple[Any, ...]]] = {
            "schools": [], "classes": [], "students": [], "guardians": [], "guardianships": []}
        schools = -(-last // PER_SCHOOL)
        for school in range(self._schools_written, schools):
            rows["schools"].append((school + 1, f"Школа № {school + 1}"))
            for c in range(PER_SCHOOL // PER_CLASS):
                rows["classes"].append((school * 40 + c + 1, school + 1,
                                        f"{1 + c % 11}{'АБВГ'[c // 11]}"))
        self._schools_written = schools
        for i in range(first, last):
            school, c = divmod(i // PER_CLASS, PER_SCHOOL // PER_CLASS)
            family = rnd.choice(LAST)
            rows["students"].append((
                i + 1, f"S{i:06d}", school + 1, school * 40 + c + 1, family, rnd.choice(FIRST),
                "", None, None, None, 1, self.stamp, self.stamp, self.stamp))
            phone = normalize_phone(guardian_phone(i))
            assert phone is not None
            rows["guardians"].append((
                i + 1, family + "а", rnd.choice(FIRST[1::2]), "", self.hasher.phone(phone),
                None, None, self.stamp, self.stamp))
            rows["guardianships"].append((i + 1, i + 1, "mother"))
        return rows

    def _journal(self, first: int, last: int) -> dict[str, list[tuple[Any, ...]]]:
        """30–60 grades a student (``marks``) over the year so far, a few absences, an open dot
        for one in five; in day order, as the journal sends them."""
        rnd = random.Random(self.seed * 7_000_003 + first)
        days = self.days
        recent = [d for d in days if (self.today - d).days <= 10] or days[-1:]
        grades: list[tuple[Any, ...]] = []
        dots: list[tuple[Any, ...]] = []
        absences: list[tuple[Any, ...]] = []
        isodays = [d.isoformat() for d in days]
        deleted = [None] * 49 + [self.stamp]  # one grade in 50 deleted since
        values = [2, 3, 3, 4, 4, 4, 5, 5, 5]
        weights = [1, 1, 1, 2, 3]
        stamp = self.stamp
        for i in range(first, last):
            sid = i + 1
            n = rnd.randint(*self.marks)
            for day, subject, value, weight, work, gone in zip(
                    rnd.choices(isodays, k=n), rnd.choices(SUBJECTS, k=n),
                    rnd.choices(values, k=n), rnd.choices(weights, k=n),
                    rnd.choices(WORKS, k=n), rnd.choices(deleted, k=n), strict=True):
                grades.append((day, "g", sid, subject, day, value, weight, work, None,
                               TEACHER[subject], None, None, gone, stamp, stamp, 1, str(value),
                               "5", value, 1))
            for _ in range(rnd.randint(1, 6)):
                day = rnd.choice(days)
                absences.append((day, "a", sid, day.isoformat(), rnd.randint(1, 6),
                                 rnd.choice(SUBJECTS), "absent" if rnd.random() < 0.8 else "late",
                                 int(rnd.random() < 0.5), self.stamp))
            if i % 5 == 0:
                day = rnd.choice(recent)
                dots.append((day, f"d{i}", sid, rnd.choice(SUBJECTS), day.isoformat(),
                             (day + timedelta(days=7)).isoformat(), "Домашняя работа", None,
                             None, None, 1, "open", None, None, self.stamp, None, "5", None,
                             None))
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table, rows in (("grades", grades), ("dots", dots), ("attendance", absences)):
            rows.sort(key=lambda r: r[0])  # stable: a day's events in the journal's order
            start = getattr(self, {"grades": "grades", "dots": "dots",
                                   "attendance": "absences"}[table])
            # The journal numbers its grades and absences as it makes them: in day order.
            out[table] = [(start + n + 1, *r[1:]) if table == "dots" else
                          (start + n + 1, f"{r[1]}{start + n + 1:09d}", *r[2:])
                          for n, r in enumerate(rows)]
        self.grades += len(out["grades"])
        self.dots += len(out["dots"])
        self.absences += len(out["attendance"])
        return out

    # -- writing --------------------------------------------------------------------------

    async def grow(self, students: int) -> None:
        """Add students up to ``students`` in all, with their families and journals.

        The tables' plain indexes are dropped for the load and made again after it (sorting
        once is much faster than inserting at random places all along), as their migration
        made them; unique constraints stay."""
        chunks: list[dict[str, Sequence[tuple[Any, ...]]]] = []
        if self.students == 0:
            chunks.append({"periods": [(n + 1, *p[:2], p[2].isoformat(), p[3].isoformat())
                                       for n, p in enumerate(PERIODS)]})

        def rows() -> Iterator[dict[str, Sequence[tuple[Any, ...]]]]:
            yield from chunks
            for first in range(self.students, students, CHUNK):
                last = min(students, first + CHUNK)
                yield {**self._people(first, last), **self._journal(first, last)}
                self.students = last

        await self._load(rows(), BULK_TABLES)

    async def link(self, students: Iterable[int], telegram_base: int) -> list[int]:
        """An account for the guardian of each student, linked as the support desk links one
        (``via = 'support'``); returns the accounts' Telegram ids."""
        accounts, links, ids = [], [], []
        for i in students:
            tg = telegram_base + i
            accounts.append((tg, tg, None, None, None, None, self.stamp, self.stamp))
            self.links += 1
            links.append((self.links, tg, i + 1, None, "support", self.stamp))
            ids.append(tg)
        await self._load(iter([{"accounts": accounts, "account_links": links}]), ())
        return ids

    async def _load(self, chunks: Iterator[dict[str, Sequence[tuple[Any, ...]]]],
                    reindexed: Sequence[str]) -> None:
        if self.db.is_sqlite:
            await asyncio.to_thread(self._load_sqlite, chunks, reindexed)
        else:
            await self._load_postgresql(chunks, reindexed)

    def _load_sqlite(self, chunks: Iterator[dict[str, Sequence[tuple[Any, ...]]]],
                     reindexed: Sequence[str]) -> None:
        assert self.db.path is not None
        conn = sqlite3.connect(self.db.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 15000")
            conn.execute("PRAGMA cache_size = -500000")
            places = ", ".join("?" * len(reindexed))
            indexes = conn.execute(
                f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                f" AND tbl_name IN ({places})", list(reindexed)).fetchall()
            for name, _sql in indexes:
                conn.execute(f"DROP INDEX {name}")
            for tables in chunks:
                conn.execute("BEGIN IMMEDIATE")
                for table, rows in tables.items():
                    columns = COLUMNS[table]
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)})"
                        f" VALUES ({', '.join('?' * len(columns))})", rows)
                conn.execute("COMMIT")
            for _name, sql in indexes:
                conn.execute(sql)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    async def _load_postgresql(self, chunks: Iterator[dict[str, Sequence[tuple[Any, ...]]]],
                               reindexed: Sequence[str]) -> None:
        url, settings = server_settings(self.db.url)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn, server_settings=settings)
        try:
            indexes = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema() AND tablename = ANY($1::text[])"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint)", list(reindexed))
            for row in indexes:
                await conn.execute(f"DROP INDEX {row['indexname']}")
            written: set[str] = set()
            for tables in chunks:
                written.update(tables)
                async with conn.transaction():
                    # Consistent by construction: skip the foreign-key triggers, as pg_restore
                    # --disable-triggers does (allowed to a superuser only; else they run).
                    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                        async with conn.transaction():
                            await conn.execute("SET LOCAL session_replication_role = replica")
                    for table, rows in tables.items():
                        if rows:
                            await conn.copy_records_to_table(table, records=rows,
                                                             columns=list(COLUMNS[table]))
            await conn.execute("SET maintenance_work_mem = '256MB'")
            for row in indexes:
                await conn.execute(row["indexdef"])
            for table in SEQUENCED:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" GREATEST((SELECT MAX(id) FROM {table}), 1))")
            # As autovacuum does after such a load: statistics, and the rows marked visible.
            for table in sorted(written):
                await conn.execute(f"VACUUM ANALYZE {table}")
        finally:
            await conn.close()


# -- PostgreSQL for benchmarks ---------------------------------------------------------------

def postgres_server() -> str:
    import os

    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def postgres_unreachable(server: str) -> str | None:
    """Why the server cannot be used (a plain sentence), or None."""
    dsn = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        shown = make_url(server).render_as_string(hide_password=True)
        return f"skipped: PostgreSQL at {shown} is not reachable ({type(exc).__name__})"
    await conn.close()
    return None


postgres_schema = pg_schema  # a database URL on a schema of its own, dropped at the end


def percentile(sorted_values: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(share * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]
