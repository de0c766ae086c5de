"""Applying rosters: in place updates, access changes, dry runs, no personal ids in clear."""

from __future__ import annotations

from core.models import Role
from tests.support.school import ANNA_PHONE, EXAMPLE_ROSTER, SERGEY_PHONE, import_roster

HEADER = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()[0]
ROWS = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()[1:]


def roster(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


async def test_first_import_summary(services):
    summary = await import_roster(services)
    assert (summary.students, summary.guardians, summary.classes, summary.links) == (5, 4, 2, 5)
    assert summary.students_added == 5 and summary.guardians_added == 4
    assert await services.db.scalar("SELECT COUNT(*) FROM students") == 5
    # Анна appears with three spellings of her number and is one person with two children.
    anna = await services.db.fetchall(
        "SELECT gs.student_id FROM guardians g JOIN guardianships gs ON gs.guardian_id = g.id"
        " WHERE g.first_name = 'Анна'"
    )
    assert len(anna) == 2


async def test_reimport_of_the_same_roster_changes_nothing(school):
    summary = await import_roster(school)
    assert summary.students_added == summary.students_updated == summary.students_moved == 0
    assert summary.guardians_added == summary.guardians_updated == 0
    assert summary.links_added == summary.links_removed == 0


async def test_moved_student_keeps_their_row(school):
    before = await school.db.scalar("SELECT id FROM students WHERE external_id = 'S-1004'")
    moved = [r.replace(",7Б,S-1004,", ",8А,S-1004,") for r in ROWS]
    summary = await import_roster(school, roster(*moved))
    assert summary.students_moved == 1
    row = await school.db.fetchone(
        "SELECT s.id, c.name FROM students s JOIN classes c ON c.id = s.class_id"
        " WHERE s.external_id = 'S-1004'"
    )
    assert (row["id"], row["name"]) == (before, "8А")


async def test_guardian_removed_from_a_child_loses_access_at_once(school):
    await school.linking.link_contact(1, 1, 1, SERGEY_PHONE)
    await school.linking.link_contact(2, 2, 2, ANNA_PHONE)
    assert len((await school.access.viewer(1)).children) == 1
    # Сергей disappears from the roster, Анна loses S-1002 but keeps S-1001.
    rows = [r for r in ROWS if "Сергей" not in r.split(",")[10]]
    rows = [r.replace("Петрова,Анна,Викторовна,+7 900 1234567,,,mother", ",,,,,,")
            if ",S-1002," in r else r for r in rows]
    summary = await import_roster(school, roster(*rows))
    assert summary.links_removed == 2 and summary.guardians_removed == 1
    assert (await school.access.viewer(1)).children == ()
    anna = await school.access.viewer(2)
    assert [c.name.first for c in anna.children] == ["Иван"]
    assert anna.children[0].role is Role.GUARDIAN


async def test_student_no_longer_listed_is_deactivated_not_deleted(school):
    await school.linking.link_contact(2, 2, 2, ANNA_PHONE)
    rows = [r for r in ROWS if ",S-1002," not in r]
    summary = await import_roster(school, roster(*rows))
    assert summary.students_deactivated == 1
    assert await school.db.scalar(
        "SELECT active FROM students WHERE external_id = 'S-1002'") == 0
    assert [c.name.first for c in (await school.access.viewer(2)).children] == ["Иван"]
    # Listed again: active again, same row.
    summary = await import_roster(school)
    assert summary.students_updated == 1
    assert len((await school.access.viewer(2)).children) == 2


async def test_dry_run_changes_nothing(services):
    text = EXAMPLE_ROSTER.read_text(encoding="utf-8")
    from core.importers.roster import parse_roster

    summary = await services.roster.apply(parse_roster(text, "r.csv"), "r.csv", dry_run=True)
    assert summary.dry_run and summary.students_added == 5
    assert await services.db.scalar("SELECT COUNT(*) FROM students") == 0
    assert await services.db.scalar("SELECT COUNT(*) FROM imports") == 0


async def test_database_file_holds_no_phone_email_or_snils(school, tmp_path):
    await school.linking.link_contact(2, 2, 2, ANNA_PHONE)
    await school.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("diary.sqlite3*"))
    for needle in ("9001234567", "900 123", "anna.petrova", "example.ru", "11223344595",
                   "112-233-445", "9161001001", "olga.s"):
        assert needle.encode() not in blob, needle
    assert "Петрова".encode() in blob  # names are kept in clear
