"""Per-account notification choices (account_settings); NULL columns mean the defaults."""

from __future__ import annotations

from dataclasses import dataclass

from core.storage.db import Database

FLAGS = {"push_homework": False, "push_timetable": True}


@dataclass(frozen=True)
class Preferences:
    push_homework: bool = FLAGS["push_homework"]
    push_timetable: bool = FLAGS["push_timetable"]


class PreferencesService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, telegram_id: int) -> Preferences:
        row = await self.db.fetchone(
            "SELECT push_homework, push_timetable FROM account_settings WHERE telegram_id = ?",
            (telegram_id,))
        if row is None:
            return Preferences()
        return Preferences(**{
            name: bool(row[name]) if row[name] is not None else default
            for name, default in FLAGS.items()
        })

    async def set_flag(self, telegram_id: int, name: str, value: bool) -> Preferences:
        if name not in FLAGS:
            raise ValueError(name)
        async with self.db.transaction() as tx:
            if not await tx.scalar("SELECT 1 FROM accounts WHERE telegram_id = ?",
                                   (telegram_id,)):
                return Preferences()
            await tx.execute(
                f"INSERT INTO account_settings (telegram_id, {name}) VALUES (?, ?)"
                f" ON CONFLICT (telegram_id) DO UPDATE SET {name} = excluded.{name}",
                (telegram_id, int(value)))
        return await self.get(telegram_id)
