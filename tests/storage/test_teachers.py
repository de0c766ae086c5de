"""Applying teachers.csv, and teachers linking by phone or by a one-time code."""

from __future__ import annotations

import pytest

from core.errors import InputInvalid, LinkCodeInvalid, PhoneNotFound
from core.importers.teachers import parse_teachers
from core.services.teachers import seats
from tests.support.school import ANNA_PHONE, EXAMPLE_ROOT

TEACHERS = (EXAMPLE_ROOT / "teachers.csv").read_text(encoding="utf-8")
HEADER = "school,class,teacher_id,last_name,first_name,middle_name,phone,email\n"
SOKOLOVA, ORLOV = 7001, 7002


async def load(s, text: str = TEACHERS, dry_run: bool = False):
    return await s.teachers.apply(parse_teachers(text, "teachers.csv"), "teachers.csv",
                                  dry_run=dry_run)


async def test_import_stores_teachers_classes_and_only_hashes(school):
    dry = await load(school, dry_run=True)
    assert (dry.teachers, dry.classes, dry.teachers_added, dry.dry_run) == (2, 2, 2, True)
    assert await school.db.scalar("SELECT COUNT(*) FROM teachers") == 0
    summary = await load(school)
    assert (summary.teachers_added, summary.classes_assigned) == (2, 2)
    rows = await school.db.fetchall(
        "SELECT t.external_id, c.name, t.phone_hash, t.email_hash FROM teachers t"
        " JOIN teacher_classes tc ON tc.teacher_id = t.id JOIN classes c ON c.id = tc.class_id"
        " ORDER BY c.name")
    assert [(r[0], r[1]) for r in rows] == [("T-02", "5А"), ("T-01", "7Б")]
    dump = " ".join(str(v) for r in rows for v in r)
    assert "9032000001" not in dump and "example.ru" not in dump and len(rows[1][2]) == 64
    # Again: nothing changes.
    again = await load(school)
    assert (again.teachers_added, again.teachers_updated, again.classes_assigned) == (0, 0, 0)


async def test_a_class_or_school_not_in_the_roster_changes_nothing(school):
    text = HEADER + (",7Б,T-01,Соколова,Мария,,,\n"
                     ",9Г,T-02,Орлов,Павел,,,\n"
                     "Лицей № 2,5А,T-03,Иванова,Анна,,,\n")
    with pytest.raises(InputInvalid) as err:
        await load(school, text)
    assert [str(p) for p in err.value.problems] == [
        "teachers.csv:3: class: no class 9Г in the roster",
        "teachers.csv:4: school: no such school in the roster"]
    assert await school.db.scalar("SELECT COUNT(*) FROM teachers") == 0


async def test_a_teacher_links_by_phone_and_sees_only_their_classes(school):
    await load(school)
    result = await school.linking.link_contact(SOKOLOVA, SOKOLOVA, SOKOLOVA, "+79032000001")
    assert (result.teacher_classes, result.children, result.new_links) == (("7Б",), (), 1)
    assert [s.class_name for s in await seats(school.db, SOKOLOVA)] == ["7Б"]
    assert await school.db.scalar(
        "SELECT via FROM teacher_links WHERE telegram_id = ?", (SOKOLOVA,)) == "phone"
    # A parent's number links no teacher.
    parent = await school.linking.link_contact(5001, 5001, 5001, ANNA_PHONE)
    assert parent.teacher_classes == () and await seats(school.db, 5001) == []


async def test_a_teacher_links_by_a_one_time_code(school):
    await load(school)
    [code] = await school.teachers.issue_codes(class_name="5а")
    assert (code.teacher_id, code.classes, code.name.full) == ("T-02", ("5А",),
                                                             "Орлов Павел Андреевич")
    result = await school.linking.redeem_code(ORLOV, ORLOV, code.code)
    assert result.teacher_classes == ("5А",)
    assert [s.class_name for s in await seats(school.db, ORLOV)] == ["5А"]
    with pytest.raises(LinkCodeInvalid):  # once only
        await school.linking.redeem_code(9999, 9999, code.code)
    # A new code revokes the unused earlier one.
    first, = await school.teachers.issue_codes(teacher_id="T-01")
    second, = await school.teachers.issue_codes(teacher_id="T-01")
    with pytest.raises(LinkCodeInvalid):
        await school.linking.redeem_code(SOKOLOVA, SOKOLOVA, first.code)
    assert (await school.linking.redeem_code(SOKOLOVA, SOKOLOVA, second.code)
            ).teacher_classes == ("7Б",)


async def test_leaving_teachers_csv_ends_access_and_moving_classes_follows(school):
    await load(school)
    await school.linking.link_contact(SOKOLOVA, SOKOLOVA, SOKOLOVA, "+79032000001")
    await school.linking.link_contact(ORLOV, ORLOV, ORLOV, "+79032000002")
    # Орлов takes 7Б too; Соколова leaves.
    text = HEADER + (",7Б,T-02,Орлов,Павел,Андреевич,+7 903 200-00-02,\n"
                     ",5А,T-02,Орлов,Павел,Андреевич,+7 903 200-00-02,\n")
    summary = await load(school, text)
    assert (summary.teachers_removed, summary.links_ended, summary.classes_assigned,
            summary.classes_unassigned) == (1, 1, 1, 0)
    assert await seats(school.db, SOKOLOVA) == []
    assert [s.class_name for s in await seats(school.db, ORLOV)] == ["5А", "7Б"]
    # Her number no longer links her; listed again, she links anew.
    with pytest.raises(PhoneNotFound):
        await school.linking.link_contact(SOKOLOVA, SOKOLOVA, SOKOLOVA, "+79032000001")
    await load(school)
    assert (await school.linking.link_contact(SOKOLOVA, SOKOLOVA, SOKOLOVA, "+79032000001")
            ).teacher_classes == ("7Б",)
