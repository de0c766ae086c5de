"""Journal import over real SQLite: validation, idempotency, averages and outbox rows."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.services import build_services
from core.errors import InputInvalid
from core.importers.journal import parse_journal
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.school import (
    ANNA_PHONE,
    EXAMPLE_ROOT,
    IVAN_PHONE,
    SECRET,
    TZ,
    import_roster,
    journal_history,
)

ANNA = 5001
IVAN = 5002


def jl(*events: dict) -> list[str]:
    return [json.dumps(e, ensure_ascii=False) for e in events]


def grade(n: int, value: int = 5, weight: int = 1, student: str = "S-1001",
          subject: str = "Алгебра", day: str = "2026-11-23", **extra) -> dict:
    return {"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": student,
            "subject": subject, "date": day, "value": value, "weight": weight, **extra}


async def run(services, lines: list[str], **kw):
    parsed = parse_journal(lines, "j.jsonl")
    raw = dict(enumerate(lines, 1))
    return await services.journal.import_journal(parsed, "j.jsonl", raw, **kw)


async def outbox(services) -> list[dict]:
    rows = await services.db.fetchall("SELECT telegram_id, kind, payload FROM outbox ORDER BY id")
    return [{"to": r[0], "kind": r[1], **json.loads(r[2])} for r in rows]


@pytest.fixture
async def linked(school):
    """Ivan's family linked, and the school's journal history imported before."""
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await journal_history(school)
    return school


async def test_example_journal_imports(linked):
    lines = (EXAMPLE_ROOT / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    summary, checked = await run(linked, lines)
    assert checked.problems == []
    assert summary.applied == {"attendance": 1, "dot": 1, "grade": 5, "grade_changed": 1,
                               "homework": 1, "lesson": 2, "period": 2}
    assert await linked.db.scalar("SELECT value FROM grades WHERE external_id = 'g-1'") == 5


async def test_new_grade_pushes_to_guardian_and_student_with_average_change(linked):
    await run(linked, jl(grade(1, 4, 1, day="2026-11-20"), grade(2, 5, 1, day="2026-11-20")),
              notify=False)
    summary, _ = await run(linked, jl(grade(3, 5, 2, work="Контрольная работа",
                                            comment="Молодец")))
    assert summary.pushes == 2
    rows = await outbox(linked)
    assert sorted(r["to"] for r in rows) == [ANNA, IVAN]
    push = rows[0]
    assert push["kind"] == "grade_new"
    assert (push["child"], push["subject"], push["value"], push["weight"]) == (
        "Иван", "Алгебра", 5, 2)
    assert push["work"] == "Контрольная работа" and push["comment"] == "Молодец"
    assert push["avg_before"] == pytest.approx(4.5)
    assert push["avg_after"] == pytest.approx((4 + 5 + 10) / 4)


async def test_reimport_changes_nothing_and_sends_nothing(linked):
    lines = jl(grade(1), grade(2, 4))
    first, _ = await run(linked, lines)
    assert first.pushes == 4
    second, _ = await run(linked, lines)
    assert second.applied_total == 0 and second.already_imported == 2 and second.pushes == 0
    assert await linked.db.scalar("SELECT COUNT(*) FROM grades") == 2
    assert await linked.db.scalar("SELECT COUNT(*) FROM outbox") == 4


async def test_grades_set_long_ago_do_not_push(linked):
    """With set_at, a grade set more than RELEVANCE_DAYS ago is stored without a push; without
    it, a grade is news when it reaches the bot, whatever its lesson date."""
    summary, _ = await run(linked, jl(grade(1, 5, day="2026-11-01"),
                                      grade(2, 4, day="2026-11-01", set_at="2026-11-22T10:00:00Z"),
                                      grade(3, 3, day="2026-11-01", set_at="2026-11-10T10:00:00Z")))
    assert summary.applied["grade"] == 3
    # e1 (no set_at, reached the bot now) and e2 (set yesterday), each to Anna and Ivan.
    assert sorted(r["value"] for r in await outbox(linked)) == [4, 4, 5, 5]
    assert summary.pushes == 4
    quiet = dict(await linked.db.fetchall("SELECT external_id, quiet FROM grades"))
    assert quiet == {"g1": 0, "g2": 0, "g3": 1}


async def test_no_notify_stores_silently(linked):
    summary, _ = await run(linked, jl(grade(1)), notify=False)
    assert summary.pushes == 0 and await linked.db.scalar("SELECT COUNT(*) FROM grades") == 1


async def test_correction_and_deletion_are_pushed(linked):
    await run(linked, jl(grade(1, 3), grade(2, 5)), notify=False)
    await run(linked, jl({"id": "c1", "type": "grade_changed", "grade_id": "g1", "value": 4},
                         {"id": "d1", "type": "grade_deleted", "grade_id": "g2"}))
    rows = [r for r in await outbox(linked) if r["to"] == ANNA]
    assert [r["kind"] for r in rows] == ["grade_changed", "grade_deleted"]
    assert rows[0]["old_value"] == 3 and rows[0]["value"] == 4
    assert rows[0]["avg_before"] == pytest.approx(4.0) and rows[0]["avg_after"] == 4.5
    assert rows[1]["avg_before"] == 4.5 and rows[1]["avg_after"] == 4.0
    assert await linked.db.scalar(
        "SELECT deleted_at IS NOT NULL FROM grades WHERE external_id = 'g2'") == 1


async def test_invalid_lines_reject_the_whole_file(linked):
    lines = [*jl(grade(1), grade(2, student="S-9999"),
                 {"id": "x", "type": "grade_deleted", "grade_id": "nope"}), "{not json"]
    with pytest.raises(InputInvalid) as err:
        await run(linked, lines)
    text = [str(p) for p in err.value.problems]
    assert text[0].startswith("j.jsonl:2: student_id: unknown student 'S-9999'")
    assert text[1].startswith("j.jsonl:3: grade_id: unknown grade 'nope'")
    assert text[2].startswith("j.jsonl:4: ")
    assert await linked.db.scalar("SELECT COUNT(*) FROM grades") == 0
    assert await linked.db.scalar("SELECT COUNT(*) FROM journal_events") == 0
    assert await linked.db.scalar("SELECT COUNT(*) FROM outbox") == 0


async def test_skip_invalid_imports_the_rest(linked):
    lines = jl(grade(1), grade(2, 7), grade(3))
    summary, checked = await run(linked, lines, skip_invalid=True)
    assert summary.applied["grade"] == 2 and summary.rejected == 1
    assert list(checked.rejected_lines) == [2]
    assert checked.rejected_lines[2] == lines[1]


async def test_dot_closed_with_value_becomes_a_grade_pushed_as_from_dot(linked):
    await run(linked, jl({"id": "d", "type": "dot", "dot_id": "d1", "student_id": "S-1001",
                          "subject": "Физика", "date": "2026-11-20", "expires": "2026-11-27"}),
              notify=False)
    await run(linked, jl({"id": "dc", "type": "dot_closed", "dot_id": "d1", "value": 4,
                          "weight": 2}))
    rows = [r for r in await outbox(linked) if r["to"] == ANNA]
    assert len(rows) == 1 and rows[0]["from_dot"] is True and rows[0]["value"] == 4
    assert await linked.db.scalar("SELECT status FROM dots") == "graded"


async def test_grades_overview_uses_weighted_average(linked):
    from datetime import date

    await run(linked, jl(grade(1, 5, 2, day="2026-11-10"), grade(2, 4, 1, day="2026-11-11"),
                         grade(3, 3, 3, day="2026-11-12"), grade(4, 5, 1, subject="Физика")),
              notify=False)
    viewer = await linked.access.viewer(ANNA)
    child = next(c for c in viewer.children if c.name.first == "Иван")
    ov = await linked.grades.overview(viewer, child.id, date(2026, 11, 23))
    algebra = next(s for s in ov.subjects if s.subject == "Алгебра")
    assert algebra.average == pytest.approx((10 + 4 + 9) / 6)
    assert [m.value for m in algebra.marks] == [5, 4, 3]


async def test_resent_grade_corrects_subject_and_date_and_a_deleted_one_comes_back_as_new(linked):
    await run(linked, jl(grade(1, 3, subject="Алгебра")), notify=False)
    await run(linked, jl({**grade(1, 3, subject="Геометрия", day="2026-11-22"), "id": "e1b"}))
    row = await linked.db.fetchone("SELECT subject, date FROM grades WHERE external_id = 'g1'")
    assert (row["subject"], row["date"]) == ("Геометрия", "2026-11-22")
    assert [r["kind"] for r in await outbox(linked) if r["to"] == ANNA] == ["grade_changed"]
    await run(linked, jl({"id": "del", "type": "grade_deleted", "grade_id": "g1"}))
    await run(linked, jl({**grade(1, 4, subject="Геометрия"), "id": "e1c"}))
    kinds = [r["kind"] for r in await outbox(linked) if r["to"] == ANNA]
    assert kinds == ["grade_changed", "grade_deleted", "grade_new"]
    await run(linked, jl({"id": "del2", "type": "grade_deleted", "grade_id": "g1"}))
    kinds = [r["kind"] for r in await outbox(linked) if r["to"] == ANNA]
    assert kinds[-1] == "grade_deleted" and kinds.count("grade_deleted") == 2


def dot_event(eid: str, dot_id: str, student: str) -> dict:
    return {"id": eid, "type": "dot", "dot_id": dot_id, "student_id": student,
            "subject": "Физика", "date": "2026-11-23", "expires": "2026-11-27"}


def mark(eid: str, attendance_id: str, student: str) -> dict:
    return {"id": eid, "type": "attendance", "attendance_id": attendance_id,
            "student_id": student, "date": "2026-11-23", "lesson": 2, "subject": "Физика",
            "mark": "absent"}


async def test_an_id_of_one_student_is_never_used_for_another_in_the_same_file(linked):
    lines = jl({**grade(1, 3), "grade_id": "shared-7"},
               {**grade(2, 5, student="S-1002"), "grade_id": "shared-7"},
               dot_event("d1", "dot-7", "S-1001"), dot_event("d2", "dot-7", "S-1002"),
               mark("a1", "att-7", "S-1001"), mark("a2", "att-7", "S-1002"))
    with pytest.raises(InputInvalid) as err:
        await run(linked, lines)
    assert [str(p) for p in err.value.problems] == [
        "j.jsonl:2: grade_id: already used for another student",
        "j.jsonl:4: dot_id: already used for another student",
        "j.jsonl:6: attendance_id: already used for another student",
    ]
    summary, checked = await run(linked, lines, skip_invalid=True)
    assert summary.applied == {"grade": 1, "dot": 1, "attendance": 1}
    assert sorted(checked.rejected_lines) == [2, 4, 6]
    owners = await linked.db.fetchall(
        "SELECT s.external_id FROM grades g JOIN students s ON s.id = g.student_id"
        " UNION ALL SELECT s.external_id FROM dots d JOIN students s ON s.id = d.student_id"
        " UNION ALL SELECT s.external_id FROM attendance a JOIN students s ON s.id = a.student_id")
    assert [r[0] for r in owners] == ["S-1001"] * 3


async def test_an_id_of_one_student_is_never_used_for_another_in_a_later_import(linked):
    await run(linked, jl({**grade(1, 3), "grade_id": "shared-7"},
                         dot_event("d1", "dot-7", "S-1001"), mark("a1", "att-7", "S-1001")))
    before = await outbox(linked)
    lines = jl({**grade(2, 5, student="S-1002"), "grade_id": "shared-7"},
               dot_event("d2", "dot-7", "S-1002"), mark("a2", "att-7", "S-1002"),
               grade(3, student="S-1002"))
    with pytest.raises(InputInvalid) as err:
        await run(linked, lines)
    assert [str(p) for p in err.value.problems] == [
        "j.jsonl:1: grade_id: already used for another student",
        "j.jsonl:2: dot_id: already used for another student",
        "j.jsonl:3: attendance_id: already used for another student",
    ]
    summary, _ = await run(linked, lines, skip_invalid=True)
    assert summary.applied == {"grade": 1} and summary.rejected == 3
    row = await linked.db.fetchone(
        "SELECT g.value, s.external_id FROM grades g JOIN students s ON s.id = g.student_id"
        " WHERE g.external_id = 'shared-7'")
    assert (row["value"], row["external_id"]) == (3, "S-1001")
    assert {r["kind"] for r in (await outbox(linked))[len(before):]} == {"grade_new"}
    # The same student may still correct their own grade by sending it again.
    await run(linked, jl({**grade(4, 4), "grade_id": "shared-7"}))
    assert await linked.db.scalar(
        "SELECT value FROM grades WHERE external_id = 'shared-7'") == 4


async def test_a_rejected_line_does_not_claim_its_id(linked):
    lines = jl({**grade(1, 9), "grade_id": "g-x"},
               {**grade(2, student="S-1002"), "grade_id": "g-x"})
    summary, checked = await run(linked, lines, skip_invalid=True)
    assert summary.applied == {"grade": 1} and list(checked.rejected_lines) == [1]


async def test_two_imports_of_one_file_at_once_apply_it_once(linked, tmp_path, clock):
    from bot.services import build_services
    from core.storage.db import Database
    from tests.support.school import SECRET, TZ

    lines = jl(*(grade(n, 4 + n % 2) for n in range(1, 201)))
    other = await Database(linked.db.url).connect()
    try:
        second = build_services(other, SECRET, TZ, clock)
        results = await asyncio.gather(run(linked, lines), run(second, lines))
    finally:
        await other.close()
    applied = sorted(summary.applied_total for summary, _ in results)
    already = sorted(summary.already_imported for summary, _ in results)
    assert applied == [0, 200] and already == [0, 200]
    assert await linked.db.scalar("SELECT COUNT(*) FROM grades") == 200
    assert await linked.db.scalar("SELECT COUNT(*) FROM outbox") == 400


@pytest.fixture
async def second(linked, clock):
    """The school's services on a second connection (another importer process)."""
    other = await Database(linked.db.url).connect()
    yield build_services(other, SECRET, TZ, clock)
    await other.close()


