"""Journal events (JSON Lines): parsing and validation of each line on its own.

Pure: references to the database (students, classes, grades, dots) are checked by the journal
service. Every problem of every line is collected; an invalid line yields no event.

Conventions of the format:

* ``id`` and every ``*_id`` field is a non-empty string; JSON numbers are accepted and converted.
* ``null`` means "absent": a required field that is ``null`` is reported as ``required``, an
  optional one takes its default. Optional text fields that are blank after stripping are
  ``None`` (in ``grade_changed`` a blank ``work`` or ``comment`` therefore clears it).
* Dates are ``YYYY-MM-DD``, times ``HH:MM``, moments ISO 8601 with an offset (converted to UTC).
  Dates and moments must lie in the years 2000 to 2100: anything else is a typo or a placeholder
  (``0001-01-01``, ``9999-12-31``), and such a date would break date arithmetic later.
* Unknown fields are ignored, so the journal may add fields without breaking the import.
* A mark's ``value`` is as the school shows it (``5``, ``"4-"``, ``"5/4"``, ``"зачёт"``), with
  an optional ``scale`` and ``five`` beside it: :func:`core.marks.parse_mark` reads the three.
  A ``weight`` of 0 shows the mark and leaves it out of every average.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from core.errors import Problem
from core.importers.text import quote, read_text, split_lines
from core.marks import Mark, parse_mark
from core.models import class_key


@dataclass(frozen=True, slots=True)
class GradeEvent:
    id: str
    line: int
    grade_id: str
    student_id: str
    subject: str
    date: date
    value: Mark
    weight: int
    work: str | None
    comment: str | None
    teacher: str | None
    set_at: datetime | None
    point_until: date | None = None  # a visible mark that carries a dot until that day (МЭШ)


@dataclass(frozen=True, slots=True)
class GradeChangedEvent:
    id: str
    line: int
    grade_id: str
    value: Mark | None
    weight: int | None
    work: str | None
    comment: str | None
    fields: frozenset[str]
    point_until: date | None = None


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
    value: Mark | None
    weight: int


@dataclass(frozen=True, slots=True)
class DotClosedEvent:
    id: str
    line: int
    dot_id: str
    value: Mark | None
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
class Link:
    """A link to materials: an http(s) address and, optionally, what it is called."""

    url: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class HomeworkEvent:
    id: str
    line: int
    homework_id: str
    class_name: str | None  # None: a task for one student (``student_id``)
    subject: str
    due: date
    text: str | None  # None: a placeholder («-», «нет», «не задано»): no homework
    required: bool
    updated_at: datetime | None
    student_id: str | None = None
    links: tuple[Link, ...] = ()


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
    lesson_id: str | None = None  # the journal's own id of the lesson
    group: str | None = None  # a group of the class, e.g. «1 группа»
    teacher_replaced: bool = False
    substitute: str | None = None  # who teaches instead
    remote: bool = False
    link: str | None = None  # the online lesson


@dataclass(frozen=True, slots=True)
class PeriodEvent:
    id: str
    line: int
    period_id: str
    name: str
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class FinalGradeEvent:
    """The final mark of a subject for a period (``period_id``) or, with ``None``, the year."""

    id: str
    line: int
    final_id: str
    student_id: str
    subject: str
    period_id: str | None
    mark: Mark
    set_at: datetime | None


@dataclass(frozen=True, slots=True)
class FinalGradeDeletedEvent:
    id: str
    line: int
    final_id: str


@dataclass(frozen=True, slots=True)
class AnnouncementEvent:
    """The school's announcement to parents, students or both, of some classes or the whole
    school; sent again under the same ``announcement_id``, it replaces what was published."""

    id: str
    line: int
    announcement_id: str
    text: str
    classes: tuple[str, ...]  # () : the whole school
    audience: str  # parents, students, all
    links: tuple[Link, ...] = ()
    pinned_until: date | None = None
    school: str | None = None  # the school's name as the roster gives it


Event = (
    GradeEvent | GradeChangedEvent | GradeDeletedEvent | DotEvent | DotClosedEvent
    | AttendanceEvent | HomeworkEvent | LessonEvent | PeriodEvent
    | FinalGradeEvent | FinalGradeDeletedEvent | AnnouncementEvent
)


@dataclass(frozen=True)
class JournalText:
    """A journal file's lines (ended by ``\\n`` or ``\\r\\n`` only) and the encoding read."""

    lines: list[str]
    encoding: str


