"""Announcements: stored, replaced, and pushed once to each account of their audience."""

from __future__ import annotations

import json

import pytest

from core.errors import InputInvalid
from core.importers.journal import parse_journal
from core.models import Scope
from tests.support.school import (
    ANDREY_PHONE,
    ANNA_PHONE,
    IVAN_PHONE,
    SERGEY_PHONE,
    TZ,
    journal_history,
)

ANNA, IVAN, SERGEY, ANDREY, TRUSTED = 5001, 5002, 5003, 5004, 8001
SCHOOL = "ГБОУ Школа № 1234"


def ann(n: int | str, text: str = "Собрание в четверг", **extra) -> dict:
    return {"id": f"ev-{n}", "type": "announcement", "announcement_id": extra.pop("aid", "n-1"),
            "text": text, **extra}


async def run(services, *events: dict, **kw):
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    parsed = parse_journal(lines, "j.jsonl")
    return await services.journal.import_journal(parsed, "j.jsonl", dict(enumerate(lines, 1)),
                                                 **kw)


async def pushes(services) -> list[tuple[int, dict]]:
    rows = await services.db.fetchall(
        "SELECT telegram_id, payload, dedup_key FROM outbox WHERE kind = 'announcement'"
        " ORDER BY id")
    return [(r[0], json.loads(r[1])) for r in rows]


async def recipients(services) -> list[int]:
    return sorted(tg for tg, _p in await pushes(services))


@pytest.fixture
async def linked(school):
    """Ivan (7Б), his mother Anna (also of Maria, 5А), his father Sergey, Andrey (father of
    Olga, 7Б) linked."""
    for tg, phone in ((ANNA, ANNA_PHONE), (IVAN, IVAN_PHONE), (SERGEY, SERGEY_PHONE),
                      (ANDREY, ANDREY_PHONE)):
        await school.linking.link_contact(tg, tg, tg, phone)
    await journal_history(school)
    return school


async def test_stored_with_its_classes_and_links(linked):
    summary, _ = await run(linked, ann(1, classes=["7 б"], audience="parents", pinned_until=
                                       "2026-11-30", links=["https://school.ru/plan"]))
    assert summary.applied == {"announcement": 1}
    row = await linked.db.fetchone(
        "SELECT a.text, a.audience, a.links, a.pinned_until, s.name FROM announcements a"
        " JOIN schools s ON s.id = a.school_id WHERE a.external_id = 'n-1'")
    assert tuple(row) == ("Собрание в четверг", "parents",
                          '[{"url": "https://school.ru/plan", "title": null}]', "2026-11-30",
                          SCHOOL)
    assert await linked.db.fetchall(
        "SELECT c.name FROM announcement_classes ac JOIN classes c ON c.id = ac.class_id") == [
        ("7Б",)]


async def test_parents_only(linked):
    summary, _ = await run(linked, ann(1, audience="parents"))
    assert await recipients(linked) == [ANNA, SERGEY, ANDREY]
    assert summary.pushes == 3
    assert (await pushes(linked))[0][1] == {"text": "Собрание в четверг", "updated": False}


async def test_students_only(linked):
    await run(linked, ann(1, audience="students", links=[{"url": "https://a.ru", "title": "A"}]))
    assert await pushes(linked) == [
        (IVAN, {"text": "Собрание в четверг", "updated": False,
                "links": [{"url": "https://a.ru", "title": "A"}]})]


async def test_all_reaches_each_account_once(linked):
    await run(linked, ann(1))  # Anna follows two children of the school: one push
    assert await recipients(linked) == [ANNA, IVAN, SERGEY, ANDREY]
    keys = [r[0] for r in await linked.db.fetchall("SELECT dedup_key FROM outbox")]
    row_id = await linked.db.scalar("SELECT id FROM announcements")
    assert sorted(keys) == sorted(f"ann:{row_id}:{tg}" for tg in (ANNA, SERGEY, ANDREY, IVAN))


async def test_a_class_announcement_does_not_reach_another_class(linked):
    await run(linked, ann(1, classes=["5А"]))
    assert await recipients(linked) == [ANNA]  # Maria's mother; 7Б's families are not told
    await run(linked, ann(2, aid="n-2", classes=["7Б"], audience="students"))
    assert [tg for tg, p in await pushes(linked)] == [ANNA, IVAN]


