"""The daily digest and the weekly sign-off.

At each account's digest time (school time) the day is summed up per child: today's grades with
the average's change, today's attendance marks, open dots (expiring first), and the next school
day's timetable and homework (on a Friday: Monday's). Each account's day is decided once — a row
in ``digest_log`` taken in a write transaction — so a second run, a restart or a second process
never sends a second digest. A bot that was down at digest time sends it late, within the grace
period, and then gives up for that day.

A run reads only the accounts whose next digest moment has come (``accounts.digest_due_at``,
see ``core.services.digest_due``), a chunk at a time, and only their children's data; each
account it reads gets its next moment, so the cost of a run follows the digests due, not the
number of accounts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.errors import AccessDenied
from core.models import Child, Role, Scope, Viewer
from core.services.access import AccessService, load_children_many
from core.services.announcements import school_announcements, visible
from core.services.digest_due import (
    GRACE,
    META_DEFAULT_TIME,
    DigestSchedule,
    decided_sql,
    follows_sql,
)
from core.services.grades import SUMS_SQL, Period, mean, period_of
from core.services.outbox import enqueue_many, outbox_row
from core.services.preferences import Preferences, from_row
from core.storage.db import Database, Tx, in_list

log = logging.getLogger(__name__)

LOOKAHEAD = 14  # days to look ahead for the next school day
SIGNOFF_WEEKDAY = 4  # Friday's digest carries the week's sign-off
CHUNK = 1000  # due accounts per read and per write transaction
_PART = 500  # ids per IN (…) list
YIELD_EVERY = 100  # digests built between two turns of the event loop
SYNC_CHUNK = 5000  # accounts moved per transaction when the default time changes


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

    def payload(self) -> dict:
        """As stored in the outbox (``dataclasses.asdict`` without its deep copy: the lists
        are the digest's own, only ever serialized)."""
        return dict(vars(self))


@dataclass(frozen=True)
class WeekSubject:
    """A subject on the weekly chart: the period's average now and before this week's marks,
    and the marks of the week as the school shows them, in lesson order."""

    subject: str
    average: float | None
    before: float | None
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class WeekChart:
    """What the weekly chart of one child shows (Friday's digest, ``digest_chart``): every
    subject with marks in the period, this week's marks and how they moved the average."""

    student_id: int
    child: str
    start: date  # the week's Monday (or the period's first day, if later)
    end: date  # the digest's day
    period: Period
    subjects: tuple[WeekSubject, ...]

    @property
    def marks(self) -> int:
        return sum(len(s.marks) for s in self.subjects)


# Draws a weekly chart in an account's language (its chosen locale, then Telegram's language):
# the PNG's bytes. The bot passes one to ``DigestService.run``.
DrawWeek = Callable[[WeekChart, str | None, str | None], Awaitable[bytes]]


@dataclass
class DigestRun:
    sent: int = 0
    empty: int = 0
    charts: int = 0
    skipped_late: int = 0  # today's digests whose time and grace passed before a run came
    considered: int = 0  # accounts read by the run: only those whose due moment had come


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


_DUE_SQL = (
    f"SELECT a.telegram_id AS account, a.digest_due_at AS due,"
    f" {follows_sql('a.telegram_id')} AS follows, {decided_sql('a.telegram_id', 'day')}"
    f" AS decided, a.locale AS account_locale, a.language_code AS account_language,"
    f" s.* FROM accounts a"
    f" LEFT JOIN account_settings s ON s.telegram_id = a.telegram_id"
    f" WHERE a.digest_due_at <= :now AND a.unreachable_at IS NULL"
    f" ORDER BY a.digest_due_at LIMIT :limit")


def _prefs(row) -> Preferences:
    """An account's settings; unreadable ones fall back to the defaults (one bad row never
    holds up everyone else's digest)."""
    try:
        return from_row(row)
    except (ValueError, TypeError) as exc:
        log.warning("account %s: unreadable settings (%s), digest with the defaults",
                    row["account"], exc)
        return Preferences()


class DigestService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo, default_time: str,
                 grace: timedelta = GRACE, chunk: int = CHUNK) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.default_time = default_time
        self.grace = grace
        self.chunk = chunk
        self.schedule = DigestSchedule(tz, default_time, grace)

    async def run(self, draw_week: DrawWeek | None = None) -> DigestRun:
        """Queue the digests that are due now. Safe to run at any time, any number of times.

        Reads only the accounts whose due moment has come (``accounts_digest_due``), ``chunk``
        at a time, each chunk decided in one write transaction: memory and the write lock stay
        bounded however many accounts there are. Every account read gets its next moment.

        With ``draw_week``, a Friday's digest of an account that asked for it
        (``digest_chart``) is followed by a picture of each child's week."""
        result = DigestRun()
        await self.sync_default_time()
        while True:
            now = self.clock.now()
            rows = await self.db.fetchall(_DUE_SQL, {
                "now": to_db(now), "day": self.schedule.today(now).isoformat(),
                "limit": self.chunk})
            if not rows:
                break
            result.considered += len(rows)
            moved = await self._decide(rows, now, result, draw_week)
            if len(rows) < self.chunk or not moved:
                break  # the rest (if any) were moved meanwhile by another run or a setting
        return result

    async def _decide(self, rows, now: datetime, result: DigestRun,
                      draw_week: DrawWeek | None = None) -> int:
        """One chunk of due accounts: build the digests whose time has come, then in one write
        transaction take each account's day, queue what is to be sent and move every account's
        moment on — only where it is still the moment read (another run, or a change of
        settings, may have moved it meanwhile). Returns how many accounts were moved on."""
        sched = self.schedule
        today = sched.today(now)
        tomorrow = today + timedelta(days=1)
        plans: list[tuple[int, str, str | None]] = []
        late: set[int] = set()
        due: dict[int, Preferences] = {}
        languages: dict[int, tuple[str | None, str | None]] = {}
        for n, row in enumerate(rows, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            telegram_id = row["account"]
            prefs = _prefs(row)
            new: datetime | None = None
            if prefs.digest_enabled and row["follows"]:
                hhmm = sched.time_of(prefs.digest_time)
                at = sched.moment(today, hhmm)
                new = sched.moment(tomorrow, hhmm)
                if row["decided"]:
                    pass  # today's digest went already (or was decided by another run)
                elif now < at:
                    new = at  # not yet: the moment read was an earlier day's or outdated
                elif now >= at + self.grace:
                    if sched.today(from_db(row["due"])) == today:
                        late.add(telegram_id)
                else:
                    due[telegram_id] = prefs
                    languages[telegram_id] = (row["account_locale"], row["account_language"])
            plans.append((telegram_id, row["due"], None if new is None else to_db(new)))
        # What each due account gets, worked out before the write transaction; the event loop
        # gets a turn every YIELD_EVERY accounts (polling and delivery share it).
        decisions: dict[int, str | None] = {}  # the digest's payload, None: nothing to send
        charts: dict[int, list[tuple[WeekChart, bytes]]] = {}
        if due:
            snapshot = await _Snapshot.load(self, today, set(due))
            wanted = {tg: prefs for tg, prefs in due.items() if prefs.digest_chart}
            if draw_week is not None and wanted and today.weekday() == SIGNOFF_WEEKDAY:
                charts = await _week_charts(self.db, snapshot, wanted, languages, draw_week)
            for n, (telegram_id, prefs) in enumerate(due.items(), 1):
                children = snapshot.digest(telegram_id, prefs)
                if children is not None:
                    news = snapshot.news(telegram_id, prefs)
                    send = (any(not c.empty for c in children) or prefs.digest_empty or news
                            or telegram_id in charts)
                    payload = {"day": today.isoformat(),
                               "children": [c.payload() for c in children]}
                    if news:
                        payload["announcements"] = news
                    decisions[telegram_id] = json.dumps(
                        payload, ensure_ascii=False) if send else None
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        async with self.db.transaction() as tx:
            moved = await _move_on(tx, plans)
            result.skipped_late += len(late & moved)
            taken = await _take_days(
                tx, [(tg, payload is not None) for tg, payload in decisions.items()
                     if tg in moved], today, now)
            pushes = []
            for telegram_id in taken:
                payload = decisions[telegram_id]
                if payload is None:
                    result.empty += 1
                    continue
                pushes.append(outbox_row(telegram_id, "digest", payload,
                                         f"digest:{telegram_id}:{today.isoformat()}", now))
                result.sent += 1
                # After the digest's own row: sent after its text.
                for week, png in charts.get(telegram_id, ()):
                    pushes.append(outbox_row(
                        telegram_id, "week_chart", _week_payload(week, png),
                        f"week_chart:{telegram_id}:{week.student_id}:{week.start.isoformat()}",
                        now, student_id=week.student_id))
                    result.charts += 1
            await enqueue_many(tx, pushes)
        return len(moved)

    async def sync_default_time(self) -> int:
        """When the school's default digest time is not the one the stored moments were worked
        out with (``DIGEST_TIME`` changed, or a database just migrated), move every account on
        the default time to its new moment, ``SYNC_CHUNK`` accounts per transaction. Returns
        how many accounts that was (0: nothing changed)."""
        stored = await self.db.scalar("SELECT value FROM meta WHERE key = ?",
                                      (META_DEFAULT_TIME,))
        if stored == self.default_time:
            return 0
        on_default = ("a.digest_due_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM account_settings"
                      " s WHERE s.telegram_id = a.telegram_id AND s.digest_time IS NOT NULL)")
        after, count = -(2**63), 0
        while True:
            now = self.clock.now()
            async with self.db.transaction() as tx:
                ids = [r[0] for r in await tx.fetchall(
                    f"SELECT a.telegram_id FROM accounts a WHERE a.telegram_id > ?"
                    f" AND {on_default} ORDER BY a.telegram_id LIMIT ?", (after, SYNC_CHUNK))]
                if ids:
                    # Today's moment, or tomorrow's for those whose day is decided.
                    cur = await tx.execute(
                        f"UPDATE accounts SET digest_due_at = CASE WHEN EXISTS (SELECT 1"
                        f" FROM digest_log d WHERE d.telegram_id = accounts.telegram_id"
                        f" AND d.day = ?) THEN ? ELSE ? END WHERE telegram_id IN"
                        f" (SELECT a.telegram_id FROM accounts a WHERE a.telegram_id >= ?"
                        f" AND a.telegram_id <= ? AND {on_default})",
                        (self.schedule.today(now).isoformat(),
                         to_db(self.schedule.next_due(now, self.default_time, True)),
                         to_db(self.schedule.next_due(now, self.default_time, False)),
                         ids[0], ids[-1]))
                    count += cur.rowcount
                if len(ids) < SYNC_CHUNK:
                    await tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (META_DEFAULT_TIME, self.default_time))
                    break
                after = ids[-1]
        if count:
            log.info("default digest time %s: the next digest of %d accounts moved",
                     self.default_time, count)
        return count

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
    """Everything the digests of some accounts need, read in a handful of queries for all of
    them, and only for their children and those children's classes."""

    @classmethod
    async def load(cls, svc: DigestService, today: date, accounts: set[int]) -> _Snapshot:
        self = cls()
        self.today = today
        db = svc.db
        day = today.isoformat()
        start = datetime.combine(today, time.min, tzinfo=svc.tz).astimezone(UTC)
        end = start + timedelta(days=1)
        self.children = await _all_children(db, accounts)
        # The announcements first published today, of the children's schools.
        self.announcements = [a for a in await school_announcements(
            db, {c.school for kids in self.children.values() for c in kids}, svc.tz,
            to_db(start)) if a.created_at == today]
        students = sorted({c.id for kids in self.children.values() for c in kids})
        self.grades: dict[int, list] = {}
        for r in await _each_part(
                db, "SELECT student_id, subject, value, weight, work, date, shown, scale, points,"
                " parts FROM grades"
                " WHERE student_id IN ({ids}) AND deleted_at IS NULL AND quiet = 0"
                " AND created_at >= ? AND created_at < ? ORDER BY student_id, subject, id",
                students, (to_db(start), to_db(end))):
            self.grades.setdefault(r["student_id"], []).append(r)
        self.period = await period_of(db, today)
        self.sums: dict[tuple[int, str], tuple[float, int]] = {}
        for r in await _each_part(
                db, f"SELECT student_id, subject, {SUMS_SQL} FROM grades"
                " WHERE student_id IN ({ids}) AND deleted_at IS NULL AND date BETWEEN ? AND ?"
                " GROUP BY student_id, subject", sorted(self.grades),
                (self.period.start.isoformat(), self.period.end.isoformat())):
            self.sums[(r[0], r[1])] = (r[2], r[3])
        self.marks: dict[int, list[dict]] = {}
        for r in await _each_part(
                db, "SELECT student_id, lesson, subject, mark, excused FROM attendance"
                " WHERE student_id IN ({ids}) AND date = ? ORDER BY student_id, lesson",
                students, (day,)):
            self.marks.setdefault(r["student_id"], []).append(
                {"lesson": r["lesson"], "subject": r["subject"], "mark": r["mark"],
                 "excused": r["excused"]})
        self.dots: dict[int, list[dict]] = {}
        for r in await _each_part(
                db, "SELECT student_id, subject, work, expires FROM dots"
                " WHERE student_id IN ({ids}) AND status = 'open' ORDER BY expires, subject",
                students):
            self.dots.setdefault(r["student_id"], []).append(
                {"subject": r["subject"], "work": r["work"], "expires": r["expires"],
                 "days_left": (date.fromisoformat(r["expires"]) - today).days})
        # Marks that carry a dot still open (МЭШ) are listed with the dots.
        for r in await _each_part(
                db, "SELECT student_id, subject, work, point_until FROM grades"
                " WHERE student_id IN ({ids}) AND point_until >= ? AND deleted_at IS NULL",
                students, (day,)):
            self.dots.setdefault(r["student_id"], []).append(
                {"subject": r["subject"], "work": r["work"], "expires": r["point_until"],
                 "days_left": (date.fromisoformat(r["point_until"]) - today).days})
        for found in self.dots.values():
            found.sort(key=lambda d: (d["expires"], d["subject"]))
        self.class_of = {r[0]: r[1] for r in await _each_part(
            db, "SELECT id, class_id FROM students WHERE id IN ({ids}) AND active = 1",
            students)}
        classes = sorted({c for c in self.class_of.values() if c is not None})
        horizon = (today + timedelta(days=LOOKAHEAD)).isoformat()
        self.next_day = {r[0]: date.fromisoformat(r[1]) for r in await _each_part(
            db, "SELECT class_id, MIN(date) FROM lessons WHERE class_id IN ({ids})"
            " AND date > ? AND date <= ? GROUP BY class_id", classes, (day, horizon))}
        fallback = today + timedelta(days=1)
        while fallback.weekday() >= 5:
            fallback += timedelta(days=1)
        self.fallback_day = fallback
        # Each class's next school day only: its lessons and the homework due that day.
        by_day: dict[str, list[int]] = {}
        for class_id in classes:
            by_day.setdefault(self.next_day.get(class_id, fallback).isoformat(),
                              []).append(class_id)
        self.lessons: dict[tuple[int, str], list[dict]] = {}
        self.homework: dict[tuple[int, str], list[dict]] = {}
        for next_day, ids in sorted(by_day.items()):
            for r in await _each_part(
                    db, "SELECT class_id, date, number, subject, start_time, cancelled,"
                    " group_name FROM lessons WHERE class_id IN ({ids}) AND date = ?"
                    " ORDER BY class_id, number, start_time, group_name, id", ids, (next_day,)):
                lesson = {"number": r["number"], "subject": r["subject"],
                          "start": r["start_time"], "cancelled": bool(r["cancelled"])}
                if r["group_name"]:
                    lesson["group"] = r["group_name"]
                self.lessons.setdefault((r[0], r[1]), []).append(lesson)
            for r in await _each_part(
                    db, "SELECT class_id, due, subject, text, required FROM homework"
                    " WHERE class_id IN ({ids}) AND due = ? ORDER BY class_id, subject, id",
                    ids, (next_day,)):
                self.homework.setdefault((r[0], r[1]), []).append(
                    {"subject": r["subject"], "text": r["text"],
                     "required": bool(r["required"])})
        # Tasks set to one student, due on their class's next school day.
        self.own_homework: dict[int, list[dict]] = {}
        for r in await _each_part(
                db, "SELECT student_id, due, subject, text, required FROM homework"
                " WHERE student_id IN ({ids}) AND due > ? AND due <= ?"
                " ORDER BY student_id, subject, id", students, (day, horizon)):
            class_id = self.class_of.get(r["student_id"])
            if r["due"] == self.next_day.get(class_id, fallback).isoformat():
                self.own_homework.setdefault(r["student_id"], []).append(
                    {"subject": r["subject"], "text": r["text"],
                     "required": bool(r["required"])})
        self.week = week_start(today).isoformat()
        self.signed_at: dict[tuple[int, int], str] = {}
        if today.weekday() == SIGNOFF_WEEKDAY:
            self.signed_at = {(r[0], r[1]): r[2] for r in await _each_part(
                db, "SELECT student_id, telegram_id, signed_at FROM signoffs"
                " WHERE student_id IN ({ids}) AND week_start = ?", students, (self.week,))}
        return self

    def digest(self, telegram_id: int, prefs: Preferences) -> list[ChildDigest] | None:
        children = [c for c in self.children.get(telegram_id, [])
                    if Scope.DIGEST in c.scopes and c.id not in prefs.muted_children]
        if not children:
            return None
        return [self._child(telegram_id, c) for c in children]

    def news(self, telegram_id: int, prefs: Preferences) -> list[dict]:
        """Today's new announcements for the account's children in the digest: the start of
        each one's text, oldest first."""
        children = [c for c in self.children.get(telegram_id, [])
                    if Scope.DIGEST in c.scopes and c.id not in prefs.muted_children]
        return [{"text": _start(a.text)} for a in reversed(self.announcements)
                if visible(children, a)]

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
                new_total = sum(r["points"] * r["weight"] for r in in_period)
                new_weights = sum(r["parts"] * r["weight"] for r in in_period)
                before = mean(total - new_total, weights - new_weights)
                after = mean(total, weights)
                for n, r in enumerate(items):
                    last = n == len(items) - 1
                    grade = {"subject": subject, "value": r["value"], "weight": r["weight"],
                             "work": r["work"], "avg_before": before if last else None,
                             "avg_after": after if last else None, "shown": r["shown"],
                             "counted": r["weight"] > 0 and r["parts"] > 0}
                    if r["scale"] != "5":
                        grade["scale"] = r["scale"]
                    grades.append(grade)
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
            homework = homework + self.own_homework.get(child.id, [])
        signoff = signed = None
        if child.role is Role.GUARDIAN and self.today.weekday() == SIGNOFF_WEEKDAY:
            signoff = self.week
            signed = self.signed_at.get((child.id, telegram_id))
        return ChildDigest(child.id, child.name.short, child.class_name, grades, marks, dots,
                           next_day, lessons, homework, signoff, signed)


