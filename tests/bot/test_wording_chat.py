"""Words a parent, a grandmother and a student read: Russian grammar, English formats, and each
person addressed in their own role."""

from __future__ import annotations

import json

import pytest
from aiogram.methods import EditMessageText

from bot.callbacks import InviteCb, SettingsCb
from bot.i18n import create_i18n
from bot.notify import digest, render_items
from core.importers.journal import parse_journal
from core.models import Scope
from tests.support import updates as up
from tests.support.school import ANNA_PHONE, IVAN_PHONE

ANNA, IVAN, GRANNY, STRANGER = 5001, 5002, 6001, 6002
GRANNY_PHONE = "+7 903 111-22-33"


async def feed(services, *events: dict) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j")


def lesson(day: str, number: int, subject: str, start: str, end: str) -> dict:
    return {"id": f"l-{day}-{number}", "type": "lesson", "class": "7Б", "date": day,
            "number": number, "subject": subject, "start": start, "end": end}


def hw(n: int, subject: str, due: str, text: str, **kw) -> dict:
    return {"id": f"h{n}", "type": "homework", "homework_id": f"h{n}", "class": "7Б",
            "subject": subject, "due": due, "text": text, "updated_at": "2026-11-20T12:30:00Z",
            **kw}


async def ivan_linked(tg) -> None:
    await tg.services.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)


# -- Russian that a Russian would write --------------------------------------------------------


async def test_a_weekday_after_na_is_in_the_accusative(tg):
    await ivan_linked(tg)  # today is Monday, 23 November
    await tg.feed(up.message(IVAN, "/homework пт"))
    assert tg.session.last_text().startswith("📚 Домашнее задание на пятницу, 27 ноября\n")
    await tg.feed(up.message(IVAN, "/schedule ср"))
    assert tg.session.last_text().startswith("🗓 Расписание на среду, 25 ноября\n")
    await tg.feed(up.message(IVAN, "/schedule в субботу"))
    assert tg.session.last_text().startswith("🗓 Расписание на субботу, 28 ноября\n")
    await tg.feed(up.message(IVAN, "/schedule вт"))
    assert tg.session.last_text().startswith("🗓 Расписание на вторник, 24 ноября\n")
    await tg.feed(up.message(IVAN, "/homework fri", language_code="en"))
    assert tg.session.last_text().startswith("📚 Homework for Friday, November 27\n")


def _digest_payload() -> dict:
    return {"day": "2026-11-27", "children": [{
        "student_id": 1, "name": "Иван Петров", "class_name": "7Б", "grades": [], "marks": [],
        "dots": [], "homework": [], "next_day": "2026-11-30",
        "lessons": [{"number": 1, "subject": "Алгебра", "start": "08:30", "cancelled": False}],
    }]}


def test_the_digest_of_a_friday_and_english_month_names():
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        text, _markup = digest(_digest_payload())
    assert text.startswith("📰 Сводка за пятницу, 27 ноября\n\n👤 Иван Петров, 7Б\n"
                           "Понедельник, 30 ноября:\n")
    with i18n.context(), i18n.use_locale("en"):
        text, _markup = digest(_digest_payload())
    assert text.startswith("📰 Digest for Friday, November 27\n\n👤 Иван Петров, 7Б\n"
                           "Monday, November 30:\n")


def test_the_first_mark_of_a_subject_says_so_in_the_push_and_the_digest():
    from datetime import UTC, datetime

    from core.services.outbox import OutboxItem

    grade = {"child": "Иван", "subject": "Химия", "value": 4, "shown": "4", "weight": 1,
             "date": "2026-11-27", "counted": True, "avg_before": None, "avg_after": 4.0}
    item = OutboxItem(1, "grade_new", 1, grade, datetime(2026, 11, 27, 9, tzinfo=UTC), 0)
    payload = _digest_payload()
    payload["children"][0]["grades"] = [{**grade, "work": None}]
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        push, _unknown = render_items((item,))
        text, _markup = digest(payload)
    assert push.endswith("Средний балл: 4,00 (первая оценка)")
    assert "• Химия: 4 (вес 1) — средний 4,00 (первая оценка)" in text
    with i18n.context(), i18n.use_locale("en"):
        push, _unknown = render_items((item,))
        text, _markup = digest(payload)
    assert push.endswith("Average: 4.00 (first mark)")
    assert "• Химия: 4 (weight 1) — average 4.00 (first mark)" in text


async def _invited(tg, scopes: frozenset[Scope] = frozenset({Scope.GRADES, Scope.HOMEWORK})
                   ) -> int:
    """Анна invites the grandmother, who already uses the bot, to follow Иван."""
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.contact(GRANNY, GRANNY_PHONE, GRANNY))
    viewer = await s.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    inv, _token, _invitee = await s.trusted.invite(viewer, [ivan.id], GRANNY_PHONE, "Иванова",
                                                   set(scopes))
    return inv.id


