"""Quiet hours: a daily window in school time during which pushes are held (never dropped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str | None) -> QuietHours | None:
        """'22:00-08:00' → QuietHours; '' or None → None (no quiet hours)."""
        if not text or not text.strip():
            return None
        start, sep, end = text.strip().partition("-")
        if not sep:
            raise ValueError(f"quiet hours must be HH:MM-HH:MM, not {text!r}")
        return cls(_hhmm(start), _hhmm(end))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window crosses midnight

    def release_at(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """When held pushes may go, if ``moment`` falls in quiet hours; None otherwise."""
        local = moment.astimezone(tz)
        if not self.contains(local.time()):
            return None
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        # Build the wall-clock time anew so a DST change in between is honoured.
        end = datetime.combine(end.date(), self.end, tzinfo=tz)
        return end


def _hhmm(text: str) -> time:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"not a time HH:MM: {text!r}")
    return time(int(hours), int(minutes))