async def _week_charts(db: Database, snapshot: _Snapshot, wanted: dict[int, Preferences],
                       languages: dict[int, tuple[str | None, str | None]],
                       draw_week: DrawWeek) -> dict[int, list[tuple[WeekChart, bytes]]]:
    """The weekly charts of the accounts in ``wanted``: one per child of the digest whose marks
    the account may see, if the child has marks this week. A chart that cannot be drawn is
    logged and left out: the digest goes without it."""
    children = {tg: [c for c in snapshot.children.get(tg, [])
                     if Scope.DIGEST in c.scopes and Scope.GRADES in c.scopes
                     and c.id not in prefs.muted_children]
                for tg, prefs in wanted.items()}
    weeks = await load_weeks(db, {c.id: c.name.short for kids in children.values()
                                  for c in kids}, snapshot.today, snapshot.period)
    charts: dict[int, list[tuple[WeekChart, bytes]]] = {}
    drawn: dict[tuple[int, str | None, str | None], bytes | None] = {}  # a child's, per language
    for tg, kids in children.items():
        language = languages.get(tg, (None, None))
        for child in kids:
            week = weeks.get(child.id)
            if week is None or not week.marks:
                continue
            key = (child.id, *language)
            if key not in drawn:  # two parents reading one language: drawn once
                try:
                    drawn[key] = await draw_week(week, *language)
                except Exception:
                    log.exception("weekly chart of student %s not drawn; the digest goes"
                                  " without it", child.id)
                    drawn[key] = None
            png = drawn[key]
            if png is not None:
                charts.setdefault(tg, []).append((week, png))
    return charts


