"""The real bot under faults: the database locked past its busy timeout, a full disk, a second
poller, two senders in two processes. Whatever happens, every push arrives, and none twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.clock import to_db
from tests.support.botapi import FakeBotAPI
from tests.support.process import BotProcess, diary, env_for, school_now
from tests.support.school import EXAMPLE_ROSTER

PUSHES = 400
FIRST_CHAT = 900_000


def seed_pushes(path: Path, due: datetime, count: int = PUSHES,
                hold: bool = False) -> sqlite3.Connection | None:
    """``count`` accounts with one push each (a relink notice: no child needed), due at ``due``.

    With ``hold`` the write lock is taken again right after the commit, before a sender can
    claim anything, and the connection holding it is returned."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    stamp = to_db(due)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO accounts (telegram_id, chat_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?)",
        [(FIRST_CHAT + i, FIRST_CHAT + i, stamp, stamp) for i in range(count)])
    conn.executemany(
        "INSERT INTO outbox (telegram_id, kind, payload, dedup_key, created_at, not_before)"
        " VALUES (?, 'relink', '{}', ?, ?, ?)",
        [(FIRST_CHAT + i, f"fault:{i}", stamp, stamp) for i in range(count)])
    conn.execute("COMMIT")
    if hold:
        conn.execute("BEGIN IMMEDIATE")
        return conn
    conn.close()
    return None


def delivered(api: FakeBotAPI) -> list[int]:
    return [s.chat_id for s in api.sent
            if s.method == "sendmessage" and s.chat_id >= FIRST_CHAT]


async def wait_delivered(api: FakeBotAPI, count: int, within: float) -> float:
    """Seconds until ``count`` pushes went out; fails after ``within``."""
    started = time.monotonic()
    while len(delivered(api)) < count:
        if time.monotonic() - started > within:
            pytest.fail(f"{len(delivered(api))} of {count} pushes delivered in {within} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


def settled(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(
            "SELECT COUNT(*) FILTER (WHERE sent_at IS NOT NULL),"
            " COUNT(*) FILTER (WHERE sent_at IS NULL AND dropped_at IS NULL)"
            " FROM outbox WHERE kind = 'relink'").fetchone()
    finally:
        conn.close()


async def start_bot(env: dict[str, str], cwd: Path, api: FakeBotAPI) -> BotProcess:
    bot = BotProcess(env, cwd)
    bot.start()
    for _ in range(1200):  # importing aiogram takes seconds on a busy machine
        if any(method == "setmycommands" for method, _ in api.calls):
            return bot
        if bot.proc.poll() is not None:
            pytest.fail("the bot exited:\n" + bot.output())
        await asyncio.sleep(0.05)
    pytest.fail("the bot did not start:\n" + bot.output())


async def test_a_write_lock_longer_than_the_busy_timeout_loses_no_push(tmp_path, api):
    env = env_for(tmp_path, api.url) | {"SEND_RATE": "200"}
    db = tmp_path / "diary.sqlite3"
    assert diary(env, tmp_path, "roster", "import", str(EXAMPLE_ROSTER)).returncode == 0
    bot = await start_bot(env, tmp_path, api)
    try:
        # 400 pushes fall due (5 s after they are written: a write of the bot that slips in
        # before the lock finds nothing to claim yet) while another process holds the write
        # lock for over 20 s (the busy timeout is 15 s): the worker's claims fail with
        # "database is locked".
        holder = seed_pushes(db, school_now(bot) + timedelta(seconds=5), hold=True)
        assert holder is not None
        await asyncio.sleep(32)
        assert delivered(api) == []
        holder.execute("COMMIT")
        holder.close()
        took = await wait_delivered(api, PUSHES, within=60)
        assert took < 60
        await asyncio.sleep(1)
        assert sorted(delivered(api)) == [FIRST_CHAT + i for i in range(PUSHES)]
        assert api.duplicates() == []
        assert settled(db) == (PUSHES, 0)
    finally:
        bot.stop()
    # The bot met the lock past its busy timeout (the worker's own round, or another write
    # queued before it on the process's connection) and went on.
    log = bot.output()
    assert "OperationalError: database is locked" in log
    if "delivery paused" in log:
        assert "delivery resumed" in log


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB tmpfs of its own, so that filling it fills nothing else."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root: the full-disk test is skipped")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}):"
                    " the full-disk test is skipped")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write until the disk has no byte left."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_loses_no_push_and_delivery_resumes_when_space_returns(
        tmp_path, api, small_disk):
    db = small_disk / "diary.sqlite3"
    env = env_for(tmp_path, api.url) | {"SEND_RATE": "200", "DATABASE_PATH": str(db)}
    assert diary(env, tmp_path, "roster", "import", str(EXAMPLE_ROSTER)).returncode == 0
    bot = await start_bot(env, tmp_path, api)
    try:
        seed_pushes(db, school_now(bot) + timedelta(seconds=3))
        conn = sqlite3.connect(db, timeout=30)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the next write must grow the file
        conn.close()
        filler = fill(small_disk)
        await asyncio.sleep(10)
        assert delivered(api) == []
        filler.unlink()
        await wait_delivered(api, PUSHES, within=60)
        await asyncio.sleep(1)
        assert sorted(delivered(api)) == [FIRST_CHAT + i for i in range(PUSHES)]
        assert api.duplicates() == []
        assert settled(db) == (PUSHES, 0)
    finally:
        bot.stop()
    assert "database or disk is full" in bot.output()


async def test_a_second_bot_on_the_same_database_refuses_to_start(running, school_env, tmp_path):
    second = diary(school_env, tmp_path, "run")
    assert second.returncode == 1
    assert "another bot" in second.stderr and "already running" in second.stderr
    assert f"pid {running.proc.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert running.proc.poll() is None  # the first one goes on


async def test_two_sender_processes_never_send_the_same_row(school_env, tmp_path, api):
    seed_pushes(tmp_path / "diary.sqlite3", datetime.fromisoformat("2026-11-23T09:00:00+03:00"),
                count=300)
    # Three seconds of sending at this rate (each process keeps its own budget): the second
    # process is up long before the first could be done, even on a loaded machine.
    env = school_env | {"SEND_RATE": "50"}
    senders = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "jobs", "run", "deliver", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT) for _ in range(2)]
    outputs = [(await p.communicate())[0].decode() for p in senders]
    assert all(p.returncode == 0 for p in senders), outputs
    counts = [int(out.split("delivered ")[1].split()[0]) for out in outputs]
    assert sum(counts) == 300 and all(counts), outputs  # both took part, together sent each once
    assert sorted(delivered(api)) == [FIRST_CHAT + i for i in range(300)]
    assert api.duplicates() == []