@pytest.fixture
def paused(linked, monkeypatch):
    """The first service's import stops before it writes anything, holding its locks, until
    ``release`` is set; ``stopped`` is set when it is there."""
    from core.services.journal import _Applier

    stopped, release = asyncio.Event(), asyncio.Event()
    original = _Applier.flush

    async def flush(self):
        if self.svc is linked.journal and not release.is_set():
            stopped.set()
            await release.wait()
        await original(self)

    monkeypatch.setattr(_Applier, "flush", flush)
    return stopped, release


async def test_imports_about_other_children_run_at_the_same_time_on_postgresql(
        linked, second, paused):
    stopped, release = paused
    first = asyncio.create_task(run(linked, jl(grade(1, 5, student="S-1001"))))
    await asyncio.wait_for(stopped.wait(), timeout=30)
    other = asyncio.create_task(run(second, jl(grade(2, 4, student="S-1002"))))
    if linked.db.is_sqlite:  # one writer at a time
        await asyncio.sleep(0.5)
        assert not other.done()
    else:
        summary, _ = await asyncio.wait_for(other, timeout=30)
        assert summary.applied_total == 1 and not first.done()
    release.set()
    await asyncio.gather(first, other)
    assert await linked.db.scalar("SELECT COUNT(*) FROM grades") == 2


