"""Schema migrations: a SQLite database made before Alembic upgrades in place with its data;
two upgrades at once apply every revision once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command

from bot.services import build_services
from core.clock import to_db
from core.importers.journal import parse_journal
from core.services.digest_due import EPOCH
from core.storage.db import Database
from core.storage.migrate import (
    MIGRATION_LOCK,
    alembic_config,
    current_revision,
    declared_head,
    head,
    legacy_migrations,
    split_statements,
    upgrade,
)
from tests.support.school import (
    ANNA_PHONE,
    ROOT,
    SECRET,
    TZ,
    import_roster,
    journal_history,
)

ANNA = 5001


def make_legacy_database(path: Path, up_to: int) -> None:
    """A database as the numbered SQL migrations made it (what ``diary db upgrade`` did before
    Alembic), up to migration ``up_to``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))")
    for number, name, sql in legacy_migrations():
        if number > up_to:
            break
        conn.execute("BEGIN IMMEDIATE")
        for statement in split_statements(sql.read_text(encoding="utf-8")):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                     (number, name))
        conn.execute("COMMIT")
    conn.close()


def columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name NOT IN ('schema_migrations', 'alembic_version')")]
        return {t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


async def school_made_by_the_services(path: Path, clock) -> None:
    """A school with a linked parent, grades, a pending push and settings, in ``path``."""
    async with Database(path) as db:
        await upgrade(db)
        services = build_services(db, SECRET, TZ, clock)
        await import_roster(services)
        await services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
        await journal_history(services)
        await services.journal.import_journal(parse_journal([json.dumps(
            {"id": "e1", "type": "grade", "grade_id": "g1", "student_id": "S-1001",
             "subject": "Алгебра", "date": "2026-11-23", "value": 4, "weight": 2},
            ensure_ascii=False)], "j.jsonl"), "j.jsonl")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO account_settings (telegram_id, quiet_hours)"
                             " VALUES (?, '')", (ANNA,))


def transplant(source: Path, target: Path) -> None:
    """Copy every row of ``source`` into the same tables of ``target`` (tables and columns that
    later revisions added are not in an old database)."""
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    conn.execute("BEGIN")
    old, new = columns(target), columns(source)
    for table in old.keys() & new.keys():
        names = ", ".join(c for c in old[table] if c in new[table])
        conn.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM src.{table}")
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE src")
    conn.close()


@pytest.mark.parametrize("up_to", [9, 6])
async def test_a_database_from_the_numbered_migrations_upgrades_in_place(tmp_path, clock,
                                                                         up_to):
    made = tmp_path / "made.sqlite3"
    await school_made_by_the_services(made, clock)
    old = tmp_path / "old.sqlite3"
    make_legacy_database(old, 9)
    transplant(made, old)
    if up_to < 9:  # an older installation: rebuild it at that version with the same rows
        older = tmp_path / "older.sqlite3"
        make_legacy_database(older, up_to)
        conn = sqlite3.connect(older, isolation_level=None)
        conn.execute("ATTACH DATABASE ? AS src", (str(old),))
        for table, cols in columns(older).items():
            names = ", ".join(cols)
            conn.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM src.{table}")
        conn.execute("DETACH DATABASE src")
        conn.close()
        old = older
    before = {t: sqlite3.connect(old).execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in columns(old)}
    assert before["grades"] == 1 and before["outbox"] == 1 and before["account_links"] == 1

    async with Database(f"sqlite:///{old}") as db:
        done = await upgrade(db)
        assert done[: 9 - up_to] == [f"{n:04d}_{name}" for n, name, _ in legacy_migrations()
                                     if n > up_to]
        assert await current_revision(db) == head()
        assert await upgrade(db) == []
        # The linked parent may get a digest: due at once, for the first run to place.
        assert await db.scalar("SELECT digest_due_at FROM accounts WHERE telegram_id = ?",
                               (ANNA,)) == EPOCH
        services = build_services(db, SECRET, TZ, clock)
        for table, count in before.items():
            assert await db.scalar(f"SELECT COUNT(*) FROM {table}") == count, table
        # The app works on it: the parent sees the grade, a new grade is pushed to them.
        viewer = await services.access.viewer(ANNA)
        ivan = next(c for c in viewer.children if c.name.first == "Иван")
        subjects = await services.grades.overview(viewer, ivan.id, date(2026, 11, 23))
        assert [(s.subject, s.average) for s in subjects.subjects] == [("Алгебра", 4.0)]
        # The grade was made a moment ago: past its history window the next one is news.
        clock.moment += timedelta(hours=2)
        summary, _ = await services.journal.import_journal(parse_journal([json.dumps(
            {"id": "e2", "type": "grade", "grade_id": "g2", "student_id": "S-1001",
             "subject": "Алгебра", "date": "2026-11-23", "value": 5, "weight": 1},
            ensure_ascii=False)], "j.jsonl"), "j.jsonl")
        assert summary.applied == {"grade": 1} and summary.pushes == 1
        assert await db.scalar("SELECT COUNT(*) FROM outbox WHERE telegram_id = ?",
                               (ANNA,)) == 2
        prefs = await db.fetchone("SELECT quiet_hours, digest_time FROM account_settings")
        assert tuple(prefs) == ("", None)
    # The same columns, in the same order, as a database the baseline revision creates.
    assert columns(old) == columns(made)


