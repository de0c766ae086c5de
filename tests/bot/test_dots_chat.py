"""/dots and the dot pushes as a family sees them."""

from __future__ import annotations

import json

from core.importers.journal import parse_journal
from core.services.outbox import OutboxItem
from tests.support import updates as up
from tests.support.school import ANDREY_PHONE, ANNA_PHONE

ANNA, ANDREY = 5001, 5003


async def feed(services, *events: dict) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=False)


def dot(n, student, subject, expires, **kw):
    return {"id": f"d{n}", "type": "dot", "dot_id": f"dot{n}", "student_id": student,
            "subject": subject, "date": "2026-11-20", "expires": expires, **kw}


async def test_dots_lists_each_child_soonest_first_with_days_left(tg):
    s = tg.services  # today is 23 November 2026 (Moscow)
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await feed(s, dot(1, "S-1001", "Физика", "2026-11-28", work="Лабораторная работа",
                      comment="Сдать отчёт"),
               dot(2, "S-1001", "История", "2026-11-23"),
               dot(3, "S-1001", "Химия", "2026-11-25"),
               dot(4, "S-1003", "Физика", "2026-11-25"))
    await tg.feed(up.message(ANNA, "/dots"))
    text = tg.session.last_text()
    ivan, maria = text.split("\n\n")
    assert ivan.startswith("📌 Точки — <b>Иван Петров, 7Б класс</b>")
    assert ivan.index("История") < ivan.index("Химия") < ivan.index("Физика")
    assert "<b>История</b>" in ivan and "<b>последний день</b>" in ivan
    assert "поставлена 20 ноября · до 25 ноября · осталось 2 дня" in ivan
    assert ("• <b>Физика</b> — Лабораторная работа: «Сдать отчёт»\n"
            "   поставлена 20 ноября · до 28 ноября · осталось 5 дней") in ivan
    assert "Мария Петрова" in maria and "Открытых точек нет." in maria
    assert "Ольга" not in text  # another family's child


async def test_grades_marks_subjects_with_open_dots(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await feed(s, dot(1, "S-1003", "Физика", "2026-11-28"),
               {"id": "g", "type": "grade", "grade_id": "g", "student_id": "S-1003",
                "subject": "Физика", "date": "2026-11-20", "value": 4})
    await tg.feed(up.message(ANDREY, "/grades"))
    assert "<b>Физика</b> — 4,00 (1 оценка) · 1 открытая точка" in tg.session.last_text()


def test_dot_pushes_in_russian():
    from bot.i18n import create_i18n
    from bot.notify import render_items

    i18n = create_i18n("ru")
    base = {"child": "Иван", "subject": "Физика", "work": "Лабораторная работа",
            "comment": "Сдать отчёт", "teacher": "Орлов В. С.", "expires": "2026-11-27",
            "value": 2}
    items = (
        OutboxItem(1, "dot_new", 1, {**base, "days_left": 4, "set_on": "2026-11-23"}, None, 0),
        OutboxItem(2, "dot_reminder", 1, {**base, "days_left": 2}, None, 0),
        OutboxItem(3, "dot_reminder", 1, {**base, "days_left": 0}, None, 0),
        OutboxItem(4, "dot_vanished", 1, {**base, "reason": "teacher"}, None, 0),
        OutboxItem(5, "grade_new", 1, {**base, "value": 2, "weight": 2, "date": "2026-11-27",
                                       "from_dot": True, "avg_before": 4.5, "avg_after": 3.67},
                   None, 0),
    )
    with i18n.context(), i18n.use_locale("ru"):
        text, unknown = render_items(items)
    assert unknown == []
    blocks = text.split("\n\n")
    assert blocks[0] == ("📌 Новая точка · Физика\nИван · до 27 ноября (осталось 4 дня)\n"
                         "Лабораторная работа: «Сдать отчёт»\n"
                         "Если не закрыть до срока, станет оценкой 2.\nУчитель: Орлов В. С.")
    assert blocks[1].startswith("⏰ Точка · Физика: осталось 2 дня\nИван · до 27 ноября")
    assert blocks[2].startswith("⏰ Последний день точки · Физика")
    assert blocks[3] == "🧹 Учитель снял точку · Физика\nИван · Лабораторная работа: «Сдать отчёт»"
    assert blocks[4].startswith("🔔 Оценка 2 из точки · Физика")
    assert "Средний балл: 4,50 → 3,67" in blocks[4]
    with i18n.context(), i18n.use_locale("en"):
        english, _ = render_items(items[:1])
    assert english.startswith("📌 New dot · Физика\nИван · until November 27 (4 days left)")
