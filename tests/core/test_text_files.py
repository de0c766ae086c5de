"""Reading import files: encodings (UTF-8 with or without BOM, cp1251, UTF-16) and line endings."""

from __future__ import annotations

import json

import pytest

from core.errors import InputInvalid
from core.importers.journal import parse_journal, read_journal
from core.importers.roster import read_roster
from core.importers.text import decode, split_lines

HEADER = ("class,student_id,student_last_name,student_first_name,guardian_last_name,"
          "guardian_first_name,guardian_phone")
ROSTER = HEADER + "\n7Б,1001,Петров,Иван,,,\n5А,1002,Петрова,Мария,,,\n"
GRADE = {"id": "e-1", "type": "grade", "grade_id": "g-1", "student_id": "S-1",
         "subject": "Алгебра", "date": "2026-11-10", "value": 4}


def problem_of(data: bytes) -> str:
    with pytest.raises(InputInvalid) as err:
        decode(data, "f.csv")
    [problem] = err.value.problems
    return str(problem)


def test_utf8_with_and_without_bom():
    assert decode("Петров\n".encode(), "f") == ("Петров\n", "UTF-8")
    assert decode(b"\xef\xbb\xbf" + "Петров\n".encode(), "f") == ("Петров\n", "UTF-8 with BOM")


def test_cp1251_is_recognised():
    assert decode(ROSTER.encode("cp1251"), "f") == (ROSTER, "cp1251")


def test_utf16_with_a_bom():
    assert decode(ROSTER.encode("utf-16"), "f") == (ROSTER, "UTF-16")
    assert decode(b"\xfe\xff" + ROSTER.encode("utf-16-be"), "f") == (ROSTER, "UTF-16")


def test_one_bad_byte_in_a_utf8_file_is_named_with_its_line_and_offset():
    data = ROSTER.encode()
    bad = data.replace("Мария".encode(), "Мари".encode() + b"\xff")
    offset = bad.index(b"\xff")
    assert problem_of(bad) == (f"f.csv:3: not UTF-8 text: byte 0xFF at byte offset {offset}"
                               " cannot be read (not cp1251 either)")


def test_binary_garbage_is_not_taken_for_cp1251():
    message = problem_of(b"\x01\x02\x03\x90\x98\x81\x00\x00")
    assert message.startswith("f.csv:1: ")


def test_utf16_without_a_bom_is_named_not_read_as_garbage():
    message = problem_of(ROSTER.encode("utf-16-le"))
    assert message == ("f.csv:1: contains NUL bytes: UTF-16 without a byte order mark?"
                       " Save it as UTF-8")


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c"])
def test_only_newline_and_crlf_end_lines(separator):
    assert split_lines(f"a{separator}b\nc\r\nd") == [f"a{separator}b", "c", "d"]


def test_a_trailing_newline_makes_no_extra_line():
    assert split_lines("a\nb\n") == ["a", "b"]
    assert split_lines("") == []


def test_journal_string_with_a_raw_line_separator_is_one_line(tmp_path):
    first = dict(GRADE, comment="первая\u2028вторая\u0085третья")
    second = dict(GRADE, id="e-2", grade_id="g-2", value=7)
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(first, ensure_ascii=False) + "\n"
                    + json.dumps(second, ensure_ascii=False) + "\n", encoding="utf-8")
    text = read_journal(str(path))
    assert text.encoding == "UTF-8"
    parsed = parse_journal(text.lines, str(path))
    assert [e.comment for e in parsed.events] == ["первая\u2028вторая\u0085третья"]
    assert [str(p) for p in parsed.problems] == [
        f"{path}:2: value: must be from 1 to 5 on the five-point scale (or set scale)"]


def test_journal_in_cp1251(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(json.dumps(GRADE, ensure_ascii=False).encode("cp1251") + b"\r\n")
    text = read_journal(str(path))
    assert text.encoding == "cp1251"
    assert parse_journal(text.lines, "j").events[0].subject == "Алгебра"


def test_journal_with_a_bad_byte_names_its_line(tmp_path):
    path = tmp_path / "j.jsonl"
    lines = [json.dumps(dict(GRADE, id=f"e{n}"), ensure_ascii=False).encode() for n in range(3)]
    lines[2] = lines[2].replace("Алгебра".encode(), b"\xd0\xd0")
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(InputInvalid) as err:
        read_journal(str(path))
    assert str(err.value.problems[0]).startswith(f"{path}:3: not UTF-8 text: byte 0xD0")


def test_roster_in_cp1251_and_utf16(tmp_path):
    for encoding, name in (("cp1251", "cp1251"), ("utf-16", "UTF-16")):
        path = tmp_path / f"r-{encoding}.csv"
        path.write_bytes(ROSTER.encode(encoding))
        roster = read_roster(str(path))
        assert roster.encoding == name
        assert [s.last_name for s in roster.students] == ["Петров", "Петрова"]


def test_roster_with_a_raw_line_separator_keeps_line_numbers(tmp_path):
    path = tmp_path / "r.csv"
    rows = ["7Б,1,Пет\u2028ров,Иван,,,", "7Б,2,Петров\u0085,Иван,,,", "xyz,3,Петров,Иван,,,"]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(InputInvalid) as err:
        read_roster(str(path))
    assert [str(p) for p in err.value.problems] == [
        f"{path}:4: class: not a class like 7Б: 'xyz'"]
