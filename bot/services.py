"""The core services one process uses, built once by the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from core.clock import Clock, SystemClock
from core.identity import Hasher
from core.quiet import QuietHours
from core.services.absence import AbsenceService
from core.services.access import AccessService
from core.services.conversations import ConversationService
from core.services.digest import DigestService
from core.services.digest_due import DigestSchedule
from core.services.dots import DotReminders, DotsService
from core.services.grades import GradesService
from core.services.journal import JournalService
from core.services.linking import LinkingService
from core.services.outbox import Doorbell, Outbox
from core.services.preferences import PreferencesService
from core.services.roster import RosterService
from core.services.status import StatusService
from core.services.teachers import TeacherService
from core.services.timetable import TimetableService
from core.services.trusted import TrustService
from core.storage.db import Database
from core.storage.migrate import upgrade
from core.worktime import WorkingHours


@dataclass
class Services:
    db: Database
    clock: Clock
    tz: ZoneInfo
    access: AccessService
    linking: LinkingService
    roster: RosterService
    status: StatusService
    grades: GradesService
    journal: JournalService
    outbox: Outbox
    dots: DotsService
    timetable: TimetableService
    preferences: PreferencesService
    absence: AbsenceService
    trusted: TrustService
    digest: DigestService
    teachers: TeacherService
    conversations: ConversationService
    doorbell: Doorbell  # rung by what queues pushes here; this process's sender waits on it

    def workflow_data(self) -> dict[str, Any]:
        """What handlers receive as parameters, by name."""
        return {
            "tz": self.tz,
            "clock": self.clock,
            "access": self.access,
            "linking": self.linking,
            "grades": self.grades,
            "dots": self.dots,
            "timetable": self.timetable,
            "preferences": self.preferences,
            "absence": self.absence,
            "trusted": self.trusted,
            "digest": self.digest,
            "conversations": self.conversations,
        }


def _default(name: str) -> Any:
    """A setting's documented default (bot/config.py): the one place defaults are written."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class Tuning:
    """The service settings of Settings; a field left out is the setting's default."""

    quiet_hours: str = _default("quiet_hours")
    relevance_days: int = _default("relevance_days")
    history_window: int = _default("history_window_minutes")  # minutes
    rounding_threshold: float = _default("rounding_threshold")
    dot_reminders: DotReminders = field(default_factory=lambda: DotReminders(
        _default("dot_remind_student_days_before"), _default("dot_remind_student_last_day"),
        _default("dot_remind_parent_last_day")))
    attendance_hold: int = _default("attendance_hold_seconds")
    digest_time: str = _default("digest_time")
    claim_lease: int = _default("claim_lease_seconds")  # seconds
    teacher_hours: str = _default("teacher_hours")

    @classmethod
    def of(cls, settings: Settings) -> Tuning:
        return cls(
            quiet_hours=settings.quiet_hours,
            relevance_days=settings.relevance_days,
            history_window=settings.history_window_minutes,
            rounding_threshold=settings.rounding_threshold,
            attendance_hold=settings.attendance_hold_seconds,
            digest_time=settings.digest_time,
            claim_lease=settings.claim_lease_seconds,
            teacher_hours=settings.teacher_hours,
            dot_reminders=DotReminders(
                student_days_before=settings.dot_remind_student_days_before,
                student_last_day=settings.dot_remind_student_last_day,
                parent_last_day=settings.dot_remind_parent_last_day,
            ),
        )


def build_services(
    db: Database,
    secret: bytes,
    tz: ZoneInfo,
    clock: Clock | None = None,
    tuning: Tuning | None = None,
) -> Services:
    clock = clock or SystemClock()
    tuning = tuning or Tuning()
    hasher = Hasher(secret)
    access = AccessService(db)
    absence = AbsenceService(db, clock, tz)
    timetable = TimetableService(db, clock, tz)
    # When each account's next digest is due: kept by the services that change what decides it.
    schedule = DigestSchedule(tz, tuning.digest_time)
    # What queues pushes in this process rings it; this process's sender waits on it.
    doorbell = Doorbell()
    return Services(
        db=db,
        clock=clock,
        tz=tz,
        access=access,
        linking=LinkingService(db, hasher, clock, schedule),
        roster=RosterService(db, hasher, clock),
        status=StatusService(db, clock, tz),
        grades=GradesService(db, tuning.rounding_threshold),
        journal=JournalService(db, clock, tz, access, relevance_days=tuning.relevance_days,
                               absence=absence,
                               attendance_hold=timedelta(seconds=tuning.attendance_hold),
                               history_window=timedelta(minutes=tuning.history_window),
                               on_queued=doorbell.ring),
        outbox=Outbox(db, clock, tz, QuietHours.parse(tuning.quiet_hours),
                      timedelta(seconds=tuning.claim_lease)),
        dots=DotsService(db, clock, tz, access, tuning.dot_reminders, tuning.relevance_days),
        timetable=timetable,
        preferences=PreferencesService(db, clock, schedule, tuning.quiet_hours),
        absence=absence,
        trusted=TrustService(db, hasher, clock, tz, schedule),
        digest=DigestService(db, clock, tz, tuning.digest_time),
        teachers=TeacherService(db, hasher, clock),
        conversations=ConversationService(db, clock, tz,
                                          WorkingHours.parse(tuning.teacher_hours)),
        doorbell=doorbell,
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Connect, migrate, build the services; close the database at the end."""
    db = await Database(settings.database).connect()
    try:
        await upgrade(db)
        tuning = Tuning.of(settings)
        yield build_services(db, settings.secret(), settings.tz, clock=settings.clock(),
                             tuning=tuning)
    finally:
        await db.close()
