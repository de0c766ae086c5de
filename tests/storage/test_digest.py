"""The daily digest and the weekly sign-off, with a controllable clock (school time: Moscow)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import pytest

from bot.i18n import create_i18n
from bot.notify import render_batch
from bot.services import build_services
from core.errors import PhoneNotFound
from core.importers.journal import parse_journal
from core.models import Scope
from core.storage.db import Database
from tests.support.school import ANNA_PHONE, IVAN_PHONE, SECRET, TZ

ANNA, IVAN = 5001, 5002


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


async def feed(services, *events: dict, notify: bool = False) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=notify)


async def digests(services) -> list[tuple[int, dict]]:
    rows = await services.db.fetchall(
        "SELECT telegram_id, payload FROM outbox WHERE kind = 'digest' ORDER BY id")
    return [(r[0], json.loads(r[1])) for r in rows]


def text_of(services_rows) -> tuple[str, object]:
    from core.services.outbox import OutboxItem

    i18n = create_i18n("ru")
    item = OutboxItem(1, "digest", None, services_rows, datetime.now(UTC), 0)
    with i18n.context(), i18n.use_locale("ru"):
        [message], _ = render_batch((item,))
    return message.text, message.markup


@pytest.fixture
async def family(school, clock):
    clock.moment = at(20, 9)  # last Friday
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await feed(school,
               {"id": "g0", "type": "grade", "grade_id": "g0", "student_id": "S-1001",
                "subject": "Алгебра", "date": "2026-11-20", "value": 4})
    clock.moment = at(23, 10)
    await feed(school,
               {"id": "g1", "type": "grade", "grade_id": "g1", "student_id": "S-1001",
                "subject": "Алгебра", "date": "2026-11-23", "value": 5, "weight": 3,
                "work": "Контрольная работа"},
               {"id": "a1", "type": "attendance", "attendance_id": "a1", "student_id": "S-1001",
                "date": "2026-11-23", "lesson": 2, "subject": "Физика", "mark": "absent"},
               {"id": "d1", "type": "dot", "dot_id": "d1", "student_id": "S-1001",
                "subject": "Химия", "date": "2026-11-20", "expires": "2026-11-25"},
               {"id": "h1", "type": "homework", "homework_id": "h1", "class": "7Б",
                "subject": "Алгебра", "due": "2026-11-24", "text": "№ 245"},
               {"id": "l1", "type": "lesson", "class": "7Б", "date": "2026-11-24",
                "number": 1, "subject": "Алгебра", "start": "08:30", "end": "09:15"},
               notify=True)
    # History loaded today without pushes is not «today's grades».
    await feed(school, {"id": "old", "type": "grade", "grade_id": "old", "student_id": "S-1001",
                        "subject": "История", "date": "2026-10-01", "value": 2})
    return school


async def test_at_19_00_one_digest_per_day_with_the_days_news(family, clock):
    clock.moment = at(23, 18, 59)
    assert (await family.digest.run()).sent == 0
    clock.moment = at(23, 19, 0)
    result = await family.digest.run()
    assert result.sent == 2  # Анна and Иван himself (Мария's day is empty, but Анна has news)
    again = await family.digest.run()
    assert (again.sent, again.empty) == (0, 0)
    [(_, payload)] = [d for d in await digests(family) if d[0] == ANNA]
    text, markup = text_of(payload)
    assert text.startswith("📰 Сводка за понедельник, 23 ноября\n\n👤 Иван Петров, 7Б\n")
    assert "Оценки сегодня:\n• Алгебра: 5 (вес 3, Контрольная работа) — средний 4,00 → 4,75"\
        in text
    assert "Посещаемость сегодня:\n• 2-й урок, Физика — отсутствие" in text
    assert "История" not in text
    assert "Открытые точки:\n• Химия: до 25 ноября, осталось 2 дня" in text
    assert "Вторник, 24 ноября:\nУроки: 1. Алгебра 08:30\n• Алгебра: № 245" in text
    assert "👤 Мария Петрова, 5А\nСегодня без новостей." in text
    assert markup is None  # not a Friday


async def test_two_processes_never_send_two_digests(family, clock, tmp_path):
    clock.moment = at(23, 19, 5)
    other_db = await Database(family.db.url).connect()
    try:
        other = build_services(other_db, SECRET, TZ, clock)
        a, b = await asyncio.gather(family.digest.run(), other.digest.run())
    finally:
        await other_db.close()
    assert a.sent + b.sent == 2
    assert len(await digests(family)) == 2


async def test_late_within_grace_then_gives_up(family, clock):
    clock.moment = at(23, 22, 30)  # the bot was down at 19:00
    assert (await family.digest.run()).sent == 2
    clock.moment = at(24, 23, 5)  # next day: more than four hours late
    result = await family.digest.run()
    assert (result.sent, result.skipped_late) == (0, 2)


async def test_nothing_to_say_sends_nothing_unless_asked(family, clock):
    code = (await family.linking.issue_codes(student_external_id="S-1005"))[0].code
    await family.linking.redeem_code(7001, 7001, code)  # Артём, 5А: no news at all
    clock.moment = at(23, 19, 1)
    result = await family.digest.run()
    assert result.empty == 1 and 7001 not in [d[0] for d in await digests(family)]
    await family.preferences.set_flag(7001, "digest_empty", True)
    clock.moment = at(24, 19, 1)
    await family.digest.run()
    assert 7001 in [d[0] for d in await digests(family)]


async def test_settings_change_time_off_and_children(family, clock):
    await family.preferences.set_digest_time(ANNA, "21:00")
    await family.preferences.set_flag(IVAN, "digest_enabled", False)
    clock.moment = at(23, 19, 1)
    assert (await family.digest.run()).sent == 0
    maria = await family.db.scalar("SELECT id FROM students WHERE external_id = 'S-1002'")
    await family.preferences.toggle_child(ANNA, maria)
    clock.moment = at(23, 21, 1)
    assert (await family.digest.run()).sent == 1
    [(_, payload)] = await digests(family)
    assert [c["name"] for c in payload["children"]] == ["Иван Петров"]


async def test_friday_looks_to_monday_and_asks_to_sign(family, clock):
    await feed(family, {"id": "l9", "type": "lesson", "class": "7Б", "date": "2026-11-30",
                        "number": 1, "subject": "История", "start": "08:30", "end": "09:15"})
    clock.moment = at(27, 19, 1)  # Friday
    await family.digest.run()
    anna = next(p for to, p in await digests(family) if to == ANNA)
    ivan_view = next(p for to, p in await digests(family) if to == IVAN)
    text, markup = text_of(anna)
    assert "Понедельник, 30 ноября:\nУроки: 1. История 08:30" in text
    assert [row[0].text for row in markup.inline_keyboard] == [
        "✍️ Ознакомлен(а) — Иван", "✍️ Ознакомлен(а) — Мария"]
    assert text_of(ivan_view)[1] is None  # the student does not sign
    viewer = await family.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    signed = await family.digest.sign(viewer, ivan.id, date(2026, 11, 23))
    assert signed == clock.now()
    clock.advance(minutes=5)
    assert await family.digest.sign(viewer, ivan.id, date(2026, 11, 23)) == signed
    rows = await family.digest.signoffs(date(2026, 11, 23), "7Б")
    ivan_row = next(r for r in rows if r["external_id"] == "S-1001")
    assert ivan_row["guardian"] == "Петрова Анна" and ivan_row["signed_at"]
    assert all(r["signed_at"] is None for r in rows if r["external_id"] != "S-1001")


async def test_trusted_person_gets_the_digest_only_with_that_scope(family, clock):
    with pytest.raises(PhoneNotFound):  # not in the roster, but now verified
        await family.linking.link_contact(8001, 8001, 8001, "+7 903 111-22-33")
    viewer = await family.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    inv, _, _ = await family.trusted.invite(viewer, [ivan.id], "+7 903 111-22-33", "Иванова",
                                            {Scope.ATTENDANCE, Scope.DIGEST})
    await family.trusted.accept(8001, inv.id)
    clock.moment = at(23, 19, 1)
    await family.digest.run()
    [(_, payload)] = [d for d in await digests(family) if d[0] == 8001]
    [child] = payload["children"]
    assert child["grades"] == [] and child["dots"] == [] and child["homework"] == []
    assert child["marks"][0]["subject"] == "Физика"


async def test_switched_off_pushes_are_not_sent(family, clock):
    async with family.db.transaction() as tx:
        await tx.execute("DELETE FROM outbox")  # what the fixture queued
    await family.preferences.set_flag(ANNA, "push_grades", False)
    clock.moment = at(23, 12)
    lines = [json.dumps({"id": "g7", "type": "grade", "grade_id": "g7", "student_id": "S-1001",
                         "subject": "Физика", "date": "2026-11-23", "value": 3},
                        ensure_ascii=False)]
    await family.journal.import_journal(parse_journal(lines, "j"), "j")
    batches = await family.outbox.claim()
    assert [b.telegram_id for b in batches] == [IVAN]
    assert await family.db.scalar(
        "SELECT last_error FROM outbox WHERE telegram_id = ?", (ANNA,)) == "muted"


async def test_the_digest_lists_groups_and_tasks_set_to_the_child_alone(family, clock):
    await feed(family,
               {"id": "l2a", "type": "lesson", "class": "7Б", "date": "2026-11-24", "number": 2,
                "subject": "Английский язык", "start": "09:25", "end": "10:10",
                "group": "1 группа"},
               {"id": "l2b", "type": "lesson", "class": "7Б", "date": "2026-11-24", "number": 2,
                "subject": "Английский язык", "start": "09:25", "end": "10:10",
                "group": "2 группа"},
               {"id": "h2", "type": "homework", "homework_id": "h2", "student_id": "S-1001",
                "subject": "Физика", "due": "2026-11-24", "text": "Переписать лабораторную"},
               {"id": "h3", "type": "homework", "homework_id": "h3", "student_id": "S-1003",
                "subject": "Физика", "due": "2026-11-24", "text": "Задание Ольги"})
    clock.moment = at(23, 19, 0)
    await family.digest.run()
    [(_, payload)] = [d for d in await digests(family) if d[0] == ANNA]
    text, _markup = text_of(payload)
    assert ("Вторник, 24 ноября:\nУроки: 1. Алгебра 08:30; 2. Английский язык 09:25 (1 группа);"
            " 2. Английский язык 09:25 (2 группа)\n• Алгебра: № 245\n"
            "• Физика: Переписать лабораторную") in text
    assert "Ольги" not in text


# -- the weekly chart after Friday's digest (``digest_chart``) ----------------------------------

class Drawer:
    """Stands in for the bot's chart drawing: records what it was asked, answers fixed bytes."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    async def __call__(self, week, locale, language) -> bytes:
        self.calls.append((week, locale, language))
        if self.fail:
            raise RuntimeError("no fonts")
        return b"\x89PNG week of " + str(week.student_id).encode()


