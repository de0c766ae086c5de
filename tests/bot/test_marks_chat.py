"""Marks as the school shows them on /grades, /dots and in pushes: «4-», «5/4», «зачёт», «8 из 10»,
marks left out of the average, marks that carry a dot."""

from __future__ import annotations

import json

from aiogram.methods import SendMessage

from bot.i18n import create_i18n
from bot.notify import render_items
from core.importers.journal import parse_journal
from tests.support import updates as up
from tests.support.school import ANDREY_PHONE, ANNA_PHONE

ANNA, ANDREY = 5001, 5003


async def load(services, *events: dict, notify: bool = False) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=notify)


def g(n, value, weight=1, subject="Алгебра", day="2026-11-10", student="S-1003", **kw):
    return {"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": student,
            "subject": subject, "date": day, "value": value, "weight": weight, **kw}


async def overview(tg) -> SendMessage:
    await tg.feed(up.message(ANDREY, "/grades"))
    return tg.session.of(SendMessage)[-1]


async def detail(tg, row: int = 0, column: int = 0) -> str:
    keyboard = (await overview(tg)).reply_markup.inline_keyboard
    await tg.feed(up.callback(ANDREY, keyboard[row][column].callback_data))
    return tg.session.last_text()


async def test_marks_are_shown_as_the_school_shows_them_and_averaged_by_what_they_count(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, g(1, "4-"), g(2, "5/4"), g(3, "н/а", 0, day="2026-11-11"),
               g(4, 5, 0, day="2026-11-12", work="Пробный тест"), g(5, 8, scale=10),
               g(6, "зачёт", subject="Физкультура"))
    text = (await overview(tg)).text
    # 4- (4), 5/4 (5 and 4), 8 of 10 (4): 17 / 4; «н/а», the 5 of weight 0 and «зачёт» left out.
    assert "<b>Алгебра</b> — 4,25 (4 оценки)\n4- 5/4 8 (н/а) (5)" in text
    assert "<b>Физкультура</b>\n(зачёт)" in text
    assert text.endswith("\n\n(5) — не учитывается в среднем.")

    page = await detail(tg)
    assert "Средний балл: 4,25 (4 оценки)" in page
    assert "<b>5</b> — 12 ноября, Пробный тест — не учитывается в среднем" in page
    assert "<b>н/а</b> — 11 ноября — не учитывается в среднем" in page
    assert "<b>8 из 10</b> (в среднем как 4) — 10 ноября, вес 1" in page
    assert "<b>5/4</b> — 10 ноября, вес 1" in page
    assert "<b>4-</b> — 10 ноября, вес 1" in page
    # (17 + 5k) / (4 + k) ≥ 4,5 → k ≥ 2: marks of weight 0 offer no option.
    assert page.endswith("\n\nЧтобы выйти на 4,50: ещё 2 пятёрки с весом 1.")

    await tg.feed(up.message(ANDREY, "/grades", language_code="en"))
    english = tg.session.of(SendMessage)[-1].text
    assert "<b>Алгебра</b> — 4.25 (4 marks)\n4- 5/4 8 (н/а) (5)" in english
    assert english.endswith("\n\n(5) — not counted in the average.")


async def test_a_mark_with_a_dot_shows_its_dot_on_grades_and_dots(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, g(1, 5, 2), g(2, 3, day="2026-11-20", point_until="2026-11-25",
                                work="Контрольная работа"))
    text = (await overview(tg)).text
    # The mark counts while its dot is open: (10 + 3) / 3.
    assert "<b>Алгебра</b> — 4,33 (2 оценки) · 1 открытая точка\n5×2 3•" in text
    assert text.endswith("\n\n5×2 — оценка с весом 2. Средний балл — средневзвешенный.\n"
                         "4• — оценка с точкой: см. /dots.")
    page = await detail(tg)
    assert ("<b>3</b> — 20 ноября, вес 1, Контрольная работа\n    📌 с точкой до 25 ноября"
            in page)
    await tg.feed(up.message(ANDREY, "/dots"))
    dots = tg.session.last_text()
    assert ("• <b>Алгебра</b> — оценка <b>3</b>, Контрольная работа\n"
            "   поставлена 20 ноября · до 25 ноября · осталось 2 дня") in dots


def render(locale: str, *payloads: tuple[str, dict]) -> list[str]:
    from core.services.outbox import OutboxItem

    items = tuple(OutboxItem(n, kind, 1, p, None, 0) for n, (kind, p) in enumerate(payloads, 1))
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale(locale):
        text, unknown = render_items(items)
    assert unknown == []
    return text.split("\n\n")


