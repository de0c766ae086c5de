"""Roster CSV parser: the public API, valid files, every kind of problem, and privacy."""

from __future__ import annotations

import pytest

from core.errors import InputInvalid, Problem
from core.identity import snils_control
from core.importers.roster import (
    Ids,
    Roster,
    RosterGuardian,
    RosterLink,
    RosterStudent,
    parse_roster,
    read_roster,
)

COLUMNS = [
    "school", "class", "student_id", "student_last_name", "student_first_name",
    "student_middle_name", "student_phone", "student_email", "student_snils",
    "guardian_last_name", "guardian_first_name", "guardian_middle_name", "guardian_phone",
    "guardian_email", "guardian_snils", "guardian_relation",
]
HEADER = ",".join(COLUMNS)
FILE = "roster.csv"


def _snils(number9: str) -> str:
    """A valid SNILS written the usual way, e.g. ``112-233-445 95``."""
    n = number9
    return f"{n[:3]}-{n[3:6]}-{n[6:9]} {snils_control(n):02d}"


SNILS_A = _snils("112233445")
SNILS_B = _snils("987654321")
SNILS_C = _snils("200300400")


def row(**values: str) -> str:
    """One comma-separated data row in the full column order; unnamed columns are empty."""
    unknown = set(values) - set(COLUMNS)
    assert not unknown, unknown
    return ",".join(values.get(col, "") for col in COLUMNS)


def student(sid: str = "1001", cls: str = "7Б", last: str = "Петров", first: str = "Иван",
            **more: str) -> dict[str, str]:
    return {"class": cls, "student_id": sid, "student_last_name": last,
            "student_first_name": first, **more}


def mother(phone: str = "+7 900 123-45-67", **more: str) -> dict[str, str]:
    return {"guardian_last_name": "Петрова", "guardian_first_name": "Анна",
            "guardian_phone": phone, "guardian_relation": "mother", **more}


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def problems(text: str, filename: str = FILE) -> list[Problem]:
    with pytest.raises(InputInvalid) as err:
        parse_roster(text, filename)
    return err.value.problems


def messages(text: str) -> list[str]:
    return [str(p) for p in problems(text)]


def only_problem(text: str) -> str:
    found = messages(text)
    assert len(found) == 1, found
    return found[0]


# --- valid files ---------------------------------------------------------------------------


def test_test_snils_values_are_valid():
    assert SNILS_A == "112-233-445 95"
    assert len({SNILS_A, SNILS_B, SNILS_C}) == 3


def test_valid_comma_file():
    text = csv_text(
        row(school="ГБОУ Школа № 1234", **student(
            student_middle_name="Сергеевич", student_phone="+7 916 100-10-01",
            student_email="Ivan@Example.RU", student_snils=SNILS_B),
            **mother(guardian_middle_name="Викторовна", guardian_email="Anna.P@Example.ru",
                     guardian_snils=SNILS_A, guardian_relation="Mother")),
        row(school="ГБОУ Школа № 1234", **student(
            student_middle_name="Сергеевич", student_phone="8 916 100 10 01",
            student_email="ivan@example.ru", student_snils=SNILS_B),
            guardian_last_name="Петров", guardian_first_name="Сергей",
            guardian_phone="+7 900 765-43-21", guardian_relation="father"),
    )
    roster = parse_roster(text, FILE)
    assert isinstance(roster, Roster)
    assert roster.rows == 2
    assert roster.students == [RosterStudent(
        school="ГБОУ Школа № 1234", class_name="7Б", student_id="1001", last_name="Петров",
        first_name="Иван", middle_name="Сергеевич",
        ids=Ids(phone="+79161001001", email="ivan@example.ru", snils="98765432183"), line=2)]
    assert roster.guardians == [
        RosterGuardian(key=0, last_name="Петрова", first_name="Анна", middle_name="Викторовна",
                       ids=Ids("+79001234567", "anna.p@example.ru", "11223344595"), line=2),
        RosterGuardian(key=1, last_name="Петров", first_name="Сергей", middle_name="",
                       ids=Ids("+79007654321", None, None), line=3),
    ]
    assert roster.links == [RosterLink("1001", 0, "mother", 2), RosterLink("1001", 1, "father", 3)]


