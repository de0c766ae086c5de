"""The absence notice start to finish: overlaps caught when the days are picked, a way back on
every step, the calendar, lesson times, the receipt; confirmations before ending things; /cancel
and free text outside a conversation."""

from __future__ import annotations

import json
from datetime import date

from aiogram.methods import AnswerCallbackQuery, EditMessageReplyMarkup

from bot.callbacks import AbsenceCb, InviteCb, TrustCb
from core.importers.journal import parse_journal
from core.models import Scope
from core.services.absence import Reason
from tests.support import updates as up
from tests.support.school import ANNA_PHONE

ANNA, GRANNY = 5001, 6001
GRANNY_PHONE = "+7 903 111-22-33"


def press(action: str, value: object = "") -> str:
    return AbsenceCb(a=action, v=str(value)).pack()


def day(d: int, month: int = 11) -> str:
    return press("day", date(2026, month, d).toordinal())


def labels(tg) -> list[str]:
    return [b.text for row in tg.session.last().reply_markup.inline_keyboard for b in row]


def button(tg, text: str) -> str:
    markup = tg.session.last().reply_markup
    return next(b.callback_data for row in markup.inline_keyboard for b in row if b.text == text)


async def anna_and_ivan(tg) -> int:
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    return await tg.services.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")


async def filed(tg, ivan: int, start: date, end: date) -> None:
    viewer = await tg.services.access.viewer(ANNA)
    await tg.services.absence.file(viewer, ivan, start, end, (), Reason.ILLNESS, "")


async def test_an_overlap_is_caught_when_the_days_are_picked_and_free_days_offered(tg):
    ivan = await anna_and_ivan(tg)
    await filed(tg, ivan, date(2026, 11, 25), date(2026, 11, 27))
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", ivan)))
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    await tg.feed(up.callback(ANNA, day(24)))
    await tg.feed(up.callback(ANNA, day(28)))
    assert tg.session.last_text() == (
        "На 25–27 ноября уже есть уведомление (🤒 Болезнь). Свободные дни — ниже;"
        " или выберите другие даты.")
    assert labels(tg)[-3:] == ["24 ноября", "28 ноября", "« Назад"]
    await tg.feed(up.callback(ANNA, button(tg, "28 ноября")))
    assert tg.session.last_text() == "Суббота, 28 ноября. Какая причина?"
    await tg.feed(up.callback(ANNA, press("reason", "illness")))
    await tg.feed(up.callback(ANNA, press("skip")))
    await tg.feed(up.callback(ANNA, press("send")))
    assert tg.session.last_text().startswith("✅ Уведомление № 2 отправлено в школу.")
    # One day that is taken: said at once, on the calendar, with the day's accusative.
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", ivan)))
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    await tg.feed(up.callback(ANNA, day(28)))
    await tg.feed(up.callback(ANNA, day(28)))
    assert tg.session.last_text() == (
        "На субботу, 28 ноября уже есть уведомление (🤒 Болезнь). Выберите другие даты или"
        " отмените то уведомление в «Мои уведомления».")
    assert "📋 Мои уведомления" in labels(tg) and "23" in labels(tg)


async def test_back_on_every_step_and_cancel_on_the_confirmation(tg):
    ivan = await anna_and_ivan(tg)
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", ivan)))
    assert labels(tg)[-1] == "« Назад"
    await tg.feed(up.callback(ANNA, press("back")))
    assert tg.session.last_text() == "📝 Уведомление об отсутствии. Кого не будет?"
    await tg.feed(up.callback(ANNA, press("child", ivan)))
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    await tg.feed(up.callback(ANNA, press("back")))
    assert "Уведомление об отсутствии: <b>Иван Петров</b>" in tg.session.last_text()
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    await tg.feed(up.callback(ANNA, day(25)))
    await tg.feed(up.callback(ANNA, press("back")))
    assert tg.session.last_text().startswith("Выберите первый день отсутствия")
    await tg.feed(up.callback(ANNA, day(25)))
    await tg.feed(up.callback(ANNA, day(26)))
    assert labels(tg)[-1] == "« Назад"
    await tg.feed(up.callback(ANNA, press("back")))
    assert tg.session.last_text().startswith("Первый день: среда, 25 ноября.")
    await tg.feed(up.callback(ANNA, day(26)))
    await tg.feed(up.callback(ANNA, press("reason", "family")))
    assert labels(tg) == ["Без комментария", "« Назад"]
    await tg.feed(up.callback(ANNA, press("back")))
    assert tg.session.last_text() == "25–26 ноября. Какая причина?"
    await tg.feed(up.callback(ANNA, press("reason", "family")))
    await tg.feed(up.message(ANNA, "х" * 501))
    assert tg.session.last_text() == "В комментарии 501 символ — пожалуйста, уложитесь в 500."
    assert labels(tg) == ["Без комментария", "« Назад"]
    await tg.feed(up.callback(ANNA, press("skip")))
    assert labels(tg) == ["✅ Отправить в школу", "« Назад", "✖️ Отмена"]
    await tg.feed(up.callback(ANNA, press("back")))
    assert tg.session.last_text().startswith("Добавьте комментарий для школы")
    await tg.feed(up.callback(ANNA, press("skip")))
    await tg.feed(up.callback(ANNA, press("quit")))
    assert tg.session.last_text() == "Уведомление не отправлено."
    assert await tg.services.db.scalar("SELECT COUNT(*) FROM absence_notices") == 0
    assert await tg.dp.storage.get_state(tg.dp.fsm.get_context(tg.bot, ANNA, ANNA).key) is None