async def outbox_of(services, telegram_id: int) -> list[tuple[str, int | None, dict]]:
    rows = await services.db.fetchall(
        "SELECT kind, student_id, payload FROM outbox WHERE telegram_id = ?"
        " AND kind IN ('digest', 'week_chart') ORDER BY id", (telegram_id,))
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


async def test_fridays_digest_is_followed_by_the_weeks_chart_when_asked(family, clock):
    from core.services.digest import WeekSubject

    await family.preferences.set_flag(ANNA, "digest_chart", True)
    drawer = Drawer()
    clock.moment = at(27, 19, 1)  # Friday
    result = await family.digest.run(drawer)
    assert result.charts == 1
    # Only Ivan had marks this week; Maria had none, so she gets no picture.
    [(week, locale, language)] = drawer.calls
    assert (locale, language) == (None, None)  # the account's: the drawer picks the language
    assert (week.child, week.start, week.end) == ("Иван Петров", date(2026, 11, 23),
                                                     date(2026, 11, 27))
    assert week.subjects == (WeekSubject("Алгебра", 4.75, 4.0, ("5",)),
                             WeekSubject("История", 2.0, 2.0, ()))
    assert week.marks == 1
    rows = await outbox_of(family, ANNA)
    assert [(kind, student is not None) for kind, student, _ in rows] == [
        ("digest", False), ("week_chart", True)]
    payload = rows[1][2]
    assert (payload["child"], payload["start"], payload["end"], payload["marks"]) == (
        "Иван Петров", "2026-11-23", "2026-11-27", 1)
    # Ivan (the student) did not ask: his digest comes alone.
    assert [kind for kind, _, _ in await outbox_of(family, IVAN)] == ["digest"]
    # What Anna receives: the digest's text, then the picture with its caption.
    from core.services.outbox import OutboxItem

    i18n = create_i18n("ru")
    items = tuple(OutboxItem(n, kind, student, p, datetime.now(UTC), 0)
                  for n, (kind, student, p) in enumerate(rows, 1))
    with i18n.context(), i18n.use_locale("ru"):
        messages, unknown = render_batch(items)
    assert unknown == []
    assert [m.ids for m in messages] == [[1], [2]]
    assert messages[0].text.startswith("📰 Сводка") and messages[0].upload is None
    assert messages[1].text == "📈 Неделя 23–27 нояб. · Иван Петров: 1 оценка"
    assert messages[1].upload == b"\x89PNG week of " + str(rows[1][1]).encode()
    with i18n.context(), i18n.use_locale("en"):
        messages, _ = render_batch(items)
    assert messages[1].text == "📈 Week Nov 23–27 · Иван Петров: 1 mark"
    # A second run the same evening queues nothing more.
    assert (await family.digest.run(drawer)).charts == 0
    assert len(await outbox_of(family, ANNA)) == 2


