"""Marks as e-diaries send them (NetSchool, МЭШ, Dnevnik.ru): stored as shown, averaged by what
they count as; marks that carry a dot; what is news and what is a new school's history."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from core.importers.journal import parse_journal
from core.services.grades import Period, subject_sums
from tests.support.school import ANNA_PHONE, IVAN_PHONE, ROOT, TZ, journal_history

ANNA, IVAN = 5001, 5002
NETSCHOOL_WEEK = ROOT / "tests" / "data" / "netschool_week.jsonl"
QUARTER = Period("q2", "2 четверть", date(2026, 11, 5), date(2026, 12, 28))


def jl(*events: dict) -> list[str]:
    return [json.dumps(e, ensure_ascii=False) for e in events]


def grade(n: int, value: object = 5, weight: int = 1, student: str = "S-1001",
          subject: str = "Алгебра", day: str = "2026-11-23", **extra) -> dict:
    return {"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": student,
            "subject": subject, "date": day, "value": value, "weight": weight, **extra}


async def run(services, lines: list[str], **kw):
    parsed = parse_journal(lines, "j.jsonl")
    return await services.journal.import_journal(parsed, "j.jsonl", dict(enumerate(lines, 1)),
                                                 **kw)


async def outbox(services, kind: str | None = None) -> list[dict]:
    rows = await services.db.fetchall("SELECT telegram_id, kind, payload FROM outbox ORDER BY id")
    return [{"to": r[0], "kind": r[1], **json.loads(r[2])} for r in rows
            if kind is None or r[1] == kind]


async def sums(services, student: str = "S-1001", subject: str = "Алгебра"):
    sid = await services.db.scalar("SELECT id FROM students WHERE external_id = ?", (student,))
    async with services.db.read() as tx:
        return await subject_sums(tx, sid, subject, QUARTER)


@pytest.fixture
async def family(school):
    """Ivan's family linked; the first journal data of the school is still to come."""
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    return school


@pytest.fixture
async def linked(family):
    """The family, with the school's journal history imported before."""
    await journal_history(family)
    return family


# -- a new school's history, and what is news -----------------------------------------------------


async def pushes(services) -> list[tuple]:
    """(recipient, kind, child, what, when it may go) of every queued push, in order."""
    rows = await services.db.fetchall(
        "SELECT telegram_id, kind, payload, not_before FROM outbox ORDER BY id")
    out = []
    for to, kind, payload, not_before in rows:
        p = json.loads(payload)
        what = p.get("mark") or p.get("value") or p["subject"]
        out.append((to, kind, p["child"], what, not_before))
    return out