async def test_the_calendar_has_no_blank_rows_no_sundays_and_says_what_the_button_says(tg):
    ivan = await anna_and_ivan(tg)
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", ivan)))
    await tg.feed(up.callback(ANNA, press("mode", "days")))
    assert "29" not in labels(tg) and "22" not in labels(tg)  # Sundays are not school days
    await tg.feed(up.callback(ANNA, day(29)))
    answer = tg.session.of(AnswerCallbackQuery)[-1]
    assert (answer.text, answer.show_alert) == (
        "В воскресенье уроков нет — выберите другой день.", True)
    await tg.feed(up.callback(ANNA, day(25)))
    assert tg.session.last_text() == (
        "Первый день: среда, 25 ноября. Теперь выберите последний день или нажмите"
        " «Только 25 ноября».")
    rows = tg.session.last().reply_markup.inline_keyboard
    assert all(any(b.text.strip() for b in row) for row in rows)
    assert [b.text for b in rows[2]] == [" ", " ", "[25]", "26", "27", "28", " "]


async def test_lessons_with_times_and_subjects_in_the_receipt(tg):
    ivan = await anna_and_ivan(tg)
    lines = [json.dumps({"id": f"l{n}", "type": "lesson", "class": "7Б", "date": "2026-11-24",
                         "number": n, "subject": subj, "start": f"{7 + n:02d}:30",
                         "end": f"{8 + n:02d}:15"}, ensure_ascii=False)
             for n, subj in ((1, "Алгебра"), (2, "Физика"), (3, "Химия"))]
    await tg.services.journal.import_journal(parse_journal(lines, "j"), "j")
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", ivan)))
    await tg.feed(up.callback(ANNA, press("mode", "lessons")))
    await tg.feed(up.callback(ANNA, day(24)))
    assert labels(tg) == ["▫️ 1. Алгебра, 08:30–09:15", "▫️ 2. Физика, 09:30–10:15",
                          "▫️ 3. Химия, 10:30–11:15", "Готово", "« Назад"]
    await tg.feed(up.callback(ANNA, press("lesson", 2)))
    await tg.feed(up.callback(ANNA, press("lesson", 3)))
    await tg.feed(up.callback(ANNA, press("done")))
    assert tg.session.last_text() == (
        "Вторник, 24 ноября, уроки 2 (Физика), 3 (Химия). Какая причина?")
    await tg.feed(up.callback(ANNA, press("back")))
    assert labels(tg)[1] == "✅ 2. Физика, 09:30–10:15"
    await tg.feed(up.callback(ANNA, press("lesson", 3)))
    await tg.feed(up.callback(ANNA, press("done")))
    await tg.feed(up.callback(ANNA, press("reason", "medical")))
    await tg.feed(up.callback(ANNA, press("skip")))
    assert "Когда: вторник, 24 ноября, урок 2 (Физика)" in tg.session.last_text()
    await tg.feed(up.callback(ANNA, press("send")))
    assert tg.session.last_text().startswith(
        "✅ Уведомление № 1 отправлено в школу.\n"
        "Иван Петров: вторник, 24 ноября, урок 2 (Физика), приём у врача.")


