"""Shared fixtures: a real database (SQLite in tmp_path, and PostgreSQL in a schema of its own),
a frozen clock, the services.

Every test that uses ``db`` runs on both backends. PostgreSQL is the server at
``TEST_DATABASE_URL`` (default: the local one); when it cannot be reached its tests are skipped
with a plain message — or fail, with ``REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.services import Services, build_services
from core.clock import FrozenClock
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.school import SECRET, TZ, import_roster

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "") not in ("", "0")


def _pg_reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "localhost", parsed.port or 5432),
                                      timeout=2):
            return True
    except OSError:
        return False


def _unreachable_message() -> str:
    shown = make_url(TEST_DATABASE_URL).render_as_string(hide_password=True)
    return f"PostgreSQL at {shown} is not reachable: PostgreSQL tests skipped"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say once, at the end, that the PostgreSQL tests were skipped (and why)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if _unreachable_message() in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{_unreachable_message()} ({len(skipped)} tests)",
                                    yellow=True, bold=True)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server of the tests, or a skip (a failure with REQUIRE_SERVICES=1)."""
    if not _pg_reachable(TEST_DATABASE_URL):
        message = _unreachable_message()
        if REQUIRE_SERVICES:
            pytest.fail(message + " — but REQUIRE_SERVICES=1 requires them", pytrace=False)
        pytest.skip(message)
    return TEST_DATABASE_URL


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def pg_schema(server: str) -> AsyncIterator[str]:
    """A URL of a schema of its own on the PostgreSQL ``server``, dropped at the end."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(_dsn(server))
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    try:
        yield make_url(server).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(_dsn(server))
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()


@asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path,
                         request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The URL of an empty database of ``kind`` (sqlite, postgresql) for one test."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'diary.sqlite3'}"
    else:
        async with pg_schema(request.getfixturevalue("postgres_url")) as url:
            yield url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database, on each backend."""
    async with fresh_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
async def db(database_url: str):
    database = await Database(database_url).connect()
    await upgrade(database)
    yield database
    await database.close()


@pytest.fixture
def services(db: Database, clock: FrozenClock) -> Services:
    return build_services(db, SECRET, TZ, clock)


@pytest.fixture
async def school(services: Services) -> Services:
    """The services with examples/roster.csv imported."""
    await import_roster(services)
    return services
