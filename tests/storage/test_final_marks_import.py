"""Final marks through the journal import, on both backends: what is stored, corrected and
withdrawn, what is pushed, what is refused, and that a re-import changes nothing."""

from __future__ import annotations

import json
import logging

import pytest

from core.errors import InputInvalid
from core.importers.journal import parse_journal
from core.pushes import SCOPES
from core.services.preferences import Preferences
from tests.support.school import ANNA_PHONE, IVAN_PHONE, journal_history

ANNA = 5001
IVAN = 5002

PERIODS = (
    {"id": "p1", "type": "period", "period_id": "q1", "name": "1 четверть",
     "start": "2026-09-01", "end": "2026-10-25"},
    {"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
     "start": "2026-11-05", "end": "2026-12-28"},
)


def jl(*events: dict) -> list[str]:
    return [json.dumps(e, ensure_ascii=False) for e in events]


def final(eid: str, value: object = 5, period: str = "q1", subject: str = "Алгебра",
          student: str = "S-1001", final_id: str = "f1", **extra) -> dict:
    return {"id": eid, "type": "final_grade", "final_id": final_id, "student_id": student,
            "subject": subject, "period_id": period, "value": value, **extra}


def withdrawn(eid: str, final_id: str = "f1") -> dict:
    return {"id": eid, "type": "final_grade_deleted", "final_id": final_id}


async def run(services, lines: list[str], **kw):
    parsed = parse_journal(lines, "j.jsonl")
    return await services.journal.import_journal(parsed, "j.jsonl", dict(enumerate(lines, 1)),
                                                 **kw)


async def outbox(services, to: int | None = None) -> list[dict]:
    rows = await services.db.fetchall(
        "SELECT telegram_id, kind, payload FROM outbox ORDER BY id")
    return [{"to": r[0], "kind": r[1], **json.loads(r[2])} for r in rows
            if to is None or r[0] == to]


async def stored(services, final_id: str = "f1") -> dict:
    row = await services.db.fetchone(
        "SELECT f.subject, p.external_id AS period, f.school_year, f.shown, f.scale, f.points,"
        " f.parts, f.set_at, f.deleted_at IS NOT NULL AS deleted, s.external_id AS student"
        " FROM final_grades f JOIN students s ON s.id = f.student_id"
        " LEFT JOIN periods p ON p.id = f.period_id WHERE f.external_id = ?", (final_id,))
    return dict(row._mapping) if hasattr(row, "_mapping") else dict(row)


@pytest.fixture
async def linked(school):
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await run(school, jl(*PERIODS), notify=False)
    await journal_history(school)  # the students' history came before: what follows is news
    return school


async def test_a_final_mark_is_stored_and_pushed_to_the_family(linked):
    summary, checked = await run(linked, jl(final("e1"), final("e2", "зачёт", "year",
                                                               "Музыка", final_id="f2",
                                                               scale="pass")))
    assert checked.problems == []
    assert summary.applied == {"final_grade": 2} and summary.pushes == 4
    assert await stored(linked) == {
        "subject": "Алгебра", "period": "q1", "school_year": 2026, "shown": "5", "scale": "5",
        "points": 5.0, "parts": 1, "set_at": None, "deleted": 0, "student": "S-1001"}
    year = await stored(linked, "f2")
    assert (year["period"], year["school_year"], year["shown"], year["scale"], year["parts"]) == (
        None, 2026, "зачёт", "pass", 0)
    rows = await outbox(linked)
    assert sorted(r["to"] for r in rows) == [ANNA, ANNA, IVAN, IVAN]
    assert [{k: r[k] for k in ("kind", "child", "subject", "period", "value")}
            for r in rows if r["to"] == ANNA] == [
        {"kind": "final_grade", "child": "Иван", "subject": "Алгебра", "period": "1 четверть",
         "value": "5"},
        {"kind": "final_grade", "child": "Иван", "subject": "Музыка", "period": None,
         "value": "зачёт"},
    ]


async def test_a_correction_is_stored_and_pushed_only_when_what_is_shown_changes(linked):
    await run(linked, jl(final("e1", 4)))
    summary, _ = await run(linked, jl(final("e2", 5)))
    assert summary.applied == {"final_grade": 1}
    assert (await stored(linked))["shown"] == "5"
    changed = [r for r in await outbox(linked, ANNA) if r["kind"] == "final_grade_changed"]
    assert [(r["old_value"], r["value"], r["period"]) for r in changed] == [
        ("4", "5", "1 четверть")]
    # The same mark again, now with its five-point number and a moment: stored, not pushed.
    summary, _ = await run(linked, jl(final("e3", "5", five=5,
                                            set_at="2026-11-23T10:00:00+03:00")))
    assert summary.pushes == 0
    assert (await stored(linked))["set_at"] == "2026-11-23T07:00:00.000000Z"
    # Moved to another period: shown to the family differently, pushed without an old value.
    summary, _ = await run(linked, jl(final("e4", 5, "q2")))
    assert summary.pushes == 2
    last = (await outbox(linked, ANNA))[-1]
    assert last["kind"] == "final_grade_changed" and "old_value" not in last
    assert last["period"] == "2 четверть"


