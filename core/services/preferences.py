"""Per-account choices (account_settings); NULL columns mean the defaults. What they are
(``Preferences``, read by the outbox at send time too) is in core/pushes.py with the switches."""

from __future__ import annotations

import json
from datetime import datetime, time
from zoneinfo import ZoneInfo

from core.clock import Clock
from core.pushes import FLAGS, Preferences, from_row
from core.quiet import QuietHours
from core.services.digest_due import DigestSchedule
from core.services.outbox import release_held
from core.storage.db import Database, Tx

__all__ = ["DIGEST_TIMES", "FLAGS", "QUIET_CHOICES", "Preferences", "PreferencesService",
           "from_row"]

# Settings that decide when the account's next digest is due.
DIGEST_FLAGS = ("digest_enabled",)
QUIET_CHOICES = ("22:00-08:00", "21:00-07:00", "23:00-07:00", "")
DIGEST_TIMES = ("17:00", "18:00", "19:00", "20:00", "21:00")


class PreferencesService:
    """Reads and changes an account's choices. A change of the digest's switch, time or
    children works out the account's next digest moment again in the same transaction."""

    def __init__(self, db: Database, clock: Clock, schedule: DigestSchedule,
                 default_quiet: str) -> None:
        self.db = db
        self.clock = clock
        self.schedule = schedule
        self.default_quiet = default_quiet
        self.default_digest_time = schedule.default_time

    async def _digest_changed(self, tx: Tx, telegram_id: int) -> None:
        await self.schedule.refresh(tx, [telegram_id], self.clock.now())

    def quiet_of(self, prefs: Preferences) -> str:
        return prefs.quiet_hours if prefs.quiet_hours is not None else self.default_quiet

    def digest_time_of(self, prefs: Preferences) -> str:
        return prefs.digest_time or self.default_digest_time

    async def get(self, telegram_id: int) -> Preferences:
        row = await self.db.fetchone(
            "SELECT * FROM account_settings WHERE telegram_id = ?", (telegram_id,))
        return from_row(row)

    async def _set(self, telegram_id: int, column: str, value: object) -> Preferences:
        async with self.db.transaction() as tx:
            if not await tx.scalar("SELECT 1 FROM accounts WHERE telegram_id = ?",
                                   (telegram_id,)):
                return Preferences()
            await tx.execute(
                f"INSERT INTO account_settings (telegram_id, {column}) VALUES (?, ?)"
                f" ON CONFLICT (telegram_id) DO UPDATE SET {column} = excluded.{column}",
                (telegram_id, value))
            if column in DIGEST_FLAGS or column == "digest_time":
                await self._digest_changed(tx, telegram_id)
        return await self.get(telegram_id)

    async def set_flag(self, telegram_id: int, name: str, value: bool) -> Preferences:
        if name not in FLAGS:
            raise ValueError(name)
        return await self._set(telegram_id, name, int(value))

    async def toggle_flag(self, telegram_id: int, name: str) -> Preferences:
        """Flip a switch in one statement, so two quick taps flip it twice."""
        if name not in FLAGS:
            raise ValueError(name)
        async with self.db.transaction() as tx:
            if not await tx.scalar("SELECT 1 FROM accounts WHERE telegram_id = ?",
                                   (telegram_id,)):
                return Preferences()
            await tx.execute(
                f"INSERT INTO account_settings (telegram_id, {name}) VALUES (?, ?)"
                f" ON CONFLICT (telegram_id) DO UPDATE SET"
                f" {name} = 1 - COALESCE(account_settings.{name}, ?)",
                (telegram_id, int(not FLAGS[name]), int(FLAGS[name])))
            if name in DIGEST_FLAGS:
                await self._digest_changed(tx, telegram_id)
        return await self.get(telegram_id)

    async def set_digest_time(self, telegram_id: int, value: str) -> Preferences:
        hours, _, minutes = value.partition(":")
        time(int(hours), int(minutes))  # raises ValueError for a bad time
        return await self._set(telegram_id, "digest_time", f"{int(hours):02d}:{int(minutes):02d}")

    async def set_quiet_hours(self, telegram_id: int, value: str, now: datetime,
                              tz: ZoneInfo) -> Preferences:
        """Change the window; pushes it no longer covers go at once (or when the new one ends),
        in the same transaction."""

        new = QuietHours.parse(value)  # raises ValueError for a bad window
        async with self.db.transaction() as tx:
            if not await tx.scalar("SELECT 1 FROM accounts WHERE telegram_id = ?",
                                   (telegram_id,)):
                return Preferences()
            row = await tx.fetchone(
                "SELECT * FROM account_settings WHERE telegram_id = ?", (telegram_id,))
            old = QuietHours.parse(self.quiet_of(from_row(row)))
            await tx.execute(
                "INSERT INTO account_settings (telegram_id, quiet_hours) VALUES (?, ?)"
                " ON CONFLICT (telegram_id) DO UPDATE SET quiet_hours = excluded.quiet_hours",
                (telegram_id, value))
            held_until = old.release_at(now, tz) if old else None
            if held_until is not None:
                release = new.release_at(now, tz) if new else None
                if release is None or release < held_until:
                    await release_held(tx, telegram_id, held_until, release or now)
        return await self.get(telegram_id)

    async def toggle_child(self, telegram_id: int, student_id: int) -> Preferences:
        async with self.db.transaction() as tx:
            await tx.lock("settings", telegram_id)  # two taps at once: both count
            if not await tx.scalar("SELECT 1 FROM accounts WHERE telegram_id = ?",
                                   (telegram_id,)):
                return Preferences()
            raw = await tx.scalar(
                "SELECT muted_children FROM account_settings WHERE telegram_id = ?",
                (telegram_id,))
            muted = set(json.loads(raw) if raw else []) ^ {student_id}
            await tx.execute(
                "INSERT INTO account_settings (telegram_id, muted_children) VALUES (?, ?)"
                " ON CONFLICT (telegram_id) DO UPDATE SET muted_children = excluded.muted_children",
                (telegram_id, json.dumps(sorted(muted))))
            # A child heard about again may make today's digest due again.
            await self._digest_changed(tx, telegram_id)
        return await self.get(telegram_id)
