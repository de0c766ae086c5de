"""Grades: weighted averages per subject and period, subject detail, and what the next mark needs.

A mark is kept as the school shows it («5», «4-», «5/4», «зачёт», «8» of 10) with what it counts
as: ``points``, the sum of the five-point marks it stands for, and ``parts``, how many (two for
«5/4», none for «зачёт»). The weighted average is Σ(points × weight) / Σ(parts × weight) over the
period's grades that are not deleted: a mark of weight 0 or one that counts as nothing is shown
and left out, a double mark counts as two.

A mark that carries a dot (МЭШ: ``point_until``) is visible and counts in the average while the
dot is open, as the school's own diary shows it; the dot is open through the whole of that day.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date

from core import marks as school_marks
from core.errors import AccessDenied
from core.models import Child, Scope, Viewer
from core.services.access import AccessService
from core.storage.db import Database, Tx

Day = date  # for annotations inside classes with a field named ``date``


@dataclass(frozen=True)
class Period:
    key: str  # the journal's period_id, or 'year-2026' for a school year without periods
    name: str  # '' for a school year
    start: date
    end: date

    @property
    def is_school_year(self) -> bool:
        return self.key.startswith("year-")


@dataclass(frozen=True)
class Mark:
    value: int | None  # its first five-point mark; None for one that counts as nothing
    weight: int
    date: date
    work: str | None = None
    comment: str | None = None
    teacher: str | None = None
    from_dot: bool = False
    shown: str = ""  # as the school shows it; "" for str(value)
    scale: str = school_marks.DEFAULT_SCALE
    points: float | None = None  # the sum of the five-point marks it counts as; None: value
    parts: int | None = None  # how many marks it counts as; None: one (none without a value)
    point_until: Day | None = None  # a dot on it, open through that day

    @property
    def text(self) -> str:
        return self.shown or str(self.value)

    @property
    def total(self) -> float:
        """What it adds to an average's numerator: points × weight."""
        points = self.points if self.points is not None else (self.value or 0)
        return points * self.weight

    @property
    def share(self) -> int:
        """What it adds to an average's denominator: parts × weight."""
        parts = self.parts if self.parts is not None else int(self.value is not None)
        return parts * self.weight

    @property
    def counted(self) -> bool:
        """Whether it enters the average (weight above 0 and it counts as some mark)."""
        return self.share > 0

    @property
    def counts_as(self) -> int:
        """How many marks of the average it is: 0 when it does not count, 2 for «5/4»."""
        return self.share // self.weight if self.weight else 0

    def dotted(self, today: Day | None) -> bool:
        """Whether it carries a dot that is still open on ``today``."""
        return self.point_until is not None and today is not None and today <= self.point_until


@dataclass(frozen=True)
class Stored:
    """A mark as the database keeps it (``grades`` and a dot's default grade)."""

    value: int | None
    shown: str
    scale: str
    points: float
    parts: int

    @classmethod
    def of(cls, mark: school_marks.Mark) -> Stored:
        return cls(mark.numeric, mark.shown, mark.scale, mark.points, mark.parts)

    @classmethod
    def from_row(cls, row) -> Stored | None:
        """The mark of a ``grades`` or ``dots`` row; None for a dot without one."""
        if row["shown"] is None:
            return None
        return cls(row["value"], row["shown"], row["scale"], float(row["points"]), row["parts"])

    def counted(self, weight: int) -> bool:
        return weight > 0 and self.parts > 0


@dataclass(frozen=True)
class Need:
    """``count`` more marks ``value`` of ``weight`` lift the average to ``target``."""

    count: int
    weight: int
    value: int = 5


@dataclass(frozen=True)
class SubjectSummary:
    subject: str
    key: str  # a short stable id of the subject for buttons
    marks: tuple[Mark, ...]
    average: float | None
    open_dots: int = 0
    missed: int = 0  # lessons missed (absent) in the period

    @property
    def count(self) -> int:
        return len(self.marks)

    @property
    def averaged(self) -> int:
        """How many marks the average is of (a double mark is two, one that does not count
        none)."""
        return sum(m.counts_as for m in self.marks)