async def test_pushes_show_the_mark_as_the_school_shows_it(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await load(s, g(1, 4, student="S-1001", day="2026-11-20"))
    await load(s, g(2, "4-", student="S-1001", day="2026-11-16", work="Самостоятельная работа"),
               g(3, "н/а", 0, student="S-1001"), g(4, 8, scale=10, student="S-1001"),
               g(5, "5/4", 2, student="S-1001", point_until="2026-11-25"), notify=True)
    rows = await s.db.fetchall("SELECT kind, payload FROM outbox WHERE telegram_id = ?"
                               " ORDER BY id", (ANNA,))
    blocks = render("ru", *((r[0], json.loads(r[1])) for r in rows))
    assert blocks[0] == ("🔔 Новая оценка 4- · Алгебра\nИван · 16 ноября · вес 1 ·"
                         " Самостоятельная работа\nСредний балл: 4,00 → 4,00")
    assert blocks[1] == ("🔔 Новая оценка н/а · Алгебра\nИван · 10 ноября · вес 0\n"
                         "Не учитывается в среднем.\nСредний балл: 4,00")
    assert blocks[2].startswith("🔔 Новая оценка 8 из 10 · Алгебра\n")
    assert blocks[2].endswith("Средний балл: 4,00 → 4,00")
    assert blocks[3] == ("🔔 Новая оценка 5/4 · Алгебра\nИван · 10 ноября · вес 2\n"
                         "📌 Оценка с точкой до 25 ноября (осталось 2 дня)\n"
                         "Средний балл: 4,00 → 4,29")  # (12 + 5·2 + 4·2) / (3 + 4)
    english = render("en", *((r[0], json.loads(r[1])) for r in rows[1:2]))
    assert english == ["🔔 New grade н/а · Алгебра\nИван · November 10 · weight 0\n"
                       "Not counted in the average.\nAverage: 4.00"]


def test_corrections_reminders_and_the_digest_name_marks_as_shown():
    base = {"child": "Иван", "subject": "Алгебра", "date": "2026-11-20", "work": None,
            "comment": None}
    blocks = render(
        "ru",
        ("grade_changed", {**base, "value": 5, "shown": "5/3", "old_value": 5, "old_shown": "5",
                           "weight": 1, "counted": True, "avg_before": 5.0, "avg_after": 4.0}),
        ("grade_changed", {**base, "value": 2, "shown": "2", "old_value": 2, "old_shown": "2",
                           "weight": 1, "counted": True, "point_cleared": True,
                           "avg_before": 3.0, "avg_after": 3.0}),
        ("grade_deleted", {**base, "value": None, "shown": "зачёт", "weight": 1,
                           "counted": False, "avg_before": 4.0, "avg_after": 4.0}),
        ("dot_reminder", {**base, "expires": "2026-11-25", "days_left": 0, "mark": "3"}),
        ("grade_new", {**base, "value": 4, "weight": 1, "avg_before": None, "avg_after": 4.0}),
    )
    assert blocks[0].startswith("✏️ Оценка исправлена 5 → 5/3 · Алгебра\n")
    assert blocks[1] == ("✏️ Оценка 2 изменена · Алгебра\nИван · 20 ноября · вес 1\n"
                         "📌 Точка с оценки снята.\nСредний балл: 3,00 → 3,00")
    assert blocks[2] == ("🗑 Оценка зачёт удалена · Алгебра\nИван · 20 ноября · вес 1\n"
                         "Не учитывается в среднем.\nСредний балл: 4,00")
    assert blocks[3] == ("⏰ Последний день точки · Алгебра\nИван · до 25 ноября\n"
                         "Точка стоит на оценке 3.")
    # A push queued before marks were kept as shown still reads.
    assert blocks[4].startswith("🔔 Новая оценка 4 · Алгебра\n")
    from bot.notify import digest

    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        text, _ = digest({"day": "2026-11-23", "children": [{
            "student_id": 1, "name": "Иван Петров", "class_name": "7Б", "grades": [
                {"subject": "Алгебра", "value": None, "shown": "н/а", "weight": 0,
                 "work": "Тест", "counted": False, "avg_before": None, "avg_after": None},
                {"subject": "Физика", "value": 4, "shown": "8", "scale": "10", "weight": 1,
                 "work": None, "counted": True, "avg_before": 4.0, "avg_after": 4.0}],
            "marks": [], "dots": [], "lessons": [], "homework": [], "next_day": None}]})
    assert "• Алгебра: н/а (вес 0, Тест, не учитывается в среднем)" in text
    assert "• Физика: 8 из 10 (вес 1) — средний 4,00 → 4,00" in text