def test_valid_semicolon_file_with_quotes_crlf_and_blank_lines():
    header = ";".join(COLUMNS)
    data = [
        ['"Школа; №1"', " 7 б ", "S-1", "  Петров ", "Иван", "", "", "", "", "Петрова",
         "Анна", "", "+7 900 123-45-67", "", "", "опекун по суду"],
        ['"Школа; №1"', "5А", "S-2", "Волкова", "Мария  Анна", "", "", "", "", "", "", "", "",
         "", "", ""],
    ]
    text = "\r\n".join([header, ";".join(data[0]), "", "  ", ";".join(data[1])]) + "\r\n"
    roster = parse_roster(text, FILE)
    assert roster.rows == 2
    assert [(s.school, s.class_name, s.student_id, s.last_name, s.first_name, s.line)
            for s in roster.students] == [
        ("Школа; №1", "7Б", "S-1", "Петров", "Иван", 2),
        ("Школа; №1", "5А", "S-2", "Волкова", "Мария Анна", 5),
    ]
    assert roster.links == [RosterLink("S-1", 0, "опекун по суду", 2)]


def test_header_is_case_blind_and_columns_may_be_reordered_or_optional_ones_absent():
    header = "Guardian_Phone, CLASS ,student_first_name,student_last_name,student_id," \
             "guardian_first_name,guardian_last_name"
    text = csv_text("+7 900 123-45-67,7б,Иван,Петров,1001,Анна,Петрова", header=header)
    roster = parse_roster(text, FILE)
    assert roster.students[0].school == "" and roster.students[0].middle_name == ""
    assert roster.students[0].ids == Ids(None, None, None)
    assert roster.guardians[0].ids == Ids("+79001234567", None, None)
    assert roster.links == [RosterLink("1001", 0, "", 2)]


def test_two_guardians_for_one_student():
    text = csv_text(
        row(**student(), **mother()),
        row(**student(), guardian_last_name="Петров", guardian_first_name="Сергей",
            guardian_email="sergey@example.ru", guardian_relation="FATHER"),
    )
    roster = parse_roster(text, FILE)
    assert len(roster.students) == 1
    assert [(g.key, g.first_name, g.line) for g in roster.guardians] == [
        (0, "Анна", 2), (1, "Сергей", 3)]
    assert [(link.guardian_key, link.relation) for link in roster.links] == [
        (0, "mother"), (1, "father")]


def test_one_guardian_with_two_children_recognised_by_phone_written_differently():
    text = csv_text(
        row(**student("1001"), **mother("8 (900) 123-45-67")),
        row(**student("1002", "5а", first="Мария"), **mother("+7 900 1234567")),
    )
    roster = parse_roster(text, FILE)
    assert [s.student_id for s in roster.students] == ["1001", "1002"]
    assert roster.guardians == [RosterGuardian(0, "Петрова", "Анна", "",
                                               Ids("+79001234567", None, None), 2)]
    assert roster.links == [RosterLink("1001", 0, "mother", 2), RosterLink("1002", 0, "mother", 3)]


def test_guardian_recognised_transitively_and_takes_ids_from_every_row():
    text = csv_text(
        row(**student("1"), **mother()),
        row(**student("2"), **mother("", guardian_email="A@Example.ru")),
        row(**student("3"), **mother("89001234567", guardian_email="a@example.ru")),
        row(**student("4"), **mother("", guardian_snils=SNILS_A, guardian_email="a@example.ru")),
    )
    roster = parse_roster(text, FILE)
    assert roster.guardians == [RosterGuardian(
        0, "Петрова", "Анна", "", Ids("+79001234567", "a@example.ru", "11223344595"), 2)]
    assert [(link.student_id, link.guardian_key) for link in roster.links] == [
        ("1", 0), ("2", 0), ("3", 0), ("4", 0)]


def test_guardian_names_compare_case_blind_with_yo_as_ye():
    text = csv_text(
        row(**student("1"), **mother(guardian_last_name="Семёнова")),
        row(**student("2"), **mother(guardian_last_name="СЕМЕНОВА")),
    )
    roster = parse_roster(text, FILE)
    assert [g.last_name for g in roster.guardians] == ["Семёнова"]