@dataclass(frozen=True)
class Overview:
    child: Child
    period: Period
    periods: tuple[Period, ...]
    subjects: tuple[SubjectSummary, ...]
    today: date | None = None  # the school day it was read on (whose marks carry a dot)
    standings: dict[str, Standing] = field(default_factory=dict)  # subject → the class beside


@dataclass(frozen=True)
class SubjectDetail:
    child: Child
    period: Period
    summary: SubjectSummary
    target: float | None  # the next average that rounds up, None at the top
    needs: tuple[Need, ...]
    today: date | None = None
    standing: Standing | None = None  # the class beside the child, when big enough


def running_average(marks: tuple[Mark, ...]) -> list[tuple[date, float]]:
    """The weighted average as it stood after each day with a counting mark, in date order."""
    total: float = 0
    weights = 0
    out: dict[date, float] = {}
    for mark in sorted(marks, key=lambda m: m.date):
        if not mark.counted:
            continue
        total += mark.total
        weights += mark.share
        out[mark.date] = total / weights
    return list(out.items())


def subject_key(subject: str) -> str:
    return hashlib.blake2s(subject.encode(), digest_size=5).hexdigest()


def mean(total: float, weights: int) -> float | None:
    """Σ(points × weight) / Σ(parts × weight) from the two sums; None without marks."""
    return total / weights if weights else None


def weighted_average(marks: list[tuple[int, int]] | tuple[Mark, ...]) -> float | None:
    total: float = 0
    weights = 0
    for mark in marks:
        if isinstance(mark, Mark):
            total += mark.total
            weights += mark.share
        else:
            value, weight = mark
            total += value * weight
            weights += weight
    return mean(total, weights)


def next_target(average: float, threshold: float = 0.5) -> float | None:
    """The average at which the mark rounds up to the next grade: 4.38 → 4.5; 4.6 → None."""
    base = math.floor(average)
    target = base + threshold if average - base < threshold else base + 1 + threshold
    return target if target < 5 else None


def marks_needed(total: float, weights: int, target: float, weight: int, value: int = 5
                 ) -> int | None:
    """How many marks ``value`` of one weight bring Σ(v·w)/Σw to ``target`` or above; None
    when no number of them can (a mark at or below the target)."""
    # (total + v·w·k) / (weights + w·k) >= target
    #   <=>  k >= (target·weights − total) / (w·(v − target))
    missing = target * weights - total
    if missing <= 0:
        return 0
    if value <= target:
        return None
    return math.ceil(round(missing / (weight * (value - target)), 9))


def fives_needed(total: float, weights: int, target: float, weight: int) -> int:
    """How many fives of one weight bring Σ(v·w)/Σw to ``target`` or above."""
    count = marks_needed(total, weights, target, weight)
    assert count is not None
    return count


def needs_for(marks: tuple[Mark, ...], target: float, limit: int = 10) -> tuple[Need, ...]:
    """The cheapest ways to reach ``target``, one per weight the subject uses (the three
    heaviest, and 1): the fewest marks, and of those the lowest mark that still does it. Marks
    that do not count (weight 0, «зачёт») are left out; a double mark counts as two."""
    total = sum(m.total for m in marks)
    weights = sum(m.share for m in marks)
    options = sorted({m.weight for m in marks if m.counted} | {1}, reverse=True)[:3]
    needs = []
    for weight in options:
        fewest = marks_needed(total, weights, target, weight)
        if fewest is None or not 0 < fewest <= limit:
            continue
        value = min(v for v in (2, 3, 4, 5)
                    if marks_needed(total, weights, target, weight, v) == fewest)
        needs.append(Need(fewest, weight, value))
    return tuple(sorted(needs, key=lambda n: (n.count, n.value, n.weight)))


def school_year(day: date) -> Period:
    start_year = day.year if day.month >= 9 else day.year - 1
    return Period(f"year-{start_year}", "", date(start_year, 9, 1), date(start_year + 1, 8, 31))


