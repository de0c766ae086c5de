"""Shared fixtures: a real SQLite database in tmp_path, a frozen clock, the services."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services import Services, build_services
from core.clock import FrozenClock
from core.storage.db import Database, upgrade
from tests.support.school import SECRET, TZ, import_roster


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
async def db(tmp_path: Path):
    database = await Database(tmp_path / "diary.sqlite3").connect()
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