async def test_in_a_students_history_what_is_recent_is_news_and_waits_for_the_window(
        family, clock):
    # Ivan's first journal data: today's mark, a dot and an absence of today are news; a mark
    # of three weeks ago is history. The news waits for the window's end (an hour on).
    summary, _ = await run(family, jl(
        grade(1, 5), grade(2, 4, day="2026-11-02"),
        {"id": "d1", "type": "dot", "dot_id": "d1", "student_id": "S-1001",
         "subject": "Физика", "date": "2026-11-23", "expires": "2026-11-27"},
        {"id": "a1", "type": "attendance", "attendance_id": "a1", "student_id": "S-1001",
         "date": "2026-11-23", "lesson": 2, "subject": "Физика", "mark": "absent"}))
    assert summary.applied == {"grade": 2, "dot": 1, "attendance": 1}
    end = "2026-11-23T10:00:00.000000Z"
    assert await pushes(family) == [
        (ANNA, "grade_new", "Иван", 5, end), (IVAN, "grade_new", "Иван", 5, end),
        (ANNA, "dot_new", "Иван", "Физика", end), (IVAN, "dot_new", "Иван", "Физика", end),
        (ANNA, "attendance", "Иван", "absent", end)]
    assert summary.pushes == 5
    quiet = await family.db.fetchall("SELECT external_id FROM grades WHERE quiet = 1")
    assert [r[0] for r in quiet] == ["g2"]
    since = dict(await family.db.fetchall("SELECT external_id, journal_since FROM students"))
    assert since["S-1001"] == "2026-11-23T09:00:00.000000Z"
    assert since["S-1002"] is None  # nothing of hers came yet

    # Within the hour the journal may still be posting his history in batches: an old mark
    # stays silent, a recent one joins the same message (it waits for the same moment); a
    # correction of a history mark is history too, one of an announced mark is news.
    clock.moment += timedelta(minutes=59)
    summary, _ = await run(family, jl(
        grade(5, 4, day="2026-09-15"), grade(6, 3, day="2026-11-20"),
        {"id": "c2", "type": "grade_changed", "grade_id": "g2", "value": 3},
        {"id": "c1", "type": "grade_changed", "grade_id": "g1", "value": 4}))
    assert summary.pushes == 4
    assert (await pushes(family))[5:] == [
        (ANNA, "grade_new", "Иван", 3, end), (IVAN, "grade_new", "Иван", 3, end),
        (ANNA, "grade_changed", "Иван", 4, end), (IVAN, "grade_changed", "Иван", 4, end)]
    assert await family.db.scalar(
        "SELECT journal_since FROM students WHERE external_id = 'S-1001'") == (
        "2026-11-23T09:00:00.000000Z")  # the window runs from the first data

    # After it, Ivan's news goes at once, a correction of history too; Maria's first data is
    # her history: her mark of today waits for her own window.
    clock.moment += timedelta(minutes=2)
    summary, _ = await run(family, jl(
        grade(3, 3), grade(4, 5, student="S-1002"),
        {"id": "c5", "type": "grade_changed", "grade_id": "g5", "value": 5}))
    assert (await pushes(family))[9:] == [
        (ANNA, "grade_new", "Иван", 3, "2026-11-23T10:01:00.000000Z"),
        (IVAN, "grade_new", "Иван", 3, "2026-11-23T10:01:00.000000Z"),
        (ANNA, "grade_new", "Мария", 5, "2026-11-23T11:01:00.000000Z"),
        (ANNA, "grade_changed", "Иван", 5, "2026-11-23T10:01:00.000000Z"),
        (IVAN, "grade_changed", "Иван", 5, "2026-11-23T10:01:00.000000Z")]
    assert await family.db.scalar(
        "SELECT journal_since FROM students WHERE external_id = 'S-1002'") == (
        "2026-11-23T10:01:00.000000Z")


async def test_in_a_students_history_a_mark_without_set_at_is_news_by_its_date(family, clock):
    summary, _ = await run(family, jl(
        grade(1, 5, day="2026-11-20"),  # three days ago: within RELEVANCE_DAYS
        grade(2, 4, day="2026-11-19"),  # four days ago: history
        grade(3, 3, day="2026-10-01", set_at="2026-11-22T10:00:00+03:00"),  # set yesterday
        grade(4, 2, day="2026-11-23", set_at="2026-11-02T10:00:00+03:00")))  # set long ago
    assert summary.pushes == 4
    assert sorted({r[3] for r in await pushes(family)}) == [3, 5]


async def test_corrections_alone_in_a_students_history_keep_its_rule(family, clock):
    await run(family, jl(grade(1, 5), grade(2, 4, day="2026-11-02"),
                         {"id": "d1", "type": "dot", "dot_id": "d1", "student_id": "S-1001",
                          "subject": "Физика", "date": "2026-10-01", "expires": "2026-12-01"}))
    assert len(await pushes(family)) == 2  # today's mark to Anna and Ivan; the old dot is history
    clock.moment += timedelta(minutes=30)
    summary, _ = await run(family, jl(
        {"id": "c2", "type": "grade_changed", "grade_id": "g2", "value": 3},
        {"id": "c1", "type": "grade_changed", "grade_id": "g1", "value": 4},
        {"id": "x1", "type": "dot_closed", "dot_id": "d1", "value": 5}))
    # The quiet mark's correction and the old dot's end are history; the announced mark's
    # correction is news and waits with the rest for the window's end.
    assert summary.pushes == 2
    assert (await pushes(family))[2:] == [
        (ANNA, "grade_changed", "Иван", 4, "2026-11-23T10:00:00.000000Z"),
        (IVAN, "grade_changed", "Иван", 4, "2026-11-23T10:00:00.000000Z")]


