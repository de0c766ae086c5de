"""Absence notices: a parent tells the school in advance that a child will be away."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.errors import CommentTooLong, InvalidDateRange, NoticeNotCancellable, NoticeOverlap
from core.models import Child, Viewer
from core.services.access import AccessService
from core.storage.db import Database, Tx

PAST_DAYS = 30
FUTURE_DAYS = 60
MAX_COMMENT = 500


class Reason(StrEnum):
    ILLNESS = "illness"
    FAMILY = "family"
    MEDICAL = "medical"
    OTHER = "other"


@dataclass(frozen=True)
class Notice:
    id: int
    student_id: int
    student_external_id: str
    child_name: str
    class_name: str
    start: date
    end: date
    lessons: tuple[int, ...]  # empty: whole days
    reason: Reason
    comment: str
    filed_by: int
    filed_by_name: str
    created_at: datetime
    cancelled_at: datetime | None

    def covers(self, day: date, lesson: int | None = None) -> bool:
        if not self.start <= day <= self.end or self.cancelled_at is not None:
            return False
        return not self.lessons or lesson is None or lesson in self.lessons


def _overlaps(a_start: date, a_end: date, a_lessons: tuple[int, ...], b: Notice) -> bool:
    if a_end < b.start or b.end < a_start:
        return False
    if a_lessons and b.lessons:  # both lesson-specific, on the same day
        return bool(set(a_lessons) & set(b.lessons))
    return True


_SELECT = """
SELECT n.*, s.external_id, s.first_name || ' ' || s.last_name AS child_name,
       COALESCE(c.name, '') AS class_name,
       COALESCE(g.first_name || ' ' || g.last_name, '') AS filed_by_name
