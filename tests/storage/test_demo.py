"""The demo school: made through the real importers, a family per visitor, a live simulator,
and never on a real school's database."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest

from bot.roles import demo_school
from core.demo import (
    CLASSES,
    HOMEWORK,
    LESSONS_A_DAY,
    class_events,
    family,
    history,
    periods,
    roster_text,
    weekly_timetable,
)
from core.errors import DemoRefused
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from tests.support.school import import_roster

VISITOR = 9001


def test_the_demo_seed_passes_the_importers_validation(clock):
    today = clock.now().date()
    fams = [family(n) for n in range(1, 6)]
    roster = parse_roster(roster_text(fams), "demo.csv")
    assert len(roster.students) == 10 and len(roster.guardians) == 5
    lines = [json.dumps(e, ensure_ascii=False)
             for e in periods(today) + class_events(today) + history(fams[0], today)]
    parsed = parse_journal(lines, "demo.jsonl")
    assert parsed.problems == [] and parsed.duplicates == 0
    kinds = {type(e).__name__ for e in parsed.events}
    assert kinds >= {"PeriodEvent", "LessonEvent", "HomeworkEvent", "GradeEvent",
                     "AttendanceEvent", "DotEvent"}


async def test_a_visitor_gets_a_family_of_their_own_and_live_pushes(services):
    school = demo_school(services)
    await school.seed()
    assert await services.db.scalar("SELECT COUNT(*) FROM students") == 6
    result = await school.visit(VISITOR, VISITOR, as_student=False, language_code="ru")
    assert sorted(c.class_name for c in result.children) == ["5А", "7Б"]
    other = await school.visit(VISITOR + 1, VISITOR + 1, as_student=True, language_code="ru")
    assert len(other.children) == 1
    mine = {c.id for c in result.children}
    assert mine.isdisjoint({c.id for c in other.children})  # visitors never see each other
    # Grades with weights and an open dot are there to see.
    viewer = await services.access.viewer(VISITOR)
    child = next(c for c in viewer.children if c.class_name == "7Б")
    overview = await services.grades.overview(viewer, child.id, services.clock.now().date())
    assert overview.subjects and all(s.average is not None for s in overview.subjects)
    assert any(m.weight > 1 for s in overview.subjects for m in s.marks)
    dots = await services.dots.open_dots(viewer)
    assert any(entry.dots for entry in dots)
    # The simulator makes one new event per visited family, pushed through the outbox.
    before = await services.outbox.pending()
    pushes = await school.simulate()
    assert pushes >= 2
    rows = await services.db.fetchall(
        "SELECT telegram_id, kind FROM outbox ORDER BY id")
    assert {r[0] for r in rows} >= {VISITOR, VISITOR + 1}
    assert await services.outbox.pending() > before


async def test_demo_never_runs_on_a_real_schools_database(school):
    with pytest.raises(DemoRefused):
        await demo_school(school).seed()
    with pytest.raises(DemoRefused):
        await demo_school(school).visit(1, 1, False, "ru")
    assert await demo_school(school).simulate() == 0


async def test_a_real_roster_cannot_be_mistaken_for_a_demo(services):
    await import_roster(services)
    with pytest.raises(DemoRefused):
        await demo_school(services).claim()


async def test_two_visitors_at_once_get_two_families_and_a_second_tap_changes_nothing(services):
    import asyncio

    school = demo_school(services)
    await school.seed()
    a, b = await asyncio.gather(school.visit(1, 1, False, "ru"), school.visit(2, 2, False, "ru"))
    assert {c.id for c in a.children}.isdisjoint({c.id for c in b.children})
    again = await school.visit(1, 1, False, "ru")
    assert {c.id for c in again.children} == {c.id for c in a.children}
    assert await services.db.scalar("SELECT COUNT(*) FROM students") == 10
    # The other role is another family: a student sees just themself.
    student = await school.visit(1, 1, True, "ru")
    assert [c.role.value for c in student.children] == ["student"]
    assert student.children[0].id not in {c.id for c in a.children}


async def _seeded_with_visitors(services):
    school = demo_school(services)
    await school.seed()
    await school.visit(VISITOR, VISITOR, as_student=False, language_code="ru")
    for _ in range(3):
        await school.simulate()
    return school


async def test_one_teacher_per_subject_and_class_on_every_lesson_grade_and_dot(services):
    await _seeded_with_visitors(services)
    rows = await services.db.fetchall(
        "SELECT c.name, l.subject, l.teacher FROM lessons l JOIN classes c ON c.id = l.class_id"
        " UNION ALL SELECT c.name, g.subject, g.teacher FROM grades g"
        " JOIN students s ON s.id = g.student_id JOIN classes c ON c.id = s.class_id"
        " UNION ALL SELECT c.name, d.subject, d.teacher FROM dots d"
        " JOIN students s ON s.id = d.student_id JOIN classes c ON c.id = s.class_id")
    teachers: dict[tuple[str, str], set[str]] = {}
    for cls, subject, teacher in rows:
        teachers.setdefault((cls, subject), set()).add(teacher)
    assert all(t != {None} for t in teachers.values())
    assert {key: len(names) for key, names in teachers.items() if len(names) != 1} == {}
    # Every subject of each class is taught, and someone teaches it.
    assert {key for key in teachers} == {(cls, s) for cls, subjects in CLASSES.items()
                                         for s in subjects}
    assert teachers[("5А", "Английский язык")] == {"Белова Т. Н."}
    assert teachers[("7Б", "Физика")] == {"Гусев П. А."}


async def test_homework_fits_its_subject(services):
    await _seeded_with_visitors(services)
    rows = await services.db.fetchall("SELECT subject, text FROM homework")
    assert len(rows) > 40
    for subject, text in rows:
        patterns = [re.escape(t).replace(r"\{p\}", r"\d+").replace(r"\{n\}", r"\d+")
                    .replace(r"\{m\}", r"\d+").replace(r"\{a\}", r"\d+")
                    .replace(r"\{b\}", r"\d+") for t in HOMEWORK[subject]]
        assert any(re.fullmatch(p, text) for p in patterns), (subject, text)
    english = [text for subject, text in rows if subject == "Английский язык"]
    assert english and not any("Параграф" in t or "§" in t or "вопросы 1–4" in t
                               for t in english)
    history = [text for subject, text in rows if subject == "История"]
    assert not any("упр." in t or "перевести" in t for t in history)


async def test_the_timetable_has_a_full_week_including_friday(services, clock):
    await _seeded_with_visitors(services)
    today = clock.now().date()
    monday = today - timedelta(days=today.weekday())
    rows = await services.db.fetchall(
        "SELECT c.name, l.date, COUNT(*) FROM lessons l JOIN classes c ON c.id = l.class_id"
        " GROUP BY c.name, l.date")
    days = {(cls, date.fromisoformat(day)): n for cls, day, n in rows}
    for cls, per_day in LESSONS_A_DAY.items():
        for week in (monday, monday + timedelta(days=7)):  # this week and the next
            school_week = [week + timedelta(days=d) for d in range(5)]
            assert [days.get((cls, day)) for day in school_week] == [per_day] * 5, (cls, week)
            assert (cls, week + timedelta(days=5)) not in days  # no lessons on Saturday
    # The same lessons every week, as in a real school.
    fridays = await services.db.fetchall(
        "SELECT l.date, l.number, l.subject, l.teacher, l.room, l.start_time FROM lessons l"
        " JOIN classes c ON c.id = l.class_id WHERE c.name = '7Б' AND l.date IN (?, ?)"
        " ORDER BY l.date, l.number",
        ((monday + timedelta(days=4)).isoformat(), (monday + timedelta(days=11)).isoformat()))
    first, second = fridays[:6], fridays[6:]
    assert [tuple(r)[1:] for r in first] == [tuple(r)[1:] for r in second]
    assert [r[2] for r in first] == weekly_timetable("7Б", 4)
    assert first[0][5] == "08:30"


@pytest.mark.parametrize("day", ["2026-11-25", "2026-11-28", "2026-11-29"])
def test_the_timetable_covers_this_week_and_the_next_on_any_day(day):
    today = date.fromisoformat(day)
    monday = today - timedelta(days=today.weekday())
    dates = {e["date"] for e in class_events(today) if e["type"] == "lesson"}
    expected = {(monday + timedelta(days=w * 7 + d)).isoformat()
                for w in (0, 1) for d in range(5)}
    assert dates == expected


def test_absences_name_the_lesson_the_timetable_has_then(clock):
    fam = family(1)
    for event in history(fam, clock.now().date()):
        if event["type"] == "attendance":
            cls = "7Б" if event["student_id"].endswith("-1") else "5А"
            day = date.fromisoformat(event["date"])
            assert weekly_timetable(cls, day.weekday())[event["lesson"] - 1] == event["subject"]
