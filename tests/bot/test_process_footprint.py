"""What a long-running process loads is resident in every copy of it: `diary deliver` loads
neither aiogram, nor the chat handlers, nor the scheduler, and no process loads Alembic to find
the schema current (tests/storage/test_migrations.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.school import ROOT

SENDER = """
import sys
import bot.cli
from bot.roles import run_deliver
from bot.services import open_services
heavy = ("alembic", "apscheduler", "bot.app", "bot.routers", "bot.jobs", "aiogram", "matplotlib")
print(" ".join(m for m in heavy if m in sys.modules) or "-")
"""


def test_a_sender_loads_neither_aiogram_nor_the_handlers_nor_the_scheduler():
    result = subprocess.run([sys.executable, "-c", SENDER], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["-"]