async def test_history_loaded_without_pushes_ends_an_open_window(family, clock):
    await run(family, jl(grade(1, 5)))
    clock.moment += timedelta(minutes=5)
    await run(family, jl(grade(2, 4, day="2026-10-02")), notify=False)
    summary, _ = await run(family, jl(grade(3, 3)))
    assert summary.pushes == 2
    assert (await pushes(family))[2:] == [
        (ANNA, "grade_new", "Иван", 3, "2026-11-23T09:05:00.000000Z"),
        (IVAN, "grade_new", "Иван", 3, "2026-11-23T09:05:00.000000Z")]


async def test_in_a_students_history_a_mark_for_a_lesson_ahead_is_news(family, clock):
    summary, _ = await run(family, jl(grade(1, 5, day="2026-11-25")))
    assert summary.pushes == 2


async def test_an_announced_final_mark_withdrawn_in_the_history_is_pushed(family, clock):
    period = {"id": "p1", "type": "period", "period_id": "q1", "name": "1 четверть",
              "start": "2026-09-01", "end": "2026-10-25"}
    await run(family, jl(period), notify=False)
    await run(family, jl(
        {"id": "f1", "type": "final_grade", "final_id": "f1", "student_id": "S-1001",
         "subject": "Алгебра", "period_id": "q1", "value": 4,
         "set_at": "2026-11-23T10:00:00+03:00"},
        {"id": "f2", "type": "final_grade", "final_id": "f2", "student_id": "S-1001",
         "subject": "Физика", "period_id": "q1", "value": 3}))
    assert [r[1:4] for r in await pushes(family)] == [
        ("final_grade", "Иван", "4"), ("final_grade", "Иван", "4")]
    clock.moment += timedelta(minutes=10)
    summary, _ = await run(family, jl(
        {"id": "f1x", "type": "final_grade_deleted", "final_id": "f1"},
        {"id": "f2x", "type": "final_grade_deleted", "final_id": "f2"}))
    assert summary.pushes == 2  # the withdrawn mark that was announced; f2 was history
    assert [r[1] for r in await pushes(family)][2:] == ["final_grade_deleted"] * 2


async def test_history_alone_pushes_nothing_ever(family, clock):
    """A term's marks, old final marks and old absences of a new student: all history."""
    summary, _ = await run(family, jl(
        {"id": "p1", "type": "period", "period_id": "q1", "name": "1 четверть",
         "start": "2026-09-01", "end": "2026-10-25"},
        *(grade(n, 3 + n % 3, day=f"2026-10-{n:02d}") for n in range(1, 20)),
        {"id": "f1", "type": "final_grade", "final_id": "f1", "student_id": "S-1001",
         "subject": "Алгебра", "period_id": "q1", "value": 4},
        {"id": "a1", "type": "attendance", "attendance_id": "a1", "student_id": "S-1001",
         "date": "2026-10-05", "lesson": 2, "subject": "Физика", "mark": "absent"}))
    assert summary.pushes == 0 and await outbox(family) == []


async def test_first_data_stored_with_no_notify_is_history_too(family):
    await run(family, jl(grade(1, 5)), notify=False)
    summary, _ = await run(family, jl(grade(2, 4)))
    assert summary.pushes == 2


async def test_a_mark_put_today_for_last_weeks_lesson_is_news(linked):
    summary, _ = await run(linked, jl(grade(1, 4, day="2026-11-13", work="Контрольная работа")))
    rows = await outbox(linked, "grade_new")
    assert summary.pushes == 2 and [r["date"] for r in rows] == ["2026-11-13"] * 2
    assert await linked.db.scalar("SELECT quiet FROM grades") == 0


