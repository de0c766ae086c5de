"""The `diary` command line, run in-process: exit codes, messages, nothing half-written."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from core.storage.migrate import head
from tests.support.school import EXAMPLE_ROOT, EXAMPLE_ROSTER, SERGEY_PHONE


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "diary.sqlite3"))
    # The commands' clock is pinned (a Monday noon in Moscow), never the wall clock.
    monkeypatch.setenv("CLOCK_START", "2026-11-23T12:00:00+03:00")
    return tmp_path


def count(workdir: Path, table: str) -> int:
    with sqlite3.connect(workdir / "data" / "diary.sqlite3") as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_db_upgrade_is_idempotent(workdir, capsys):
    assert main(["db", "upgrade"]) == 0
    assert "applied: 0001" in capsys.readouterr().out
    assert count(workdir, "outbox") == 0 and count(workdir, "alembic_version") == 1
    assert main(["db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_roster_import_dry_run_then_real(workdir, capsys):
    assert main(["roster", "import", str(EXAMPLE_ROSTER), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run, nothing changed: 5 students, 4 guardians, 2 classes")
    assert count(workdir, "students") == 0
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    assert "students: +5 added" in capsys.readouterr().out
    assert count(workdir, "students") == 5
    # The secret key was generated once, beside the database.
    key = workdir / "data" / "secret.key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"


def test_bad_roster_names_every_bad_line_and_changes_nothing(workdir, capsys):
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    capsys.readouterr()
    lines = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("8 (900) 123-45-67", "12345")
    lines[3] = lines[3].replace("Петрова,Мария", "Петрова,")
    lines[4] = lines[4].replace("123-456-789 64", "123-456-789 65")
    lines.append(lines[5].replace("S-1004", "S-1099").replace("Кузнецов,Дмитрий", "Новый,Ученик"))
    bad = workdir / "bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["roster", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: guardian_phone: not a Russian phone number" in err
    assert f"{bad}:4: student_first_name: required" in err
    assert f"{bad}:5: guardian_snils: SNILS control number does not match" in err
    assert "12345" not in err and "789 65" not in err
    assert "3 problems; nothing was changed." in err
    assert count(workdir, "students") == 5  # S-1099 was not added


def test_missing_file(workdir, capsys):
    assert main(["roster", "import", "nope.csv"]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_journal_import_rejects_and_skip_invalid(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    lines = (EXAMPLE_ROOT / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    lines.insert(3, json.dumps({"id": "bad-1", "type": "grade", "grade_id": "x",
                                "student_id": "S-1001", "subject": "Алгебра",
                                "date": "2026-11-10", "value": 7}))
    journal = workdir / "j.jsonl"
    journal.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = workdir / "rejects.jsonl"
    capsys.readouterr()
    assert main(["journal", "import", str(journal), "--rejects", str(rejects)]) == 2
    assert (f"{journal}:4: value: must be from 1 to 5 on the five-point scale"
            in capsys.readouterr().err)
    assert count(workdir, "grades") == 0
    assert main(["journal", "import", str(journal), "--skip-invalid", "--rejects",
                 str(rejects)]) == 0
    out = capsys.readouterr().out
    assert "applied 13" in out and "1 rejected" in out
    record = json.loads(rejects.read_text(encoding="utf-8").splitlines()[0])
    assert record["line"] == 4 and record["problems"] == [
        "value: must be from 1 to 5 on the five-point scale (or set scale)"]
    assert json.loads(record["raw"])["id"] == "bad-1"
    assert main(["journal", "import", str(journal), "--skip-invalid"]) == 0
    assert "applied 0 events; 13 already imported" in capsys.readouterr().out


def test_journal_from_stdin(workdir, capsys, monkeypatch):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    line = json.dumps({"id": "s1", "type": "period", "period_id": "q", "name": "Q",
                       "start": "2026-09-01", "end": "2026-10-31"})
    monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n"))
    assert main(["journal", "import", "-"]) == 0
    assert count(workdir, "periods") == 1


def test_codes_issue_with_links(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    capsys.readouterr()
    assert main(["codes", "issue", "--class", "5А", "--bot-username", "@school_bot"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["student_id"] for r in rows} == {"S-1002", "S-1005"}
    anna = next(r for r in rows if r["recipient"].startswith("Петрова Анна"))
    code = anna["code"].replace("-", "")
    assert anna["link"] == f"https://t.me/school_bot?start={code}"
    assert anna["recipient_role"] == "guardian" and anna["relation"] == "mother"
    out = workdir / "codes.csv"
    assert main(["codes", "issue", "--student-id", "S-1001", "--out", str(out),
                 "--bot-username", "school_bot"]) == 0
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 3
    assert main(["codes", "issue", "--student-id", "S-0000", "--bot-username", "b"]) == 2
    assert main(["codes", "issue", "--class", "5А"]) == 2  # no token, no username
    assert "set BOT_TOKEN or pass --bot-username" in capsys.readouterr().err


def test_support_link_and_status(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    capsys.readouterr()
    assert main(["link", "--telegram-id", "555", "--phone", "8 900 765 43 21"]) == 0
    assert "linked Telegram account 555 to: Петров Иван Сергеевич (7Б)" in capsys.readouterr().out
    assert main(["link", "--telegram-id", "556", "--phone", "+7 999 000 00 00"]) == 2
    assert "no guardian or student has this number" in capsys.readouterr().err
    assert main(["link", "--telegram-id", "556", "--phone", "garbage"]) == 2
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "students (active):   5" in out and "accounts:            1 (1 linked" in out
    assert "last import:         roster" in out
    assert SERGEY_PHONE[2:] not in out


def test_bad_setting_is_named(workdir, capsys, monkeypatch):
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    assert main(["status"]) == 2
    assert "setting TIMEZONE: Value error, unknown time zone 'Mars/Olympus'" in (
        capsys.readouterr().err)


def test_jobs_run_expire_dots(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    journal = workdir / "dots.jsonl"
    journal.write_text(json.dumps({"id": "d", "type": "dot", "dot_id": "d1",
                                   "student_id": "S-1001", "subject": "Физика",
                                   "date": "2026-10-01", "expires": "2026-10-05",
                                   "value": 2}) + "\n", encoding="utf-8")
    assert main(["journal", "import", str(journal)]) == 0
    capsys.readouterr()
    assert main(["jobs", "run", "expire-dots"]) == 0
    assert "dots: 1 became a grade, 0 vanished" in capsys.readouterr().out
    assert main(["jobs", "run", "expire-dots"]) == 0
    assert "dots: 0 became grades, 0 vanished" in capsys.readouterr().out
    assert count(workdir, "grades") == 1


async def _file_notice(workdir: Path, comment: str = "Свадьба у родственников") -> None:
    from zoneinfo import ZoneInfo

    from bot.services import build_services
    from core.clock import SystemClock
    from core.services.absence import Reason
    from core.storage.db import Database

    db = await Database(workdir / "data" / "diary.sqlite3").connect()
    key = (workdir / "data" / "secret.key").read_text().strip().encode()
    services = build_services(db, key, ZoneInfo("Europe/Moscow"), SystemClock())
    await services.linking.link_contact(1, 1, 1, SERGEY_PHONE)
    viewer = await services.access.viewer(1)
    today = services.absence.today()
    await services.absence.file(viewer, viewer.children[0].id, today, today, (),
                                Reason.FAMILY, comment)
    await db.close()


def test_notices_list_for_staff(workdir, capsys):
    import asyncio

    main(["roster", "import", str(EXAMPLE_ROSTER)])
    asyncio.run(_file_notice(workdir))
    capsys.readouterr()
    assert main(["notices", "list", "--class", "7б"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["student_id"], row["child"], row["class"], row["reason"], row["filed_by"],
            row["status"]) == ("S-1001", "Иван Петров", "7Б", "family", "Сергей Петров",
                               "active")
    assert row["comment"] == "Свадьба у родственников"
    assert main(["notices", "list", "--class", "5А", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["notices", "list", "--since", "2099-01-01", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    with pytest.raises(SystemExit) as exit_:
        main(["notices", "list", "--since", "yesterday"])
    assert exit_.value.code == 2


def test_jobs_run_digest_and_signoffs_list(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    assert main(["link", "--telegram-id", "555", "--phone", SERGEY_PHONE]) == 0
    capsys.readouterr()
    assert main(["jobs", "run", "digest"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digests: ")  # due or not depends on the time of day the test runs
    assert main(["jobs", "run", "digest"]) == 0
    assert capsys.readouterr().out.startswith("digests: 0 queued")
    assert main(["signoffs", "list", "--class", "7Б", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["student_id"] for r in rows} == {"S-1001", "S-1003", "S-1004"}
    assert all(r["signed_by"] == "" for r in rows)


def test_demo_seeds_its_own_database_and_refuses_a_real_one(workdir, capsys, monkeypatch):
    assert main(["demo"]) == 2  # no BOT_TOKEN: said at once, before any work
    err = capsys.readouterr().err
    assert "@BotFather" in err and "demo school ready in" not in err
    assert not (workdir / "data" / "demo.sqlite3").exists()
    assert not (workdir / "data" / "diary.sqlite3").exists()
    monkeypatch.setenv("BOT_TOKEN", "123456789:AAtest")
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    capsys.readouterr()
    real = str(workdir / "data" / "diary.sqlite3")
    assert main(["demo", "--database", real]) == 2
    assert "demo mode never runs on a real school's database" in capsys.readouterr().err
    assert count(workdir, "students") == 5


def test_codes_are_not_issued_when_they_cannot_be_written(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    capsys.readouterr()
    assert main(["codes", "issue", "--class", "5А", "--bot-username", "b"]) == 0
    before = capsys.readouterr().out
    assert main(["codes", "issue", "--class", "5А", "--bot-username", "b", "--out",
                 str(workdir / "missing" / "codes.csv")]) == 2
    assert "--out: cannot write" in capsys.readouterr().err
    with sqlite3.connect(workdir / "data" / "diary.sqlite3") as conn:
        stored = conn.execute("SELECT COUNT(*) FROM link_codes").fetchone()[0]
    assert stored == len(list(csv.DictReader(io.StringIO(before))))  # the printed codes work


def test_an_empty_token_is_a_clear_error_not_a_traceback(workdir, capsys, monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", "")
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    capsys.readouterr()
    assert main(["codes", "issue", "--class", "5А"]) == 2
    assert "set BOT_TOKEN or pass --bot-username" in capsys.readouterr().err
    assert main(["jobs", "run", "deliver"]) == 2
    assert "delivering needs BOT_TOKEN" in capsys.readouterr().err


def test_a_cp1251_roster_is_read_and_said_so(workdir, capsys):
    cp1251 = workdir / "r.csv"
    cp1251.write_bytes(EXAMPLE_ROSTER.read_text(encoding="utf-8").encode("cp1251"))
    assert main(["roster", "import", str(cp1251)]) == 0
    out = capsys.readouterr().out
    assert f"{cp1251}: read as cp1251" in out and "students: +5 added" in out
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    out = capsys.readouterr().out
    assert "read as" not in out and "students: +0 added, 0 updated" in out


def test_a_journal_with_raw_line_separators_keeps_its_line_numbers(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    events = [
        {"id": "c1", "type": "grade", "grade_id": "c1", "student_id": "S-1001",
         "subject": "Алгебра", "date": "2026-11-10", "value": 5,
         "comment": "строка\u2028строка\u0085строка"},
        {"id": "c2", "type": "grade", "grade_id": "c2", "student_id": "S-1001",
         "subject": "Алгебра", "date": "2026-11-10", "value": 9},
    ]
    journal = workdir / "j.jsonl"
    journal.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events),
                       encoding="utf-8")
    capsys.readouterr()
    assert main(["journal", "import", str(journal), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert (f"rejected: {journal}:2: value: must be from 1 to 5 on the five-point scale"
            in captured.err)
    assert "applied 1 event (1 grade)" in captured.out and "1 rejected" in captured.out


def test_an_unwritable_rejects_file_stops_the_import_before_anything_is_written(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    journal = workdir / "j.jsonl"
    journal.write_text((EXAMPLE_ROOT / "journal.jsonl").read_text(encoding="utf-8")
                       + "not json\n", encoding="utf-8")
    capsys.readouterr()
    missing = workdir / "missing" / "r.jsonl"
    assert main(["journal", "import", str(journal), "--skip-invalid", "--rejects",
                 str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--rejects: cannot write {missing}" in err and "Traceback" not in err
    assert count(workdir, "grades") == 0 and count(workdir, "journal_events") == 0
    rejects = workdir / "r.jsonl"
    assert main(["journal", "import", str(journal), "--skip-invalid", "--rejects",
                 str(rejects)]) == 0
    assert count(workdir, "journal_events") == 13
    assert [json.loads(r)["raw"] for r in rejects.read_text().splitlines()] == ["not json"]


def test_csv_cells_cannot_become_formulas(workdir, capsys):
    import asyncio

    main(["roster", "import", str(EXAMPLE_ROSTER)])
    asyncio.run(_file_notice(workdir, '=HYPERLINK("http://evil.test","x")'))
    capsys.readouterr()
    assert main(["notices", "list"]) == 0
    out = capsys.readouterr().out
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["comment"] == "\'=HYPERLINK(\"http://evil.test\",\"x\")"
    assert "\n=" not in out and ",=" not in out
    assert main(["notices", "list", "--format", "json"]) == 0  # JSON is data, left as it is
    assert json.loads(capsys.readouterr().out)[0]["comment"].startswith("=HYPERLINK")


def test_a_roster_phone_given_to_another_person_is_warned_about(workdir, capsys):
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    assert main(["link", "--telegram-id", "555", "--phone", SERGEY_PHONE]) == 0
    changed = workdir / "r.csv"
    changed.write_text(EXAMPLE_ROSTER.read_text(encoding="utf-8").replace(
        "Петров,Сергей,Иванович", "Сидоров,Пётр,Ильич"), encoding="utf-8")
    capsys.readouterr()
    assert main(["roster", "import", str(changed)]) == 0
    out = capsys.readouterr().out
    assert "guardians: +1 added, 0 updated, 1 removed" in out
    assert (f"warning: {changed}:3: guardian_phone: now names another person than before"
            " (a different name): a new guardian, the previous one's Telegram account links"
            " ended and they were asked to link again") in out
    assert "765" not in out
    assert count(workdir, "account_links") == 0


def test_a_database_busy_for_too_long_is_a_clear_error_not_a_traceback(workdir, capsys,
                                                                         monkeypatch):
    from core.services.journal import JournalService

    main(["roster", "import", str(EXAMPLE_ROSTER)])

    async def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(JournalService, "import_journal", locked)
    capsys.readouterr()
    assert main(["journal", "import", str(EXAMPLE_ROOT / "journal.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the database is busy") and "Traceback" not in err


def test_status_alerts_loudly_when_due_pushes_do_not_go_out(workdir, capsys, monkeypatch):
    # The process's clock is pinned, so "a minute ago" does not depend on the hour of the run.
    monkeypatch.setenv("CLOCK_START", "2026-11-23T12:00:00+03:00")
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    with sqlite3.connect(workdir / "data" / "diary.sqlite3") as conn:
        conn.execute("INSERT INTO outbox (telegram_id, kind, payload, dedup_key, created_at,"
                     " not_before) VALUES (1, 'relink', '{}', 'k', ?, ?)",
                     ("2026-11-23T08:55:00.000000Z", "2026-11-23T08:55:00.000000Z"))
        conn.execute("INSERT INTO workers (role, owner, started_at, beat_at, progress_at,"
                     " last_error, messages, rate_limited, paid, sent_per_second)"
                     " VALUES ('delivery', 'host:7:ab12',"
                     " '2026-11-23T08:00:00.000000Z', '2026-11-23T08:59:30.000000Z',"
                     " '2026-11-23T08:30:00.000000Z', 'OperationalError: database is locked',"
                     " 1520, 3, 0, 0)")
    capsys.readouterr()
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert "due now:             1" in out
    assert "last delivery:       2026-11-23T11:30:00+03:00 (30 min ago)" in out
    assert ("  delivery             host:7:ab12: alive 2026-11-23T11:59:30+03:00 (30 s ago),"
            " progress 2026-11-23T11:30:00+03:00 (30 min ago); sent 1520 (0.0/s), 429s 3,"
            " paid 0; failing: OperationalError: database is locked") in out
    assert ("ALERT: 1 push is due since 2026-11-23T11:55:00+03:00 (5 min ago) and nothing"
            " has been delivered since 2026-11-23T11:30:00+03:00 (30 min ago). Is `diary run`"
            " (or `diary deliver`) running?") in out


def test_the_example_settings_file_is_valid_as_it_is(workdir, capsys):
    (workdir / ".env").write_text((EXAMPLE_ROOT.parent / ".env.example").read_text())
    assert main(["status"]) == 0
    assert "schema version:" in capsys.readouterr().out


SCHOOL_NOON = "2026-11-23T12:00:00+03:00"


def _grade(n: int, day: str = "2026-11-23") -> str:
    return json.dumps({"id": f"g{n}", "type": "grade", "grade_id": f"g{n}", "student_id": "S-1001",
                       "subject": "Алгебра", "date": day, "value": 5})


def test_counts_are_written_as_a_person_writes_them(workdir, capsys, monkeypatch):
    monkeypatch.setenv("CLOCK_START", SCHOOL_NOON)
    assert main(["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    assert capsys.readouterr().out.startswith(
        "roster imported: 5 students, 4 guardians, 2 classes, 5 student–guardian links\n")
    assert main(["link", "--telegram-id", "555", "--phone", SERGEY_PHONE]) == 0
    # The student's history first, loaded as history: what comes next is news.
    history = workdir / "history.jsonl"
    history.write_text(_grade(0, "2026-11-16") + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["journal", "import", str(history), "--no-notify"]) == 0
    capsys.readouterr()
    one = workdir / "one.jsonl"
    one.write_text(_grade(1) + "\n", encoding="utf-8")
    assert main(["journal", "import", str(one)]) == 0
    assert capsys.readouterr().out == (
        "journal imported: 1 line, applied 1 event (1 grade); 0 already imported, 0 repeated"
        " in the file, 0 rejected; 1 push queued\n")
    assert main(["journal", "import", str(one)]) == 0
    assert capsys.readouterr().out == (
        "journal imported: 1 line, applied 0 events; 1 already imported, 0 repeated"
        " in the file, 0 rejected; 0 pushes queued\n")
    two = workdir / "two.jsonl"
    two.write_text(_grade(2) + "\n" + _grade(3) + "\n" + json.dumps(
        {"id": "p1", "type": "period", "period_id": "q2", "name": "2 четверть",
         "start": "2026-11-01", "end": "2026-12-28"}) + "\n", encoding="utf-8")
    assert main(["journal", "import", str(two)]) == 0
    assert capsys.readouterr().out == (
        "journal imported: 3 lines, applied 3 events (2 grades, 1 period); 0 already imported,"
        " 0 repeated in the file, 0 rejected; 2 pushes queued\n")
    bad = workdir / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "type": "grade"}).replace("grade", "nothing") + "\n",
                   encoding="utf-8")
    assert main(["journal", "import", str(bad)]) == 2
    assert capsys.readouterr().err.endswith("\n1 problem; nothing was changed.\n")

    out = workdir / "codes.csv"
    assert main(["codes", "issue", "--student-id", "S-1005", "--out", str(out),
                 "--bot-username", "school_bot"]) == 0
    assert capsys.readouterr().err == f"1 code written to {out}\n"
    assert main(["codes", "issue", "--student-id", "S-1001", "--out", str(out),
                 "--bot-username", "school_bot"]) == 0
    assert capsys.readouterr().err == f"3 codes written to {out}\n"

    assert main(["jobs", "run", "housekeeping"]) == 0
    assert capsys.readouterr().out == (
        "housekeeping: deleted 0 delivered pushes, 0 digest decisions, 0 abandoned"
        " conversations, 0 expired or used codes, 0 failed code attempts, 0 silent workers\n")


def test_every_time_the_cli_prints_is_school_time_with_its_offset(workdir, capsys, monkeypatch):
    monkeypatch.setenv("CLOCK_START", SCHOOL_NOON)
    main(["roster", "import", str(EXAMPLE_ROSTER)])
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^last import: +roster \S+roster\.csv at 2026-11-23T12:00:\d\d\+03:00$",
                     out, flags=re.MULTILINE), out
    assert "Z" not in out.split("last import:")[1]
    monkeypatch.setenv("TIMEZONE", "Asia/Yekaterinburg")
    assert main(["status"]) == 0
    assert re.search(r"at 2026-11-23T14:00:\d\d\+05:00$", capsys.readouterr().out,
                     flags=re.MULTILINE)
    codes = workdir / "codes.csv"
    assert main(["codes", "issue", "--student-id", "S-1005", "--out", str(codes),
                 "--bot-username", "school_bot"]) == 0
    row = next(csv.DictReader(codes.open(encoding="utf-8")))
    assert row["expires"] == "2026-12-07"  # 14 days, a school-time date


def test_log_lines_are_stamped_in_school_time():
    import logging
    from zoneinfo import ZoneInfo

    from bot.cli import SchoolTimeFormatter

    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "started", None, None)
    record.created = 1_795_424_400.25  # 2026-11-23T09:00:00.250Z
    formatter = SchoolTimeFormatter("%(asctime)s %(message)s", ZoneInfo("Europe/Moscow"))
    assert formatter.format(record) == "2026-11-23T12:00:00.250+03:00 started"


def test_settings_database_url_and_the_old_database_path(workdir, monkeypatch):
    from bot.config import Settings

    settings = Settings(_env_file=None)
    assert settings.database == f"sqlite:///{workdir / 'data' / 'diary.sqlite3'}"
    monkeypatch.delenv("DATABASE_PATH")
    assert Settings(_env_file=None).database == "sqlite:///data/diary.sqlite3"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///elsewhere/school.sqlite3")
    settings = Settings(_env_file=None)
    assert settings.sqlite_path == Path("elsewhere/school.sqlite3")
    monkeypatch.setenv("DATABASE_URL", "postgresql://diary@db.internal/diary")
    monkeypatch.setenv("SECRET_KEY", "k" * 32)
    settings = Settings(_env_file=None)
    assert settings.sqlite_path is None and settings.secret() == b"k" * 32


def test_postgresql_without_secret_key_is_a_clear_error(workdir, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://diary@127.0.0.1:1/diary")
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("settings: SECRET_KEY must be set with a PostgreSQL DATABASE_URL")
    assert not (workdir / "data").exists()  # no key file made up on this host


async def test_the_commands_on_postgresql(workdir, capsys, monkeypatch, postgres_url):
    import asyncio

    from tests.conftest import pg_schema

    async with pg_schema(postgres_url) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("SECRET_KEY", "test-secret-key-0123456789")
        run = asyncio.to_thread
        assert await run(main, ["db", "upgrade"]) == 0
        assert "applied: 0001" in capsys.readouterr().out
        assert await run(main, ["roster", "import", str(EXAMPLE_ROSTER)]) == 0
        assert await run(main, ["journal", "import", str(EXAMPLE_ROOT / "journal.jsonl")]) == 0
        assert await run(main, ["status"]) == 0
        out = capsys.readouterr().out
        assert "students: +5 added" in out and "students (active):   5" in out
        assert f"schema version:      {head()}" in out
    assert not (workdir / "data").exists()  # nothing written beside a SQLite file


async def test_a_school_moves_from_sqlite_to_postgresql_with_every_row(
        workdir, capsys, monkeypatch, postgres_url):
    import asyncio

    from core.storage.db import Database
    from tests.conftest import pg_schema

    run = asyncio.to_thread
    monkeypatch.setenv("SECRET_KEY", "test-secret-key-0123456789")
    assert await run(main, ["roster", "import", str(EXAMPLE_ROSTER)]) == 0
    assert await run(main, ["link", "--telegram-id", "555", "--phone", SERGEY_PHONE]) == 0
    assert await run(main, ["journal", "import", str(EXAMPLE_ROOT / "journal.jsonl")]) == 0
    source = sqlite3.connect(workdir / "data" / "diary.sqlite3")
    tables = [r[0] for r in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN"
        " ('alembic_version', 'schema_migrations', 'sqlite_sequence')")]
    before = {t: source.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    source.close()
    assert before["grades"] > 0 and before["outbox"] > 0 and before["account_links"] == 1
    capsys.readouterr()
    async with pg_schema(postgres_url) as url:
        assert await run(main, ["db", "copy", "--to", url]) == 0
        out = capsys.readouterr().out
        assert f"copied {sum(before.values())} rows of" in out and "SECRET_KEY" in out
        async with Database(url) as target:
            after = {t: await target.scalar(f"SELECT COUNT(*) FROM {t}") for t in tables}
            top = await target.scalar("SELECT MAX(id) FROM grades")
        assert after == before
        # The copy is a working school: new ids continue after the copied ones.
        monkeypatch.setenv("DATABASE_URL", url)
        extra = workdir / "more.jsonl"
        extra.write_text(json.dumps({"id": "more-1", "type": "grade", "grade_id": "more-g1",
                                     "student_id": "S-1001", "subject": "Алгебра",
                                     "date": "2026-11-20", "value": 4}) + "\n")
        assert await run(main, ["journal", "import", str(extra)]) == 0
        async with Database(url) as target:
            assert await target.scalar(
                "SELECT id FROM grades WHERE external_id = 'more-g1'") == top + 1
        # A target that holds rows is refused, and nothing is copied.
        monkeypatch.delenv("DATABASE_URL")
        capsys.readouterr()
        assert await run(main, ["db", "copy", "--to", url]) == 2
        assert "the target already holds rows" in capsys.readouterr().err