@pytest.mark.parametrize("later", ["same child", "a period"])
async def test_an_import_about_the_same_child_or_declaring_a_period_waits(
        linked, second, paused, later):
    stopped, release = paused
    first = asyncio.create_task(run(linked, jl(grade(1, 5, student="S-1001"))))
    await asyncio.wait_for(stopped.wait(), timeout=30)
    lines = jl(grade(2, 3, student="S-1001")) if later == "same child" else jl(Q1, grade(2, 3))
    other = asyncio.create_task(run(second, lines))
    await asyncio.sleep(0.5)
    assert not other.done()
    release.set()
    await asyncio.gather(first, other)
    # The later import's push counts the earlier one's grade.
    pushed = [r for r in await outbox(linked) if r["to"] == ANNA and r["value"] == 3]
    assert [(r["avg_before"], r["avg_after"]) for r in pushed] == [(5, 4)]


async def test_one_grade_id_for_two_children_in_two_imports_at_once_is_written_once(
        linked, second, paused):
    """The two imports lock other children; the id meets itself in the database, and the
    import that meets it is done again alone, which rejects it as a serial import would."""
    stopped, release = paused
    first = asyncio.create_task(run(linked, jl(grade(1, 5, student="S-1001"))))
    await asyncio.wait_for(stopped.wait(), timeout=30)
    other = asyncio.create_task(run(second, jl({**grade(2, 4, student="S-1002"),
                                                "grade_id": "g1"})))
    await asyncio.sleep(0.5)
    release.set()
    results = await asyncio.gather(first, other, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], InputInvalid), results
    assert "already used for another student" in str(failed[0].problems[0])
    assert await linked.db.scalar("SELECT COUNT(*) FROM grades WHERE external_id = 'g1'") == 1