@pytest.mark.parametrize(("lang", "answer"), [("ru", "Это вам недоступно."),
                                              ("en", "This is not available to you.")])
async def test_news_is_not_available_without_the_scope_that_opens_it(tg, lang, answer):
    """A grandmother who follows the grades only is told /news is not hers, not «none yet»."""
    inv = await _invited(tg, frozenset({Scope.GRADES}))
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack()))
    await tg.feed(up.message(GRANNY, "/news", language_code=lang))
    assert tg.session.last_text() == answer


async def test_declining_keeps_the_inviters_name_in_the_nominative(tg):
    inv = await _invited(tg)
    await tg.feed(up.callback(GRANNY, InviteCb(a="no", i=inv).pack()))
    assert tg.session.last_text() == "Приглашение отклонено. Приглашал(а): Анна Петрова."


async def test_declining_in_english(tg):
    inv = await _invited(tg)
    await tg.feed(up.callback(GRANNY, InviteCb(a="no", i=inv).pack(), language_code="en"))
    assert tg.session.last_text() == "Invitation declined. Invited by: Анна Петрова."


async def test_settings_sentences_end_once_and_say_what_none_means(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/settings"))
    home = tg.session.last_text()
    assert ("🔔 Мгновенные сообщения: оценки — вкл., точки — вкл., посещаемость — вкл.,"
            " задания на завтра — выкл., отмена уроков — вкл., замена учителей — вкл.,"
            " объявления — вкл.\n") in home
    assert "..\n" not in home and "вкл..\n" not in home
    assert ("🌙 Тихие часы: 22:00–08:00 — сообщения ждут их окончания и приходят вместе."
            in home)
    await tg.feed(up.callback(ANNA, SettingsCb(action="quiet", value="3").pack()))
    maria = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1002'")
    await tg.feed(up.callback(ANNA, SettingsCb(action="kid", value=str(maria)).pack()))
    await tg.feed(up.callback(ANNA, SettingsCb(action="home").pack()))
    home = tg.session.of(EditMessageText)[-1].text
    assert "🌙 Тихие часы: нет — сообщения приходят сразу.\n" in home
    assert "👥 Без сообщений: Мария Петрова.\n" in home
    await tg.feed(up.message(ANNA, "/settings", language_code="en"))
    home = tg.session.last_text()
    assert ("🔔 Instant messages: grades — on, dots — on, attendance — on, homework set for"
            " tomorrow — off, cancelled lessons — on, teacher replacements — on, school"
            " announcements — on\n") in home


async def test_optional_homework_says_so_once(tg):
    await ivan_linked(tg)
    await feed(tg.services, hw(1, "Алгебра", "2026-11-24", "№ 245"),
               hw(2, "Литература", "2026-11-24", "Прочитать «Муму»", required=False))
    await tg.feed(up.message(IVAN, "/homework завтра"))
    text = tg.session.last_text()
    assert ("• <b>Алгебра</b>: № 245\n   <i>обязательное · изменено 20 ноября, 15:30</i>"
            in text)
    assert ("• <b>Литература</b> (по желанию): Прочитать «Муму»\n"
            "   <i>изменено 20 ноября, 15:30</i>") in text
    assert text.count("по желанию") == 1
    await tg.feed(up.message(IVAN, "/homework tomorrow", language_code="en"))
    text = tg.session.last_text()
    assert text.startswith("📚 Homework for Tuesday, November 24")
    assert "• <b>Алгебра</b>: № 245\n   <i>required · edited Nov 20, 15:30</i>" in text


def _marks(*marks: tuple[int, str, str]) -> list:
    return [{"child": "Иван", "date": "2026-11-23", "lesson": n, "subject": subject,
             "mark": mark, "student_id": "S-1001"} for n, subject, mark in marks]


def _attendance_text(locale: str, payloads: list) -> str:
    from datetime import UTC, datetime

    from core.services.outbox import OutboxItem

    items = tuple(OutboxItem(n, "attendance", 1, p, datetime(2026, 11, 23, tzinfo=UTC), 0)
                  for n, p in enumerate(payloads, start=1))
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale(locale):
        return render_items(items)[0]


def test_attendance_pushes_name_the_marks_they_carry():
    assert _attendance_text("ru", _marks((2, "Физика", "late"))) == (
        "⏰ Иван: опоздание 23 ноября\n• 2-й урок, Физика — опоздание")
    assert _attendance_text("ru", _marks((2, "Физика", "absent"))) == (
        "🚫 Иван: 23 ноября пропущен 1 урок\n• 2-й урок, Физика — отсутствие")
    assert _attendance_text("ru", _marks((2, "Физика", "absent"), (3, "Химия", "absent"))
                            ).startswith("🚫 Иван: 23 ноября пропущено 2 урока\n")
    assert _attendance_text("ru", _marks((2, "Физика", "late"), (3, "Химия", "absent"))
                            ).startswith("🚫 Иван: пропуски и опоздания 23 ноября\n")
    assert _attendance_text("en", _marks((2, "Физика", "absent"))).startswith(
        "🚫 Иван missed a lesson on November 23\n")
    assert _attendance_text("en", _marks((2, "Физика", "absent"), (3, "Химия", "absent"))
                            ).startswith("🚫 Иван missed 2 lessons on November 23\n")
    assert _attendance_text("en", _marks((2, "Физика", "late"))).startswith(
        "⏰ Иван was late on November 23\n")


# -- speak to the right person -----------------------------------------------------------------


async def test_a_student_is_addressed_as_a_student(tg):
    await tg.feed(up.contact(IVAN, IVAN_PHONE, IVAN))
    text = tg.session.last_text()
    assert text == ("Готово! Аккаунт привязан.\nЭто ваш дневник: Иван Петров, 7Б класс.\n\n"
                    "Новые оценки будут приходить сюда. /help — что я умею.")
    await tg.feed(up.message(IVAN, "/start"))
    assert "Это ваш дневник: Иван Петров, 7Б класс." in tg.session.last_text()
    assert "Дети" not in tg.session.last_text()
    await tg.feed(up.message(IVAN, "/settings"))
    home = tg.session.last()
    assert "Это ваш дневник: Иван Петров, 7Б класс." in home.text
    assert "Привязанные дети" not in home.text
    labels = [b.text for row in home.reply_markup.inline_keyboard for b in row]
    assert "👥 Дети" not in labels
    await tg.feed(up.message(IVAN, "/help"))
    help_text = tg.session.last_text()
    assert "/grades" in help_text and "/schedule" in help_text
    assert "/absence" not in help_text and "/trusted" not in help_text


@pytest.mark.parametrize(("lang", "labels"), [
    ("ru", ["✅ Оценки", "✅ Точки", "▫️ Задания на завтра", "✅ Отмена уроков",
            "✅ Замена учителей", "✅ Объявления", "« Назад"]),
    ("en", ["✅ Grades", "✅ Dots", "▫️ Homework set for tomorrow", "✅ Cancelled lessons",
            "✅ Teacher replacements", "✅ School announcements", "« Back"]),
])
async def test_a_student_has_no_attendance_switch(tg, lang, labels):
    """Absences are pushed to the parents, never to the student: no switch for them."""
    await tg.services.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await tg.feed(up.message(IVAN, "/settings", language_code=lang))
    home = tg.session.last().text
    assert "посещаемость" not in home and "attendance" not in home.lower()
    await tg.feed(up.callback(IVAN, SettingsCb(action="screen", value="notif").pack(),
                              language_code=lang))
    shown = [b.text for row in tg.session.last().reply_markup.inline_keyboard for b in row]
    assert shown == labels
    await tg.feed(up.callback(IVAN, SettingsCb(action="flag", value="push_attendance").pack(),
                              language_code=lang))
    assert (await tg.services.preferences.get(IVAN)).push_attendance is True


async def test_a_trusted_person_sees_only_the_switches_of_what_she_may_see(tg):
    inv = await _invited(tg)  # grades and homework, no attendance, no digest
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack()))
    assert tg.session.last_text() == (
        "✅ Приглашение принято. Теперь вы следите за: Иван Петров, и вам видно: оценки и"
        " точки, задания и расписание. Вам доступны /grades, /dots, /homework, /schedule, /news и"
        " /trusted.")
    await tg.feed(up.message(GRANNY, "/settings"))
    home = tg.session.last()
    assert ("🔔 Мгновенные сообщения: оценки — вкл., точки — вкл., задания на завтра — выкл.,"
            " отмена уроков — вкл., замена учителей — вкл., объявления — вкл.\n") in home.text
    assert "посещаемость" not in home.text and "Ежедневная сводка" not in home.text
    assert "Вы следите за:\n• Иван Петров, 7Б класс" in home.text
    labels = [b.text for row in home.reply_markup.inline_keyboard for b in row]
    assert "📰 Сводка" not in labels
    await tg.feed(up.callback(GRANNY, SettingsCb(action="screen", value="notif").pack()))
    labels = [b.text for row in tg.session.last().reply_markup.inline_keyboard for b in row]
    assert labels == ["✅ Оценки", "✅ Точки", "▫️ Задания на завтра", "✅ Отмена уроков",
                      "✅ Замена учителей", "✅ Объявления", "« Назад"]
    # A switch she does not have cannot be pressed either.
    await tg.feed(up.callback(GRANNY, SettingsCb(action="flag", value="push_attendance")
                              .pack()))
    assert (await tg.services.preferences.get(GRANNY)).push_attendance is True


