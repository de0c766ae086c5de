"""Final marks as a family sees them: the pushes, the «Итоговые» table of /grades with the
predicted mark of the current period, a subject's final marks, and forged buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage

from bot.callbacks import GradesCb
from bot.i18n import create_i18n
from bot.notify import render_batch, render_items
from core.importers.journal import parse_journal
from core.services.finals import predicted_mark
from core.services.grades import subject_key
from core.services.outbox import OutboxItem
from tests.support import updates as up
from tests.support.recording import TELEGRAM_LIMIT, telegram_length, visible
from tests.support.school import ANDREY_PHONE, ANNA_PHONE

ANNA = 5001
ANDREY = 5003

PERIODS = (
    {"id": "p1", "type": "period", "period_id": "q1", "name": "1 четверть",
     "start": "2026-09-01", "end": "2026-10-25"},
    {"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
     "start": "2026-11-05", "end": "2026-12-28"},
)


async def load(services, *events: dict, notify: bool = False) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=notify)


def g(n: int, value: int, weight: int = 1, subject: str = "Алгебра", day: str = "2026-11-10",
      student: str = "S-1001") -> dict:
    return {"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": student,
            "subject": subject, "date": day, "value": value, "weight": weight}


def final(fid: str, value: object, period: str = "q1", subject: str = "Алгебра",
          student: str = "S-1001", **extra) -> dict:
    return {"id": f"fe-{fid}-{value}", "type": "final_grade", "final_id": fid,
            "student_id": student, "subject": subject, "period_id": period, "value": value,
            **extra}


def rendered(locale: str, items: tuple[OutboxItem, ...]) -> str:
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale(locale):
        text, unknown = render_items(items)
    assert unknown == []
    return text


def item(n: int, kind: str, payload: dict, student: int = 1) -> OutboxItem:
    return OutboxItem(n, kind, student, payload, datetime(2026, 11, 23, tzinfo=UTC), 0)


# -- pushes ----------------------------------------------------------------------------------


def test_a_final_mark_push_in_russian_and_english():
    period = {"child": "Иван", "subject": "Алгебра", "period": "1 четверть", "value": "5"}
    year = {**period, "period": None}
    assert rendered("ru", (item(1, "final_grade", period),)) == (
        "🎓 Итоговая за 1 четверть · Алгебра: 5\nИван")
    assert rendered("ru", (item(1, "final_grade", year),)) == (
        "🎓 Итоговая за год · Алгебра: 5\nИван")
    english = {"child": "Ivan", "subject": "Algebra", "period": "Term 1", "value": "5"}
    assert rendered("en", (item(1, "final_grade", english),)) == (
        "🎓 Final mark for Term 1 · Algebra: 5\nIvan")
    assert rendered("en", (item(1, "final_grade", {**english, "period": None}),)) == (
        "🎓 Final mark for the year · Algebra: 5\nIvan")


def test_corrected_and_withdrawn_final_marks_in_russian_and_english():
    base = {"child": "Иван", "subject": "Алгебра", "period": "2 полугодие", "value": "5"}
    items = (item(1, "final_grade_changed", {**base, "old_value": "4"}),
             item(2, "final_grade_changed", {**base, "period": None}),
             item(3, "final_grade_deleted", base))
    assert rendered("ru", items) == (
        "✏️ Итоговая за 2 полугодие исправлена · Алгебра: 4 → 5\nИван\n\n"
        "✏️ Итоговая за год обновлена · Алгебра: 5\nИван\n\n"
        "🗑 Итоговая за 2 полугодие отменена · Алгебра: 5\nИван")
    assert rendered("en", items) == (
        "✏️ Final mark for 2 полугодие corrected · Алгебра: 4 → 5\nИван\n\n"
        "✏️ Final mark for the year updated · Алгебра: 5\nИван\n\n"
        "🗑 Final mark for 2 полугодие withdrawn · Алгебра: 5\nИван")


def test_final_marks_of_one_child_for_one_period_make_one_block():
    ivan = {"child": "Иван", "period": "1 четверть"}
    items = (item(1, "final_grade", {**ivan, "subject": "Физика", "value": "4"}),
             item(2, "grade_new", {"child": "Иван", "subject": "Химия", "value": 5, "weight": 1,
                                   "date": "2026-11-23", "avg_before": None,
                                   "avg_after": 5.0}),
             item(3, "final_grade", {**ivan, "subject": "Алгебра", "value": "5"}),
             item(4, "final_grade", {"child": "Мария", "period": "1 четверть",
                                     "subject": "Чтение", "value": "5"}, student=2),
             item(5, "final_grade", {**ivan, "period": None, "subject": "Музыка",
                                     "value": "зачёт"}))
    assert rendered("ru", items) == (
        "🎓 Итоговые за 1 четверть · Иван\n• Алгебра: 5\n• Физика: 4\n\n"
        "🔔 Новая оценка 5 · Химия\nИван · 23 ноября · вес 1\n"
        "Средний балл: 5,00 (первая оценка)\n\n"
        "🎓 Итоговая за 1 четверть · Чтение: 5\nМария\n\n"
        "🎓 Итоговая за год · Музыка: зачёт\nИван")
    assert rendered("en", items[:1] + items[2:3]).startswith(
        "🎓 Final marks for 1 четверть · Иван\n• Алгебра: 5\n")
    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        [message], unknown = render_batch(items)
    assert message.ids == [1, 3, 2, 4, 5] and unknown == []


async def test_an_imported_final_mark_reaches_the_family_as_a_push(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await load(s, *PERIODS)
    await load(s, final("f1", 5), notify=True)
    rows = await s.db.fetchall("SELECT id, kind, student_id, payload FROM outbox"
                               " WHERE telegram_id = ? ORDER BY id", (ANNA,))
    items = tuple(OutboxItem(r[0], r[1], r[2], json.loads(r[3]), None, 0)  # type: ignore[arg-type]
                  for r in rows)
    assert rendered("ru", items) == "🎓 Итоговая за 1 четверть · Алгебра: 5\nИван"


# -- the «Итоговые» table --------------------------------------------------------------------


def test_the_predicted_mark_rounds_by_the_schools_threshold():
    assert predicted_mark(4.5) == 5 and predicted_mark(4.49) == 4
    assert predicted_mark(3.83) == 4 and predicted_mark(5.0) == 5 and predicted_mark(1.2) == 1
    assert predicted_mark(4.5, 0.6) == 4 and predicted_mark(4.6, 0.6) == 5


async def _ivan_screen(tg) -> tuple[int, list[list]]:
    """Anna opens Ivan's grades; the overview's buttons."""
    ivan = await tg.services.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await tg.feed(up.callback(ANNA, GradesCb(a="ov", c=ivan).pack()))
    return ivan, tg.session.of(EditMessageText)[-1].reply_markup.inline_keyboard


async def test_the_final_marks_table_with_a_predicted_mark_and_a_final_one(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    # 2nd quarter: Алгебра (10 + 4 + 9) / 6 = 3,83 → ≈4; Физика 4,5 → ≈5.
    await load(s, *PERIODS, g(1, 5, 2), g(2, 4), g(3, 3, 3), g(4, 5, subject="Физика"),
               g(5, 4, subject="Физика"), g(6, 2, day="2026-10-01"),
               final("f1", 4), final("f2", 5, subject="Физика"),
               final("f3", "зачёт", subject="Музыка", scale="pass"),
               final("f4", 5, "year", subject="Литература", set_at="2027-05-28T12:00:00+03:00"))
    ivan, keyboard = await _ivan_screen(tg)
    button = next(b for row in keyboard for b in row if b.text == "📋 Итоговые")
    assert GradesCb.unpack(button.callback_data) == GradesCb(a="fin", c=ivan)
    await tg.feed(up.callback(ANNA, button.callback_data))
    screen = tg.session.of(EditMessageText)[-1]
    assert screen.text == (
        "📋 Итоговые оценки — Иван Петров, 7Б класс\n"
        "Учебный год 2026/27\n"
        "\n"
        "<pre>Предмет        1  2 Год\n"
        "Алгебра        4 ≈4   ·\n"
        "Литература     ·  ·   5\n"
        "Музыка     зачёт  ·   ·\n"
        "Физика         5 ≈5   ·</pre>\n"
        "1 — 1 четверть, 2 — 2 четверть.\n"
        "≈ — прогноз: средний балл за 2 четверть, округлённый; показан, пока не выставлена"
        " итоговая.")
    assert [[b.text for b in row] for row in screen.reply_markup.inline_keyboard] == [
        ["« Все предметы"], ["👥 Другой ребёнок"]]
    back = screen.reply_markup.inline_keyboard[0][0].callback_data
    assert GradesCb.unpack(back) == GradesCb(a="ov", c=ivan)

    # The 2nd quarter's final marks are set: they replace the prediction.
    await load(s, final("f5", 4, "q2"), final("f6", "5-", "q2", subject="Физика"))
    await tg.feed(up.callback(ANNA, button.callback_data))
    table = tg.session.of(EditMessageText)[-1].text
    assert ("<pre>Предмет        1  2 Год\n"
            "Алгебра        4  4   ·\n"
            "Литература     ·  ·   5\n"
            "Музыка     зачёт  ·   ·\n"
            "Физика         5 5-   ·</pre>\n"
            "1 — 1 четверть, 2 — 2 четверть.") in table
    assert "≈" not in table and table.endswith("1 — 1 четверть, 2 — 2 четверть.")

    # In English.
    await tg.feed(up.callback(ANNA, button.callback_data, language_code="en"))
    table = tg.session.of(EditMessageText)[-1].text
    assert table.startswith("📋 Final marks — Иван Петров, 7Б class\nSchool year 2026/27\n\n"
                            "<pre>Subject        1  2 Year\n")


async def test_without_periods_the_year_is_predicted(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, g(1, 4, student="S-1003"), g(2, 5, student="S-1003"),
               g(3, 5, student="S-1003", subject="Физика"))
    await tg.feed(up.message(ANDREY, "/grades"))
    keyboard = tg.session.of(SendMessage)[-1].reply_markup.inline_keyboard
    button = next(b for row in keyboard for b in row if b.text == "📋 Итоговые")
    await tg.feed(up.callback(ANDREY, button.callback_data))
    assert tg.session.last_text() == (
        "📋 Итоговые оценки — Ольга Смирнова, 7Б класс\n"
        "Учебный год 2026/27\n"
        "\n"
        "<pre>Предмет Год\n"
        "Алгебра  ≈5\n"
        "Физика   ≈5</pre>\n"
        "≈ — прогноз: средний балл за год, округлённый; показан, пока не выставлена итоговая.")


async def test_nothing_yet(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    olga = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1003'")
    await tg.feed(up.callback(ANDREY, GradesCb(a="fin", c=olga).pack()))
    assert tg.session.last_text() == (
        "📋 Итоговые оценки — Ольга Смирнова, 7Б класс\nУчебный год 2026/27\n\n"
        "Итоговых оценок пока нет, а для прогноза нет оценок за текущий период.")


async def test_a_subject_screen_shows_its_final_marks(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await load(s, *PERIODS, g(1, 5), final("f1", 4), final("f2", "5", "year"),
               final("f3", 3, subject="Физика"))
    ivan, _keyboard = await _ivan_screen(tg)
    await tg.feed(up.callback(ANNA, GradesCb(a="sub", c=ivan, p=1,
                                             s=subject_key("Алгебра")).pack()))
    detail = tg.session.last_text()
    assert detail.startswith("📘 <b>Алгебра</b> — Иван Петров\n2 четверть (5 нояб. – 28 дек.)\n"
                             "Средний балл: 5,00 (1 оценка)\n"
                             "Итоговые: 1 четверть — <b>4</b>, год — <b>5</b>\n\n")
    # A withdrawn final mark is not shown.
    await load(s, {"id": "w1", "type": "final_grade_deleted", "final_id": "f1"})
    await tg.feed(up.callback(ANNA, GradesCb(a="sub", c=ivan, p=1,
                                             s=subject_key("Алгебра")).pack()))
    assert "Итоговые: год — <b>5</b>\n" in tg.session.last_text()


async def test_a_forged_button_for_another_family_is_refused(tg):
    s = tg.services
    await s.linking.link_contact(ANDREY, ANDREY, ANDREY, ANDREY_PHONE)
    await load(s, *PERIODS, final("f1", 2))
    ivan = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await tg.feed(up.callback(ANDREY, GradesCb(a="fin", c=ivan).pack()))
    assert tg.session.of(EditMessageText) == []
    answer = tg.session.of(AnswerCallbackQuery)[-1]
    assert answer.text == "Это вам недоступно." and answer.show_alert
    for data in (f"g:fin:{10**30}:-1::0", "g:fin:-1:-1::0"):
        await tg.feed(up.callback(ANDREY, data))
        assert tg.session.of(EditMessageText) == []
        assert tg.session.of(AnswerCallbackQuery)[-1].text is None


async def test_a_long_table_arrives_in_parts_within_the_limit(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await load(s, *PERIODS, *(final(f"f{n}", 5, subject=f"{n:03} предмет с длинным названием")
                              for n in range(250)))
    ivan = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await tg.feed(up.callback(ANNA, GradesCb(a="fin", c=ivan).pack()))
    sent = [c for c in tg.session.calls if isinstance(c, SendMessage | EditMessageText)]
    assert len(sent) >= 2
    texts = [visible(c.text, c.parse_mode) for c in sent]
    assert all(telegram_length(t) <= TELEGRAM_LIMIT for t in texts)
    assert all(c.text.count("<pre>") == c.text.count("</pre>") == 1 for c in sent)
    rows = [line[:14] for t in texts for line in t.split("\n") if "предмет с…" in line]
    assert rows == [f"{n:03} предмет с…" for n in range(250)]  # each once, in order
    assert sent[-1].reply_markup is not None and all(c.reply_markup is None for c in sent[:-1])
