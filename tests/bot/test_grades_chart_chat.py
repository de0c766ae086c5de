"""/grades charts and the class beside a child: a picture sent and redrawn in place, the class
average only where five students have marks, and never anyone else's name or marks."""

from __future__ import annotations

import json

from aiogram.methods import AnswerCallbackQuery, EditMessageMedia, EditMessageText, SendPhoto
from aiogram.types import CallbackQuery, Chat, Message, PhotoSize, Update, User

from bot.callbacks import GradesCb
from bot.charts import png_size
from core.importers.journal import parse_journal
from core.services.grades import subject_key
from tests.support import updates as up
from tests.support.recording import MESSAGE_DATE
from tests.support.school import ANDREY_PHONE, ANNA_PHONE, EXAMPLE_ROSTER, import_roster

ANNA = 5001
ANDREY = 5003
PNG = b"\x89PNG\r\n\x1a\n"

PERIODS = (
    {"id": "p1", "type": "period", "period_id": "q1", "name": "1 четверть",
     "start": "2026-09-01", "end": "2026-10-25"},
    {"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
     "start": "2026-11-05", "end": "2026-12-28"},
)
# Two more students of 7Б (the example roster has three: S-1001, S-1003, S-1004).
MORE = (
    "ГБОУ Школа № 1234,7Б,S-1006,Зайцева,Полина,,,,,,,,,,,\n"
    "ГБОУ Школа № 1234,7Б,S-1007,Орлов,Глеб,,,,,,,,,,,\n"
)
OTHERS = ("Ольга", "Смирнова", "Дмитрий", "Кузнецов", "Полина", "Зайцева", "Глеб", "Орлов",
          "Мария", "Артём")


async def load(services, *events: dict) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=False)


def g(n, value, weight=1, subject="Алгебра", day="2026-11-10", student="S-1001", **kw):
    return {"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": student,
            "subject": subject, "date": day, "value": value, "weight": weight, **kw}


async def five_in_7b(services) -> None:
    text = EXAMPLE_ROSTER.read_text(encoding="utf-8")
    await import_roster(services, text.rstrip("\n") + "\n" + MORE)


def photo_callback(user_id: int, data: str, message_id: int = 700) -> Update:
    """A button pressed under a picture the bot sent."""
    msg = Message(message_id=message_id, date=MESSAGE_DATE, chat=Chat(id=user_id, type="private"),
                  from_user=up.user(42, "Diary"), caption="📈",
                  photo=[PhotoSize(file_id="AgAC1", file_unique_id="u1", width=1000,
                                   height=600)])
    query = CallbackQuery(id=f"photo-{message_id}-{data}", from_user=User(
        id=user_id, is_bot=False, first_name="Анна", language_code="ru"),
        chat_instance="ci", message=msg, data=data)
    return Update(update_id=message_id, callback_query=query)


async def _ivan(tg) -> int:
    return await tg.services.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")


