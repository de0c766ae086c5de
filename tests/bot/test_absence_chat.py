"""/absence through the dispatcher: the whole conversation, every wrong input, permissions."""

from __future__ import annotations

import json
from datetime import date

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText

from bot.callbacks import AbsenceCb
from core.importers.journal import parse_journal
from tests.support import updates as up
from tests.support.school import ANDREY_PHONE, ANNA_PHONE, IVAN_PHONE

ANNA, IVAN, ANDREY = 5001, 5002, 5003


def press(action: str, value: object = "") -> str:
    return AbsenceCb(a=action, v=str(value)).pack()


def day(d: int, month: int = 11) -> str:
    return press("day", date(2026, month, d).toordinal())


def buttons(markup) -> list[str]:
    return [b.text for row in markup.inline_keyboard for b in row]


async def ivan_id(tg) -> int:
    return await tg.services.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")


async def test_a_parent_files_a_range_sees_it_and_cancels_it(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/absence"))
    first = tg.session.last()
    assert first.text == "📝 Уведомление об отсутствии. Кого не будет?"
    assert buttons(first.reply_markup) == ["Иван Петров, 7Б класс", "Мария Петрова, 5А класс",
                                           "📋 Мои уведомления"]
    await tg.feed(up.message(ANNA, "Ваня"))  # text instead of a button
    assert tg.session.last_text().startswith("Пожалуйста, выберите вариант кнопкой выше")
    await tg.feed(up.callback(ANNA, press("child", await ivan_id(tg))))
    assert "Уведомление об отсутствии: <b>Иван Петров</b>" in tg.session.last_text()
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    calendar = tg.session.last()
    assert calendar.text == "Выберите первый день отсутствия (с 24 октября по 22 января)."
    labels = buttons(calendar.reply_markup)
    assert "Ноябрь 2026" in labels and "пн" in labels and "25" in labels
    await tg.feed(up.callback(ANNA, day(25)))
    assert tg.session.last_text().startswith("Первый день: среда, 25 ноября.")
    assert "[25]" in buttons(tg.session.last().reply_markup)
    await tg.feed(up.callback(ANNA, day(24)))  # before the first day
    answer = tg.session.of(AnswerCallbackQuery)[-1]
    assert answer.text == "Последний день не может быть раньше первого." and answer.show_alert
    await tg.feed(up.callback(ANNA, press("day", date(2027, 3, 1).toordinal())))  # forged, far
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Выберите день с 24 октября по 22 января."
    await tg.feed(up.callback(ANNA, day(27)))
    assert tg.session.last_text() == "25–27 ноября. Какая причина?"
    await tg.feed(up.callback(ANNA, press("reason", "illness")))
    await tg.feed(up.message(ANNA, "х" * 501))
    assert tg.session.last_text() == "В комментарии 501 символ — пожалуйста, уложитесь в 500."
    await tg.feed(up.message(ANNA, "Температура, справку принесём"))
    summary = tg.session.last_text()
    assert summary == ("Проверьте уведомление:\nРебёнок: Иван Петров\n"
                       "Когда: 25–27 ноября\nПричина: 🤒 Болезнь\n"
                       "Комментарий: «Температура, справку принесём»")
    await tg.feed(up.callback(ANNA, press("send")))
    receipt = tg.session.last_text()
    assert receipt.startswith("✅ Уведомление № 1 отправлено в школу.\n"
                              "Иван Петров: 25–27 ноября, болезнь.")
    row = await s.db.fetchone("SELECT * FROM absence_notices")
    assert (row["start_date"], row["end_date"], row["reason"], row["filed_by"]) == (
        "2026-11-25", "2026-11-27", "illness", ANNA)
    assert await tg.dp.storage.get_state(tg.dp.fsm.get_context(tg.bot, ANNA, ANNA).key) is None

    # The same days again: explained, not duplicated.
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", await ivan_id(tg))))
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    await tg.feed(up.callback(ANNA, day(26)))
    await tg.feed(up.callback(ANNA, day(26)))  # said as soon as the days are picked
    assert tg.session.last_text().startswith(
        "На 25–27 ноября уже есть уведомление (🤒 Болезнь).")
    assert await s.db.scalar("SELECT COUNT(*) FROM absence_notices") == 1

    # List and cancel.
    await tg.feed(up.callback(ANNA, press("list")))
    listing = tg.session.of(EditMessageText)[-1]
    assert "№ 1 · Иван Петров · 25–27 ноября · 🤒 Болезнь" in listing.text
    assert buttons(listing.reply_markup) == ["✖️ Отменить № 1"]
    await tg.feed(up.callback(ANNA, press("cancel", 1)))
    await tg.feed(up.callback(ANNA, press("cancel_yes", 1)))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Уведомление № 1 отменено."
    assert tg.session.last_text() == ("Действующих уведомлений нет. /absence — подать новое.")


async def test_lessons_of_one_day_from_the_timetable(tg, clock):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    lines = [json.dumps({"id": f"l{n}", "type": "lesson", "class": "7Б", "date": "2026-11-24",
                         "number": n, "subject": subj, "start": f"{7 + n:02d}:30",
                         "end": f"{8 + n:02d}:15"}, ensure_ascii=False)
             for n, subj in ((1, "Алгебра"), (2, "Физика"))]
    await s.journal.import_journal(parse_journal(lines, "j"), "j")
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", await ivan_id(tg))))
    await tg.feed(up.callback(ANNA, press("mode", "lessons")))
    await tg.feed(up.callback(ANNA, day(24)))
    assert buttons(tg.session.last().reply_markup) == [
        "▫️ 1. Алгебра, 08:30–09:15", "▫️ 2. Физика, 09:30–10:15", "Готово", "« Назад"]
    assert tg.session.last_text() == (
        "Вторник, 24 ноября: отметьте уроки, которые ребёнок пропустит, и нажмите «Готово».")
    await tg.feed(up.callback(ANNA, press("done")))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Отметьте хотя бы один урок."
    await tg.feed(up.callback(ANNA, press("lesson", 2)))
    assert buttons(tg.session.last().reply_markup)[1] == "✅ 2. Физика, 09:30–10:15"
    await tg.feed(up.callback(ANNA, press("done")))
    assert tg.session.last_text() == "Вторник, 24 ноября, урок 2 (Физика). Какая причина?"
    await tg.feed(up.callback(ANNA, press("reason", "medical")))
    await tg.feed(up.callback(ANNA, press("skip")))
    await tg.feed(up.callback(ANNA, press("send")))
    assert await s.db.scalar("SELECT lessons FROM absence_notices") == "[2]"

    # The next day the journal's absence mark for that lesson is excused and pushed calmly.
    clock.advance(days=1)
    mark = json.dumps({"id": "a1", "type": "attendance", "attendance_id": "a1",
                       "student_id": "S-1001", "date": "2026-11-24", "lesson": 2,
                       "subject": "Физика", "mark": "absent"}, ensure_ascii=False)
    await s.journal.import_journal(parse_journal([mark], "j"), "j")
    assert await s.db.scalar("SELECT excused FROM attendance") == 1
    payload = json.loads(await s.db.scalar("SELECT payload FROM outbox WHERE kind = 'attendance'"))
    assert payload["by_notice"] is True


async def test_cancel_at_any_step(tg):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", await ivan_id(tg))))
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    await tg.feed(up.message(ANNA, "/cancel"))
    assert tg.session.last_text() == "Отменено."
    await tg.feed(up.callback(ANNA, day(25)))  # an old calendar button
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Эта кнопка устарела."
    assert await tg.services.db.scalar("SELECT COUNT(*) FROM absence_notices") == 0


async def test_students_and_other_families_cannot_file(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await tg.feed(up.message(IVAN, "/absence"))
    assert tg.session.last_text() == ("Уведомление об отсутствии может подать только родитель"
                                      " (законный представитель).")
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await tg.feed(up.message(ANDREY, "/absence"))
    await tg.feed(up.callback(ANDREY, press("mode", "days")))
    await tg.feed(up.callback(ANDREY, day(25)))
    await tg.feed(up.callback(ANDREY, day(25)))
    await tg.feed(up.callback(ANDREY, press("reason", "other")))
    # A forged child button for another family's child.
    tg.session.clear()
    await tg.dp.fsm.get_context(tg.bot, ANDREY, ANDREY).set_state("AbsenceStates:child")
    await tg.feed(up.callback(ANDREY, press("child", await ivan_id(tg))))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Это вам недоступно."
    assert tg.session.of(EditMessageText) == []


async def test_absence_marks_are_pushed_to_parents_one_message_a_day(tg, clock):
    from bot.i18n import create_i18n
    from bot.notify import render_items

    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    marks = [json.dumps({"id": f"a{n}", "type": "attendance", "attendance_id": f"a{n}",
                         "student_id": "S-1001", "date": "2026-11-23", "lesson": n,
                         "subject": subj, "mark": mark}, ensure_ascii=False)
             for n, subj, mark in ((3, "Химия", "absent"), (2, "Физика", "late"))]
    await s.journal.import_journal(parse_journal(marks[:1], "j"), "j")
    clock.advance(seconds=30)
    await s.journal.import_journal(parse_journal(marks[1:], "j"), "j")
    assert not await s.outbox.has_due()  # held a minute for the next marks
    clock.advance(seconds=61)
    [batch] = await s.outbox.claim()
    assert batch.telegram_id == ANNA  # not the student
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        text, _ = render_items(batch.items)
    assert text == ("🚫 Иван: пропуски и опоздания 23 ноября\n• 2-й урок, Физика — опоздание\n"
                    "• 3-й урок, Химия — отсутствие")


async def test_a_command_in_the_middle_of_a_form_is_a_command(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", await ivan_id(tg))))
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    await tg.feed(up.callback(ANNA, day(25)))
    await tg.feed(up.callback(ANNA, day(25)))
    await tg.feed(up.callback(ANNA, press("reason", "illness")))
    await tg.feed(up.message(ANNA, "/trusted"))  # at the comment step
    assert tg.session.last_text().startswith("🤝 Доверенные лица видят только то")
    codes = await s.linking.issue_codes(student_external_id="S-1005")
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.message(ANNA, f"/start {codes[0].code}"))
    assert "Артём Волков, 5А класс" in tg.session.last_text()


async def test_a_day_without_a_timetable_is_answered_once_with_the_alert(tg):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", await ivan_id(tg))))
    await tg.feed(up.callback(ANNA, press("mode", "lessons")))
    tg.session.clear()
    pressed = up.callback(ANNA, day(25))
    await tg.dp.feed_update(tg.bot, pressed)  # not tg.feed: count the answers here
    answers = [a for a in tg.session.of(AnswerCallbackQuery)
               if a.callback_query_id == pressed.callback_query.id]
    assert [(a.text, a.show_alert) for a in answers] == [
        ("Расписание на этот день неизвестно — уведомление будет на весь день.", True)]
    assert tg.session.last_text() == "Среда, 25 ноября. Какая причина?"


@pytest.mark.parametrize(("lang", "lessons", "start", "end", "said"), [
    ("ru", (), 25, 27, "Отметки об отсутствии в эти дни будут уважительными."),
    ("ru", (), 25, 25, "Отметки об отсутствии в этот день будут уважительными."),
    ("ru", (2,), 24, 24, "Отметка об отсутствии на этом уроке будет уважительной."),
    ("ru", (2, 3), 24, 24, "Отметки об отсутствии на этих уроках будут уважительными."),
    ("en", (), 25, 27, "Absence marks on these days will show as excused."),
    ("en", (), 25, 25, "Absence marks on that day will show as excused."),
    ("en", (2,), 24, 24, "Absence marks of this lesson will show as excused."),
])
def test_the_receipt_says_days_a_day_or_lessons(lang, lessons, start, end, said):
    from datetime import UTC, date, datetime

    from bot.i18n import create_i18n
    from bot.routers.absence import receipt_text
    from core.services.absence import Notice, Reason

    notice = Notice(1, 1, "S-1001", "Иван Петров", "7Б", date(2026, 11, start),
                    date(2026, 11, end), lessons, Reason("illness"), "", ANNA, "Анна Петрова",
                    datetime(2026, 11, 23, tzinfo=UTC), None)
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale(lang):
        last = receipt_text(notice).split("\n")[-1]
    assert last == said + (" /absence — список и отмена уведомлений." if lang == "ru"
                           else " /absence lists and cancels notices.")
