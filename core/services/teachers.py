"""Class teachers: applying teachers.csv, their one-time codes, and linking their accounts.

teachers.csv is the full list of class teachers for each school it names. A teacher keeps their
row (and so their conversations) across imports, matched by the school's ``teacher_id``. A
teacher the file no longer lists is deactivated at once: their classes, account links and
unused codes go, and pushes still waiting for them are dropped. A teacher sees only the classes
the file gives them, read from the database on every use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from core.clock import Clock, from_db, to_db
from core.errors import InputInvalid, Problem
from core.identity import Hasher, new_link_code
from core.importers.teachers import TeacherRoster
from core.models import LinkResult, PersonName
from core.storage.db import Database, Tx

CODE_TTL = timedelta(days=14)
# Where a pending push to a teacher about a child may still go: the account is linked to an
# active teacher who leads the child's class now.
_STILL_LEADS = (
    "EXISTS (SELECT 1 FROM teacher_links tl JOIN teachers t ON t.id = tl.teacher_id"
    " AND t.active = 1 JOIN teacher_classes tc ON tc.teacher_id = t.id"
    " JOIN students s ON s.class_id = tc.class_id"
    " WHERE tl.telegram_id = outbox.telegram_id AND s.id = outbox.student_id)"
)
TEACHER_KINDS = ("teacher_message",)


@dataclass
class TeacherSummary:
    teachers: int = 0
    classes: int = 0
    teachers_added: int = 0
    teachers_updated: int = 0
    teachers_removed: int = 0  # no longer listed: deactivated, access ended
    classes_assigned: int = 0
    classes_unassigned: int = 0
    links_ended: int = 0
    pushes_dropped: int = 0
    dry_run: bool = False


@dataclass(frozen=True)
class Seat:
    """One class a teacher's account may see."""

    teacher_id: int
    class_id: int
    class_name: str
    school: str


@dataclass(frozen=True)
class IssuedTeacherCode:
    code: str  # in clear: shown once; only its hash is stored
    teacher_id: str
    name: PersonName
    classes: tuple[str, ...]
    expires_at: datetime


class _Rollback(Exception):
    pass


async def seats(tx: Tx | Database, telegram_id: int) -> list[Seat]:
    """The classes this account leads as a class teacher, from the roster of teachers now."""
    rows = await tx.fetchall(
        "SELECT t.id AS teacher_id, c.id AS class_id, c.name AS class_name, sc.name AS school"
        " FROM teacher_links tl JOIN teachers t ON t.id = tl.teacher_id AND t.active = 1"
        " JOIN teacher_classes tc ON tc.teacher_id = t.id JOIN classes c ON c.id = tc.class_id"
        " JOIN schools sc ON sc.id = c.school_id WHERE tl.telegram_id = ?"
        " ORDER BY c.name, c.id", (telegram_id,))
    return [Seat(r["teacher_id"], r["class_id"], r["class_name"], r["school"]) for r in rows]