async def test_an_import_about_a_child_it_did_not_lock_is_done_again_alone(linked, monkeypatch):
    from core.services.journal import JournalService

    calls: list[bool] = []
    original = JournalService._import

    async def _import(self, *args, alone):
        calls.append(alone)
        return await original(self, *args, alone=alone)

    async def nothing_locked(self, tx, parsed):
        return set(), set()

    monkeypatch.setattr(JournalService, "_import", _import)
    monkeypatch.setattr(JournalService, "_lock_rows", nothing_locked)
    summary, _ = await run(linked, jl(grade(1, 5)))
    assert summary.applied_total == 1 and summary.pushes == 2
    assert calls == ([True] if linked.db.is_sqlite else [False, True])


async def test_references_that_look_like_identifiers_are_not_echoed(linked):
    lines = jl(grade(1, student="+7 900 555-12-34"),
               {"id": "h", "type": "homework", "homework_id": "h1", "class": "anna@mail.test",
                "subject": "Алгебра", "due": "2026-11-24", "text": "№ 1"},
               {"id": "x", "type": "grade_deleted", "grade_id": "112-233-445 95"},
               {"id": "y", "type": "dot_closed", "dot_id": "89005551234"})
    with pytest.raises(InputInvalid) as err:
        await run(linked, lines)
    hidden = "(not shown: looks like a phone number, SNILS or e-mail)"
    assert [str(p) for p in err.value.problems] == [
        f"j.jsonl:1: student_id: unknown student {hidden} (not on the roster)",
        f"j.jsonl:2: class: unknown class {hidden}",
        f"j.jsonl:3: grade_id: unknown grade {hidden}",
        f"j.jsonl:4: dot_id: unknown dot {hidden}",
    ]