async def test_a_mark_set_long_ago_is_stored_silently(linked):
    summary, _ = await run(linked, jl(
        grade(1, 4, day="2026-11-13", set_at="2026-11-13T10:00:00+03:00"),
        grade(2, 5, day="2026-11-13", set_at="2026-11-21T10:00:00+03:00")))
    assert summary.pushes == 2  # only g2: set two days ago, within RELEVANCE_DAYS
    assert {r["value"] for r in await outbox(linked)} == {5}


async def test_a_dot_for_an_old_lesson_that_is_still_open_is_news(linked):
    await run(linked, jl({"id": "d1", "type": "dot", "dot_id": "d1", "student_id": "S-1001",
                          "subject": "Физика", "date": "2026-11-13", "expires": "2026-11-27"}))
    assert len(await outbox(linked, "dot_new")) == 2


# -- marks as schools show them ------------------------------------------------------------------


async def test_marks_are_stored_as_shown_with_what_they_count_as(linked):
    await run(linked, jl(grade(1, "4-"), grade(2, "5/4", 2), grade(3, "зачёт"),
                         grade(4, 5, 0), grade(5, 8, scale=10), grade(6, 72, scale=100, five=4.5),
                         grade(7, "н/а", 0)))
    rows = await linked.db.fetchall(
        "SELECT external_id, value, shown, scale, points, parts, weight FROM grades"
        " ORDER BY external_id")
    assert [tuple(r) for r in rows] == [
        ("g1", 4, "4-", "5", 4.0, 1, 1),
        ("g2", 5, "5/4", "5", 9.0, 2, 2),
        ("g3", None, "зачёт", "5", 0.0, 0, 1),
        ("g4", 5, "5", "5", 5.0, 1, 0),
        ("g5", 4, "8", "10", 4.0, 1, 1),
        ("g6", 5, "72", "100", 4.5, 1, 1),
        ("g7", None, "н/а", "5", 0.0, 0, 0),
    ]
    # 4- (4), 5/4 of weight 2 (5·2 + 4·2), 8 of 10 (4), 72 of 100 given as 4.5:
    # (4 + 18 + 4 + 4.5) / (1 + 4 + 1 + 1); the 5 of weight 0, «зачёт» and «н/а» left out.
    total, weights = await sums(linked)
    assert (total, weights) == (30.5, 7)


async def test_pushes_carry_the_mark_as_shown_and_whether_it_counts(linked):
    await run(linked, jl(grade(1, 4, 1, day="2026-11-20")), notify=False)
    await run(linked, jl(grade(2, "5/4", 1), grade(3, 5, 0), grade(4, "зачёт"),
                         grade(5, 9, scale=10)))
    rows = [r for r in await outbox(linked, "grade_new") if r["to"] == ANNA]
    assert [(r["shown"], r["counted"], r.get("scale")) for r in rows] == [
        ("5/4", True, None), ("5", False, None), ("зачёт", False, None), ("9", True, "10")]
    assert [r["value"] for r in rows] == [5, 5, None, 5]
    five_four = rows[0]
    assert five_four["avg_before"] == 4 and five_four["avg_after"] == pytest.approx(13 / 3)
    assert rows[1]["avg_before"] == rows[1]["avg_after"] == pytest.approx(13 / 3)
    assert rows[2]["avg_after"] == pytest.approx(13 / 3)
    assert rows[3]["avg_after"] == pytest.approx(18 / 4)


async def test_corrections_move_the_average_by_what_marks_count_as(linked):
    await run(linked, jl(grade(1, 4), grade(2, 5)), notify=False)
    await run(linked, jl({"id": "c1", "type": "grade_changed", "grade_id": "g1", "weight": 0},
                         {"id": "c2", "type": "grade_changed", "grade_id": "g2",
                          "value": "5/3"}))
    rows = [r for r in await outbox(linked, "grade_changed") if r["to"] == ANNA]
    assert [(r["old_shown"], r["shown"], r["counted"]) for r in rows] == [
        ("4", "4", False), ("5", "5/3", True)]
    assert (rows[0]["avg_before"], rows[0]["avg_after"]) == (4.5, 5.0)
    assert (rows[1]["avg_before"], rows[1]["avg_after"]) == (5.0, 4.0)
    await run(linked, jl({"id": "x1", "type": "grade_deleted", "grade_id": "g2"}))
    [deleted] = [r for r in await outbox(linked, "grade_deleted") if r["to"] == ANNA]
    assert (deleted["shown"], deleted["avg_before"], deleted["avg_after"]) == ("5/3", 4.0, None)


