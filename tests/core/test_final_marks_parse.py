"""Journal events final_grade and final_grade_deleted: what is read, what is refused and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.importers.journal import (
    FinalGradeDeletedEvent,
    FinalGradeEvent,
    ParsedJournal,
    parse_journal,
)

FILE = "j.jsonl"
FINAL = {"id": "e-1", "type": "final_grade", "final_id": "f-1", "student_id": "S-1",
         "subject": "Алгебра", "period_id": "q1", "value": 5}


def parse(*objects: Any) -> ParsedJournal:
    return parse_journal([json.dumps(o, ensure_ascii=False) for o in objects], FILE)


def problems(obj: dict) -> list[str]:
    return [str(p) for p in parse(obj).problems]


def test_a_final_mark_of_a_period():
    [event] = parse(FINAL).events
    assert isinstance(event, FinalGradeEvent)
    assert (event.final_id, event.student_id, event.subject, event.period_id) == (
        "f-1", "S-1", "Алгебра", "q1")
    assert (event.mark.shown, event.mark.scale, event.mark.fives) == ("5", "5", (5.0,))
    assert event.set_at is None and event.line == 1


def test_the_year_and_a_mark_as_the_school_shows_it():
    [event] = parse({**FINAL, "period_id": " Year ", "value": "зачёт", "scale": "pass",
                     "set_at": "2027-05-28T12:00:00+03:00"}).events
    assert event.period_id is None  # the year
    assert (event.mark.shown, event.mark.scale, event.mark.parts) == ("зачёт", "pass", 0)
    assert event.set_at == datetime(2027, 5, 28, 9, 0, tzinfo=UTC)
    [ten] = parse({**FINAL, "value": 8, "scale": 10, "period_id": 2}).events
    assert (ten.mark.shown, ten.mark.fives, ten.period_id) == ("8", (4.0,), "2")
    [five] = parse({**FINAL, "value": "4-", "five": 4}).events
    assert five.mark.shown == "4-" and five.mark.points == 4.0


def test_a_withdrawn_final_mark():
    [event] = parse({"id": "e-2", "type": "final_grade_deleted", "final_id": 17}).events
    assert event == FinalGradeDeletedEvent("e-2", 1, "17")
    assert problems({"id": "e-2", "type": "final_grade_deleted"}) == [
        "j.jsonl:1: final_id: required"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"period_id": None}, "j.jsonl:1: period_id: required"),
    ({"period_id": "  "}, "j.jsonl:1: period_id: required"),
    ({"period_id": ["q1"]}, "j.jsonl:1: period_id: must be a string"),
    ({"period_id": "q" * 129}, "j.jsonl:1: period_id: longer than 128 characters"),
    ({"value": 6}, "j.jsonl:1: value: must be from 1 to 5 on the five-point scale (or set scale)"),
    ({"value": None}, "j.jsonl:1: value: required"),
    ({"value": 4.5}, "j.jsonl:1: value: must be an integer or a text"),
    ({"value": 11, "scale": 10}, "j.jsonl:1: value: must be from 1 to 10 on this scale"),
    ({"scale": "12"}, "j.jsonl:1: scale: must be 5, 10, 100 or pass"),
    ({"five": 7}, "j.jsonl:1: five: must be a number from 1 to 5, or a list of them"),
    ({"set_at": "2026-12-25 10:00"}, "j.jsonl:1: set_at: needs a time zone offset, e.g. +03:00"),
    ({"subject": ""}, "j.jsonl:1: subject: required"),
    ({"final_id": None}, "j.jsonl:1: final_id: required"),
])
def test_bad_fields_are_named(change, expected):
    assert problems({**FINAL, **change}) == [expected]


def test_every_problem_of_a_line_is_reported_and_the_line_yields_nothing():
    parsed = parse({**FINAL, "student_id": None, "value": "99", "period_id": None})
    assert parsed.events == []
    assert [str(p) for p in parsed.problems] == [
        "j.jsonl:1: student_id: required",
        "j.jsonl:1: period_id: required",
        "j.jsonl:1: value: must be from 1 to 5 on the five-point scale (or set scale)",
    ]


def test_a_lone_surrogate_in_the_value_is_refused():
    line = json.dumps({**FINAL, "value": "x"}).replace('"x"', '"\\ud800"')
    assert [str(p) for p in parse_journal([line], FILE).problems] == [
        "j.jsonl:1: value: contains an invalid \\u escape (a lone surrogate)"]


def test_a_final_mark_refuses_digits_that_are_no_mark_as_a_grade_does():
    from core.importers.journal import parse_journal

    line = json.dumps({"id": "f", "type": "final_grade", "final_id": "f1", "student_id": "S-1",
                       "subject": "Алгебра", "period_id": "q1", "value": "4.5"})
    assert [str(p) for p in parse_journal([line], "j.jsonl").problems] == [
        "j.jsonl:1: value: must be a mark (5, 4-, 5/4; 8 with scale 10) or a word (зачёт, н/а)"]
