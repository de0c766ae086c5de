"""Domain errors. They carry a code and data, never user-facing text: the front end words them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


class DomainError(Exception):
    code: str = "domain_error"

    def __init__(self, **data: object) -> None:
        super().__init__(self.code, data)
        self.data = data


class AccessDenied(DomainError):
    """The viewer may not see or act on this child (or the object does not exist for them)."""

    code = "access_denied"


class NotLinked(DomainError):
    code = "not_linked"


class ContactNotOwn(DomainError):
    """A shared contact card that is not the sender's own (forwarded or typed in)."""

    code = "contact_not_own"


class PhoneInvalid(DomainError):
    code = "phone_invalid"


class PhoneNotFound(DomainError):
    """The number is not in the school's records. Says nothing about which children exist."""

    code = "phone_not_found"


class LinkCodeInvalid(DomainError):
    """Unknown, already used, or revoked code. Deliberately one error for all three."""

    code = "link_code_invalid"


class LinkCodeExpired(DomainError):
    code = "link_code_expired"


class CodeEntryLocked(DomainError):
    code = "code_entry_locked"

    def __init__(self, until: datetime) -> None:
        super().__init__(until=until)
        self.until = until


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file: ``FILE:LINE: field: message``."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class InputInvalid(DomainError):
    """An input file failed validation; nothing was written."""

    code = "input_invalid"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(count=len(problems))
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class UnknownStudent(DomainError):
    code = "unknown_student"


class InvalidDateRange(DomainError):
    """A date outside what may be filed, or an end before the start."""

    code = "invalid_date_range"


class NoticeOverlap(DomainError):
    """An active notice already covers part of this period."""

    code = "notice_overlap"

    def __init__(self, start: date, end: date, reason: str) -> None:
        super().__init__(start=start, end=end, reason=reason)
        self.start, self.end, self.reason = start, end, reason


class CommentTooLong(DomainError):
    code = "comment_too_long"


class NoticeNotCancellable(DomainError):
    """Not this family's notice, already cancelled, or already begun."""

    code = "notice_not_cancellable"


class InvitationInvalid(DomainError):
    """Unknown, decided, expired, or meant for another number."""

    code = "invitation_invalid"


class TooManyTrusted(DomainError):
    code = "too_many_trusted"


class NameInvalid(DomainError):
    code = "name_invalid"


class SelfInvitation(DomainError):
    code = "self_invitation"


class DemoRefused(DomainError):
    """The database holds a real school's data: demo mode never runs on it."""

    code = "demo_refused"


class NoClassTeacher(DomainError):
    """The child's class has no class teacher in teachers.csv."""

    code = "no_class_teacher"


class TeacherNotConnected(DomainError):
    """The class teacher has not linked a Telegram account to the bot yet."""

    code = "teacher_not_connected"


class MessageTooLong(DomainError):
    code = "message_too_long"

    def __init__(self, limit: int, length: int) -> None:
        super().__init__(limit=limit, length=length)
        self.limit = limit
        self.length = length