async def load_weeks(db: Database, students: dict[int, str], today: date,
                     period: Period) -> dict[int, WeekChart]:
    """Each student's week up to ``today`` (``students``: id -> the name to show): every
    subject with marks in ``period``, its average now and before the week's marks."""
    start = max(week_start(today), period.start)
    if not students:
        return {}
    week: dict[tuple[int, str], list] = {}
    for r in await _each_part(
            db, "SELECT student_id, subject, value, shown, points, parts, weight FROM grades"
            " WHERE student_id IN ({ids}) AND deleted_at IS NULL AND date BETWEEN ? AND ?"
            " ORDER BY student_id, subject, date, id", sorted(students),
            (start.isoformat(), today.isoformat())):
        week.setdefault((r["student_id"], r["subject"]), []).append(r)
    sums: dict[tuple[int, str], tuple[float, int]] = {}
    for r in await _each_part(
            db, f"SELECT student_id, subject, {SUMS_SQL} FROM grades"
            " WHERE student_id IN ({ids}) AND deleted_at IS NULL AND date BETWEEN ? AND ?"
            " GROUP BY student_id, subject", sorted(students),
            (period.start.isoformat(), period.end.isoformat())):
        sums[(r[0], r[1])] = (r[2], r[3])
    subjects: dict[int, list[WeekSubject]] = {}
    for key in sorted(set(sums) | set(week), key=lambda k: (k[0], k[1].casefold())):
        student_id, subject = key
        total, weights = sums.get(key, (0, 0))
        rows = week.get(key, [])
        new_total = sum(r["points"] * r["weight"] for r in rows)
        new_weights = sum(r["parts"] * r["weight"] for r in rows)
        subjects.setdefault(student_id, []).append(WeekSubject(
            subject, mean(total, weights), mean(total - new_total, weights - new_weights),
            tuple(str(r["shown"] if r["shown"] is not None else r["value"]) for r in rows)))
    return {student_id: WeekChart(student_id, students[student_id], start, today, period,
                                  tuple(found))
            for student_id, found in subjects.items()}


