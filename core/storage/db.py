"""The storage adapter: SQLAlchemy Core in async mode over SQLite (aiosqlite) or PostgreSQL
(asyncpg), behind the small API the services use.

Every use-case's writes run inside one ``transaction()``, all or nothing.

- **SQLite** (the embedded default): one connection per process, WAL, foreign keys on,
  ``busy_timeout`` 15 s. A write transaction starts with ``BEGIN IMMEDIATE``, which takes
  SQLite's write lock up front, so two processes (the bot and an import) serialize cleanly instead
  of failing half-way. Within a process an asyncio lock keeps coroutines from interleaving on the
  connection.
- **PostgreSQL**: a pool of connections; every transaction runs on its own connection, so
  transactions of one process run concurrently.

The services write SQL with ``?`` placeholders (or ``:name`` with a mapping); the adapter turns
them into bound parameters. Rows answer both ``row["name"]`` and ``row[0]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import TextClause

log = logging.getLogger(__name__)

Params = Sequence[Any] | Mapping[str, Any]

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# SQLite waits this long for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 15000


class Row(tuple):
    """A result row: by position (``row[0]``) and by column name (``row["name"]``, case
    insensitive), like ``sqlite3.Row``; ``dict(row)`` works too."""

    _index: dict[str, int]

    def __new__(cls, values: Iterable[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                key = self._index[key.lower()]
            except KeyError:
                raise IndexError(f"no such column: {key}") from None
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def _plain(value: Any) -> Any:
    """PostgreSQL answers SUM and AVG as NUMERIC: give back what SQLite gives."""
    if type(value) is Decimal:
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _rows(result: Any) -> list[Row]:
    if not result.returns_rows:
        return []
    index = {str(k).lower(): i for i, k in enumerate(result.keys())}
    return [Row(map(_plain, r), index) for r in result.all()]


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?|:")


@functools.lru_cache(maxsize=4096)
def _compile(sql: str) -> tuple[TextClause, int]:
    """``?`` placeholders become named binds ``:p1``, ``:p2``…; a colon inside a string literal
    is escaped so that it is not taken for a bind."""
    count = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal count
        token = match.group(0)
        if token == "?":
            count += 1
            return f":p{count}"
        if token.startswith("'"):
            return token.replace(":", "\\:")
        return token

    return text(_TOKENS.sub(swap, sql)), count


def _bind(sql: str, params: Params) -> tuple[TextClause, dict[str, Any]]:
    clause, count = _compile(sql)
    if isinstance(params, Mapping):
        return clause, dict(params)
    if len(params) != count:
        raise ValueError(f"{count} placeholders, {len(params)} parameters: {sql[:80]!r}")
    return clause, {f"p{i}": v for i, v in enumerate(params, 1)}


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, for logs and ``diary status``; a database error is
    named by the driver's own error, without SQLAlchemy's statement and parameters."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    return f"{type(exc).__name__}: {exc}"


def database_url(value: str | Path | URL) -> URL:
    """``sqlite:///path``, ``postgresql://…`` or a bare SQLite path, as an async driver URL."""
    if isinstance(value, URL):
        value = value.render_as_string(hide_password=False)
    raw = str(value)
    if "://" not in raw:
        return URL.create("sqlite+aiosqlite", database=raw)
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == SQLITE:
        return url.set(drivername="sqlite+aiosqlite")
    if backend in (POSTGRESQL, "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL {url.render_as_string(hide_password=True)!r}:"
                     " use sqlite:///path or postgresql://user@host:port/database")


def server_settings(url: URL) -> tuple[URL, dict[str, str]]:
    """libpq's ``?options=-c name=value`` (e.g. ``-csearch_path=school``) as asyncpg's
    server settings, so one URL serves the bot, psql and pg_dump alike."""
    options = url.query.get("options")
    if options is None:
        return url, {}
    settings: dict[str, str] = {}
    for part in re.findall(r"-c\s*(\S+)", unquote(str(options))):
        name, _, value = part.partition("=")
        settings[name] = value
    return url.difference_update_query(["options"]), settings