async def periods_around(tx: Tx | Database, day: date) -> tuple[tuple[Period, ...], Period]:
    """The periods of the school year of ``day`` and the one containing it (or the year)."""
    year = school_year(day)
    rows = await tx.fetchall(
        "SELECT external_id, name, start_date, end_date FROM periods"
        " WHERE end_date >= ? AND start_date <= ? ORDER BY start_date",
        (year.start.isoformat(), year.end.isoformat()),
    )
    periods = tuple(
        Period(r["external_id"], r["name"], date.fromisoformat(r["start_date"]),
               date.fromisoformat(r["end_date"]))
        for r in rows
    )
    current = next((p for p in periods if p.start <= day <= p.end), None)
    if current is None:
        # Between periods (holidays): the last one that ended, else the first one, else the year.
        ended = [p for p in periods if p.end < day]
        current = ended[-1] if ended else (periods[0] if periods else year)
    return periods, current


async def period_of(tx: Tx | Database, day: date) -> Period:
    row = await tx.fetchone(
        "SELECT external_id, name, start_date, end_date FROM periods"
        " WHERE start_date <= ? AND end_date >= ? ORDER BY start_date DESC LIMIT 1",
        (day.isoformat(), day.isoformat()),
    )
    if row is None:
        return school_year(day)
    return Period(row["external_id"], row["name"], date.fromisoformat(row["start_date"]),
                  date.fromisoformat(row["end_date"]))


# The two sums of an average, over grades: Σ(points·weight) and Σ(parts·weight).
SUMS_SQL = "COALESCE(SUM(points * weight), 0), COALESCE(SUM(parts * weight), 0)"


async def subject_sums(
    tx: Tx, student_id: int, subject: str, period: Period
) -> tuple[float, int]:
    """Σ(points·weight) and Σ(parts·weight) of a subject's live grades in a period."""
    row = await tx.fetchone(
        f"SELECT {SUMS_SQL} FROM grades"
        " WHERE student_id = ? AND subject = ? AND date BETWEEN ? AND ? AND deleted_at IS NULL",
        (student_id, subject, period.start.isoformat(), period.end.isoformat()),
    )
    assert row is not None
    return float(row[0]), int(row[1])


class GradesService:
    def __init__(self, db: Database, threshold: float) -> None:
        self.db = db
        self.threshold = threshold

    async def overview(
        self, viewer: Viewer, child_id: int, today: date, period_key: str | None = None
    ) -> Overview:
        child = AccessService.require(viewer, child_id, Scope.GRADES)
        async with self.db.read() as tx:
            periods, current = await periods_around(tx, today)
            period = current
            if period_key is not None:
                chosen = next((p for p in periods if p.key == period_key), None)
                if chosen is None and period_key != current.key:
                    raise AccessDenied(period=period_key)
                period = chosen or current
            subjects = await self._subjects(tx, child.id, period,
                                            with_missed=Scope.ATTENDANCE in child.scopes,
                                            today=today)
            standings = await class_standings(
                tx, child.id, period,
                {s.subject: s.average for s in subjects if s.average is not None})
        return Overview(child, period, periods, subjects, today, standings)

    async def _subjects(
        self, tx: Tx, student_id: int, period: Period, with_missed: bool = True,
        today: date | None = None,
    ) -> tuple[SubjectSummary, ...]:
        rows = await tx.fetchall(
            "SELECT subject, value, weight, date, work, comment, teacher, dot_id, shown, scale,"
            " points, parts, point_until FROM grades"
            " WHERE student_id = ? AND date BETWEEN ? AND ? AND deleted_at IS NULL"
            " ORDER BY subject, date, id",
            (student_id, period.start.isoformat(), period.end.isoformat()),
        )
        by_subject: dict[str, list[Mark]] = {}
        for r in rows:
            by_subject.setdefault(r["subject"], []).append(
                Mark(r["value"], r["weight"], date.fromisoformat(r["date"]), r["work"],
                     r["comment"], r["teacher"], r["dot_id"] is not None, r["shown"],
                     r["scale"], float(r["points"]), r["parts"],
                     date.fromisoformat(r["point_until"]) if r["point_until"] else None)
            )
        dots = {
            r[0]: r[1]
            for r in await tx.fetchall(
                "SELECT subject, COUNT(*) FROM dots WHERE student_id = ? AND status = 'open'"
                " AND date BETWEEN ? AND ? GROUP BY subject",  # a dot is of its date's period
                (student_id, period.start.isoformat(), period.end.isoformat()),
            )
        }
        missed = {} if not with_missed else {
            r[0]: r[1]
            for r in await tx.fetchall(
                "SELECT subject, COUNT(*) FROM attendance WHERE student_id = ? AND mark = 'absent'"
                " AND date BETWEEN ? AND ? GROUP BY subject",
                (student_id, period.start.isoformat(), period.end.isoformat()),
            )
        }
        if today is not None:  # marks that carry a dot count among the open dots
            for name, found in by_subject.items():
                dotted = sum(1 for m in found if m.dotted(today))
                if dotted:
                    dots[name] = dots.get(name, 0) + dotted
        names = sorted(set(by_subject) | set(dots) | set(missed), key=str.casefold)
        return tuple(
            SubjectSummary(
                subject=name,
                key=subject_key(name),
                marks=tuple(by_subject.get(name, ())),
                average=weighted_average(tuple(by_subject.get(name, ()))),
                open_dots=dots.get(name, 0),
                missed=missed.get(name, 0),
            )
            for name in names
        )

    async def subject(
        self, viewer: Viewer, child_id: int, key: str, today: date, period_key: str | None = None
    ) -> SubjectDetail:
        overview = await self.overview(viewer, child_id, today, period_key)
        summary = next((s for s in overview.subjects if s.key == key), None)
        if summary is None:
            raise AccessDenied(subject=key)
        target = needs = None
        if summary.average is not None:
            target = next_target(summary.average, self.threshold)
            if target is not None:
                needs = needs_for(summary.marks, target)
        return SubjectDetail(overview.child, overview.period, summary, target, needs or (),
                             overview.today, overview.standings.get(summary.subject))


