"""Bearer tokens of the HTTP ingestion API, one or more per source school.

A token is shown once, when it is issued; the database keeps only its keyed hash (HMAC-SHA256
with the instance secret, as phones and link codes), so a copy of the database lets no one in.
A token names the school whose journal system holds it (the school's name as the roster spells
it): what it sends may be about that school's children only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import Clock, from_db, to_db
from core.identity import API_TOKEN_PREFIX, Hasher, new_api_token
from core.storage.db import Database

# ``last_used_at`` is written at most this often per token and process: a busy journal system
# does not turn every request into one more write.
TOUCH_EVERY = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class ApiToken:
    id: int
    school: str
    note: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def school_name(text: str) -> str:
    """A school's name as the roster keeps it: spaces collapsed."""
    return " ".join(text.split())


def _token(row) -> ApiToken:
    return ApiToken(
        id=row["id"], school=row["school"], note=row["note"],
        created_at=from_db(row["created_at"]),
        last_used_at=from_db(row["last_used_at"]) if row["last_used_at"] else None,
        revoked_at=from_db(row["revoked_at"]) if row["revoked_at"] else None,
    )


class ApiTokens:
    def __init__(self, db: Database, hasher: Hasher, clock: Clock) -> None:
        self.db = db
        self.hasher = hasher
        self.clock = clock
        self._touched: dict[int, datetime] = {}

    async def issue(self, school: str, note: str | None = None) -> tuple[ApiToken, str]:
        """A new token for ``school``: its record and the token itself (shown once)."""
        token = new_api_token()
        now = self.clock.now()
        note = " ".join(note.split()) if note and note.strip() else None
        async with self.db.transaction() as tx:
            token_id = await tx.insert(
                "INSERT INTO api_tokens (school, note, token_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (school_name(school), note, self.hasher.api_token(token), to_db(now)))
        return ApiToken(token_id, school_name(school), note, from_db(to_db(now)), None,
                        None), token

    async def listing(self) -> list[ApiToken]:
        rows = await self.db.fetchall(
            "SELECT id, school, note, created_at, last_used_at, revoked_at FROM api_tokens"
            " ORDER BY id")
        return [_token(r) for r in rows]

    async def revoke(self, token_id: int) -> ApiToken | None:
        """Revoke a token at once; the record as it is now (None: no such token). Revoking a
        revoked token changes nothing."""
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?"
                             " AND revoked_at IS NULL", (to_db(self.clock.now()), token_id))
            row = await tx.fetchone(
                "SELECT id, school, note, created_at, last_used_at, revoked_at FROM api_tokens"
                " WHERE id = ?", (token_id,))
        return _token(row) if row is not None else None

    async def schools(self) -> list[str]:
        """The schools on the roster, by name."""
        return [r[0] for r in await self.db.fetchall("SELECT name FROM schools ORDER BY name")]

    async def authenticate(self, token: str) -> ApiToken | None:
        """The live token ``token`` is, or None (unknown, malformed or revoked)."""
        token = token.strip()
        if not token.startswith(API_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            return None
        row = await self.db.fetchone(
            "SELECT id, school, note, created_at, last_used_at, revoked_at FROM api_tokens"
            " WHERE token_hash = ? AND revoked_at IS NULL", (self.hasher.api_token(token),))
        if row is None:
            return None
        found = _token(row)
        await self._touch(found)
        return found

    async def _touch(self, token: ApiToken) -> None:
        now = self.clock.now()
        last = self._touched.get(token.id) or token.last_used_at
        if last is not None and now - last < TOUCH_EVERY:
            return
        self._touched[token.id] = now
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                             (to_db(now), token.id))