async def test_a_withdrawn_final_mark_is_kept_hidden_and_pushed_and_may_come_back(linked,
                                                                                   caplog):
    caplog.set_level(logging.INFO)
    await run(linked, jl(final("e1", 4)), notify=False)
    summary, _ = await run(linked, jl(withdrawn("d1")))
    assert summary.applied == {"final_grade_deleted": 1} and summary.pushes == 2
    assert (await stored(linked))["deleted"] == 1
    [push] = await outbox(linked, ANNA)
    assert (push["kind"], push["subject"], push["period"], push["value"]) == (
        "final_grade_deleted", "Алгебра", "1 четверть", "4")
    # Withdrawn again: nothing more to say.
    summary, _ = await run(linked, jl(withdrawn("d2")))
    assert summary.applied == {"final_grade_deleted": 1} and summary.pushes == 0
    # Given again: news.
    await run(linked, jl(final("e2", 4)))
    assert (await stored(linked))["deleted"] == 0
    assert [r["kind"] for r in await outbox(linked, ANNA)] == ["final_grade_deleted",
                                                              "final_grade"]
    # PostgreSQL: the child of a withdrawn mark is locked like the others, no retry alone.
    assert not [r for r in caplog.records if "imported again alone" in r.getMessage()]


async def test_a_final_mark_new_and_withdrawn_in_one_file(linked):
    summary, _ = await run(linked, jl(final("e1", 3), final("e2", 4), withdrawn("d1")))
    assert summary.applied == {"final_grade": 2, "final_grade_deleted": 1}
    assert (await stored(linked))["shown"] == "4" and (await stored(linked))["deleted"] == 1
    assert [r["kind"] for r in await outbox(linked, ANNA)] == [
        "final_grade", "final_grade_changed", "final_grade_deleted"]


async def test_a_reimport_changes_nothing_and_sends_nothing(linked):
    lines = jl(final("e1", 4), final("e2", 5, final_id="f2", subject="Физика"), withdrawn("d1"))
    first, _ = await run(linked, lines)
    assert first.pushes == 6
    second, _ = await run(linked, lines)
    assert second.applied_total == 0 and second.already_imported == 3 and second.pushes == 0
    assert await linked.db.scalar("SELECT COUNT(*) FROM final_grades") == 2
    assert await linked.db.scalar("SELECT COUNT(*) FROM outbox") == 6


async def test_unknown_student_period_and_final_mark_are_refused_naming_the_field(linked):
    lines = jl(final("e1"), final("e2", student="S-9999", final_id="f2"),
               final("e3", period="q9", final_id="f3"), withdrawn("d1", "nope"),
               final("e4", period="q3", final_id="f4"),
               {"id": "p3", "type": "period", "period_id": "q3", "name": "3 четверть",
                "start": "2027-01-11", "end": "2027-03-20"},
               final("e5", period="q3", final_id="f5"))
    with pytest.raises(InputInvalid) as err:
        await run(linked, lines)
    assert [str(p) for p in err.value.problems] == [
        "j.jsonl:2: student_id: unknown student 'S-9999' (not on the roster)",
        "j.jsonl:3: period_id: unknown period 'q9' (declare it with a period event first,"
        ' or use "year")',
        "j.jsonl:4: final_id: unknown final mark 'nope'",
        "j.jsonl:5: period_id: unknown period 'q3' (declare it with a period event first,"
        ' or use "year")',
    ]
    # All or nothing.
    assert await linked.db.scalar("SELECT COUNT(*) FROM final_grades") == 0
    assert await linked.db.scalar("SELECT COUNT(*) FROM outbox") == 0
    # Skipping the invalid lines: a period declared before its final marks serves them.
    summary, checked = await run(linked, lines, skip_invalid=True)
    assert summary.applied == {"final_grade": 2, "period": 1}
    assert list(checked.rejected_lines) == [2, 3, 4, 5]
    assert (await stored(linked, "f5"))["period"] == "q3"


async def test_a_final_id_belongs_to_the_student_first_seen_with_it(linked):
    await run(linked, jl(final("e1")), notify=False)
    with pytest.raises(InputInvalid) as err:
        await run(linked, jl(final("e2", 2, student="S-1002")))
    assert [str(p) for p in err.value.problems] == [
        "j.jsonl:1: final_id: already used for another student"]
    with pytest.raises(InputInvalid) as err:
        await run(linked, jl(final("e3", final_id="f9"),
                             final("e4", student="S-1002", final_id="f9")))
    assert [str(p) for p in err.value.problems] == [
        "j.jsonl:2: final_id: already used for another student"]
    assert (await stored(linked))["student"] == "S-1001"


async def test_an_old_final_mark_is_stored_without_a_push(linked):
    summary, _ = await run(linked, jl(
        final("e1", set_at="2026-10-26T10:00:00+03:00"),
        final("e2", final_id="f2", subject="Физика", set_at="2026-11-22T18:00:00+03:00"),
        final("e3", 5, "year", final_id="f3", set_at="2026-06-20T10:00:00+03:00")))
    assert summary.applied == {"final_grade": 3}
    assert [r["subject"] for r in await outbox(linked, ANNA)] == ["Физика"]
    # A year's mark belongs to the school year of its moment: June 2026 closes 2025/26.
    assert (await stored(linked, "f3"))["school_year"] == 2025
    # --no-notify: nothing at all.
    summary, _ = await run(linked, jl(final("e4", final_id="f4", subject="Химия")),
                           notify=False)
    assert summary.pushes == 0


async def test_the_grades_switch_silences_final_marks():
    for kind in ("final_grade", "final_grade_changed", "final_grade_deleted"):
        assert not Preferences(push_grades=False).allows(kind, 1)
        assert Preferences().allows(kind, 1)
        assert not Preferences(muted_children=frozenset({1})).allows(kind, 1)
        assert SCOPES[kind].value == "grades"
