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
from typing import Any, NamedTuple
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

    def __getitem__(self, key: Any) -> Any:
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


def in_list(values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``?, ?, …`` for ``IN (…)`` or ``NOT IN (…)`` and its values: the last value repeated up
    to the next power of two. Every statement text is compiled (and kept in two caches, and
    prepared on PostgreSQL) once: lists of any length would make a new text for each length, up
    to thousands of them with a thousand binds each; padded, a statement has a dozen texts.
    (A repeated value changes neither ``IN`` nor ``NOT IN``, where a NULL would.)"""
    items = list(values)
    if not items:
        raise ValueError("an empty IN list")
    if any(v is None for v in items):
        raise ValueError("NULL in an IN list: it matches nothing, and empties a NOT IN")
    size = 1
    while size < len(items):
        size *= 2
    return ", ".join("?" * size), items + items[-1:] * (size - len(items))


def _bind(sql: str, params: Params) -> tuple[TextClause, dict[str, Any]]:
    clause, count = _compile(sql)
    if isinstance(params, Mapping):
        return clause, dict(params)
    if len(params) != count:
        raise ValueError(f"{count} placeholders, {len(params)} parameters: {sql[:80]!r}")
    return clause, {f"p{i}": v for i, v in enumerate(params, 1)}


# A multi-row INSERT on PostgreSQL: at most this many rows, and this many values, a statement
# (the protocol allows 32,767 bound values).
MAX_ROWS_PER_STATEMENT = 1000
MAX_BINDS = 30000


class _RowsShape(NamedTuple):
    """``INSERT … VALUES (<row>) <tail>`` taken apart, to write many rows in one statement:
    ``row`` is the row's text cut at its placeholders."""

    head: str
    row: tuple[str, ...]
    tail: str

    @property
    def width(self) -> int:
        return len(self.row) - 1


@functools.lru_cache(maxsize=256)
def _rows_statement(shape: _RowsShape, count: int) -> str:
    """The statement for ``count`` rows, in the driver's own ``$n`` placeholders."""
    rows = []
    for r in range(count):
        base = r * shape.width
        pieces = [shape.row[0]]
        for i, piece in enumerate(shape.row[1:], 1):
            pieces.append(f"${base + i}{piece}")
        rows.append("".join(pieces))
    return f"{shape.head}{', '.join(rows)}{shape.tail}"


_INSERT_VALUES = re.compile(r"\s*INSERT\s+INTO\s+[^()]+\([^()]*\)\s*VALUES\s*", re.IGNORECASE)
_NOT_PER_ROW = re.compile(r"\bDO\s+UPDATE\b|\bRETURNING\b|;", re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _rows_shape(sql: str) -> _RowsShape | None:
    """``INSERT INTO t (columns) VALUES (…)`` with every placeholder in its one row of values,
    and a tail that means the same for a row whether it goes alone or with others: nothing, or
    ``ON CONFLICT … DO NOTHING`` (a conflict with a row earlier in the same statement is
    skipped just as one with a row already written). ``DO UPDATE`` (which may not touch a row
    twice in one statement) and ``RETURNING`` are not taken apart: None."""
    head = _INSERT_VALUES.match(sql)
    if head is None or not sql[head.end():].startswith("("):
        return None
    depth, end, quote = 0, None, None
    for i in range(head.end(), len(sql)):
        char = sql[i]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                end = i + 1
                break
    if end is None:
        return None
    row, tail = sql[head.end():end], sql[end:]
    cuts = [m.start() for m in _TOKENS.finditer(row) if m.group(0) == "?"]
    if not cuts or len(cuts) != _compile(sql)[1] or _NOT_PER_ROW.search(tail):
        return None
    pieces = [row[a + 1 : b] for a, b in zip([-1, *cuts], [*cuts, len(row)], strict=True)]
    return _RowsShape(sql[:head.end()], tuple(pieces), tail)


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
        """Run one statement for each row of parameters. On SQLite rows by position go to the
        driver's executemany as they are; on PostgreSQL a plain ``INSERT … VALUES (…)`` (or one
        that does nothing ``ON CONFLICT``) goes as multi-row statements, a thousand rows each,
        instead of one round trip per row."""
        rows = list(rows)
        if not rows:
            return
        if self.conn.dialect.name == SQLITE:
            await self._sqlite_many(sql, rows)
            return
        shape = self._rows_shape(sql, rows)
        if shape is not None:
            await self._insert_rows(shape, rows)
            return
        batch = [_bind(sql, params) for params in rows]
        await self.conn.execute(batch[0][0], [binds for _, binds in batch])

    async def executemany_count(self, sql: str, rows: Iterable[Params]) -> int:
        """executemany, returning how many rows the statements changed in all (an ``ON CONFLICT
        DO NOTHING`` row that met a conflict, in the table or earlier in ``rows``, counts 0)."""
        rows = list(rows)
        if not rows:
            return 0
        if self.conn.dialect.name == SQLITE:  # sqlite3 counts the rows of an executemany
            return await self._sqlite_many(sql, rows)
        shape = self._rows_shape(sql, rows)
        if shape is not None:
            return await self._insert_rows(shape, rows)
        changed = 0  # asyncpg's executemany does not count: one statement at a time
        for params in rows:
            changed += max(0, (await self.execute(sql, params)).rowcount)
        return changed

    async def _sqlite_many(self, sql: str, rows: list[Params]) -> int:
        if isinstance(rows[0], Mapping):
            batch = [_bind(sql, params) for params in rows]
            result = await self.conn.execute(batch[0][0], [binds for _, binds in batch])
        else:  # ``?`` is sqlite3's own placeholder: no text() to bind for every row
            result = await self.conn.exec_driver_sql(sql, [tuple(params) for params in rows])
        return max(0, result.rowcount)

    def _rows_shape(self, sql: str, rows: list[Params]) -> _RowsShape | None:
        """How to write ``rows`` as multi-row statements, on PostgreSQL, when that means the
        same as one statement per row."""
        if self.conn.dialect.name == SQLITE or isinstance(rows[0], Mapping):
            return None
        return _rows_shape(sql)

    async def _insert_rows(self, shape: _RowsShape, rows: list[Params]) -> int:
        """Rows of an INSERT as statements of many rows each; returns the rows inserted (the
        command tag's count)."""
        per = max(1, min(MAX_ROWS_PER_STATEMENT, MAX_BINDS // shape.width))
        inserted = 0
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            values: list[Any] = []
            for params in part:
                if len(params) != shape.width:
                    raise ValueError(f"{shape.width} placeholders, {len(params)} parameters:"
                                     f" {shape.head[:80]!r}")
                values.extend(params)
            # The driver's placeholders as they are: no text() to compile for thousands of binds.
            result = await self.conn.exec_driver_sql(_rows_statement(shape, len(part)),
                                                     tuple(values))
            inserted += max(0, result.rowcount)
        return inserted

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return _rows(await self.execute(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def lock(self, *key: str | int, shared: bool = False) -> None:
        """Serialize this transaction with every other one that takes the same ``key`` (a
        read-check-write that must not interleave), until it ends. On SQLite a write
        transaction already holds the database's write lock; on PostgreSQL this takes a
        transaction-level advisory lock. ``shared``: only with those that take it not shared
        (many shared holders at once, one exclusive holder alone)."""
        if self.conn.dialect.name != SQLITE:
            function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            await self.execute(f"SELECT {function}(?)", (advisory_key(*key),))

    async def insert(self, sql: str, params: Params = ()) -> int:
        """An INSERT of one row; returns the new row's id (``RETURNING id`` is added)."""
        if not re.search(r"\bRETURNING\b", sql, re.IGNORECASE):
            sql = f"{sql} RETURNING id"
        return int(await self.scalar(sql, params))
