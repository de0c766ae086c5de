"""Every kind of push in one place: what it is about, who may get it, what silences it, whether
quiet hours hold it, what it carries and how it is shown.

The outbox (scopes checked again at send time, kinds quiet hours hold), the preferences (which
switch silences which kind, the switches' defaults), /settings (the switches a viewer sees) and
the renderers (``bot/notify.py``, one per kind, of the kind's shape) all take their tables from
here. A new kind is one ``PushKind`` below (with its payload), its producer and its renderer;
``tests/bot/test_push_kinds.py`` fails when a kind lacks a renderer of its shape, a scope or a
translated label.

Not ``from __future__ import annotations``: the payloads' ``NotRequired`` keys are told apart
when the classes are made.
"""

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NotRequired, Protocol, TypedDict

from core.models import Scope

# -- switches: what a user can turn off in /settings ------------------------------------------


class Section(StrEnum):
    """Where /settings shows a switch."""

    PUSHES = "pushes"  # instant messages, one switch per kind of news
    DIGEST = "digest"  # the daily digest and what follows it


@dataclass(frozen=True)
class Switch:
    """A setting of ``account_settings`` (the column and the ``Preferences`` field of its name;
    NULL there means ``default``)."""

    name: str
    default: bool
    # What a viewer must be allowed to see of some child for the switch to mean anything.
    scope: Scope
    section: Section


SWITCHES: tuple[Switch, ...] = (
    Switch("push_grades", True, Scope.GRADES, Section.PUSHES),
    Switch("push_dots", True, Scope.GRADES, Section.PUSHES),
    Switch("push_attendance", True, Scope.ATTENDANCE, Section.PUSHES),
    Switch("push_homework", False, Scope.HOMEWORK, Section.PUSHES),
    Switch("push_timetable", True, Scope.HOMEWORK, Section.PUSHES),
    Switch("push_replacements", True, Scope.HOMEWORK, Section.PUSHES),
    # Announcements reach a trusted person with the homework-and-timetable scope (the scope of
    # the kind below; /news shows them by the same).
    Switch("push_announcements", True, Scope.HOMEWORK, Section.PUSHES),
    Switch("digest_enabled", True, Scope.DIGEST, Section.DIGEST),
    Switch("digest_empty", False, Scope.DIGEST, Section.DIGEST),
    # Friday's digest is followed by a picture of each child's week (marks: the grades scope
    # too, checked by /settings).
    Switch("digest_chart", False, Scope.DIGEST, Section.DIGEST),
)
SWITCH = {s.name: s for s in SWITCHES}


# -- payloads: what each kind carries from its producer to its renderer ------------------------
# JSON in the outbox row; dates as ISO text. Keys a renderer may find missing (pushes queued by
# an earlier version) are NotRequired.


class MarkShown(TypedDict):
    """A mark as the school shows it, and what it counts as."""

    value: int | str | None  # the five-point value kept before marks were kept as shown
    shown: NotRequired[str | None]  # «4-», «5/4», «зачёт»
    scale: NotRequired[str]  # "5", "10", "100", "pass"
    counted: NotRequired[bool]  # False: shown but left out of the average


class GradePush(MarkShown):
    """grade_new, grade_changed, grade_deleted: a mark of a lesson."""

    child: str
    subject: str
    weight: int
    date: str
    work: NotRequired[str | None]
    comment: NotRequired[str | None]
    teacher: NotRequired[str | None]
    avg_before: NotRequired[float | None]
    avg_after: NotRequired[float | None]
    point_until: NotRequired[str]  # the mark carries a dot until then
    days_left: NotRequired[int]
    point_cleared: NotRequired[bool]
    from_dot: NotRequired[bool]  # grade_new: the grade a dot became
    reason: NotRequired[str]
    set_on: NotRequired[str]
    old_value: NotRequired[int | str | None]  # grade_changed: what it was
    old_shown: NotRequired[str | None]


class _Mark(Protocol):
    """A mark as kept (``core.services.grades.Stored``)."""

    @property
    def value(self) -> int | None: ...
    @property
    def shown(self) -> str: ...
    @property
    def scale(self) -> str: ...
    def counted(self, weight: int) -> bool: ...


