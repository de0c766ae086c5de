"""Time as a port, so services and tests agree on 'now'.

A clock gives two things: the moment (``now``, aware UTC) for what is stored and shown, and a
monotonic reading (``monotonic``, seconds) for intervals such as rate limits and back-off. Code
reads neither ``datetime.now`` nor ``time.monotonic`` directly: a test moves a ``FrozenClock``,
and a rehearsal starts the process at a chosen moment (``StartedClock``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class StartedClock:
    """The system clock's pace from a chosen start: ``now()`` is ``start`` when the process
    starts and then runs at real speed (the ``CLOCK_START`` setting: rehearsals and tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("StartedClock needs an aware datetime")
        self.start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._origin)

    def monotonic(self) -> float:
        return time.monotonic()


class FrozenClock:
    """A controllable clock for tests and simulations: both readings move only by ``advance``
    (or by setting ``moment``)."""

    def __init__(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._moment = moment
        self._mono = 0.0

    @property
    def moment(self) -> datetime:
        return self._moment

    @moment.setter
    def moment(self, value: datetime) -> None:
        # The monotonic reading follows the moment forwards only, as a real one does when the
        # wall clock is set back.
        self._mono += max(0.0, (value - self._moment).total_seconds())
        self._moment = value

    def now(self) -> datetime:
        return self._moment

    def monotonic(self) -> float:
        return self._mono

    def advance(self, **kwargs: float) -> None:
        self.moment = self._moment + timedelta(**kwargs)


def to_db(moment: datetime) -> str:
    """Moments are stored as ISO 8601 UTC strings, which sort correctly as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
