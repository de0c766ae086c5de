"""One process of a kind per database: one poller (Telegram allows one `getUpdates` loop per
token), one acting scheduler.

The process holds a lock for as long as it runs:

- SQLite: an exclusive ``flock`` on a file beside the database (``<db>.<name>.lock``). The kernel
  releases it when the process ends however it ends (kill -9 included), so a restart or a waiting
  stand-by never waits for a stale lock.
- PostgreSQL (the poller): a session-level advisory lock (``pg_try_advisory_lock``) on a
  connection of its own. The server releases it when that connection ends, which the end of the
  process (kill -9 included) does too.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from core.storage.db import Database, advisory_key, server_settings


class AlreadyRunning(Exception):
    """Another process polls for this database."""

    def __init__(self, what: str, holder: str) -> None:
        super().__init__(what)
        self.what = what
        self.holder = holder


class ProcessLock:
    def __init__(self, database_path: Path, name: str) -> None:
        self.path = Path(f"{database_path}.{name}.lock")
        self._fd: int | None = None

    def acquire(self) -> ProcessLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(self.path.name, f"pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> ProcessLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@asynccontextmanager
async def postgres_lock(url: str, name: str) -> AsyncIterator[None]:
    """Hold PostgreSQL's advisory lock ``name`` of this database (and schema) while the block
    runs; the holder's host and pid are visible to a second one as its application_name."""
    db = Database(url)
    dsn, settings = server_settings(db.url)
    key = advisory_key(name, db.display(), settings.get("search_path", ""))
    label = f"diary {name}"
    me = f"{label} {socket.gethostname()}:{os.getpid()}"
    conn = await asyncpg.connect(
        dsn.set(drivername="postgresql").render_as_string(hide_password=False),
        server_settings={**settings, "application_name": me})
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            holder = await conn.fetchval(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a"
                " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1",
                (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)
            raise AlreadyRunning(f"the {name}'s advisory lock",
                                 (holder or "?").removeprefix(label).strip() or "?")
        yield
    finally:
        await conn.close()  # ends the session: the lock goes with it


@asynccontextmanager
async def process_lock(name: str, database: str, sqlite_path: Path | None
                       ) -> AsyncIterator[None]:
    """The lock of the one ``name`` process of this database (``poller``, ``scheduler``);
    raises ``AlreadyRunning`` if another holds it."""
    if sqlite_path is not None:
        with ProcessLock(sqlite_path, name):
            yield
    else:
        async with postgres_lock(database, name):
            yield


def poller_lock(database: str, sqlite_path: Path | None):
    """The poller's lock for this database; raises ``AlreadyRunning`` if another holds it."""
    return process_lock("poller", database, sqlite_path)