async def _link(tx: Tx, telegram_id: int, teacher_ids: list[int], via: str,
                now: datetime) -> int:
    new = 0
    for teacher_id in teacher_ids:
        cur = await tx.execute(
            "INSERT INTO teacher_links (telegram_id, teacher_id, via, linked_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (telegram_id, teacher_id, via, to_db(now)))
        new += cur.rowcount
    return new


async def _with_classes(tx: Tx, telegram_id: int, result: LinkResult, new: int) -> LinkResult:
    classes = tuple(dict.fromkeys(s.class_name for s in await seats(tx, telegram_id)))
    return replace(result, new_links=result.new_links + new, teacher_classes=classes)


async def teachers_by_phone(tx: Tx, phone_hash: str) -> list[int]:
    return [r[0] for r in await tx.fetchall(
        "SELECT id FROM teachers WHERE phone_hash = ? AND active = 1", (phone_hash,))]


async def link_teachers(tx: Tx, telegram_id: int, teacher_ids: list[int], via: str,
                        now: datetime, result: LinkResult) -> LinkResult:
    """Link the account to these teachers (found by the phone Telegram vouched for)."""
    new = await _link(tx, telegram_id, teacher_ids, "code" if via == "code" else
                      "support" if via == "support" else "phone", now)
    return await _with_classes(tx, telegram_id, result, new)


async def redeem_teacher_code(tx: Tx, code_hash: str, telegram_id: int, now: datetime
                              ) -> LinkResult | str | None:
    """A teacher's one-time code: the link made, ``"used"`` or ``"expired"``; None if the code
    is not a teacher's (it may be a family's)."""
    row = await tx.fetchone(
        "SELECT c.*, t.active FROM teacher_codes c JOIN teachers t ON t.id = c.teacher_id"
        " WHERE c.code_hash = ?", (code_hash,))
    if row is None:
        return None
    if row["used_at"] is not None or not row["active"]:
        return "used"
    if from_db(row["expires_at"]) <= now:
        return "expired"
    if (await tx.execute(
            "UPDATE teacher_codes SET used_at = ?, used_by = ? WHERE code_hash = ?"
            " AND used_at IS NULL", (to_db(now), telegram_id, code_hash))).rowcount != 1:
        return "used"
    new = await _link(tx, telegram_id, [row["teacher_id"]], "code", now)
    return await _with_classes(tx, telegram_id, LinkResult(children=(), new_links=0), new)


async def drop_unreachable_pushes(tx: Tx, now: datetime) -> int:
    """Pending pushes to teachers about children of classes they no longer lead."""
    kinds = ", ".join(f"'{k}'" for k in TEACHER_KINDS)
    cur = await tx.execute(
        f"UPDATE outbox SET dropped_at = ?, last_error = 'no access' WHERE kind IN ({kinds})"
        f" AND sent_at IS NULL AND dropped_at IS NULL AND NOT {_STILL_LEADS}", (to_db(now),))
    return cur.rowcount


class TeacherService:
    def __init__(self, db: Database, hasher: Hasher, clock: Clock) -> None:
        self.db = db
        self.hasher = hasher
        self.clock = clock

    async def apply(self, roster: TeacherRoster, source: str,
                    dry_run: bool = False) -> TeacherSummary:
        summary = TeacherSummary(dry_run=dry_run)
        try:
            async with self.db.transaction() as tx:
                await self._apply(tx, roster, summary)
                await tx.execute(
                    "INSERT INTO imports (kind, source, finished_at, summary) VALUES (?, ?, ?, ?)",
                    ("teachers", source, to_db(self.clock.now()), json.dumps(asdict(summary))))
                if dry_run:
                    raise _Rollback
        except _Rollback:
            pass
        return summary

    async def _apply(self, tx: Tx, roster: TeacherRoster, summary: TeacherSummary) -> None:
        now = self.clock.now()
        stamp = to_db(now)
        file = roster.file
        summary.teachers = len(roster.teachers)
        summary.classes = len(roster.classes)
        problems: list[Problem] = []

        # The roster's classes: each row's school and class must be there.
        known = await tx.fetchall(
            "SELECT c.id, c.name, c.school_id, sc.name AS school FROM classes c"
            " JOIN schools sc ON sc.id = c.school_id")
        class_of: dict[tuple[str, str], tuple[int, int]] = {}
        for tc in roster.classes:
            found = [r for r in known if r["name"] == tc.class_name and (
                not tc.school or r["school"].casefold() == tc.school.casefold())]
            if tc.school and not any(r["school"].casefold() == tc.school.casefold()
                                     for r in known):
                problems.append(Problem(file, tc.line, "school", "no such school in the roster"))
            elif not found:
                problems.append(Problem(file, tc.line, "class",
                                        f"no class {tc.class_name} in the roster"))
            elif len(found) > 1:
                problems.append(Problem(file, tc.line, "school",
                                        f"class {tc.class_name} is in several schools:"
                                        " name the school"))
            else:
                class_of[(tc.teacher_id, tc.class_name)] = (found[0]["id"],
                                                            found[0]["school_id"])
        school_of: dict[str, int] = {}
        for tc in roster.classes:
            where = class_of.get((tc.teacher_id, tc.class_name))
            if where is None:
                continue
            first = school_of.setdefault(tc.teacher_id, where[1])
            if first != where[1]:
                problems.append(Problem(file, tc.line, "class", "a teacher's classes must be in"
                                                                " one school"))
        # Two classes of different schools may resolve to one class row only once.
        seen: dict[int, int] = {}
        for tc in roster.classes:
            where = class_of.get((tc.teacher_id, tc.class_name))
            if where is None:
                continue
            if where[0] in seen:
                problems.append(Problem(file, tc.line, "class",
                                        f"class {tc.class_name} already has a class teacher on"
                                        f" line {seen[where[0]]}"))
            else:
                seen[where[0]] = tc.line
        if problems:
            raise InputInvalid(sorted(problems, key=lambda p: (p.line, p.field)))

        # Teachers, matched by the school's id.
        existing = {r["external_id"]: r for r in await tx.fetchall(
            "SELECT id, external_id, school_id, last_name, first_name, middle_name, phone_hash,"
            " email_hash, active FROM teachers")}
        ids: dict[str, int] = {}
        for t in roster.teachers:
            phone = self.hasher.phone(t.phone) if t.phone else None
            email = self.hasher.email(t.email) if t.email else None
            values = (school_of[t.teacher_id], t.last_name, t.first_name, t.middle_name, phone,
                      email)
            old = existing.get(t.teacher_id)
            if old is None:
                ids[t.teacher_id] = await tx.insert(
                    "INSERT INTO teachers (external_id, school_id, last_name, first_name,"
                    " middle_name, phone_hash, email_hash, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (t.teacher_id, *values, stamp, stamp))
                summary.teachers_added += 1
                continue
            ids[t.teacher_id] = old["id"]
            before = (old["school_id"], old["last_name"], old["first_name"], old["middle_name"],
                      old["phone_hash"], old["email_hash"])
            if before != values or not old["active"]:
                await tx.execute(
                    "UPDATE teachers SET school_id = ?, last_name = ?, first_name = ?,"
                    " middle_name = ?, phone_hash = ?, email_hash = ?, active = 1,"
                    " updated_at = ? WHERE id = ?", (*values, stamp, old["id"]))
                summary.teachers_updated += 1

        # Teachers of these schools the file no longer lists: access ends now.
        schools = set(school_of.values())
        listed = set(ids.values())
        gone = [r["id"] for r in existing.values() if r["active"]
                and r["school_id"] in schools and r["id"] not in listed]
        for teacher_id in gone:
            await tx.execute("UPDATE teachers SET active = 0, updated_at = ? WHERE id = ?",
                             (stamp, teacher_id))
            summary.links_ended += (await tx.execute(
                "DELETE FROM teacher_links WHERE teacher_id = ?", (teacher_id,))).rowcount
            await tx.execute("DELETE FROM teacher_codes WHERE teacher_id = ? AND used_at IS NULL",
                             (teacher_id,))
        summary.teachers_removed = len(gone)

        # Class teachers: exactly the file's pairs for the schools it covers.
        wanted = {class_of[(tc.teacher_id, tc.class_name)][0]: ids[tc.teacher_id]
                  for tc in roster.classes}
        marks = ", ".join("?" for _ in schools)
        have = {r[0]: r[1] for r in await tx.fetchall(
            "SELECT tc.class_id, tc.teacher_id FROM teacher_classes tc"
            " JOIN classes c ON c.id = tc.class_id"
            f" WHERE c.school_id IN ({marks})", sorted(schools))}
        removed = [(c,) for c, t in have.items() if wanted.get(c) != t]
        await tx.executemany("DELETE FROM teacher_classes WHERE class_id = ?", removed)
        added = [(c, t) for c, t in wanted.items() if have.get(c) != t]
        await tx.executemany(
            "INSERT INTO teacher_classes (class_id, teacher_id) VALUES (?, ?)", added)
        summary.classes_unassigned = len([c for c, _t in have.items() if c not in wanted])
        summary.classes_assigned = len(added)
        summary.pushes_dropped = await drop_unreachable_pushes(tx, now)

    async def issue_codes(self, class_name: str | None = None, teacher_id: str | None = None,
                          ttl: timedelta = CODE_TTL) -> list[IssuedTeacherCode]:
        """Fresh codes for the active class teachers picked (a new code revokes the teacher's
        earlier unused ones)."""
        now = self.clock.now()
        expires = now + ttl
        where, params = ["t.active = 1"], []
        if class_name:
            where.append("t.id IN (SELECT tc.teacher_id FROM teacher_classes tc"
                         " JOIN classes c ON c.id = tc.class_id WHERE c.name = ?)")
            params.append(class_name.replace(" ", "").upper())
        if teacher_id:
            where.append("t.external_id = ?")
            params.append(teacher_id)
        issued = []
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT t.id, t.external_id, t.last_name, t.first_name, t.middle_name"
                f" FROM teachers t WHERE {' AND '.join(where)}"
                " ORDER BY t.last_name, t.first_name, t.external_id", params)
            for r in rows:
                classes = tuple(c[0] for c in await tx.fetchall(
                    "SELECT c.name FROM teacher_classes tc JOIN classes c ON c.id = tc.class_id"
                    " WHERE tc.teacher_id = ? ORDER BY c.name", (r["id"],)))
                if not classes:
                    continue
                await tx.execute(
                    "DELETE FROM teacher_codes WHERE teacher_id = ? AND used_at IS NULL",
                    (r["id"],))
                code = new_link_code()
                await tx.execute(
                    "INSERT INTO teacher_codes (code_hash, teacher_id, issued_at, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    (self.hasher.code(code), r["id"], to_db(now), to_db(expires)))
                issued.append(IssuedTeacherCode(
                    code, r["external_id"],
                    PersonName(r["last_name"], r["first_name"], r["middle_name"]), classes,
                    expires))
        return issued
