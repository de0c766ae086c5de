"""/homework and /schedule through the dispatcher, and the class-wide pushes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiogram.methods import AnswerCallbackQuery, EditMessageText

from bot.callbacks import DayCb, SettingsCb
from bot.i18n import create_i18n
from bot.notify import render_items
from core.clock import from_db
from core.importers.journal import parse_journal
from core.services.outbox import OutboxItem
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
    assert week.startswith("🗓 Расписание на неделю 23–28 нояб.")
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


GROUPS_DAY = (
    lesson("2026-11-25", 1, "Алгебра", "08:30", "09:15", room="214", teacher="Иванова М. П.",
           teacher_replaced=True, substitute="Сидоров П. П."),
    lesson("2026-11-25", 2, "Английский язык", "09:25", "10:10", id="en-1", lesson_id="L-1",
           group="1 группа", room="301", teacher="Браун Е. А."),
    lesson("2026-11-25", 2, "Английский язык", "09:25", "10:10", id="en-2", lesson_id="L-2",
           group="2 группа", room="302", teacher="Кузнецова О. И."),
    lesson("2026-11-25", 3, "Физика", "10:20", "11:05", teacher="Орлов В. С.", remote=True,
           link="https://zoom.us/j/123?pwd=a&b=1"),
    lesson("2026-11-25", 4, "История", "11:15", "12:00", remote=True),
    lesson("2026-11-25", 5, "Химия", "12:10", "12:55", teacher="Лебедева Н. Н.",
           teacher_replaced=True),
)


async def test_schedule_with_two_groups_in_a_slot_a_replaced_and_an_online_lesson(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await feed(s, *GROUPS_DAY)
    await tg.feed(up.message(IVAN, "/schedule 25.11"))
    assert tg.session.last_text() == (
        "🗓 Расписание на среду, 25 ноября\n"
        "\n"
        "1. 08:30–09:15 <b>Алгебра</b> · каб. 214 · <s>Иванова М. П.</s>"
        " · замена: Сидоров П. П.\n"
        "2. 09:25–10:10 <b>Английский язык</b> · 1 группа · каб. 301 · Браун Е. А.\n"
        "2. 09:25–10:10 <b>Английский язык</b> · 2 группа · каб. 302 · Кузнецова О. И.\n"
        "3. 10:20–11:05 <b>Физика</b> · Орлов В. С. · 💻 "
        '<a href="https://zoom.us/j/123?pwd=a&amp;b=1">онлайн</a>\n'
        "4. 11:15–12:00 <b>История</b> · 💻 онлайн\n"
        "5. 12:10–12:55 <b>Химия</b> · <s>Лебедева Н. Н.</s> · замена учителя"
    )
    markup = tg.session.last().reply_markup
    await tg.feed(up.callback(IVAN, markup.inline_keyboard[0][1].callback_data))
    week = tg.session.of(EditMessageText)[-1].text
    assert ("<u>ср, 25 нояб.</u>\n1. Алгебра, 2. Английский язык (1 группа),"
            " 2. Английский язык (2 группа), 3. Физика, 4. История, 5. Химия") in week


async def test_a_replaced_lesson_is_sent_again_by_its_id_in_another_slot(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await feed(s, *GROUPS_DAY)
    await feed(s, lesson("2026-11-25", 6, "Английский язык", "13:05", "13:50", id="en-1b",
                         lesson_id="L-1", group="1 группа", room="301", teacher="Браун Е. А."))
    await tg.feed(up.message(IVAN, "/schedule 25.11"))
    text = tg.session.last_text()
    assert "2. 09:25–10:10 <b>Английский язык</b> · 1 группа" not in text
    assert "2. 09:25–10:10 <b>Английский язык</b> · 2 группа · каб. 302" in text
    assert text.endswith("6. 13:05–13:50 <b>Английский язык</b> · 1 группа · каб. 301"
                         " · Браун Е. А.")


async def test_a_replaced_lesson_tomorrow_is_pushed_and_has_its_switch(tg):
    s = tg.services  # today: Monday 23 November
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANDREY, "/settings"))
    assert ("🔔 Мгновенные сообщения: оценки — вкл., точки — вкл., посещаемость — вкл.,"
            " задания на завтра — выкл., отмена уроков — вкл., замена учителей — вкл.") in (
        tg.session.last_text())
    await tg.feed(up.callback(ANDREY, SettingsCb(action="screen", value="notif").pack()))
    labels = [row[0].text for row in tg.session.last().reply_markup.inline_keyboard]
    assert labels[4:6] == ["✅ Отмена уроков", "✅ Замена учителей"]
    # Анна switches the replacements off.
    await tg.feed(up.callback(ANNA, SettingsCb(action="screen", value="notif").pack()))
    await tg.feed(up.callback(ANNA, SettingsCb(action="flag",
                                               value="push_replacements").pack()))
    labels = [row[0].text for row in tg.session.last().reply_markup.inline_keyboard]
    assert labels[4:6] == ["✅ Отмена уроков", "▫️ Замена учителей"]
    pushes = await feed(s, lesson("2026-11-24", 2, "Физика", "09:25", "10:10", group="1 группа",
                                  teacher="Орлов В. С.", substitute="Сидоров П. П."),
                        notify=True)
    assert pushes == 1  # Андрей; Анна switched it off
    row = await s.db.fetchone("SELECT id, telegram_id, kind, student_id, payload, created_at"
                              " FROM outbox")
    assert (row[1], row[2]) == (ANDREY, "lesson_replaced")
    item = OutboxItem(row[0], row[2], row[3], json.loads(row[4]), from_db(row[5]), 0)
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        text = render_items((item,))[0]
    assert text == ("🔄 Замена учителя · Физика\n"
                    "Ольга · вторник, 24 ноября, 2-й урок в 09:25 · 1 группа\n"
                    "Замена: Сидоров П. П.\n"
                    "По расписанию: Орлов В. С.")
    with i18n.context(), i18n.use_locale("en"):
        text = render_items((item,))[0]
    assert text == ("🔄 Teacher replaced · Физика\n"
                    "Ольга · Tuesday, November 24, lesson 2 at 09:25 · 1 группа\n"
                    "Substitute: Сидоров П. П.\n"
                    "Timetabled teacher: Орлов В. С.")


async def test_one_students_homework_is_seen_by_that_students_family_only(tg):
    s = tg.services
    for account, phone in ((ANNA, ANNA_PHONE), (IVAN, IVAN_PHONE), (ANDREY, ANDREY_PHONE)):
        await s.linking.link_contact(account, account, account, phone)
    await feed(s, *WEEK,
               hw(20, "Алгебра", "2026-11-24", "Исправить ошибки в контрольной",
                  cls=None, student_id="S-1001",
                  links=[{"url": "https://school.ru/a?b=1&c='2'", "title": "Разбор <ошибок>"},
                         "https://www.resh.edu.ru/subject/lesson/7712/start/"]),
               hw(2, "Литература", "2026-11-24", "-"))  # a placeholder: the task taken back
    for account in (IVAN, ANNA):
        await tg.feed(up.message(account, "/homework 24.11"))
        text = tg.session.last_text()
        assert ("• <b>Алгебра</b> (индивидуальное): Исправить ошибки в контрольной\n"
                "   🔗 <a href=\"https://school.ru/a?b=1&amp;c=&#x27;2&#x27;\">"
                "Разбор &lt;ошибок&gt;</a> · <a href=\"https://www.resh.edu.ru/subject/lesson/"
                "7712/start/\">resh.edu.ru/subject/lesson/7712/start</a>\n"
                "   <i>обязательное · изменено 20 ноября, 15:30</i>") in text
        assert "• <b>Алгебра</b>: № 245, 247 (а, б)" in text  # the class's task
        assert "Литература" not in text
    # Андрей's Ольга is in the same class: the class's task, not Иван's own.
    await tg.feed(up.message(ANDREY, "/homework 24.11"))
    text = tg.session.last_text()
    assert "• <b>Алгебра</b>: № 245, 247 (а, б)" in text
    assert "Исправить ошибки" not in text and "school.ru" not in text
    await tg.feed(up.message(ANDREY, "/homework алг"))
    assert "Исправить ошибки" not in tg.session.last_text()
    await tg.feed(up.message(IVAN, "/homework алг"))
    assert ("• к вт, 24 нояб. (индивидуальное): Исправить ошибки в контрольной\n"
            "   🔗 <a href=") in tg.session.last_text()


async def test_the_push_of_one_students_task_names_the_child_and_lists_its_links(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await s.preferences.set_flag(IVAN, "push_homework", True)
    pushes = await feed(s, hw(30, "Алгебра", "2026-11-24", "Исправить ошибки", cls=None,
                              student_id="S-1001", required=False,
                              links=[{"url": "https://school.ru/a?b=1&c=2", "title": "Разбор"},
                                     "https://resh.edu.ru/7"]), notify=True)
    assert pushes == 1
    row = await s.db.fetchone("SELECT id, kind, student_id, payload, created_at FROM outbox")
    item = OutboxItem(row[0], row[1], row[2], json.loads(row[3]), from_db(row[4]), 0)
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        text = render_items((item,))[0]
    # Pushes are plain text: the addresses are shown as they are.
    assert text == ("📚 Задание на завтра · Алгебра\n"
                    "Иван · индивидуальное задание\n"
                    "Исправить ошибки\n"
                    "(по желанию)\n"
                    "🔗 Разбор: https://school.ru/a?b=1&c=2\n"
                    "🔗 https://resh.edu.ru/7")
