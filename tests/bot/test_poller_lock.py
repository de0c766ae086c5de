"""One poller per database, on each backend: a second `diary run` is refused and told who
holds the database; once the first ends, the next one may start."""

from __future__ import annotations

import os
import socket

import pytest

from bot.singleton import AlreadyRunning, poller_lock
from core.storage.db import Database


async def test_a_second_poller_is_refused_until_the_first_ends(database_url):
    path = Database(database_url).path
    async with poller_lock(database_url, path):
        with pytest.raises(AlreadyRunning) as err:
            async with poller_lock(database_url, path):
                pytest.fail("two pollers on one database")
        holder = err.value.holder
        assert holder == (f"pid {os.getpid()}" if path is not None
                          else f"{socket.gethostname()}:{os.getpid()}")
    async with poller_lock(database_url, path):
        pass  # free again
