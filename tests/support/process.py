"""The real `diary` process in end-to-end tests: its environment, commands, a running bot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

TOKEN = "4242:E2E-TOKEN"
CLOCK_START = "2026-11-23T10:00:00+03:00"


def env_for(tmp_path: Path, api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "TELEGRAM_API_URL")}
    env.update({
        "DATABASE_PATH": str(tmp_path / "diary.sqlite3"),
        "SECRET_KEY": "e2e-secret-0123456789abcdef",
        "QUIET_HOURS": "",
        "PYTHONUNBUFFERED": "1",
        # School time is pinned, not read from the wall: a Monday morning, before the digest.
        "CLOCK_START": CLOCK_START,
        # A dead process's claims come free quickly (a live one renews them every 1.25 s).
        "CLAIM_LEASE_SECONDS": "5",
    })
    if api_url:
        env.update({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url})
    return env


def school_now(bot: BotProcess) -> datetime:
    """At least the moment the running bot's clock shows now (it started after ``bot.started``)."""
    return datetime.fromisoformat(CLOCK_START) + timedelta(
        seconds=time.monotonic() - bot.started)


def diary(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


class BotProcess:
    def __init__(self, env: dict[str, str], cwd: Path, *args: str, log: str = "bot.log") -> None:
        self.env, self.cwd, self.args = env, cwd, args or ("run",)
        self.log_path = cwd / log
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.started = time.monotonic()  # the process's clock starts at CLOCK_START after this
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", *self.args], env=self.env,
                                     cwd=self.cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text()
