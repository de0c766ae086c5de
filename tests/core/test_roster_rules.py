"""Roster CSV parsing and validation: every problem, with file, line and field."""

from __future__ import annotations

import pytest

from core.errors import InputInvalid
from core.importers.roster import normalize_class, parse_roster

HEADER = ("school,class,student_id,student_last_name,student_first_name,student_middle_name,"
          "student_phone,student_email,student_snils,guardian_last_name,guardian_first_name,"
          "guardian_middle_name,guardian_phone,guardian_email,guardian_snils,guardian_relation")


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def problems(text: str) -> list[str]:
    with pytest.raises(InputInvalid) as err:
        parse_roster(text, "r.csv")
    return [str(p) for p in err.value.problems]


def test_semicolons_and_one_guardian_with_two_children():
    text = csv_text(
        ";7б;1;Петров;Иван;;;;;Петрова;Анна;;8 (900) 123-45-67;;;Mother",
        ";5 а;2;Петрова;Мария;;;;;Петрова;Анна;;+7 900 1234567;;;mother",
        ";5А;3;Волков;Артём;;;;;;;;;;;",
        header=HEADER.replace(",", ";"),
    )
    roster = parse_roster(text, "r.csv")
    assert [s.class_name for s in roster.students] == ["7Б", "5А", "5А"]
    assert len(roster.guardians) == 1 and roster.guardians[0].ids.phone == "+79001234567"
    assert [(link.student_id, link.relation) for link in roster.links] == [
        ("1", "mother"), ("2", "mother")]
    assert roster.rows == 3


def test_guardians_joined_by_any_identifier():
    text = csv_text(
        ",7Б,1,Петров,Иван,,,,,Петрова,Анна,,+7 900 123-45-67,,,mother",
        ",7Б,2,Петров,Олег,,,,,Петрова,Анна,,,A@Example.ru,,mother",
        ",7Б,3,Петров,Пётр,,,,,Петрова,Анна,,+7 900 123-45-67,a@example.ru,,mother",
    )
    roster = parse_roster(text, "r.csv")
    assert len(roster.guardians) == 1
    assert roster.guardians[0].ids.email == "a@example.ru"


def test_every_problem_is_reported_with_line_and_field():
    text = csv_text(
        ",7Б,1,Петров,Иван,,,,,Петрова,Анна,,12345,,,mother",
        ",7Б,,Петров,Иван,,,,,,,,,,,",
        ",abc,3,Иванов,Ива,,,,,,,,,,,",
        ",7Б,4,Сидоров,Ян,,,,123-456-789 65,,,,,,,",
        ",7Б,5,Котов,Лев,,,not-an-email,,,,,,,,",
        ",7Б,6,Котова,Ева,,,,,Котов,,,+7 901 000-00-01,,,",
        ",7Б,7,Орлов,Ян,,,,,Орлова,Ия,,,,,",
        ",7Б,1,Петров,Иван,,,,,Петрова,Анна,,+7 900 000-00-09,,,",
        ",8Б,1,Петров,Иван,,,,,,,,,,,",
        "too,few,fields",
    )
    found = problems(text)
    assert found == [
        "r.csv:2: guardian_phone: not a Russian phone number: must look like +7 900 123-45-67",
        "r.csv:3: student_id: required",
        "r.csv:4: class: not a class like 7Б: 'abc'",
        "r.csv:5: student_snils: SNILS control number does not match",
        "r.csv:6: student_email: not a valid e-mail address",
        "r.csv:7: guardian_first_name: required",
        "r.csv:8: guardian_phone: a guardian needs a phone, e-mail or SNILS to be recognised",
        "r.csv:10: class: student 1 has '7Б' on line 9",
        "r.csv:11: expected 16 fields, found 3",
    ]
    assert not any("12345" in p or "789 65" in p or "not-an-email" in p for p in found)


def test_same_guardian_with_another_name_and_duplicate_pairs():
    text = csv_text(
        ",7Б,1,Петров,Иван,,,,,Петрова,Анна,,+7 900 123-45-67,,,mother",
        ",7Б,2,Петров,Олег,,,,,Сидорова,Анна,,+7 900 123-45-67,,,mother",
        ",7Б,1,Петров,Иван,,,,,петрова,анна,,89001234567,,,mother",
        ",7Б,3,Лис,Ян,,+7 902 000-00-01,,,,,,,,,",
        ",7Б,4,Лис,Ия,,+7 902 000-00-01,,,,,,,,,",
    )
    assert problems(text) == [
        "r.csv:3: guardian_last_name: the same guardian has a different name on line 2",
        "r.csv:4: duplicate row: this guardian is already linked to student 1 on line 2",
        "r.csv:6: student_phone: the same phone is given for student 3 on line 5",
    ]


def test_header_problems():
    assert problems("class,student_id,student_last_name,nickname\n7Б,1,Петров,x\n") == [
        "r.csv:1: guardian_first_name: required column is missing",
        "r.csv:1: guardian_last_name: required column is missing",
        "r.csv:1: guardian_phone: required column is missing",
        "r.csv:1: nickname: unknown column",
        "r.csv:1: student_first_name: required column is missing",
    ]
    assert problems("") == ["r.csv:1: no data rows"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("7Б", "7Б"), ("7 б", "7Б"), ("11А", "11А"), ("5", "5"), ("10-1", "10-1"),
    ("12А", None), ("abc", None), ("123456", None), ("0А", None),
])
def test_class_names(raw, expected):
    assert normalize_class(raw) == expected
