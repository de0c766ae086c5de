"""Homework and the timetable of a child's class, by day."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db
from core.models import Child, Scope, Viewer
from core.services.access import AccessService
from core.services.dayargs import match_subject
from core.storage.db import Database

LOOKAHEAD_DAYS = 14
_HW_COLUMNS = "subject, due, text, required, updated_at, links, student_id"


@dataclass(frozen=True)
class Lesson:
    number: int
    subject: str
    start: time
    end: time
    room: str | None
    teacher: str | None
    cancelled: bool
    group: str | None = None  # None: the whole class
    teacher_replaced: bool = False
    substitute: str | None = None
    remote: bool = False
    link: str | None = None


@dataclass(frozen=True)
class Link:
    url: str
    title: str | None


@dataclass(frozen=True)
class Homework:
    subject: str
    due: date
    text: str
    required: bool
    updated_at: datetime
    links: tuple[Link, ...] = ()
    personal: bool = False  # set to this one student, not to the class


@dataclass(frozen=True)
class ChildDay:
    child: Child
    day: date
    lessons: tuple[Lesson, ...]
    homework: tuple[Homework, ...]


@dataclass(frozen=True)
class SubjectHomework:
    child: Child
    subjects: tuple[str, ...]  # the subjects the query matched
    homework: tuple[Homework, ...]  # due today or later, soonest first


class TimetableService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz

    def now(self) -> datetime:
        return self.clock.now().astimezone(self.tz)

    def today(self) -> date:
        return self.now().date()

    @staticmethod
    def visible(viewer: Viewer, child_id: int = 0) -> list[Child]:
        """The children whose homework the viewer may see: one (checked) or all."""
        if child_id:
            return [AccessService.require(viewer, child_id, Scope.HOMEWORK)]
        return [c for c in viewer.children if Scope.HOMEWORK in c.scopes]

    async def _class_id(self, student_id: int) -> int | None:
        return await self.db.scalar("SELECT class_id FROM students WHERE id = ?", (student_id,))

    async def _lessons(self, class_id: int | None, day: date) -> tuple[Lesson, ...]:
        """The class's lessons of the day; a slot's lessons (groups) by group, then as sent."""
        if class_id is None:
            return ()
        rows = await self.db.fetchall(
            "SELECT number, subject, start_time, end_time, room, teacher, cancelled, group_name,"
            " teacher_replaced, substitute, remote, link FROM lessons"
            " WHERE class_id = ? AND date = ? ORDER BY number, start_time, group_name, id",
            (class_id, day.isoformat()))
        return tuple(
            Lesson(r["number"], r["subject"], time.fromisoformat(r["start_time"]),
                   time.fromisoformat(r["end_time"]), r["room"], r["teacher"],
                   bool(r["cancelled"]), r["group_name"] or None, bool(r["teacher_replaced"]),
                   r["substitute"], bool(r["remote"]), r["link"])
            for r in rows
        )

    async def _homework(self, class_id: int | None, student_id: int,
                        day: date) -> tuple[Homework, ...]:
        """The class's tasks due that day and those set to this student alone."""
        rows = await self.db.fetchall(
            f"SELECT {_HW_COLUMNS} FROM homework WHERE (class_id = ? OR student_id = ?)"
            " AND due = ? ORDER BY subject, id", (class_id, student_id, day.isoformat()))
        return tuple(self._hw(r) for r in rows)

    @staticmethod
    def _hw(r) -> Homework:
        links = tuple(Link(x["url"], x.get("title")) for x in json.loads(r["links"])
                      ) if r["links"] else ()
        return Homework(r["subject"], date.fromisoformat(r["due"]), r["text"],
                        bool(r["required"]), from_db(r["updated_at"]), links,
                        r["student_id"] is not None)

    async def default_day(self, children: list[Child]) -> date:
        """Today while today's lessons are not over, else the next school day."""
        now = self.now()
        today = now.date()
        class_ids = {await self._class_id(c.id) for c in children}
        last_end = None
        for class_id in class_ids:
            for lesson in await self._lessons(class_id, today):
                if not lesson.cancelled and (last_end is None or lesson.end > last_end):
                    last_end = lesson.end
        if last_end is not None and now.time() < last_end:
            return today
        return await self.next_school_day(class_ids, today)

    async def next_school_day(self, class_ids: set[int | None], after: date) -> date:
        for offset in range(1, LOOKAHEAD_DAYS + 1):
            day = after + timedelta(days=offset)
            for class_id in class_ids:
                if class_id is not None and await self.db.scalar(
                    "SELECT 1 FROM lessons WHERE class_id = ? AND date = ? LIMIT 1",
                    (class_id, day.isoformat())):
                    return day
        # No timetable known: the next weekday.
        day = after + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return day

    async def day(self, children: list[Child], day: date) -> list[ChildDay]:
        result = []
        for child in children:
            class_id = await self._class_id(child.id)
            result.append(ChildDay(child, day, await self._lessons(class_id, day),
                                   await self._homework(class_id, child.id, day)))
        return result

    async def subjects(self, child: Child) -> list[str]:
        class_id = await self._class_id(child.id)
        rows = await self.db.fetchall(
            "SELECT subject FROM homework WHERE class_id = ? OR student_id = ? UNION"
            " SELECT subject FROM lessons WHERE class_id = ?", (class_id, child.id, class_id))
        return [r[0] for r in rows]

    async def by_subject(self, children: list[Child], query: str) -> list[SubjectHomework]:
        today = self.today()
        result = []
        for child in children:
            matched = match_subject(query, await self.subjects(child))
            if not matched:
                continue
            class_id = await self._class_id(child.id)
            marks = ",".join("?" * len(matched))
            rows = await self.db.fetchall(
                f"SELECT {_HW_COLUMNS} FROM homework"
                f" WHERE (class_id = ? OR student_id = ?) AND due >= ? AND subject IN ({marks})"
                f" ORDER BY due, subject, id LIMIT 10",
                (class_id, child.id, today.isoformat(), *matched))
            result.append(SubjectHomework(child, tuple(matched),
                                          tuple(self._hw(r) for r in rows)))
        return result
