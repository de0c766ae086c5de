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
from core.services.outbox import Outbox
from core.services.preferences import PreferencesService
from core.services.roster import RosterService
from core.services.status import StatusService
from core.services.teachers import TeacherService
from core.services.timetable import TimetableService
from core.services.trusted import TrustService
from core.storage.db import Database, upgrade
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


@dataclass(frozen=True)
class Tuning:
    """Service settings that come from Settings; the defaults are the documented ones."""

    quiet_hours: str = "22:00-08:00"
    relevance_days: int = 3
    history_window: int = 60  # minutes
    rounding_threshold: float = 0.5
    dot_reminders: DotReminders = field(default_factory=DotReminders)
    attendance_hold: int = 60
    digest_time: str = "19:00"
    claim_lease: int = 60
    teacher_hours: str = "Mon-Fri 08:00-18:00"


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
    return Services(
        db=db,
        clock=clock,
        tz=tz,
        access=access,
        linking=LinkingService(db, hasher, clock, schedule),
        roster=RosterService(db, hasher, clock),
        status=StatusService(db, clock, tz),
        grades=GradesService(db, tuning.rounding_threshold),
        journal=JournalService(db, clock, tz, access, tuning.relevance_days, absence=absence,
                               attendance_hold=timedelta(seconds=tuning.attendance_hold),
                               history_window=timedelta(minutes=tuning.history_window)),
        outbox=Outbox(db, clock, tz, QuietHours.parse(tuning.quiet_hours),
                      lease=timedelta(seconds=tuning.claim_lease)),
        dots=DotsService(db, clock, tz, access, tuning.dot_reminders, tuning.relevance_days),
        timetable=timetable,
        preferences=PreferencesService(db, clock, schedule, tuning.quiet_hours),
        absence=absence,
        trusted=TrustService(db, hasher, clock, tz, schedule),
        digest=DigestService(db, clock, tz, tuning.digest_time),
        teachers=TeacherService(db, hasher, clock),
        conversations=ConversationService(db, clock, tz,
                                          WorkingHours.parse(tuning.teacher_hours)),
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Connect, migrate, build the services; close the database at the end."""
    db = await Database(settings.database).connect()
    try:
        await upgrade(db)
        tuning = Tuning(
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
        yield build_services(db, settings.secret(), settings.tz, clock=settings.clock(),
                             tuning=tuning)
    finally:
        await db.close()