async def test_a_large_mixed_import_pushes_what_importing_event_by_event_pushes(
        linked, tmp_path, clock):
    """Averages are kept in memory while an import writes in sets: the pushes of one big file
    must equal those of the same events imported one at a time (each read from the database),
    whatever mix of old and new grades, subjects, students and corrections it holds."""
    events = [grade(1, 3, 2), grade(2, 5, 1, subject="Физика")]
    for n in range(10, 70):
        student = "S-1001" if n % 3 else "S-1002"
        subject = ("Алгебра", "Физика", "История")[n % 3]
        # Grades set long ago: stored, not announced.
        old = {"day": "2026-10-02", "set_at": "2026-10-02T10:00:00Z"} if n % 7 == 0 else {}
        events.append(grade(n, 2 + n % 4, 1 + n % 3, student=student, subject=subject, **old))
        if n % 11 == 0:
            events.append({"id": f"c{n}", "type": "grade_changed", "grade_id": f"g{n - 1}",
                           "value": 5})
    at_once, one_by_one = await _pushes_at_once_and_one_by_one(linked, tmp_path, clock, [],
                                                               events)
    assert len(at_once) > 60
    assert at_once == one_by_one


async def _pushes_at_once_and_one_by_one(linked, tmp_path, clock, setup, events):
    """The outbox after ``events`` imported as one file, and after the same events imported one
    at a time into a second database (each import reading its sums afresh)."""
    if setup:
        await run(linked, jl(*setup), notify=False)
    await run(linked, jl(*events))
    at_once = await outbox(linked)
    async with Database(tmp_path / "one-by-one.sqlite3") as db:
        await upgrade(db)
        other = build_services(db, SECRET, TZ, clock)
        await import_roster(other)
        await other.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
        await other.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
        await journal_history(other)
        if setup:
            await run(other, jl(*setup), notify=False)
        for event in events:
            await run(other, jl(event))
        one_by_one = await outbox(other)
    return at_once, one_by_one


async def _same_pushes_at_once_and_one_by_one(linked, tmp_path, clock, setup, events):
    at_once, one_by_one = await _pushes_at_once_and_one_by_one(linked, tmp_path, clock, setup,
                                                               events)

    def averages(rows):
        return [(r["kind"], r["value"], r["avg_before"], r["avg_after"]) for r in rows
                if r["to"] == ANNA]

    assert averages(at_once) == averages(one_by_one)
    assert averages(at_once)


SET_AT = "2026-11-23T09:00:00+00:00"
Q1 = {"id": "p1", "type": "period", "period_id": "q1", "name": "1 четверть",
      "start": "2026-09-01", "end": "2026-10-25"}
Q2 = {"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
      "start": "2026-11-05", "end": "2026-12-28"}


async def test_a_grade_in_a_holiday_gap_and_one_of_a_quarter_keep_their_own_sums(
        linked, tmp_path, clock):
    # The gap counts against the school year, which starts on the day the first quarter does.
    await _same_pushes_at_once_and_one_by_one(
        linked, tmp_path, clock, [Q1, Q2, grade(1, 2, 1, day="2026-11-10")],
        [grade(2, 5, 1, day="2026-11-03", set_at=SET_AT),
         grade(3, 5, 1, day="2026-10-10", set_at=SET_AT)])


async def test_a_period_declared_mid_file_changes_the_sums_after_it(linked, tmp_path, clock):
    await _same_pushes_at_once_and_one_by_one(
        linked, tmp_path, clock, [grade(1, 2, 1, day="2026-11-10")],
        [grade(2, 5, 1, day="2026-10-12", set_at=SET_AT), Q1,
         grade(3, 4, 1, day="2026-10-10", set_at=SET_AT)])


