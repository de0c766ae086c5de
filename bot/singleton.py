"""One process of a kind per database: one poller (Telegram allows one `getUpdates` loop per
token), one acting scheduler.

The process holds an exclusive ``flock`` on a file beside the database (``<db>.<name>.lock``) for
as long as it runs. The kernel releases it when the process ends however it ends (kill -9
included), so a restart or a waiting stand-by never waits for a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process polls for this database."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(str(path))
        self.path = path
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
            raise AlreadyRunning(self.path, holder) from None
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


class PollerLock(ProcessLock):
    def __init__(self, database_path: Path) -> None:
        super().__init__(database_path, "poller")
