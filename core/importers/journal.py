"""Journal events (JSON Lines): parsing and validation of each line on its own.

Pure: references to the database (students, classes, grades, dots) are checked by the journal
service. Every problem of every line is collected; an invalid line yields no event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from core.errors import Problem


@dataclass(frozen=True, slots=True)
class GradeEvent:
    id: str
    line: int
    grade_id: str
    student_id: str
    subject: str
    date: date
    value: int
    weight: int
    work: str | None
    comment: str | None
    teacher: str | None
    set_at: datetime | None


@dataclass(frozen=True, slots=True)
class GradeChangedEvent:
    id: str
    line: int
    grade_id: str
    value: int | None
    weight: int | None
    work: str | None
    comment: str | None
    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class GradeDeletedEvent:
    id: str
    line: int
    grade_id: str


@dataclass(frozen=True, slots=True)
class DotEvent:
    id: str
    line: int
    dot_id: str
    student_id: str
    subject: str
    date: date
    expires: date
    work: str | None
    comment: str | None
    teacher: str | None
    value: int | None
    weight: int


@dataclass(frozen=True, slots=True)
class DotClosedEvent:
    id: str
    line: int
    dot_id: str
    value: int | None
    weight: int | None


@dataclass(frozen=True, slots=True)
class AttendanceEvent:
    id: str
    line: int
    attendance_id: str
    student_id: str
    date: date
    lesson: int
    subject: str
    mark: str
    excused: bool


@dataclass(frozen=True, slots=True)
class HomeworkEvent:
    id: str
    line: int
    homework_id: str
    class_name: str
    subject: str
    due: date
    text: str
    required: bool
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class LessonEvent:
    id: str
    line: int
    class_name: str
    date: date
    number: int
    subject: str
    start: time
    end: time
    room: str | None
    teacher: str | None
    cancelled: bool


@dataclass(frozen=True, slots=True)
class PeriodEvent:
    id: str
    line: int
    period_id: str
    name: str
    start: date
    end: date


Event = (
    GradeEvent | GradeChangedEvent | GradeDeletedEvent | DotEvent | DotClosedEvent
    | AttendanceEvent | HomeworkEvent | LessonEvent | PeriodEvent
)


@dataclass
class ParsedJournal:
    events: list[Event] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rejected_lines: dict[int, str] = field(default_factory=dict)
    lines: int = 0
    duplicates: int = 0


_MISSING = object()
MARKS = {"absent": "absent", "late": "late", "н": "absent", "оп": "late"}
LIMITS = {"subject": 100, "text": 10_000, "comment": 2_000}


class _Line:
    """Field readers for one JSON object; each problem is recorded, not raised."""

    __slots__ = ("file", "line", "obj", "problems")

    def __init__(self, obj: dict[str, Any], line: int, file: str) -> None:
        self.obj = obj
        self.line = line
        self.file = file
        self.problems: list[Problem] = []

    def bad(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.line, name, message))

    def ident(self, name: str) -> str:
        value = self.obj.get(name, _MISSING)
        if value is _MISSING or value is None:
            self.bad(name, "required")
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.bad(name, "must be a string")
            return ""
        text = str(value).strip()
        if not text:
            self.bad(name, "required")
        elif len(text) > 128:
            self.bad(name, "longer than 128 characters")
        return text

    def text(self, name: str, required: bool = True) -> str | None:
        value = self.obj.get(name)
        if value is None:
            if required:
                self.bad(name, "required")
                return ""
            return None
        if not isinstance(value, str):
            self.bad(name, "must be a string")
            return None
        text = value.strip()
        if required and not text:
            self.bad(name, "required")
        limit = LIMITS.get(name, 500)
        if len(text) > limit:
            self.bad(name, f"longer than {limit} characters")
        return text if text or required else None

    def integer(self, name: str, low: int, high: int, required: bool = True,
                default: int | None = None) -> int | None:
        value = self.obj.get(name)
        if value is None:
            if required:
                self.bad(name, "required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(name, f"must be an integer from {low} to {high}")
            return default
        if not low <= value <= high:
            self.bad(name, f"must be from {low} to {high}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.obj.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad(name, "must be true or false")
            return default
        return value

    def day(self, name: str) -> date:
        value = self.obj.get(name)
        if value is None:
            self.bad(name, "required")
            return date.min
        if not isinstance(value, str) or len(value) != 10:
            self.bad(name, "not a valid date (YYYY-MM-DD)")
            return date.min
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.bad(name, "not a valid date (YYYY-MM-DD)")
            return date.min

    def clock(self, name: str) -> time:
        value = self.obj.get(name)
        if value is None:
            self.bad(name, "required")
            return time.min
        ok = (isinstance(value, str) and len(value) == 5 and value[2] == ":"
              and value[:2].isdigit() and value[3:].isdigit()
              and int(value[:2]) < 24 and int(value[3:]) < 60)
        if not ok:
            self.bad(name, "not a valid time (HH:MM)")
            return time.min
        return time(int(value[:2]), int(value[3:]))

    def moment(self, name: str) -> datetime | None:
        value = self.obj.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.bad(name, "must be an ISO 8601 moment")
            return None
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.bad(name, "must be an ISO 8601 moment, e.g. 2026-11-23T10:15:00+03:00")
            return None
        if moment.tzinfo is None:
            self.bad(name, "needs a time zone offset, e.g. +03:00")
            return None
        return moment.astimezone(UTC)


def _grade(r: _Line, eid: str) -> Event:
    return GradeEvent(
        eid, r.line, r.ident("grade_id"), r.ident("student_id"), r.text("subject") or "",
        r.day("date"), r.integer("value", 1, 5) or 0, r.integer("weight", 1, 10, False, 1) or 1,
        r.text("work", False), r.text("comment", False), r.text("teacher", False),
        r.moment("set_at"),
    )


def _grade_changed(r: _Line, eid: str) -> Event:
    present = frozenset(k for k in ("value", "weight", "work", "comment") if k in r.obj)
    if not present:
        r.bad("", "grade_changed needs at least one of value, weight, work, comment")
    return GradeChangedEvent(
        eid, r.line, r.ident("grade_id"), r.integer("value", 1, 5, False),
        r.integer("weight", 1, 10, False), r.text("work", False), r.text("comment", False),
        present,
    )


def _grade_deleted(r: _Line, eid: str) -> Event:
    return GradeDeletedEvent(eid, r.line, r.ident("grade_id"))


def _dot(r: _Line, eid: str) -> Event:
    event = DotEvent(
        eid, r.line, r.ident("dot_id"), r.ident("student_id"), r.text("subject") or "",
        r.day("date"), r.day("expires"), r.text("work", False), r.text("comment", False),
        r.text("teacher", False), r.integer("value", 1, 5, False),
        r.integer("weight", 1, 10, False, 1) or 1,
    )
    if event.date != date.min and event.expires != date.min and event.expires < event.date:
        r.bad("expires", "must not be before date")
    return event


def _dot_closed(r: _Line, eid: str) -> Event:
    return DotClosedEvent(eid, r.line, r.ident("dot_id"), r.integer("value", 1, 5, False),
                          r.integer("weight", 1, 10, False))


def _attendance(r: _Line, eid: str) -> Event:
    raw = r.obj.get("mark")
    mark = MARKS.get(raw.strip().lower()) if isinstance(raw, str) else None
    if raw is None:
        r.bad("mark", "required")
    elif mark is None:
        r.bad("mark", "must be absent or late")
    return AttendanceEvent(
        eid, r.line, r.ident("attendance_id"), r.ident("student_id"), r.day("date"),
        r.integer("lesson", 1, 20) or 0, r.text("subject") or "", mark or "absent",
        r.boolean("excused", False),
    )


def _class(r: _Line) -> str:
    value = r.text("class") or ""
    return "".join(value.split()).upper()


def _homework(r: _Line, eid: str) -> Event:
    return HomeworkEvent(
        eid, r.line, r.ident("homework_id"), _class(r), r.text("subject") or "", r.day("due"),
        r.text("text") or "", r.boolean("required", True), r.moment("updated_at"),
    )


def _lesson(r: _Line, eid: str) -> Event:
    event = LessonEvent(
        eid, r.line, _class(r), r.day("date"), r.integer("number", 1, 20) or 0,
        r.text("subject") or "", r.clock("start"), r.clock("end"), r.text("room", False),
        r.text("teacher", False), r.boolean("cancelled", False),
    )
    if event.start != time.min and event.end != time.min and event.end <= event.start:
        r.bad("end", "must be after start")
    return event


def _period(r: _Line, eid: str) -> Event:
    event = PeriodEvent(eid, r.line, r.ident("period_id"), r.text("name") or "",
                        r.day("start"), r.day("end"))
    if event.start != date.min and event.end != date.min and event.end < event.start:
        r.bad("end", "must not be before start")
    return event


BUILDERS = {
    "grade": _grade,
    "grade_changed": _grade_changed,
    "grade_deleted": _grade_deleted,
    "dot": _dot,
    "dot_closed": _dot_closed,
    "attendance": _attendance,
    "homework": _homework,
    "lesson": _lesson,
    "period": _period,
}


def parse_event(obj: object, line: int, filename: str) -> tuple[Event | None, list[Problem]]:
    if not isinstance(obj, dict):
        return None, [Problem(filename, line, "", "expected a JSON object")]
    r = _Line(obj, line, filename)
    eid = r.ident("id")
    kind = obj.get("type")
    builder = BUILDERS.get(kind) if isinstance(kind, str) else None
    if kind is None:
        r.bad("type", "required")
    elif builder is None:
        r.bad("type", f"unknown event type {str(kind)[:40]!r}")
    if builder is None:
        return None, r.problems
    event = builder(r, eid)
    return (None if r.problems else event), r.problems


def parse_journal(lines: Iterable[str], filename: str) -> ParsedJournal:
    result = ParsedJournal()
    seen: set[str] = set()
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text.strip():
            continue
        result.lines += 1
        try:
            obj = json.loads(text)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            result.problems.append(Problem(filename, number, "", f"not valid JSON: {reason}"))
            result.rejected_lines[number] = text
            continue
        event, problems = parse_event(obj, number, filename)
        if problems:
            result.problems.extend(problems)
            result.rejected_lines[number] = text
            continue
        assert event is not None
        if event.id in seen:
            result.duplicates += 1
            continue
        seen.add(event.id)
        result.events.append(event)
    return result
