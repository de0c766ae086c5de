"""Dots through their whole life, with a controllable clock (school time: Moscow)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from bot.services import build_services
from core.importers.journal import parse_journal
from core.models import Role
from core.storage.db import Database
from tests.support.school import ANNA_PHONE, IVAN_PHONE, SECRET, TZ, journal_history

ANNA, IVAN = 5001, 5002


def at(day: int, hour: int = 10) -> datetime:
    """A moment in November 2026, given in Moscow time."""
    return datetime(2026, 11, day, hour, tzinfo=TZ).astimezone(UTC)


async def feed(services, *events: dict) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j")


def dot(n: int, expires: str = "2026-11-27", value: int | None = 2, day: str = "2026-11-23",
        **kw) -> dict:
    event = {"id": f"d{n}", "type": "dot", "dot_id": f"dot{n}", "student_id": "S-1001",
             "subject": "Физика", "date": day, "expires": expires,
             "work": "Лабораторная работа", "comment": "Сдать отчёт", **kw}
    if value is not None:
        event["value"] = value
    return event


async def pushes(services, kind: str | None = None) -> list[tuple[int, str, dict]]:
    rows = await services.db.fetchall("SELECT telegram_id, kind, payload FROM outbox ORDER BY id")
    return [(r[0], r[1], json.loads(r[2])) for r in rows if kind is None or r[1] == kind]


@pytest.fixture
async def family(school, clock):
    clock.moment = at(23)
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await journal_history(school)
    return school


async def test_a_new_dot_is_pushed_to_parent_and_student(family):
    await feed(family, dot(1))
    rows = await pushes(family, "dot_new")
    assert sorted(r[0] for r in rows) == [ANNA, IVAN]
    assert rows[0][2]["days_left"] == 4 and rows[0][2]["value"] == 2
    viewer = await family.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    [entry] = [e for e in await family.dots.open_dots(viewer) if e.child.id == ivan.id]
    assert [(d.subject, d.days_left) for d in entry.dots] == [("Физика", 4)]


async def test_reminders_on_the_right_days_once(family, clock):
    await feed(family, dot(1, expires="2026-11-27"))
    clock.moment = at(24, 23)  # 23:00 on the 24th: three days left, nothing yet
    assert (await family.dots.run()).reminders == 0
    clock.moment = at(25, 0) .replace(minute=30)  # 00:30 on the 25th (21:30 UTC the day before)
    result = await family.dots.run()
    assert result.reminders == 1
    [(to, _, payload)] = await pushes(family, "dot_reminder")
    assert to == IVAN and payload["days_left"] == 2  # the student only, two days before
    assert (await family.dots.run()).reminders == 0  # hourly runs do not repeat it
    clock.moment = at(27, 7)
    assert (await family.dots.run()).reminders == 2  # last day: student and parent
    last = [(r[0], r[2]["days_left"]) for r in await pushes(family, "dot_reminder")][1:]
    assert sorted(last) == [(ANNA, 0), (IVAN, 0)]


async def test_expiry_into_a_grade_exactly_once(family, clock):
    await feed(family, dot(1, expires="2026-11-27", value=2, weight=2))
    clock.moment = at(27, 23)  # still the last day
    assert (await family.dots.run()).graded == 0
    clock.moment = at(28, 0).replace(minute=5)
    result = await family.dots.run()
    assert (result.graded, result.vanished) == (1, 0)
    assert (await family.dots.run()).graded == 0
    grade = await family.db.fetchone("SELECT value, weight, date, dot_id FROM grades")
    assert (grade["value"], grade["weight"], grade["date"]) == (2, 2, "2026-11-27")
    from_dot = [r for r in await pushes(family, "grade_new") if r[2].get("from_dot")]
    assert sorted(r[0] for r in from_dot) == [ANNA, IVAN]
    assert from_dot[0][2]["avg_after"] == 2.0
    assert await family.db.scalar("SELECT status FROM dots") == "graded"


async def test_expiry_into_nothing(family, clock):
    await feed(family, dot(1, value=None))
    clock.moment = at(29)
    assert (await family.dots.run()).vanished == 1
    assert await family.db.scalar("SELECT COUNT(*) FROM grades") == 0
    rows = await pushes(family, "dot_vanished")
    assert len(rows) == 2 and rows[0][2]["reason"] == "expired"


async def test_teacher_closes_with_a_grade_or_removes(family, clock):
    await feed(family, dot(1), dot(2, value=None))
    await feed(family, {"id": "c1", "type": "dot_closed", "dot_id": "dot1", "value": 4},
               {"id": "c2", "type": "dot_closed", "dot_id": "dot2"})
    assert [r["value"] for r in await family.db.fetchall("SELECT value FROM grades")] == [4]
    assert len(await pushes(family, "dot_vanished")) == 2
    clock.moment = at(30)
    result = await family.dots.run()
    assert (result.graded, result.vanished) == (0, 0)  # nothing left to expire


async def test_period_end_expires_the_dots_of_that_period(family, clock):
    await feed(family, {"id": "p", "type": "period", "period_id": "q2", "name": "2 четверть",
                        "start": "2026-11-05", "end": "2026-11-25"},
               dot(1, expires="2026-12-10", value=3))
    clock.moment = at(26)
    assert (await family.dots.run()).graded == 1
    assert await family.db.scalar("SELECT date FROM grades") == "2026-11-25"
    payload = (await pushes(family, "grade_new"))[0][2]
    assert payload["reason"] == "period_end"


async def test_restart_and_concurrent_runs_convert_once(family, clock, tmp_path):
    await feed(family, dot(1), dot(2, value=None), dot(3, value=5))
    clock.moment = at(30)
    second_db = await Database(family.db.url).connect()
    try:
        other = build_services(second_db, SECRET, TZ, clock)  # another process
        a, b = await asyncio.gather(family.dots.run(), other.dots.run())
        assert a.graded + b.graded == 2 and a.vanished + b.vanished == 1
        restarted = build_services(second_db, SECRET, TZ, clock)
        again = await restarted.dots.run()
        assert (again.graded, again.vanished) == (0, 0)
    finally:
        await second_db.close()
    ends = [r for r in await pushes(family) if r[1] in ("grade_new", "dot_vanished")]
    assert len(ends) == 6  # three dots × (parent + student), once each
    assert await family.db.scalar("SELECT COUNT(*) FROM grades") == 2


async def test_old_history_of_dots_does_not_push(family):
    await family.journal.import_journal(
        parse_journal([json.dumps(dot(1, day="2026-10-01", expires="2026-10-08"))], "j"), "j")
    assert await pushes(family) == []
    assert (await family.dots.run()).graded == 1
    assert await pushes(family) == []  # ended in October: closed quietly
    viewer = await family.access.viewer(IVAN)
    assert viewer.children[0].role is Role.STUDENT


async def test_the_teachers_grade_after_expiry_replaces_the_default(family, clock):
    await feed(family, dot(1, expires="2026-11-24", value=2))
    clock.moment = at(25, 1)
    assert (await family.dots.run()).graded == 1
    clock.moment = at(25, 10)
    await feed(family, {"id": "late-close", "type": "dot_closed", "dot_id": "dot1", "value": 5})
    assert [r[0] for r in await family.db.fetchall("SELECT value FROM grades")] == [5]
    corrections = await pushes(family, "grade_changed")
    assert len(corrections) == 2  # the parent and the student
    assert (corrections[0][2]["old_value"], corrections[0][2]["value"]) == (2, 5)


async def test_a_corrupt_dot_is_logged_and_skipped_and_the_others_still_expire(
        family, clock, caplog):
    await feed(family, dot(1, expires="2026-11-25", value=4), dot(2, expires="2026-11-25",
                                                                     value=None))
    student = await family.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    async with family.db.transaction() as tx:  # rows no import lets in any more
        for n, (day, expires) in enumerate([("0001-01-01", "0001-01-01"),
                                            ("2026-11-01", "2026-02-30")], 3):
            await tx.execute(
                "INSERT INTO dots (external_id, student_id, subject, date, expires, value, weight,"
                " created_at) VALUES (?, ?, 'Физика', ?, ?, 5, 1, '2026-11-01T00:00:00.000000Z')",
                (f"bad{n}", student, day, expires))
    clock.moment = at(26)
    with caplog.at_level("ERROR", logger="core.services.dots"):
        result = await family.dots.run()
    assert (result.graded, result.vanished, result.failed) == (1, 1, 2)
    statuses = dict(await family.db.fetchall("SELECT external_id, status FROM dots"))
    assert statuses == {"dot1": "graded", "dot2": "vanished", "bad3": "open", "bad4": "open"}
    assert await family.db.scalar("SELECT COUNT(*) FROM grades WHERE dot_id IS NOT NULL") == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "bad3" in logged and "bad4" in logged and "out of range" in logged
    assert (await family.dots.run()).graded == 0  # the next run fails on them again, alone


async def test_a_run_takes_the_due_dots_a_chunk_at_a_time_in_order(family, clock,
                                                                    monkeypatch):
    import core.services.dots

    monkeypatch.setattr(core.services.dots, "CHUNK", 2)
    await feed(family, {"id": "p", "type": "period", "period_id": "q2", "name": "2 четверть",
                        "start": "2026-11-01", "end": "2026-11-20"},
               dot(1, expires="2026-11-28", value=4), dot(2, expires="2026-11-26", value=None),
               dot(3, expires="2026-12-10", value=3, day="2026-11-10"),  # the period ended
               dot(4, expires="2026-11-27", value=5), dot(5, expires="2026-12-20", value=5,
                                                          day="2026-11-27"),  # next period
               dot(6, expires="2026-12-01", value=2, day="2026-11-27"),
               dot(7, expires="2026-12-01", value=3, day="2026-11-28"),
               dot(8, expires="2026-12-01", value=4, day="2026-11-28"))
    clock.moment = at(29)
    result = await family.dots.run()
    assert (result.graded, result.vanished, result.failed) == (3, 1, 0)
    statuses = dict(await family.db.fetchall("SELECT external_id, status FROM dots"))
    assert [d for d, status in sorted(statuses.items()) if status == "open"] == [
        "dot5", "dot6", "dot7", "dot8"]
    ends = [(kind, payload.get("value")) for to, kind, payload in await pushes(family)
            if kind in ("grade_new", "dot_vanished") and to == IVAN]
    # In the order of their days, as one run over all of them did: 26, 27, 28 November (the
    # one the period closed on the 20th closes quietly).
    assert ends == [("dot_vanished", None), ("grade_new", 5), ("grade_new", 4)]
    assert await family.db.scalar("SELECT date FROM grades WHERE value = 3") == "2026-11-20"
    # Three dots expire on 1 December: the student's reminders two days before, one chunk
    # after the other, each once.
    assert result.reminders == 3
    assert (await family.dots.run()).reminders == 0