# -- the class beside a child --------------------------------------------------------------

MIN_CLASS = 5  # fewer students with marks than this: no class figures at all
TOP_QUARTER = "top_quarter"
ABOVE = "above"
LEVEL = "level"
BELOW = "below"


@dataclass(frozen=True)
class Standing:
    """Where a child's average stands in the class, for one subject and period: the class
    average (the mean of its students' averages) and a position, never anyone else's marks."""

    average: float  # the class average
    position: str  # TOP_QUARTER, ABOVE, LEVEL or BELOW


def standing_of(mine: float, averages: list[float]) -> Standing | None:
    """The standing of ``mine`` among ``averages`` (the class's students' averages, the child's
    among them); None when fewer than :data:`MIN_CLASS` students have marks."""
    if len(averages) < MIN_CLASS:
        return None
    overall = sum(averages) / len(averages)
    higher = sum(1 for a in averages if round(a - mine, 9) > 0)
    if abs(mine - overall) < 0.005:
        position = LEVEL
    elif mine < overall:
        position = BELOW
    elif higher < len(averages) / 4:
        position = TOP_QUARTER
    else:
        position = ABOVE
    return Standing(overall, position)


async def class_standings(tx: Tx | Database, student_id: int, period: Period,
                          mine: dict[str, float]) -> dict[str, Standing]:
    """The standing of a child in each subject of ``mine`` (subject → the child's average) in
    a period: one grouped query over the active students of the child's class that have a
    counting mark in it."""
    if not mine:
        return {}
    rows = await tx.fetchall(
        "SELECT g.subject, g.student_id, SUM(g.points * g.weight) AS total,"
        " SUM(g.parts * g.weight) AS share"
        " FROM students me JOIN students s ON s.class_id = me.class_id AND s.active = 1"
        " JOIN grades g ON g.student_id = s.id"
        " WHERE me.id = ? AND g.date BETWEEN ? AND ? AND g.deleted_at IS NULL"
        " AND g.weight > 0 AND g.parts > 0"
        " GROUP BY g.subject, g.student_id",
        (student_id, period.start.isoformat(), period.end.isoformat()),
    )
    by_subject: dict[str, list[float]] = {}
    for r in rows:
        if r["subject"] in mine and r["share"]:
            by_subject.setdefault(r["subject"], []).append(float(r["total"]) / int(r["share"]))
    found = {}
    for subject, averages in by_subject.items():
        standing = standing_of(mine[subject], averages)
        if standing is not None:
            found[subject] = standing
    return found