async def test_no_weekly_chart_unless_friday_asked_and_drawn(family, clock):
    drawer = Drawer()
    clock.moment = at(27, 19, 1)  # Friday, but nobody asked (off by default)
    assert (await family.digest.run(drawer)).charts == 0
    assert drawer.calls == []
    await family.preferences.set_flag(ANNA, "digest_chart", True)
    clock.moment = at(26, 19, 1)  # asked, but a Thursday
    async with family.db.transaction() as tx:
        await tx.execute("DELETE FROM digest_log")
        await tx.execute("UPDATE accounts SET digest_due_at = ?", ("2026-11-26T00:00:00+00:00",))
    assert (await family.digest.run(drawer)).charts == 0
    assert drawer.calls == []


async def test_a_chart_that_cannot_be_drawn_never_holds_the_digest(family, clock, caplog):
    await family.preferences.set_flag(ANNA, "digest_chart", True)
    clock.moment = at(27, 19, 1)
    result = await family.digest.run(Drawer(fail=True))
    assert result.charts == 0 and result.sent == 2
    assert [kind for kind, _, _ in await outbox_of(family, ANNA)] == ["digest"]
    assert "weekly chart of student" in caplog.text and "no fonts" in caplog.text


async def test_no_weekly_chart_of_a_muted_child_or_without_the_grades_scope(family, clock):
    viewer = await family.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    await family.preferences.set_flag(ANNA, "digest_chart", True)
    await family.preferences.toggle_child(ANNA, ivan.id)
    with pytest.raises(PhoneNotFound):
        await family.linking.link_contact(8001, 8001, 8001, "+7 903 111-22-33")
    inv, _, _ = await family.trusted.invite(viewer, [ivan.id], "+7 903 111-22-33", "Иванова",
                                            {Scope.ATTENDANCE, Scope.DIGEST})
    await family.trusted.accept(8001, inv.id)
    await family.preferences.set_flag(8001, "digest_chart", True)
    drawer = Drawer()
    clock.moment = at(27, 19, 1)
    assert (await family.digest.run(drawer)).charts == 0
    assert drawer.calls == []


