"""Roster CSV: parsing and validation, with every problem reported at once.

Pure: no database. Phones, e-mails and SNILS are normalised here and never echoed in a message.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from core.errors import InputInvalid, Problem
from core.identity import (
    looks_personal,
    normalize_email,
    normalize_phone,
    snils_digits,
    snils_is_valid,
)
from core.importers.text import UTF8, quote, read_text, shown
from core.models import normalize_class

COLUMNS = (
    "school", "class", "student_id", "student_last_name", "student_first_name",
    "student_middle_name", "student_phone", "student_email", "student_snils",
    "guardian_last_name", "guardian_first_name", "guardian_middle_name", "guardian_phone",
    "guardian_email", "guardian_snils", "guardian_relation",
)
REQUIRED_COLUMNS = ("class", "student_id", "student_last_name", "student_first_name",
                    "guardian_last_name", "guardian_first_name", "guardian_phone")
GUARDIAN_COLUMNS = tuple(c for c in COLUMNS if c.startswith("guardian_"))
RELATIONS = {"mother", "father", "guardian"}
_LETTER_RE = re.compile(r"[^\W\d_]")
MAX_NAME = 100


@dataclass(frozen=True)
class Ids:
    phone: str | None
    email: str | None
    snils: str | None


@dataclass(frozen=True)
class RosterStudent:
    school: str
    class_name: str
    student_id: str
    last_name: str
    first_name: str
    middle_name: str
    ids: Ids
    line: int


@dataclass(frozen=True)
class RosterGuardian:
    key: int
    last_name: str
    first_name: str
    middle_name: str
    ids: Ids
    line: int


@dataclass(frozen=True)
class RosterLink:
    student_id: str
    guardian_key: int
    relation: str
    line: int


@dataclass(frozen=True)
class Roster:
    students: list[RosterStudent]
    guardians: list[RosterGuardian]
    links: list[RosterLink]
    rows: int
    encoding: str = UTF8  # what the file was read as


def _name(text: str) -> str:
    return " ".join(text.split())


def _same_name(a: str, b: str) -> bool:
    return a.casefold().replace("ё", "е") == b.casefold().replace("ё", "е")


class _Parser:
    def __init__(self, filename: str) -> None:
        self.file = filename
        self.problems: list[Problem] = []

    def problem(self, line: int, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, field, message))

    def name(self, row: dict[str, str], field: str, line: int, required: bool) -> str:
        value = _name(row.get(field, ""))
        if not value:
            if required:
                self.problem(line, field, "required")
            return ""
        if len(value) > MAX_NAME:
            self.problem(line, field, f"longer than {MAX_NAME} characters")
        elif not _LETTER_RE.search(value):
            self.problem(line, field, "must contain letters")
        return value

    def ids(self, row: dict[str, str], prefix: str, line: int) -> Ids:
        phone = email = snils = None
        raw_phone = row.get(f"{prefix}_phone", "").strip()
        if raw_phone:
            phone = normalize_phone(raw_phone)
            if phone is None:
                self.problem(line, f"{prefix}_phone",
                             "not a Russian phone number: must look like +7 900 123-45-67")
        raw_email = row.get(f"{prefix}_email", "").strip()
        if raw_email:
            email = normalize_email(raw_email)
            if email is None:
                self.problem(line, f"{prefix}_email", "not a valid e-mail address")
        raw_snils = row.get(f"{prefix}_snils", "").strip()
        if raw_snils:
            digits = snils_digits(raw_snils)
            if digits is None:
                self.problem(line, f"{prefix}_snils", "SNILS must be 11 digits: 123-456-789 01")
            elif not snils_is_valid(digits):
                self.problem(line, f"{prefix}_snils", "SNILS control number does not match")
            else:
                snils = digits
        return Ids(phone, email, snils)


def _rows(text: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """Yield (line, fields) for each non-blank record, ``line`` being where the record starts.

    Lines end only at ``\n``, ``\r`` or ``\r\n`` (not at the other characters that
    ``str.splitlines`` breaks on), so line numbers are the ones an editor shows. A record the csv
    module cannot read is yielded as its ``csv.Error`` and reading goes on.
    """
    lines = io.StringIO(text, newline="")
    header_line = next((line for line in io.StringIO(text, newline="") if line.strip()), "")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    start = 1
    while True:
        try:
            fields: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = exc
        line = start
        start = reader.line_num + 1
        if isinstance(fields, list) and all(not f.strip() for f in fields):
            continue
        yield line, fields


def parse_roster(text: str, filename: str) -> Roster:
    if text.startswith("\ufeff"):
        text = text[1:]
    p = _Parser(filename)
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
            p.problem(header_line, "", f"column {number} has no name")
        elif col not in COLUMNS:
            p.problem(header_line, f"column {number}" if looks_personal(col) else col,
                      "unknown column")
        elif col in named:
            p.problem(header_line, col, "column given twice")
        named.add(col)
    for col in REQUIRED_COLUMNS:
        if col not in columns:
            p.problem(header_line, col, "required column is missing")
    if p.problems:
        raise InputInvalid(sorted(p.problems, key=lambda x: (x.line, x.field)))

    students: dict[str, RosterStudent] = {}
    student_phones: dict[str, tuple[str, int]] = {}
    guardian_rows: list[tuple[int, str, str, str, Ids, str, str]] = []
    rows = 0
    for line, fields in records:
        rows += 1
        if isinstance(fields, csv.Error):
            p.problem(line, "", f"not readable as CSV: {fields}")
            continue
        if len(fields) != len(columns):
            p.problem(line, "", f"expected {len(columns)} fields, found {len(fields)}")
            continue
        row = dict(zip(columns, fields, strict=True))
        before = len(p.problems)
        school = _name(row.get("school", ""))
        raw_class = row.get("class", "").strip()
        class_name = normalize_class(raw_class) if raw_class else None
        if not raw_class:
            p.problem(line, "class", "required")
        elif class_name is None:
            p.problem(line, "class", f"not a class like 7Б: {quote(raw_class)}")
        sid = row.get("student_id", "").strip()
        if not sid:
            p.problem(line, "student_id", "required")
        elif len(sid) > 64 or any(ch.isspace() for ch in sid):
            p.problem(line, "student_id", "must be at most 64 characters without spaces")
        s_last = p.name(row, "student_last_name", line, True)
        s_first = p.name(row, "student_first_name", line, True)
        s_middle = p.name(row, "student_middle_name", line, False)
        s_ids = p.ids(row, "student", line)

        g_filled = any(row.get(c, "").strip() for c in GUARDIAN_COLUMNS)
        g = None
        if g_filled:
            g_last = p.name(row, "guardian_last_name", line, True)
            g_first = p.name(row, "guardian_first_name", line, True)
            g_middle = p.name(row, "guardian_middle_name", line, False)
            g_ids = p.ids(row, "guardian", line)
            if not any(row.get(f"guardian_{k}", "").strip() for k in ("phone", "email", "snils")):
                p.problem(line, "guardian_phone",
                          "a guardian needs a phone, e-mail or SNILS to be recognised")
            relation = _name(row.get("guardian_relation", ""))
            if relation.lower() in RELATIONS:
                relation = relation.lower()
            g = (line, g_last, g_first, g_middle, g_ids, relation, sid)
        if len(p.problems) != before or class_name is None:
            continue

        student = RosterStudent(school, class_name, sid, s_last, s_first, s_middle, s_ids, line)
        first = students.get(sid)
        if first is None:
            students[sid] = student
            if s_ids.phone:
                other = student_phones.get(s_ids.phone)
                if other is not None and other[0] != sid:
                    p.problem(line, "student_phone",
                              f"the same phone is given for student {shown(other[0])}"
                              f" on line {other[1]}")
                else:
                    student_phones[s_ids.phone] = (sid, line)
        else:
            for fld, a, b in (
                ("school", first.school, school), ("class", first.class_name, class_name),
                ("student_last_name", first.last_name, s_last),
                ("student_first_name", first.first_name, s_first),
                ("student_middle_name", first.middle_name, s_middle),
            ):
                if not _same_name(a, b):
                    p.problem(line, fld,
                              f"student {shown(sid)} has {quote(a)} on line {first.line}")
            for kind in ("phone", "email", "snils"):
                if getattr(first.ids, kind) != getattr(s_ids, kind):
                    p.problem(line, f"student_{kind}",
                              f"student {shown(sid)} has a different {kind}"
                              f" on line {first.line}")
        if g is not None:
            guardian_rows.append(g)

    if not rows:
        p.problem(header_line, "", "no data rows")
    guardians, links = _group_guardians(guardian_rows, p)
    if p.problems:
        raise InputInvalid(sorted(p.problems, key=lambda x: (x.line, x.field)))
    return Roster(list(students.values()), guardians, links, rows)


def _group_guardians(rows, p: _Parser) -> tuple[list[RosterGuardian], list[RosterLink]]:
    """Rows sharing a phone, e-mail or SNILS are one guardian (union-find over identifiers)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[tuple[str, str], int] = {}
    for i, (_line, _l, _f, _m, ids, _rel, _sid) in enumerate(rows):
        for kind in ("phone", "email", "snils"):
            value = getattr(ids, kind)
            if value is None:
                continue
            j = seen.setdefault((kind, value), i)
            if j != i:
                parent[find(i)] = find(j)

    groups: dict[int, list[int]] = {}
    for i in range(len(rows)):
        groups.setdefault(find(i), []).append(i)

    guardians: list[RosterGuardian] = []
    links: list[RosterLink] = []
    name_fields = ("guardian_last_name", "guardian_first_name", "guardian_middle_name")
    for members in sorted(groups.values(), key=lambda m: rows[m[0]][0]):
        first = rows[members[0]]
        key = len(guardians)
        # Each name and identifier is taken from the first row that has it, with that row's line.
        names: dict[str, tuple[str, int]] = {}
        merged: dict[str, tuple[str, int]] = {}
        pairs: dict[str, int] = {}
        for i in members:
            line, last, first_name, middle, ids, relation, sid = rows[i]
            for fld, value in zip(name_fields, (last, first_name, middle), strict=True):
                if not value:
                    continue
                seen_name = names.setdefault(fld, (value, line))
                if not _same_name(seen_name[0], value):
                    p.problem(line, fld,
                              f"the same guardian has a different name on line {seen_name[1]}")
            for kind in ("phone", "email", "snils"):
                value = getattr(ids, kind)
                if value is None:
                    continue
                seen_id = merged.setdefault(kind, (value, line))
                if seen_id[0] != value:
                    p.problem(line, f"guardian_{kind}",
                              f"the same guardian has a different {kind} on line {seen_id[1]}")
            if sid in pairs:
                p.problem(line, "", f"duplicate row: this guardian is already linked to student"
                                    f" {shown(sid)} on line {pairs[sid]}")
                continue
            pairs[sid] = line
            links.append(RosterLink(sid, key, relation, line))
        last, first_name, middle = (names.get(fld, ("", 0))[0] for fld in name_fields)
        phone, email, snils = (merged.get(kind, (None, 0))[0]
                               for kind in ("phone", "email", "snils"))
        guardians.append(RosterGuardian(key, last, first_name, middle, Ids(phone, email, snils),
                                        first[0]))
    return guardians, links


def read_roster(path: str) -> Roster:
    text, encoding = read_text(path)
    return dataclasses.replace(parse_roster(text, path), encoding=encoding)