def read_journal(path: str) -> JournalText:
    text, encoding = read_text(path)
    return JournalText(split_lines(text), encoding)


@dataclass
class ParsedJournal:
    events: list[Event] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rejected_lines: dict[int, str] = field(default_factory=dict)
    lines: int = 0
    duplicates: int = 0


MARKS = {"absent": "absent", "late": "late", "н": "absent", "оп": "late"}
LIMITS = {"subject": 100, "text": 10_000, "comment": 2_000}
DEFAULT_LIMIT = 500
ID_LIMIT = 128
ID_NUMBER = 10**ID_LIMIT
CHANGEABLE = ("value", "weight", "work", "comment", "point_until")
CLEARABLE = ("work", "comment", "point_until")  # null or blank in grade_changed clears it

BAD_DATE = "not a valid date (YYYY-MM-DD)"
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
OUT_OF_WINDOW = f"must be between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}"
BAD_TIME = "not a valid time (HH:MM)"
BAD_MOMENT = "not a valid ISO 8601 moment, e.g. 2026-11-23T10:15:00+03:00"
MAX_WEIGHT = 100  # the contract says «≥ 0»; a bound only catches garbage
BAD_WEIGHT = f"must be an integer from 0 to {MAX_WEIGHT}"  # 0: shown, not counted
BAD_CHARS = "contains an invalid \\u escape (a lone surrogate)"
BAD_MARK = "must be a mark (5, 4-, 5/4; 8 with scale 10) or a word (зачёт, н/а)"


def _unencodable(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _Reader:
    """Field readers for one JSON object; each problem is recorded, not raised.

    A reader returns ``None`` for a field it could not read, so a builder constructs its event
    only when no problem was recorded.
    """

    __slots__ = ("file", "line", "obj", "problems", "surrogates")

    def __init__(self, obj: dict[str, Any], line: int, file: str, surrogates: bool) -> None:
        self.obj = obj
        self.line = line
        self.file = file
        self.problems: list[Problem] = []
        # Only a \\uD800-\\uDFFF escape in the raw text can put a lone surrogate into a string;
        # such a string cannot be stored as UTF-8, so strings are checked when the line has one.
        self.surrogates = surrogates

    def bad(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.line, name, message))

    def ident(self, name: str) -> str | None:
        value = self.obj.get(name)
        if type(value) is str:
            text = value.strip()
            if text and len(text) <= ID_LIMIT and not self.surrogates:
                return text  # the common case, checked first
        elif type(value) is int:
            if -ID_NUMBER < value < ID_NUMBER:
                return str(value)
            self.bad(name, f"longer than {ID_LIMIT} characters")
            return None
        elif value is None:
            self.bad(name, "required")
            return None
        else:
            self.bad(name, "must be a string")
            return None
        if not text:
            self.bad(name, "required")
        elif len(text) > ID_LIMIT:
            self.bad(name, f"longer than {ID_LIMIT} characters")
        elif self.surrogates and _unencodable(text):
            self.bad(name, BAD_CHARS)
        else:
            return text
        return None

    def text(self, name: str, required: bool = True) -> str | None:
        value = self.obj.get(name)
        if type(value) is str:
            text = value.strip()
            limit = LIMITS.get(name, DEFAULT_LIMIT)
            if text and len(text) <= limit and not self.surrogates:
                return text  # the common case, checked first
            if not text:
                if required:
                    self.bad(name, "required")
            elif len(text) > limit:
                self.bad(name, f"longer than {limit} characters")
            elif _unencodable(text):
                self.bad(name, BAD_CHARS)
            else:
                return text
        elif value is None:
            if required:
                self.bad(name, "required")
        else:
            self.bad(name, "must be a string")
        return None

    def integer(self, name: str, low: int, high: int, required: bool = True) -> int | None:
        value = self.obj.get(name)
        if value is None:
            if required:
                self.bad(name, "required")
            return None
        if type(value) is not int:  # also rejects bool, a subclass of int
            self.bad(name, "must be an integer")
            return None
        if not low <= value <= high:
            self.bad(name, f"must be from {low} to {high}")
            return None
        return value

    def weight(self) -> int | None:
        value = self.obj.get("weight")
        if value is None:
            return None
        if type(value) is not int or not 0 <= value <= MAX_WEIGHT:
            self.bad("weight", BAD_WEIGHT)
            return None
        return value

    def mark(self, required: bool = True) -> Mark | None:
        """``value`` with ``scale`` and ``five``: a mark as the school shows it."""
        value = self.obj.get("value")
        if value is None:
            if required:
                self.bad("value", "required")
            for name in ("scale", "five"):
                if self.obj.get(name) is not None:
                    self.bad(name, "only with value")
            return None
        if type(value) is str and self.surrogates and _unencodable(value):
            self.bad("value", BAD_CHARS)
            return None
        if type(value) is int and value < 0:
            self.bad("value", "must not be negative")
            return None
        found = parse_mark(value, self.obj.get("scale"), self.obj.get("five"))
        if isinstance(found, tuple):
            self.bad(*found)
            return None
        if not found.fives and any(c.isdigit() for c in found.shown):
            # Digits that are no mark of the scale («4.5», «2026-11-20», a phone): garbage,
            # not a text mark such as «зачёт» or «н/а».
            self.bad("value", BAD_MARK)
            return None
        return found

    def boolean(self, name: str, default: bool) -> bool:
        value = self.obj.get(name)
        if value is None:
            return default
        if value is not True and value is not False:
            self.bad(name, "must be true or false")
            return default
        return value

    def _string(self, name: str, required: bool) -> str | None:
        """The field if it is a string; None (and a problem where due) otherwise."""
        value = self.obj.get(name)
        if value is None:
            if required:
                self.bad(name, "required")
            return None
        if type(value) is not str:
            self.bad(name, "must be a string")
            return None
        return value

    def day(self, name: str, required: bool = True) -> date | None:
        value = self._string(name, required=required)
        if value is None:
            return None
        # fromisoformat alone would also take week dates such as 2026-W01-1.
        if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
            try:
                day = date.fromisoformat(value)
            except ValueError:
                pass
            else:
                if FIRST_DAY <= day <= LAST_DAY:
                    return day
                self.bad(name, OUT_OF_WINDOW)
                return None
        self.bad(name, BAD_DATE)
        return None

    def clock(self, name: str) -> time | None:
        value = self._string(name, required=True)
        if value is None:
            return None
        if len(value) == 5 and value[2] == ":" and value.isascii():
            hours, minutes = value[:2], value[3:]
            if hours.isdigit() and minutes.isdigit():
                h, m = int(hours), int(minutes)
                if h < 24 and m < 60:
                    return time(h, m)
        self.bad(name, BAD_TIME)
        return None

    def moment(self, name: str) -> datetime | None:
        value = self._string(name, required=False)
        if value is None:
            return None
        text = value.strip()
        if not text:
            return None
        if text[-1] in "Zz":
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.bad(name, BAD_MOMENT)
            return None
        if moment.tzinfo is None:
            self.bad(name, "needs a time zone offset, e.g. +03:00")
            return None
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            self.bad(name, BAD_MOMENT)
            return None
        if not FIRST_DAY <= moment.date() <= LAST_DAY:
            self.bad(name, OUT_OF_WINDOW)
            return None
        return moment