def test_student_without_guardian_and_then_with_one():
    text = csv_text(
        row(**student("1001")),
        row(**student("1002")),
        row(**student("1002"), **mother()),
    )
    roster = parse_roster(text, FILE)
    assert [(s.student_id, s.line) for s in roster.students] == [("1001", 2), ("1002", 3)]
    assert roster.links == [RosterLink("1002", 0, "mother", 4)]
    assert roster.rows == 3


def test_student_and_guardian_may_share_a_phone():
    text = csv_text(row(**student(student_phone="+7 900 123-45-67"), **mother("89001234567")))
    roster = parse_roster(text, FILE)
    assert roster.students[0].ids.phone == roster.guardians[0].ids.phone == "+79001234567"


@pytest.mark.parametrize(("raw", "expected"), [
    ("7Б", "7Б"), ("7 б", "7Б"), (" 11а ", "11А"), ("1A", "1A"), ("5", "5"), ("5-1", "5-1"),
])
def test_class_is_normalised(raw, expected):
    roster = parse_roster(csv_text(row(**student(cls=raw))), FILE)
    assert roster.students[0].class_name == expected


def test_a_multiline_quoted_field_keeps_physical_line_numbers():
    text = csv_text(
        row(school='"Школа\nN 1"', **student("1")),
        row(**student("2", cls="abc")),
    )
    found = problems(text)
    assert [str(p) for p in found] == ["roster.csv:4: class: not a class like 7Б: 'abc'"]


def test_only_newlines_end_lines_not_form_feeds_or_unicode_separators():
    text = csv_text(
        row(school="Школа\x0cN\u20281", **student("1")),
        row(**student("2", cls="abc")),
    )
    assert [str(p) for p in problems(text)] == ["roster.csv:3: class: not a class like 7Б: 'abc'"]


def test_carriage_returns_alone_end_lines():
    text = "\r".join([HEADER, row(**student("1")), row(**student("2", cls="abc"))]) + "\r"
    assert only_problem(text) == "roster.csv:3: class: not a class like 7Б: 'abc'"


def test_delimiter_is_taken_from_the_header_after_leading_blank_lines():
    header = ";".join(COLUMNS)
    text = "\n\n" + header + "\n" + ";".join(["", "7Б", "1", "Петров", "Иван"] + [""] * 11)
    roster = parse_roster(text, FILE)
    assert [(s.student_id, s.line) for s in roster.students] == [("1", 4)]


def test_read_roster_accepts_a_bom(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(row(**student())).encode())
    roster = read_roster(str(path))
    assert roster.students[0].student_id == "1001"


def test_parse_roster_accepts_a_bom():
    roster = parse_roster("\ufeff" + csv_text(row(**student())), FILE)
    assert roster.rows == 1


def test_twenty_thousand_rows():
    rows = []
    for i in range(10_000):
        phone = f"+7 900 {i // 10000:03d}-{i // 100 % 100:02d}-{i % 100:02d}"
        rows.append(row(**student(str(i), cls=f"{i % 11 + 1}А"), **mother(phone)))
        rows.append(row(**student(str(i), cls=f"{i % 11 + 1}А"), guardian_last_name="Петров",
                        guardian_first_name="Сергей", guardian_email=f"p{i}@example.ru"))
    text = csv_text(*rows)
    roster = parse_roster(text, FILE)
    assert (roster.rows, len(roster.students), len(roster.guardians), len(roster.links)) == (
        20_000, 10_000, 20_000, 20_000)


# --- problems --------------------------------------------------------------------------------


def test_empty_file_and_header_only():
    assert [str(p) for p in problems("")] == ["roster.csv:1: no data rows"]
    assert [str(p) for p in problems("\n \n")] == ["roster.csv:1: no data rows"]
    assert only_problem(HEADER + "\n") == "roster.csv:1: no data rows"
    assert only_problem(HEADER + "\n\n\n") == "roster.csv:1: no data rows"


def test_unknown_and_missing_columns():
    found = messages(csv_text("7Б,1001,Петров,x", header="class,Student_ID,student_last_name,nick"))
    assert found == [
        "roster.csv:1: guardian_first_name: required column is missing",
        "roster.csv:1: guardian_last_name: required column is missing",
        "roster.csv:1: guardian_phone: required column is missing",
        "roster.csv:1: nick: unknown column",
        "roster.csv:1: student_first_name: required column is missing",
    ]


