"""/grades through the dispatcher: Russian formatting, navigation in place, forged buttons."""

from __future__ import annotations

import json

from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage

from bot.callbacks import GradesCb
from core.importers.journal import parse_journal
from tests.support import updates as up
from tests.support.school import ANDREY_PHONE, ANNA_PHONE

ANNA = 5001
ANDREY = 5003


async def load(services, *events: dict) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=False)


def g(n, value, weight=1, subject="Алгебра", day="2026-11-10", student="S-1001", **kw):
    return {"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": student,
            "subject": subject, "date": day, "value": value, "weight": weight, **kw}


PERIODS = (
    {"id": "p1", "type": "period", "period_id": "q1", "name": "1 четверть",
     "start": "2026-09-01", "end": "2026-10-25"},
    {"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
     "start": "2026-11-05", "end": "2026-12-28"},
)


async def test_overview_with_weighted_averages_in_russian(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await load(s, *PERIODS, g(1, 5, 2), g(2, 4), g(3, 3, 3, work="Контрольная работа"),
               g(4, 5, subject="Физика"), g(5, 2, day="2026-10-01"))
    await tg.feed(up.message(ANNA, "/grades"))
    picker = tg.session.last()
    assert picker.text == "Чьи оценки?"
    buttons = [b[0].text for b in picker.reply_markup.inline_keyboard]
    assert buttons == ["Иван Петров, 7Б класс", "Мария Петрова, 5А класс"]
    ivan = GradesCb.unpack(picker.reply_markup.inline_keyboard[0][0].callback_data).c

    await tg.feed(up.callback(ANNA, GradesCb(a="ov", c=ivan).pack()))
    edit = tg.session.of(EditMessageText)[-1]
    assert "2 четверть (5 нояб. – 28 дек.)" in edit.text
    assert "<b>Алгебра</b> — 3,83 (3 оценки)" in edit.text  # (10 + 4 + 9) / 6
    assert "5×2 4 3×3" in edit.text
    assert "<b>Физика</b> — 5,00 (1 оценка)" in edit.text
    assert "2" not in edit.text.split("Физика")[1].split("\n")[1]  # the October 2 is not here
    keyboard = edit.reply_markup.inline_keyboard
    assert [b.text for b in keyboard[0]] == ["Алгебра", "Физика"]
    assert keyboard[1][0].text == "« 1 четверть"
    assert tg.session.of(AnswerCallbackQuery)

    # The previous period.
    await tg.feed(up.callback(ANNA, keyboard[1][0].callback_data))
    assert "<b>Алгебра</b> — 2,00 (1 оценка)" in tg.session.last_text()

    # A subject's detail: newest first, weights, form of control, what the next mark needs.
    await tg.feed(up.callback(ANNA, keyboard[0][0].callback_data))
    detail = tg.session.last_text()
    assert "Средний балл: 3,83 (3 оценки)" in detail
    assert "<b>3</b> — 10 ноября, вес 3, Контрольная работа" in detail
    assert detail.index("<b>3</b>") < detail.index("<b>4</b>") < detail.index("<b>5</b>")
    # To 4,5: (23 + 5·w·k) / (6 + w·k) ≥ 4,5 → w·k ≥ 8: one line per weight, fewest first
    assert detail.endswith("\n\nЧтобы выйти на 4,50, нужно одно из:\n• ещё 3 пятёрки с весом 3\n"
                           "• ещё 4 пятёрки с весом 2\n• ещё 8 пятёрок с весом 1")


async def test_a_single_child_goes_straight_to_the_overview(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, g(1, 4, student="S-1003"))
    await tg.feed(up.message(ANDREY, "/grades"))
    sent = tg.session.of(SendMessage)[-1]
    assert sent.text.startswith("📊 Ольга Смирнова, 7Б класс — Учебный год 2026/27")
    assert "<b>Алгебра</b> — 4,00 (1 оценка)" in sent.text


async def test_forged_button_for_another_family_is_refused(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, g(1, 5, comment="секрет семьи Петровых"))
    ivan = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await tg.feed(up.callback(ANDREY, GradesCb(a="ov", c=ivan).pack()))
    assert tg.session.of(EditMessageText) == []
    answer = tg.session.of(AnswerCallbackQuery)[-1]
    assert answer.text == "Это вам недоступно." and answer.show_alert


async def test_unlinked_user_is_sent_to_start(tg):
    await tg.feed(up.message(9999, "/grades"))
    assert "Аккаунт ещё не привязан" in tg.session.last_text()


async def _detail(tg, subject_row: int = 0) -> str:
    await tg.feed(up.message(ANDREY, "/grades"))
    keyboard = tg.session.last().reply_markup.inline_keyboard
    await tg.feed(up.callback(ANDREY, keyboard[0][subject_row].callback_data))
    return tg.session.last_text()


async def test_a_dot_belongs_to_the_period_of_its_date(tg, clock):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, *PERIODS, g(1, 4, student="S-1003", subject="Физика", day="2026-10-01"),
               g(2, 5, student="S-1003", subject="Физика"),
               {"id": "d1", "type": "dot", "dot_id": "d1", "student_id": "S-1003",
                "subject": "Физика", "date": "2026-11-20", "expires": "2026-11-28"})
    await tg.feed(up.message(ANDREY, "/grades"))
    now = tg.session.last()
    assert "<b>Физика</b> — 5,00 (1 оценка) · 1 открытая точка" in now.text
    back = next(b for row in now.reply_markup.inline_keyboard for b in row
                if b.text == "« 1 четверть")
    await tg.feed(up.callback(ANDREY, back.callback_data))
    past = tg.session.last_text()
    assert "<b>Физика</b> — 4,00 (1 оценка)\n4" in past
    assert "точк" not in past


async def test_the_next_mark_needs_the_cheapest_ways_one_line_each(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, *(g(n, v, student="S-1003") for n, v in ((1, 3), (2, 3), (3, 4))))
    detail = await _detail(tg)  # 3,33: one 4 is enough for 3,50
    assert detail.endswith("\n\nЧтобы выйти на 3,50: ещё 1 четвёрка с весом 1.")
    await load(s, g(4, 3, 3, student="S-1003"), g(5, 5, 2, student="S-1003"))
    # (3+3+4+9+10) / 8 = 3,63 → 4,50; 14 fives of weight 1 would be past the limit of 10
    detail = await _detail(tg)
    assert detail.endswith("\n\nЧтобы выйти на 4,50, нужно одно из:\n"
                           "• ещё 5 пятёрок с весом 3\n"
                           "• ещё 7 пятёрок с весом 2")
    assert "или" not in detail
    await tg.feed(up.message(ANDREY, "/grades", language_code="en"))
    keyboard = tg.session.last().reply_markup.inline_keyboard
    await tg.feed(up.callback(ANDREY, keyboard[0][0].callback_data, language_code="en"))
    assert tg.session.last_text().endswith("\n\nTo reach 4.50, any one of:\n"
                                           "• 5 more 5s of weight 3\n"
                                           "• 7 more 5s of weight 2")