def _week_payload(week: WeekChart, png: bytes) -> str:
    return json.dumps({"child": week.child, "start": week.start.isoformat(),
                       "end": week.end.isoformat(), "marks": week.marks,
                       "png": base64.b64encode(png).decode("ascii")})


NEWS_START = 100  # characters of an announcement's text in the digest


def _start(text: str) -> str:
    """The first line of ``text``, cut at a word to at most ``NEWS_START`` characters."""
    line = text.strip().splitlines()[0].strip()
    if len(line) <= NEWS_START and line == text.strip():
        return line
    if len(line) > NEWS_START - 1:
        line = line[:NEWS_START - 1].rsplit(" ", 1)[0] if " " in line[:NEWS_START - 1] \
            else line[:NEWS_START - 1]
    return line.rstrip(" ,;:.—-") + "…"


async def _all_children(db: Database, accounts: set[int]) -> dict[int, list[Child]]:
    """``load_children`` for many accounts at once."""
    result: dict[int, list[Child]] = {tg: [] for tg in accounts}
    ids = sorted(accounts)
    for i in range(0, len(ids), _PART):
        for tg, children in (await load_children_many(db, ids[i : i + _PART])).items():
            result[tg] = list(children)
    return result


def _padded(n: int) -> int:
    """How many rows a VALUES list of ``n`` gets: a few sizes only (the rest NULL rows, which
    match nothing), so each statement's text repeats and is compiled once (IN lists: see
    ``in_list``)."""
    size = 16
    while size < n:
        size *= 2
    return min(size, _PART) if n <= _PART else n