def test_duplicate_and_unnamed_columns():
    found = messages(csv_text(row(**student()) + ",7Б,", header=HEADER + ",Class,"))
    assert found == [
        "roster.csv:1: column 18 has no name",
        "roster.csv:1: class: column given twice",
    ]


def test_a_record_the_csv_module_cannot_read_is_a_problem_and_reading_goes_on():
    text = csv_text(
        row(school="x" * 200_000, **student("1")),
        row(**student("2", cls="abc")),
    )
    found = messages(text)
    assert len(found) == 2
    assert found[0].startswith("roster.csv:2: not readable as CSV: ")
    assert found[1] == "roster.csv:3: class: not a class like 7Б: 'abc'"


def test_wrong_number_of_fields():
    assert only_problem(csv_text(row(**student()), "7Б,1002,Петров")) == (
        "roster.csv:3: expected 16 fields, found 3")
    assert only_problem(csv_text(row(**student()) + ",extra")) == (
        "roster.csv:2: expected 16 fields, found 17")


@pytest.mark.parametrize(("values", "prefix"), [
    (student(cls=""), "roster.csv:2: class: "),
    (student(cls="abc"), "roster.csv:2: class: "),
    (student(cls="123456"), "roster.csv:2: class: "),
    (student(sid=""), "roster.csv:2: student_id: "),
    (student(sid="10 01"), "roster.csv:2: student_id: "),
    (student(sid="x" * 65), "roster.csv:2: student_id: "),
    (student(last=""), "roster.csv:2: student_last_name: "),
    (student(first="  "), "roster.csv:2: student_first_name: "),
    (student(first="123"), "roster.csv:2: student_first_name: "),
    (student(last="Я" * 101), "roster.csv:2: student_last_name: "),
    (student(student_middle_name="--"), "roster.csv:2: student_middle_name: "),
])
def test_student_field_problems(values, prefix):
    assert only_problem(csv_text(row(**values))).startswith(prefix)


def test_long_student_id_and_name_limits_are_inclusive():
    roster = parse_roster(csv_text(row(**student(sid="x" * 64, last="Я" * 100))), FILE)
    assert roster.students[0].student_id == "x" * 64


def test_bad_phone_email_and_snils():
    text = csv_text(
        row(**student("1", student_phone="12345")),
        row(**student("2", student_email="not-an-email")),
        row(**student("3", student_snils="123-456-78")),
        row(**student("4", student_snils="123-456-789 65")),
        row(**student("5"), **mother("+1 202 555 0100")),
        row(**student("6"), **mother(guardian_email="anna@")),
        row(**student("7"), **mother(guardian_snils="112-233-445 96")),
    )
    assert messages(text) == [
        "roster.csv:2: student_phone: not a Russian phone number: must look like +7 900 123-45-67",
        "roster.csv:3: student_email: not a valid e-mail address",
        "roster.csv:4: student_snils: SNILS must be 11 digits: 123-456-789 01",
        "roster.csv:5: student_snils: SNILS control number does not match",
        "roster.csv:6: guardian_phone: not a Russian phone number: must look like +7 900 123-45-67",
        "roster.csv:7: guardian_email: not a valid e-mail address",
        "roster.csv:8: guardian_snils: SNILS control number does not match",
    ]


def test_partly_filled_guardian():
    text = csv_text(
        row(**student("1"), guardian_last_name="Петрова", guardian_phone="+7 900 123-45-67"),
        row(**student("2"), guardian_first_name="Анна", guardian_phone="+7 900 123-45-67"),
        row(**student("3"), guardian_last_name="Петрова", guardian_first_name="Анна"),
        row(**student("4"), guardian_relation="mother"),
    )
    assert messages(text) == [
        "roster.csv:2: guardian_first_name: required",
        "roster.csv:3: guardian_last_name: required",
        "roster.csv:4: guardian_phone: a guardian needs a phone, e-mail or SNILS to be recognised",
        "roster.csv:5: guardian_first_name: required",
        "roster.csv:5: guardian_last_name: required",
        "roster.csv:5: guardian_phone: a guardian needs a phone, e-mail or SNILS to be recognised",
    ]


