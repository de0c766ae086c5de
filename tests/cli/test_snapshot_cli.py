"""`diary journal sync`: what each snapshot did, exit 2 and nothing changed for bad input."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from tests.support.school import EXAMPLE_ROSTER, SERGEY_PHONE


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "diary.sqlite3"))
    monkeypatch.setenv("CLOCK_START", "2026-11-23T12:00:00+03:00")
    return tmp_path


def rows(workdir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(workdir / "data" / "diary.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def mark(n: int, value: int = 5, day: str = "2026-11-23") -> dict:
    return {"grade_id": f"g{n}", "subject": "Алгебра", "date": day, "value": value}


def write(path: Path, *snapshots: dict) -> Path:
    path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in snapshots),
                    encoding="utf-8")
    return path


def snapshot(sid: str, marks: list[dict], hour: int, **extra) -> dict:
    return {"snapshot_id": sid, "student_id": "S-1001", "from": "2026-11-01",
            "to": "2026-11-30", "taken_at": f"2026-11-23T{hour:02d}:00:00+03:00",
            "marks": marks, **extra}


def test_journal_sync(workdir, capsys, monkeypatch):
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    assert main(["link", "--telegram-id", "555", "--phone", SERGEY_PHONE]) == 0
    capsys.readouterr()
    first = write(workdir / "s1.jsonl", snapshot("s1", [mark(n) for n in range(1, 13)], 9))
    assert main(["journal", "sync", str(first)]) == 0
    assert capsys.readouterr().out == (
        f"{first}:1: snapshot s1 (student S-1001, 2026-11-01..2026-11-30): 12 new, 0 changed,"
        " 0 deleted, 0 missing once (kept), 0 unchanged; first snapshot: stored without pushes;"
        " 0 pushes queued\n"
        "snapshots synced: 1 snapshot, 12 new, 0 changed, 0 deleted, 0 missing once (kept),"
        " 0 unchanged; 0 pushes queued\n")

    # Five of twelve: refused as cut short, nothing changed.
    short = write(workdir / "s2.jsonl", snapshot("s2", [mark(1, 4), *map(mark, range(2, 6))],
                                                10))
    assert main(["journal", "sync", str(short)]) == 2
    assert capsys.readouterr().err == (
        f"{short}:1: marks: 5 marks where the previous snapshot (taken at 2026-11-23T09:00+03:00)"
        " held 12: looks cut short, refused (--force takes it)\n"
        "1 problem; nothing was changed.\n")
    assert rows(workdir, "SELECT value FROM grades WHERE external_id = 'g1'") == [(5,)]

    assert main(["journal", "sync", str(short), "--force", "--dry-run"]) == 0
    assert capsys.readouterr().out.endswith(
        "dry run, nothing changed: 1 snapshot, 0 new, 1 changed, 0 deleted,"
        " 7 missing once (kept), 4 unchanged; 1 push queued\n")
    assert rows(workdir, "SELECT COUNT(*) FROM outbox") == [(0,)]

    assert main(["journal", "sync", str(short), "--force"]) == 0
    assert capsys.readouterr().out == (
        f"{short}:1: snapshot s2 (student S-1001, 2026-11-01..2026-11-30): 0 new, 1 changed,"
        " 0 deleted, 7 missing once (kept), 4 unchanged; taken although it looks cut short"
        " (--force); 1 push queued\n"
        "snapshots synced: 1 snapshot, 0 new, 1 changed, 0 deleted, 7 missing once (kept),"
        " 4 unchanged; 1 push queued\n")
    assert rows(workdir, "SELECT kind FROM outbox") == [("grade_changed",)]

    # The next snapshot misses them again: deleted, from standard input, without pushes.
    third = snapshot("s3", [mark(1, 4), *map(mark, range(2, 6))], 11)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(third, ensure_ascii=False) + "\n"))
    assert main(["journal", "sync", "-", "--no-notify"]) == 0
    assert capsys.readouterr().out == (
        "<stdin>:1: snapshot s3 (student S-1001, 2026-11-01..2026-11-30): 0 new, 0 changed,"
        " 7 deleted, 0 missing once (kept), 5 unchanged; 0 pushes queued\n"
        "snapshots synced: 1 snapshot, 0 new, 0 changed, 7 deleted, 0 missing once (kept),"
        " 5 unchanged; 0 pushes queued (--no-notify)\n")
    assert rows(workdir, "SELECT COUNT(*) FROM grades WHERE deleted_at IS NULL") == [(5,)]
    assert rows(workdir, "SELECT kind, source FROM imports ORDER BY id DESC LIMIT 1") == [
        ("snapshot", "<stdin>")]


def test_journal_sync_bad_lines_and_a_class(workdir, capsys):
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    capsys.readouterr()
    bad = write(workdir / "bad.jsonl",
                snapshot("a", [mark(1), {**mark(2), "value": 9}, {**mark(3), "date": "вчера"}],
                         9),
                {"snapshot_id": "b", "class": "7Б", "period_id": "q9",
                 "taken_at": "2026-11-23T09:00:00+03:00", "marks": []})
    assert main(["journal", "sync", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:1: marks[1].value: must be from 1 to 5")
    assert err[1:] == [f"{bad}:1: marks[2].date: not a valid date (YYYY-MM-DD)",
                       "2 problems; nothing was changed."]
    bad.write_text(bad.read_text(encoding="utf-8").splitlines()[1] + "\n", encoding="utf-8")
    assert main(["journal", "sync", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"{bad}:1: period_id: unknown period 'q9' (a journal period event declares it;"
        " or give from and to)\n1 problem; nothing was changed.\n")
    assert main(["journal", "sync", "nope.jsonl"]) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err

    cls = write(workdir / "class.jsonl", {
        "snapshot_id": "c1", "class": "7Б", "from": "2026-11-01", "to": "2026-11-30",
        "taken_at": "2026-11-23T09:00:00+03:00", "subject": "Алгебра",
        "marks": [{**mark(1), "student_id": "S-1001"}, {**mark(2), "student_id": "S-1003"}]})
    assert main(["journal", "sync", str(cls)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{cls}:1: snapshot c1 (class 7Б, 3 students, 2026-11-01..2026-11-30, Алгебра): 2 new,"
        " 0 changed, 0 deleted, 0 missing once (kept), 0 unchanged; first snapshot of"
        " 3 students: stored without pushes; 0 pushes queued")
    assert rows(workdir, "SELECT COUNT(*) FROM snapshot_state") == [(3,)]
