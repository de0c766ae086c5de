"""Snapshot sync: a journal that can only export what is there now sends a student's (or a
class's) marks for a period as a whole; what differs from what is stored becomes journal events,
applied by the journal import (validation, idempotency, pushes in the same transaction, all or
nothing).

For each student a snapshot covers, in its window (the period's days, and the subject when the
snapshot names one):

* a mark not stored (or stored and deleted) is a ``grade`` event: new;
* a mark stored with other content is a ``grade_changed`` event with the fields that changed
  (a ``grade`` event when the subject or date changed, which only a resent grade corrects);
* a mark stored but missing from the snapshot is kept the first time (remembered in
  ``snapshot_missing``) and deleted (``grade_deleted``) when the next snapshot misses it too, or
  at once when the snapshot says ``"complete": true``.

Safeguards: a snapshot with fewer than half the marks of the previous one of the same student
and window (when that had at least ``MIN_PREVIOUS``; without a previous snapshot, the marks
stored for the window) is refused as truncated unless forced; a student's first snapshot is
stored without pushes; a snapshot older than the last one synced for a student leaves that
student alone. Event ids are ``sync:<snapshot_id>:<grade_id>:new``, ``…:chg:<content hash>``
and ``…:del``: the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from core.clock import from_db, to_db
from core.errors import InputInvalid, Problem
from core.importers.journal import CHANGEABLE, ID_LIMIT, Event, parse_event
from core.importers.snapshot import Snapshot, SnapshotMark, parse_snapshots
from core.importers.text import decode, quote, shown, split_lines
from core.services.journal import Batch, JournalService, grade_differences
from core.storage.db import Tx

MIN_PREVIOUS = 10  # a snapshot is judged truncated only when the one before held this many
FUTURE = timedelta(days=1)  # taken_at may be ahead of the clock by this much (a wrong offset)
VALUE_FIELDS = ("value", "scale", "five")  # a mark's value is read with its scale and five
CHUNK = 500
# New grades first: they are applied in sets; each change and deletion reads its grade alone.
ORDER = {"new": 0, "changed": 1, "deleted": 2}


@dataclass
class SnapshotReport:
    """What one snapshot did (or would do, in a dry run)."""

    line: int
    snapshot_id: str
    student_id: str | None
    class_name: str | None
    period_id: str | None
    start: str | None  # the window's first and last day, once known
    end: str | None
    subject: str | None
    complete: bool
    marks: int
    students: int = 0  # students covered
    new: int = 0
    changed: int = 0
    deleted: int = 0
    missing_once: int = 0  # missing from this snapshot only: kept
    unchanged: int = 0
    already_imported: int = 0
    pushes: int = 0
    first: int = 0  # students whose first snapshot this was: stored without pushes
    stale: int = 0  # students left alone: a later snapshot of theirs was synced before
    forced: bool = False  # taken with --force although it looked truncated


@dataclass
class SyncResult:
    """The outcome of a sync, as plain data (``as_dict`` is JSON-serialisable)."""

    status: str  # "synced", "dry_run" or "invalid" (nothing changed; see problems)
    file: str
    lines: int = 0
    encoding: str | None = None
    notify: bool = True
    snapshots: list[SnapshotReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pushes: int = 0

    @property
    def ok(self) -> bool:
        return self.status != "invalid"

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.snapshots)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "file": self.file, "lines": self.lines,
            "encoding": self.encoding, "notify": self.notify, "pushes": self.pushes,
            "totals": {name: self.total(name) for name in (
                "new", "changed", "deleted", "missing_once", "unchanged", "already_imported")},
            "snapshots": [asdict(s) for s in self.snapshots],
            "problems": [{"file": p.file, "line": p.line, "field": p.field, "reason": p.message}
                         for p in self.problems],
        }


async def sync_snapshots(
    journal: JournalService,
    text: str | bytes,
    *,
    filename: str = "<request>",
    force: bool = False,
    notify: bool = True,
    dry_run: bool = False,
    school: str | None = None,
) -> SyncResult:
    """Sync the snapshots in ``text`` (JSON Lines; bytes are decoded as the importers read
    files). Problems never raise: the result's status is ``invalid`` and nothing changed.
    ``school``: the snapshots come from that school's journal (the ingestion API) and may be
    about its students only."""
    encoding = None
    if isinstance(text, bytes):
        try:
            text, encoding = decode(text, filename)
        except InputInvalid as exc:
            return SyncResult("invalid", filename, problems=exc.problems, notify=notify)
    parsed = parse_snapshots(split_lines(text), filename)
    result = SyncResult("dry_run" if dry_run else "synced", filename, parsed.lines, encoding,
                        notify)
    if parsed.problems:
        result.status, result.problems = "invalid", parsed.problems
        return result
    planner = _Planner(journal, filename, parsed.snapshots, force, school)
    try:
        summary = await journal.import_batches(planner.plan, filename, kind="snapshot",
                                               notify=notify, dry_run=dry_run, school=school)
    except InputInvalid as exc:
        result.status, result.problems = "invalid", exc.problems
        result.snapshots = planner.reports
        return result
    result.snapshots = planner.reports
    result.pushes = summary.pushes
    return result


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:size]


def event_id(snapshot_id: str, grade_id: str, change: str) -> str:
    """``sync:<snapshot_id>:<grade_id>:<change>``, or its hash when that is too long for an id."""
    full = f"sync:{snapshot_id}:{grade_id}:{change}"
    return full if len(full) <= ID_LIMIT else f"sync:{_digest(full, 48)}"


def content_hash(mark: SnapshotMark) -> str:
    return _digest(json.dumps(mark.raw, sort_keys=True, ensure_ascii=False, default=str), 16)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, date):
        return value.isoformat()
    return None


def _in(values: list[Any]) -> str:
    return ",".join("?" * len(values))


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]


@dataclass
class _Student:
    id: int
    external_id: str
    state: Any = None  # its snapshot_state row for the window, if any
    marks: list[SnapshotMark] = field(default_factory=list)
    stored: list[Any] = field(default_factory=list)  # its grades in the window, not deleted
    missing: dict[str, tuple[str, str]] = field(default_factory=dict)  # grade id -> first miss


class _Planner:
    """Works out each snapshot's events inside the import's transaction (see
    ``JournalService.import_batches``) and keeps the snapshot bookkeeping there."""

    def __init__(self, journal: JournalService, filename: str, snapshots: list[Snapshot],
                 force: bool, school: str | None = None) -> None:
        self.journal = journal
        self.school = school  # only this school's students and classes, when set
        self.filename = filename
        self.snapshots = snapshots
        self.force = force
        self.reports: list[SnapshotReport] = []
        self.problems: list[Problem] = []
        self.named: dict[str, Any] = {}  # the stored grades the snapshot names, by grade id

    def bad(self, snap: Snapshot, name: str, message: str) -> None:
        self.problems.append(Problem(self.filename, snap.line, name, message))

    def when(self, moment: datetime) -> str:
        return moment.astimezone(self.journal.tz).isoformat(timespec="minutes")

    async def plan(self, tx: Tx) -> AsyncIterator[Batch]:
        moment = self.journal.clock.now()
        now = to_db(moment)
        for snap in self.snapshots:
            report = SnapshotReport(snap.line, snap.snapshot_id, snap.student_id, snap.class_name,
                                    snap.period_id, None, None, snap.subject, snap.complete,
                                    len(snap.marks))
            self.reports.append(report)
            before = len(self.problems)
            if snap.taken_at > moment + FUTURE:
                # It would leave every later snapshot of its students alone as older.
                self.bad(snap, "taken_at", f"{self.when(snap.taken_at)} is in the future (now"
                                           f" is {self.when(moment)})")
            window = await self._window(tx, snap)
            students = await self._students(tx, snap)
            if window is None or students is None:
                continue
            report.start, report.end = window[0].isoformat(), window[1].isoformat()
            report.students = len(students)
            by_ext = {s.external_id: s for s in students}
            for mark in snap.marks:
                where = f"marks[{mark.index}]"
                if not window[0] <= mark.event.date <= window[1]:
                    self.bad(snap, f"{where}.date",
                             f"{mark.event.date.isoformat()} is outside the snapshot's period"
                             f" ({window[0].isoformat()} to {window[1].isoformat()})")
                owner = by_ext.get(mark.student_id)
                if owner is None:
                    self.bad(snap, f"{where}.student_id",
                             f"{quote(mark.student_id)} is not an active student of class"
                             f" {snap.class_name}")
                else:
                    owner.marks.append(mark)
            if len(self.problems) > before:
                continue
            await self._read(tx, snap, window, students)
            if len(self.problems) > before:
                continue
            students = self._fresh(snap, report, students)
            self._check_size(snap, report, students)
            if len(self.problems) > before or not students:
                continue
            first = await self._first(tx, students)
            for student in students:
                changes = sorted(self._diff(snap, report, student), key=lambda c: ORDER[c[0]])
                if self.problems:
                    continue  # nothing is applied: the plan goes on only to find every problem
                done = await self._done(tx, [e.id for _, e in changes])
                report.already_imported += len(done)
                events = []
                for kind, event in changes:
                    if event.id not in done:
                        setattr(report, kind, getattr(report, kind) + 1)
                        events.append(event)
                if events:
                    batch = Batch(events, quiet=student.id in first)
                    yield batch
                    self.problems += batch.problems
                    if self.problems:
                        continue
                    report.pushes += batch.pushes
                report.first += int(student.id in first)
                await self._remember(tx, snap, window, student, now)
        if self.problems:
            self.problems.sort(key=lambda p: p.line)
            raise InputInvalid(self.problems)

    # -- what the snapshot is about -----------------------------------------------------

    async def _window(self, tx: Tx, snap: Snapshot) -> tuple[date, date] | None:
        if snap.period_id is None:
            assert snap.start is not None and snap.end is not None
            return snap.start, snap.end
        row = await tx.fetchone("SELECT start_date, end_date FROM periods WHERE external_id = ?",
                                (snap.period_id,))
        if row is None:
            self.bad(snap, "period_id", f"unknown period {quote(snap.period_id)} (a journal"
                                        " period event declares it; or give from and to)")
            return None
        return date.fromisoformat(row[0]), date.fromisoformat(row[1])

    async def _students(self, tx: Tx, snap: Snapshot) -> list[_Student] | None:
        if snap.student_id is not None:
            row = await tx.fetchone(
                "SELECT s.id, sc.name FROM students s JOIN schools sc ON sc.id = s.school_id"
                " WHERE s.external_id = ?", (snap.student_id,))
            if row is None or (self.school is not None and row[1] != self.school):
                where = "the roster" if self.school is None else "the roster of this school"
                self.bad(snap, "student_id",
                         f"unknown student {quote(snap.student_id)} (not on {where})")
                return None
            return [_Student(row[0], snap.student_id)]
        if self.school is None:
            classes = await tx.fetchall("SELECT id FROM classes WHERE name = ?",
                                        (snap.class_name,))
        else:
            classes = await tx.fetchall(
                "SELECT c.id FROM classes c JOIN schools sc ON sc.id = c.school_id"
                " WHERE c.name = ? AND sc.name = ?", (snap.class_name, self.school))
        if len(classes) != 1:
            self.bad(snap, "class", f"class {quote(snap.class_name or '')} exists in several"
                                    " schools" if classes else
                     f"unknown class {quote(snap.class_name or '')}"
                     + ("" if self.school is None else " (not in this school)"))
            return None
        rows = await tx.fetchall("SELECT id, external_id FROM students WHERE class_id = ?"
                                 " AND active = 1 ORDER BY external_id", (classes[0][0],))
        return [_Student(r[0], r[1]) for r in rows]

    async def _read(self, tx: Tx, snap: Snapshot, window: tuple[date, date],
                    students: list[_Student]) -> None:
        """The grades the snapshot names, each covered student's grades in the window and
        snapshot bookkeeping; a grade id of another student is a problem."""
        subject = snap.subject or ""
        by_id = {s.id: s for s in students}
        self.named = {}
        ids = sorted({m.grade_id for m in snap.marks})
        for part in _chunks(ids):
            for row in await tx.fetchall(
                    f"SELECT g.*, s.external_id AS student_external_id FROM grades g"
                    f" JOIN students s ON s.id = g.student_id"
                    f" WHERE g.external_id IN ({_in(part)})", part):
                self.named[row["external_id"]] = row
        for student in students:
            for mark in student.marks:
                named = self.named.get(mark.grade_id)
                if named is not None and named["student_external_id"] != mark.student_id:
                    self.bad(snap, f"marks[{mark.index}].grade_id",
                             "already used for another student")
        sql_subject = " AND subject = ?" if snap.subject else ""
        for part in _chunks(sorted(by_id)):
            args: list[Any] = [*part, window[0].isoformat(), window[1].isoformat()]
            if snap.subject:
                args.append(snap.subject)
            for row in await tx.fetchall(
                    f"SELECT * FROM grades WHERE student_id IN ({_in(part)})"
                    " AND date BETWEEN ? AND ? AND deleted_at IS NULL"
                    f" AND external_id IS NOT NULL{sql_subject} ORDER BY date, id", args):
                by_id[row["student_id"]].stored.append(row)
            key = [*part, window[0].isoformat(), window[1].isoformat(), subject]
            where = (f"student_id IN ({_in(part)}) AND period_start = ? AND period_end = ?"
                     " AND subject = ?")
            for row in await tx.fetchall(f"SELECT * FROM snapshot_state WHERE {where}", key):
                by_id[row["student_id"]].state = row
            for row in await tx.fetchall(
                    f"SELECT student_id, grade_id, snapshot_id, missing_since"
                    f" FROM snapshot_missing WHERE {where}", key):
                by_id[row[0]].missing[row[1]] = (row[2], row[3])

    def _fresh(self, snap: Snapshot, report: SnapshotReport,
               students: list[_Student]) -> list[_Student]:
        """The students this snapshot is news for: not those a later snapshot was synced of."""
        fresh = []
        taken = to_db(snap.taken_at)
        for student in students:
            state = student.state
            reused = state is not None and state["snapshot_id"] == snap.snapshot_id
            if reused and state["taken_at"] != taken:
                self.bad(snap, "snapshot_id", f"already used for the snapshot of"
                         f" {shown(student.external_id)} taken at"
                         f" {self.when(from_db(state['taken_at']))}; each export needs its own")
            elif state is not None and state["taken_at"] > taken:
                report.stale += 1
            else:
                fresh.append(student)
        return fresh

    def _check_size(self, snap: Snapshot, report: SnapshotReport,
                    students: list[_Student]) -> None:
        """Refuse a snapshot much smaller than the one before (an export cut short)."""
        def before(student: _Student) -> int:
            return student.state["marks"] if student.state is not None else len(student.stored)

        def truncated(now: int, then: int) -> bool:
            return then >= MIN_PREVIOUS and now * 2 < then

        def was(student: _Student) -> str:
            if student.state is None:
                return f"{before(student)} are stored for the period"
            return (f"the previous snapshot (taken at"
                    f" {self.when(from_db(student.state['taken_at']))}) held {before(student)}")

        found: list[str] = []
        if len(students) > 1:
            now, then = sum(len(s.marks) for s in students), sum(before(s) for s in students)
            if truncated(now, then):
                found.append(f"{now} marks of {len(students)} students where the snapshots"
                             f" before held {then}")
        if not found:
            for s in students:
                if truncated(len(s.marks), before(s)):
                    whose = f" of {shown(s.external_id)}" if snap.class_name else ""
                    found.append(f"{len(s.marks)} marks{whose} where {was(s)}")
        if not found:
            return
        if self.force:
            report.forced = True
            return
        for text in found:
            self.bad(snap, "marks", f"{text}: looks cut short, refused (--force takes it)")

    async def _first(self, tx: Tx, students: list[_Student]) -> set[int]:
        """The students no snapshot was synced of before (in any period)."""
        ids = [s.id for s in students]
        known: set[int] = set()
        for part in _chunks(ids):
            known.update(r[0] for r in await tx.fetchall(
                f"SELECT DISTINCT student_id FROM snapshot_state WHERE student_id IN ({_in(part)})",
                part))
        return set(ids) - known

    async def _done(self, tx: Tx, ids: list[str]) -> set[str]:
        done: set[str] = set()
        for part in _chunks(ids):
            done.update(r[0] for r in await tx.fetchall(
                f"SELECT event_id FROM journal_events WHERE event_id IN ({_in(part)})", part))
        return done

    # -- the difference -------------------------------------------------------------------

    def _event(self, snap: Snapshot, mark: SnapshotMark | None, fields: dict[str, Any]) -> Event:
        event, problems = parse_event(fields, snap.line, self.filename)
        if event is None:  # a mark the parser took as a grade, as a change: not expected
            where = f"marks[{mark.index}]" if mark is not None else "marks"
            self.problems.extend(Problem(p.file, p.line, f"{where}.{p.field}" if p.field
                                         else where, p.message) for p in problems)
            raise InputInvalid(self.problems)
        return event

    def _diff(self, snap: Snapshot, report: SnapshotReport,
              student: _Student) -> list[tuple[str, Event]]:
        """The student's events, each with what it is: ``new``, ``changed`` or ``deleted``
        (counted once applied); unchanged marks and marks missing once are counted here."""
        events: list[tuple[str, Event]] = []
        present = set()
        for mark in student.marks:
            present.add(mark.grade_id)
            row = self.named.get(mark.grade_id)
            if row is None or row["deleted_at"] is not None:
                events.append(("new", replace(mark.event, id=event_id(
                    snap.snapshot_id, mark.grade_id, "new"))))
                continue
            changed = grade_differences(mark.event, row)
            if not changed:
                report.unchanged += 1
                continue
            eid = event_id(snap.snapshot_id, mark.grade_id, f"chg:{content_hash(mark)}")
            if changed <= set(CHANGEABLE):
                if changed & set(VALUE_FIELDS):
                    changed |= set(VALUE_FIELDS) & set(CHANGEABLE)
                fields: dict[str, Any] = {"id": eid, "type": "grade_changed",
                                          "grade_id": mark.grade_id}
                for name in sorted(changed):
                    given = mark.raw.get(name)
                    fields[name] = given if given is not None else _plain(
                        getattr(mark.event, name, None))
            else:  # the subject or date: a grade sent again corrects every field
                fields = {**mark.raw, "id": eid, "type": "grade"}
            events.append(("changed", self._event(snap, mark, fields)))
        kept: dict[str, tuple[str, str]] = {}
        for row in student.stored:
            grade_id = row["external_id"]
            if grade_id in present:
                continue
            missed = student.missing.get(grade_id)
            if snap.complete or (missed is not None and missed[0] != snap.snapshot_id):
                events.append(("deleted", self._event(snap, None, {
                    "id": event_id(snap.snapshot_id, grade_id, "del"), "type": "grade_deleted",
                    "grade_id": grade_id})))
            else:
                kept[grade_id] = missed or (snap.snapshot_id, to_db(snap.taken_at))
                report.missing_once += 1
        student.missing = kept
        return events

    async def _remember(self, tx: Tx, snap: Snapshot, window: tuple[date, date],
                        student: _Student, now: str) -> None:
        """The student's last snapshot for the window, and the marks it missed (kept)."""
        key = (student.id, window[0].isoformat(), window[1].isoformat(), snap.subject or "")
        await tx.execute(
            "INSERT INTO snapshot_state (student_id, period_start, period_end, subject,"
            " snapshot_id, taken_at, marks, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (student_id, period_start, period_end, subject) DO UPDATE SET"
            " snapshot_id = excluded.snapshot_id, taken_at = excluded.taken_at,"
            " marks = excluded.marks, synced_at = excluded.synced_at",
            (*key, snap.snapshot_id, to_db(snap.taken_at), len(student.marks), now))
        await tx.execute(
            "DELETE FROM snapshot_missing WHERE student_id = ? AND period_start = ?"
            " AND period_end = ? AND subject = ?", key)
        if student.missing:
            await tx.executemany(
                "INSERT INTO snapshot_missing (student_id, period_start, period_end, subject,"
                " grade_id, snapshot_id, missing_since) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*key, grade_id, first, since)
                 for grade_id, (first, since) in sorted(student.missing.items())])