async def test_the_chart_button_sends_a_picture_and_redraws_it_in_place(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await load(s, *PERIODS, g(1, 5, 2), g(2, "4-"), g(3, 3, 3, day="2026-11-12"),
               g(4, "зачёт", day="2026-11-13"), g(5, 2, day="2026-10-01"),
               g(6, 4, subject="Физика", day="2026-11-10"))
    ivan = await _ivan(tg)
    await tg.feed(up.callback(ANNA, GradesCb(a="sub", c=ivan, s=subject_key("Алгебра")).pack()))
    keyboard = tg.session.of(EditMessageText)[-1].reply_markup.inline_keyboard
    chart_button = [b for row in keyboard for b in row if b.text == "📈 График"]
    assert len(chart_button) == 1

    await tg.feed(up.callback(ANNA, chart_button[0].callback_data))
    sent = tg.session.of(SendPhoto)[-1]
    assert sent.chat_id == ANNA
    png = sent.photo.data
    assert png.startswith(PNG) and png_size(png) == (1000, 600)
    assert sent.caption.split("\n") == [
        "📈 <b>Алгебра</b> — Иван Петров", "2 четверть (5 нояб. – 28 дек.)",
        "Средний балл: 3,83 (3 оценки)"]  # (10 + 4 + 9) / 6; «зачёт» counts as nothing
    nav = sent.reply_markup.inline_keyboard
    assert [b.text for b in nav[0]] == ["« 1 четверть"]
    assert tg.session.of(AnswerCallbackQuery)[-1].text is None

    # Under the picture: the previous period, redrawn in place.
    await tg.feed(photo_callback(ANNA, nav[0][0].callback_data))
    edit = tg.session.of(EditMessageMedia)[-1]
    assert edit.message_id == 700 and edit.chat_id == ANNA
    assert edit.media.media.data.startswith(PNG) and edit.media.media.data != png
    assert edit.media.caption.split("\n")[1:] == ["1 четверть (1 сент. – 25 окт.)",
                                                  "Средний балл: 2,00 (1 оценка)"]
    assert [b.text for b in edit.reply_markup.inline_keyboard[0]] == ["2 четверть »"]

    # Физика had no marks in the first term: said so, the picture left as it is.
    tg.session.clear()
    await tg.feed(photo_callback(ANNA, GradesCb(a="gc", c=ivan, p=0,
                                                s=subject_key("Физика")).pack()))
    answer = tg.session.of(AnswerCallbackQuery)[-1]
    assert (answer.text, answer.show_alert) == ("Нет оценок за этот период", True)
    assert not tg.session.of(EditMessageMedia) and not tg.session.of(SendPhoto)


async def test_the_overview_chart(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await load(s, *PERIODS, g(1, 5), g(2, 4, subject="Физика"))
    ivan = await _ivan(tg)
    await tg.feed(up.callback(ANNA, GradesCb(a="ov", c=ivan).pack()))
    keyboard = tg.session.of(EditMessageText)[-1].reply_markup.inline_keyboard
    assert [b.text for b in keyboard[1]] == ["« 1 четверть"]  # the periods stay where they were
    assert [b.text for b in keyboard[2]] == ["📈 График"]
    await tg.feed(up.callback(ANNA, keyboard[2][0].callback_data))
    sent = tg.session.of(SendPhoto)[-1]
    assert sent.photo.data.startswith(PNG)
    assert sent.caption == ("📈 Средние баллы — Иван Петров, 7Б класс\n"
                            "2 четверть (5 нояб. – 28 дек.)")

    # A period without marks: no chart button, and a forged one gets the message.
    await tg.feed(up.callback(ANNA, GradesCb(a="ov", c=ivan, p=0).pack()))
    texts = [b.text for row in tg.session.of(EditMessageText)[-1].reply_markup.inline_keyboard
             for b in row]
    assert "📈 График" not in texts
    await tg.feed(up.callback(ANNA, GradesCb(a="oc", c=ivan, p=0).pack()))
    answer = tg.session.of(AnswerCallbackQuery)[-1]
    assert (answer.text, answer.show_alert) == ("Нет оценок за этот период", True)


async def test_chart_buttons_for_another_family_are_refused(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, *PERIODS, g(1, 5))
    ivan = await _ivan(tg)
    for data in (GradesCb(a="gc", c=ivan, s=subject_key("Алгебра")).pack(),
                 GradesCb(a="oc", c=ivan).pack()):
        await tg.feed(up.callback(ANDREY, data))
        answer = tg.session.of(AnswerCallbackQuery)[-1]
        assert answer.text == "Это вам недоступно." and answer.show_alert
    await tg.feed(photo_callback(ANDREY, GradesCb(a="gc", c=ivan, p=0,
                                                  s=subject_key("Алгебра")).pack()))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Это вам недоступно."
    assert not tg.session.of(SendPhoto) and not tg.session.of(EditMessageMedia)


async def _detail_text(tg, ivan: int) -> str:
    await tg.feed(up.callback(ANNA, GradesCb(a="sub", c=ivan, s=subject_key("Алгебра")).pack()))
    return tg.session.of(EditMessageText)[-1].text


async def test_the_class_is_shown_only_from_five_students_with_marks(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await five_in_7b(s)
    # Иван 4,5; Ольга 5; Дмитрий 5; Полина 3; Глеб: only a mark of weight 0, which counts as
    # nothing. Мария (5А) has a 2: another class.
    await load(s, *PERIODS, g(1, 5), g(2, 4), g(3, 5, student="S-1003"),
               g(4, 5, student="S-1004"), g(5, 3, student="S-1006"),
               g(6, 2, 0, student="S-1007"), g(7, 2, student="S-1002"),
               g(8, 5, subject="Физика"))
    ivan = await _ivan(tg)
    detail = await _detail_text(tg, ivan)
    assert "класс" not in detail.split("\n", 1)[1]  # four students with marks: nothing
    await tg.feed(up.callback(ANNA, GradesCb(a="ov", c=ivan).pack()))
    assert "по классу" not in tg.session.of(EditMessageText)[-1].text

    # A fifth (Глеб's 2 of weight 1): the class average of 4,5 5 5 3 2 is 3,90.
    await load(s, g(9, 2, student="S-1007"))
    detail = await _detail_text(tg, ivan)
    assert "Средний балл класса: 3,90. Иван Петров: выше среднего по классу." in detail
    await tg.feed(up.callback(ANNA, GradesCb(a="ov", c=ivan).pack()))
    overview = tg.session.of(EditMessageText)[-1].text
    assert "<b>Алгебра</b> — 4,50 (2 оценки) · выше среднего по классу" in overview
    assert "<b>Физика</b> — 5,00 (1 оценка)\n" in overview  # Физика: one student only
    for text in (detail, overview):
        assert not [name for name in OTHERS if name in text]

    # Иван's 5 of weight 3 (4,80), Ольга's and Дмитрий's fives turned into fours: 4,80 4 4
    # 3 2, nobody above him.
    await load(s, g(10, 5, 3), {**g(3, 4, student="S-1003"), "id": "e11"},
               {**g(4, 4, student="S-1004"), "id": "e12"})
    detail = await _detail_text(tg, ivan)
    assert "Средний балл класса: 3,56. Иван Петров: в верхней четверти класса." in detail
    await tg.feed(up.callback(ANNA, GradesCb(a="gc", c=ivan, s=subject_key("Алгебра")).pack()))
    caption = tg.session.of(SendPhoto)[-1].caption
    assert caption.endswith("\nСредний балл класса: 3,56. Иван Петров: в верхней четверти класса.")
    assert not [name for name in OTHERS if name in caption]


async def test_below_the_class_average_and_a_student_who_left(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await five_in_7b(s)
    await load(s, *PERIODS, g(1, 3), g(2, 5, student="S-1003"), g(3, 4, student="S-1004"),
               g(4, 5, student="S-1006"), g(5, 4, student="S-1007"))
    ivan = await _ivan(tg)
    assert "Средний балл класса: 4,20. Иван Петров: ниже среднего по классу." in (
        await _detail_text(tg, ivan))
    # Глеб leaves the school: four students, nothing.
    async with s.db.transaction() as tx:
        await tx.execute("UPDATE students SET active = 0 WHERE external_id = 'S-1007'")
    assert "класс" not in (await _detail_text(tg, ivan)).split("\n", 1)[1]