async def test_a_dot_becomes_the_text_mark_it_carries(linked, clock):
    await run(linked, jl({"id": "d1", "type": "dot", "dot_id": "d1", "student_id": "S-1001",
                          "subject": "Физика", "date": "2026-11-23", "expires": "2026-11-24",
                          "value": "н/а", "weight": 0},
                         {"id": "d2", "type": "dot", "dot_id": "d2", "student_id": "S-1001",
                          "subject": "Физика", "date": "2026-11-23", "expires": "2026-11-30"}))
    clock.moment = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    result = await linked.dots.run()
    assert (result.graded, result.vanished) == (1, 0)
    row = await linked.db.fetchone("SELECT value, shown, weight, parts, dot_id FROM grades")
    assert tuple(row)[:4] == (None, "н/а", 0, 0) and row["dot_id"] is not None
    await run(linked, jl({"id": "c2", "type": "dot_closed", "dot_id": "d2", "value": "4+",
                          "weight": 2}))
    shown = [r[0] for r in await linked.db.fetchall("SELECT shown FROM grades ORDER BY id")]
    assert shown == ["н/а", "4+"]
    assert await sums(linked, subject="Физика") == (8.0, 2)


async def test_a_week_of_netschool_marks_imports_without_a_rejected_line(linked):
    lines = NETSCHOOL_WEEK.read_text(encoding="utf-8").splitlines()
    summary, checked = await run(linked, lines)
    assert checked.problems == [] and summary.rejected == 0
    assert summary.applied == {"grade": len(lines)}
    shown = {r[0] for r in await linked.db.fetchall("SELECT shown FROM grades")}
    assert {"н/а", "зачёт", "5/4", "4-", "осв."} <= shown
    assert await linked.db.scalar("SELECT COUNT(*) FROM grades WHERE weight = 0") == 6
    # Алгебра: 5×1, 4-×2, 5/4×3 and «н/а» of weight 0: (5 + 8 + 27) / (1 + 2 + 6).
    total, weights = await sums(linked)
    assert (total, weights) == (40.0, 9)
    assert await sums(linked, subject="Физическая культура") == (0.0, 0)


# -- МЭШ: a mark that carries a dot ---------------------------------------------------------------


async def test_a_mark_with_a_dot_is_listed_reminded_and_cleared_after_its_day(linked, clock):
    await run(linked, jl(grade(1, 3, point_until="2026-11-26", work="Контрольная работа")))
    [push] = [r for r in await outbox(linked, "grade_new") if r["to"] == ANNA]
    assert (push["shown"], push["point_until"], push["days_left"]) == ("3", "2026-11-26", 3)
    assert push["avg_after"] == 3.0  # it counts while the dot is open, as МЭШ shows it

    viewer = await linked.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")

    async def listed() -> list[tuple[str, str | None, date]]:
        [entry] = [e for e in await linked.dots.open_dots(viewer) if e.child.id == ivan.id]
        return [(d.subject, d.mark, d.expires) for d in entry.dots]

    assert await listed() == [("Алгебра", "3", date(2026, 11, 26))]
    # Reminders as for dots: the student two days before, student and parents on the last day.
    clock.moment = datetime(2026, 11, 24, 7, 0, tzinfo=TZ)
    await linked.dots.run()
    reminders = await outbox(linked, "dot_reminder")
    assert [(r["to"], r["days_left"], r["mark"]) for r in reminders] == [(IVAN, 2, "3")]
    clock.moment = datetime(2026, 11, 26, 7, 0, tzinfo=TZ)
    await linked.dots.run()
    await linked.dots.run()  # twice: each reminder once
    reminders = await outbox(linked, "dot_reminder")
    assert sorted((r["to"], r["days_left"]) for r in reminders) == [
        (ANNA, 0), (IVAN, 0), (IVAN, 2)]
    assert await listed() == [("Алгебра", "3", date(2026, 11, 26))]  # open all its last day

    clock.moment = datetime(2026, 11, 27, 7, 0, tzinfo=TZ)
    result = await linked.dots.run()
    assert (result.graded, result.vanished) == (0, 0)  # nothing converted: the mark stays
    assert await listed() == []
    assert await linked.db.scalar("SELECT COUNT(*) FROM grades") == 1
    assert await sums(linked) == (3.0, 1)