async def test_a_mixed_file_with_dots_marks_resent_and_deleted_grades_pushes_the_same(
        linked, tmp_path, clock):
    """Reading in sets ahead of the events stops at every event that settles (a correction, a
    deletion, a closed dot, a grade sent again under a new event id): pushes as one at a time."""
    events = [grade(1, 3, 2), grade(2, 5, 1, subject="Физика", student="S-1002")]
    for n in range(10, 40):
        student = ("S-1001", "S-1002", "S-1003")[n % 3]
        events.append(grade(n, 2 + n % 4, 1 + n % 3, student=student,
                            subject=("Алгебра", "Физика")[n % 2]))
        if n % 5 == 0:
            events.append({"id": f"a{n}", "type": "attendance", "attendance_id": f"m{n}",
                           "student_id": student, "date": "2026-11-23", "lesson": 1 + n % 6,
                           "subject": "Физика", "mark": "absent"})
        if n % 7 == 0:
            events.append({"id": f"d{n}", "type": "dot", "dot_id": f"dot{n}",
                           "student_id": student, "subject": "Алгебра", "date": "2026-11-23",
                           "expires": "2026-11-27"})
        if n % 9 == 1 and n > 10:  # a grade sent again under a new event id: a correction
            events.append({**grade(n - 1, 5, 2, student="S-1001",
                                   subject=("Алгебра", "Физика")[(n - 1) % 2]),
                           "id": f"again{n}"})
        if n % 13 == 0:
            events.append({"id": f"x{n}", "type": "grade_deleted", "grade_id": f"g{n - 2}"})
        if n == 30:
            events.append({"id": "close21", "type": "dot_closed", "dot_id": "dot21",
                           "value": 4})
    at_once, one_by_one = await _pushes_at_once_and_one_by_one(linked, tmp_path, clock, [],
                                                               events)
    kinds = {r["kind"] for r in at_once}
    assert {"grade_new", "grade_changed", "grade_deleted", "dot_new", "attendance"} <= kinds
    assert at_once == one_by_one


async def test_announced_grades_of_many_children_take_a_few_queries_not_some_each(
        services, monkeypatch):
    """The audiences and the subjects' sums of every announced grade are read in sets: the
    number of statements does not grow with the number of children."""
    from core.storage.db import Tx

    children = 60
    header = ("school,class,student_id,student_last_name,student_first_name,"
              "student_middle_name,student_phone,student_email,student_snils,guardian_last_name,"
              "guardian_first_name,guardian_middle_name,guardian_phone,guardian_email,"
              "guardian_snils,guardian_relation")
    rows = [f"Школа,5А,K{n:03d},Иванов,Пётр,,,,,Иванова,Мария,,+7911000{n:04d},,,mother"
            for n in range(children)]
    await import_roster(services, "\n".join([header, *rows]) + "\n")
    for n in range(children):
        await services.linking.support_link(7_000 + n, f"+7911000{n:04d}")
    await run(services, jl(*(grade(n, 4, student=f"K{n % children:03d}", day="2026-10-01")
                             for n in range(1000, 1000 + children))), notify=False)

    statements: list[str] = []
    for name in ("execute", "executemany", "executemany_count"):
        original = getattr(Tx, name)

        async def counted(self, sql, *args, _original=original):
            statements.append(sql)
            return await _original(self, sql, *args)

        monkeypatch.setattr(Tx, name, counted)
    lines = jl(*(grade(n, 5, student=f"K{n % children:03d}",
                       subject=("Алгебра", "Физика")[n % 2]) for n in range(2 * children)))
    summary, _ = await run(services, lines)
    assert summary.pushes == 2 * children
    assert len(statements) < 20, statements
    first = json.loads(await services.db.scalar(
        "SELECT payload FROM outbox WHERE dedup_key = 'grade:g0:new:7000'"))
    assert (first["avg_before"], first["avg_after"]) == (4, 4.5)


async def test_audiences_of_many_children_are_each_childs_audience(linked):
    """Guardians, the student's own account, a trusted person who sees only some scopes, and a
    child nobody follows: read for many children at once as for each alone."""
    from core.errors import DomainError
    from core.models import Scope

    with pytest.raises(DomainError):  # not on the roster, but Telegram vouched for the number
        await linked.linking.link_contact(8001, 8001, 8001, "+7 903 111-22-33")
    viewer = await linked.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    invitation, _, _ = await linked.trusted.invite(viewer, [ivan.id], "+7 903 111-22-33",
                                                   "Иванова", {Scope.ATTENDANCE})
    await linked.trusted.accept(8001, invitation.id)
    children = [r[0] for r in await linked.db.fetchall("SELECT id FROM students ORDER BY id")]
    async with linked.db.read() as tx:
        for scope in (Scope.GRADES, Scope.ATTENDANCE):
            many = await linked.access.audiences(tx, children, scope)
            alone = {c: await linked.access.audience(tx, c, scope) for c in children}
            assert many == alone
        assert 8001 in dict(many[ivan.id])
    assert any(not accounts for accounts in many.values())


