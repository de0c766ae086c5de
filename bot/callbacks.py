"""Every CallbackData class, with short unique prefixes. Carry ids, never names (64 bytes max).

Callback data comes from the network: every field is bounded here, so a forged payload (a huge
or negative number, a day out of any calendar) fails to unpack — no handler sees it, and
``is_forged`` lets the fallback refuse it silently. Access to what an id names is still checked
in the core on every use.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from aiogram.filters.callback_data import CallbackData
from pydantic import Field, model_validator

MAX_ID = 2**62  # database ids (SQLite integers are 64-bit)
FIRST_DAY = date(2000, 1, 1).toordinal()
LAST_DAY = date(2199, 12, 31).toordinal()

Id = Annotated[int, Field(ge=0, le=MAX_ID)]
Day = Annotated[int, Field(ge=FIRST_DAY, le=LAST_DAY)]
Word = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{0,32}$")]

_NUMBER = re.compile(r"^[0-9]{1,19}$")


def _id(value: str) -> bool:
    return bool(_NUMBER.match(value)) and int(value) <= MAX_ID


def _day(value: str) -> bool:
    return bool(_NUMBER.match(value)) and FIRST_DAY <= int(value) <= LAST_DAY


def _span(value: str) -> bool:
    first, _sep, last = value.partition("_")
    return _day(first) and _day(last)


def _hhmm(value: str) -> bool:
    return len(value) == 4 and value.isdigit() and int(value[:2]) < 24 and int(value[2:]) < 60


def _check(action: str, value: str, rules: dict[str, Any]) -> None:
    """``value`` must suit ``action``: a day ordinal, an id, a time…"""
    rule = rules.get(action)
    if rule is not None and value != "" and not rule(value):
        raise ValueError(f"bad value for {action!r}")


class SettingsCb(CallbackData, prefix="st"):
    action: Word  # home, lang, unlink, unlink_yes
    value: Word = ""

    @model_validator(mode="after")
    def _value_suits_action(self) -> SettingsCb:
        _check(self.action, self.value, {"kid": _id, "quiet": _id, "dtime": _hhmm})
        return self


class GradesCb(CallbackData, prefix="g"):
    """``a``: overview, subject or child list; ``c``: child id (checked on every use);
    ``p``: period index in the year's list (-1: current); ``s``: subject key; ``pg``: page."""

    a: Word
    c: Id = 0
    p: Annotated[int, Field(ge=-1, le=999)] = -1
    s: Word = ""
    pg: Annotated[int, Field(ge=0, le=9999)] = 0


class DayCb(CallbackData, prefix="t"):
    """Homework (``v="h"``) or timetable (``v="s"``) of child ``c`` (0: all the viewer's
    children, each checked) on day ``d`` (an ordinal), or the week around it (``w=1``)."""

    v: Word
    c: Id = 0
    d: Day
    w: Annotated[int, Field(ge=0, le=1)] = 0


class AbsenceCb(CallbackData, prefix="ab"):
    """Steps of /absence. ``a``: child, mode, day, month, range, lesson, done, reason, skip,
    send, back, quit, list, cancel, cancel_yes, noop; ``v``: the value (a child id, a date
    ordinal, two ordinals joined by ``_``, a lesson number…)."""

    a: Word
    v: Word = ""

    @model_validator(mode="after")
    def _value_suits_action(self) -> AbsenceCb:
        _check(self.a, self.v, {"child": _id, "day": _day, "month": _day, "lesson": _id,
                                "cancel": _id, "cancel_yes": _id, "range": _span})
        return self


class InviteCb(CallbackData, prefix="iv"):
    """Accept (``a="yes"``) or decline (``"no"``) invitation ``i``: checked against the
    presser's verified number on every use."""

    a: Word
    i: Annotated[int, Field(ge=1, le=MAX_ID)]


class TrustCb(CallbackData, prefix="tr"):
    """/trusted screens. ``a``: home, invite, kid, kids_done, scope, send, revoke, revoke_yes,
    leave, leave_yes, log; ``v``: a child id, a scope or a trust id."""

    a: Word
    v: Word = ""

    @model_validator(mode="after")
    def _value_suits_action(self) -> TrustCb:
        _check(self.a, self.v, {"kid": _id, "revoke": _id, "leave": _id, "revoke_yes": _id,
                                "leave_yes": _id})
        return self


class SignCb(CallbackData, prefix="sg"):
    """The weekly sign-off of child ``c`` for the week starting on day ``w`` (an ordinal)."""

    c: Id
    w: Day


class DemoCb(CallbackData, prefix="dm"):
    """Demo mode: try the bot as a parent (``a="parent"``) or as a student."""

    a: Word


class TeacherCb(CallbackData, prefix="tc"):
    """Parents and class teachers. ``a``: kid (write about child ``i``), re (answer message
    ``i``), hist (history of thread ``i``), mute / unmute (thread ``i``), inbox. Every id is
    checked against the presser on every use."""

    a: Word
    i: Id = 0


class NewsCb(CallbackData, prefix="nw"):
    """/news: page ``p`` of the viewer's announcements (0: the newest), worked out anew for the
    presser on every use."""

    p: Annotated[int, Field(ge=0, le=9999)] = 0


KINDS: tuple[type[CallbackData], ...] = (SettingsCb, GradesCb, DayCb, AbsenceCb, InviteCb,
                                         TrustCb, SignCb, DemoCb, TeacherCb,
                                         NewsCb)
_BY_PREFIX = {kind.__prefix__: kind for kind in KINDS}


def is_forged(data: str | None) -> bool:
    """Data with one of this bot's prefixes that no class unpacks: made up, not pressed."""
    if not data:
        return False
    kind = _BY_PREFIX.get(data.split(":", 1)[0])
    if kind is None:
        return False
    try:
        kind.unpack(data)
    except (TypeError, ValueError):
        return True
    return False