def advisory_key(*parts: str | int) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Database:
    def __init__(self, url: str | Path | URL, *, pool_size: int = 10) -> None:
        self.url = database_url(url)
        self.dialect = self.url.get_backend_name()
        self.pool_size = pool_size
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None  # SQLite: the one connection
        self._lock = asyncio.Lock()
        self._immediate = False

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL or in memory)."""
        if self.dialect != SQLITE or self.url.database in (None, "", ":memory:"):
            return None
        return Path(self.url.database)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == SQLITE

    def display(self) -> str:
        return self.url.render_as_string(hide_password=True)

    async def connect(self) -> Database:
        if self.is_sqlite:
            await self._connect_sqlite()
        else:
            url, settings = server_settings(self.url)
            self._engine = create_async_engine(
                url, pool_size=self.pool_size, max_overflow=self.pool_size,
                pool_pre_ping=True, connect_args={"server_settings": settings},
            )
        return self

    async def _connect_sqlite(self) -> None:
        path = self.path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url)

        @event.listens_for(engine.sync_engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy, not the driver, emits BEGIN (SQLAlchemy's documented recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (f"busy_timeout = {BUSY_TIMEOUT_MS}", "journal_mode = WAL",
                           "synchronous = NORMAL", "foreign_keys = ON"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self._immediate else "BEGIN")

        self._engine = engine
        self._conn = await engine.connect()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> Database:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("database is not connected")
        return self._engine

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """A connection of one's own: SQLite's one connection under the lock (``write`` makes
        the next BEGIN an IMMEDIATE one), or one from the PostgreSQL pool."""
        if self.is_sqlite:
            if self._conn is None:
                raise RuntimeError("database is not connected")
            async with self._lock:
                self._immediate = write
                yield self._conn
        else:
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """All-or-nothing: commits when the block ends, rolls back on any exception."""
        async with self._connection(write=True) as conn:
            await conn.begin()
            try:
                yield Tx(conn)
                await conn.commit()
            except BaseException:
                await self._rollback(conn)
                raise

    @asynccontextmanager
    async def locked(self, *key: str | int) -> AsyncIterator[Tx]:
        """A write transaction that no other one with the same ``key`` runs at the same time,
        in any process (see ``Tx.lock``)."""
        async with self.transaction() as tx:
            await tx.lock(*key)
            yield tx

    @staticmethod
    async def _rollback(conn: AsyncConnection) -> None:
        """Roll back after a failure without hiding it: SQLite may already have rolled back by
        itself (a full disk, an I/O error), or the connection may be gone — that second error
        must not replace the cause."""
        try:
            await conn.rollback()
        except Exception:
            log.warning("rollback failed after an error", exc_info=True)

    @asynccontextmanager
    async def read(self, *, snapshot: bool = True) -> AsyncIterator[Tx]:
        """A consistent snapshot for several reads (a read-only transaction)."""
        async with self._connection(write=False) as conn:
            if snapshot and not self.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.begin()
            try:
                yield Tx(conn)
            finally:
                await self._rollback(conn)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self.read(snapshot=False) as tx:
            return await tx.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def listen(self, channel: str, on_notify: Callable[[], None]) -> Listener | None:
        """PostgreSQL: a connection of its own, ``LISTEN``ing on ``channel``, that calls
        ``on_notify`` for each notification. None on SQLite, which has no notifications."""
        if self.is_sqlite:
            return None
        import asyncpg

        url, settings = server_settings(self.url)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn, server_settings=settings)
        return await Listener.start(conn, channel, on_notify)

    async def tables(self) -> set[str]:
        """The names of the tables in the database (its default schema)."""
        async with self.read(snapshot=False) as tx:
            return set(await tx.conn.run_sync(lambda c: inspect(c).get_table_names()))


class Listener:
    """A PostgreSQL connection that listens; ``closed()`` returns when it is lost."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lost = asyncio.Event()

    @classmethod
    async def start(cls, conn: Any, channel: str, on_notify: Callable[[], None]) -> Listener:
        listener = cls(conn)
        conn.add_termination_listener(lambda _conn: listener._lost.set())
        try:
            await conn.add_listener(channel, lambda *_args: on_notify())
        except BaseException:
            await conn.close()
            raise
        return listener

    async def closed(self) -> None:
        """Wait until the connection is gone (checked every few seconds, as a dead server may
        never say goodbye)."""
        while not self._lost.is_set():
            try:
                await asyncio.wait_for(self._lost.wait(), 10)
            except TimeoutError:
                if self._conn.is_closed():
                    return
                try:
                    await asyncio.wait_for(self._conn.execute("SELECT 1"), 10)
                except Exception:
                    return

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._conn.close(timeout=5)


class Tx:
    """The connection as seen inside a transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement; the result tells ``rowcount``."""
        clause, binds = _bind(sql, params)
        return await self.conn.execute(clause, binds)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = [_bind(sql, params) for params in rows]
        if batch:
            await self.conn.execute(batch[0][0], [binds for _, binds in batch])

    async def executemany_count(self, sql: str, rows: Iterable[Params]) -> int:
        """executemany, returning how many rows the statements changed in all."""
        batch = [_bind(sql, params) for params in rows]
        if not batch:
            return 0
        if self.conn.dialect.name == SQLITE:  # sqlite3 counts the rows of an executemany
            result = await self.conn.execute(batch[0][0], [binds for _, binds in batch])
            return max(0, result.rowcount)
        changed = 0  # asyncpg's executemany does not count: one statement at a time
        for clause, binds in batch:
            changed += max(0, (await self.conn.execute(clause, binds)).rowcount)
        return changed

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return _rows(await self.execute(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def lock(self, *key: str | int) -> None:
        """Serialize this transaction with every other one that takes the same ``key`` (a
        read-check-write that must not interleave), until it ends. On SQLite a write
        transaction already holds the database's write lock; on PostgreSQL this takes a
        transaction-level advisory lock."""
        if self.conn.dialect.name != SQLITE:
            await self.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(*key),))

    async def insert(self, sql: str, params: Params = ()) -> int:
        """An INSERT of one row; returns the new row's id (``RETURNING id`` is added)."""
        if not re.search(r"\bRETURNING\b", sql, re.IGNORECASE):
            sql = f"{sql} RETURNING id"
        return int(await self.scalar(sql, params))


async def upgrade(db: Database) -> list[str]:
    """Create or migrate the schema; idempotent. See ``core.storage.migrate``."""
    from core.storage.migrate import upgrade as run

    return await run(db)


async def schema_version(db: Database) -> str:
    from core.storage.migrate import current_revision

    return await current_revision(db) or "-"