def mark_words(mark: _Mark, weight: int) -> MarkShown:
    """A push's words on a mark: as the school shows it, and whether it counts."""
    words: MarkShown = {"value": mark.value, "shown": mark.shown,
                        "counted": mark.counted(weight)}
    if mark.scale != "5":
        words["scale"] = mark.scale
    return words


def grade_push(child: str, subject: str, mark: _Mark, weight: int, day: str, *,
               avg_before: float | None, avg_after: float | None, work: str | None = None,
               comment: str | None = None, teacher: str | None = None) -> GradePush:
    """The payload of a push about a mark (new, changed, deleted; from a dot), built in one
    place: the mark as shown and whether it counts, its lesson and the average's change."""
    push: GradePush = {
        "child": child, "subject": subject, "weight": weight, "date": day, "work": work,
        "comment": comment, "teacher": teacher, "avg_before": avg_before, "avg_after": avg_after,
        **mark_words(mark, weight),
    }
    return push


class DotPush(TypedDict):
    """dot_new, dot_reminder, dot_vanished: a teacher's temporary debt mark."""

    child: str
    subject: str
    work: NotRequired[str | None]
    comment: NotRequired[str | None]
    teacher: NotRequired[str | None]
    set_on: NotRequired[str]
    expires: NotRequired[str]
    days_left: NotRequired[int]
    value: NotRequired[int | str | None]  # the grade it becomes, if any
    shown: NotRequired[str | None]
    scale: NotRequired[str]
    counted: NotRequired[bool]
    mark: NotRequired[str | None]  # dot_reminder: the mark the dot is on
    reason: NotRequired[str]  # dot_vanished: "teacher" or the deadline


class AttendancePush(TypedDict):
    child: str
    date: str
    lesson: int
    subject: str
    mark: str  # "absent" or "late"
    excused: bool
    by_notice: bool


class Link(TypedDict):
    url: str
    title: NotRequired[str | None]


class HomeworkPush(TypedDict):
    child: str
    subject: str
    text: str
    required: NotRequired[bool]
    updated: NotRequired[bool]
    personal: NotRequired[bool]
    links: NotRequired[list[Link]]


class LessonPush(TypedDict):
    """lesson_cancelled, lesson_replaced."""

    child: str
    subject: str
    date: str
    number: int
    start: str
    group: NotRequired[str | None]
    substitute: NotRequired[str | None]
    teacher: NotRequired[str | None]


class FinalPush(TypedDict):
    """final_grade, final_grade_changed, final_grade_deleted."""

    child: str
    subject: str
    period: str | None  # the period's name; None: the year
    value: str
    old_value: NotRequired[str]


class AnnouncementPush(TypedDict):
    text: str
    updated: bool
    links: NotRequired[list[Link]]


class InvitationPush(TypedDict):
    invitation_id: int
    inviter: str
    surname: str
    children: list[str]
    scopes: list[str]
    expires: str
    expires_day: NotRequired[str]


class TrustNewsPush(TypedDict):
    """What became of an invitation (the invitation's fields too), or of a trust."""

    event: str  # accepted, declined, expired, revoked, left, ended
    surname: NotRequired[str]
    children: NotRequired[list[str]]
    scopes: NotRequired[list[str]]
    invitation_id: NotRequired[int]
    inviter: NotRequired[str]
    expires: NotRequired[str]
    expires_day: NotRequired[str]


class RelinkPush(TypedDict):
    pass


class DigestPush(TypedDict):
    day: str
    children: list[dict[str, Any]]  # per child: grades, marks, dots, lessons, homework
    announcements: NotRequired[list[dict[str, Any]]]


# teacher_message (a parent's, to the class teacher), teacher_answer (to the parent); ``class``
# and ``from`` are keywords, hence the functional form.
TeacherMessagePush = TypedDict("TeacherMessagePush", {
    "message": int,  # the conversation message whose delivered id is kept
    "thread": int,
    "child": str,
    "class": str,  # the child's class
    "text": str,
    "photo": str | None,
    "reply_to": int | None,
    "teacher": NotRequired[str],  # teacher_answer: the class teacher's name
    "from": NotRequired[str],  # teacher_message: the parent's name
    "relation": NotRequired[str],  # teacher_message: the parent's relation to the child
})


