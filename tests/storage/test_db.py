"""The storage adapter itself, on every backend: placeholders, rows, transactions, locking."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage.db import Database, database_url


async def test_rows_answer_by_name_and_by_position(db: Database):
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("a", "1"))
    row = await db.fetchone("SELECT key, value AS Shown FROM meta")
    assert row[0] == "a" and row["key"] == "a" and row["shown"] == "1" and row["SHOWN"] == "1"
    assert dict(row) == {"key": "a", "shown": "1"} and tuple(row) == ("a", "1")
    with pytest.raises(IndexError):
        row["missing"]


async def test_placeholders_named_binds_and_colons_in_literals(db: Database):
    async with db.transaction() as tx:
        await tx.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [("k1", "08:30"), ("k2", "a ? b")])
        await tx.execute("INSERT INTO meta (key, value) VALUES (:k, :v)", {"k": "k3", "v": "x"})
    assert await db.scalar("SELECT value FROM meta WHERE value = '08:30' AND key = ?",
                           ("k1",)) == "08:30"
    assert await db.scalar("SELECT key FROM meta WHERE value = 'a ? b'") == "k2"
    assert await db.scalar("SELECT value || ':' || ? FROM meta WHERE key = ?",
                           ("y", "k3")) == "x:y"
    assert await db.scalar("SELECT value || ':' || :tail FROM meta WHERE key = :k",
                           {"k": "k3", "tail": "z"}) == "x:z"
    assert [r["key"] for r in await db.fetchall("SELECT key FROM meta ORDER BY key")] == [
        "k1", "k2", "k3"]


async def test_insert_returns_the_new_id_and_sums_are_plain_numbers(db: Database):
    async with db.transaction() as tx:
        first = await tx.insert("INSERT INTO schools (name) VALUES (?)", ("A",))
        second = await tx.insert("INSERT INTO schools (name) VALUES (?)", ("B",))
    assert second == first + 1
    total = await db.scalar("SELECT SUM(id) FROM schools")
    assert total == first + second and type(total) is int
    assert await db.scalar("SELECT AVG(id) FROM schools") == pytest.approx(first + 0.5)


async def test_a_transaction_is_all_or_nothing(db: Database):
    with pytest.raises(RuntimeError, match="half-way"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('kept', 'no')")
            raise RuntimeError("half-way")
    assert await db.scalar("SELECT COUNT(*) FROM meta") == 0
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
    assert await db.scalar("SELECT value FROM meta") == "yes"


async def test_a_failed_rollback_does_not_hide_the_cause(db: Database, monkeypatch):
    async def broken(self):
        raise OSError("connection lost")

    monkeypatch.setattr(AsyncConnection, "rollback", broken)
    with pytest.raises(ValueError, match="the cause"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
            raise ValueError("the cause")


async def test_tables_lists_the_schema(db: Database):
    tables = await db.tables()
    assert {"accounts", "outbox", "grades", "alembic_version"} <= tables
    assert "sqlite_sequence" not in tables


async def test_transactions_of_one_process(db: Database):
    """SQLite: one after the other on the one connection. PostgreSQL: at the same time, each
    on a connection of its own."""
    first_open = asyncio.Event()
    second_done = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('first', '1')")
            first_open.set()
            if db.is_sqlite:
                for _ in range(50):
                    await asyncio.sleep(0)
                assert not second_done.is_set()
            else:
                await asyncio.wait_for(second_done.wait(), timeout=30)
            order.append("first")

    async def second() -> None:
        await first_open.wait()
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES ('second', '2')")
        order.append("second")
        second_done.set()

    await asyncio.gather(first(), second())
    assert order == (["first", "second"] if db.is_sqlite else ["second", "first"])
    assert await db.scalar("SELECT COUNT(*) FROM meta") == 2


async def test_a_sqlite_write_transaction_takes_the_write_lock_at_once(tmp_path):
    path = tmp_path / "lock.sqlite3"
    async with Database(f"sqlite:///{path}") as db:
        async with db.transaction():
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
        pragmas = {name: await db.scalar(f"PRAGMA {name}")
                   for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 15000,
                       "synchronous": 1}


def test_database_urls():
    assert database_url("data/x.sqlite3").render_as_string() == "sqlite+aiosqlite:///data/x.sqlite3"
    assert database_url("sqlite:///data/x.sqlite3").drivername == "sqlite+aiosqlite"
    url = database_url("postgresql://u:secret@db:5433/diary")
    assert url.drivername == "postgresql+asyncpg" and url.password == "secret"
    assert Database("postgresql://u:secret@db/diary").display() == (
        "postgresql+asyncpg://u:***@db/diary")
    with pytest.raises(ValueError, match="unsupported"):
        database_url("mysql://u@db/diary")
