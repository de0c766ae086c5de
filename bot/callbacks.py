"""Every CallbackData class, with short unique prefixes. Carry ids, never names (64 bytes max)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class SettingsCb(CallbackData, prefix="st"):
    action: str  # home, lang, unlink, unlink_yes
    value: str = ""


class GradesCb(CallbackData, prefix="g"):
    """``a``: overview, subject or child list; ``c``: child id (checked on every use);
    ``p``: period index in the year's list (-1: current); ``s``: subject key; ``pg``: page."""

    a: str
    c: int = 0
    p: int = -1
    s: str = ""
    pg: int = 0


class DayCb(CallbackData, prefix="t"):
    """Homework (``v="h"``) or timetable (``v="s"``) of child ``c`` (0: all the viewer's
    children, each checked) on day ``d`` (an ordinal), or the week around it (``w=1``)."""

    v: str
    c: int = 0
    d: int
    w: int = 0


class AbsenceCb(CallbackData, prefix="ab"):
    """Steps of /absence. ``a``: child, mode, day, month, lesson, done, reason, skip, send,
    list, cancel, noop; ``v``: the value (a child id, a date ordinal, a lesson number…)."""

    a: str
    v: str = ""


class InviteCb(CallbackData, prefix="iv"):
    """Accept (``a="yes"``) or decline (``"no"``) invitation ``i``: checked against the
    presser's verified number on every use."""

    a: str
    i: int


class TrustCb(CallbackData, prefix="tr"):
    """/trusted screens. ``a``: home, invite, kid, kids_done, scope, send, revoke, leave, log;
    ``v``: a child id, a scope or a trust id."""

    a: str
    v: str = ""


class SignCb(CallbackData, prefix="sg"):
    """The weekly sign-off of child ``c`` for the week starting on day ``w`` (an ordinal)."""

    c: int
    w: int


class DemoCb(CallbackData, prefix="dm"):
    """Demo mode: try the bot as a parent (``a="parent"``) or as a student."""

    a: str
