"""The storage adapter itself, on every backend: placeholders, rows, transactions, locking."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage import db as db_module
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


@pytest.fixture
def small_statements(monkeypatch):
    """Multi-row statements of two rows at most: a handful of rows takes several of them."""
    monkeypatch.setattr(db_module, "MAX_ROWS_PER_STATEMENT", 2)


async def test_executemany_count_counts_new_rows_and_skips_conflicts(db: Database,
                                                                     small_statements):
    insert = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING"
    async with db.transaction() as tx:
        assert await tx.executemany_count(insert, []) == 0
        assert await tx.executemany_count(insert, [("a", "1")]) == 1
        # In the table already, twice in the rows (the first one wins), new; across statements.
        rows = [("a", "x"), ("b", "2"), ("c", "3"), ("b", "y"), ("d", "4"), ("a", "z"),
                ("e", "5")]
        assert await tx.executemany_count(insert, rows) == 4
        assert await tx.executemany_count(insert, rows) == 0
    assert [tuple(r) for r in await db.fetchall("SELECT key, value FROM meta ORDER BY key")] == [
        ("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]


async def test_executemany_counts_every_kind_of_statement(db: Database, small_statements):
    async with db.transaction() as tx:
        await tx.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [(f"k{n}", str(n)) for n in range(5)])
        # An upsert that meets its own rows again: each row in turn, the last one wins.
        await tx.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [("k0", "a"), ("k9", "b"), ("k0", "c")])
        assert await tx.executemany_count("UPDATE meta SET value = value || ? WHERE key = ?",
                                          [("!", "k1"), ("!", "k2"), ("!", "none")]) == 2
        assert await tx.executemany_count("DELETE FROM meta WHERE key = :k",
                                          [{"k": "k3"}, {"k": "k4"}, {"k": "none"}]) == 2
    assert [tuple(r) for r in await db.fetchall("SELECT key, value FROM meta ORDER BY key")] == [
        ("k0", "c"), ("k1", "1!"), ("k2", "2!"), ("k9", "b")]


async def test_rows_of_one_executemany_are_numbered_in_their_order(db: Database,
                                                                   small_statements):
    names = [f"School {n}" for n in (5, 1, 4, 2, 3)]
    async with db.transaction() as tx:
        await tx.executemany("INSERT INTO schools (name) VALUES (?)", [(n,) for n in names])
    assert [r[0] for r in await db.fetchall("SELECT name FROM schools ORDER BY id")] == names


async def test_literals_in_a_row_of_values_stay_as_they_are(db: Database, small_statements):
    async with db.transaction() as tx:
        assert await tx.executemany_count(
            "INSERT INTO meta (key, value) VALUES (?, 'it''s 50% (a ?: b)')"
            " ON CONFLICT DO NOTHING", [("x",), ("y",), ("z",), ("x",)]) == 3
    assert {r[0] for r in await db.fetchall("SELECT DISTINCT value FROM meta")} == {
        "it's 50% (a ?: b)"}


def test_which_statements_go_as_multi_row_inserts():
    shape = db_module._rows_shape(
        "INSERT INTO t (a, b, c) VALUES (?, 'x?,)', ?) ON CONFLICT DO NOTHING")
    assert shape is not None and shape.width == 2
    assert db_module._rows_statement(shape, 2) == (
        "INSERT INTO t (a, b, c) VALUES ($1, 'x?,)', $2), ($3, 'x?,)', $4)"
        " ON CONFLICT DO NOTHING")
    for each_row_alone in (
            "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO UPDATE SET a = excluded.a",
            "INSERT INTO t (a) VALUES (?) RETURNING id",
            "INSERT INTO t (a) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM t)",
            "INSERT INTO t (a, b) VALUES (?, 1) ON CONFLICT (a) WHERE b = ? DO NOTHING",
            "INSERT INTO t VALUES (?, ?)",
            "UPDATE t SET a = ? WHERE id = ?",
            "INSERT INTO t (a) VALUES (1)"):
        assert db_module._rows_shape(each_row_alone) is None, each_row_alone


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


def test_in_lists_take_a_few_statement_texts_whatever_their_length():
    from core.storage.db import in_list

    assert in_list([7]) == ("?", [7])
    assert in_list([1, 2, 3]) == ("?, ?, ?, ?", [1, 2, 3, 3])
    texts = {in_list(list(range(n)))[0] for n in range(1, 1001)}
    assert len(texts) == 11  # 1, 2, 4 … 1024
    with pytest.raises(ValueError):
        in_list([])


async def test_a_padded_not_in_list_still_excludes_only_its_values(db):
    from core.storage.db import in_list

    async with db.transaction() as tx:
        await tx.execute("CREATE TABLE t (v INTEGER)")
        await tx.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(6)])
    marks, values = in_list([1, 2, 3])
    rows = await db.fetchall(f"SELECT v FROM t WHERE v NOT IN ({marks}) ORDER BY v", values)
    assert [r[0] for r in rows] == [0, 4, 5]
