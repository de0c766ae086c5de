"""Snapshot lines: each mark read as a grade event; problems named FILE:LINE: marks[N].field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from core.importers.journal import GradeEvent
from core.importers.snapshot import parse_snapshots
from core.services.snapshot import content_hash, event_id


def parse(*objects: object):
    lines = [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objects]
    return parse_snapshots(lines, "s.jsonl")


def problems(*objects: object) -> list[str]:
    return [str(p) for p in parse(*objects).problems]


STUDENT = {"snapshot_id": "s1", "student_id": "S-1001", "period_id": "q2",
           "taken_at": "2026-11-23T10:00:00+03:00",
           "marks": [{"grade_id": "g1", "subject": "Алгебра", "date": "2026-11-20", "value": 5,
                      "weight": 2, "work": "Контрольная работа"},
                     {"grade_id": 2, "subject": "Алгебра", "date": "2026-11-21", "value": 4}]}


def test_a_student_snapshot():
    parsed = parse(STUDENT, "", STUDENT | {"snapshot_id": "s2", "from": None})
    assert parsed.problems == [] and parsed.lines == 2
    first, second = parsed.snapshots
    assert (first.line, second.line) == (1, 3)
    assert (first.snapshot_id, first.student_id, first.class_name, first.period_id) == (
        "s1", "S-1001", None, "q2")
    assert first.taken_at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert first.complete is False and first.subject is None
    g1, g2 = first.marks
    assert isinstance(g1.event, GradeEvent)
    assert (g1.event.value.shown, g1.event.weight, g1.event.work, g1.event.date) == (
        "5", 2, "Контрольная работа", date(2026, 11, 20))
    assert (g2.grade_id, g2.student_id, g2.index, g2.event.weight) == ("2", "S-1001", 1, 1)
    assert g1.raw["student_id"] == "S-1001" and "id" not in g1.raw


def test_a_class_snapshot_with_dates():
    line = {"snapshot_id": "c1", "class": "7 б", "from": "2026-11-01", "to": "2026-11-30",
            "complete": True, "taken_at": "2026-11-23T07:00:00Z",
            "marks": [{"grade_id": "g1", "student_id": "S-1001", "subject": "Физика",
                       "date": "2026-11-20", "value": 3}]}
    [snap] = parse(line).snapshots
    assert (snap.class_name, snap.start, snap.end, snap.complete) == (
        "7Б", date(2026, 11, 1), date(2026, 11, 30), True)
    assert snap.marks[0].student_id == "S-1001"


def test_mark_problems_name_the_mark_and_field():
    marks = [{"grade_id": "g1", "subject": "Алгебра", "date": "2026-11-20", "value": 7},
             {"grade_id": "g2", "subject": "", "date": "20.11.2026", "value": 4},
             {"grade_id": "g3", "subject": "Алгебра", "date": "2026-11-20", "value": 4},
             "5",
             {"grade_id": "g5", "subject": "Алгебра", "date": "2026-11-20", "value": 4,
              "weight": "2"},
             {"grade_id": "g3", "subject": "Алгебра", "date": "2026-11-21", "value": 5}]
    found = problems({**STUDENT, "marks": marks})
    assert found[0].startswith("s.jsonl:1: marks[0].value: must be from 1 to 5")
    assert found[1:] == [
        "s.jsonl:1: marks[1].subject: required",
        "s.jsonl:1: marks[1].date: not a valid date (YYYY-MM-DD)",
        "s.jsonl:1: marks[3]: must be an object (a mark)",
        f"s.jsonl:1: marks[4].weight: {found[-2].split('weight: ')[1]}",
        "s.jsonl:1: marks[5].grade_id: repeated in the snapshot (as marks[2])",
    ]
    assert parse({**STUDENT, "marks": marks}).snapshots == []


def test_a_class_snapshot_needs_each_marks_student():
    line = {"snapshot_id": "c1", "class": "7Б", "period_id": "q2",
            "taken_at": "2026-11-23T10:00:00+03:00",
            "marks": [{"grade_id": "g1", "subject": "Физика", "date": "2026-11-20", "value": 3}]}
    assert problems(line) == ["s.jsonl:1: marks[0].student_id: required"]


def test_a_student_snapshot_takes_only_its_students_marks():
    marks = [{**STUDENT["marks"][0], "student_id": "S-1002"}, {**STUDENT["marks"][1],
                                                              "student_id": "S-1001"}]
    assert problems({**STUDENT, "marks": marks}) == [
        "s.jsonl:1: marks[0].student_id: must be the snapshot's student 'S-1001' (or left out)"]


def test_a_subject_snapshot_holds_that_subject_only():
    marks = [*STUDENT["marks"], {"grade_id": "g3", "subject": "Физика", "date": "2026-11-20",
                                 "value": 5}]
    assert problems({**STUDENT, "subject": "Алгебра", "marks": marks}) == [
        "s.jsonl:1: marks[2].subject: must be the snapshot's subject 'Алгебра'"]


def test_snapshot_field_problems():
    assert problems(
        "{oops",
        [1, 2],
        {"snapshot_id": "", "marks": {}},
        {**STUDENT, "class": "7Б", "from": "2026-11-01"},
        {**STUDENT, "snapshot_id": "s5", "period_id": None, "from": "2026-11-30",
         "to": "2026-11-01", "taken_at": "2026-11-23T10:00:00", "complete": "yes"},
        {**STUDENT, "marks": None},
        STUDENT,
        STUDENT,
    ) == [
        "s.jsonl:1: not valid JSON: Expecting property name enclosed in double quotes",
        "s.jsonl:2: expected a JSON object (a snapshot)",
        "s.jsonl:3: snapshot_id: required",
        "s.jsonl:3: student_id: required: the student's id, or class for a class's snapshot",
        "s.jsonl:3: period_id: required: the period's id, or from and to (dates)",
        "s.jsonl:3: taken_at: required: when the export was taken (ISO 8601 with an offset)",
        "s.jsonl:3: marks: must be a list of marks",
        "s.jsonl:4: class: give student_id or class, not both",
        "s.jsonl:4: period_id: give period_id or from and to, not both",
        "s.jsonl:5: to: must not be before from",
        "s.jsonl:5: complete: must be true or false",
        "s.jsonl:5: taken_at: needs a time zone offset, e.g. +03:00",
        "s.jsonl:6: marks: required (an empty list when there are no marks)",
        "s.jsonl:8: snapshot_id: already used on line 7",
    ]


def test_event_ids_are_deterministic_and_fit():
    [snap] = parse(STUDENT).snapshots
    assert event_id("s1", "g1", "new") == "sync:s1:g1:new"
    changed = {**STUDENT["marks"][0], "value": 4}
    [other] = parse({**STUDENT, "marks": [changed]}).snapshots
    assert content_hash(snap.marks[0]) == content_hash(parse(STUDENT).snapshots[0].marks[0])
    assert content_hash(snap.marks[0]) != content_hash(other.marks[0])
    long = event_id("s" * 128, "g" * 128, "del")
    assert long.startswith("sync:") and len(long) <= 128
    assert long == event_id("s" * 128, "g" * 128, "del") != event_id("s" * 128, "g" * 128, "new")
