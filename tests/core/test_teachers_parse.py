"""teachers.csv: what is accepted, and every problem named by file, line and field."""

from __future__ import annotations

import pytest

from core.errors import InputInvalid
from core.importers.teachers import parse_teachers
from tests.support.school import EXAMPLE_ROOT

HEADER = "school,class,teacher_id,last_name,first_name,middle_name,phone,email\n"


def problems(text: str) -> list[str]:
    with pytest.raises(InputInvalid) as err:
        parse_teachers(text, "teachers.csv")
    return [str(p) for p in err.value.problems]


def test_the_example_parses():
    roster = parse_teachers((EXAMPLE_ROOT / "teachers.csv").read_text(encoding="utf-8"),
                            "teachers.csv")
    assert [(t.teacher_id, t.last_name, t.phone) for t in roster.teachers] == [
        ("T-01", "Соколова", "+79032000001"), ("T-02", "Орлов", "+79032000002")]
    assert [(c.teacher_id, c.class_name, c.line) for c in roster.classes] == [
        ("T-01", "7Б", 2), ("T-02", "5А", 3)]
    assert roster.teachers[0].email == "m.sokolova@example.ru"


def test_one_row_per_class_a_teacher_leads_and_semicolons():
    text = ("class;teacher_id;last_name;first_name\n"
            "7 б;T-1;Соколова;Мария\n"
            "8-В;T-1;Соколова;Мария\n")
    roster = parse_teachers(text, "t.csv")
    assert len(roster.teachers) == 1
    assert [c.class_name for c in roster.classes] == ["7Б", "8В"]


def test_bad_lines_name_file_line_and_field_and_never_echo_identifiers():
    text = HEADER + (
        ",7Б,T-1,Соколова,Мария,,+7 903 200-00-01,\n"
        ",13Я,T-2,Орлов,Павел,,12345,bad-mail\n"
        ",5А,T 3,,Иван,,,\n"
        ",7Б,T-4,Иванова,Анна,,+7 903 200-00-01,\n"
        ",8А,T-1,Соколова,Марина,,+7 903 200-00-09,\n"
        ",8А,T-1,Соколова,Мария,,+7 903 200-00-01,\n"
        ",9А,T-5,Петров\n"
    )
    assert problems(text) == [
        "teachers.csv:3: class: not a class like 7Б: '13Я'",
        "teachers.csv:3: email: not a valid e-mail address",
        "teachers.csv:3: phone: not a Russian phone number: must look like +7 900 123-45-67",
        "teachers.csv:4: last_name: required",
        "teachers.csv:4: teacher_id: must be at most 64 characters without spaces",
        "teachers.csv:5: class: class 7Б already has a class teacher (T-1) on line 2",
        "teachers.csv:5: phone: the same phone is given for teacher T-1 on line 2",
        "teachers.csv:6: first_name: teacher T-1 has 'Мария' on line 2",
        "teachers.csv:6: phone: teacher T-1 has a different phone on line 2",
        "teachers.csv:7: class: duplicate row: class 8А is already given to this teacher on"
        " line 6",
        "teachers.csv:8: expected 8 fields, found 4",
    ]
    assert not any("200-00" in p or "12345" in p for p in problems(text))


def test_header_problems():
    assert problems("class,teacher_id,last_name,first_name,phone,+79001234567\n") == [
        "teachers.csv:1: column 6: unknown column"]
    assert problems("class,last_name\n7Б,Соколова\n") == [
        "teachers.csv:1: first_name: required column is missing",
        "teachers.csv:1: teacher_id: required column is missing"]
    assert problems(HEADER) == ["teachers.csv:1: no data rows"]


def test_every_column_is_in_the_contract():
    from core.importers.teachers import COLUMNS
    from tests.test_contract import _section, _table_names

    assert _table_names(_section("Teachers CSV")) == set(COLUMNS)


def test_teacher_hours_setting(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from bot.config import Settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text('TEACHER_HOURS="Mon-Sat 08:30-17:00"\n', encoding="utf-8")
    assert Settings().teacher_hours == "Mon-Sat 08:30-17:00"
    monkeypatch.setenv("TEACHER_HOURS", "08:00-18:00")
    assert Settings().teacher_hours == "Mon-Fri 08:00-18:00"
    for bad in ("18:00-08:00", "Fri-Mon 08:00-18:00", "weekdays", "Mon-Fri 8-18"):
        monkeypatch.setenv("TEACHER_HOURS", bad)
        with pytest.raises(ValidationError):
            Settings()