def _grade(r: _Reader, eid: str) -> Event | None:
    grade_id, student_id = r.ident("grade_id"), r.ident("student_id")
    subject, day = r.text("subject"), r.day("date")
    value, weight = r.mark(), r.weight()
    work, comment = r.text("work", False), r.text("comment", False)
    teacher = r.text("teacher", False)
    set_at = r.moment("set_at")
    point_until = r.day("point_until", False)
    if day is not None and point_until is not None and point_until < day:
        r.bad("point_until", "must not be before date")
    if r.problems:
        return None
    return GradeEvent(eid, r.line, grade_id, student_id, subject, day, value,
                      1 if weight is None else weight, work, comment, teacher, set_at,
                      point_until)


def _grade_changed(r: _Reader, eid: str) -> Event | None:
    obj = r.obj
    grade_id = r.ident("grade_id")
    value, weight = r.mark(False), r.weight()
    work, comment = r.text("work", False), r.text("comment", False)
    point_until = None
    if type(obj.get("point_until")) is not str or obj["point_until"].strip():
        point_until = r.day("point_until", False)
    # A null value or weight changes nothing; a null or blank work, comment or point_until
    # clears it.
    present = frozenset(
        k for k in CHANGEABLE if k in obj and (obj[k] is not None or k in CLEARABLE))
    if not present:
        r.bad("", "grade_changed needs at least one of value, weight, work, comment,"
                  " point_until")
    if r.problems:
        return None
    return GradeChangedEvent(eid, r.line, grade_id, value, weight,
                             work, comment, present, point_until)


