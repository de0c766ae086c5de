"""The diary's domain objects: frozen dataclasses and enums. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NewType

StudentId = NewType("StudentId", int)
GuardianId = NewType("GuardianId", int)
TelegramId = NewType("TelegramId", int)


class Role(StrEnum):
    GUARDIAN = "guardian"
    STUDENT = "student"
    TRUSTED = "trusted"


class Scope(StrEnum):
    """What a viewer may see of a child. Guardians and the student themself see everything."""

    GRADES = "grades"  # grades and dots
    ATTENDANCE = "attendance"
    HOMEWORK = "homework"  # homework and the timetable
    DIGEST = "digest"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


@dataclass(frozen=True)
class PersonName:
    last: str
    first: str
    middle: str = ""

    @property
    def short(self) -> str:
        """First name and surname, as a family would say it: «Иван Петров»."""
        return f"{self.first} {self.last}".strip()

    @property
    def full(self) -> str:
        return " ".join(p for p in (self.last, self.first, self.middle) if p)


@dataclass(frozen=True)
class Child:
    """A student as seen by one viewer, with the viewer's role and scopes for them."""

    id: StudentId
    name: PersonName
    class_name: str
    school: str
    role: Role
    scopes: frozenset[Scope] = ALL_SCOPES


@dataclass(frozen=True)
class Account:
    telegram_id: TelegramId
    chat_id: int
    locale: str | None
    language_code: str | None
    unreachable: bool


@dataclass(frozen=True)
class Viewer:
    """Who is asking: the account (if any) and every child it may see."""

    telegram_id: TelegramId
    account: Account | None
    children: tuple[Child, ...] = ()

    @property
    def is_linked(self) -> bool:
        return bool(self.children)

    @property
    def locale(self) -> str | None:
        return self.account.locale if self.account else None

    def child(self, student_id: int) -> Child | None:
        for child in self.children:
            if child.id == student_id:
                return child
        return None


@dataclass(frozen=True)
class LinkResult:
    """What a successful link did: the children now visible and whether anything was new."""

    children: tuple[Child, ...]
    new_links: int
    as_guardian: bool = False
    as_student: bool = False
    teacher_classes: tuple[str, ...] = ()  # the classes the account leads as a class teacher


@dataclass(frozen=True)
class IssuedCode:
    code: str  # in clear: shown once, to be handed over; only its hash is stored
    recipient: Role  # GUARDIAN or STUDENT
    recipient_name: PersonName
    student_external_id: str
    student_name: PersonName
    class_name: str
    relation: str
    expires_at: datetime


@dataclass(frozen=True)
class Status:
    students: int
    guardians: int
    classes: int
    accounts: int
    linked_accounts: int
    unreachable_accounts: int
    queue_depth: int
    oldest_undelivered: datetime | None
    last_import: dict[str, str] | None
    schema_version: str
    due_now: int = 0  # pending pushes whose time has come (not held by quiet hours or back-off)
    due_since: datetime | None = None  # the earliest moment one of them became due
    last_delivery: datetime | None = None  # the last time any sender delivered something
    workers: tuple[WorkerState, ...] = ()
    stalled: bool = False  # work has been due for a minute and nothing was delivered meanwhile
    paid_today: int = 0  # messages sent as paid broadcasts today (school time)


@dataclass(frozen=True)
class WorkerState:
    role: str
    owner: str
    started_at: datetime
    beat_at: datetime
    progress_at: datetime | None
    last_error: str | None
    messages: int = 0  # a sender's messages since it started
    rate_limited: int = 0  # 429s it met
    paid: int = 0  # paid broadcasts it sent
    sent_per_second: float = 0.0  # over its last heartbeat interval


# A school class: its year (1–11), a letter, and a group number: «7Б», «7 б», «07-Б», «7Б-1».
_CLASS = re.compile(r"^(\d{1,2})\s*-?\s*([А-ЯЁA-Z]?)(?:\s*-?\s*(\d))?$", re.IGNORECASE)


def normalize_class(raw: str) -> str | None:
    """The roster's spelling of a class name (``"07 б"`` -> ``"7Б"``, ``"7-б-1"`` ->
    ``"7Б-1"``), or None for what is not one."""
    m = _CLASS.match(raw.strip())
    if not m or not 1 <= int(m.group(1)) <= 11:
        return None
    number, letter, sub = m.group(1), m.group(2).upper(), m.group(3)
    return f"{int(number)}{letter}" + (f"-{sub}" if sub else "")


def class_key(name: str) -> str:
    """A class name as classes are stored: the roster's spelling (``"7 б"``, ``"07-Б"`` ->
    ``"7Б"``), else the name without spaces in capitals."""
    return normalize_class(name) or "".join(name.split()).upper()
