"""The demo school: made through the real importers, a family per visitor, a live simulator,
and never on a real school's database."""

from __future__ import annotations

import json

import pytest

from bot.runtime import demo_school
from core.demo import class_events, family, history, periods, roster_text
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
