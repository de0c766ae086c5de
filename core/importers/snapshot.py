"""Snapshots (JSON Lines): a student's or a class's marks for a period as a whole, one a line.

Pure: what the snapshot is about (the student, the class, the period) is looked up by the
snapshot service, which also works out what changed. Each mark is read as a ``grade`` journal
event by the journal parser (``parse_event``), so a mark is valid exactly when the same fields
would make a valid ``grade`` event; its problems are named ``marks[N].field`` (N from 0).
Every problem of every line is collected; a line with a problem yields no snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from core.errors import Problem
from core.importers.journal import GradeEvent, _Reader, parse_event
from core.importers.text import quote

# The id a mark is parsed with; the snapshot service gives each change its own.
PLACEHOLDER_ID = "snapshot-mark"


@dataclass(frozen=True, slots=True)
class SnapshotMark:
    index: int  # its place in ``marks``, from 0
    grade_id: str
    student_id: str
    raw: dict[str, Any]  # the fields as the file gave them, passed on to the journal events
    event: GradeEvent  # as the journal parser read them (``id`` a placeholder)


@dataclass(frozen=True, slots=True)
class Snapshot:
    line: int
    snapshot_id: str
    student_id: str | None  # exactly one of student_id and class_name
    class_name: str | None
    period_id: str | None  # or start and end
    start: date | None
    end: date | None
    subject: str | None  # None: every subject
    complete: bool
    taken_at: datetime
    marks: tuple[SnapshotMark, ...]

    @property
    def scope(self) -> str:
        """``student S-1001`` or ``class 7Б``."""
        return f"student {self.student_id}" if self.student_id else f"class {self.class_name}"


@dataclass
class ParsedSnapshots:
    snapshots: list[Snapshot] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: int = 0


def _mark_problem(problem: Problem, index: int) -> Problem:
    where = f"marks[{index}]"
    return Problem(problem.file, problem.line, f"{where}.{problem.field}" if problem.field
                   else where, problem.message)


def _class(r: _Reader) -> str | None:
    """``"7 б"`` -> ``"7Б"``, as the journal's ``class``."""
    value = r.text("class")
    return None if value is None else "".join(value.split()).upper()


def _marks(r: _Reader, student_id: str | None, subject: str | None,
           class_snapshot: bool) -> list[SnapshotMark]:
    raw_marks = r.obj.get("marks")
    if raw_marks is None:
        r.bad("marks", "required (an empty list when there are no marks)")
        return []
    if type(raw_marks) is not list:
        r.bad("marks", "must be a list of marks")
        return []
    marks: list[SnapshotMark] = []
    seen: dict[str, int] = {}
    for index, mark in enumerate(raw_marks):
        if type(mark) is not dict:
            r.problems.append(Problem(r.file, r.line, f"marks[{index}]",
                                      "must be an object (a mark)"))
            continue
        given = mark.get("student_id")
        if class_snapshot:
            owner = given
        else:
            owner = student_id
            if given is not None and student_id is not None and str(given).strip() != student_id:
                r.problems.append(Problem(r.file, r.line, f"marks[{index}].student_id",
                                          f"must be the snapshot's student {quote(student_id)}"
                                          " (or left out)"))
                continue
        fields = {**mark, "id": PLACEHOLDER_ID, "type": "grade", "student_id": owner}
        event, problems = parse_event(fields, r.line, r.file)
        if event is None or not isinstance(event, GradeEvent):
            r.problems.extend(_mark_problem(p, index) for p in problems)
            continue
        if subject is not None and event.subject != subject:
            r.problems.append(Problem(r.file, r.line, f"marks[{index}].subject",
                                      f"must be the snapshot's subject {quote(subject)}"))
            continue
        first = seen.setdefault(event.grade_id, index)
        if first != index:
            r.problems.append(Problem(r.file, r.line, f"marks[{index}].grade_id",
                                      f"repeated in the snapshot (as marks[{first}])"))
            continue
        raw = {k: v for k, v in mark.items() if k not in ("id", "type")}
        raw["student_id"] = event.student_id
        marks.append(SnapshotMark(index, event.grade_id, event.student_id, raw, event))
    return marks


def _snapshot(r: _Reader) -> Snapshot | None:
    obj = r.obj
    snapshot_id = r.ident("snapshot_id")
    student_id = class_name = None
    if obj.get("student_id") is not None and obj.get("class") is not None:
        r.bad("class", "give student_id or class, not both")
    elif obj.get("class") is not None:
        class_name = _class(r)
    elif obj.get("student_id") is not None:
        student_id = r.ident("student_id")
    else:
        r.bad("student_id", "required: the student's id, or class for a class's snapshot")
    period_id = start = end = None
    if obj.get("period_id") is not None:
        if obj.get("from") is not None or obj.get("to") is not None:
            r.bad("period_id", "give period_id or from and to, not both")
        else:
            period_id = r.ident("period_id")
    elif obj.get("from") is not None or obj.get("to") is not None:
        start, end = r.day("from"), r.day("to")
        if start is not None and end is not None and end < start:
            r.bad("to", "must not be before from")
    else:
        r.bad("period_id", "required: the period's id, or from and to (dates)")
    subject = r.text("subject", False)
    complete = r.boolean("complete", False)
    taken_at = None
    if obj.get("taken_at") is None:
        r.bad("taken_at", "required: when the export was taken (ISO 8601 with an offset)")
    else:
        taken_at = r.moment("taken_at")
    scope_known = student_id is not None or class_name is not None
    marks = _marks(r, student_id, subject, class_name is not None) if scope_known else []
    if not scope_known and obj.get("marks") is not None and type(obj["marks"]) is not list:
        r.bad("marks", "must be a list of marks")
    if r.problems:
        return None
    assert snapshot_id is not None and taken_at is not None
    return Snapshot(r.line, snapshot_id, student_id, class_name, period_id, start, end,
                    subject, complete, taken_at, tuple(marks))


def parse_snapshots(lines: Iterable[str], filename: str) -> ParsedSnapshots:
    """Parse JSON Lines of snapshots; line numbers are physical (1-based), blank lines are
    skipped. A ``snapshot_id`` given twice in the file is a problem of the second line."""
    result = ParsedSnapshots()
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text or text.isspace():
            continue
        result.lines += 1
        try:
            obj = json.loads(text)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            result.problems.append(Problem(filename, number, "", f"not valid JSON: {reason}"))
            continue
        except RecursionError:
            result.problems.append(Problem(filename, number, "",
                                           "not valid JSON: nested too deeply"))
            continue
        if type(obj) is not dict:
            result.problems.append(Problem(filename, number, "",
                                           "expected a JSON object (a snapshot)"))
            continue
        surrogates = "\\u" in text and ("\\ud" in text or "\\uD" in text)
        reader = _Reader(obj, number, filename, surrogates)
        snapshot = _snapshot(reader)
        if snapshot is None:
            result.problems.extend(reader.problems)
            continue
        first = seen.setdefault(snapshot.snapshot_id, number)
        if first != number:
            result.problems.append(Problem(filename, number, "snapshot_id",
                                           f"already used on line {first}"))
            continue
        result.snapshots.append(snapshot)
    result.problems.sort(key=lambda p: p.line)
    return result
