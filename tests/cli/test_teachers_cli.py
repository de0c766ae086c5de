"""`diary teachers import`, `diary teachers codes`, `diary messages export`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.services import open_services
from core.models import Role, Viewer
from tests.support.school import ANNA_PHONE, EXAMPLE_ROOT, EXAMPLE_ROSTER

TEACHERS = EXAMPLE_ROOT / "teachers.csv"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "SECRET_KEY", "TEACHER_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "diary.sqlite3"))
    monkeypatch.setenv("CLOCK_START", "2026-11-23T12:00:00+03:00")
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    return tmp_path


def test_teachers_import_dry_run_then_real_then_bad_file(workdir, capsys):
    capsys.readouterr()
    assert main(["teachers", "import", str(TEACHERS), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("dry run, nothing changed: 2 teachers, 2 classes")
    assert main(["teachers", "import", str(TEACHERS)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("teachers imported: 2 teachers, 2 classes\n"
                          "teachers: +2 added, 0 updated, 0 no longer listed")
    bad = workdir / "bad.csv"
    bad.write_text("class,teacher_id,last_name,first_name,phone\n"
                   "7Б,T-01,Соколова,Мария,+7 903 200-00-01\n"
                   "5А,T-09,Иванова,Анна,8 900 1\n"
                   "7Б,T-09,Иванова,Анна,\n", encoding="utf-8")
    assert main(["teachers", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == (f"{bad}:3: phone: not a Russian phone number: must look like"
                   " +7 900 123-45-67\n"
                   f"{bad}:4: class: class 7Б already has a class teacher (T-01) on line 2\n"
                   "2 problems; nothing was changed.\n")
    assert main(["teachers", "import", str(workdir / "missing.csv")]) == 2


def test_teachers_codes(workdir, capsys):
    assert main(["teachers", "import", str(TEACHERS)]) == 0
    capsys.readouterr()
    assert main(["teachers", "codes", "--class", "7Б", "--bot-username", "diary_bot"]) == 0
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert (row["teacher_id"], row["teacher"], row["classes"]) == (
        "T-01", "Соколова Мария Ивановна", "7Б")
    assert row["link"].startswith("https://t.me/diary_bot?start=")
    assert main(["teachers", "codes", "--teacher-id", "T-99", "--bot-username", "b"]) == 2


def test_messages_export(workdir, capsys):
    assert main(["teachers", "import", str(TEACHERS)]) == 0

    async def talk() -> None:
        async with open_services(Settings()) as s:
            await s.linking.link_contact(5001, 5001, 5001, ANNA_PHONE)
            await s.linking.link_contact(7001, 7001, 7001, "+79032000001")
            anna = await s.access.viewer(5001)
            ivan = next(c for c in anna.children if c.class_name == "7Б")
            assert ivan.role is Role.GUARDIAN
            await s.conversations.write_to_teacher(anna, ivan.id, "=cmd|' /C calc'!A0", None, 11)
            teacher = Viewer(7001, anna.account)
            message = await s.db.scalar("SELECT id FROM thread_messages")
            await s.conversations.answer(teacher, message, "Приняла.", None, 12)

    asyncio.run(talk())
    capsys.readouterr()
    assert main(["messages", "export", "--class", "7Б"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["author"], r["student"], r["teacher"], r["parent"], r["text"]) for r in rows] == [
        ("parent", "Петров Иван Сергеевич", "Соколова Мария Ивановна",
         "Петрова Анна Викторовна", "'=cmd|' /C calc'!A0"),
        ("teacher", "Петров Иван Сергеевич", "Соколова Мария Ивановна",
         "Петрова Анна Викторовна", "Приняла.")]
    assert rows[0]["written_at"] == "2026-11-23T12:00+03:00"
    assert "+7" not in " ".join(rows[0].values())
    assert main(["messages", "export", "--student-id", "S-1002", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
