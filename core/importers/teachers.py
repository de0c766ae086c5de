"""teachers.csv: the class teachers, one row per class a person leads. Parsing and validation,
with every problem reported at once.

Pure: no database. Phones and e-mails are normalised here and never echoed in a message.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass

from core.errors import InputInvalid, Problem
from core.identity import looks_personal, normalize_email, normalize_phone
from core.importers.roster import _LETTER_RE, MAX_NAME, _name, _rows, _same_name, normalize_class
from core.importers.text import UTF8, quote, read_text, shown

COLUMNS = ("school", "class", "teacher_id", "last_name", "first_name", "middle_name", "phone",
           "email")
REQUIRED_COLUMNS = ("class", "teacher_id", "last_name", "first_name")


@dataclass(frozen=True)
class RosterTeacher:
    teacher_id: str
    school: str
    last_name: str
    first_name: str
    middle_name: str
    phone: str | None
    email: str | None
    line: int


@dataclass(frozen=True)
class TeacherClass:
    teacher_id: str
    school: str
    class_name: str
    line: int


@dataclass(frozen=True)
class TeacherRoster:
    teachers: list[RosterTeacher]
    classes: list[TeacherClass]
    rows: int
    file: str = ""
    encoding: str = UTF8


def parse_teachers(text: str, filename: str) -> TeacherRoster:
    if text.startswith("\ufeff"):
        text = text[1:]
    problems: list[Problem] = []

    def problem(line: int, field: str, message: str) -> None:
        problems.append(Problem(filename, line, field, message))

    def done() -> None:
        if problems:
            raise InputInvalid(sorted(problems, key=lambda x: (x.line, x.field)))

    records = _rows(text)
    try:
        header_line, header = next(records)
    except StopIteration:
        raise InputInvalid([Problem(filename, 1, "", "no data rows")]) from None
    if isinstance(header, csv.Error):
        raise InputInvalid([Problem(filename, header_line, "", f"not readable as CSV: {header}")])
    columns = [h.strip().lower() for h in header]
    named: set[str] = set()
    for number, col in enumerate(columns, 1):
        if not col:
            problem(header_line, "", f"column {number} has no name")
        elif col not in COLUMNS:
            problem(header_line, f"column {number}" if looks_personal(col) else col,
                    "unknown column")
        elif col in named:
            problem(header_line, col, "column given twice")
        named.add(col)
    for col in REQUIRED_COLUMNS:
        if col not in columns:
            problem(header_line, col, "required column is missing")
    done()

    teachers: dict[str, RosterTeacher] = {}
    phones: dict[str, tuple[str, int]] = {}
    classes: dict[tuple[str, str], TeacherClass] = {}
    rows = 0
    for line, fields in records:
        rows += 1
        if isinstance(fields, csv.Error):
            problem(line, "", f"not readable as CSV: {fields}")
            continue
        if len(fields) != len(columns):
            problem(line, "", f"expected {len(columns)} fields, found {len(fields)}")
            continue
        row = dict(zip(columns, fields, strict=True))
        before = len(problems)
        school = _name(row.get("school", ""))
        raw_class = row.get("class", "").strip()
        class_name = normalize_class(raw_class) if raw_class else None
        if not raw_class:
            problem(line, "class", "required")
        elif class_name is None:
            problem(line, "class", f"not a class like 7Б: {quote(raw_class)}")
        tid = row.get("teacher_id", "").strip()
        if not tid:
            problem(line, "teacher_id", "required")
        elif len(tid) > 64 or any(ch.isspace() for ch in tid):
            problem(line, "teacher_id", "must be at most 64 characters without spaces")
        names = []
        for field, required in (("last_name", True), ("first_name", True),
                                ("middle_name", False)):
            value = _name(row.get(field, ""))
            if not value:
                if required:
                    problem(line, field, "required")
            elif len(value) > MAX_NAME:
                problem(line, field, f"longer than {MAX_NAME} characters")
            elif not _LETTER_RE.search(value):
                problem(line, field, "must contain letters")
            names.append(value)
        phone = email = None
        raw_phone = row.get("phone", "").strip()
        if raw_phone:
            phone = normalize_phone(raw_phone)
            if phone is None:
                problem(line, "phone", "not a Russian phone number: must look like"
                                       " +7 900 123-45-67")
        raw_email = row.get("email", "").strip()
        if raw_email:
            email = normalize_email(raw_email)
            if email is None:
                problem(line, "email", "not a valid e-mail address")
        if len(problems) != before or class_name is None:
            continue

        teacher = RosterTeacher(tid, school, names[0], names[1], names[2], phone, email, line)
        first = teachers.get(tid)
        if first is None:
            teachers[tid] = teacher
            if phone:
                other = phones.get(phone)
                if other is not None:
                    problem(line, "phone", f"the same phone is given for teacher"
                                           f" {shown(other[0])} on line {other[1]}")
                else:
                    phones[phone] = (tid, line)
        else:
            for field, a, b in (("school", first.school, school),
                                ("last_name", first.last_name, names[0]),
                                ("first_name", first.first_name, names[1]),
                                ("middle_name", first.middle_name, names[2])):
                if not _same_name(a, b):
                    problem(line, field, f"teacher {shown(tid)} has {quote(a)} on line"
                                         f" {first.line}")
            contacts: tuple[tuple[str, str | None, str | None], ...] = (
                ("phone", first.phone, phone), ("email", first.email, email))
            for field, theirs, ours in contacts:
                if theirs != ours:
                    problem(line, field, f"teacher {shown(tid)} has a different {field}"
                                         f" on line {first.line}")
        key = (school.casefold(), class_name)
        taken = classes.get(key)
        if taken is None:
            classes[key] = TeacherClass(tid, school, class_name, line)
        elif taken.teacher_id == tid:
            problem(line, "class", f"duplicate row: class {class_name} is already given to"
                                   f" this teacher on line {taken.line}")
        else:
            problem(line, "class", f"class {class_name} already has a class teacher"
                                   f" ({shown(taken.teacher_id)}) on line {taken.line}")
    if not rows:
        problem(header_line, "", "no data rows")
    done()
    return TeacherRoster(list(teachers.values()), list(classes.values()), rows, filename)


def read_teachers(path: str) -> TeacherRoster:
    text, encoding = read_text(path)
    return dataclasses.replace(parse_teachers(text, path), encoding=encoding)
