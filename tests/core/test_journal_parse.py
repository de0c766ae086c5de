"""Journal JSON Lines parser: every event type, defaults, every kind of problem, file handling."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from core.importers.journal import (
    AttendanceEvent,
    DotClosedEvent,
    DotEvent,
    GradeChangedEvent,
    GradeDeletedEvent,
    GradeEvent,
    HomeworkEvent,
    LessonEvent,
    Link,
    ParsedJournal,
    PeriodEvent,
    parse_event,
    parse_journal,
)
from core.marks import Mark, parse_mark

FILE = "j.jsonl"
FIVE = "must be from 1 to 5 on the five-point scale (or set scale)"


def mark(value: object, scale: object = None, five: object = None) -> Mark:
    found = parse_mark(value, scale, five)
    assert isinstance(found, Mark)
    return found

GRADE = {
    "id": "e-1", "type": "grade", "grade_id": "g-1", "student_id": "S-1", "subject": "Алгебра",
    "date": "2026-11-10", "value": 4,
}
DOT = {
    "id": "e-2", "type": "dot", "dot_id": "d-1", "student_id": "S-1", "subject": "Физика",
    "date": "2026-11-18", "expires": "2026-11-25",
}
ATTENDANCE = {
    "id": "e-3", "type": "attendance", "attendance_id": "a-1", "student_id": "S-1",
    "date": "2026-11-19", "lesson": 2, "subject": "Физика", "mark": "absent",
}
HOMEWORK = {
    "id": "e-4", "type": "homework", "homework_id": "h-1", "class": "7Б", "subject": "Алгебра",
    "due": "2026-11-24", "text": "№ 245",
}
LESSON = {
    "id": "e-5", "type": "lesson", "class": "7Б", "date": "2026-11-24", "number": 1,
    "subject": "Алгебра", "start": "08:30", "end": "09:15",
}
PERIOD = {
    "id": "e-6", "type": "period", "period_id": "q1", "name": "1 четверть",
    "start": "2026-09-01", "end": "2026-10-25",
}


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def parse(*objects: Any) -> ParsedJournal:
    return parse_journal([dump(o) for o in objects], FILE)


def one(obj: dict[str, Any], **changes: Any) -> Any:
    """Parse a single object (``changes`` applied, ``_DROP`` removes a key); expect no problem."""
    result = parse(_with(obj, **changes))
    assert [str(p) for p in result.problems] == []
    assert len(result.events) == 1
    return result.events[0]


def problems(obj: Any, **changes: Any) -> list[str]:
    """Parse a single object (with ``changes`` applied) that must be rejected."""
    result = parse(_with(obj, **changes) if isinstance(obj, dict) else obj)
    assert result.events == []
    assert list(result.rejected_lines) == [1]
    return [str(p) for p in result.problems]


def problems_raw(raw: str) -> list[str]:
    """Parse one raw line that must be rejected."""
    result = parse_journal([raw], FILE)
    assert result.events == [] and result.rejected_lines == {1: raw}
    return [str(p) for p in result.problems]


_DROP = object()


def _with(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(obj)
    for key, value in changes.items():
        key = key.rstrip("_")  # class_ -> class
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# -- one valid line of each type ----------------------------------------------------------------


def test_grade_with_every_field():
    event = one(GRADE, weight=2, work=" Контрольная работа ", comment="Молодец",
                teacher="Иванова М. П.", set_at="2026-11-10T12:30:00+03:00")
    assert event == GradeEvent(
        id="e-1", line=1, grade_id="g-1", student_id="S-1", subject="Алгебра",
        date=date(2026, 11, 10), value=mark(4), weight=2, work="Контрольная работа",
        comment="Молодец",
        teacher="Иванова М. П.", set_at=datetime(2026, 11, 10, 9, 30, tzinfo=UTC),
    )


def test_grade_changed():
    event = one({"id": "e-7", "type": "grade_changed", "grade_id": "g-1", "value": 5,
                 "comment": "Исправлено"})
    assert event == GradeChangedEvent(
        id="e-7", line=1, grade_id="g-1", value=mark(5), weight=None, work=None,
        comment="Исправлено",
        fields=frozenset({"value", "comment"}),
    )


def test_grade_deleted():
    event = one({"id": "e-8", "type": "grade_deleted", "grade_id": "g-1"})
    assert event == GradeDeletedEvent(id="e-8", line=1, grade_id="g-1")


def test_dot_with_every_field():
    event = one(DOT, work="Лабораторная работа", comment="Сдать отчёт", teacher="Орлов В. С.",
                value=2, weight=3)
    assert event == DotEvent(
        id="e-2", line=1, dot_id="d-1", student_id="S-1", subject="Физика",
        date=date(2026, 11, 18), expires=date(2026, 11, 25), work="Лабораторная работа",
        comment="Сдать отчёт", teacher="Орлов В. С.", value=mark(2), weight=3,
    )


def test_dot_closed():
    event = one({"id": "e-9", "type": "dot_closed", "dot_id": "d-1", "value": 3, "weight": 2})
    assert event == DotClosedEvent(id="e-9", line=1, dot_id="d-1", value=mark(3), weight=2)
    bare = one({"id": "e-9", "type": "dot_closed", "dot_id": "d-1"})
    assert bare == DotClosedEvent(id="e-9", line=1, dot_id="d-1", value=None, weight=None)


def test_attendance():
    event = one(ATTENDANCE, mark="late", excused=True)
    assert event == AttendanceEvent(
        id="e-3", line=1, attendance_id="a-1", student_id="S-1", date=date(2026, 11, 19),
        lesson=2, subject="Физика", mark="late", excused=True,
    )


def test_homework():
    event = one(HOMEWORK, class_=" 7 б ", required=False, updated_at="2026-11-20T15:30:00+03:00")
    assert event == HomeworkEvent(
        id="e-4", line=1, homework_id="h-1", class_name="7Б", subject="Алгебра",
        due=date(2026, 11, 24), text="№ 245", required=False,
        updated_at=datetime(2026, 11, 20, 12, 30, tzinfo=UTC),
    )


def test_lesson():
    event = one(LESSON, room="214", teacher="Иванова М. П.", cancelled=True, class_="11a")
    assert event == LessonEvent(
        id="e-5", line=1, class_name="11A", date=date(2026, 11, 24), number=1,
        subject="Алгебра", start=time(8, 30), end=time(9, 15), room="214",
        teacher="Иванова М. П.", cancelled=True,
    )


def test_period():
    event = one(PERIOD)
    assert event == PeriodEvent(id="e-6", line=1, period_id="q1", name="1 четверть",
                                start=date(2026, 9, 1), end=date(2026, 10, 25))
    same_day = one(PERIOD, end="2026-09-01")
    assert same_day.end == same_day.start


def test_all_types_in_one_file_keep_order_and_line_numbers():
    objects = [GRADE, DOT, ATTENDANCE, HOMEWORK, LESSON, PERIOD]
    result = parse(*objects)
    assert [e.id for e in result.events] == [o["id"] for o in objects]
    assert [e.line for e in result.events] == [1, 2, 3, 4, 5, 6]
    assert result.lines == 6 and result.problems == [] and result.rejected_lines == {}
    assert result.duplicates == 0


def test_events_are_frozen_and_slotted():
    event = one(GRADE)
    with pytest.raises(AttributeError):
        event.value = 5
    assert not hasattr(event, "__dict__")


# -- defaults and optional fields ---------------------------------------------------------------


def test_defaults():
    grade = one(GRADE)
    assert (grade.weight, grade.work, grade.comment, grade.teacher, grade.set_at) == (
        1, None, None, None, None)
    dot = one(DOT)
    assert (dot.weight, dot.value, dot.work) == (1, None, None)
    assert one(ATTENDANCE).excused is False
    homework = one(HOMEWORK)
    assert homework.required is True and homework.updated_at is None
    lesson = one(LESSON)
    assert lesson.cancelled is False and lesson.room is None and lesson.teacher is None


def test_null_means_absent_for_optional_fields():
    grade = one(GRADE, weight=None, work=None, comment=None, teacher=None, set_at=None)
    assert (grade.weight, grade.work, grade.comment, grade.set_at) == (1, None, None, None)
    assert one(ATTENDANCE, excused=None).excused is False
    assert one(HOMEWORK, required=None).required is True


def test_blank_optional_text_is_none_and_text_is_stripped():
    grade = one(GRADE, work="   ", comment="", teacher="  Иванова  ", subject="  Алгебра ")
    assert grade.work is None and grade.comment is None
    assert grade.teacher == "Иванова" and grade.subject == "Алгебра"


def test_unknown_fields_are_ignored():
    event = one(GRADE, source="journal-v2", extra={"nested": [1, 2]}, value=5)
    assert event.value == mark(5)


def test_numeric_ids_become_strings():
    event = one(GRADE, id=17, grade_id=42, student_id=1001)
    assert (event.id, event.grade_id, event.student_id) == ("17", "42", "1001")


def test_ids_are_stripped():
    assert one(GRADE, id="  e-1 ").id == "e-1"


def test_mark_aliases():
    assert one(ATTENDANCE, mark="н").mark == "absent"
    assert one(ATTENDANCE, mark="оп").mark == "late"
    assert one(ATTENDANCE, mark=" Absent ").mark == "absent"
    assert one(ATTENDANCE, mark="Н").mark == "absent"


def test_grade_changed_fields_and_clearing():
    base = {"id": "c", "type": "grade_changed", "grade_id": "g-1"}
    weight_only = one(base, weight=3)
    assert weight_only.fields == frozenset({"weight"}) and weight_only.value is None
    cleared = one(base, comment="")
    assert cleared.fields == frozenset({"comment"}) and cleared.comment is None
    work_null = one(base, work=None, value=2)
    assert work_null.fields == frozenset({"work", "value"}) and work_null.work is None
    # A null value or weight changes nothing and does not count as present.
    with_null_value = one(base, value=None, comment="x")
    assert with_null_value.fields == frozenset({"comment"})


# -- moments ------------------------------------------------------------------------------------


def test_set_at_with_z_is_utc():
    event = one(GRADE, set_at="2026-11-10T09:30:00Z")
    assert event.set_at == datetime(2026, 11, 10, 9, 30, tzinfo=UTC)
    assert event.set_at.tzinfo is UTC


def test_moment_with_offset_converts_to_utc():
    event = one(GRADE, set_at="2026-11-10T01:00:00+05:00")
    assert event.set_at == datetime(2026, 11, 9, 20, 0, tzinfo=UTC)
    assert event.set_at.tzinfo is UTC


def test_naive_moment_is_rejected():
    assert problems(GRADE, set_at="2026-11-10T09:30:00") == [
        f"{FILE}:1: set_at: needs a time zone offset, e.g. +03:00"]


def test_bad_moments():
    prefix = f"{FILE}:1: updated_at: "
    for bad in ("yesterday", "2026-13-01T10:00:00Z", "2026-11-10T25:00:00+03:00"):
        [message] = problems(HOMEWORK, updated_at=bad)
        assert message.startswith(prefix + "not a valid ISO 8601 moment")
    [message] = problems(HOMEWORK, updated_at=1700000000)
    assert message == prefix + "must be a string"


OUT_OF_WINDOW = "must be between 2000-01-01 and 2100-12-31"


@pytest.mark.parametrize(("obj", "name"), [
    (GRADE, "date"), (DOT, "date"), (DOT, "expires"), (ATTENDANCE, "date"), (HOMEWORK, "due"),
    (LESSON, "date"), (PERIOD, "start"), (PERIOD, "end"),
])
@pytest.mark.parametrize("bad", ["0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31"])
def test_implausible_dates_are_rejected(obj, name, bad):
    found = problems(obj, **{name: bad})
    assert f"{FILE}:1: {name}: {OUT_OF_WINDOW}" in found


def test_dates_at_the_edges_of_the_window_are_taken():
    assert one(GRADE, date="2000-01-01").date == date(2000, 1, 1)
    assert one(PERIOD, start="2100-12-30", end="2100-12-31").end == date(2100, 12, 31)


def test_implausible_moments_are_rejected():
    for bad in ("9999-12-31T10:00:00+03:00", "1970-01-01T00:00:00Z"):
        assert problems(GRADE, set_at=bad) == [f"{FILE}:1: set_at: {OUT_OF_WINDOW}"]


def test_moment_out_of_range_in_utc_is_a_problem_not_a_crash():
    [message] = problems(GRADE, set_at="0001-01-01T00:00:00+03:00")
    assert message.startswith(f"{FILE}:1: set_at: not a valid ISO 8601 moment")


# -- problems: JSON and envelope ----------------------------------------------------------------


def test_not_valid_json():
    result = parse_journal(['{"id": "e-1", "type": "grade",', "{'id': 1}", "[1, 2"], FILE)
    assert [str(p) for p in result.problems] == [
        f"{FILE}:1: not valid JSON: Expecting property name enclosed in double quotes",
        f"{FILE}:2: not valid JSON: Expecting property name enclosed in double quotes",
        f"{FILE}:3: not valid JSON: Expecting ',' delimiter",
    ]
    assert all(p.field == "" for p in result.problems)
    assert result.events == [] and result.lines == 3


def test_trailing_garbage_is_not_valid_json():
    assert problems_raw(dump(GRADE) + " x") == [f"{FILE}:1: not valid JSON: Extra data"]


def test_deep_nesting_is_a_problem_not_a_crash():
    [message] = problems_raw("[" * 100_000)
    assert message.startswith(f"{FILE}:1: not valid JSON: ")


def test_not_an_object():
    for raw in ("[1, 2]", '"grade"', "42", "null", "true"):
        assert problems_raw(raw) == [f"{FILE}:1: expected a JSON object"]
    event, found = parse_event([GRADE], 3, FILE)
    assert event is None and [str(p) for p in found] == [f"{FILE}:3: expected a JSON object"]


def test_id_problems():
    assert problems(GRADE, id=_DROP) == [f"{FILE}:1: id: required"]
    assert problems(GRADE, id="  ") == [f"{FILE}:1: id: required"]
    assert problems(GRADE, id=None) == [f"{FILE}:1: id: required"]
    assert problems(GRADE, id=True) == [f"{FILE}:1: id: must be a string"]
    assert problems(GRADE, id=1.5) == [f"{FILE}:1: id: must be a string"]
    assert problems(GRADE, id=["e-1"]) == [f"{FILE}:1: id: must be a string"]
    assert problems(GRADE, id="x" * 129) == [f"{FILE}:1: id: longer than 128 characters"]
    assert problems(GRADE, id=10**130) == [f"{FILE}:1: id: longer than 128 characters"]
    assert one(GRADE, id="x" * 128).id == "x" * 128


def test_type_problems():
    assert problems(GRADE, type_=_DROP) == [f"{FILE}:1: type: required"]
    assert problems(GRADE, type_="xyz") == [f"{FILE}:1: type: unknown event type 'xyz'"]
    assert problems(GRADE, type_="Grade") == [f"{FILE}:1: type: unknown event type 'Grade'"]
    assert problems(GRADE, type_=1) == [f"{FILE}:1: type: must be a string"]


def test_unknown_type_and_missing_id_both_reported():
    assert problems({"type": "xyz"}) == [
        f"{FILE}:1: id: required", f"{FILE}:1: type: unknown event type 'xyz'"]


# -- problems: fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "name"), [
    (GRADE, "grade_id"), (GRADE, "student_id"), (GRADE, "subject"), (GRADE, "date"),
    (GRADE, "value"), (DOT, "dot_id"), (DOT, "expires"), (ATTENDANCE, "attendance_id"),
    (ATTENDANCE, "lesson"), (ATTENDANCE, "mark"), (HOMEWORK, "homework_id"),
    (HOMEWORK, "due"), (HOMEWORK, "text"), (LESSON, "number"), (LESSON, "start"),
    (LESSON, "end"), (PERIOD, "period_id"), (PERIOD, "name"), (PERIOD, "start"),
])
def test_required_fields(obj, name):
    without = {k: v for k, v in obj.items() if k != name}
    assert problems(without) == [f"{FILE}:1: {name}: required"]
    assert problems({**obj, name: None}) == [f"{FILE}:1: {name}: required"]


def test_required_text_blank_after_strip():
    assert problems(GRADE, subject="   ") == [f"{FILE}:1: subject: required"]
    assert problems(HOMEWORK, class_=" ") == [f"{FILE}:1: class: required"]
    assert problems(HOMEWORK, text="\n\t") == [f"{FILE}:1: text: required"]


def test_other_types_require_their_reference():
    assert problems({"id": "x", "type": "grade_deleted"}) == [f"{FILE}:1: grade_id: required"]
    assert problems({"id": "x", "type": "dot_closed"}) == [f"{FILE}:1: dot_id: required"]
    assert problems({"id": "x", "type": "grade_changed", "value": 3}) == [
        f"{FILE}:1: grade_id: required"]


def test_wrong_json_types():
    assert problems(GRADE, subject=5) == [f"{FILE}:1: subject: must be a string"]
    assert problems(GRADE, comment=["a"]) == [f"{FILE}:1: comment: must be a string"]
    assert problems(GRADE, value=4.0) == [f"{FILE}:1: value: must be an integer or a text"]
    assert problems(GRADE, value=[5]) == [f"{FILE}:1: value: must be an integer or a text"]
    assert problems(ATTENDANCE, lesson="2") == [f"{FILE}:1: lesson: must be an integer"]
    assert problems(ATTENDANCE, excused="yes") == [f"{FILE}:1: excused: must be true or false"]
    assert problems(ATTENDANCE, excused=1) == [f"{FILE}:1: excused: must be true or false"]
    assert problems(HOMEWORK, required="false") == [
        f"{FILE}:1: required: must be true or false"]
    assert problems(LESSON, cancelled=0) == [f"{FILE}:1: cancelled: must be true or false"]
    assert problems(ATTENDANCE, mark=1) == [f"{FILE}:1: mark: must be a string"]
    assert problems(GRADE, date=20261110) == [f"{FILE}:1: date: must be a string"]
    assert problems(LESSON, start=830) == [f"{FILE}:1: start: must be a string"]


def test_booleans_are_not_integers():
    assert problems(GRADE, value=True) == [f"{FILE}:1: value: must be an integer or a text"]
    assert problems(GRADE, weight=True) == [f"{FILE}:1: weight: must be an integer from 0 to 100"]
    assert problems(ATTENDANCE, lesson=False) == [f"{FILE}:1: lesson: must be an integer"]
    assert problems(LESSON, number=True) == [f"{FILE}:1: number: must be an integer"]
    assert problems({"id": "c", "type": "dot_closed", "dot_id": "d", "value": True}) == [
        f"{FILE}:1: value: must be an integer or a text"]


def test_value_range():
    for bad in (0, 6, "7", "5/6"):
        assert problems(GRADE, value=bad) == [f"{FILE}:1: value: {FIVE}"]
    assert problems(GRADE, value=-1) == [f"{FILE}:1: value: must not be negative"]
    assert problems(DOT, value=7) == [f"{FILE}:1: value: {FIVE}"]
    assert [one(GRADE, value=v).value for v in (1, 5, "5")] == [mark(1), mark(5), mark(5)]


def test_weight_range():
    for bad in (101, -2, 1.5, "2"):
        assert problems(GRADE, weight=bad) == [
            f"{FILE}:1: weight: must be an integer from 0 to 100"]
    assert [one(GRADE, weight=w).weight for w in (0, 1, 10, 100)] == [0, 1, 10, 100]
    changed = {"id": "c", "type": "grade_changed", "grade_id": "g", "weight": 0}
    assert one(changed).weight == 0 and one(changed).fields == frozenset({"weight"})
    assert one(DOT, weight=0).weight == 0
    assert one({"id": "c", "type": "dot_closed", "dot_id": "d", "weight": 0}).weight == 0


def test_lesson_and_number_range():
    assert problems(ATTENDANCE, lesson=0) == [f"{FILE}:1: lesson: must be from 1 to 20"]
    assert problems(LESSON, number=21) == [f"{FILE}:1: number: must be from 1 to 20"]
    assert one(LESSON, number=20).number == 20


def test_bad_mark():
    assert problems(ATTENDANCE, mark="present") == [f"{FILE}:1: mark: must be absent or late"]
    assert problems(ATTENDANCE, mark="") == [f"{FILE}:1: mark: must be absent or late"]


@pytest.mark.parametrize("bad", [
    "2026-02-30", "2026-13-01", "2026-1-1", "20261110", "2026-11-10T00:00", "2026-W46-2",
    "10.11.2026", "2026/11/10", " 2026-11-10", "", "0000-01-01", "２026-11-10",
])
def test_bad_dates(bad):
    assert problems(GRADE, date=bad) == [f"{FILE}:1: date: not a valid date (YYYY-MM-DD)"]


@pytest.mark.parametrize("bad", [
    "24:00", "12:60", "9:30", "09:30:00", "0930", "09-30", "", "²9:30", "09:3٠", "-1:30",
])
def test_bad_times(bad):
    assert problems(LESSON, start=bad) == [f"{FILE}:1: start: not a valid time (HH:MM)"]


def test_edge_times_are_valid():
    event = one(LESSON, start="00:00", end="23:59")
    assert (event.start, event.end) == (time(0, 0), time(23, 59))


def test_lesson_end_must_be_after_start():
    assert problems(LESSON, end="08:30") == [f"{FILE}:1: end: must be after start"]
    assert problems(LESSON, end="08:00") == [f"{FILE}:1: end: must be after start"]
    assert problems(LESSON, end="00:00") == [f"{FILE}:1: end: must be after start"]


def test_dot_expires_not_before_date():
    assert problems(DOT, expires="2026-11-17") == [f"{FILE}:1: expires: must not be before date"]
    assert one(DOT, expires="2026-11-18").expires == date(2026, 11, 18)


def test_period_end_not_before_start():
    assert problems(PERIOD, end="2026-08-31") == [f"{FILE}:1: end: must not be before start"]


def test_length_limits():
    assert one(GRADE, subject="а" * 100).subject == "а" * 100
    assert problems(GRADE, subject="а" * 101) == [
        f"{FILE}:1: subject: longer than 100 characters"]
    assert len(one(HOMEWORK, text="x" * 10_000).text) == 10_000
    assert problems(HOMEWORK, text="x" * 10_001) == [
        f"{FILE}:1: text: longer than 10000 characters"]
    assert len(one(GRADE, comment="x" * 2000).comment) == 2000
    assert problems(GRADE, comment="x" * 2001) == [
        f"{FILE}:1: comment: longer than 2000 characters"]
    # The limit applies after stripping.
    assert one(GRADE, subject=" " + "а" * 100 + " ").subject == "а" * 100


def test_grade_changed_needs_something_to_change():
    base = {"id": "c", "type": "grade_changed", "grade_id": "g-1"}
    message = (f"{FILE}:1: grade_changed needs at least one of value, weight, work, comment,"
               " point_until")
    assert problems(base) == [message]
    assert problems(base, value=None, weight=None, teacher="x") == [message]


def test_lone_surrogate_is_rejected_but_escaped_pairs_are_fine():
    bad = '{"id": "e", "type": "grade_deleted", "grade_id": "g-\\ud800"}'
    assert problems_raw(bad) == [
        f"{FILE}:1: grade_id: contains an invalid \\u escape (a lone surrogate)"]
    good = json.dumps({**GRADE, "comment": "Отлично 😀"})  # ASCII with \\u escapes
    assert "\\ud83d" in good
    [event] = parse_journal([good], FILE).events
    assert event.comment == "Отлично 😀"
    event, found = parse_event({**GRADE, "teacher": "x\udc00"}, 1, FILE)
    assert event is None and [p.field for p in found] == ["teacher"]


# -- several problems -------------------------------------------------------------------------


def test_all_problems_of_a_line_are_reported():
    obj = {"id": "e-1", "type": "grade", "grade_id": "", "subject": 7, "date": "2026-02-30",
           "value": 9, "weight": -1, "set_at": "2026-11-10T10:00:00"}
    assert problems(obj) == [
        f"{FILE}:1: grade_id: required",
        f"{FILE}:1: student_id: required",
        f"{FILE}:1: subject: must be a string",
        f"{FILE}:1: date: not a valid date (YYYY-MM-DD)",
        f"{FILE}:1: value: {FIVE}",
        f"{FILE}:1: weight: must be an integer from 0 to 100",
        f"{FILE}:1: set_at: needs a time zone offset, e.g. +03:00",
    ]


def test_cross_field_checks_join_the_other_problems():
    fields = sorted(p.field for p in parse(_with(LESSON, end="08:00", number=0)).problems)
    assert fields == ["end", "number"]


def test_all_bad_lines_are_reported_and_good_ones_kept():
    lines = [
        dump(GRADE),
        "not json",
        dump(_with(DOT, expires="2026-01-01")),
        "",
        dump(ATTENDANCE),
        dump(_with(LESSON, start="25:00", end="26:00")),
        "[]",
    ]
    result = parse_journal(lines, FILE)
    assert [e.id for e in result.events] == ["e-1", "e-3"]
    assert [e.line for e in result.events] == [1, 5]
    assert [str(p) for p in result.problems] == [
        f"{FILE}:2: not valid JSON: Expecting value",
        f"{FILE}:3: expires: must not be before date",
        f"{FILE}:6: start: not a valid time (HH:MM)",
        f"{FILE}:6: end: not a valid time (HH:MM)",
        f"{FILE}:7: expected a JSON object",
    ]
    assert sorted(result.rejected_lines) == [2, 3, 6, 7]
    assert result.lines == 6


def test_rejected_lines_keep_the_raw_text():
    bad = '  {"id": "x", "type": "grade", "value": 9}  '
    result = parse_journal([dump(GRADE) + "\n", bad + "\r\n", "{oops\n"], FILE)
    assert result.rejected_lines == {2: bad, 3: "{oops"}
    assert {p.line for p in result.problems} == {2, 3}


# -- duplicates, blank lines, line endings ------------------------------------------------------


def test_duplicate_ids_first_wins_and_are_counted():
    first = _with(GRADE, value=4)
    again = _with(GRADE, value=2)
    other_type_same_id = _with(PERIOD, id="e-1")
    result = parse(first, again, ATTENDANCE, other_type_same_id)
    assert [e.id for e in result.events] == ["e-1", "e-3"]
    assert result.events[0].value == mark(4)
    assert result.duplicates == 2
    assert result.problems == [] and result.rejected_lines == {}
    assert result.lines == 4


def test_numeric_and_string_ids_are_the_same_id():
    result = parse(_with(GRADE, id=7), _with(GRADE, id="7"))
    assert len(result.events) == 1 and result.duplicates == 1


def test_an_invalid_line_does_not_claim_its_id():
    result = parse(_with(GRADE, value=9), _with(GRADE, value=3))
    assert [e.line for e in result.events] == [2]
    assert result.duplicates == 0 and list(result.rejected_lines) == [1]


def test_blank_lines_are_skipped_but_counted_as_physical_lines():
    lines = ["\n", dump(GRADE) + "\n", "   \n", "\t\r\n", dump(ATTENDANCE) + "\n", ""]
    result = parse_journal(lines, FILE)
    assert [e.line for e in result.events] == [2, 5]
    assert result.lines == 2
    assert result.problems == []


def test_crlf_line_endings():
    text = dump(GRADE) + "\r\n" + dump(DOT) + "\r\n" + "{bad\r\n"
    result = parse_journal(text.splitlines(keepends=True), FILE)
    assert [e.line for e in result.events] == [1, 2]
    assert result.rejected_lines == {3: "{bad"}


def test_bom_on_the_first_line_is_ignored():
    result = parse_journal(["\ufeff" + dump(GRADE) + "\n", dump(DOT)], FILE)
    assert [e.id for e in result.events] == ["e-1", "e-2"]
    result = parse_journal(["\ufeff\n", dump(GRADE)], FILE)
    assert [e.line for e in result.events] == [2] and result.lines == 1


def test_a_bom_elsewhere_is_a_problem():
    result = parse_journal([dump(GRADE), "\ufeff" + dump(DOT)], FILE)
    assert [p.line for p in result.problems] == [2]
    assert str(result.problems[0]).startswith(f"{FILE}:2: not valid JSON: ")


def test_empty_input():
    result = parse_journal([], FILE)
    assert result == ParsedJournal(events=[], problems=[], rejected_lines={}, lines=0,
                                   duplicates=0)


def test_lines_may_come_from_a_generator():
    result = parse_journal((dump(_with(GRADE, id=f"e-{i}")) for i in range(50)), FILE)
    assert len(result.events) == 50 and result.events[-1].line == 50


# -- parse_event --------------------------------------------------------------------------------


def test_parse_event_returns_event_or_problems():
    event, found = parse_event(dict(GRADE), 12, "x.jsonl")
    assert found == [] and isinstance(event, GradeEvent) and event.line == 12
    event, found = parse_event({**GRADE, "value": 0}, 12, "x.jsonl")
    assert event is None
    assert [str(p) for p in found] == [f"x.jsonl:12: value: {FIVE}"]


def test_many_lines_parse():
    objects = [GRADE, DOT, ATTENDANCE, HOMEWORK, LESSON, PERIOD]
    lines = [dump({**objects[i % 6], "id": f"x-{i}"}) for i in range(6000)]
    result = parse_journal(lines, FILE)
    assert len(result.events) == 6000 and result.problems == []


@pytest.mark.parametrize("value", ["+7 (900) 555-12-34", "89005551234", "anna@mail.test",
                                   "112-233-445 95"])
def test_an_identifier_in_a_field_is_never_echoed(value):
    [message] = problems(GRADE, type=value)
    assert message == (f"{FILE}:1: type: unknown event type (not shown: looks like a phone"
                       " number, SNILS or e-mail)")
    assert problems(GRADE, type="gradez") == [f"{FILE}:1: type: unknown event type 'gradez'"]


# -- lessons: ids, groups, replaced teachers, online lessons ---------------------------------------


def test_lesson_with_id_group_substitute_and_link():
    event = one(LESSON, lesson_id=9001, group="  англ.  гр. Иванова ", teacher="Иванова М. П.",
                teacher_replaced=True, substitute="Сидоров П. П.", remote=True,
                link="https://zoom.us/j/123?pwd=a&b=1")
    assert event == LessonEvent(
        id="e-5", line=1, class_name="7Б", date=date(2026, 11, 24), number=1,
        subject="Алгебра", start=time(8, 30), end=time(9, 15), room=None,
        teacher="Иванова М. П.", cancelled=False, lesson_id="9001", group="англ. гр. Иванова",
        teacher_replaced=True, substitute="Сидоров П. П.", remote=True,
        link="https://zoom.us/j/123?pwd=a&b=1",
    )


def test_a_lesson_without_the_new_fields_is_the_whole_class_in_its_slot():
    event = one(LESSON, lesson_id="", group=" ", substitute=None, link=None)
    assert (event.lesson_id, event.group, event.teacher_replaced, event.substitute,
            event.remote, event.link) == (None, None, False, None, False, None)


def test_a_substitute_or_a_link_implies_its_flag():
    assert one(LESSON, substitute="Сидоров П. П.").teacher_replaced is True
    assert one(LESSON, link="http://school.ru/online").remote is True
    replaced = one(LESSON, teacher_replaced=True)  # the substitute not known yet
    assert (replaced.teacher_replaced, replaced.substitute) == (True, None)
    assert one(LESSON, remote=True).link is None


def test_two_groups_in_one_slot_are_two_events():
    result = parse(_with(LESSON, id="a", group="1 группа", subject="Английский язык"),
                   _with(LESSON, id="b", group="2 группа", subject="Английский язык"))
    assert result.problems == []
    assert [(e.number, e.group) for e in result.events] == [(1, "1 группа"), (1, "2 группа")]


def test_bad_lesson_fields():
    assert problems(LESSON, lesson_id=[1]) == [f"{FILE}:1: lesson_id: must be a string"]
    assert problems(LESSON, group=5) == [f"{FILE}:1: group: must be a string"]
    assert problems(LESSON, teacher_replaced="да") == [
        f"{FILE}:1: teacher_replaced: must be true or false"]
    assert problems(LESSON, teacher_replaced=False, substitute="Сидоров П. П.") == [
        f"{FILE}:1: substitute: given for a lesson whose teacher_replaced is false"]
    assert problems(LESSON, remote=False, link="https://zoom.us/j/1") == [
        f"{FILE}:1: link: given for a lesson whose remote is false"]
    assert problems(LESSON, link="zoom.us/j/1") == [
        f"{FILE}:1: link: not an http or https address, e.g. https://example.ru/page"]


# -- homework: placeholders, one student's tasks, links --------------------------------------------


@pytest.mark.parametrize("text", [
    "-", "--", "---", ".", "—", "...", "нет", "Нет", " НЕТ. ", "не задано", "Не задано.",
    "без задания", "Без  задания!", "none", "None", "NONE.", "n/a", "нет дз",
])
def test_placeholders_are_no_homework(text):
    event = one(HOMEWORK, text=text)
    assert isinstance(event, HomeworkEvent) and event.text is None


@pytest.mark.parametrize("text", ["нет 5", "№ 1", "Не задано ничего нового, повторить § 3",
                                  "Нет-нет, читать стр. 5", "1", "None of the above: p. 7"])
def test_tasks_that_only_look_like_placeholders_are_tasks(text):
    assert one(HOMEWORK, text=text).text == text


def test_homework_for_one_student():
    event = one(HOMEWORK, class_=_DROP, student_id=" S-1 ")
    assert (event.class_name, event.student_id) == (None, "S-1")
    assert one(HOMEWORK, class_=None, student_id=1001).student_id == "1001"


def test_homework_needs_exactly_one_of_class_and_student():
    assert problems(HOMEWORK, student_id="S-1") == [
        f"{FILE}:1: student_id: give either class (a task for the class) or student_id"
        " (a task for one student), not both"]
    assert problems(HOMEWORK, class_=_DROP) == [
        f"{FILE}:1: class: required (or student_id, for a task set to one student)"]
    assert problems(HOMEWORK, class_=None, student_id=" ") == [f"{FILE}:1: student_id: required"]


def test_homework_links_as_addresses_or_objects():
    event = one(HOMEWORK, links=[
        " https://resh.edu.ru/subject/lesson/1 ",
        {"url": "http://school.ru/файл.pdf", "title": "  Параграф  12 "},
        {"url": "https://example.ru", "title": None},
    ])
    assert event.links == (
        Link("https://resh.edu.ru/subject/lesson/1"),
        Link("http://school.ru/файл.pdf", "Параграф 12"),
        Link("https://example.ru"),
    )
    assert one(HOMEWORK, links=[]).links == ()
    assert one(HOMEWORK, links=None).links == ()


def test_bad_homework_links_name_the_link():
    bad = "not an http or https address, e.g. https://example.ru/page"
    assert problems(HOMEWORK, links="https://example.ru") == [
        f'{FILE}:1: links: must be a list of addresses or of {{"url", "title"}} objects']
    assert problems(HOMEWORK, links=[
        "https://ok.ru", "ftp://files.ru/a", "javascript:alert(1)", "https://", 7,
        {"title": "без адреса"}, {"url": "https://a.ru", "title": 5},
        "https://a.ru/a b", "HTTP://EXAMPLE.RU",
    ]) == [
        f"{FILE}:1: links[1]: {bad}",
        f"{FILE}:1: links[2]: {bad}",
        f"{FILE}:1: links[3]: {bad}",
        f"{FILE}:1: links[4]: must be a string (an http or https address)",
        f"{FILE}:1: links[5].url: required",
        f"{FILE}:1: links[6].title: must be a string",
        f"{FILE}:1: links[7]: {bad}",
    ]
    assert problems(HOMEWORK, links=["https://a.ru"] * 21) == [
        f"{FILE}:1: links: more than 20 links"]


# -- marks as schools give them ------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "shown", "scale", "fives"), [
    ({"value": "4-"}, "4-", "5", (4.0,)),
    ({"value": "5/4"}, "5/4", "5", (5.0, 4.0)),
    ({"value": "зачёт"}, "зачёт", "5", ()),
    ({"value": " н/а "}, "н/а", "5", ()),
    ({"value": "осв."}, "осв.", "5", ()),
    ({"value": 8, "scale": 10}, "8", "10", (4.0,)),
    ({"value": 8, "scale": "10", "five": 4.5}, "8", "10", (4.5,)),
    ({"value": 91, "scale": 100}, "91", "100", (5.0,)),
    ({"value": 64, "scale": "100", "five": 4}, "64", "100", (4.0,)),
    ({"value": "зачёт", "scale": "pass"}, "зачёт", "pass", ()),
    ({"value": "зачёт", "scale": "pass", "five": 5}, "зачёт", "pass", (5.0,)),
])
def test_a_mark_is_kept_as_the_school_shows_it(fields, shown, scale, fives):
    for base in (GRADE, DOT, {"id": "c", "type": "grade_changed", "grade_id": "g"},
                 {"id": "c", "type": "dot_closed", "dot_id": "d"}):
        assert one(base, **fields).value == Mark(shown, scale, fives)


def test_a_bad_mark_names_its_field():
    assert problems(GRADE, value=11, scale=10) == [
        f"{FILE}:1: value: must be from 1 to 10 on this scale"]
    assert problems(GRADE, value=101, scale=100) == [
        f"{FILE}:1: value: must be from 0 to 100 on this scale"]
    assert problems(GRADE, scale="12") == [f"{FILE}:1: scale: must be 5, 10, 100 or pass"]
    assert problems(GRADE, value=8, scale=10, five=6) == [
        f"{FILE}:1: five: must be a number from 1 to 5, or a list of them"]
    assert problems(GRADE, value="5/4", five=[5]) == [
        f"{FILE}:1: five: needs one number for each of the 2 marks in value"]
    assert problems(GRADE, value="очень длинная отметка") == [
        f"{FILE}:1: value: longer than 16 characters"]
    assert problems(GRADE, value="  ") == [f"{FILE}:1: value: required"]
    changed = {"id": "c", "type": "grade_changed", "grade_id": "g"}
    assert problems(changed, scale=10, comment="x") == [f"{FILE}:1: scale: only with value"]
    assert problems(changed, five=4, comment="x") == [f"{FILE}:1: five: only with value"]


def test_a_weight_of_zero_is_a_mark_shown_and_not_counted():
    event = one(GRADE, value=5, weight=0)
    assert event.weight == 0 and event.value == mark(5)
    assert one(DOT, value="4", weight=0).weight == 0


def test_point_until_puts_a_dot_on_a_mark():
    event = one(GRADE, point_until="2026-11-20")
    assert event.point_until == date(2026, 11, 20) and event.value == mark(4)
    assert one(GRADE).point_until is None
    assert problems(GRADE, point_until="2026-11-09") == [
        f"{FILE}:1: point_until: must not be before date"]
    assert problems(GRADE, point_until="20.11.2026") == [
        f"{FILE}:1: point_until: not a valid date (YYYY-MM-DD)"]
    changed = {"id": "c", "type": "grade_changed", "grade_id": "g"}
    later = one(changed, point_until="2026-11-27")
    assert later.point_until == date(2026, 11, 27) and later.fields == frozenset({"point_until"})
    for clear in (None, "", " "):
        cleared = one(changed, point_until=clear)
        assert cleared.point_until is None and cleared.fields == frozenset({"point_until"})
    assert problems(changed, point_until="2026-13-01") == [
        f"{FILE}:1: point_until: not a valid date (YYYY-MM-DD)"]


def test_digits_that_are_no_mark_are_refused_not_kept_as_a_word():
    message = (f"{FILE}:1: value: must be a mark (5, 4-, 5/4; 8 with scale 10)"
               " or a word (зачёт, н/а)")
    for bad in ("4.5", "2026-11-20", "+7 900 123", "5 баллов"):
        assert problems(GRADE, value=bad) == [message]
    assert problems(GRADE, value="72%", scale=100) == [message]
    assert one(GRADE, value="4.5", five=4.5).value == Mark("4.5", "5", (4.5,))