def _grade_deleted(r: _Reader, eid: str) -> Event | None:
    grade_id = r.ident("grade_id")
    if r.problems:
        return None
    return GradeDeletedEvent(eid, r.line, grade_id)


def _dot(r: _Reader, eid: str) -> Event | None:
    dot_id, student_id = r.ident("dot_id"), r.ident("student_id")
    subject, day, expires = r.text("subject"), r.day("date"), r.day("expires")
    work, comment = r.text("work", False), r.text("comment", False)
    teacher = r.text("teacher", False)
    value, weight = r.mark(False), r.weight()
    if day is not None and expires is not None and expires < day:
        r.bad("expires", "must not be before date")
    if r.problems:
        return None
    return DotEvent(eid, r.line, dot_id, student_id, subject, day,
                    expires, work, comment, teacher, value, 1 if weight is None else weight)


def _dot_closed(r: _Reader, eid: str) -> Event | None:
    dot_id = r.ident("dot_id")
    value, weight = r.mark(False), r.weight()
    if r.problems:
        return None
    return DotClosedEvent(eid, r.line, dot_id, value, weight)


def _mark(r: _Reader) -> str | None:
    raw = r.obj.get("mark")
    if raw is None:
        r.bad("mark", "required")
        return None
    if type(raw) is not str:
        r.bad("mark", "must be a string")
        return None
    mark = MARKS.get(raw.strip().lower())
    if mark is None:
        r.bad("mark", "must be absent or late")
    return mark


def _attendance(r: _Reader, eid: str) -> Event | None:
    attendance_id, student_id = r.ident("attendance_id"), r.ident("student_id")
    day, lesson, subject = r.day("date"), r.integer("lesson", 1, 20), r.text("subject")
    mark, excused = _mark(r), r.boolean("excused", False)
    if r.problems:
        return None
    return AttendanceEvent(eid, r.line, attendance_id, student_id,
                           day, lesson, subject, mark, excused)


def _class(r: _Reader) -> str | None:
    """``"7 б"`` -> ``"7Б"``: the spelling the roster uses."""
    value = r.text("class")
    return None if value is None else class_key(value)


# Texts a journal puts where no homework was set; compared trimmed, case-blind, «ё» as «е»,
# without a final full stop. A text without a letter or digit («-», «---», «.») is one too.
PLACEHOLDERS = frozenset({
    "нет", "не задано", "не задана", "не задан", "без задания", "без домашнего задания",
    "нет задания", "нет домашнего задания", "задания нет", "дз нет", "нет дз", "не задавалось",
    "отсутствует", "none", "no", "nothing", "no homework", "n/a", "na", "nil", "null",
})
MAX_LINKS = 20
URL_LIMIT = 2_000


def is_placeholder(text: str) -> bool:
    if not any(ch.isalnum() for ch in text):
        return True
    words = " ".join(text.lower().replace("ё", "е").split()).rstrip(".!")
    return words in PLACEHOLDERS


def _url(r: _Reader, name: str, value: object) -> str | None:
    """An absolute http or https address; a problem on ``name`` otherwise."""
    if value is None:
        r.bad(name, "required")
        return None
    if type(value) is not str:
        r.bad(name, "must be a string (an http or https address)")
        return None
    url = value.strip()
    if not url:
        r.bad(name, "required")
        return None
    if len(url) > URL_LIMIT:
        r.bad(name, f"longer than {URL_LIMIT} characters")
        return None
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if (not sep or scheme.lower() not in ("http", "https") or not host
            or any(ch.isspace() or ord(ch) < 32 or ch in '<>"' for ch in url)
            or (r.surrogates and _unencodable(url))):
        r.bad(name, "not an http or https address, e.g. https://example.ru/page")
        return None
    return url


def _links(r: _Reader) -> tuple[Link, ...]:
    """``links``: a list of addresses, or of ``{"url", "title"}`` objects."""
    value = r.obj.get("links")
    if value is None:
        return ()
    if type(value) is not list:
        r.bad("links", 'must be a list of addresses or of {"url", "title"} objects')
        return ()
    if len(value) > MAX_LINKS:
        r.bad("links", f"more than {MAX_LINKS} links")
        return ()
    links = []
    for n, item in enumerate(value):
        name = f"links[{n}]"
        if type(item) is dict:
            url = _url(r, f"{name}.url", item.get("url"))
            title = item.get("title")
            if title is not None and type(title) is not str:
                r.bad(f"{name}.title", "must be a string")
                title = None
            elif title is not None:
                title = " ".join(title.split()) or None
                if title is not None and len(title) > DEFAULT_LIMIT:
                    r.bad(f"{name}.title", f"longer than {DEFAULT_LIMIT} characters")
                elif title is not None and r.surrogates and _unencodable(title):
                    r.bad(f"{name}.title", BAD_CHARS)
            if url is not None:
                links.append(Link(url, title))
        else:
            url = _url(r, name, item)
            if url is not None:
                links.append(Link(url))
    return tuple(links)


