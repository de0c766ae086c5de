"""`diary codes issue` asks Telegram for the bot's username with one short request."""

from __future__ import annotations

import csv
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot import cli
from bot.cli import main
from tests.support.school import EXAMPLE_ROSTER

TOKEN = "4242:CODES-TOKEN"


class _GetMe(BaseHTTPRequestHandler):
    answer: tuple[int, dict] = (200, {"ok": True, "result": {"id": 4242, "is_bot": True,
                                                             "first_name": "Diary",
                                                             "username": "school_diary_bot"}})
    hang = threading.Event()
    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        if self.server.hanging:  # type: ignore[attr-defined]
            self.hang.wait(5)
            return
        status, body = self.answer
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def telegram() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GetMe)
    server.hanging = False  # type: ignore[attr-defined]
    _GetMe.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    _GetMe.hang.set()
    server.shutdown()
    server.server_close()
    _GetMe.hang.clear()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            telegram: ThreadingHTTPServer) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "diary.sqlite3"))
    monkeypatch.setenv("CLOCK_START", "2026-11-23T12:00:00+03:00")  # never the wall clock
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    host, port = telegram.server_address[:2]
    monkeypatch.setenv("TELEGRAM_API_URL", f"http://{host}:{port}/")
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    return tmp_path


def test_the_username_is_asked_from_telegram_without_loading_the_bot(workdir, capsys,
                                                                    monkeypatch):
    monkeypatch.delitem(sys.modules, "bot.chatbot", raising=False)
    out = workdir / "codes.csv"
    assert main(["codes", "issue", "--class", "5А", "--out", str(out)]) == 0
    assert _GetMe.paths == [f"/bot{TOKEN}/getMe"]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows and all(r["link"].startswith("https://t.me/school_diary_bot?start=")
                        for r in rows)
    assert "bot.chatbot" not in sys.modules  # aiogram is not imported for this
    assert capsys.readouterr().err.endswith(f"3 codes written to {out}\n")


def test_a_refused_token_is_a_clear_error_and_no_code_is_issued(workdir, capsys, monkeypatch):
    monkeypatch.setattr(_GetMe, "answer", (401, {"ok": False, "error_code": 401,
                                                 "description": "Unauthorized"}))
    capsys.readouterr()
    assert main(["codes", "issue", "--class", "5А"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("error: Telegram refused BOT_TOKEN (HTTP 401) when asked for the"
                            " bot's username; check BOT_TOKEN or pass --bot-username\n")
    assert captured.out == "" and TOKEN not in captured.err


def test_telegram_not_answering_ends_quickly_with_a_clear_error(workdir, capsys, monkeypatch,
                                                                 telegram):
    telegram.hanging = True
    monkeypatch.setattr(cli, "GET_ME_TIMEOUT", 0.2)
    capsys.readouterr()
    assert main(["codes", "issue", "--class", "5А"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not ask Telegram for the bot's username (")
    assert err.endswith("pass --bot-username\n") and TOKEN not in err
