"""Teachers' working hours: the days of the week and the daily window, in school time, when a
parent's message reaches the class teacher at once. A message written outside them waits in the
outbox until the next opening."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.quiet import _hhmm

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FORM = re.compile(r"^\s*(?:([A-Za-z]{3})(?:\s*-\s*([A-Za-z]{3}))?\s+)?"
                   r"(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")


def _day(name: str) -> int:
    try:
        return DAY_NAMES.index(name.lower())
    except ValueError:
        raise ValueError(f"not a day of the week (Mon…Sun): {name!r}") from None


@dataclass(frozen=True)
class WorkingHours:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """``08:00-18:00`` (Monday to Friday), ``Mon-Sat 08:00-18:00``, ``Mon 09:00-15:00``."""
        m = _FORM.match(text or "")
        if m is None:
            raise ValueError(f"working hours must look like 'Mon-Fri 08:00-18:00', not {text!r}")
        first, last, start, end = m.groups()
        start_t, end_t = _hhmm(start), _hhmm(end)
        if start_t >= end_t:
            raise ValueError(f"working hours must end after they start: {text!r}")
        if first is None:
            days = frozenset(range(5))
        else:
            a = _day(first)
            b = _day(last) if last else a
            if b < a:
                raise ValueError(f"the days must run forward within a week: {text!r}")
            days = frozenset(range(a, b + 1))
        return cls(days, start_t, end_t)

    def __str__(self) -> str:
        first, last = min(self.days), max(self.days)
        days = DAY_NAMES[first].title() + ("" if first == last
                                           else "-" + DAY_NAMES[last].title())
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"

    def next_open(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """None if ``moment`` falls within working hours; else when they open next."""
        local = moment.astimezone(tz)
        if local.weekday() in self.days and self.start <= local.time() < self.end:
            return None
        day = local.date()
        if local.time() >= self.start:
            day += timedelta(days=1)
        for _ in range(8):
            if day.weekday() in self.days:
                return datetime.combine(day, self.start, tzinfo=tz)
            day += timedelta(days=1)
        raise AssertionError("working hours with no day")
