"""The local services some tests need (Redis): reachable, or a plain skip — unless
``REQUIRE_SERVICES=1`` (CI), where an unreachable service fails the test instead."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

REDIS_DEFAULT = "redis://127.0.0.1:6379"


def _unreachable(what: str, where: str, why: str) -> None:
    message = f"{what} at {where} is not reachable ({why}): {what} tests skipped"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message.replace("skipped", "required (REQUIRE_SERVICES=1)"))
    pytest.skip(message)


def redis_url_or_skip(db: int = 15) -> str:
    """``TEST_REDIS_URL`` (default the local server) with database ``db``, emptied first."""
    import redis

    base = os.environ.get("TEST_REDIS_URL", REDIS_DEFAULT).rstrip("/")
    parts = urlsplit(base)
    url = f"{parts.scheme}://{parts.netloc}/{db}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        _unreachable("Redis", parts.netloc, str(exc))
    finally:
        client.close()
    return url
