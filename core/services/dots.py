"""Dots («точки»): a teacher's temporary mark with a deadline that becomes a grade or vanishes.

A dot is open through the whole of its ``expires`` day in school time. When that day is over — or
when the attestation period containing the dot ends — it becomes the grade behind it (counted in
the average from then on) or vanishes. Expiry runs in a write transaction and flips each dot's
status only if it is still open, and every push carries a dedup key, so running it twice, after
downtime, or next to the bot converts and announces each dot exactly once.

A mark may carry a dot itself (МЭШ: a grade's ``point_until``): it is listed and reminded as a
dot until that day is over, and then it is just the mark — nothing is converted, and it counts in
the average all along.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.clock import Clock, to_db
from core.models import Child, Role, Scope, Viewer
from core.pushes import grade_push
from core.services.access import AccessService
from core.services.grades import Stored, mean, period_of, subject_sums
from core.services.outbox import enqueue
from core.storage.db import Database, Tx

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class DotReminders:
    """When dots are reminded of (``DOT_REMIND_*``)."""

    student_days_before: int  # 0: no early reminder
    student_last_day: bool
    parent_last_day: bool


@dataclass(frozen=True)
class OpenDot:
    subject: str
    work: str | None
    comment: str | None
    teacher: str | None
    set_on: date
    expires: date
    days_left: int  # 0 on the last day
    mark: str | None = None  # a mark that carries the dot (МЭШ), as the school shows it


@dataclass(frozen=True)
class ChildDots:
    child: Child
    dots: tuple[OpenDot, ...]


@dataclass
class ExpiryResult:
    graded: int = 0
    vanished: int = 0
    reminders: int = 0
    failed: int = 0  # rows that could not be expired (logged, left open, tried again next run)


async def announce(tx: Tx, access: AccessService, student_id: int, kind: str, key: str,
                   payload: Mapping[str, Any], now: datetime, roles: set[Role] | None = None,
                   hold: timedelta = timedelta(0)) -> int:
    queued = 0
    for telegram_id, role in await access.audience(tx, student_id, Scope.GRADES):
        if roles is not None and role not in roles:
            continue
        if await enqueue(tx, telegram_id, kind, payload, f"{key}:{telegram_id}", now, student_id,
                         hold):
            queued += 1
    return queued


async def close_dot(tx: Tx, access: AccessService, dot, mark: Stored | None,
                    weight: int | None, grade_date: date, now: datetime, reason: str,
                    notify: bool = True, hold: timedelta = timedelta(0)) -> int:
    """Turn an open dot (a row joined with the student's first name and ``active``) into a
    grade, or remove it. Returns the pushes queued; 0 and no change if it was not open.
    ``hold``: how long the push waits (a child's history waits for its window's end)."""
    stamp = to_db(now)
    cur = await tx.execute(
        "UPDATE dots SET status = ?, closed_at = ? WHERE id = ? AND status = 'open'",
        ("graded" if mark is not None else "vanished", stamp, dot["id"]),
    )
    if cur.rowcount == 0:
        return 0
    base = {"child": dot["first_name"], "subject": dot["subject"], "work": dot["work"],
            "comment": dot["comment"], "teacher": dot["teacher"], "reason": reason,
            "set_on": dot["date"]}
    if mark is None:
        if not (notify and dot["active"]):
            return 0
        return await announce(tx, access, dot["student_id"], "dot_vanished",
                              f"dot:{dot['external_id']}:end", base, now, hold=hold)
    weight = dot["weight"] if weight is None else weight
    period = await period_of(tx, grade_date)
    before = await subject_sums(tx, dot["student_id"], dot["subject"], period)
    grade_id = await tx.insert(
        "INSERT INTO grades (student_id, subject, date, value, weight, work, comment, teacher,"
        " dot_id, created_at, updated_at, quiet, shown, scale, points, parts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (dot["student_id"], dot["subject"], grade_date.isoformat(), mark.value, weight,
         dot["work"], dot["comment"], dot["teacher"], dot["id"], stamp, stamp,
         int(not (notify and dot["active"])), mark.shown, mark.scale, mark.points, mark.parts),
    )
    await tx.execute("UPDATE dots SET grade_id = ? WHERE id = ?", (grade_id, dot["id"]))
    if not (notify and dot["active"]):
        return 0
    payload = grade_push(
        dot["first_name"], dot["subject"], mark, weight, grade_date.isoformat(),
        avg_before=mean(*before),
        avg_after=mean(before[0] + mark.points * weight, before[1] + mark.parts * weight),
        work=dot["work"], comment=dot["comment"], teacher=dot["teacher"])
    payload["from_dot"], payload["reason"], payload["set_on"] = True, reason, dot["date"]
    return await announce(tx, access, dot["student_id"], "grade_new",
                          f"dot:{dot['external_id']}:end", payload, now, hold=hold)


_DOT_SQL = ("SELECT d.*, s.first_name, s.active FROM dots d"
            " JOIN students s ON s.id = d.student_id")


def _due_sql(ended: int) -> str:
    """Open dots that are due: past their day (``dots_open``), or of one of ``ended``
    attestation periods that have ended (``dots_open_date``, a range per period: bounds bound
    as values, so the planner uses the index without statistics)."""
    parts = ["SELECT id FROM dots WHERE status = 'open' AND expires < :today"]
    parts += [f"SELECT id FROM dots WHERE status = 'open' AND date BETWEEN :s{n} AND :e{n}"
              for n in range(ended)]
    return f"{_DOT_SQL} WHERE d.id IN ({' UNION '.join(parts)}) AND d.status = 'open'"


CHUNK = 500  # dots per transaction


class DotsService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo, access: AccessService,
                 reminders: DotReminders, relevance_days: int) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.access = access
        self.reminders = reminders
        self.relevance_days = relevance_days

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    async def open_dots(self, viewer: Viewer) -> tuple[ChildDots, ...]:
        """Open dots of every child the viewer may see in the grades scope, soonest first, with
        the marks that carry a dot still open."""
        today = self.today()
        children = [c for c in viewer.children if Scope.GRADES in c.scopes]
        result = []
        for child in children:
            rows = await self.db.fetchall(
                "SELECT subject, work, comment, teacher, date, expires, NULL AS shown, id,"
                " 0 AS marked FROM dots WHERE student_id = ? AND status = 'open'"
                " UNION ALL SELECT subject, work, comment, teacher, date, point_until, shown, id,"
                " 1 FROM grades WHERE student_id = ? AND point_until >= ?"
                " AND deleted_at IS NULL ORDER BY 6, 1, 9, 8",
                (child.id, child.id, today.isoformat()),
            )
            dots = tuple(
                OpenDot(r["subject"], r["work"], r["comment"], r["teacher"],
                        date.fromisoformat(r["date"]), date.fromisoformat(r["expires"]),
                        max(0, (date.fromisoformat(r["expires"]) - today).days), r["shown"])
                for r in rows
            )
            result.append(ChildDots(child, dots))
        return tuple(result)

    async def run(self) -> ExpiryResult:
        """Expire what is due and queue the reminders of today. Safe to run at any time.

        Reads only the dots that are due (``dots_open``, ``dots_open_date``), ``CHUNK`` at a
        time, each chunk in a transaction of its own that no other run holds at the same time."""
        result = ExpiryResult()
        now = self.clock.now()
        today = self.today()
        failed: list[int] = []  # left open, logged; not tried again in this run
        ended = await self.db.fetchall(
            "SELECT start_date, end_date FROM periods WHERE end_date < ? ORDER BY start_date",
            (today.isoformat(),))
        due_sql = _due_sql(len(ended))
        while True:
            binds: dict[str, object] = {"today": today.isoformat(), "limit": CHUNK}
            for n, (start, end) in enumerate(ended):
                binds.update({f"s{n}": start, f"e{n}": end})
            binds.update({f"f{n}": dot_id for n, dot_id in enumerate(failed)})
            skip = (f" AND d.id NOT IN ({', '.join(f':f{n}' for n in range(len(failed)))})"
                    if failed else "")
            # One chunk at a time, in any process: each dot is converted and announced once.
            async with self.db.locked("expire-dots") as tx:
                due = await tx.fetchall(f"{due_sql}{skip} ORDER BY d.expires, d.id"
                                        f" LIMIT :limit", binds)
                for dot in due:
                    # Each dot in a savepoint: a row that cannot be expired (a date no import
                    # lets in any more, written before that check) is logged and left, the
                    # rest go on.
                    await tx.execute("SAVEPOINT expire_dot")
                    try:
                        await self._expire(tx, dot, today, now)
                    except Exception as exc:
                        await tx.execute("ROLLBACK TO expire_dot")
                        log.error("dot %s (id %s, date %r, expires %r) cannot be expired: %s",
                                  dot["external_id"], dot["id"], dot["date"], dot["expires"],
                                  exc)
                        result.failed += 1
                        failed.append(dot["id"])
                        continue
                    finally:
                        await tx.execute("RELEASE expire_dot")
                    if dot["shown"] is None:
                        result.vanished += 1
                    else:
                        result.graded += 1
            if len(due) < CHUNK:
                break
        result.reminders = await self._remind(today, now)
        return result

    async def _expire(self, tx: Tx, dot, today: date, now: datetime) -> None:
        period = await period_of(tx, date.fromisoformat(dot["date"]))
        expires = date.fromisoformat(dot["expires"])
        ends = expires if period.is_school_year else min(expires, period.end)
        reason = "expired" if ends == expires else "period_end"
        # A dot that ended long ago (history, or a very long downtime) closes quietly.
        recent = (today - ends).days <= self.relevance_days
        await close_dot(tx, self.access, dot, Stored.from_row(dot), dot["weight"], ends, now,
                        reason, notify=recent)

    async def _remind(self, today: date, now: datetime) -> int:
        r = self.reminders
        plan: list[tuple[date, set[Role], str]] = []
        if r.student_days_before > 0:
            plan.append((today + timedelta(days=r.student_days_before), {Role.STUDENT},
                         f"before{r.student_days_before}"))
        last_day_roles = ({Role.STUDENT} if r.student_last_day else set()) | (
            {Role.GUARDIAN} if r.parent_last_day else set())
        if last_day_roles:
            plan.append((today, last_day_roles, "last"))
        queued = 0
        for expires, roles, tag in plan:
            after = 0
            while True:  # the dots of that day, CHUNK at a time (each reminder is queued once)
                async with self.db.locked("expire-dots") as tx:
                    rows = await tx.fetchall(
                        f"{_DOT_SQL} WHERE d.status = 'open' AND d.expires = ? AND s.active = 1"
                        f" AND d.id > ? ORDER BY d.id LIMIT ?",
                        (expires.isoformat(), after, CHUNK),
                    )
                    for dot in rows:
                        payload = {"child": dot["first_name"], "subject": dot["subject"],
                                   "work": dot["work"], "comment": dot["comment"],
                                   "expires": dot["expires"],
                                   "days_left": (expires - today).days, "value": dot["value"]}
                        queued += await announce(tx, self.access, dot["student_id"],
                                                 "dot_reminder",
                                                 f"dot:{dot['external_id']}:remind:{tag}",
                                                 payload, now, roles)
                if len(rows) < CHUNK:
                    break
                after = rows[-1]["id"]
            queued += await self._remind_marks(expires, today, now, roles, tag)
        return queued

    async def _remind_marks(self, until: date, today: date, now: datetime, roles: set[Role],
                            tag: str) -> int:
        """Reminders of the marks whose dot is open until ``until``, as of dots (the partial
        index ``grades_point_until``). The key names the day: a dot moved later is reminded
        again."""
        queued = 0
        after = 0
        while True:
            async with self.db.locked("expire-dots") as tx:
                rows = await tx.fetchall(
                    "SELECT g.id, g.external_id, g.student_id, g.subject, g.work, g.comment,"
                    " g.shown, g.point_until, s.first_name FROM grades g"
                    " JOIN students s ON s.id = g.student_id WHERE g.point_until = ?"
                    " AND g.deleted_at IS NULL AND s.active = 1 AND g.id > ?"
                    " ORDER BY g.id LIMIT ?", (until.isoformat(), after, CHUNK))
                for mark in rows:
                    payload = {"child": mark["first_name"], "subject": mark["subject"],
                               "work": mark["work"], "comment": mark["comment"],
                               "expires": mark["point_until"],
                               "days_left": (until - today).days, "mark": mark["shown"]}
                    key = f"grade:{mark['external_id'] or mark['id']}:point:{until}:remind:{tag}"
                    queued += await announce(tx, self.access, mark["student_id"], "dot_reminder",
                                             key, payload, now, roles)
            if len(rows) < CHUNK:
                break
            after = rows[-1]["id"]
        return queued
