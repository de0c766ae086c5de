"""A roster import and journal imports at the same time, on two connections (two processes):
both finish, whatever order they take the students' rows in."""

from __future__ import annotations

import asyncio
import json

from bot.services import build_services
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from core.storage.db import Database
from tests.support.school import SECRET, TZ

HEADER = ("school,class,student_id,student_last_name,student_first_name,student_middle_name,"
          "student_phone,student_email,student_snils,guardian_last_name,guardian_first_name,"
          "guardian_middle_name,guardian_phone,guardian_email,guardian_snils,guardian_relation")
STUDENTS = 200


def roster(surname: str, order: range) -> str:
    rows = [f"ГБОУ Школа № 1234,7Б,S-{n},{surname},Иван{n},,,,,Петрова,Анна{n},,"
            f"+7900{n:07d},,,mother" for n in order]
    return "\n".join([HEADER, *rows]) + "\n"


def journal(round_: int) -> list[str]:
    return [json.dumps({"id": f"r{round_}-g{n}", "type": "grade", "grade_id": f"r{round_}-{n}",
                        "student_id": f"S-{n}", "subject": "Алгебра", "date": "2026-11-20",
                        "value": 5}) for n in range(STUDENTS)] + [
        json.dumps({"id": f"r{round_}-l", "type": "lesson", "class": "7Б", "date": "2026-11-20",
                    "number": 1, "subject": "Алгебра", "start": "08:30", "end": "09:15"})]


async def test_a_roster_import_beside_journal_imports_both_finish(db, database_url, clock):
    if True:
        a = build_services(db, SECRET, TZ, clock)
        await a.roster.apply(parse_roster(roster("Петров", range(STUDENTS)), "r.csv"), "r.csv")
        other = await Database(database_url).connect()
        try:
            b = build_services(other, SECRET, TZ, clock)
            for round_ in range(3):
                # The roster touches the students last to first; the journal locks them first
                # to last.
                text = roster(f"Петров{round_}", range(STUDENTS - 1, -1, -1))
                await asyncio.gather(
                    a.roster.apply(parse_roster(text, "r.csv"), "r.csv"),
                    b.journal.import_journal(parse_journal(journal(round_), "j.jsonl"),
                                             "j.jsonl", notify=False))
            assert await db.scalar("SELECT COUNT(*) FROM grades") == 3 * STUDENTS
            assert await db.scalar("SELECT COUNT(*) FROM lessons") == 1
            assert await db.scalar(
                "SELECT COUNT(*) FROM students WHERE last_name = 'Петров2'") == STUDENTS
        finally:
            await other.close()