async def test_two_upgrades_at_once_apply_each_revision_once(database_url):
    first, second = Database(database_url), Database(database_url)
    await first.connect()
    await second.connect()
    try:
        results = await asyncio.gather(upgrade(first), upgrade(second))
        nothing, applied = sorted(results, key=len)
        assert nothing == [] and applied[-1] == head()
        assert len(applied) == len(set(applied))  # each revision once, all by one process
        assert await first.scalar("SELECT COUNT(*) FROM alembic_version") == 1
        assert await second.scalar("SELECT version_num FROM alembic_version") == head()
        assert "outbox" in await second.tables()
    finally:
        await first.close()
        await second.close()


async def _upgrade_to(db: Database, revision: str) -> None:
    def run(conn) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    async with db.locked(MIGRATION_LOCK) as tx:
        await tx.conn.run_sync(run)


async def test_revision_0004_makes_each_account_that_may_get_a_digest_due(database_url, clock):
    """An existing database upgrades in place: accounts that may get a digest are due at once,
    and the first digest run gives each its moment in school time."""
    async with Database(database_url) as db:
        await _upgrade_to(db, "0003")
        services = build_services(db, SECRET, TZ, clock)
        await import_roster(services)  # the roster's SQL is the same at 0003
        guardian = await db.scalar("SELECT guardian_id FROM guardianships ORDER BY 1 LIMIT 1")
        student = await db.scalar(
            "SELECT student_id FROM guardianships WHERE guardian_id = ?", (guardian,))
        stamp = to_db(clock.now())
        async with db.transaction() as tx:
            for tg in range(1, 7):
                await tx.execute(
                    "INSERT INTO accounts (telegram_id, chat_id, unreachable_at, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?)",
                    (tg, tg, stamp if tg == 6 else None, stamp, stamp))
            for tg in (1, 2, 6):  # linked (2 switched the digest off, 6 blocked the bot)
                await tx.execute("INSERT INTO account_links (telegram_id, guardian_id, via,"
                                 " linked_at) VALUES (?, ?, 'phone', ?)", (tg, guardian, stamp))
            await tx.execute("INSERT INTO account_settings (telegram_id, digest_enabled)"
                             " VALUES (2, 0)")
            for tg, scopes in ((4, "attendance,digest"), (5, "grades,attendance")):
                await tx.execute(
                    "INSERT INTO trusts (student_id, telegram_id, guardian_id, inviter_tg,"
                    " surname, scopes, created_at) VALUES (?, ?, ?, 1, 'Иванова', ?, ?)",
                    (student, tg, guardian, scopes, stamp))
        assert (await upgrade(db))[0] == "0004"
        due = dict(await db.fetchall("SELECT telegram_id, digest_due_at FROM accounts"))
        assert due == {1: EPOCH, 2: None, 3: None, 4: EPOCH, 5: None, 6: EPOCH}
        clock.moment = datetime(2026, 11, 23, 12, 0, tzinfo=TZ)
        assert (await services.digest.run()).considered == 0  # each worked out: 19:00 today
        due = dict(await db.fetchall("SELECT telegram_id, digest_due_at FROM accounts"))
        today = "2026-11-23T16:00:00.000000Z"
        assert due == {1: today, 2: None, 3: None, 4: today, 5: None, 6: today}


def test_the_declared_head_is_alembics():
    assert declared_head() == head()


