"""The example school (examples/roster.csv) as tests know it."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.services import Services
from core.importers.roster import parse_roster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ROOT = ROOT / "examples"
EXAMPLE_ROSTER = EXAMPLE_ROOT / "roster.csv"
SECRET = b"test-secret-key-0123456789abcdef"
TZ = ZoneInfo("Europe/Moscow")

# Numbers in examples/roster.csv.
ANNA_PHONE = "+79001234567"  # mother of S-1001 (7Б) and S-1002 (5А)
SERGEY_PHONE = "+79007654321"  # father of S-1001
IVAN_PHONE = "+79161001001"  # the student S-1001 himself
ANDREY_PHONE = "+79012223344"  # father of S-1003


async def import_roster(services: Services, text: str | None = None, name: str = "roster.csv"):
    if text is None:
        text = EXAMPLE_ROSTER.read_text(encoding="utf-8")
    return await services.roster.apply(parse_roster(text, name), name)


HISTORY_SINCE = "2026-09-01T06:00:00.000000Z"


async def journal_history(services: Services, *student_ids: str) -> None:
    """The students (by default every one on the roster) as if the journal had already brought
    their history. The import that brings a student's first journal data stores it without
    pushes (a new school never floods its families); a test about pushes starts from here."""
    where, params = "", ()
    if student_ids:
        where = f" AND external_id IN ({', '.join('?' * len(student_ids))})"
        params = student_ids
    async with services.db.transaction() as tx:
        await tx.execute(f"UPDATE students SET journal_since = ? WHERE journal_since IS NULL"
                         f"{where}", (HISTORY_SINCE, *params))


EXAMPLE_STUDENTS = ("S-1001", "S-1002", "S-1003", "S-1004", "S-1005")


def journal_history_lines(student_ids: tuple[str, ...] = EXAMPLE_STUDENTS) -> list[str]:
    """A journal history that moves no average and counts no missed lesson (a late mark on the
    first Monday of the year for each student), to import with ``--no-notify`` before a test
    of the pushes of a running bot."""
    return [json.dumps({"id": f"history-{sid}", "type": "attendance",
                        "attendance_id": f"history-{sid}", "student_id": sid,
                        "date": "2026-09-07", "lesson": 1, "subject": "История", "mark": "late"},
                       ensure_ascii=False) for sid in student_ids]