class WeekChartPush(TypedDict):
    child: str
    start: str
    end: str
    marks: int
    png: str  # base64


# -- kinds -------------------------------------------------------------------------------------


class Shape(StrEnum):
    """How a kind is shown."""

    BLOCK = "block"  # a block of text, sharing messages with the recipient's other pushes
    GROUPED = "grouped"  # blocks of one child and one ``group_by`` value told as one block
    INTERACTIVE = "interactive"  # a message of its own, with buttons
    OWN = "own"  # a message of its own, whole, after the others (a reply, a picture)


class About(StrEnum):
    """What a kind of push is about."""

    CHILD = "child"  # a child's diary: queued with the child, sent only while it may be seen
    SCHOOL = "school"  # the school's news, for whoever its scope opens
    ACCOUNT = "account"  # the recipient's own affairs: invitations, conversations, the digest


@dataclass(frozen=True)
class PushKind:
    name: str
    shape: Shape
    payload: type  # the TypedDict it carries
    about: About
    # The scope a push about a child (or the school's news) belongs to: checked again when it
    # is sent (a revoked trust sends nothing more).
    scope: Scope | None = None
    switch: Switch | None = None  # the /settings switch that silences it; None: always goes
    quiet_hours: bool = True  # held until the recipient's quiet hours end
    group_by: str | None = None  # GROUPED: the payload key that makes the group
    to_students: bool = True  # False: a child's own account never gets it (absences: parents)


KINDS: dict[str, PushKind] = {}
# Derived, kept by ``register``: kind -> the scope checked again when a push about a child is
# sent; kind -> the name of the switch that silences it; the kinds quiet hours never hold.
SCOPES: dict[str, Scope] = {}
SWITCHED: dict[str, str] = {}
UNHELD: set[str] = set()


def register(kind: PushKind) -> PushKind:
    """Add a kind (each name once)."""
    if kind.name in KINDS:
        raise ValueError(f"push kind {kind.name!r} is registered twice")
    if (kind.shape is Shape.GROUPED) != (kind.group_by is not None):
        raise ValueError(f"push kind {kind.name!r}: group_by goes with the grouped shape")
    if (kind.about is About.ACCOUNT) != (kind.scope is None):
        raise ValueError(f"push kind {kind.name!r}: a push about a child or the school needs a"
                         " scope, one of the account's own affairs none")
    KINDS[kind.name] = kind
    if kind.scope is not None:
        SCOPES[kind.name] = kind.scope
    if kind.switch is not None:
        SWITCHED[kind.name] = kind.switch.name
    if not kind.quiet_hours:
        UNHELD.add(kind.name)
    return kind


def unregister(name: str) -> None:
    """Remove a kind again (a test's own kind)."""
    KINDS.pop(name)
    SCOPES.pop(name, None)
    SWITCHED.pop(name, None)
    UNHELD.discard(name)


_CHILD, _SCHOOL, _ACCOUNT = About.CHILD, About.SCHOOL, About.ACCOUNT
_GRADES, _ATTENDANCE, _HOMEWORK = Scope.GRADES, Scope.ATTENDANCE, Scope.HOMEWORK
_BLOCK, _GROUPED, _INTERACTIVE, _OWN = Shape.BLOCK, Shape.GROUPED, Shape.INTERACTIVE, Shape.OWN
_S = SWITCH