# -- lessons: several in one slot, ids, replaced teachers ----------------------------------------


def lesson(eid: str, number: int = 3, day: str = "2026-11-24", **extra) -> dict:
    return {"id": eid, "type": "lesson", "class": "7Б", "date": day, "number": number,
            "subject": "Английский язык", "start": "10:20", "end": "11:05", **extra}


async def lessons(services) -> list[tuple]:
    return [tuple(r) for r in await services.db.fetchall(
        "SELECT date, number, group_name, lesson_id, subject, room, teacher_replaced,"
        " substitute, remote, link FROM lessons ORDER BY date, number, group_name, id")]


async def test_lessons_of_two_groups_in_one_slot_are_both_kept(linked):
    summary, _ = await run(linked, jl(
        lesson("a", lesson_id="L-1", group="1 группа", room="301"),
        lesson("b", lesson_id="L-2", group="2 группа", room="302"),
        lesson("c", number=4, group="1 группа"),  # groups without the journal's ids
        lesson("d", number=4, group="2 группа"),
        lesson("e", number=5, lesson_id="L-5"),  # two lessons of the slot, each with its id
        lesson("f", number=5, lesson_id="L-6", subject="Физика"),
        lesson("g", number=6, subject="Музыка"),  # no id, no group: the slot names it
        lesson("h", number=6, subject="ИЗО"),
    ), notify=False)
    assert summary.applied == {"lesson": 8}
    assert await lessons(linked) == [
        ("2026-11-24", 3, "1 группа", "L-1", "Английский язык", "301", 0, None, 0, None),
        ("2026-11-24", 3, "2 группа", "L-2", "Английский язык", "302", 0, None, 0, None),
        ("2026-11-24", 4, "1 группа", None, "Английский язык", None, 0, None, 0, None),
        ("2026-11-24", 4, "2 группа", None, "Английский язык", None, 0, None, 0, None),
        ("2026-11-24", 5, "", "L-5", "Английский язык", None, 0, None, 0, None),
        ("2026-11-24", 5, "", "L-6", "Физика", None, 0, None, 0, None),
        ("2026-11-24", 6, "", None, "ИЗО", None, 0, None, 0, None),
    ]
    # A group's lesson sent again by its slot and group replaces that group's lesson only.
    await run(linked, jl(lesson("i", number=4, group="2 группа", room="305")), notify=False)
    rooms = await linked.db.fetchall(
        "SELECT group_name, room FROM lessons WHERE number = 4 ORDER BY group_name")
    assert [tuple(r) for r in rooms] == [("1 группа", None), ("2 группа", "305")]


async def test_the_same_lesson_id_updates_the_lesson_even_in_another_slot(linked):
    await run(linked, jl(lesson("a", lesson_id="L-1", group="1 группа"),
                         lesson("b", lesson_id="L-2", group="2 группа")), notify=False)
    await run(linked, jl(lesson("c", number=6, day="2026-11-25", lesson_id="L-1",
                                group="1 группа", room="214", remote=True,
                                link="https://zoom.us/j/1")), notify=False)
    assert await lessons(linked) == [
        ("2026-11-24", 3, "2 группа", "L-2", "Английский язык", None, 0, None, 0, None),
        ("2026-11-25", 6, "1 группа", "L-1", "Английский язык", "214", 0, None, 1,
         "https://zoom.us/j/1"),
    ]


async def test_a_replaced_teacher_tomorrow_is_pushed_to_the_class(linked):
    # Today is Monday 23 November. Анна follows Иван (7Б) and Мария (5А); Иван himself.
    summary, _ = await run(linked, jl(lesson(
        "a", group="1 группа", teacher="Иванова М. П.", teacher_replaced=True,
        substitute="Сидоров П. П.")))
    assert summary.pushes == 2
    rows = await outbox(linked)
    assert sorted(r["to"] for r in rows) == [ANNA, IVAN]
    assert {k: v for k, v in rows[0].items() if k != "to"} == {
        "kind": "lesson_replaced", "subject": "Английский язык", "date": "2026-11-24",
        "number": 3, "start": "10:20", "class": "7Б", "group": "1 группа",
        "teacher": "Иванова М. П.", "substitute": "Сидоров П. П.", "child": "Иван"}
    # The same replacement again is no news; another substitute is.
    summary, _ = await run(linked, jl(lesson(
        "b", group="1 группа", teacher="Иванова М. П.", teacher_replaced=True,
        substitute="Сидоров П. П.", room="214")))
    assert summary.pushes == 0
    summary, _ = await run(linked, jl(lesson(
        "c", group="1 группа", teacher="Иванова М. П.", substitute="Орлов В. С.")))
    assert summary.pushes == 2
    # Next week's replacement is not news yet; today's is.
    summary, _ = await run(linked, jl(lesson("d", day="2026-11-30", substitute="Орлов В. С.")))
    assert summary.pushes == 0
    summary, _ = await run(linked, jl(lesson("e", day="2026-11-23", substitute="Орлов В. С.")))
    assert summary.pushes == 2