FROM absence_notices n JOIN students s ON s.id = n.student_id
LEFT JOIN classes c ON c.id = s.class_id
LEFT JOIN guardians g ON g.id = n.guardian_id
"""


def _notice(r) -> Notice:
    return Notice(
        r["id"], r["student_id"], r["external_id"], r["child_name"], r["class_name"],
        date.fromisoformat(r["start_date"]), date.fromisoformat(r["end_date"]),
        tuple(json.loads(r["lessons"])) if r["lessons"] else (), Reason(r["reason"]),
        r["comment"], r["filed_by"], r["filed_by_name"], from_db(r["created_at"]),
        from_db(r["cancelled_at"]) if r["cancelled_at"] else None,
    )


class AbsenceService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    def window(self) -> tuple[date, date]:
        today = self.today()
        return today - timedelta(days=PAST_DAYS), today + timedelta(days=FUTURE_DAYS)

    @staticmethod
    def children(viewer: Viewer) -> list[Child]:
        """Only guardians file notices: not trusted persons, not students."""
        return [c for c in viewer.children if c.role.value == "guardian"]

    def check_range(self, start: date, end: date) -> None:
        first, last = self.window()
        if not (first <= start <= last and first <= end <= last) or end < start:
            raise InvalidDateRange(start=start, end=end, first=first, last=last)

    async def file(self, viewer: Viewer, child_id: int, start: date, end: date,
                   lessons: tuple[int, ...], reason: Reason, comment: str) -> Notice:
        child = AccessService.require_guardian(viewer, child_id)
        self.check_range(start, end)
        if lessons and start != end:
            raise InvalidDateRange(start=start, end=end)
        comment = comment.strip()
        if len(comment) > MAX_COMMENT:
            raise CommentTooLong(length=len(comment), limit=MAX_COMMENT)
        async with self.db.transaction() as tx:
            await tx.lock("absence", child.id)  # two notices filed at once never overlap
            for other in await self._active(tx, child.id):
                if _overlaps(start, end, lessons, other):
                    raise NoticeOverlap(other.start, other.end, other.reason.value)
            guardian_id = await tx.scalar(
                "SELECT l.guardian_id FROM account_links l JOIN guardianships g"
                " ON g.guardian_id = l.guardian_id WHERE l.telegram_id = ? AND g.student_id = ?"
                " LIMIT 1", (viewer.telegram_id, child.id))
            notice_id = await tx.insert(
                "INSERT INTO absence_notices (student_id, filed_by, guardian_id, start_date,"
                " end_date, lessons, reason, comment, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (child.id, viewer.telegram_id, guardian_id, start.isoformat(), end.isoformat(),
                 json.dumps(sorted(lessons)) if lessons else None, reason.value, comment,
                 to_db(self.clock.now())),
            )
            await self._excuse(tx, child.id, start, end, lessons)
            row = await tx.fetchone(f"{_SELECT} WHERE n.id = ?", (notice_id,))
        return _notice(row)

    async def overlapping(self, viewer: Viewer, child_id: int, start: date, end: date,
                          lessons: tuple[int, ...] = ()) -> list[Notice]:
        """The child's active notices a new one for these days (or lessons) would overlap."""
        child = AccessService.require_guardian(viewer, child_id)
        return [n for n in await self._active(self.db, child.id)
                if _overlaps(start, end, lessons, n)]

    @staticmethod
    def free_spans(start: date, end: date, taken: list[Notice]) -> list[tuple[date, date]]:
        """The runs of days in start..end that none of ``taken`` touches, each beginning and
        ending on a school day (Monday to Saturday)."""
        spans: list[tuple[date, date]] = []
        run: list[date] = []
        day = start
        while day <= end:
            if any(n.start <= day <= n.end for n in taken):
                run = []
            else:
                if not run:
                    spans.append((day, day))
                run.append(day)
                spans[-1] = (run[0], day)
            day += timedelta(days=1)
        trimmed = []
        for first, last in spans:
            if first.weekday() == 6:
                first += timedelta(days=1)
            if last.weekday() == 6:
                last -= timedelta(days=1)
            if first <= last:
                trimmed.append((first, last))
        return trimmed

    async def _excuse(self, tx: Tx, student_id: int, start: date, end: date,
                      lessons: tuple[int, ...]) -> None:
        """Marks already in the journal that the notice covers become excused."""
        sql = ("UPDATE attendance SET excused = 1 WHERE student_id = ? AND date BETWEEN ? AND ?"
               " AND mark = 'absent'")
        params: list[object] = [student_id, start.isoformat(), end.isoformat()]
        if lessons:
            sql += f" AND lesson IN ({','.join('?' * len(lessons))})"
            params += list(lessons)
        await tx.execute(sql, params)

    async def _active(self, tx: Tx | Database, student_id: int) -> list[Notice]:
        rows = await tx.fetchall(
            f"{_SELECT} WHERE n.student_id = ? AND n.cancelled_at IS NULL ORDER BY n.start_date",
            (student_id,))
        return [_notice(r) for r in rows]

    async def mine(self, viewer: Viewer) -> list[Notice]:
        """Active notices of the viewer's children that have not ended, soonest first."""
        children = [c.id for c in self.children(viewer)]
        if not children:
            return []
        rows = await self.db.fetchall(
            f"{_SELECT} WHERE n.student_id IN ({','.join('?' * len(children))})"
            f" AND n.cancelled_at IS NULL AND n.end_date >= ? ORDER BY n.start_date, n.id",
            (*children, self.today().isoformat()))
        return [_notice(r) for r in rows]

    async def cancel(self, viewer: Viewer, notice_id: int) -> Notice:
        """A guardian of the child cancels a notice that has not begun yet."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(f"{_SELECT} WHERE n.id = ?", (notice_id,))
            notice = _notice(row) if row else None
            if notice is None or viewer.child(notice.student_id) is None:
                raise NoticeNotCancellable(notice_id=notice_id)
            AccessService.require_guardian(viewer, notice.student_id)
            if notice.cancelled_at is not None or notice.start <= self.today():
                raise NoticeNotCancellable(notice_id=notice_id)
            await tx.execute("UPDATE absence_notices SET cancelled_at = ? WHERE id = ?",
                             (to_db(self.clock.now()), notice_id))
        return notice

    async def covering(self, tx: Tx, student_id: int, day: date,
                       lesson: int | None) -> Notice | None:
        for notice in await self._active(tx, student_id):
            if notice.covers(day, lesson):
                return notice
        return None

    async def listing(self, since: date | None = None, class_name: str | None = None
                      ) -> list[Notice]:
        """For school staff: every notice (cancelled ones too), newest period first."""
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("n.end_date >= ?")
            params.append(since.isoformat())
        if class_name:
            where.append("c.name = ?")
            params.append(class_name.replace(" ", "").upper())
        rows = await self.db.fetchall(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY n.start_date, class_name, child_name",
            params)
        return [_notice(r) for r in rows]