async def test_a_trusted_person_with_homework_and_the_timetable_is_told(linked):
    viewer = await linked.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    for tg, phone, scopes in ((TRUSTED, "+7 903 111-22-33", {Scope.HOMEWORK}),
                              (TRUSTED + 1, "+7 903 111-22-44", {Scope.GRADES})):
        invitation, _, _ = await linked.trusted.invite(viewer, [ivan.id], phone, "Иванова",
                                                       scopes)
        async with linked.db.transaction() as tx:  # the invitee's account, phone vouched for
            await tx.execute(
                "INSERT INTO accounts (telegram_id, chat_id, phone_hash, created_at, updated_at)"
                " VALUES (?, ?, (SELECT phone_hash FROM invitations WHERE id = ?), ?, ?)",
                (tg, tg, invitation.id, "2026-11-23T09:00:00Z", "2026-11-23T09:00:00Z"))
        await linked.trusted.accept(tg, invitation.id)
    await run(linked, ann(1, classes=["7Б"], audience="parents"))
    assert await recipients(linked) == [ANNA, SERGEY, ANDREY, TRUSTED]
    await run(linked, ann(2, aid="n-2", classes=["7Б"], audience="students"))
    assert TRUSTED not in [tg for tg, p in (await pushes(linked))[4:]]


async def test_an_update_is_stored_and_pushed_only_when_the_text_changed(linked):
    await run(linked, ann(1, audience="students"))
    summary, _ = await run(linked, ann(2, audience="students", pinned_until="2026-12-01"))
    assert summary.applied == {"announcement": 1} and summary.pushes == 0
    assert await linked.db.scalar("SELECT pinned_until FROM announcements") == "2026-12-01"
    summary, _ = await run(linked, ann(3, "Собрание переносится на пятницу",
                                       audience="students"))
    assert summary.pushes == 1
    assert [p for _tg, p in await pushes(linked)] == [
        {"text": "Собрание в четверг", "updated": False},
        {"text": "Собрание переносится на пятницу", "updated": True}]
    row = await linked.db.fetchone("SELECT text, revision FROM announcements")
    assert tuple(row) == ("Собрание переносится на пятницу", 1)
    assert await linked.db.scalar("SELECT COUNT(*) FROM announcements") == 1


async def test_switched_off_and_no_notify_send_nothing(linked):
    await linked.preferences.set_flag(ANNA, "push_announcements", False)
    await run(linked, ann(1, audience="parents"))
    assert await recipients(linked) == [SERGEY, ANDREY]
    summary, _ = await run(linked, ann(2, aid="n-2"), notify=False)
    assert summary.pushes == 0


async def test_unknown_classes_and_schools_are_refused(linked):
    with pytest.raises(InputInvalid) as caught:
        await run(linked, ann(1, classes=["7Б", "9я"]), ann(2, aid="n-2", school="Лицей"))
    assert [str(p) for p in caught.value.problems] == [
        "j.jsonl:1: classes[1]: unknown class '9Я'",
        "j.jsonl:2: school: unknown school 'Лицей'"]
    assert await linked.db.scalar("SELECT COUNT(*) FROM announcements") == 0


async def test_the_journals_school_is_kept_to(linked):
    with pytest.raises(InputInvalid) as caught:
        await run(linked, ann(1, classes=["7Б"]), ann(2, aid="n-2", school="Лицей"),
                  school="Лицей")
    assert [str(p) for p in caught.value.problems] == [
        "j.jsonl:1: classes[0]: unknown class '7Б' (not in this school)",
        "j.jsonl:2: school: unknown school 'Лицей'"]
    summary, _ = await run(linked, ann(3, classes=["7Б"]), school=SCHOOL)
    assert summary.applied == {"announcement": 1}


async def test_the_whole_school_needs_a_school_when_the_roster_has_several(linked):
    async with linked.db.transaction() as tx:  # a second school beside the example's
        await tx.execute("INSERT INTO schools (name) VALUES ('Лицей № 2')")
        await tx.execute("INSERT INTO classes (school_id, name) SELECT id, '7Б' FROM schools"
                         " WHERE name = 'Лицей № 2'")
    with pytest.raises(InputInvalid) as caught:
        await run(linked, ann(1), ann(2, aid="n-2", classes=["7Б"]))
    assert [str(p) for p in caught.value.problems] == [
        "j.jsonl:1: school: required for an announcement to the whole school:"
        " the roster has several schools",
        "j.jsonl:2: classes[0]: class '7Б' exists in several schools (give school)"]
    summary, _ = await run(linked, ann(3, school=SCHOOL), ann(4, aid="n-2", school=SCHOOL,
                                                            classes=["7Б"]))
    assert summary.applied == {"announcement": 2}
    summary, _ = await run(linked, ann(5, aid="n-3"), school="Лицей № 2")
    assert summary.pushes == 0  # nobody of the lyceum uses the bot