async def test_the_scheduler_draws_a_real_weekly_chart(family, clock):
    import base64
    from types import SimpleNamespace

    from bot import charts
    from bot.jobs import digest, week_drawer

    await family.preferences.set_flag(ANNA, "digest_chart", True)
    clock.moment = at(27, 19, 1)
    result = await digest(family, week_drawer(SimpleNamespace(default_locale="ru")))
    assert result["weekly_charts"] == 1
    [(_, _, payload)] = [r for r in await outbox_of(family, ANNA) if r[0] == "week_chart"]
    assert charts.png_size(base64.b64decode(payload["png"])) == (1000, 600)


async def test_a_queued_weekly_chart_goes_through_quiet_hours_with_its_digest(family, clock):
    await family.preferences.set_flag(ANNA, "digest_chart", True)
    clock.moment = at(27, 21, 30)  # late, but within the grace of a 19:00 digest
    await family.preferences.set_quiet_hours(ANNA, "21:00-07:00", clock.now(), TZ)
    assert (await family.digest.run(Drawer())).charts == 1
    batches = {b.telegram_id: [i.kind for i in b.items] for b in await family.outbox.claim()}
    assert batches[ANNA] == ["digest", "week_chart"]  # neither waits for the morning


@pytest.mark.parametrize("change", ["switched off", "child muted", "trust revoked"])
async def test_a_queued_weekly_chart_is_checked_again_when_it_goes(family, clock, change):
    viewer = await family.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    with pytest.raises(PhoneNotFound):
        await family.linking.link_contact(8001, 8001, 8001, "+7 903 111-22-33")
    inv, _, _ = await family.trusted.invite(viewer, [ivan.id], "+7 903 111-22-33", "Иванова",
                                            {Scope.GRADES, Scope.DIGEST})
    await family.trusted.accept(8001, inv.id)
    await family.preferences.set_flag(8001, "digest_chart", True)
    clock.moment = at(27, 19, 1)
    assert (await family.digest.run(Drawer())).charts == 1
    if change == "switched off":
        await family.preferences.set_flag(8001, "digest_chart", False)
    elif change == "child muted":
        await family.preferences.toggle_child(8001, ivan.id)
    else:
        async with family.db.transaction() as tx:  # the parent took the trust back
            await tx.execute("DELETE FROM trusts WHERE telegram_id = 8001")
    batches = {b.telegram_id: [i.kind for i in b.items] for b in await family.outbox.claim()}
    assert "week_chart" not in batches.get(8001, [])
    assert await family.db.scalar(
        "SELECT dropped_at IS NOT NULL FROM outbox WHERE telegram_id = 8001"
        " AND kind = 'week_chart'")


async def test_a_childs_weekly_chart_is_drawn_once_for_two_readers(family, clock):
    viewer = await family.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    with pytest.raises(PhoneNotFound):
        await family.linking.link_contact(8001, 8001, 8001, "+7 903 111-22-33")
    inv, _, _ = await family.trusted.invite(viewer, [ivan.id], "+7 903 111-22-33", "Иванова",
                                            {Scope.GRADES, Scope.DIGEST})
    await family.trusted.accept(8001, inv.id)
    for account in (ANNA, 8001):
        await family.preferences.set_flag(account, "digest_chart", True)
    drawer = Drawer()
    clock.moment = at(27, 19, 1)
    assert (await family.digest.run(drawer)).charts == 2
    assert len(drawer.calls) == 1
