"""The daily digest and the weekly sign-off.

At each account's digest time (school time) the day is summed up per child: today's grades with
the average's change, today's attendance marks, open dots (expiring first), and the next school
day's timetable and homework (on a Friday: Monday's). Each account's day is decided once — a row
in ``digest_log`` taken in a write transaction — so a second run, a restart or a second process
never sends a second digest. A bot that was down at digest time sends it late, within the grace
period, and then gives up for that day.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.errors import AccessDenied
from core.models import Child, Role, Scope, Viewer
from core.services.access import AccessService, load_children_many
from core.services.grades import mean, period_of
from core.services.outbox import enqueue
from core.services.preferences import Preferences, from_row
from core.storage.db import Database

GRACE = timedelta(hours=4)
LOOKAHEAD = 14  # days to look ahead for the next school day
SIGNOFF_WEEKDAY = 4  # Friday's digest carries the week's sign-off


@dataclass(frozen=True)
class ChildDigest:
    student_id: int
    name: str
    class_name: str
    grades: list[dict]
    marks: list[dict]
    dots: list[dict]
    next_day: str | None
    lessons: list[dict]
    homework: list[dict]
    signoff_week: str | None  # the Monday, if this digest asks the guardian to sign
    signed_at: str | None

    @property
    def empty(self) -> bool:
        return not (self.grades or self.marks or self.dots or self.lessons or self.homework)


@dataclass
class DigestRun:
    sent: int = 0
    empty: int = 0
    skipped_late: int = 0


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


class DigestService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo, default_time: str = "19:00",
                 grace: timedelta = GRACE) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.default_time = default_time
        self.grace = grace

    def _at(self, day: date, hhmm: str) -> datetime:
        hours, _, minutes = hhmm.partition(":")
        return datetime.combine(day, time(int(hours), int(minutes)), tzinfo=self.tz)

    async def run(self) -> DigestRun:
        """Queue the digests that are due now. Safe to run at any time, any number of times."""
        result = DigestRun()
        now = self.clock.now()
        today = now.astimezone(self.tz).date()
        rows = await self.db.fetchall(
            "SELECT a.telegram_id AS account, s.* FROM accounts a"
            " LEFT JOIN account_settings s ON s.telegram_id = a.telegram_id"
            " WHERE a.unreachable_at IS NULL AND a.telegram_id NOT IN"
            " (SELECT telegram_id FROM digest_log WHERE day = ?)"
            " AND (a.telegram_id IN (SELECT telegram_id FROM account_links)"
            " OR a.telegram_id IN (SELECT telegram_id FROM trusts))",
            (today.isoformat(),))
        due: list[tuple[int, Preferences]] = []
        for row in rows:
            prefs = from_row(row)
            if not prefs.digest_enabled:
                continue
            at = self._at(today, prefs.digest_time or self.default_time)
            if now < at:
                continue
            if now >= at + self.grace:
                result.skipped_late += 1
                continue
            due.append((row["account"], prefs))
        if not due:
            return result
        snapshot = await _Snapshot.load(self, today, {tg for tg, _p in due})
        decisions = []
        for telegram_id, prefs in due:
            children = snapshot.digest(telegram_id, prefs)
            if children is not None:
                send = any(not c.empty for c in children) or prefs.digest_empty
                decisions.append((telegram_id, children, send))
        async with self.db.transaction() as tx:
            for telegram_id, children, send in decisions:
                cur = await tx.execute(
                    "INSERT INTO digest_log (telegram_id, day, decided_at, sent)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (telegram_id, today.isoformat(), to_db(now), int(send)))
                if cur.rowcount == 0:
                    continue  # another run decided this account's day first
                if not send:
                    result.empty += 1
                    continue
                await enqueue(tx, telegram_id, "digest",
                              {"day": today.isoformat(),
                               "children": [asdict(c) for c in children]},
                              f"digest:{telegram_id}:{today.isoformat()}", now)
                result.sent += 1
        return result

    async def build(self, telegram_id: int, today: date,
                    prefs: Preferences | None = None) -> list[ChildDigest] | None:
        """The digest's content for one account, or None if it follows no child for it."""
        snapshot = await _Snapshot.load(self, today, {telegram_id})
        return snapshot.digest(telegram_id, prefs or Preferences())


    # -- the weekly sign-off -----------------------------------------------------------------

    async def sign(self, viewer: Viewer, student_id: int, week: date) -> datetime:
        """A guardian signs the week's diary («Ознакомлен(а)»); signing again keeps the first
        time. Returns when it was signed."""
        AccessService.require_guardian(viewer, student_id)
        if week.weekday() != 0 or week > self.clock.now().astimezone(self.tz).date():
            raise AccessDenied(week=week.isoformat())
        now = self.clock.now()
        async with self.db.transaction() as tx:
            guardian_id = await tx.scalar(
                "SELECT l.guardian_id FROM account_links l JOIN guardianships g ON"
                " g.guardian_id = l.guardian_id WHERE l.telegram_id = ? AND g.student_id = ?",
                (viewer.telegram_id, student_id))
            await tx.execute(
                "INSERT INTO signoffs (student_id, week_start, telegram_id,"
                " guardian_id, signed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (student_id, week.isoformat(), viewer.telegram_id, guardian_id, to_db(now)))
            stamp = await tx.scalar(
                "SELECT signed_at FROM signoffs WHERE student_id = ? AND week_start = ?"
                " AND telegram_id = ?", (student_id, week.isoformat(), viewer.telegram_id))
        return from_db(stamp)

    async def signoffs(self, week: date, class_name: str | None = None) -> list[dict]:
        """For school staff: every active student of the class(es) and who signed the week."""
        where = ["s.active = 1"]
        params: list[object] = [week.isoformat()]
        if class_name:
            where.append("c.name = ?")
            params.append(class_name.replace(" ", "").upper())
        rows = await self.db.fetchall(
            f"SELECT s.external_id, s.last_name || ' ' || s.first_name AS student,"
            f" COALESCE(c.name, '') AS class_name, g.last_name || ' ' || g.first_name AS guardian,"
            f" so.signed_at FROM students s LEFT JOIN classes c ON c.id = s.class_id"
            f" LEFT JOIN signoffs so ON so.student_id = s.id AND so.week_start = ?"
            f" LEFT JOIN guardians g ON g.id = so.guardian_id"
            f" WHERE {' AND '.join(where)} ORDER BY class_name, student, so.signed_at", params)
        return [dict(r) for r in rows]


class _Snapshot:
    """Everything the day's digests need, read in a handful of queries for all accounts."""

    @classmethod
    async def load(cls, svc: DigestService, today: date, accounts: set[int]) -> _Snapshot:
        self = cls()
        self.today = today
        db = svc.db
        start = datetime.combine(today, time.min, tzinfo=svc.tz).astimezone(UTC)
        end = start + timedelta(days=1)
        self.children = await _all_children(db, accounts)
        students = {c.id for kids in self.children.values() for c in kids}
        self.grades: dict[int, list] = {}
        for r in await db.fetchall(
                "SELECT student_id, subject, value, weight, work, date FROM grades"
                " WHERE deleted_at IS NULL AND quiet = 0 AND created_at >= ? AND created_at < ?"
                " ORDER BY student_id, subject, id", (to_db(start), to_db(end))):
            if r["student_id"] in students:
                self.grades.setdefault(r["student_id"], []).append(r)
        self.period = await period_of(db, today)
        self.sums: dict[tuple[int, str], tuple[int, int]] = {}
        with_grades = sorted(self.grades)
        for i in range(0, len(with_grades), 500):
            part = with_grades[i : i + 500]
            for r in await db.fetchall(
                    f"SELECT student_id, subject, SUM(value * weight), SUM(weight) FROM grades"
                    f" WHERE deleted_at IS NULL AND date BETWEEN ? AND ?"
                    f" AND student_id IN ({','.join('?' * len(part))})"
                    f" GROUP BY student_id, subject",
                    (self.period.start.isoformat(), self.period.end.isoformat(), *part)):
                self.sums[(r[0], r[1])] = (r[2], r[3])
        self.marks: dict[int, list[dict]] = {}
        for r in await db.fetchall(
                "SELECT student_id, lesson, subject, mark, excused FROM attendance"
                " WHERE date = ? ORDER BY lesson", (today.isoformat(),)):
            self.marks.setdefault(r["student_id"], []).append(
                {"lesson": r["lesson"], "subject": r["subject"], "mark": r["mark"],
                 "excused": r["excused"]})
        self.dots: dict[int, list[dict]] = {}
        for r in await db.fetchall(
                "SELECT student_id, subject, work, expires FROM dots WHERE status = 'open'"
                " ORDER BY expires, subject"):
            self.dots.setdefault(r["student_id"], []).append(
                {"subject": r["subject"], "work": r["work"], "expires": r["expires"],
                 "days_left": (date.fromisoformat(r["expires"]) - today).days})
        self.class_of = {r[0]: r[1] for r in await db.fetchall(
            "SELECT id, class_id FROM students WHERE active = 1")}
        horizon = (today + timedelta(days=LOOKAHEAD)).isoformat()
        self.next_day = {r[0]: date.fromisoformat(r[1]) for r in await db.fetchall(
            "SELECT class_id, MIN(date) FROM lessons WHERE date > ? AND date <= ?"
            " GROUP BY class_id", (today.isoformat(), horizon))}
        fallback = today + timedelta(days=1)
        while fallback.weekday() >= 5:
            fallback += timedelta(days=1)
        self.fallback_day = fallback
        self.lessons: dict[tuple[int, str], list[dict]] = {}
        for r in await db.fetchall(
                "SELECT class_id, date, number, subject, start_time, cancelled FROM lessons"
                " WHERE date > ? AND date <= ? ORDER BY number", (today.isoformat(), horizon)):
            self.lessons.setdefault((r[0], r[1]), []).append(
                {"number": r["number"], "subject": r["subject"], "start": r["start_time"],
                 "cancelled": bool(r["cancelled"])})
        self.homework: dict[tuple[int, str], list[dict]] = {}
        for r in await db.fetchall(
                "SELECT class_id, due, subject, text, required FROM homework"
                " WHERE due > ? AND due <= ? ORDER BY subject, id", (today.isoformat(), horizon)):
            self.homework.setdefault((r[0], r[1]), []).append(
                {"subject": r["subject"], "text": r["text"], "required": bool(r["required"])})
        self.week = week_start(today).isoformat()
        self.signed_at: dict[tuple[int, int], str] = {}
        if today.weekday() == SIGNOFF_WEEKDAY:
            self.signed_at = {(r[0], r[1]): r[2] for r in await db.fetchall(
                "SELECT student_id, telegram_id, signed_at FROM signoffs WHERE week_start = ?",
                (self.week,))}
        return self

    def digest(self, telegram_id: int, prefs: Preferences) -> list[ChildDigest] | None:
        children = [c for c in self.children.get(telegram_id, [])
                    if Scope.DIGEST in c.scopes and c.id not in prefs.muted_children]
        if not children:
            return None
        return [self._child(telegram_id, c) for c in children]

    def _child(self, telegram_id: int, child: Child) -> ChildDigest:
        grades: list[dict] = []
        dots: list[dict] = []
        marks: list[dict] = []
        if Scope.GRADES in child.scopes:
            by_subject: dict[str, list] = {}
            for r in self.grades.get(child.id, []):
                by_subject.setdefault(r["subject"], []).append(r)
            for subject, items in by_subject.items():
                total, weights = self.sums.get((child.id, subject), (0, 0))
                in_period = [r for r in items if self.period.start
                             <= date.fromisoformat(r["date"]) <= self.period.end]
                new_total = sum(r["value"] * r["weight"] for r in in_period)
                new_weights = sum(r["weight"] for r in in_period)
                before = mean(total - new_total, weights - new_weights)
                after = mean(total, weights)
                for n, r in enumerate(items):
                    last = n == len(items) - 1
                    grades.append({"subject": subject, "value": r["value"], "weight": r["weight"],
                                   "work": r["work"], "avg_before": before if last else None,
                                   "avg_after": after if last else None})
            dots = self.dots.get(child.id, [])
        if Scope.ATTENDANCE in child.scopes:
            marks = self.marks.get(child.id, [])
        next_day = None
        lessons: list[dict] = []
        homework: list[dict] = []
        if Scope.HOMEWORK in child.scopes:
            class_id = self.class_of.get(child.id)
            day = self.next_day.get(class_id, self.fallback_day)
            next_day = day.isoformat()
            lessons = self.lessons.get((class_id, next_day), [])
            homework = self.homework.get((class_id, next_day), [])
        signoff = signed = None
        if child.role is Role.GUARDIAN and self.today.weekday() == SIGNOFF_WEEKDAY:
            signoff = self.week
            signed = self.signed_at.get((child.id, telegram_id))
        return ChildDigest(child.id, child.name.short, child.class_name, grades, marks, dots,
                           next_day, lessons, homework, signoff, signed)


async def _all_children(db: Database, accounts: set[int]) -> dict[int, list[Child]]:
    """``load_children`` for many accounts at once."""
    result: dict[int, list[Child]] = {tg: [] for tg in accounts}
    ids = sorted(accounts)
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        for tg, children in (await load_children_many(db, part)).items():
            result[tg] = list(children)
    return result