async def test_2000_families_get_one_push_each_and_a_reimport_adds_none(services):
    """A school-wide announcement to 2,000 families (a guardian and a child each, and a
    guardian with two children): exactly one outbox row per account, and none more when the
    file comes again or the announcement is sent again unchanged."""
    families = 2000
    stamp = "2026-09-01T06:00:00Z"
    async with services.db.transaction() as tx:
        await tx.execute("INSERT INTO schools (id, name) VALUES (1, 'Школа')")
        await tx.executemany("INSERT INTO classes (id, school_id, name) VALUES (?, 1, ?)",
                             [(n + 1, f"{n // 4 + 1}{'АБВГ'[n % 4]}") for n in range(40)])
        await tx.executemany(
            "INSERT INTO students (id, external_id, school_id, class_id, last_name, first_name,"
            " created_at, updated_at, journal_since) VALUES (?, ?, 1, ?, 'Иванов', 'Иван', ?,"
            " ?, ?)", [(n, f"S-{n}", n % 40 + 1, stamp, stamp, stamp)
                       for n in range(1, families + 2)])
        await tx.executemany(
            "INSERT INTO guardians (id, last_name, first_name, created_at, updated_at)"
            " VALUES (?, 'Иванова', 'Анна', ?, ?)",
            [(n, stamp, stamp) for n in range(1, families + 1)])
        # Family 1 has two children at the school.
        await tx.executemany("INSERT INTO guardianships (guardian_id, student_id) VALUES (?, ?)",
                             [(n, n) for n in range(1, families + 1)] + [(1, families + 1)])
        await tx.executemany(
            "INSERT INTO accounts (telegram_id, chat_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?)", [(10_000 + n, 10_000 + n, stamp, stamp)
                                     for n in range(1, families + 1)])
        await tx.executemany(
            "INSERT INTO account_links (telegram_id, guardian_id, via, linked_at)"
            " VALUES (?, ?, 'phone', ?)", [(10_000 + n, n, stamp)
                                           for n in range(1, families + 1)])
    event = ann(1, audience="parents")
    summary, _ = await run(services, event)
    assert summary.pushes == families
    rows = await services.db.fetchall(
        "SELECT telegram_id, COUNT(*) FROM outbox WHERE kind = 'announcement'"
        " GROUP BY telegram_id")
    assert len(rows) == families and {r[1] for r in rows} == {1}
    again, _ = await run(services, event)
    assert again.already_imported == 1 and again.pushes == 0
    resent, _ = await run(services, ann(2, audience="parents"))
    assert resent.applied == {"announcement": 1} and resent.pushes == 0
    assert await services.db.scalar("SELECT COUNT(*) FROM outbox") == families


async def test_todays_new_announcements_are_a_line_each_in_the_digest(linked, clock):
    from datetime import UTC, datetime

    from tests.storage.test_digest import text_of

    clock.moment = datetime(2026, 11, 22, 12, 0, tzinfo=TZ).astimezone(UTC)
    await run(linked, ann(1, "Вчерашнее объявление"), notify=False)
    clock.moment = datetime(2026, 11, 23, 8, 0, tzinfo=TZ).astimezone(UTC)
    long = "Осенний бал состоится в субботу в актовом зале. " * 5
    await run(linked, ann(2, long, aid="n-2"), ann(3, "Экскурсия 5А\nСбор в 8:00", aid="n-3",
                                                    classes=["5А"]),
              ann(4, "Ученикам: сменка", aid="n-4", audience="students"), notify=False)
    clock.moment = datetime(2026, 11, 23, 19, 0, tzinfo=TZ).astimezone(UTC)
    await linked.digest.run()
    rows = {r[0]: json.loads(r[1]) for r in await linked.db.fetchall(
        "SELECT telegram_id, payload FROM outbox WHERE kind = 'digest'")}
    assert rows[ANNA]["announcements"] == [
        {"text": "Осенний бал состоится в субботу в актовом зале. Осенний бал состоится в"
                 " субботу в актовом зале…"},
        {"text": "Экскурсия 5А…"}]
    assert rows[IVAN]["announcements"] == [
        {"text": "Осенний бал состоится в субботу в актовом зале. Осенний бал состоится в"
                 " субботу в актовом зале…"},
        {"text": "Ученикам: сменка"}]
    assert [x["text"][:11] for x in rows[ANDREY]["announcements"]] == ["Осенний бал"]  # 7Б
    text, _markup = text_of(rows[ANNA])
    assert text.endswith("\n\n📢 Объявления школы за сегодня:\n"
                         "• Осенний бал состоится в субботу в актовом зале. Осенний бал"
                         " состоится в субботу в актовом зале…\n• Экскурсия 5А…")