def _homework(r: _Reader, eid: str) -> Event | None:
    homework_id = r.ident("homework_id")
    class_name = student_id = None
    has_class, has_student = r.obj.get("class") is not None, r.obj.get("student_id") is not None
    if has_class and has_student:
        r.bad("student_id", "give either class (a task for the class) or student_id"
                            " (a task for one student), not both")
    elif has_student:
        student_id = r.ident("student_id")
    elif has_class:
        class_name = _class(r)
    else:
        r.bad("class", "required (or student_id, for a task set to one student)")
    subject, due, text = r.text("subject"), r.day("due"), r.text("text")
    required, updated_at = r.boolean("required", True), r.moment("updated_at")
    links = _links(r)
    if r.problems:
        return None
    if is_placeholder(text):
        text = None
    return HomeworkEvent(eid, r.line, homework_id, class_name, subject, due, text, required,
                         updated_at, student_id, links)


def _optional_ident(r: _Reader, name: str) -> str | None:
    value = r.obj.get(name)
    if value is None or (type(value) is str and not value.strip()):
        return None
    return r.ident(name)


def _lesson(r: _Reader, eid: str) -> Event | None:
    class_name, day, number = _class(r), r.day("date"), r.integer("number", 1, 20)
    subject, start, end = r.text("subject"), r.clock("start"), r.clock("end")
    room, teacher = r.text("room", False), r.text("teacher", False)
    cancelled = r.boolean("cancelled", False)
    lesson_id, group = _optional_ident(r, "lesson_id"), r.text("group", False)
    if group is not None:
        group = " ".join(group.split())
    substitute = r.text("substitute", False)
    replaced = r.boolean("teacher_replaced", substitute is not None)
    if substitute is not None and not replaced:
        r.bad("substitute", "given for a lesson whose teacher_replaced is false")
    link = None if r.obj.get("link") is None else _url(r, "link", r.obj["link"])
    remote = r.boolean("remote", link is not None)
    if link is not None and not remote:
        r.bad("link", "given for a lesson whose remote is false")
    if start is not None and end is not None and end <= start:
        r.bad("end", "must be after start")
    if r.problems:
        return None
    return LessonEvent(eid, r.line, class_name, day, number, subject, start, end, room, teacher,
                       cancelled, lesson_id, group, replaced, substitute, remote, link)


def _period(r: _Reader, eid: str) -> Event | None:
    period_id, name = r.ident("period_id"), r.text("name")
    start, end = r.day("start"), r.day("end")
    if start is not None and end is not None and end < start:
        r.bad("end", "must not be before start")
    if r.problems:
        return None
    return PeriodEvent(eid, r.line, period_id, name, start, end)


YEAR = "year"  # the period_id of a final mark for the whole school year


def _final_grade(r: _Reader, eid: str) -> Event | None:
    final_id, student_id = r.ident("final_id"), r.ident("student_id")
    subject, period_id = r.text("subject"), r.ident("period_id")
    mark = r.mark()  # as a grade's: the same forms, the same refusals
    set_at = r.moment("set_at")
    if r.problems or mark is None:
        return None
    period = None if period_id.casefold() == YEAR else period_id
    return FinalGradeEvent(eid, r.line, final_id, student_id, subject, period, mark, set_at)


def _final_grade_deleted(r: _Reader, eid: str) -> Event | None:
    final_id = r.ident("final_id")
    if r.problems:
        return None
    return FinalGradeDeletedEvent(eid, r.line, final_id)


ANNOUNCEMENT_LIMIT = 4_000
AUDIENCES = ("parents", "students", "all")
MAX_CLASSES = 200