async def _each_part(db: Database, sql: str, ids: Iterable[int], params: tuple = ()) -> list:
    """The rows of ``sql`` for ``ids``, a few hundred ids per query (``{ids}`` in ``sql``
    stands for the list of binds, followed by ``params``)."""
    ids = list(ids)
    rows: list = []
    for i in range(0, len(ids), _PART):
        marks, values = in_list(ids[i : i + _PART])
        rows += await db.fetchall(sql.format(ids=marks), (*values, *params))
    return rows


async def _move_on(tx: Tx, plans: list[tuple[int, str, str | None]]) -> set[int]:
    """Set each account's next moment where the moment is still the one read; returns the
    accounts moved."""
    moved: set[int] = set()
    for i in range(0, len(plans), _PART):
        part = plans[i : i + _PART]
        size = _padded(len(part))
        values = ", ".join("(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT))"
                           for _ in range(size))
        params = [x for plan in part for x in plan] + [None] * (3 * (size - len(part)))
        rows = await tx.fetchall(
            f"WITH v (account, was, moment) AS (VALUES {values})"
            f" UPDATE accounts SET digest_due_at = v.moment FROM v"
            f" WHERE accounts.telegram_id = v.account AND accounts.digest_due_at = v.was"
            f" RETURNING accounts.telegram_id", params)
        moved.update(r[0] for r in rows)
    return moved


async def _take_days(tx: Tx, decided: list[tuple[int, bool]], today: date,
                     now: datetime) -> list[int]:
    """Record each account's decision of ``today`` in ``digest_log``; returns the accounts
    whose day this was (a day already taken stays as it is)."""
    taken: list[int] = []
    for i in range(0, len(decided), _PART):
        part = decided[i : i + _PART]
        size = _padded(len(part))
        values = ", ".join("(CAST(? AS BIGINT), CAST(? AS INTEGER))" for _ in range(size))
        params: list[object] = [x for telegram_id, send in part
                                for x in (telegram_id, int(send))]
        params += [None] * (2 * (size - len(part)))
        rows = await tx.fetchall(
            f"WITH v (account, sent) AS (VALUES {values})"
            f" INSERT INTO digest_log (telegram_id, day, decided_at, sent)"
            f" SELECT account, ?, ?, sent FROM v WHERE account IS NOT NULL"
            f" ON CONFLICT DO NOTHING RETURNING telegram_id",
            [*params, today.isoformat(), to_db(now)])
        taken += sorted(r[0] for r in rows)
    return taken