async def test_accepting_with_attendance_only_lists_just_trusted(tg):
    inv = await _invited(tg, frozenset({Scope.ATTENDANCE}))
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack(), language_code="en"))
    assert tg.session.last_text() == (
        "✅ You accepted. You now follow Иван Петров and see: attendance. Messages about it will"
        " come here; /trusted shows what you follow.")


async def test_an_invitation_opened_by_another_number_says_so(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    viewer = await s.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    _inv, token, _invitee = await s.trusted.invite(viewer, [ivan.id], GRANNY_PHONE, "Иванова",
                                                   {Scope.GRADES})
    await tg.feed(up.message(STRANGER, f"/start inv_{token}"))
    await tg.feed(up.contact(STRANGER, "+7 999 000-11-22", STRANGER))
    assert tg.session.last_text() == (
        "Это приглашение отправлено на другой номер телефона. Если оно для вас, попросите"
        " пригласившего вас родителя пригласить номер, которым вы поделились.")
    # Without an invitation, the answer names the code button — and the button is there.
    await tg.feed(up.contact(7777, "+7 999 000-11-33", 7777))
    sent = tg.session.last()
    assert "нажмите «🔑 У меня есть код»" in sent.text
    assert [row[0].text for row in sent.reply_markup.keyboard] == [
        "📱 Поделиться номером", "🔑 У меня есть код"]


async def test_english_users_get_english_examples_and_subjects(tg):
    await ivan_linked(tg)
    await feed(tg.services, hw(1, "Алгебра", "2026-11-24", "№ 245"),
               hw(2, "Английский язык", "2026-11-24", "Ex. 5"))
    await tg.feed(up.message(IVAN, "/help", language_code="en"))
    assert ("/homework — homework: /homework tomorrow, /homework fri, /homework math"
            in tg.session.last_text())
    await tg.feed(up.message(IVAN, "/homework 31.02", language_code="en"))
    assert tg.session.last_text() == (
        "I did not understand “31.02”. Try: /homework tomorrow, /homework fri, /homework 24.11,"
        " /homework week, /homework math")
    await tg.feed(up.message(IVAN, "/homework math", language_code="en"))
    assert tg.session.last_text().startswith("📚 <b>Алгебра</b> — Иван Петров, 7Б class")
    await tg.feed(up.message(IVAN, "/homework english", language_code="en"))
    assert tg.session.last_text().startswith("📚 <b>Английский язык</b> — Иван Петров")
    await tg.feed(up.message(IVAN, "/homework 31.02"))
    assert tg.session.last_text() == (
        "Не понял «31.02». Попробуйте так: /homework завтра, /homework пт, /homework 24.11,"
        " /homework неделя, /homework матем")


async def test_a_demo_student_is_told_whose_diary_it_is(services):
    from bot.app import create_dispatcher
    from bot.callbacks import DemoCb
    from bot.fsm import SQLiteStorage
    from bot.roles import demo_school
    from tests.support.recording import make_bot

    school = demo_school(services)
    await school.seed()
    dp = create_dispatcher(services, create_i18n("ru"), SQLiteStorage(services.db,
                                                                      services.clock), demo=school)
    bot, session = make_bot()
    await dp.feed_update(bot, up.callback(9200, DemoCb(a="student").pack()))
    done = session.of(EditMessageText)[-1].text
    assert done.startswith("Готово! В демо вы — ученик: ")
    assert "следите" not in done
    assert "Попробуйте /homework завтра, /schedule, /grades и /dots." in done


def test_quotations_in_the_readers_marks():
    from datetime import UTC, datetime

    from core.services.outbox import OutboxItem

    at = datetime(2026, 11, 23, 9, tzinfo=UTC)
    grade = {"child": "Иван", "subject": "Физика", "value": 5, "shown": "5", "weight": 1,
             "date": "2026-11-23", "comment": "Отлично", "avg_before": 4.0, "avg_after": 4.5}
    dot = {"child": "Иван", "subject": "Физика", "work": "Лабораторная работа",
           "comment": "Сдать отчёт", "expires": "2026-11-27", "days_left": 4}
    items = (OutboxItem(1, "grade_new", 1, grade, at, 0), OutboxItem(2, "dot_new", 1, dot, at, 0))
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        ru, _unknown = render_items(items)
    with i18n.context(), i18n.use_locale("en"):
        en, _unknown = render_items(items)
    assert "Комментарий: «Отлично»" in ru and "Лабораторная работа: «Сдать отчёт»" in ru
    assert "Comment: “Отлично”" in en and "Лабораторная работа: “Сдать отчёт”" in en
    assert "«" not in en and "»" not in en