# A fresh interpreter: the schema is current, so neither the upgrade every process does at
# start nor the version `diary status` and /metrics show loads Alembic.
UP_TO_DATE = """
import asyncio, sys
from core.storage.db import Database
from core.storage.migrate import current_revision, upgrade

async def main(url):
    async with Database(url) as db:
        print(await upgrade(db), await current_revision(db) or "-", "alembic" in sys.modules)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_current_schema_is_found_current_without_alembic(database_url):
    async with Database(database_url) as db:
        await upgrade(db)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UP_TO_DATE, database_url, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["[]", head(), "False"]


async def test_revision_0007_keeps_each_lesson_and_task_and_lets_groups_share_a_slot(
        database_url, clock):
    """Lessons keyed by their slot (WITHOUT ROWID on SQLite) upgrade in place to lessons with
    ids; homework keeps its class."""
    async with Database(database_url) as db:
        await _upgrade_to(db, "0006")
        services = build_services(db, SECRET, TZ, clock)
        await import_roster(services)
        class_id = await db.scalar("SELECT id FROM classes WHERE name = '7Б'")
        stamp = to_db(clock.now())
        async with db.transaction() as tx:
            for number, subject in ((1, "Алгебра"), (2, "Английский язык")):
                await tx.execute(
                    "INSERT INTO lessons (class_id, date, number, subject, start_time, end_time,"
                    " room, teacher, cancelled, updated_at)"
                    " VALUES (?, '2026-11-24', ?, ?, '08:30', '09:15', '214', NULL, 0, ?)",
                    (class_id, number, subject, stamp))
            await tx.execute(
                "INSERT INTO homework (external_id, class_id, subject, due, text, required,"
                " updated_at) VALUES ('h1', ?, 'Алгебра', '2026-11-24', '№ 245', 1, ?)",
                (class_id, stamp))
        assert "0007" in await upgrade(db)
        rows = await db.fetchall(
            "SELECT id, number, subject, room, lesson_id, group_name, teacher_replaced, remote"
            " FROM lessons ORDER BY number")
        assert [tuple(r)[1:] for r in rows] == [(1, "Алгебра", "214", None, "", 0, 0),
                                                (2, "Английский язык", "214", None, "", 0, 0)]
        assert len({r[0] for r in rows}) == 2
        assert [tuple(r) for r in await db.fetchall(
            "SELECT external_id, class_id, student_id, links FROM homework")] == [
            ("h1", class_id, None, None)]
        # The old slot's lesson is still found by its slot; groups now share it.
        events = [
            {"id": "a", "type": "lesson", "class": "7Б", "date": "2026-11-24", "number": 1,
             "subject": "Алгебра", "start": "08:30", "end": "09:15", "room": "215"},
            {"id": "b", "type": "lesson", "class": "7Б", "date": "2026-11-24", "number": 2,
             "subject": "Английский язык", "start": "09:25", "end": "10:10",
             "group": "2 группа", "lesson_id": "L-2"},
        ]
        lines = [json.dumps(e, ensure_ascii=False) for e in events]
        await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=False)
        assert [tuple(r) for r in await db.fetchall(
            "SELECT number, room, group_name FROM lessons ORDER BY number, group_name")] == [
            (1, "215", ""), (2, "214", ""), (2, None, "2 группа")]


async def _downgrade_to(db: Database, revision: str) -> None:
    def run(conn) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, revision)

    async with db.locked(MIGRATION_LOCK) as tx:
        await tx.conn.run_sync(run)


async def test_revision_0005_keeps_each_grade_as_shown_and_dates_each_students_history(
        database_url, clock):
    """Grades and dots written before marks were kept as shown upgrade in place (shown = value,
    counted once); students with journal data are dated by their earliest row, so their next
    import is pushed, while a student without any stays new."""
    async with Database(database_url) as db:
        await _upgrade_to(db, "0004")
        services = build_services(db, SECRET, TZ, clock)
        await import_roster(services)  # the roster's SQL is the same at 0004
        ivan = await db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
        async with db.transaction() as tx:
            for n, (value, weight) in enumerate(((4, 2), (5, 1)), 1):
                await tx.execute(
                    "INSERT INTO grades (external_id, student_id, subject, date, value, weight,"
                    " created_at, updated_at) VALUES (?, ?, 'Алгебра', '2026-11-20', ?, ?, ?, ?)",
                    (f"g{n}", ivan, value, weight, f"2026-11-2{n}T10:00:00.000000Z",
                     f"2026-11-2{n}T10:00:00.000000Z"))
            grade_id = await tx.scalar("SELECT id FROM grades WHERE external_id = 'g1'")
            await tx.execute(
                "INSERT INTO dots (external_id, student_id, subject, date, expires, value,"
                " weight, status, grade_id, created_at) VALUES ('d1', ?, 'Алгебра',"
                " '2026-11-19', '2026-11-20', 4, 2, 'graded', ?, '2026-11-19T10:00:00.000000Z')",
                (ivan, grade_id))
        assert (await upgrade(db))[0] == "0005"
        await services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
        rows = await db.fetchall("SELECT external_id, value, shown, scale, points, parts, weight"
                                 " FROM grades ORDER BY external_id")
        assert [tuple(r) for r in rows] == [("g1", 4, "4", "5", 4.0, 1, 2),
                                            ("g2", 5, "5", "5", 5.0, 1, 1)]
        dot = await db.fetchone("SELECT shown, scale, points, parts, grade_id FROM dots")
        assert tuple(dot) == ("4", "5", 4.0, 1, grade_id)  # still pointing at its grade
        since = dict(await db.fetchall("SELECT external_id, journal_since FROM students"))
        assert since["S-1001"] == "2026-11-19T10:00:00.000000Z" and since["S-1002"] is None
        viewer = await services.access.viewer(ANNA)
        child = next(c for c in viewer.children if c.name.first == "Иван")
        overview = await services.grades.overview(viewer, child.id, date(2026, 11, 23))
        assert [(s.subject, round(s.average, 2)) for s in overview.subjects] == [
            ("Алгебра", 4.33)]
        lines = [json.dumps({"id": f"e{n}", "type": "grade", "grade_id": f"n{n}",
                             "student_id": sid, "subject": "Алгебра", "date": "2026-11-23",
                             "value": "5/4", "weight": 0 if n == 3 else 1},
                            ensure_ascii=False)
                 for n, sid in ((1, "S-1001"), (2, "S-1002"), (3, "S-1001"))]
        summary, _ = await services.journal.import_journal(parse_journal(lines, "j"), "j")
        # Ivan's two marks go to Anna at once; Maria's first data is her history: today's mark
        # is news, held to the end of her window.
        assert summary.pushes == 3
        held = await db.fetchall(
            "SELECT s.external_id, o.not_before > o.created_at FROM outbox o"
            " JOIN students s ON s.id = o.student_id ORDER BY o.id")
        assert [tuple(r) for r in held] == [("S-1001", False), ("S-1002", True),
                                            ("S-1001", False)]
        # An old bot would still read a one-figure value, and the CHECKs hold what they must.
        assert await db.scalar("SELECT value FROM grades WHERE external_id = 'n1'") == 5
        with pytest.raises(Exception, match=r"(?i)check"):
            async with db.transaction() as tx:
                await tx.execute("UPDATE grades SET weight = -1 WHERE external_id = 'n1'")

        # Back to 0004: the marks it cannot hold go (weight 0), the rest stay.
        await _downgrade_to(db, "0004")
        kept = [r[0] for r in await db.fetchall(
            "SELECT external_id FROM grades ORDER BY external_id")]
        assert kept == ["g1", "g2", "n1", "n2"]
        assert await db.scalar("SELECT grade_id FROM dots") == grade_id
        assert await upgrade(db)
        assert await current_revision(db) == head()


async def _grade_indexes(db: Database) -> dict[str, str]:
    """The indexes of ``grades`` by name: their definitions."""
    if db.is_sqlite:
        rows = await db.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                                 " AND tbl_name = 'grades' AND sql IS NOT NULL")
    else:
        rows = await db.fetchall("SELECT indexname, indexdef FROM pg_indexes"
                                 " WHERE schemaname = current_schema() AND tablename = 'grades'")
    return {r[0]: r[1] for r in rows}


async def test_revision_0013_reads_a_subjects_sums_from_the_index_alone(database_url):
    """The index of a child's subject by date carries what the sums of an average read, in
    place of the one without them; and back."""
    async with Database(database_url) as db:
        await _upgrade_to(db, "0012")
        assert "grades_student_subject" in await _grade_indexes(db)
        assert await upgrade(db) == ["0013"]
        indexes = await _grade_indexes(db)
        assert "grades_student_subject" not in indexes
        sums = indexes["grades_student_subject_sums"]
        if db.is_sqlite:
            assert "(student_id, subject, date, points, parts, weight, deleted_at)" in sums
            plan = " ".join(str(tuple(r)) for r in await db.fetchall(
                "EXPLAIN QUERY PLAN SELECT student_id, COALESCE(SUM(points * weight), 0),"
                " COALESCE(SUM(parts * weight), 0) FROM grades WHERE subject = ?"
                " AND student_id IN (?, ?) AND date BETWEEN ? AND ? AND deleted_at IS NULL"
                " GROUP BY student_id", ("Алгебра", 1, 2, "2026-09-01", "2027-08-31")))
            assert "COVERING INDEX grades_student_subject_sums" in plan
        else:
            assert "(student_id, subject, date) INCLUDE (points, parts, weight, deleted_at)" \
                in sums
        await _downgrade_to(db, "0012")
        indexes = await _grade_indexes(db)
        assert "grades_student_subject" in indexes
        assert "grades_student_subject_sums" not in indexes
        assert await upgrade(db) == ["0013"]
        assert await current_revision(db) == head()