@pytest.mark.parametrize(("field", "value"), [
    ("guardian_last_name", "Сидорова"),
    ("guardian_first_name", "Анастасия"),
    ("guardian_middle_name", "Ивановна"),
])
def test_same_guardian_with_another_name(field, value):
    text = csv_text(
        row(**student("1"), **mother(guardian_middle_name="Викторовна")),
        row(**student("2"), **mother("89001234567", **{field: value})),
    )
    found = only_problem(text)
    assert found.startswith(f"roster.csv:3: {field}: the same guardian")
    assert "line 2" in found
    assert "900" not in found


def test_a_guardian_middle_name_is_compared_with_the_first_row_that_has_one():
    text = csv_text(
        row(**student("1"), **mother()),
        row(**student("2"), **mother(guardian_middle_name="Викторовна")),
        row(**student("3"), **mother(guardian_middle_name="Ивановна")),
    )
    assert only_problem(text) == (
        "roster.csv:4: guardian_middle_name: the same guardian has a different name on line 3")


def test_guardian_name_and_ids_come_from_the_first_rows_that_have_them():
    text = csv_text(
        row(**student("1"), **mother()),
        row(**student("2"), **mother(guardian_middle_name="Викторовна",
                                     guardian_email="anna@example.ru")),
        row(**student("3"), **mother("", guardian_email="anna@example.ru",
                                     guardian_snils=SNILS_A)),
    )
    assert parse_roster(text, FILE).guardians == [RosterGuardian(
        0, "Петрова", "Анна", "Викторовна", Ids("+79001234567", "anna@example.ru", "11223344595"),
        2)]


def test_a_conflicting_id_names_the_line_it_was_first_given_on():
    text = csv_text(
        row(**student("1"), **mother()),
        row(**student("2"), **mother(guardian_email="a@example.ru")),
        row(**student("3"), **mother(guardian_email="b@example.ru")),
    )
    assert only_problem(text) == (
        "roster.csv:4: guardian_email: the same guardian has a different email on line 3")


def test_same_guardian_with_two_different_emails_or_snils():
    text = csv_text(
        row(**student("1"), **mother(guardian_email="a@example.ru", guardian_snils=SNILS_A)),
        row(**student("2"), **mother(guardian_email="b@example.ru")),
        row(**student("3"), **mother(guardian_snils=SNILS_B)),
    )
    found = messages(text)
    assert [p.split(": the same guardian")[0] for p in found] == [
        "roster.csv:3: guardian_email", "roster.csv:4: guardian_snils"]
    assert all("line 2" in p for p in found)
    assert not any("example" in p or "445" in p or "654" in p for p in found)


def test_the_same_student_must_agree_across_rows():
    text = csv_text(
        row(school="Школа 1", **student(student_middle_name="Сергеевич",
                                          student_phone="+7 916 100-10-01")),
        row(school="Школа 1", **student(cls="8Б", student_middle_name="Сергеевич",
                                          student_phone="+7 916 100-10-01"), **mother()),
        row(school="Школа 2", **student(first="Пётр", student_middle_name="Сергеевич",
                                          student_phone="+7 916 100-10-01")),
        row(school="Школа 1", **student(student_middle_name="Сергеевич",
                                          student_phone="+7 916 100-10-02")),
    )
    found = messages(text)
    assert found == [
        "roster.csv:3: class: student 1001 has '7Б' on line 2",
        "roster.csv:4: school: student 1001 has 'Школа 1' on line 2",
        "roster.csv:4: student_first_name: student 1001 has 'Иван' on line 2",
        "roster.csv:5: student_phone: student 1001 has a different phone on line 2",
    ]


def test_the_same_student_name_compares_case_blind_with_yo_as_ye():
    text = csv_text(
        row(**student(first="Артём")),
        row(**student(first="АРТЕМ"), **mother()),
    )
    assert parse_roster(text, FILE).students[0].first_name == "Артём"


def test_duplicate_student_guardian_pair():
    text = csv_text(
        row(**student("1001"), **mother()),
        row(**student("1001"), **mother("", guardian_email="anna@example.ru")),
        row(**student("1001"), **mother("89001234567", guardian_email="anna@example.ru")),
    )
    assert messages(text) == [
        "roster.csv:3: duplicate row: this guardian is already linked to student 1001 on line 2",
        "roster.csv:4: duplicate row: this guardian is already linked to student 1001 on line 2",
    ]