async def test_the_replacement_switch_is_each_accounts_own(linked):
    await linked.preferences.set_flag(ANNA, "push_replacements", False)
    summary, _ = await run(linked, jl(lesson("a", substitute="Сидоров П. П."),
                                      lesson("b", number=4, cancelled=True)))
    assert summary.pushes == 3  # Иван both; Анна the cancellation only
    assert [(r["to"], r["kind"]) for r in await outbox(linked)] == [
        (IVAN, "lesson_replaced"), (ANNA, "lesson_cancelled"), (IVAN, "lesson_cancelled")]


# -- homework: placeholders, one student's tasks, links -------------------------------------------


def task(eid: str, text: str = "№ 245", homework_id: str = "h1", **extra) -> dict:
    owner = {} if "student_id" in extra else {"class": "7Б"}
    return {"id": eid, "type": "homework", "homework_id": homework_id, **owner,
            "subject": "Алгебра", "due": "2026-11-24", "text": text, **extra}


async def test_a_placeholder_is_no_homework_and_takes_a_task_back(linked):
    for account in (ANNA, IVAN):
        await linked.preferences.set_flag(account, "push_homework", True)
    summary, _ = await run(linked, jl(task("a", "-", homework_id="h0"),
                                      task("b", " Не задано. ", homework_id="h9")))
    assert summary.applied == {"homework": 2} and summary.pushes == 0
    assert await linked.db.scalar("SELECT COUNT(*) FROM homework") == 0
    summary, _ = await run(linked, jl(task("c")))
    assert summary.pushes == 2
    summary, _ = await run(linked, jl(task("d", "нет")))
    assert summary.pushes == 0
    assert await linked.db.scalar("SELECT COUNT(*) FROM homework") == 0


async def test_one_students_homework_is_pushed_to_that_student_only(linked):
    for account in (ANNA, IVAN):
        await linked.preferences.set_flag(account, "push_homework", True)
    _summary, checked = await run(linked, jl(
        task("a", "Реферат о Пушкине", homework_id="h-maria", student_id="S-1002"),
        task("b", "Исправить ошибки", homework_id="h-ivan", student_id="S-1001",
             links=["https://resh.edu.ru/7", {"url": "https://school.ru/a?b=1&c='2'",
                                              "title": "Памятка"}]),
    ))
    assert checked.problems == []
    rows = await outbox(linked)
    assert [(r["to"], r["child"], r["text"]) for r in rows] == [
        (ANNA, "Мария", "Реферат о Пушкине"),
        (ANNA, "Иван", "Исправить ошибки"), (IVAN, "Иван", "Исправить ошибки")]
    assert all(r["personal"] for r in rows)
    assert rows[1]["links"] == [{"url": "https://resh.edu.ru/7", "title": None},
                                {"url": "https://school.ru/a?b=1&c='2'", "title": "Памятка"}]
    stored = {r[0]: (r[1], r[2], r[3]) for r in await linked.db.fetchall(
        "SELECT h.external_id, h.class_id, s.external_id, h.links FROM homework h"
        " JOIN students s ON s.id = h.student_id")}
    assert stored["h-maria"] == (None, "S-1002", None)
    assert json.loads(stored["h-ivan"][2]) == rows[1]["links"]


async def test_one_students_homework_names_a_known_student(linked):
    with pytest.raises(InputInvalid) as err:
        await run(linked, jl(task("a", student_id="S-9999")))
    assert [str(p) for p in err.value.problems] == [
        "j.jsonl:1: student_id: unknown student 'S-9999' (not on the roster)"]


async def test_a_journal_that_starts_sending_lesson_ids_keeps_one_lesson_a_slot(linked):
    await run(linked, jl(lesson("a", room="301"), lesson("b", number=4)), notify=False)
    await run(linked, jl(lesson("c", lesson_id="L-3", room="302"),
                         lesson("d", lesson_id="L-3b", subject="Физика")), notify=False)
    assert await lessons(linked) == [
        ("2026-11-24", 3, "", "L-3", "Английский язык", "302", 0, None, 0, None),
        ("2026-11-24", 3, "", "L-3b", "Физика", None, 0, None, 0, None),
        ("2026-11-24", 4, "", None, "Английский язык", None, 0, None, 0, None),
    ]