async def test_a_correction_sets_or_clears_a_marks_dot(linked, clock):
    await run(linked, jl(grade(1, 2)), notify=False)
    await run(linked, jl({"id": "c1", "type": "grade_changed", "grade_id": "g1",
                          "point_until": "2026-11-30"}))
    [set_] = [r for r in await outbox(linked, "grade_changed") if r["to"] == ANNA]
    assert (set_["point_until"], set_["days_left"], set_["shown"]) == ("2026-11-30", 7, "2")
    assert await linked.db.scalar("SELECT point_until FROM grades") == "2026-11-30"
    await run(linked, jl({"id": "c2", "type": "grade_changed", "grade_id": "g1",
                          "point_until": None, "value": 4}))
    cleared = [r for r in await outbox(linked, "grade_changed") if r["to"] == ANNA][-1]
    assert cleared["point_cleared"] is True and "point_until" not in cleared
    assert (cleared["old_shown"], cleared["shown"]) == ("2", "4")
    assert await linked.db.scalar("SELECT point_until FROM grades") is None
    # The grade sent again in full with a dot puts it back.
    await run(linked, jl({**grade(1, 4, point_until="2026-12-01"), "id": "again"}))
    assert await linked.db.scalar("SELECT point_until FROM grades") == "2026-12-01"


async def test_open_dots_and_marks_with_dots_are_listed_by_deadline(linked):
    await run(linked, jl(
        {"id": "d1", "type": "dot", "dot_id": "d1", "student_id": "S-1001",
         "subject": "Физика", "date": "2026-11-23", "expires": "2026-11-28"},
        grade(1, "4", point_until="2026-11-25", subject="Химия"),
        grade(2, "5", point_until="2026-11-20", day="2026-11-18"),  # its dot has ended
    ), notify=False)
    viewer = await linked.access.viewer(ANNA)
    [entry] = [e for e in await linked.dots.open_dots(viewer) if e.child.name.first == "Иван"]
    assert [(d.subject, d.mark, d.days_left) for d in entry.dots] == [
        ("Химия", "4", 2), ("Физика", None, 5)]


async def test_the_digest_shows_marks_as_shown_and_lists_marks_with_a_dot(linked, clock):
    from bot.i18n import create_i18n
    from bot.notify import digest

    await run(linked, jl(grade(1, 4, day="2026-11-20")), notify=False)
    await run(linked, jl(grade(2, "н/а", 0, work="Тест"),
                         grade(3, "3", subject="Химия", point_until="2026-11-25")))
    clock.moment = datetime(2026, 11, 23, 19, 0, tzinfo=TZ)
    assert (await linked.digest.run()).sent == 2
    [payload] = [json.loads(r[0]) for r in await linked.db.fetchall(
        "SELECT payload FROM outbox WHERE kind = 'digest' AND telegram_id = ?", (ANNA,))]
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        text, _ = digest(payload)
    assert "• Алгебра: н/а (вес 0, Тест, не учитывается в среднем) — средний 4,00 → 4,00" in text
    assert "• Химия: 3 (вес 1) — средний 3,00 (первая оценка)" in text
    assert "Открытые точки:\n• Химия: до 25 ноября, осталось 2 дня" in text
