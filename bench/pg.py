"""A PostgreSQL schema of its own for a benchmark, on the server at ``TEST_DATABASE_URL``
(default: the local one), dropped at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

SERVER = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


class Unavailable(Exception):
    """PostgreSQL cannot be reached: the benchmark is skipped with this message."""


def dsn(url: str) -> str:
    """A libpq/asyncpg DSN for a SQLAlchemy PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def pg_schema(server: str = SERVER) -> AsyncIterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(dsn(server), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        shown = make_url(server).render_as_string(hide_password=True)
        raise Unavailable(f"PostgreSQL at {shown} is not reachable ({exc}): skipped") from exc
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    try:
        yield make_url(server).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(dsn(server))
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()
