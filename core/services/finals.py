"""Final marks: a child's final marks of a school year by subject and period, and the mark the
current period's average predicts while its final one is not set.

Averages come from :class:`GradesService` (the overview of the current period), never from SQL
of their own here: how an average is made is decided there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from core.models import Child, Scope, Viewer
from core.services.access import AccessService
from core.services.grades import GradesService, Period, school_year
from core.storage.db import Tx


@dataclass(frozen=True)
class FinalMark:
    subject: str
    period: str | None  # the period's key (the journal's period_id); None: the year
    period_name: str | None
    shown: str  # as the school shows it: «5», «4», «зачёт»
    scale: str


@dataclass(frozen=True)
class FinalsRow:
    subject: str
    finals: dict[str | None, str] = field(default_factory=dict)  # period key (None: year) -> shown
    predicted: int | None = None  # the current period's rounded average, while it has no final
    average: float | None = None


@dataclass(frozen=True)
class FinalsTable:
    child: Child
    year: Period  # the school year
    periods: tuple[Period, ...]  # the year's periods: the columns before the year's
    current: Period  # whose mark is predicted: one of ``periods``, or the year without periods
    rows: tuple[FinalsRow, ...]

    @property
    def predicted_column(self) -> str | None:
        """The column of the predicted marks: a period's key, None for the year."""
        return None if self.current.is_school_year else self.current.key

    @property
    def any_predicted(self) -> bool:
        return any(r.predicted is not None for r in self.rows)


def predicted_mark(average: float, threshold: float = 0.5) -> int:
    """The mark an average rounds to when the fraction ``threshold`` rounds up: with 0.5,
    4.5 → 5 and 4.49 → 4; with 0.6, 4.5 → 4."""
    base = math.floor(average)
    mark = base + 1 if round(average - base, 9) >= threshold else base
    return max(1, min(5, mark))


async def year_finals(tx: Tx, student_id: int, year: Period,
                      subject: str | None = None) -> list[FinalMark]:
    """The live final marks of a child in a school year (of one subject, if given), periods in
    order and the year's last; of two for the same subject and period, the later one wins when
    read into a dict."""
    sql = ("SELECT f.subject, f.shown, f.scale, p.external_id AS period, p.name AS period_name"
           " FROM final_grades f LEFT JOIN periods p ON p.id = f.period_id"
           " WHERE f.student_id = ? AND f.school_year = ? AND f.deleted_at IS NULL")
    args: list[object] = [student_id, year.start.year]
    if subject is not None:
        sql += " AND f.subject = ?"
        args.append(subject)
    sql += (" ORDER BY CASE WHEN p.start_date IS NULL THEN 1 ELSE 0 END, p.start_date,"
            " f.updated_at, f.id")
    return [FinalMark(r["subject"], r["period"], r["period_name"], r["shown"], r["scale"])
            for r in await tx.fetchall(sql, args)]


async def finals_table(grades: GradesService, viewer: Viewer, child_id: int,
                       today: date) -> FinalsTable:
    """Every subject's final marks of the school year of ``today``, by period and for the
    year, and the predicted mark of the current period where its final one is not set."""
    child = AccessService.require(viewer, child_id, Scope.GRADES)
    overview = await grades.overview(viewer, child.id, today)
    year = school_year(today)
    async with grades.db.read() as tx:
        marks = await year_finals(tx, child.id, year)
    keys = {p.key for p in overview.periods}
    rows: dict[str, FinalsRow] = {}
    for m in marks:
        if m.period is not None and m.period not in keys:
            continue  # a period outside the year's list: not a column
        rows.setdefault(m.subject, FinalsRow(m.subject)).finals[m.period] = m.shown
    current = None if overview.period.is_school_year else overview.period.key
    for s in overview.subjects:
        if s.average is None:
            continue
        row = rows.get(s.subject)
        if row is not None and current in row.finals:
            continue
        predicted = predicted_mark(s.average, grades.threshold)
        rows[s.subject] = FinalsRow(s.subject, row.finals if row else {}, predicted, s.average)
    ordered = tuple(rows[name] for name in sorted(rows, key=str.casefold))
    return FinalsTable(child, year, overview.periods, overview.period, ordered)


async def subject_finals(grades: GradesService, viewer: Viewer, child_id: int, subject: str,
                         year: Period) -> list[FinalMark]:
    """A subject's final marks of a school year, periods in order and the year's last."""
    child = AccessService.require(viewer, child_id, Scope.GRADES)
    async with grades.db.read() as tx:
        marks = await year_finals(tx, child.id, year, subject)
    latest: dict[str | None, FinalMark] = {}
    for m in marks:
        latest[m.period] = m  # the later of two wins, in the place of the first
    return sorted(latest.values(), key=lambda m: m.period is None)  # stable: periods in order
