"""/homework and /schedule through the dispatcher, and the class-wide pushes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiogram.methods import AnswerCallbackQuery, EditMessageText

from bot.callbacks import DayCb, SettingsCb
from core.importers.journal import parse_journal
from tests.support import updates as up
from tests.support.school import ANDREY_PHONE, ANNA_PHONE, IVAN_PHONE, TZ

ANNA, IVAN, ANDREY = 5001, 5002, 5003


async def feed(services, *events: dict, notify: bool = False) -> int:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    summary, _ = await services.journal.import_journal(parse_journal(lines, "j"), "j",
                                                       notify=notify)
    return summary.pushes


def lesson(day, number, subject, start, end, cls="7Б", **kw):
    return {"id": f"l-{cls}-{day}-{number}-{kw.get('cancelled', False)}", "type": "lesson",
            "class": cls, "date": day, "number": number, "subject": subject, "start": start,
            "end": end, **kw}


def hw(n, subject, due, text, cls="7Б", **kw):
    return {"id": f"h{n}-{text}", "type": "homework", "homework_id": f"h{n}", "class": cls,
            "subject": subject, "due": due, "text": text,
            "updated_at": "2026-11-20T12:30:00Z", **kw}


WEEK = (
    lesson("2026-11-23", 1, "Алгебра", "08:30", "09:15", room="214", teacher="Иванова М. П."),
    lesson("2026-11-23", 2, "Физика", "09:25", "10:10"),
    lesson("2026-11-24", 1, "Алгебра", "08:30", "09:15", room="214", teacher="Иванова М. П."),
    lesson("2026-11-24", 2, "Физика", "09:25", "10:10", room="305", cancelled=True),
    hw(1, "Алгебра", "2026-11-24", "№ 245, 247 (а, б)"),
    hw(2, "Литература", "2026-11-24", "Прочитать «Муму»", required=False),
    hw(3, "Алгебра", "2026-11-26", "№ 250"),
    hw(4, "Окружающий мир", "2026-11-24", "Гербарий", cls="5А"),
)


async def test_student_asks_for_tomorrows_homework(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await feed(s, *WEEK)
    await tg.feed(up.message(IVAN, "/homework завтра"))
    text = tg.session.last_text()
    assert text.startswith("📚 Домашнее задание на вторник, 24 ноября")
    assert ("• <b>Алгебра</b>: № 245, 247 (а, б)\n"
            "   <i>обязательное · изменено 20 ноября, 15:30</i>") in text
    assert "• <b>Литература</b> (по желанию): Прочитать «Муму»" in text
    assert "Гербарий" not in text  # another class
    buttons = [b.text for b in tg.session.last().reply_markup.inline_keyboard[0]]
    assert buttons == ["« пн, 23 нояб.", "неделя", "ср, 25 нояб. »"]


async def test_default_day_follows_the_end_of_todays_lessons(tg, clock):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await feed(s, *WEEK)
    clock.moment = datetime(2026, 11, 23, 9, 0, tzinfo=TZ).astimezone(UTC)  # lessons go on
    await tg.feed(up.message(IVAN, "/homework"))
    assert "на понедельник, 23 ноября" in tg.session.last_text()
    clock.moment = datetime(2026, 11, 23, 10, 30, tzinfo=TZ).astimezone(UTC)  # over
    await tg.feed(up.message(IVAN, "/homework"))
    assert "на вторник, 24 ноября" in tg.session.last_text()


async def test_schedule_with_times_rooms_teachers_and_cancellations(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await feed(s, *WEEK)
    await tg.feed(up.message(IVAN, "/schedule вт"))
    text = tg.session.last_text()
    assert text.startswith("🗓 Расписание на вторник, 24 ноября")
    assert "1. 08:30–09:15 <b>Алгебра</b> · каб. 214 · Иванова М. П." in text
    assert "2. <s>09:25–10:10 <b>Физика</b> · каб. 305</s> — отменён" in text
    # Navigation edits the message in place; the week view lists each day.
    markup = tg.session.last().reply_markup
    await tg.feed(up.callback(IVAN, markup.inline_keyboard[0][1].callback_data))
    week = tg.session.of(EditMessageText)[-1].text
    assert week.startswith("🗓 Расписание на неделю 23 нояб. – 28 нояб.")
    assert "<u>вт, 24 нояб.</u>\n1. Алгебра, <s>2. Физика</s>" in week
    await tg.feed(up.callback(IVAN, markup.inline_keyboard[1][0].callback_data))
    assert tg.session.of(EditMessageText)[-1].text.startswith("📚 Домашнее задание на вторник")
    assert tg.session.of(AnswerCallbackQuery)


async def test_parent_sees_each_child_and_nothing_else(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await feed(s, *WEEK)
    await tg.feed(up.message(ANNA, "/homework 24.11"))
    text = tg.session.last_text()
    assert "<b>Иван Петров, 7Б класс</b>" in text and "<b>Мария Петрова, 5А класс</b>" in text
    assert "Гербарий" in text
    olga = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1003'")
    tg.session.clear()
    await tg.feed(up.callback(ANNA, DayCb(v="h", c=olga, d=739579).pack()))
    assert tg.session.of(EditMessageText) == []
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Это вам недоступно."


async def test_subject_and_unknown_arguments(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await feed(s, *WEEK)
    await tg.feed(up.message(IVAN, "/homework алг"))
    text = tg.session.last_text()
    assert text.startswith("📚 <b>Алгебра</b> — Иван Петров, 7Б класс")
    assert "• к вт, 24 нояб.: № 245, 247 (а, б)\n• к чт, 26 нояб.: № 250" in text
    await tg.feed(up.message(IVAN, "/homework 31.02"))
    assert tg.session.last_text().startswith("Не понял «31.02». Попробуйте так: /homework завтра")
    await tg.feed(up.message(IVAN, "/homework химия"))
    assert "Не понял «химия»" in tg.session.last_text()


async def test_class_pushes_follow_each_accounts_settings(tg):
    s = tg.services  # today: Monday 23 November
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    # Homework for tomorrow: off by default; Андрей switches it on in /settings.
    await tg.feed(up.message(ANDREY, "/settings"))
    assert "задания на завтра — выкл." in tg.session.last_text()
    await tg.feed(up.callback(ANDREY, SettingsCb(action="screen", value="notif").pack()))
    await tg.feed(up.callback(ANDREY, SettingsCb(action="flag", value="push_homework").pack()))
    labels = [row[0].text for row in tg.session.last().reply_markup.inline_keyboard]
    assert "✅ Задания на завтра" in labels
    pushes = await feed(s, hw(9, "Алгебра", "2026-11-24", "№ 300"), notify=True)
    assert pushes == 1
    row = await s.db.fetchone("SELECT telegram_id, kind, payload FROM outbox")
    assert (row[0], row[1]) == (ANDREY, "homework")
    assert json.loads(row[2])["child"] == "Ольга"
    # A cancelled lesson tomorrow: on by default for everyone following the class.
    await tg.feed(up.callback(ANNA, SettingsCb(action="flag", value="push_timetable").pack()))
    pushes = await feed(s, lesson("2026-11-24", 3, "История", "10:20", "11:05",
                                  cancelled=True), notify=True)
    assert pushes == 1  # Андрей; Анна switched it off
    kinds = [r[0] for r in await s.db.fetchall("SELECT kind FROM outbox ORDER BY id")]
    assert kinds == ["homework", "lesson_cancelled"]
    # Next week's cancellation is not news yet.
    assert await feed(s, lesson("2026-12-01", 3, "История", "10:20", "11:05",
                                cancelled=True), notify=True) == 0