def _class_names(r: _Reader) -> tuple[str, ...]:
    """``classes``: a list of class names, each spelt as the roster spells it (``"7 б"`` ->
    ``"7Б"``); absent, null or empty: the whole school."""
    value = r.obj.get("classes")
    if value is None:
        return ()
    if type(value) is not list:
        r.bad("classes", 'must be a list of class names, e.g. ["7Б", "8А"]')
        return ()
    if len(value) > MAX_CLASSES:
        r.bad("classes", f"more than {MAX_CLASSES} classes")
        return ()
    names: list[str] = []
    for n, item in enumerate(value):
        name = f"classes[{n}]"
        if type(item) is not str or not item.strip():
            r.bad(name, "must be a class name (a non-empty string)")
            continue
        text = class_key(item)
        if len(text) > DEFAULT_LIMIT:
            r.bad(name, f"longer than {DEFAULT_LIMIT} characters")
        elif r.surrogates and _unencodable(text):
            r.bad(name, BAD_CHARS)
        elif text not in names:
            names.append(text)
    return tuple(names)


def _announcement(r: _Reader, eid: str) -> Event | None:
    announcement_id = r.ident("announcement_id")
    raw = r.obj.get("text")
    text = None
    if type(raw) is str and len(raw.strip()) > ANNOUNCEMENT_LIMIT:
        r.bad("text", f"longer than {ANNOUNCEMENT_LIMIT} characters")
    else:
        text = r.text("text")
    classes = _class_names(r)
    audience = r.obj.get("audience")
    if audience is None:
        audience = "all"
    elif type(audience) is not str or audience.strip().lower() not in AUDIENCES:
        r.bad("audience", "must be parents, students or all")
    else:
        audience = audience.strip().lower()
    links = _links(r)
    pinned_until = r.day("pinned_until", False)
    school = r.text("school", False)
    if r.problems:
        return None
    return AnnouncementEvent(eid, r.line, announcement_id, text, classes, audience, links,
                             pinned_until, school)


BUILDERS: dict[str, Callable[[_Reader, str], Event | None]] = {
    "grade": _grade,
    "grade_changed": _grade_changed,
    "grade_deleted": _grade_deleted,
    "dot": _dot,
    "dot_closed": _dot_closed,
    "attendance": _attendance,
    "homework": _homework,
    "lesson": _lesson,
    "period": _period,
    "final_grade": _final_grade,
    "final_grade_deleted": _final_grade_deleted,
    "announcement": _announcement,
}


def _parse(obj: object, line: int, filename: str,
           surrogates: bool) -> tuple[Event | None, list[Problem]]:
    if type(obj) is not dict:
        return None, [Problem(filename, line, "", "expected a JSON object")]
    r = _Reader(obj, line, filename, surrogates)
    eid = r.ident("id")
    kind = obj.get("type")
    builder = None
    if kind is None:
        r.bad("type", "required")
    elif type(kind) is not str:
        r.bad("type", "must be a string")
    else:
        builder = BUILDERS.get(kind)
        if builder is None:
            r.bad("type", f"unknown event type {quote(kind)}")
    if builder is None:
        return None, r.problems
    event = builder(r, eid)
    return (None if r.problems else event), r.problems


def parse_event(obj: object, line: int, filename: str) -> tuple[Event | None, list[Problem]]:
    """Validate one decoded JSON value: ``(event, [])`` or ``(None, problems)``."""
    return _parse(obj, line, filename, True)


def parse_journal(lines: Iterable[str], filename: str) -> ParsedJournal:
    """Parse JSON Lines; line numbers are physical (1-based), blank lines are skipped.

    An event whose ``id`` already appeared in a valid line earlier in the file is skipped and
    counted in ``duplicates``; an invalid line never claims its ``id``.
    """
    result = ParsedJournal()
    events, problems, rejected = result.events, result.problems, result.rejected_lines
    seen: set[str] = set()
    loads = json.loads
    count = duplicates = 0
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text or text.isspace():
            continue
        count += 1
        try:
            obj = loads(text)
        except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            problems.append(Problem(filename, number, "", f"not valid JSON: {reason}"))
            rejected[number] = text
            continue
        except RecursionError:
            problems.append(Problem(filename, number, "", "not valid JSON: nested too deeply"))
            rejected[number] = text
            continue
        surrogates = "\\u" in text and ("\\ud" in text or "\\uD" in text)
        event, found = _parse(obj, number, filename, surrogates)
        if event is None:
            problems.extend(found)
            rejected[number] = text
            continue
        if event.id in seen:
            duplicates += 1
            continue
        seen.add(event.id)
        events.append(event)
    result.lines = count
    result.duplicates = duplicates
    return result
