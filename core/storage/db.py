"""The aiosqlite adapter: one connection per process, WAL, foreign keys, explicit transactions.

Every use-case's writes run inside one ``transaction()``: ``BEGIN IMMEDIATE`` takes SQLite's write
lock up front, so two processes (the bot and an import) serialize cleanly instead of failing
half-way. Within a process an asyncio lock keeps coroutines from interleaving on the connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> Database:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA busy_timeout = 15000")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Database:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not connected")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """All-or-nothing: commits when the block ends, rolls back on any exception."""
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self.conn)
                await self.conn.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        """Roll back after a failure without hiding it: SQLite may already have rolled back by
        itself (a full disk, an I/O error), and then ROLLBACK fails with "no transaction is
        active" — that second error must not replace the cause."""
        if not self.conn.in_transaction:
            return
        try:
            await self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A consistent snapshot for several reads (a deferred transaction)."""
        async with self._lock:
            await self.conn.execute("BEGIN")
            try:
                yield Tx(self.conn)
            finally:
                if self.conn.in_transaction:  # SQLite may have ended it after an error
                    await self.conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            cur = await self.conn.execute(sql, params)
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._lock:
            cur = await self.conn.execute(sql, params)
            return await cur.fetchone()

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class Tx:
    """The connection as seen inside a transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        return await self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def executemany_count(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """executemany, returning how many rows the statements changed in all."""
        cur = await self.conn.executemany(sql, rows)
        return max(0, cur.rowcount)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        cur = await self.conn.execute(sql, params)
        return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        cur = await self.conn.execute(sql, params)
        return await cur.fetchone()

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self.conn.execute(sql, params)
        return int(cur.lastrowid or 0)


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (triggers included)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf[:80]!r}")
    return statements


def available_migrations() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append((int(number), name, path))
    return found


async def upgrade(db: Database) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction. Idempotent."""
    await db.conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
    )
    applied = {row[0] for row in await db.fetchall("SELECT version FROM schema_migrations")}
    done: list[str] = []
    for number, name, path in available_migrations():
        if number in applied:
            continue
        async with db.transaction() as tx:
            # Re-check under the write lock: another process may have just applied it.
            if await tx.scalar("SELECT 1 FROM schema_migrations WHERE version = ?", (number,)):
                continue
            for statement in split_statements(path.read_text(encoding="utf-8")):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (number, name)
            )
        done.append(f"{number:04d}_{name}")
    return done


async def schema_version(db: Database) -> int:
    try:
        return int(await db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
    except sqlite3.OperationalError:
        return 0


async def pending_migrations(db: Database) -> list[int]:
    current = await schema_version(db)
    return [n for n, _, _ in available_migrations() if n > current]