async def test_cancelling_a_notice_is_asked_once(tg):
    ivan = await anna_and_ivan(tg)
    await filed(tg, ivan, date(2026, 11, 25), date(2026, 11, 27))
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("list")))
    await tg.feed(up.callback(ANNA, press("cancel", 1)))
    assert tg.session.last_text() == (
        "Отменить уведомление № 1 (Иван Петров · 25–27 ноября)?")
    assert labels(tg) == ["Да, отменить", "« Назад"]
    assert await tg.services.db.scalar(
        "SELECT COUNT(*) FROM absence_notices WHERE cancelled_at IS NULL") == 1
    await tg.feed(up.callback(ANNA, button(tg, "« Назад")))
    assert labels(tg) == ["✖️ Отменить № 1"]
    await tg.feed(up.callback(ANNA, press("cancel", 1)))
    await tg.feed(up.callback(ANNA, button(tg, "Да, отменить")))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Уведомление № 1 отменено."
    assert await tg.services.db.scalar(
        "SELECT COUNT(*) FROM absence_notices WHERE cancelled_at IS NULL") == 0


async def test_ending_access_and_stopping_following_are_asked_once(tg):
    s = tg.services
    ivan = await anna_and_ivan(tg)
    await tg.feed(up.contact(GRANNY, GRANNY_PHONE, GRANNY))
    viewer = await s.access.viewer(ANNA)
    inv, _t, _i = await s.trusted.invite(viewer, [ivan], GRANNY_PHONE, "Иванова",
                                         {Scope.GRADES})
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv.id).pack()))
    trust = await s.db.scalar("SELECT id FROM trusts")
    await tg.feed(up.callback(GRANNY, TrustCb(a="leave", v=str(trust)).pack()))
    assert tg.session.last_text() == "Перестать следить? Вам больше не будет видно: Иван Петров."
    assert labels(tg) == ["Да, перестать следить", "« Назад"]
    await tg.feed(up.callback(GRANNY, button(tg, "« Назад")))
    assert tg.session.last_text().startswith("🤝 Вы следите как доверенное лицо:")
    await tg.feed(up.callback(ANNA, TrustCb(a="revoke", v=str(trust)).pack()))
    assert tg.session.last_text() == "Закрыть доступ? Иванова больше не увидит: Иван Петров."
    assert labels(tg) == ["Да, закрыть доступ", "« Назад"]
    assert await s.db.scalar("SELECT COUNT(*) FROM trusts") == 1
    await tg.feed(up.callback(ANNA, button(tg, "Да, закрыть доступ")))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Иванова: доступ закрыт."
    assert await s.db.scalar("SELECT COUNT(*) FROM trusts") == 0


async def test_cancel_removes_the_buttons_of_the_conversation_left(tg):
    ivan = await anna_and_ivan(tg)
    await tg.feed(up.message(ANNA, "/absence"))
    await tg.feed(up.callback(ANNA, press("child", ivan), message_id=777))
    await tg.feed(up.message(ANNA, "/cancel"))
    assert tg.session.last_text() == "Отменено."
    [removed] = tg.session.of(EditMessageReplyMarkup)
    assert (removed.message_id, removed.reply_markup) == (777, None)
    # A form whose last screen was sent, not edited: its buttons go too.
    await tg.feed(up.message(ANNA, "/absence"))  # the session numbers sent messages from 1000
    await tg.feed(up.message(ANNA, "отмена"))
    removed = tg.session.of(EditMessageReplyMarkup)
    assert len(removed) == 2 and removed[-1].message_id >= 1000
    assert removed[-1].reply_markup is None


async def test_free_text_outside_a_conversation_shows_the_menu_of_the_role(tg):
    await anna_and_ivan(tg)
    await tg.feed(up.message(ANNA, "привет"))
    text = tg.session.last_text()
    assert text.startswith("Я не понял это сообщение. Вот что я умею:\n/start — ")
    assert "/absence — " in text and "/grades — " in text
    await tg.feed(up.message(ANNA, None))  # a sticker
    assert tg.session.last_text().startswith("Я не понял это сообщение. Вот что я умею:")
    await tg.feed(up.message(ANNA, "/nonsense"))
    assert tg.session.last_text().startswith("Я не знаю такой команды. Вот что я умею:")
    await tg.feed(up.message(9999, "привет"))
    assert tg.session.last_text().startswith("Я пока не знаю вас.")
