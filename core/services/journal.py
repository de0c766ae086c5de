"""Applying journal events: idempotent by event id, all or nothing, pushes in the same transaction.

Validation happens in two passes: the parser checks each line on its own, then ``check`` looks the
references up in the database (students, classes, grades and dots named by earlier events). The
second pass and the writes share one write transaction, so two imports of the same file at once
run one after the other and the second finds the events already imported.

What runs one after the other: on SQLite every write transaction does. On PostgreSQL an import
locks the rows of the students its events are about (and of the classes of its homework and
lessons) before it checks anything, so imports of files about other children run at the same
time, and two that share a child run one after the other. A file that declares periods (which
move every child's sums) runs alone, and so does an import whose check finds it touches a child
it did not lock (a concurrent import created the grade it names) or that meets a concurrent one
in the database (the same id written for another child): it is rolled back and done again alone.

A grade, dot, attendance or final mark id belongs to the student it was first seen with: an event
that names it with another student is rejected, never applied as a correction that would move the
fact (and its pushes) to another child.

What is news: a mark without ``set_at`` is news when it first reaches the bot, whatever its
lesson date (a mark put today for last week's lesson is pushed); with ``set_at``, when that moment
lies within ``RELEVANCE_DAYS``. A student's history — the import that brings their first journal
data (``students.journal_since`` is set by it) and those of the history window after it — is old
facts and a few recent ones: there only what is recent is news (set within ``RELEVANCE_DAYS``, or
without ``set_at`` of a day within them), and its pushes wait for the window's end, so a history
posted in batches reaches each recipient as one message. ``--no-notify`` stores without pushes
and ends the window at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from core.clock import Clock, from_db, to_db
from core.errors import InputInvalid, Problem
from core.importers.journal import (
    AnnouncementEvent,
    AttendanceEvent,
    DotClosedEvent,
    DotEvent,
    Event,
    FinalGradeDeletedEvent,
    FinalGradeEvent,
    GradeChangedEvent,
    GradeDeletedEvent,
    GradeEvent,
    HomeworkEvent,
    LessonEvent,
    ParsedJournal,
    PeriodEvent,
)
from core.importers.text import quote
from core.models import Role, Scope
from core.pushes import KINDS, grade_push, mark_words
from core.services.absence import AbsenceService
from core.services.access import AccessService, school_audience
from core.services.announcements import ANNOUNCEMENT_ROLES, ANNOUNCEMENT_SCOPE
from core.services.dots import close_dot
from core.services.grades import (
    SUMS_SQL,
    Period,
    Stored,
    mean,
    period_of,
    school_year,
    subject_sums,
)
from core.services.outbox import enqueue_many, outbox_row
from core.storage.db import Database, Tx, error_text, in_list

log = logging.getLogger(__name__)

CHUNK = 500
FLUSH_EVERY = 2000

_SumKey = tuple[int, str, tuple[date, date]]  # (student, subject, (period start, period end))


@dataclass
class JournalSummary:
    lines: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    already_imported: int = 0
    duplicates_in_file: int = 0
    rejected: int = 0
    pushes: int = 0
    notify: bool = True

    @property
    def applied_total(self) -> int:
        return sum(self.applied.values())


@dataclass
class Checked:
    """The outcome of validation: what to apply and what was rejected."""

    events: list[Event]
    problems: list[Problem]
    rejected_lines: dict[int, str]
    already_imported: int
    students: dict[str, tuple[int, str, bool]]  # external id -> (id, first name, active)
    classes: dict[str, int]
    existing_grades: set[str]  # grade ids already in the database
    # Whom the events to apply are about: students' external ids (a correction, a deletion or a
    # closed dot: the grade's or dot's student) and class ids (homework, lessons).
    touched_students: set[str] = field(default_factory=set)
    touched_classes: set[int] = field(default_factory=set)
    existing_finals: set[str] = field(default_factory=set)  # final ids already in the database
    # Announcements' event ids -> (the school's id, the classes' ids; none: the whole school).
    announcements: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)


def _chunks(items: list[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# The payload of a push, as its JSON text.
_payload_json = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


class JournalService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        tz: ZoneInfo,
        access: AccessService,
        *,
        relevance_days: int,
        attendance_hold: timedelta,
        history_window: timedelta,
        absence: AbsenceService,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.access = access
        self.relevance = timedelta(days=relevance_days)
        self.on_queued = on_queued
        self.absence = absence or AbsenceService(db, clock, tz)
        self.attendance_hold = attendance_hold
        # A student's history keeps coming for a while (a journal posting it in batches): the
        # imports of this long after the first one are history too.
        self.history_window = history_window

    # -- validation against the database -------------------------------------------------

    async def check(self, parsed: ParsedJournal, filename: str, raw: dict[int, str]) -> Checked:
        """``raw`` maps line numbers to their text, for the rejects file."""
        async with self.db.read() as tx:
            return await self._check(tx, parsed, filename, raw)

    async def _check(self, tx: Tx, parsed: ParsedJournal, filename: str,
                     raw: dict[int, str], school: str | None = None) -> Checked:
        """``school``: the events come from that school's journal (the ingestion API) and may be
        about its students and classes only; the others are refused as unknown there."""
        problems = list(parsed.problems)
        rejected = dict(parsed.rejected_lines)
        ids = [e.id for e in parsed.events]
        student_ext = sorted({e.student_id for e in parsed.events
                              if getattr(e, "student_id", None) is not None})
        grade_refs = sorted({e.grade_id for e in parsed.events
                             if isinstance(e, GradeChangedEvent | GradeDeletedEvent | GradeEvent)})
        dot_refs = sorted({e.dot_id for e in parsed.events
                           if isinstance(e, DotClosedEvent | DotEvent)})
        mark_refs = sorted({e.attendance_id for e in parsed.events
                            if isinstance(e, AttendanceEvent)})
        class_names = sorted({e.class_name for e in parsed.events
                              if isinstance(e, HomeworkEvent | LessonEvent)
                              and e.class_name is not None})
        final_refs = sorted({e.final_id for e in parsed.events
                             if isinstance(e, FinalGradeEvent | FinalGradeDeletedEvent)})
        period_refs = sorted({e.period_id for e in parsed.events
                              if isinstance(e, FinalGradeEvent) and e.period_id is not None})

        async def lookup(sql: str, values: list[str], *first: Any) -> list:
            """``sql`` with ``{in}`` for the list of values, asked in chunks; ``first``: the
            parameters before the list."""
            rows = []
            for part in _chunks(values):
                marks, padded = in_list(part)
                rows += await tx.fetchall(sql.format(**{"in": marks}), [*first, *padded])
            return rows

        def owners(table: str) -> str:
            return (f"SELECT t.external_id, s.external_id FROM {table} t"
                    f" JOIN students s ON s.id = t.student_id WHERE t.external_id IN ({{in}})")

        done = {r[0] for r in await lookup(
            "SELECT event_id FROM journal_events WHERE event_id IN ({in})", ids)}
        students: dict[str, tuple[int, str, bool]] = {
            r["external_id"]: (r["id"], r["first_name"], bool(r["active"]))
            for r in await lookup("SELECT id, external_id, first_name, active FROM students"
                                  " WHERE external_id IN ({in})", student_ext)}
        # Whose each id is: (kind, id) -> the student's external id.
        owner: dict[tuple[str, str], str] = {}
        for kind, table, refs in (("grade_id", "grades", grade_refs), ("dot_id", "dots", dot_refs),
                                  ("attendance_id", "attendance", mark_refs),
                                  ("final_id", "final_grades", final_refs)):
            for r in await lookup(owners(table), refs):
                owner[(kind, r[0])] = r[1]
        in_db = {ref for kind, ref in owner if kind == "grade_id"}
        grades = set(in_db)
        dots = {ref for kind, ref in owner if kind == "dot_id"}
        finals_in_db = {ref for kind, ref in owner if kind == "final_id"}
        finals = set(finals_in_db)
        periods = {r[0] for r in await lookup(
            "SELECT external_id FROM periods WHERE external_id IN ({in})", period_refs)}
        classes: dict[str, list[int]] = {}
        for name in class_names:
            if school is None:
                rows = await tx.fetchall("SELECT id FROM classes WHERE name = ?", (name,))
            else:
                rows = await tx.fetchall(
                    "SELECT c.id FROM classes c JOIN schools sc ON sc.id = c.school_id"
                    " WHERE c.name = ? AND sc.name = ?", (name, school))
            classes[name] = [r[0] for r in rows]
        # Students (named, or owning a named grade or dot) of other schools than ``school``.
        foreign: set[str] = set()
        if school is not None:
            foreign = {r[0] for r in await lookup(
                "SELECT s.external_id FROM students s JOIN schools sc ON sc.id = s.school_id"
                " WHERE sc.name <> ? AND s.external_id IN ({in})",
                sorted(set(student_ext) | set(owner.values())), school)}
            grades -= {ref for (kind, ref), sid in owner.items()
                       if kind == "grade_id" and sid in foreign}
            dots -= {ref for (kind, ref), sid in owner.items()
                     if kind == "dot_id" and sid in foreign}

        announced = await _announcement_targets(
            tx, [e for e in parsed.events if isinstance(e, AnnouncementEvent)
                 and e.id not in done], school)

        valid: list[Event] = []
        already = 0

        def reject(event: Event, fld: str, message: str) -> None:
            problems.append(Problem(filename, event.line, fld, message))
            rejected[event.line] = raw.get(event.line, "")

        for event in parsed.events:
            if event.id in done:
                already += 1
                continue
            sid = getattr(event, "student_id", None)
            if sid is not None and sid not in students:
                reject(event, "student_id", f"unknown student {quote(sid)} (not on the roster)")
                continue
            if sid is not None and sid in foreign:
                reject(event, "student_id",
                       f"unknown student {quote(sid)} (not on the roster of this school)")
                continue
            if isinstance(event, HomeworkEvent | LessonEvent) and event.class_name is not None:
                found = classes.get(event.class_name, [])
                if not found:
                    reject(event, "class", f"unknown class {quote(event.class_name)}"
                           + ("" if school is None else " (not in this school)"))
                    continue
                if len(found) > 1:
                    reject(event, "class",
                           f"class {quote(event.class_name)} exists in several schools")
                    continue
            if isinstance(event, AnnouncementEvent) and isinstance(announced[event.id], list):
                for fld, message in announced[event.id]:
                    problems.append(Problem(filename, event.line, fld, message))
                rejected[event.line] = raw.get(event.line, "")
                continue
            if isinstance(event, GradeChangedEvent | GradeDeletedEvent):
                if event.grade_id not in grades:
                    reject(event, "grade_id", f"unknown grade {quote(event.grade_id)}")
                    continue
            if isinstance(event, DotClosedEvent) and event.dot_id not in dots:
                reject(event, "dot_id", f"unknown dot {quote(event.dot_id)}")
                continue
            if isinstance(event, FinalGradeEvent) and event.period_id is not None \
                    and event.period_id not in periods:
                reject(event, "period_id", f"unknown period {quote(event.period_id)}"
                       " (declare it with a period event first, or use \"year\")")
                continue
            if isinstance(event, FinalGradeDeletedEvent) and event.final_id not in finals:
                reject(event, "final_id", f"unknown final mark {quote(event.final_id)}")
                continue
            key = _owned_id(event)
            if key is not None:
                first = owner.setdefault(key, event.student_id)
                if first != event.student_id:
                    reject(event, key[0], "already used for another student")
                    continue
            if isinstance(event, GradeEvent):
                grades.add(event.grade_id)
            if isinstance(event, DotEvent):
                dots.add(event.dot_id)
            if isinstance(event, FinalGradeEvent):
                finals.add(event.final_id)
            if isinstance(event, PeriodEvent):
                periods.add(event.period_id)
            valid.append(event)
        problems.sort(key=lambda p: (p.line, p.field))
        single_classes = {name: found[0] for name, found in classes.items() if len(found) == 1}
        touched_students: set[str] = set()
        touched_classes: set[int] = set()
        for event in valid:
            if isinstance(event, HomeworkEvent | LessonEvent) and event.class_name is not None:
                touched_classes.add(single_classes[event.class_name])
            elif isinstance(event, GradeChangedEvent | GradeDeletedEvent):
                touched_students.add(owner[("grade_id", event.grade_id)])
            elif isinstance(event, DotClosedEvent):
                touched_students.add(owner[("dot_id", event.dot_id)])
            elif isinstance(event, FinalGradeDeletedEvent):
                touched_students.add(owner[("final_id", event.final_id)])
            elif not isinstance(event, PeriodEvent | AnnouncementEvent):
                touched_students.add(event.student_id)
        return Checked(valid, problems, rejected, already, students, single_classes, in_db,
                       touched_students, touched_classes, finals_in_db,
                       {e.id: announced[e.id] for e in valid
                        if isinstance(e, AnnouncementEvent)})

    # -- who runs at the same time as whom ---------------------------------------------------

    async def _lock_rows(self, tx: Tx, parsed: ParsedJournal) -> tuple[set[str], set[int]]:
        """PostgreSQL: lock the rows of the students and classes the file's events are about,
        ascending by id (two imports never wait for each other in a circle), until the
        transaction ends; returns the students' external ids and the classes' ids locked.
        The students of corrections, deletions and closed dots are those of their grades and
        dots as the database has them now (or of the file's own events)."""
        students = {e.student_id for e in parsed.events
                    if getattr(e, "student_id", None) is not None}
        kinds = (("grades", {e.grade_id for e in parsed.events
                             if isinstance(e, GradeChangedEvent | GradeDeletedEvent)}),
                 ("dots", {e.dot_id for e in parsed.events if isinstance(e, DotClosedEvent)}),
                 ("final_grades", {e.final_id for e in parsed.events
                                   if isinstance(e, FinalGradeDeletedEvent)}))
        for table, refs in kinds:
            for part in _chunks(sorted(refs)):
                marks, padded = in_list(part)
                students.update(r[0] for r in await tx.fetchall(
                    f"SELECT s.external_id FROM {table} t JOIN students s ON s.id = t.student_id"
                    f" WHERE t.external_id IN ({marks})", padded))
        names = sorted({e.class_name for e in parsed.events
                        if isinstance(e, HomeworkEvent | LessonEvent)
                        and e.class_name is not None})
        ids: dict[int, str] = {}
        for part in _chunks(sorted(students)):
            marks, padded = in_list(part)
            ids.update((r[0], r[1]) for r in await tx.fetchall(
                f"SELECT id, external_id FROM students WHERE external_id IN ({marks})", padded))
        class_ids: set[int] = set()
        for part in _chunks(names):
            marks, padded = in_list(part)
            class_ids.update(r[0] for r in await tx.fetchall(
                f"SELECT id FROM classes WHERE name IN ({marks})", padded))
        locked: dict[str, set[int]] = {"students": set(), "classes": set()}
        for table, wanted in (("students", ids), ("classes", class_ids)):
            for part in _chunks(sorted(wanted)):
                marks, padded = in_list(part)
                # FOR NO KEY UPDATE: rows pointing at these (a grade, a link) can still be
                # written by others; another import's lock waits.
                locked[table].update(r[0] for r in await tx.fetchall(
                    f"SELECT id FROM {table} WHERE id IN ({marks}) ORDER BY id"
                    f" FOR NO KEY UPDATE", padded))
        return {ids[i] for i in locked["students"]}, locked["classes"]

    # -- applying ---------------------------------------------------------------------------

    async def import_journal(
        self,
        parsed: ParsedJournal,
        filename: str,
        raw: dict[int, str] | None = None,
        *,
        notify: bool = True,
        skip_invalid: bool = False,
        progress: Callable[[int, int], None] | None = None,
        school: str | None = None,
    ) -> tuple[JournalSummary, Checked]:
        """``school``: events from that school's journal, refused unless about its students
        and classes (see ``_check``)."""
        args = (parsed, filename, raw or {}, notify, skip_invalid, progress, school)
        alone = self.db.is_sqlite or any(isinstance(e, PeriodEvent | AnnouncementEvent)
                                         for e in parsed.events)
        if not alone:
            try:
                return await self._import(*args, alone=False)
            except _Contended as exc:
                log.info("%s: %s; imported again alone", filename, exc)
        return await self._import(*args, alone=True)

    async def _import(
        self,
        parsed: ParsedJournal,
        filename: str,
        raw: dict[int, str],
        notify: bool,
        skip_invalid: bool,
        progress: Callable[[int, int], None] | None,
        school: str | None = None,
        *,
        alone: bool,
    ) -> tuple[JournalSummary, Checked]:
        """``alone``: no other import runs at the same time (on SQLite none ever does); else
        (PostgreSQL) only the students and classes of the file are locked, and ``_Contended``
        says the import must be done again alone."""
        try:
            async with self.db.transaction() as tx:
                if alone:
                    await tx.lock("journal-import")
                else:
                    await tx.lock("journal-import", shared=True)
                    students, classes = await self._lock_rows(tx, parsed)
                # Checked under the locks: an import running at the same time has either
                # committed (its events count as already imported) or not started writing.
                checked = await self._check(tx, parsed, filename, raw, school)
                if not alone and not (checked.touched_students <= students
                                      and checked.touched_classes <= classes):
                    raise _Contended("it is about a student or class it had not locked")
                if checked.problems and not skip_invalid:
                    raise InputInvalid(checked.problems)
                summary = JournalSummary(
                    lines=parsed.lines,
                    already_imported=checked.already_imported,
                    duplicates_in_file=parsed.duplicates,
                    rejected=len(checked.rejected_lines),
                    notify=notify,
                )
                applier = _Applier(self, tx, checked, summary, notify)
                await applier.find_first_data()
                events = checked.events
                total = len(events)
                ahead = 0  # the events before this one have had what they need read in sets
                for n, event in enumerate(events, 1):
                    if n > ahead:
                        ahead = await applier.look_ahead(events, n - 1)
                    await applier.apply(event)
                    if progress is not None and (n % 1000 == 0 or n == total):
                        progress(n, total)
                await applier.flush()
                await applier.record_first_data()
                await tx.execute(
                    "INSERT INTO imports (kind, source, finished_at, summary)"
                    " VALUES (?, ?, ?, ?)",
                    ("journal", filename, to_db(self.clock.now()), json.dumps(asdict(summary))),
                )
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if alone or code not in _CONTENDED:
                raise
            raise _Contended(f"met an import running at the same time ({error_text(exc)})"
                             ) from exc
        if summary.pushes and self.on_queued is not None:
            self.on_queued()
        return summary, checked

    async def import_batches(
        self,
        plan: Callable[[Tx], AsyncIterator[Batch]],
        filename: str,
        *,
        kind: str = "journal",
        notify: bool = True,
        dry_run: bool = False,
        school: str | None = None,
    ) -> JournalSummary:
        """Events worked out inside the import's own write transaction (snapshot sync).

        ``plan`` reads what it needs through the transaction and yields batches; each batch is
        checked and applied, its writes visible, before the plan goes on, so the plan may diff
        against what the batch before it wrote and keep its own bookkeeping in the same
        transaction. A quiet batch is stored without pushes. A batch with problems is not
        applied, nor is any batch after it (they are still checked); when the plan ends, the
        problems are raised as ``InputInvalid`` and nothing is changed. ``dry_run``: everything
        is done, counted and rolled back. ``school``: as for ``_check`` (the ingestion API).
        Runs alone among imports."""
        summary = JournalSummary(notify=notify)
        try:
            async with self.db.transaction() as tx:
                await tx.lock("journal-import")
                applier: _Applier | None = None
                problems: list[Problem] = []
                async for batch in plan(tx):
                    parsed = ParsedJournal(events=batch.events)
                    checked = await self._check(tx, parsed, filename, {}, school)
                    batch.problems = checked.problems
                    problems += checked.problems
                    if problems:
                        continue
                    if applier is None:
                        applier = _Applier(self, tx, checked, summary, notify)
                    else:
                        applier.checked = checked
                        applier.known_grades |= checked.existing_grades
                    applier.notify = notify and not batch.quiet
                    before = summary.pushes
                    events = checked.events
                    ahead = 0
                    for n, event in enumerate(events, 1):
                        if n > ahead:
                            ahead = await applier.look_ahead(events, n - 1)
                        await applier.apply(event)
                    await applier.flush()
                    batch.applied = len(events)
                    batch.already_imported = checked.already_imported
                    batch.pushes = summary.pushes - before
                    summary.lines += len(batch.events)
                    summary.already_imported += checked.already_imported
                if problems:
                    raise InputInvalid(problems)
                await tx.execute(
                    "INSERT INTO imports (kind, source, finished_at, summary) VALUES (?, ?, ?, ?)",
                    (kind, filename, to_db(self.clock.now()), json.dumps(asdict(summary))),
                )
                if dry_run:
                    raise _DryRun
        except _DryRun:
            return summary
        if summary.pushes and self.on_queued is not None:
            self.on_queued()
        return summary


@dataclass
class Batch:
    """Events for ``JournalService.import_batches``; what was done is filled in."""

    events: list[Event]
    quiet: bool = False  # stored without pushes
    applied: int = 0
    already_imported: int = 0
    pushes: int = 0
    problems: list[Problem] = field(default_factory=list)


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


def grade_differences(event: GradeEvent, row: Any) -> set[str]:
    """The fields of a stored grade (a ``grades`` row) that ``event`` would give another value:
    those of the event the row has a column of the same name for, but the ids, the teacher and
    ``set_at``, which a correction does not change."""
    found = set()
    columns = set(row.keys())
    for name in GradeEvent.__dataclass_fields__:
        if name == "value" and "shown" in columns:
            # A mark is kept as shown, its scale and what it counts as (``value`` is only its
            # one-figure number for old readers).
            mark = event.value
            stored = (row["shown"] if row["shown"] is not None else _stored_form(row["value"]),
                      row["scale"] or "5", float(row["points"] or 0), int(row["parts"] or 0))
            if (mark.shown, mark.scale, mark.points, mark.parts) != stored:
                found.add(name)
            continue
        if name in _NOT_COMPARED or name not in columns:
            continue
        if _stored_form(getattr(event, name)) != _stored_form(row[name]):
            found.add(name)
    return found


_NOT_COMPARED = frozenset({"id", "line", "grade_id", "student_id", "teacher", "set_at"})


def _stored_form(value: Any) -> str | None:
    """A value as text, the way the grades table keeps it, to compare an event's with a row's."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, datetime):
        return to_db(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    shown = getattr(value, "shown", None)  # a mark as the school shows it
    if isinstance(shown, str):
        return shown
    return str(value)


class _Contended(Exception):
    """An import that locked only its own students met another one: done again alone."""


# Unique violation (the same id written by two imports about different children), deadlock
# (another writer took the rows in another order), serialization failure.
_CONTENDED = {"23505", "40P01", "40001"}


def _links_json(event: HomeworkEvent) -> str | None:
    """A task's links as stored: JSON text, or NULL when it has none."""
    if not event.links:
        return None
    return _payload_json([{"url": x.url, "title": x.title} for x in event.links])


def _owned_id(event: Event) -> tuple[str, str] | None:
    """The id an event gives to one student's fact, as (field, id)."""
    if isinstance(event, GradeEvent):
        return ("grade_id", event.grade_id)
    if isinstance(event, DotEvent):
        return ("dot_id", event.dot_id)
    if isinstance(event, AttendanceEvent):
        return ("attendance_id", event.attendance_id)
    if isinstance(event, FinalGradeEvent):
        return ("final_id", event.final_id)
    return None


class _Applier:
    def __init__(
        self, svc: JournalService, tx: Tx, checked: Checked, summary: JournalSummary, notify: bool
    ) -> None:
        self.svc = svc
        self.tx = tx
        self.checked = checked
        self.summary = summary
        self.notify = notify
        self.now = svc.clock.now()
        self.stamp = to_db(self.now)
        self.today = self.now.astimezone(svc.tz).date()
        self.pending_grades: list[tuple[Any, ...]] = []
        self.ledger: list[tuple[str, str, str]] = []
        self.audiences: dict[tuple[int, Scope], list[tuple[int, Role]]] = {}
        self.periods: dict[date, Period] = {}
        self.spans: dict[date, tuple[date, date]] = {}  # the day's period as (start, end)
        self.known_grades = set(checked.existing_grades)
        # Pushes are written in sets with the grades; a subject's sums are read once (for many
        # children at a time, see ``look_ahead``) and then kept up to date here, so an
        # announced grade costs no round trip of its own.
        self.pending_pushes: list[tuple[Any, ...]] = []
        # Sums by (student, subject, period); a period is (start, end): two periods may start on
        # the same day (a quarter and the school year that stands for a holiday gap).
        # (Tuples, replaced as they change: thousands of them live through an import, and the
        # garbage collector stops tracking a tuple of numbers, never a list.)
        self.sums: dict[_SumKey, tuple[float, int]] = {}  # read and kept up to date since
        self.unwritten: dict[_SumKey, tuple[float, int]] = {}  # not read: counted, not written
        # Students in their history: this import brings their first journal data, or more of it
        # within the history window after the first. Student id -> when that window ends (their
        # pushes wait for it, so that a history posted in batches goes as one message).
        self.fresh: dict[int, datetime] = {}
        self.first: set[int] = set()  # of them, those whose first journal data this is
        # Final marks: what each one named by the file is now (read in sets, then kept up to
        # date here), new ones and changes written with the next flush, and the periods they
        # close: external id -> (periods.id, name, the school year it belongs to).
        self.known_finals = set(checked.existing_finals)
        self.finals: dict[str, dict[str, Any]] = {}
        self.pending_finals: list[tuple[Any, ...]] = []
        self.changed_finals: list[tuple[Any, ...]] = []
        self.final_periods: dict[str, tuple[int, str, int]] = {}

    def _count(self, kind: str) -> None:
        self.summary.applied[kind] = self.summary.applied.get(kind, 0) + 1

    def student(self, external_id: str) -> tuple[int, str, bool]:
        return self.checked.students[external_id]

    async def settle(self) -> None:
        """Before an event that reads or changes stored grades in place: everything pending is
        written and the kept sums are forgotten."""
        await self.flush()
        self.sums.clear()

    async def flush(self) -> None:
        if self.pending_pushes:
            self.summary.pushes += await enqueue_many(self.tx, self.pending_pushes)
            self.pending_pushes.clear()
        if self.pending_grades:
            await self.tx.executemany(
                "INSERT INTO grades (external_id, student_id, subject, date, value, weight, work,"
                " comment, teacher, set_at, created_at, updated_at, quiet, shown, scale, points,"
                " parts, point_until)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.pending_grades,
            )
            self.pending_grades.clear()
            self.unwritten.clear()  # written now: a later read of sums includes them
        if self.ledger:
            await self.tx.executemany(
                "INSERT INTO journal_events (event_id, type, applied_at) VALUES (?, ?, ?)",
                self.ledger,
            )
            self.ledger.clear()
        if self.pending_finals:
            await self.tx.executemany(
                "INSERT INTO final_grades (external_id, student_id, subject, period_id,"
                " school_year, shown, scale, points, parts, set_at, deleted_at, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.pending_finals,
            )
            self.pending_finals.clear()
        if self.changed_finals:  # after the new ones: a change may be of a mark new in the file
            await self.tx.executemany(
                "UPDATE final_grades SET subject = ?, period_id = ?, school_year = ?, shown = ?,"
                " scale = ?, points = ?, parts = ?, set_at = ?, deleted_at = ?, updated_at = ?"
                " WHERE external_id = ?",
                self.changed_finals,
            )
            self.changed_finals.clear()

    async def apply(self, event: Event) -> None:
        handler, name = _HANDLERS[type(event)]
        await handler(self, event)
        self.ledger.append((event.id, name, self.stamp))
        self._count(name)
        if max(len(self.pending_grades), len(self.ledger),
               len(self.pending_pushes)) >= FLUSH_EVERY:
            await self.flush()

    # -- helpers --------------------------------------------------------------------------

    def relevant(self, day: date, set_at: datetime | None) -> bool:
        """Whether a fact of ``day`` is news: set (``set_at``) within ``RELEVANCE_DAYS``, or
        without ``set_at`` of a day within them (attendance)."""
        if not self.notify:
            return False
        if set_at is not None:
            return self.now - self.svc.relevance <= set_at <= self.now + timedelta(days=1)
        return 0 <= (self.today - day).days <= self.svc.relevance.days

    def announces(self, student_id: int, day: date | None, set_at: datetime | None) -> bool:
        """Whether a new fact about the child (a mark, a dot, a final mark) is pushed.

        Out of the child's history: without ``set_at`` it is, as it reaches the bot now
        whatever its lesson date; with it, if set within ``RELEVANCE_DAYS``. In the child's
        history (their first journal data and the window after it) only what is recent is
        news: set within ``RELEVANCE_DAYS``, or without ``set_at`` of a ``day`` within them or
        ahead; older facts (a term's marks) are history, stored without pushes."""
        if not self.notify:
            return False
        if student_id in self.fresh:
            if set_at is not None:
                return self.relevant(self.today, set_at)
            # A lesson ahead (a teacher entering marks early) is recent too.
            return day is not None and (self.today - day).days <= self.svc.relevance.days
        return set_at is None or self.relevant(self.today, set_at)

    def corrects(self, student_id: int, announced: bool) -> bool:
        """Whether a correction (a changed, deleted or regraded mark) is pushed: always out of
        the child's history; in it, only of a fact that was announced itself."""
        return self.notify and (announced or student_id not in self.fresh)

    def hold(self, student_id: int | None, hold: timedelta = timedelta(0)) -> timedelta:
        """How long a push about the child waits: a child's pushes in their history wait for
        the window's end, so each recipient hears of the recent days in one message however
        many batches the history came in."""
        end = self.fresh.get(student_id) if student_id is not None else None
        return hold if end is None else max(hold, end - self.now)

    async def find_first_data(self) -> None:
        """The students whose history this import brings: their first journal data (no grade,
        dot or attendance mark imported before), or more of it within the history window after
        the first (a journal posting a new school's history in batches)."""
        # Every student the events are about: named by them, or the owner of the grade, dot or
        # final mark a correction names (an import of corrections alone is history too).
        ids = sorted(self.checked.touched_students)
        window = self.svc.history_window
        recent = to_db(self.now - window)
        for part in _chunks(ids):
            marks, padded = in_list(part)
            for sid, since in await self.tx.fetchall(
                    f"SELECT id, journal_since FROM students WHERE external_id IN ({marks})"
                    " AND (journal_since IS NULL OR journal_since > ?)", (*padded, recent)):
                self.fresh[sid] = (self.now if since is None else from_db(since)) + window
                if since is None:
                    self.first.add(sid)

    async def record_first_data(self) -> None:
        """The students whose first journal data was imported now have some. History loaded
        on purpose (``--no-notify``) ends the window at once: what comes next is news."""
        # A day before the window, so that processes whose clocks differ by seconds (each
        # process's clock of its own) agree the window is over.
        if not self.notify:  # every window these events are in ends now
            ended = to_db(self.now - self.svc.history_window - timedelta(days=1))
            for part in _chunks(sorted(self.fresh)):
                marks, padded = in_list(part)
                await self.tx.execute(
                    f"UPDATE students SET journal_since = ? WHERE id IN ({marks})",
                    (ended, *padded))
            return
        for part in _chunks(sorted(self.first)):
            marks, padded = in_list(part)
            await self.tx.execute(
                f"UPDATE students SET journal_since = ? WHERE id IN ({marks})"
                " AND journal_since IS NULL", (self.stamp, *padded))
        if self.fresh:
            await self.hold_family_history()

    async def hold_family_history(self) -> None:
        """A family's children may come in different batches of a history, minutes apart:
        each recipient's pushes about children in their history wait for one moment, the
        latest end of those children's windows, so the family still gets one message."""
        tx, now = self.tx, self.stamp
        ends: dict[int, datetime] = {}  # recipient -> the latest window end of their children
        for scope in (Scope.GRADES, Scope.ATTENDANCE):
            found = await self.svc.access.audiences(tx, self.fresh, scope)
            for sid, accounts in found.items():
                for telegram_id, _role in accounts:
                    ends[telegram_id] = max(ends.get(telegram_id, self.fresh[sid]),
                                            self.fresh[sid])
        if not ends:
            return
        in_window = to_db(self.now - self.svc.history_window)
        held = ("sent_at IS NULL AND dropped_at IS NULL AND not_before > ?"
                " AND student_id IN (SELECT id FROM students WHERE journal_since > ?)")
        # Only the recipients with such pushes waiting have anything to move.
        waiting: dict[int, datetime] = {}
        for part in _chunks(sorted(ends)):
            marks, padded = in_list(part)
            for telegram_id, latest in await tx.fetchall(
                    f"SELECT telegram_id, MAX(not_before) FROM outbox WHERE telegram_id IN"
                    f" ({marks}) AND {held} GROUP BY telegram_id", (*padded, now, in_window)):
                waiting[telegram_id] = max(ends[telegram_id], from_db(latest))
        if waiting:
            await tx.executemany(
                f"UPDATE outbox SET not_before = ? WHERE telegram_id = ? AND {held}"
                " AND not_before < ? AND (claimed_until IS NULL OR claimed_until < ?)",
                [(to_db(end), telegram_id, now, in_window, to_db(end), now)
                 for telegram_id, end in sorted(waiting.items())])

    async def period(self, day: date) -> Period:
        if day not in self.periods:
            period = self.periods[day] = await period_of(self.tx, day)
            self.spans[day] = (period.start, period.end)
        return self.periods[day]

    async def span(self, day: date) -> tuple[date, date]:
        span = self.spans.get(day)
        if span is None:
            await self.period(day)
            span = self.spans[day]
        return span

    async def audience(self, student_id: int, scope: Scope = Scope.GRADES
                       ) -> list[tuple[int, Role]]:
        """Who is told about the child (the import changes no links: read once)."""
        if (student_id, scope) not in self.audiences:
            await self.load_audiences({student_id}, scope)
        return self.audiences[(student_id, scope)]

    async def load_audiences(self, student_ids: set[int], scope: Scope) -> None:
        wanted = {sid for sid in student_ids if (sid, scope) not in self.audiences}
        if wanted:
            found = await self.svc.access.audiences(self.tx, wanted, scope)
            for sid, accounts in found.items():
                self.audiences[(sid, scope)] = accounts

    async def look_ahead(self, events: list[Event], start: int) -> int:
        """Before ``events[start]``: what the pushes of the events from there up to the next one
        that settles will need — their audiences and the sums of the subjects of the grades they
        announce — is read in a few queries instead of one or two for each child. Returns where
        that stretch ends (the events up to there need nothing more read)."""
        if start == 0:
            await self.load_finals({e.final_id for e in events
                                    if type(e) in (FinalGradeEvent, FinalGradeDeletedEvent)})
        if not self.notify:
            return len(events)
        grades: set[int] = set()  # whose audience in Scope.GRADES
        marks: set[int] = set()  # in Scope.ATTENDANCE
        sums: set[tuple[int, str, date]] = set()  # (student, subject, day): whose sums
        seen: set[str] = set()  # grade ids new in this stretch
        students, known = self.checked.students, self.known_grades
        end = start
        while end < len(events):
            e = events[end]
            kind = type(e)
            if kind is GradeEvent:
                if e.grade_id in known or e.grade_id in seen:
                    break  # sent again: a correction, which settles
                seen.add(e.grade_id)
                sid, _name, active = students[e.student_id]
                if active and self.announces(sid, e.date, e.set_at):
                    grades.add(sid)
                    sums.add((sid, e.subject, e.date))
            elif kind in _SETTLING:
                break  # it settles: what is read before it is forgotten
            elif kind is DotEvent:
                sid, _name, active = students[e.student_id]
                if active and e.expires >= self.today and self.announces(sid, e.date, None):
                    grades.add(sid)
            elif kind is AttendanceEvent:
                sid, _name, active = students[e.student_id]
                if active and self.relevant(e.date, None):
                    marks.add(sid)
            elif kind is FinalGradeEvent:
                sid, _name, active = students[e.student_id]
                if active and self.announces(sid, None, e.set_at):
                    grades.add(sid)
            end += 1
        if end == start:
            return start + 1  # the event settles itself: nothing to read before it
        await self.load_audiences(grades, Scope.GRADES)
        await self.load_audiences(marks, Scope.ATTENDANCE)
        spans = {day: await self.span(day) for day in {day for _, _, day in sums}}
        await self.load_sums({(sid, subject, spans[day]) for sid, subject, day in sums})
        return end

    async def push(self, student_id: int, kind: str, key: str, payload: dict[str, Any],
                   hold: timedelta = timedelta(0)) -> None:
        """Queue a push to the child's audience with the next flush (same transaction)."""
        self.queue(await self.audience(student_id), student_id, kind, key, payload, hold)

    def queue(self, audience: list[tuple[int, Role]], student_id: int, kind: str, key: str,
              payload: dict[str, Any], hold: timedelta = timedelta(0)) -> None:
        text = _payload_json(payload)
        hold = self.hold(student_id, hold)
        for telegram_id, _role in audience:
            self.pending_pushes.append(outbox_row(telegram_id, kind, text, f"{key}:{telegram_id}",
                                                  self.now, student_id, hold))

    async def load_sums(self, keys: set[_SumKey]) -> None:
        """The sums of these (student, subject, period)s not read yet: what is written, read
        in one query per subject, period and 500 students, and what is counted but not yet
        written."""
        wanted: dict[tuple[str, tuple[date, date]], list[int]] = {}
        for student_id, subject, span in keys:
            if (student_id, subject, span) not in self.sums:
                wanted.setdefault((subject, span), []).append(student_id)
        for (subject, span), students in sorted(wanted.items()):
            students.sort()
            for part in _chunks(students):
                marks, padded = in_list(part)
                # The driver's rows as they are (thousands of them: no Row made of each); a
                # NUMERIC sum of PostgreSQL becomes a number below.
                found = {sid: (total, weights) for sid, total, weights in await self.tx.execute(
                    f"SELECT student_id, {SUMS_SQL} FROM grades"
                    f" WHERE subject = ? AND student_id IN ({marks})"
                    " AND date BETWEEN ? AND ? AND deleted_at IS NULL GROUP BY student_id",
                    (subject, *padded, span[0].isoformat(), span[1].isoformat()))}
                for student_id in part:
                    key = (student_id, subject, span)
                    total, weights = found.get(student_id, (0, 0))
                    pending = self.unwritten.pop(key, (0, 0))
                    self.sums[key] = (float(total) + pending[0], int(weights) + pending[1])

    def count_grade(self, key: _SumKey, mark: Stored, weight: int) -> None:
        """A new grade (written with the next flush) joins its subject's sums."""
        kept = self.sums if key in self.sums else self.unwritten
        total, weights = kept.get(key, (0, 0))
        kept[key] = (total + mark.points * weight, weights + mark.parts * weight)

    async def push_class(self, class_id: int, setting: str, default: bool, kind: str, key: str,
                         payload: dict[str, Any]) -> None:
        audience = await self.svc.access.class_audience(
            self.tx, class_id, Scope.HOMEWORK, setting, default)
        for telegram_id, student_id, first_name in audience:
            self.pending_pushes.append(outbox_row(
                telegram_id, kind, _payload_json({**payload, "child": first_name}),
                f"{key}:{telegram_id}:{student_id}", self.now, student_id))

    async def averages(self, student_id: int, subject: str, day: date) -> tuple[float, int]:
        return await subject_sums(self.tx, student_id, subject, await self.period(day))

    # -- one method per event type ----------------------------------------------------------

    async def _GradeEvent(self, e: GradeEvent) -> None:
        sid, first_name, active = self.student(e.student_id)
        mark = Stored.of(e.value)
        point_until = e.point_until.isoformat() if e.point_until else None
        if e.grade_id in self.known_grades:
            # The journal sent the same grade again under a new event id: a correction.
            await self._change(e.grade_id, {"value": mark, "weight": e.weight, "work": e.work,
                                            "comment": e.comment, "subject": e.subject,
                                            "date": e.date.isoformat(),
                                            "point_until": point_until}, e.id)
            return
        self.known_grades.add(e.grade_id)
        announce = active and self.announces(sid, e.date, e.set_at)
        day = e.date.isoformat()
        row = (e.grade_id, sid, e.subject, day, mark.value, e.weight, e.work, e.comment, e.teacher,
               to_db(e.set_at) if e.set_at else None, self.stamp, self.stamp, int(not announce),
               mark.shown, mark.scale, mark.points, mark.parts, point_until)
        self.pending_grades.append(row)
        # The hot path of an import: nothing awaited once the sums and audience are read.
        span = self.spans.get(e.date) or await self.span(e.date)
        key = (sid, e.subject, span)
        if not announce:
            self.count_grade(key, mark, e.weight)
            return
        kept = self.sums.get(key)
        if kept is None:  # not read ahead: on its own
            await self.load_sums({key})
            kept = self.sums[key]
        total, weights = kept
        after_total = total + mark.points * e.weight
        after_weights = weights + mark.parts * e.weight
        self.sums[key] = (after_total, after_weights)  # the grade joins them (``count_grade``)
        audience = self.audiences.get((sid, Scope.GRADES)) or await self.audience(sid)
        payload = grade_push(first_name, e.subject, mark, e.weight, day,
                             avg_before=mean(total, weights),
                             avg_after=mean(after_total, after_weights), work=e.work,
                             comment=e.comment, teacher=e.teacher)
        if point_until is not None:
            payload.update(self._point(point_until))
        self.queue(audience, sid, "grade_new", f"grade:{e.grade_id}:new", payload)

    def _point(self, point_until: str | None) -> dict[str, Any]:
        """A push's words on a mark's dot: until when, while it is open."""
        if point_until is None or date.fromisoformat(point_until) < self.today:
            return {}
        return {"point_until": point_until,
                "days_left": (date.fromisoformat(point_until) - self.today).days}

    async def _GradeChangedEvent(self, e: GradeChangedEvent) -> None:
        changes: dict[str, Any] = {name: getattr(e, name) for name in e.fields}
        if changes.get("value") is not None:
            changes["value"] = Stored.of(e.value)
        if "point_until" in changes:
            changes["point_until"] = e.point_until.isoformat() if e.point_until else None
        await self._change(e.grade_id, changes, e.id)

    async def _change(self, grade_id: str, changes: dict[str, Any], event_id: str) -> None:
        """``changes``: ``value`` a :class:`Stored` mark, ``point_until`` a date's text."""
        await self.settle()
        row = await self.tx.fetchone(
            "SELECT g.*, s.first_name, s.active FROM grades g"
            " JOIN students s ON s.id = g.student_id WHERE g.external_id = ?", (grade_id,))
        assert row is not None  # checked before
        day = date.fromisoformat(row["date"])
        before = await self.averages(row["student_id"], row["subject"], day)
        new = {k: row[k] for k in ("value", "shown", "scale", "points", "parts", "weight", "work",
                                   "comment", "subject", "date", "point_until")}
        for name, value in changes.items():
            if name == "value":
                if value is not None:
                    new.update(value=value.value, shown=value.shown, scale=value.scale,
                               points=value.points, parts=value.parts)
            elif name in ("work", "comment", "point_until"):
                new[name] = value  # None clears it
            elif name in new and value is not None:
                new[name] = value
        await self.tx.execute(
            "UPDATE grades SET value = ?, shown = ?, scale = ?, points = ?, parts = ?, weight = ?,"
            " work = ?, comment = ?, subject = ?, date = ?, point_until = ?, deleted_at = NULL,"
            " updated_at = ? WHERE id = ?",
            (new["value"], new["shown"], new["scale"], new["points"], new["parts"],
             new["weight"], new["work"], new["comment"], new["subject"], new["date"],
             new["point_until"], self.stamp, row["id"]),
        )
        if not (self.corrects(row["student_id"], not row["quiet"]) and row["active"]):
            return
        revived = row["deleted_at"] is not None
        if all(new[k] == row[k] for k in new) and not revived:
            return  # nothing a family would notice
        after = await self.averages(row["student_id"], new["subject"],
                                    date.fromisoformat(new["date"]))
        mark = Stored.from_row(new)
        assert mark is not None
        payload = grade_push(row["first_name"], new["subject"], mark, new["weight"],
                             new["date"], avg_before=mean(*before), avg_after=mean(*after),
                             work=new["work"], comment=new["comment"], teacher=row["teacher"])
        payload.update(self._point(new["point_until"]))
        if revived:
            # A grade deleted before and sent again is news, not a correction: its average
            # change is from the marks without it.
            payload["avg_before"] = mean(after[0] - mark.points * new["weight"],
                                         after[1] - mark.parts * new["weight"])
            await self.push(row["student_id"], "grade_new", f"grade:{grade_id}:new:{event_id}",
                            payload)
            return
        if row["point_until"] is not None and new["point_until"] is None:
            payload["point_cleared"] = True
        await self.push(row["student_id"], "grade_changed", f"grade:{grade_id}:chg:{event_id}",
                        {**payload, "old_value": row["value"], "old_shown": row["shown"]})

    async def _GradeDeletedEvent(self, e: GradeDeletedEvent) -> None:
        await self.settle()
        row = await self.tx.fetchone(
            "SELECT g.*, s.first_name, s.active FROM grades g"
            " JOIN students s ON s.id = g.student_id WHERE g.external_id = ?", (e.grade_id,))
        assert row is not None
        if row["deleted_at"] is not None:
            return
        day = date.fromisoformat(row["date"])
        before = await self.averages(row["student_id"], row["subject"], day)
        await self.tx.execute(
            "UPDATE grades SET deleted_at = ?, updated_at = ? WHERE id = ?",
            (self.stamp, self.stamp, row["id"]),
        )
        if not (self.corrects(row["student_id"], not row["quiet"]) and row["active"]):
            return
        after = await self.averages(row["student_id"], row["subject"], day)
        mark = Stored.from_row(row)
        assert mark is not None
        await self.push(row["student_id"], "grade_deleted", f"grade:{e.grade_id}:del:{e.id}",
                        grade_push(row["first_name"], row["subject"], mark, row["weight"],
                                   row["date"], avg_before=mean(*before),
                                   avg_after=mean(*after), work=row["work"]))

    async def _DotEvent(self, e: DotEvent) -> None:
        sid, first_name, active = self.student(e.student_id)
        existing = await self.tx.fetchone(
            "SELECT id, status FROM dots WHERE external_id = ?", (e.dot_id,))
        mark = Stored.of(e.value) if e.value is not None else None
        values = (e.subject, e.date.isoformat(), e.expires.isoformat(), e.work, e.comment,
                  e.teacher, mark.value if mark else None, e.weight,
                  mark.shown if mark else None, mark.scale if mark else "5",
                  mark.points if mark else None, mark.parts if mark else None)
        if existing is not None:
            if existing["status"] == "open":
                await self.tx.execute(
                    "UPDATE dots SET subject = ?, date = ?, expires = ?, work = ?, comment = ?,"
                    " teacher = ?, value = ?, weight = ?, shown = ?, scale = ?, points = ?,"
                    " parts = ? WHERE id = ?", (*values, existing["id"]))
            return
        await self.tx.execute(
            "INSERT INTO dots (external_id, student_id, subject, date, expires, work, comment,"
            " teacher, value, weight, shown, scale, points, parts, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (e.dot_id, sid, *values, self.stamp),
        )
        if active and e.expires >= self.today and self.announces(sid, e.date, None):
            await self.push(sid, "dot_new", f"dot:{e.dot_id}:new", {
                "child": first_name, "subject": e.subject, "work": e.work,
                "comment": e.comment, "teacher": e.teacher, "set_on": e.date.isoformat(),
                "expires": e.expires.isoformat(), "value": mark.value if mark else None,
                "days_left": (e.expires - self.today).days,
                **(mark_words(mark, e.weight) if mark else {}),
            })

    async def _DotClosedEvent(self, e: DotClosedEvent) -> None:
        await self.settle()
        dot = await self.tx.fetchone(
            "SELECT d.*, s.first_name, s.active FROM dots d JOIN students s ON s.id = d.student_id"
            " WHERE d.external_id = ?", (e.dot_id,))
        assert dot is not None
        mark = Stored.of(e.value) if e.value is not None else None
        sid = dot["student_id"]
        loud = self.announces(sid, date.fromisoformat(dot["date"]), None)
        if dot["status"] == "open":
            self.summary.pushes += await close_dot(
                self.tx, self.svc.access, dot, mark, e.weight, self.today, self.now,
                "teacher", notify=loud, hold=self.hold(sid))
        elif dot["status"] == "graded" and mark is not None:
            # The expiry job turned it into its default grade first; the teacher's word wins.
            await self._regrade(dot, e, mark)
        elif dot["status"] == "vanished" and mark is not None:
            await self.tx.execute("UPDATE dots SET status = 'open' WHERE id = ?", (dot["id"],))
            self.summary.pushes += await close_dot(
                self.tx, self.svc.access, dot, mark, e.weight, self.today, self.now,
                "teacher", notify=loud, hold=self.hold(sid))

    async def _regrade(self, dot, e: DotClosedEvent, mark: Stored) -> None:
        grade = await self.tx.fetchone("SELECT * FROM grades WHERE id = ?", (dot["grade_id"],))
        if grade is None:
            return
        weight = grade["weight"] if e.weight is None else e.weight
        if (Stored.from_row(grade), grade["weight"]) == (mark, weight):
            return
        day = date.fromisoformat(grade["date"])
        before = await self.averages(dot["student_id"], dot["subject"], day)
        # The teacher's word is news, but not in the child's history of a mark kept quiet.
        quiet = bool(grade["quiet"]) and not self.corrects(dot["student_id"], False)
        await self.tx.execute(
            "UPDATE grades SET value = ?, shown = ?, scale = ?, points = ?, parts = ?, weight = ?,"
            " quiet = ?, updated_at = ? WHERE id = ?",
            (mark.value, mark.shown, mark.scale, mark.points, mark.parts, weight, int(quiet),
             self.stamp, grade["id"]))
        if quiet or not (self.notify and dot["active"]):
            return
        after = await self.averages(dot["student_id"], dot["subject"], day)
        payload = grade_push(dot["first_name"], dot["subject"], mark, weight, grade["date"],
                             avg_before=mean(*before), avg_after=mean(*after),
                             work=grade["work"], comment=grade["comment"])
        payload.update(old_value=grade["value"], old_shown=grade["shown"])
        await self.push(dot["student_id"], "grade_changed", f"dot:{e.dot_id}:regrade:{e.id}",
                        payload)

    async def _AttendanceEvent(self, e: AttendanceEvent) -> None:
        sid, first_name, active = self.student(e.student_id)
        before = await self.tx.fetchone(
            "SELECT mark, date, lesson FROM attendance WHERE external_id = ?", (e.attendance_id,))
        notice = None
        if e.mark == "absent":
            notice = await self.svc.absence.covering(self.tx, sid, e.date, e.lesson)
        excused = e.excused or notice is not None
        news = before is None or (before["mark"], before["date"], before["lesson"]) != (
            e.mark, e.date.isoformat(), e.lesson)
        if news and active and self.relevant(e.date, None):
            payload = {"child": first_name, "date": e.date.isoformat(), "lesson": e.lesson,
                       "subject": e.subject, "mark": e.mark, "excused": excused,
                       "by_notice": notice is not None}
            for telegram_id, role in await self.audience(sid, Scope.ATTENDANCE):
                if role is Role.STUDENT and not KINDS["attendance"].to_students:
                    continue
                self.pending_pushes.append(outbox_row(
                    telegram_id, "attendance", _payload_json(payload),
                    f"att:{e.attendance_id}:{e.id}:{telegram_id}", self.now, sid,
                    self.hold(sid, self.svc.attendance_hold)))
        await self.tx.execute(
            "INSERT INTO attendance (external_id, student_id, date, lesson, subject, mark, excused,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (external_id) DO UPDATE SET date = excluded.date,"
            " lesson = excluded.lesson, subject = excluded.subject, mark = excluded.mark,"
            " excused = excluded.excused",
            (e.attendance_id, sid, e.date.isoformat(), e.lesson, e.subject, e.mark,
             int(excused), self.stamp),
        )

    async def _HomeworkEvent(self, e: HomeworkEvent) -> None:
        before = await self.tx.fetchone(
            "SELECT due, text, required, links FROM homework WHERE external_id = ?",
            (e.homework_id,))
        if e.text is None:  # a placeholder («-», «не задано»): no task; one set before goes
            if before is not None:
                await self.tx.execute("DELETE FROM homework WHERE external_id = ?",
                                      (e.homework_id,))
            return
        updated = to_db(e.updated_at) if e.updated_at else self.stamp
        class_id = self.checked.classes[e.class_name] if e.class_name is not None else None
        student = self.student(e.student_id) if e.student_id is not None else None
        links = _links_json(e)
        changed = before is None or (
            before["due"], before["text"], bool(before["required"]), before["links"]) != (
            e.due.isoformat(), e.text, e.required, links)
        if self.notify and changed and e.due == self.today + timedelta(days=1):
            key = f"hw:{e.homework_id}:{e.id}"
            payload = {"subject": e.subject, "due": e.due.isoformat(), "text": e.text,
                       "required": e.required, "updated": before is not None}
            if e.links:
                payload["links"] = [{"url": x.url, "title": x.title} for x in e.links]
            if class_id is not None:
                await self.push_class(class_id, "push_homework", False, "homework", key,
                                      payload)
            elif student is not None and student[2]:
                payload["personal"] = True
                await self.push_student(student, "push_homework", False, "homework", key,
                                        payload)
        await self.tx.execute(
            "INSERT INTO homework (external_id, class_id, student_id, subject, due, text,"
            " required, links, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (external_id) DO UPDATE SET class_id = excluded.class_id,"
            " student_id = excluded.student_id, subject = excluded.subject, due = excluded.due,"
            " text = excluded.text, required = excluded.required, links = excluded.links,"
            " updated_at = excluded.updated_at",
            (e.homework_id, class_id, student[0] if student is not None else None, e.subject,
             e.due.isoformat(), e.text, int(e.required), links, updated),
        )

    async def push_student(self, student: tuple[int, str, bool], setting: str, default: bool,
                           kind: str, key: str, payload: dict[str, Any]) -> None:
        """A push about one student's task to whoever follows that student and has not
        switched ``setting`` off (as ``push_class`` does for a class)."""
        sid, first_name, _active = student
        accounts = sorted({tg for tg, _role in await self.audience(sid, Scope.HOMEWORK)})
        chosen: dict[int, bool] = {}
        for part in _chunks(accounts):
            marks, padded = in_list(part)
            for r in await self.tx.fetchall(
                    f"SELECT telegram_id, {setting} FROM account_settings"
                    f" WHERE telegram_id IN ({marks})", padded):
                if r[1] is not None:
                    chosen[r[0]] = bool(r[1])
        text = _payload_json({**payload, "child": first_name})
        for telegram_id in accounts:
            if chosen.get(telegram_id, default):
                self.pending_pushes.append(outbox_row(
                    telegram_id, kind, text, f"{key}:{telegram_id}:{sid}", self.now, sid))

    async def _LessonEvent(self, e: LessonEvent) -> None:
        class_id = self.checked.classes[e.class_name]
        group = e.group or ""  # '' is the whole class
        before = None
        if e.lesson_id is not None:  # the journal's id names the lesson, wherever it is now
            before = await self.tx.fetchone(
                "SELECT id, cancelled, teacher_replaced, substitute FROM lessons"
                " WHERE lesson_id = ?", (e.lesson_id,))
        if before is None:
            # Its slot and group do; an id new to us takes over the lesson of its slot and
            # group that came without one (a journal that starts sending ids).
            before = await self.tx.fetchone(
                "SELECT id, cancelled, teacher_replaced, substitute FROM lessons"
                " WHERE class_id = ? AND date = ? AND number = ? AND group_name = ?"
                " AND lesson_id IS NULL", (class_id, e.date.isoformat(), e.number, group))
        soon = self.notify and 0 <= (e.date - self.today).days <= 1
        payload: dict[str, Any] = {
            "subject": e.subject, "date": e.date.isoformat(), "number": e.number,
            "start": e.start.strftime("%H:%M"), "class": e.class_name,
        }
        if e.group:
            payload["group"] = e.group
        newly_cancelled = e.cancelled and (before is None or not before["cancelled"])
        if soon and newly_cancelled:
            await self.push_class(class_id, "push_timetable", True, "lesson_cancelled",
                                  f"lesson:{class_id}:{e.date}:{e.number}:{e.id}", payload)
        newly_replaced = e.teacher_replaced and not e.cancelled and (
            before is None or not before["teacher_replaced"]
            or before["substitute"] != e.substitute)
        if soon and newly_replaced:
            await self.push_class(class_id, "push_replacements", True, "lesson_replaced",
                                  f"lesson-sub:{class_id}:{e.date}:{e.number}:{e.id}", {
                **payload, "teacher": e.teacher, "substitute": e.substitute})
        values = (class_id, e.date.isoformat(), e.number, e.subject, e.start.strftime("%H:%M"),
                  e.end.strftime("%H:%M"), e.room, e.teacher, int(e.cancelled), self.stamp,
                  e.lesson_id, group, int(e.teacher_replaced), e.substitute, int(e.remote),
                  e.link)
        if before is None:
            await self.tx.execute(
                "INSERT INTO lessons (class_id, date, number, subject, start_time, end_time,"
                " room, teacher, cancelled, updated_at, lesson_id, group_name, teacher_replaced,"
                " substitute, remote, link)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        else:
            await self.tx.execute(
                "UPDATE lessons SET class_id = ?, date = ?, number = ?, subject = ?,"
                " start_time = ?, end_time = ?, room = ?, teacher = ?, cancelled = ?,"
                " updated_at = ?, lesson_id = ?, group_name = ?, teacher_replaced = ?,"
                " substitute = ?, remote = ?, link = ? WHERE id = ?", (*values, before["id"]))

    async def _PeriodEvent(self, e: PeriodEvent) -> None:
        await self.settle()  # sums kept for the old boundaries no longer hold
        await self.tx.execute(
            "INSERT INTO periods (external_id, name, start_date, end_date) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (external_id) DO UPDATE SET name = excluded.name,"
            " start_date = excluded.start_date, end_date = excluded.end_date",
            (e.period_id, e.name, e.start.isoformat(), e.end.isoformat()),
        )
        self.periods.clear()
        self.spans.clear()
        self.final_periods.clear()

    # -- final marks ------------------------------------------------------------------------

    async def final_period(self, e: FinalGradeEvent) -> tuple[int | None, str | None, int]:
        """What the final mark closes: (periods.id, the period's name, the school year as the
        year it starts in); for the year's mark (None, None, the school year of ``set_at``,
        else of today)."""
        if e.period_id is None:
            day = e.set_at.astimezone(self.svc.tz).date() if e.set_at else self.today
            return None, None, school_year(day).start.year
        found = self.final_periods.get(e.period_id)
        if found is None:
            row = await self.tx.fetchone(
                "SELECT id, name, start_date FROM periods WHERE external_id = ?", (e.period_id,))
            assert row is not None  # checked before
            found = (row["id"], row["name"],
                     school_year(date.fromisoformat(row["start_date"])).start.year)
            self.final_periods[e.period_id] = found
        return found

    async def load_finals(self, final_ids: set[str]) -> None:
        """What the final marks of these ids already in the database are now, in sets."""
        wanted = sorted(f for f in final_ids if f in self.known_finals and f not in self.finals)
        for part in _chunks(wanted):
            marks, padded = in_list(part)
            for r in await self.tx.fetchall(
                    "SELECT f.external_id, f.student_id, f.subject, f.period_id, f.school_year,"
                    " f.shown, f.scale, f.points, f.parts, f.set_at, f.deleted_at,"
                    " p.name AS period_name, s.first_name, s.active FROM final_grades f"
                    " JOIN students s ON s.id = f.student_id"
                    f" LEFT JOIN periods p ON p.id = f.period_id WHERE f.external_id IN ({marks})",
                    padded):
                self.finals[r["external_id"]] = {k: r[k] for k in _FINAL_STATE}

    async def final_row(self, final_id: str) -> dict[str, Any] | None:
        """The final mark as it is now (written or not), None for one never seen."""
        if final_id not in self.known_finals:
            return None
        if final_id not in self.finals:
            await self.load_finals({final_id})
        return self.finals[final_id]

    def write_final(self, final_id: str, state: dict[str, Any], new: bool) -> None:
        self.finals[final_id] = state
        columns = tuple(state[k] for k in _FINAL_COLUMNS)
        if new:
            self.known_finals.add(final_id)
            self.pending_finals.append((final_id, state["student_id"], *columns, self.stamp,
                                        self.stamp))
        else:
            self.changed_finals.append((*columns, self.stamp, final_id))

    async def _FinalGradeEvent(self, e: FinalGradeEvent) -> None:
        sid, first_name, active = self.student(e.student_id)
        period, name, year = await self.final_period(e)
        m = e.mark
        before = await self.final_row(e.final_id)
        self.write_final(e.final_id, {
            "student_id": sid, "subject": e.subject, "period_id": period, "school_year": year,
            "shown": m.shown, "scale": m.scale, "points": m.points, "parts": m.parts,
            "set_at": to_db(e.set_at) if e.set_at else None, "deleted_at": None,
            "period_name": name, "first_name": first_name, "active": active,
        }, new=before is None)
        if not (active and self.announces(sid, None, e.set_at)):
            return
        payload: dict[str, Any] = {"child": first_name, "subject": e.subject, "period": name,
                                   "value": m.shown}
        if before is None:
            await self.push(sid, "final_grade", f"final:{e.final_id}:new", payload)
            return
        # The journal sent the same final mark again: a correction.
        if before["deleted_at"] is not None:  # withdrawn before and given again: news
            await self.push(sid, "final_grade", f"final:{e.final_id}:new:{e.id}", payload)
            return
        if (before["shown"], before["subject"], before["period_id"]) == (m.shown, e.subject,
                                                                          period):
            return  # nothing a family would notice
        if before["shown"] != m.shown:
            payload["old_value"] = before["shown"]
        await self.push(sid, "final_grade_changed", f"final:{e.final_id}:chg:{e.id}", payload)

    async def _FinalGradeDeletedEvent(self, e: FinalGradeDeletedEvent) -> None:
        before = await self.final_row(e.final_id)
        assert before is not None  # checked before
        if before["deleted_at"] is not None:
            return
        self.write_final(e.final_id, {**before, "deleted_at": self.stamp}, new=False)
        announced = before["set_at"] is not None and self.relevant(
            self.today, from_db(before["set_at"]))
        if not (self.corrects(before["student_id"], announced) and before["active"]):
            return
        await self.push(before["student_id"], "final_grade_deleted",
                        f"final:{e.final_id}:del:{e.id}",
                        {"child": before["first_name"], "subject": before["subject"],
                         "period": before["period_name"], "value": before["shown"]})

    async def _AnnouncementEvent(self, e: AnnouncementEvent) -> None:
        """Stored (or replaced, under the same ``announcement_id``); pushed to its audience
        when new and again when its text changes, once per account."""
        school_id, class_ids = self.checked.announcements[e.id]
        links = _links_json(e)
        pinned = e.pinned_until.isoformat() if e.pinned_until else None
        before = await self.tx.fetchone(
            "SELECT id, text, revision FROM announcements WHERE external_id = ?",
            (e.announcement_id,))
        if before is None:
            row_id = await self.tx.scalar(
                "INSERT INTO announcements (external_id, school_id, text, audience, links,"
                " pinned_until, revision, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id",
                (e.announcement_id, school_id, e.text, e.audience, links, pinned, self.stamp,
                 self.stamp))
            revision = 0
        else:
            row_id = before["id"]
            revision = before["revision"] + (before["text"] != e.text)
            await self.tx.execute(
                "UPDATE announcements SET school_id = ?, text = ?, audience = ?, links = ?,"
                " pinned_until = ?, revision = ?, updated_at = ? WHERE id = ?",
                (school_id, e.text, e.audience, links, pinned, revision, self.stamp, row_id))
            await self.tx.execute("DELETE FROM announcement_classes WHERE announcement_id = ?",
                                  (row_id,))
        if class_ids:
            await self.tx.executemany(
                "INSERT INTO announcement_classes (announcement_id, class_id) VALUES (?, ?)",
                [(row_id, cid) for cid in class_ids])
        if not self.notify or (before is not None and before["text"] == e.text):
            return
        payload: dict[str, Any] = {"text": e.text, "updated": before is not None}
        if e.links:
            payload["links"] = [{"url": x.url, "title": x.title} for x in e.links]
        text = _payload_json(payload)
        key = f"ann:{row_id}" if revision == 0 else f"ann:{row_id}.{revision}"
        for telegram_id in await self.announcement_audience(school_id, class_ids, e.audience):
            self.pending_pushes.append(outbox_row(
                telegram_id, "announcement", text, f"{key}:{telegram_id}", self.now))

    async def announcement_audience(self, school_id: int, class_ids: tuple[int, ...],
                                    audience: str) -> list[int]:
        """The accounts an announcement reaches, each once: guardians and trusted persons
        (given ``ANNOUNCEMENT_SCOPE``) for ``parents``, students' own accounts for
        ``students``, all of them for ``all``; not those who switched announcements off."""
        roles = ANNOUNCEMENT_ROLES[audience]
        accounts = sorted({tg for tg, _sid, role in await school_audience(
            self.tx, school_id, class_ids, ANNOUNCEMENT_SCOPE) if role in roles})
        off: set[int] = set()
        for part in _chunks(accounts):
            marks, padded = in_list(part)
            off.update(r[0] for r in await self.tx.fetchall(
                f"SELECT telegram_id FROM account_settings WHERE telegram_id IN ({marks})"
                " AND push_announcements = 0", padded))
        return [tg for tg in accounts if tg not in off]


async def _announcement_targets(tx: Tx, events: list[AnnouncementEvent], school: str | None
                                ) -> dict[str, tuple[int, tuple[int, ...]] | list[tuple[str, str]]]:
    """Each announcement's school and classes (event id -> (school id, class ids)), or what is
    wrong with them (a list of (field, message)). ``school``: the journal's school (the
    ingestion API): the announcement's ``school``, if given, must be it, and its classes are
    looked up there. Without either, the classes name the school; an announcement to the whole
    school needs one when the roster has several."""
    found: dict[str, tuple[int, tuple[int, ...]] | list[tuple[str, str]]] = {}
    if not events:
        return found
    schools = {r[1]: r[0] for r in await tx.fetchall("SELECT id, name FROM schools")}
    for e in events:
        bad: list[tuple[str, str]] = []
        name = e.school if e.school is not None else school
        school_id: int | None = None
        if school is not None and e.school is not None and e.school != school:
            bad.append(("school", f"{quote(e.school)} is not the school of this journal"))
        elif name is not None:
            school_id = schools.get(name)
            if school_id is None and e.school is not None:
                bad.append(("school", f"unknown school {quote(name)}"))
            elif school_id is None:  # the journal's school has no classes on the roster yet
                bad += [(f"classes[{n}]", f"unknown class {quote(c)} (not in this school)")
                        for n, c in enumerate(e.classes)] or [
                    ("", f"school {quote(name)} is not on the roster")]
        if bad:
            found[e.id] = bad
            continue
        class_ids: list[int] = []
        owners: set[int] = set()
        for n, class_name in enumerate(e.classes):
            if school_id is not None:
                rows = await tx.fetchall(
                    "SELECT id, school_id FROM classes WHERE school_id = ? AND name = ?",
                    (school_id, class_name))
            else:
                rows = await tx.fetchall("SELECT id, school_id FROM classes WHERE name = ?",
                                         (class_name,))
            if not rows:
                bad.append((f"classes[{n}]", f"unknown class {quote(class_name)}"
                            + ("" if name is None else " (not in this school)")))
            elif len(rows) > 1:
                bad.append((f"classes[{n}]", f"class {quote(class_name)} exists in several"
                            " schools (give school)"))
            else:
                class_ids.append(rows[0][0])
                owners.add(rows[0][1])
        if not bad and school_id is None:
            if len(owners) > 1:
                bad.append(("classes", "the classes belong to several schools"
                            " (one announcement is of one school)"))
            elif owners:
                school_id = owners.pop()
            elif len(schools) == 1:
                school_id = next(iter(schools.values()))
            elif not schools:
                bad.append(("classes", "no school on the roster yet"))
            else:
                bad.append(("school", "required for an announcement to the whole school:"
                            " the roster has several schools"))
        found[e.id] = bad if bad else (school_id, tuple(sorted(set(class_ids))))
    return found


# What a final mark's row holds (in the order of the statements that write it), and what is
# kept of it besides.
_FINAL_COLUMNS = ("subject", "period_id", "school_year", "shown", "scale", "points", "parts",
                  "set_at", "deleted_at")
_FINAL_STATE = ("student_id", *_FINAL_COLUMNS, "period_name", "first_name", "active")


# Events that write everything pending and forget the kept sums before they run.
_SETTLING = frozenset({GradeChangedEvent, GradeDeletedEvent, DotClosedEvent, PeriodEvent})

_TYPE_NAMES: dict[type, str] = {
    GradeEvent: "grade",
    GradeChangedEvent: "grade_changed",
    GradeDeletedEvent: "grade_deleted",
    DotEvent: "dot",
    DotClosedEvent: "dot_closed",
    AttendanceEvent: "attendance",
    HomeworkEvent: "homework",
    LessonEvent: "lesson",
    PeriodEvent: "period",
    FinalGradeEvent: "final_grade",
    FinalGradeDeletedEvent: "final_grade_deleted",
    AnnouncementEvent: "announcement",
}

# One method of ``_Applier`` per event type, and the type's name in the ledger. (Kept here, not
# as bound methods on each applier: an applier that held its own methods would be a cycle, its
# thousands of rows left for the cyclic garbage collector to find in some later import.)
_HANDLERS: dict[type, tuple[Callable[[_Applier, Any], Awaitable[None]], str]] = {
    cls: (getattr(_Applier, f"_{cls.__name__}"), name) for cls, name in _TYPE_NAMES.items()}
