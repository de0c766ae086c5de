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
from core.services.access import AccessService, load_children
from core.services.grades import period_of, subject_sums
from core.services.outbox import enqueue
from core.services.preferences import Preferences, from_row
from core.services.timetable import TimetableService
from core.storage.db import Database

GRACE = timedelta(hours=4)
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
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo, timetable: TimetableService,
                 default_time: str = "19:00", grace: timedelta = GRACE) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.timetable = timetable
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
            "SELECT a.telegram_id, s.* FROM accounts a"
            " LEFT JOIN account_settings s ON s.telegram_id = a.telegram_id"
            " WHERE a.unreachable_at IS NULL AND a.telegram_id NOT IN"
            " (SELECT telegram_id FROM digest_log WHERE day = ?)"
            " AND (a.telegram_id IN (SELECT telegram_id FROM account_links)"
            " OR a.telegram_id IN (SELECT telegram_id FROM trusts))",
            (today.isoformat(),))
        for row in rows:
            prefs = from_row(row if row["telegram_id"] is not None else None)
            if not prefs.digest_enabled:
                continue
            due = self._at(today, prefs.digest_time or self.default_time)
            if now < due:
                continue
            if now >= due + self.grace:
                result.skipped_late += 1
                continue
            telegram_id = row[0]
            children = await self.build(telegram_id, today, prefs)
            if children is None:
                continue
            sent = await self._decide(telegram_id, today, children, prefs, now)
            if sent is True:
                result.sent += 1
            elif sent is False:
                result.empty += 1
        return result

    async def _decide(self, telegram_id: int, today: date, children: list[ChildDigest],
                      prefs: Preferences, now: datetime) -> bool | None:
        """True: queued; False: nothing to say; None: another run decided it first."""
        send = any(not c.empty for c in children) or (prefs.digest_empty and bool(children))
        async with self.db.transaction() as tx:
            cur = await tx.execute(
                "INSERT OR IGNORE INTO digest_log (telegram_id, day, decided_at, sent)"
                " VALUES (?, ?, ?, ?)", (telegram_id, today.isoformat(), to_db(now), int(send)))
            if cur.rowcount == 0:
                return None
            if send:
                await enqueue(tx, telegram_id, "digest",
                              {"day": today.isoformat(),
                               "children": [asdict(c) for c in children]},
                              f"digest:{telegram_id}:{today.isoformat()}", now)
        return send

    async def build(self, telegram_id: int, today: date,
                    prefs: Preferences | None = None) -> list[ChildDigest] | None:
        """The digest's content for one account, or None if it follows no child for it."""
        prefs = prefs or Preferences()
        children = [c for c in await load_children(self.db, telegram_id)
                    if Scope.DIGEST in c.scopes and c.id not in prefs.muted_children]
        if not children:
            return None
        return [await self._child(telegram_id, c, today) for c in children]

    async def _child(self, telegram_id: int, child: Child, today: date) -> ChildDigest:
        start = datetime.combine(today, time.min, tzinfo=self.tz).astimezone(UTC)
        end = start + timedelta(days=1)
        grades: list[dict] = []
        marks: list[dict] = []
        dots: list[dict] = []
        if Scope.GRADES in child.scopes:
            rows = await self.db.fetchall(
                "SELECT subject, value, weight, work, date FROM grades WHERE student_id = ?"
                " AND deleted_at IS NULL AND created_at >= ? AND created_at < ?"
                " ORDER BY subject, id", (child.id, to_db(start), to_db(end)))
            by_subject: dict[str, list] = {}
            for r in rows:
                by_subject.setdefault(r["subject"], []).append(r)
            for subject, items in by_subject.items():
                period = await period_of(self.db, date.fromisoformat(items[-1]["date"]))
                async with self.db.read() as tx:
                    total, weights = await subject_sums(tx, child.id, subject, period)
                in_period = [r for r in items
                             if period.start <= date.fromisoformat(r["date"]) <= period.end]
                new_total = sum(r["value"] * r["weight"] for r in in_period)
                new_weights = sum(r["weight"] for r in in_period)
                before = ((total - new_total) / (weights - new_weights)
                          if weights - new_weights else None)
                after = total / weights if weights else None
                for n, r in enumerate(items):
                    last = n == len(items) - 1
                    grades.append({"subject": subject, "value": r["value"], "weight": r["weight"],
                                   "work": r["work"], "avg_before": before if last else None,
                                   "avg_after": after if last else None})
            for r in await self.db.fetchall(
                    "SELECT subject, work, expires FROM dots WHERE student_id = ?"
                    " AND status = 'open' ORDER BY expires, subject", (child.id,)):
                expires = date.fromisoformat(r["expires"])
                dots.append({"subject": r["subject"], "work": r["work"],
                             "expires": r["expires"], "days_left": (expires - today).days})
        if Scope.ATTENDANCE in child.scopes:
            marks = [dict(r) for r in await self.db.fetchall(
                "SELECT lesson, subject, mark, excused FROM attendance WHERE student_id = ?"
                " AND date = ? ORDER BY lesson", (child.id, today.isoformat()))]
        next_day = lessons = homework = None
        if Scope.HOMEWORK in child.scopes:
            class_id = await self.db.scalar("SELECT class_id FROM students WHERE id = ?",
                                            (child.id,))
            day = await self.timetable.next_school_day({class_id}, today)
            [entry] = await self.timetable.day([child], day)
            next_day = day.isoformat()
            lessons = [{"number": x.number, "subject": x.subject,
                        "start": x.start.strftime("%H:%M"), "cancelled": x.cancelled}
                       for x in entry.lessons]
            homework = [{"subject": h.subject, "text": h.text, "required": h.required}
                        for h in entry.homework]
        signoff = signed = None
        if child.role is Role.GUARDIAN and today.weekday() == SIGNOFF_WEEKDAY:
            signoff = week_start(today).isoformat()
            signed = await self.db.scalar(
                "SELECT signed_at FROM signoffs WHERE student_id = ? AND week_start = ?"
                " AND telegram_id = ?", (child.id, signoff, telegram_id))
        return ChildDigest(child.id, child.name.short, child.class_name, grades, marks, dots,
                           next_day, lessons or [], homework or [], signoff, signed)

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
                "INSERT OR IGNORE INTO signoffs (student_id, week_start, telegram_id,"
                " guardian_id, signed_at) VALUES (?, ?, ?, ?, ?)",
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
