"""aiogram FSM storage in SQLite, so a conversation survives a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

from core.clock import Clock, to_db
from core.storage.db import Database


def storage_key(key: StorageKey) -> str:
    # chat and user ids sit between colons so an account's rows can be found by its id.
    parts = [str(key.bot_id), str(key.chat_id), str(key.user_id), key.destiny]
    if key.thread_id:
        parts.append(f"t{key.thread_id}")
    if key.business_connection_id:
        parts.append(f"b{key.business_connection_id}")
    return ":".join(parts)


class SQLiteStorage(BaseStorage):
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _now(self) -> str:
        return to_db(self.clock.now())

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO fsm_state (key, state, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET state = excluded.state,"
                " updated_at = excluded.updated_at",
                (storage_key(key), value, self._now()),
            )

    async def get_state(self, key: StorageKey) -> str | None:
        return await self.db.scalar(
            "SELECT state FROM fsm_state WHERE key = ?", (storage_key(key),)
        )

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO fsm_state (key, data, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET data = excluded.data,"
                " updated_at = excluded.updated_at",
                (storage_key(key), json.dumps(dict(data), ensure_ascii=False), self._now()),
            )

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        raw = await self.db.scalar(
            "SELECT data FROM fsm_state WHERE key = ?", (storage_key(key),)
        )
        return json.loads(raw) if raw else {}

    async def close(self) -> None:
        # The database belongs to the composition root, which closes it.
        return None
