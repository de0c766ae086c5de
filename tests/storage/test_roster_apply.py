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


async def test_database_holds_no_phone_email_or_snils(school):
    await school.linking.link_contact(2, 2, 2, ANNA_PHONE)
    dump = []
    for table in sorted(await school.db.tables()):
        dump += [repr(tuple(row)) for row in await school.db.fetchall(f"SELECT * FROM {table}")]
    blob = "\n".join(dump)
    for needle in ("9001234567", "900 123", "anna.petrova", "example.ru", "11223344595",
                   "112-233-445", "9161001001", "olga.s"):
        assert needle not in blob, needle
    assert "Петрова" in blob  # names are kept in clear


SERGEY_ROW = ROWS[1]
NEW_OWNER = ROWS[5].replace(",,,,,,,,,,", ",,,,Волкова,Ирина,,+7 900 765-43-21,,,mother")


async def relink_pushes(school) -> list[int]:
    rows = await school.db.fetchall("SELECT telegram_id FROM outbox WHERE kind = 'relink'")
    return [r[0] for r in rows]


async def test_a_phone_that_passed_to_another_person_makes_a_new_guardian(school):
    await school.linking.link_contact(1, 1, 1, SERGEY_PHONE)
    assert [c.name.first for c in (await school.access.viewer(1)).children] == ["Иван"]
    # Сергей's number now belongs to Ирина, the mother of S-1005; Сергей is gone.
    rows = [r for r in ROWS if r != SERGEY_ROW and r != ROWS[5]] + [NEW_OWNER]
    sergey = await school.db.scalar("SELECT id FROM guardians WHERE first_name = 'Сергей'")
    summary = await import_roster(school, roster(*rows))
    assert summary.guardians_replaced == 1 and summary.guardians_updated == 0
    assert summary.guardians_added == 1 and summary.guardians_removed == 1
    assert summary.replaced == [[6, "guardian_phone"]]
    assert (await school.access.viewer(1)).children == ()
    assert await school.db.scalar("SELECT COUNT(*) FROM account_links") == 0
    assert await school.db.scalar("SELECT COUNT(*) FROM guardians WHERE id = ?", (sergey,)) == 0
    irina = await school.db.fetchone(
        "SELECT g.id, s.external_id FROM guardians g JOIN guardianships gs ON gs.guardian_id = g.id"
        " JOIN students s ON s.id = gs.student_id WHERE g.first_name = 'Ирина'")
    assert irina["id"] != sergey and irina["external_id"] == "S-1005"
    assert await relink_pushes(school) == [1]
    # The new owner of the number links and sees her own child only.
    await school.linking.link_contact(3, 3, 3, SERGEY_PHONE)
    assert [c.name.first for c in (await school.access.viewer(3)).children] == ["Артём"]
    # Importing the same roster again is no change and no second push.
    again = await import_roster(school, roster(*rows))
    assert again.guardians_replaced == 0 and await relink_pushes(school) == [1]


async def test_a_dry_run_reports_a_replaced_guardian_and_changes_nothing(school):
    from core.importers.roster import parse_roster

    await school.linking.link_contact(1, 1, 1, SERGEY_PHONE)
    rows = [r for r in ROWS if r != SERGEY_ROW and r != ROWS[5]] + [NEW_OWNER]
    summary = await school.roster.apply(parse_roster(roster(*rows), "r.csv"), "r.csv",
                                        dry_run=True)
    assert summary.guardians_replaced == 1
    assert [c.name.first for c in (await school.access.viewer(1)).children] == ["Иван"]
    assert await relink_pushes(school) == []


async def test_a_new_surname_with_the_same_snils_is_the_same_person(school):
    await school.linking.link_contact(2, 2, 2, ANNA_PHONE)
    rows = [r.replace("Петрова,Анна,Викторовна", "Иванова,Анна,Викторовна") for r in ROWS]
    summary = await import_roster(school, roster(*rows))
    assert summary.guardians_replaced == 0 and summary.guardians_updated == 1
    assert len((await school.access.viewer(2)).children) == 2
    assert await relink_pushes(school) == []


async def test_a_new_first_name_behind_a_phone_without_snils_is_another_person(school):
    await school.linking.link_contact(1, 1, 1, SERGEY_PHONE)
    rows = [r.replace("Петров,Сергей,Иванович", "Петров,Семён,Иванович") for r in ROWS]
    summary = await import_roster(school, roster(*rows))
    assert summary.guardians_replaced == 1 and summary.replaced == [[3, "guardian_phone"]]
    assert (await school.access.viewer(1)).children == ()
    assert await relink_pushes(school) == [1]
    # A middle name corrected, or a different case or ё, is the same person.
    await school.linking.link_contact(1, 1, 1, SERGEY_PHONE)
    rows = [r.replace("Петров,Сергей,Иванович", "ПЕТРОВ,Семен,Ильич") for r in ROWS]
    summary = await import_roster(school, roster(*rows))
    assert summary.guardians_replaced == 0 and summary.guardians_updated == 1
    assert [c.name.first for c in (await school.access.viewer(1)).children] == ["Иван"]