def test_two_students_with_one_phone():
    text = csv_text(
        row(**student("1001", student_phone="+7 916 100-10-01")),
        row(**student("1002", student_phone="89161001001")),
    )
    assert only_problem(text) == (
        "roster.csv:3: student_phone: the same phone is given for student 1001 on line 2")


def test_every_bad_line_is_reported_in_line_order():
    text = csv_text(
        row(**student("1", cls="abc")),
        row(**student("2")),
        "too,few,fields",
        row(**student("", last="")),
        row(**student("5"), **mother("12345")),
        row(**student("6", student_snils="123-456-789 65")),
    )
    found = problems(text)
    assert [(p.line, p.field) for p in found] == [
        (2, "class"), (4, ""), (5, "student_id"), (5, "student_last_name"),
        (6, "guardian_phone"), (7, "student_snils")]
    assert all(p.file == FILE for p in found)


def test_read_roster_reads_cp1251_and_names_a_bad_byte_of_utf8(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(csv_text(row(**student())).encode("cp1251"))
    roster = read_roster(str(path))
    assert (roster.encoding, roster.students[0].last_name) == ("cp1251", "Петров")
    path.write_bytes(csv_text(row(**student()), row(**student("1002"))).encode()
                     .replace(b"1002", b"10\xe902"))
    with pytest.raises(InputInvalid) as err:
        read_roster(str(path))
    [problem] = err.value.problems
    assert str(problem).startswith(f"{path}:3: not UTF-8 text: byte 0xE9 at byte offset ")


def test_read_roster_names_the_file_in_problems(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(csv_text(row(**student(cls="abc"))), encoding="utf-8")
    with pytest.raises(InputInvalid) as err:
        read_roster(str(path))
    assert str(err.value.problems[0]).startswith(f"{path}:2: class: ")


def test_messages_never_echo_phone_email_or_snils():
    text = csv_text(
        row(**student("1", student_phone="+7 321 654 98", student_email="kid@@inbox.test",
                      student_snils="314-159-265 53")),
        row(**student("2", student_snils="271-828-18")),
        row(**student("3"), **mother("+1 (415) 987-65-43", guardian_email="mom.at.inbox.test",
                                     guardian_snils="271-828-182 92")),
        row(**student("4", student_phone="+7 916 555-44-33"), **mother("+7 908 111-22-33",
                                                                       guardian_email="x@y.ru")),
        row(**student("5", student_phone="89165554433"), **mother("+7 908 111-22-33",
                                                                   guardian_email="z@y.ru")),
    )
    found = messages(text)
    assert len(found) == 9, found
    blob = "\n".join(found)
    for secret in ("321", "654", "98", "kid", "inbox", "314", "159", "265", "53", "271", "828",
                   "18", "415", "987", "65-43", "mom", "92", "908", "111", "22-33", "x@y", "z@y",
                   "y.ru", "916", "555", "44-33", "4433"):
        assert secret not in blob, secret


SECRETS = {"+7 900 555-12-34": ("555", "12-34"), "anna.petrova@mail.test": ("anna", "petrova"),
           "112-233-445 95": ("112", "445")}


@pytest.mark.parametrize("value", sorted(SECRETS))
def test_an_identifier_in_any_column_is_never_echoed(value):
    text = csv_text(
        row(**student("1", cls=value)),
        row(**student(value.replace(" ", ""), last="Петров")),
        row(**student(value.replace(" ", ""), last="Иванов")),
    )
    found = messages(text)
    assert found[0] == f"{FILE}:2: class: not a class like 7Б: (not shown: looks like a phone" \
                       " number, SNILS or e-mail)"
    assert [p.split(": ")[1] for p in found] == ["class", "student_last_name"]
    blob = "\n".join(found)
    for part in (value, value.replace(" ", ""), *SECRETS[value]):
        assert part not in blob, part


def test_a_header_cell_holding_an_identifier_is_named_by_its_number():
    text = csv_text(header=HEADER + ",+7 900 555-12-34,a@b.test")
    assert messages(text) == [f"{FILE}:1: column 17: unknown column",
                              f"{FILE}:1: column 18: unknown column"]


def test_ordinary_values_are_still_quoted():
    assert only_problem(csv_text(row(**student(cls="7 класс")))) == (
        f"{FILE}:2: class: not a class like 7Б: '7 класс'")