for _kind in (
    PushKind("grade_new", _BLOCK, GradePush, _CHILD, _GRADES, _S["push_grades"]),
    PushKind("grade_changed", _BLOCK, GradePush, _CHILD, _GRADES, _S["push_grades"]),
    PushKind("grade_deleted", _BLOCK, GradePush, _CHILD, _GRADES, _S["push_grades"]),
    PushKind("final_grade", _GROUPED, FinalPush, _CHILD, _GRADES, _S["push_grades"],
             group_by="period"),
    PushKind("final_grade_changed", _BLOCK, FinalPush, _CHILD, _GRADES, _S["push_grades"]),
    PushKind("final_grade_deleted", _BLOCK, FinalPush, _CHILD, _GRADES, _S["push_grades"]),
    PushKind("dot_new", _BLOCK, DotPush, _CHILD, _GRADES, _S["push_dots"]),
    PushKind("dot_reminder", _BLOCK, DotPush, _CHILD, _GRADES, _S["push_dots"]),
    PushKind("dot_vanished", _BLOCK, DotPush, _CHILD, _GRADES, _S["push_dots"]),
    PushKind("attendance", _GROUPED, AttendancePush, _CHILD, _ATTENDANCE,
             _S["push_attendance"], group_by="date", to_students=False),
    PushKind("homework", _BLOCK, HomeworkPush, _CHILD, _HOMEWORK, _S["push_homework"]),
    PushKind("lesson_cancelled", _BLOCK, LessonPush, _CHILD, _HOMEWORK, _S["push_timetable"]),
    PushKind("lesson_replaced", _BLOCK, LessonPush, _CHILD, _HOMEWORK,
             _S["push_replacements"]),
    # Queued without a student: the scope is what a trusted person needs to be sent it.
    PushKind("announcement", _BLOCK, AnnouncementPush, _SCHOOL, _HOMEWORK,
             _S["push_announcements"]),
    PushKind("trust_news", _BLOCK, TrustNewsPush, _ACCOUNT),
    PushKind("relink", _BLOCK, RelinkPush, _ACCOUNT),
    PushKind("invitation", _INTERACTIVE, InvitationPush, _ACCOUNT),
    # The digest and the chart that follows it go at the time the user chose, through quiet
    # hours; the chart is checked against its switch (and a muted child) when it goes.
    PushKind("digest", _INTERACTIVE, DigestPush, _ACCOUNT, quiet_hours=False),
    PushKind("week_chart", _OWN, WeekChartPush, _CHILD, _GRADES, _S["digest_chart"],
             quiet_hours=False),
    PushKind("teacher_message", _OWN, TeacherMessagePush, _ACCOUNT),
    PushKind("teacher_answer", _OWN, TeacherMessagePush, _ACCOUNT),
):
    register(_kind)


def reaches_students(switch: str) -> bool:
    """Whether any kind the switch silences is ever sent to a student's own account."""
    return any(k.to_students for k in KINDS.values()
               if k.switch is not None and k.switch.name == switch)


# -- an account's choices ----------------------------------------------------------------------
# The switches with their defaults. Digests, invitations and trust news always go.
FLAGS = {s.name: s.default for s in SWITCHES}


@dataclass(frozen=True)
class Preferences:
    """An account's choices (``account_settings``). Each switch above is a field of its name,
    its default the switch's (a test holds the two together)."""

    push_grades: bool = FLAGS["push_grades"]
    push_dots: bool = FLAGS["push_dots"]
    push_attendance: bool = FLAGS["push_attendance"]
    push_homework: bool = FLAGS["push_homework"]
    push_timetable: bool = FLAGS["push_timetable"]
    push_replacements: bool = FLAGS["push_replacements"]
    digest_enabled: bool = FLAGS["digest_enabled"]
    digest_empty: bool = FLAGS["digest_empty"]
    digest_time: str | None = None  # None: the instance default
    quiet_hours: str | None = None  # None: the instance default; '': none
    muted_children: frozenset[int] = field(default_factory=frozenset)
    push_announcements: bool = FLAGS["push_announcements"]
    digest_chart: bool = FLAGS["digest_chart"]  # a picture of each child's week after Friday's

    def allows(self, kind: str, student_id: int | None) -> bool:
        if student_id is not None and student_id in self.muted_children and kind in SWITCHED:
            return False
        flag = SWITCHED.get(kind)
        return flag is None or getattr(self, flag)


def from_row(row) -> Preferences:
    if row is None:
        return Preferences()
    values = {name: bool(row[name]) if row[name] is not None else default
              for name, default in FLAGS.items()}
    muted = frozenset(json.loads(row["muted_children"])) if row["muted_children"] else frozenset()
    return Preferences(**values, digest_time=row["digest_time"], quiet_hours=row["quiet_hours"],
                       muted_children=muted)
