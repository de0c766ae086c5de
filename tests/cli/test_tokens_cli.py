"""`diary tokens issue|list|revoke`: a token is printed once and stored only as a keyed hash."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from tests.support.school import EXAMPLE_ROSTER

SCHOOL = "ГБОУ Школа № 1234"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "diary.sqlite3"))
    monkeypatch.setenv("CLOCK_START", "2026-11-23T12:00:00+03:00")
    return tmp_path


def rows(workdir: Path) -> list[dict]:
    with sqlite3.connect(workdir / "data" / "diary.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM api_tokens ORDER BY id")]


def test_issue_prints_the_token_once_and_stores_only_its_hash(workdir, capsys):
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    capsys.readouterr()
    assert main(["tokens", "issue", "--school", "  ГБОУ Школа   № 1234 ",
                 "--note", "Сетевой город"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("diary_") and len(token) > 40
    assert err == (f"token 1 for school '{SCHOOL}' issued; it is shown only now: hand it to the"
                   " school's journal system as `Authorization: Bearer <token>`\n")
    stored = rows(workdir)
    assert [(r["id"], r["school"], r["note"]) for r in stored] == [(1, SCHOOL, "Сетевой город")]
    assert token not in json.dumps(stored)
    assert main(["tokens", "list"]) == 0
    out = capsys.readouterr().out
    assert token not in out
    listed = list(csv.DictReader(io.StringIO(out)))
    assert listed == [{"id": "1", "school": SCHOOL, "note": "Сетевой город",
                       "created": "2026-11-23T12:00:00+03:00", "last_used": "",
                       "revoked": ""}]


def test_a_school_not_on_the_roster_is_noted(workdir, capsys):
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    capsys.readouterr()
    assert main(["tokens", "issue", "--school", "Школа 5"]) == 0
    err = capsys.readouterr().err
    assert (f"note: the roster has no school 'Школа 5' yet (it has: '{SCHOOL}'); the token can"
            " send that school's roster first (POST /v1/roster)") in err


def test_revoke_and_list_as_json(workdir, capsys):
    assert main(["tokens", "issue", "--school", SCHOOL]) == 0
    assert main(["tokens", "issue", "--school", SCHOOL, "--note", "запасной"]) == 0
    capsys.readouterr()
    assert main(["tokens", "revoke", "1"]) == 0
    assert capsys.readouterr().out == (f"token 1 ({SCHOOL}) revoked at"
                                       " 2026-11-23T12:00:00+03:00\n")
    assert main(["tokens", "revoke", "7"]) == 2
    assert capsys.readouterr().err == "error: no token 7\n"
    assert main(["tokens", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(t["id"], t["note"], t["revoked"]) for t in listed] == [
        (1, "", "2026-11-23T12:00:00+03:00"), (2, "запасной", "")]
