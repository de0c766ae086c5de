"""Charts of grades: what they say in each language, that they draw, and what they cost."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from bot import charts, render
from bot.i18n import I18n
from core.models import Child, PersonName, Role
from core.services.finals import FinalMark
from core.services.grades import (
    ABOVE,
    BELOW,
    LEVEL,
    TOP_QUARTER,
    Mark,
    Overview,
    Period,
    Standing,
    SubjectDetail,
    SubjectSummary,
    running_average,
    standing_of,
    weighted_average,
)
from tests.support.school import ROOT

TODAY = date(2026, 11, 24)
CHILD = Child(1, PersonName("Петров", "Иван"), "7Б", "Школа", Role.GUARDIAN)
TERM = Period("q2", "2 четверть", date(2026, 11, 5), date(2026, 12, 28))
MARKS = (
    Mark(5, 2, date(2026, 11, 6)),
    Mark(4, 1, date(2026, 11, 10), shown="4-", points=4, parts=1),
    Mark(3, 3, date(2026, 11, 10), points=3, parts=1),
    Mark(None, 1, date(2026, 11, 12), shown="зачёт", scale="pass", points=0, parts=0),
    Mark(5, 1, date(2026, 11, 17), shown="5/4", points=9, parts=2),
    Mark(4, 0, date(2026, 11, 18), points=4, parts=1),
    Mark(2, 1, date(2026, 11, 20), points=2, parts=1, point_until=date(2026, 11, 30)),
)


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=ROOT / "locales", default_locale="ru", domain="messages")


ABOVE_CLASS = Standing(3.6, ABOVE)


def detail(marks=MARKS, standing: Standing | None = ABOVE_CLASS) -> SubjectDetail:
    summary = SubjectSummary("Алгебра", "k", marks, weighted_average(marks))
    return SubjectDetail(CHILD, TERM, summary, 4.5, (), TODAY, standing)


def overview() -> Overview:
    subjects = (SubjectSummary("Алгебра", "a", MARKS, weighted_average(MARKS)),
                SubjectSummary("Физика", "f", MARKS[:1], 5.0),
                SubjectSummary("История", "h", (), None))
    return Overview(CHILD, TERM, (TERM,), subjects, TODAY, {"Алгебра": Standing(3.6, ABOVE)})


def chart_in(i18n: I18n, lang: str, **kw) -> charts.SubjectChart:
    finals = [FinalMark("Алгебра", "q2", "2 четверть", "4", "5")]
    with i18n.context(), i18n.use_locale(lang):
        return charts.subject_chart(detail(**kw), finals)


def test_a_subject_chart_in_russian(i18n):
    c = chart_in(i18n, "ru")
    assert c.title == "Алгебра — Иван Петров"
    assert c.subtitle == ("2 четверть (5 нояб. – 28 дек.)\nсредний балл 3,78 · средний по классу"
                          " 3,60, выше среднего по классу")
    assert c.final == (4.0, "итоговая: 4")
    assert c.thresholds == ((2.5, "2,5 → 3"), (3.5, "3,5 → 4"), (4.5, "4,5 → 5"))
    assert [t for _d, t in c.ticks][:3] == ["5 нояб.", "9 нояб.", "13 нояб."]
    assert c.legend == (("counted", "оценка (крупнее — больше вес)"), ("dot", "с точкой"),
                        ("out", "не в среднем"), ("average", "средний балл"))
    assert c.empty == "Нет оценок за этот период"
    assert c.end == TODAY  # the term goes on: the chart ends today
    # How each mark is drawn: size by weight, a dot apart, what does not count hollow.
    assert [(p.y, p.weight, p.kind, p.label) for p in c.points] == [
        (5.0, 2, "counted", ""), (4.0, 1, "counted", "4-"), (3.0, 3, "counted", ""),
        (charts.TEXT_ROW, 1, "out", "зачёт"), (4.5, 1, "counted", "5/4"),
        (4.0, 0, "out", ""), (2.0, 1, "dot", "")]
    # The running average: 10/2, then (10+4+9)/6, (23+9)/8, (32+2)/9.
    assert [(d.day, round(a, 2)) for d, a in c.line] == [(6, 5.0), (10, 3.83), (17, 4.0),
                                                        (20, 3.78)]
    assert c.line_label == "3,78"


def test_a_subject_chart_in_english(i18n):
    c = chart_in(i18n, "en", standing=Standing(4.1, BELOW))
    assert c.subtitle == ("2 четверть (Nov 5 – Dec 28)\naverage 3.78 · class average 4.10,"
                          " below the class average")
    assert c.final == (4.0, "final mark: 4")
    assert c.thresholds[2] == (4.5, "4.5 → 5")
    assert c.ticks[0][1] == "Nov 5"
    assert c.legend[0] == ("counted", "mark (larger: heavier)")
    assert c.empty == "No marks in this period"


def test_positions_in_both_languages(i18n):
    phrases = {}
    for lang in ("ru", "en"):
        with i18n.context(), i18n.use_locale(lang):
            phrases[lang] = [render.position_text(Standing(4, p))
                             for p in (TOP_QUARTER, ABOVE, LEVEL, BELOW)]
    assert phrases["ru"] == ["в верхней четверти класса", "выше среднего по классу",
                             "на уровне среднего по классу", "ниже среднего по классу"]
    assert phrases["en"] == ["in the top quarter of the class", "above the class average",
                             "at the class average", "below the class average"]


def test_standing_needs_five_students_and_names_a_position():
    assert standing_of(5.0, [5.0, 4.0, 3.0, 4.0]) is None
    assert standing_of(5.0, [5.0, 4.0, 3.0, 4.0, 3.0]) == Standing(3.8, TOP_QUARTER)
    assert standing_of(4.5, [4.5, 5.0, 5.0, 3.0, 2.0]).position == ABOVE
    assert standing_of(3.0, [3.0, 5.0, 4.0, 5.0, 4.0]).position == BELOW
    assert standing_of(4.0, [4.0, 5.0, 3.0, 4.0, 4.0]).position == LEVEL


def test_running_average_skips_what_does_not_count():
    assert running_average(()) == []
    assert running_average((Mark(4, 0, TODAY),)) == []


def test_the_chart_draws_a_phone_sized_png(i18n):
    png = charts.render(chart_in(i18n, "ru"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert charts.png_size(png) == (charts.WIDTH, charts.HEIGHT) == (1000, 600)


def test_no_marks_draws_the_message_not_an_empty_chart(i18n):
    c = chart_in(i18n, "ru", marks=(), standing=None)
    assert c.points == () and c.subtitle == "2 четверть (5 нояб. – 28 дек.)"
    png = charts.render(c)
    assert charts.png_size(png) == (1000, 600)


def test_the_overview_chart(i18n):
    with i18n.context(), i18n.use_locale("ru"):
        c = charts.overview_chart(overview())
    assert c.title == "Средние баллы — Иван Петров"
    assert c.bars == (charts.Bar("Алгебра", 3.7778, "3,78", 3.6, "3,60"),
                      charts.Bar("Физика", 5.0, "5,00", None, ""))  # История: no average
    assert c.legend == ("Иван Петров", "средний по классу")
    assert charts.png_size(charts.render(c)) == (1000, 600)


async def test_drawn_once_then_from_the_cache(i18n):
    cache = charts.PngCache(size=2)
    ru, en = chart_in(i18n, "ru"), chart_in(i18n, "en")
    first = await charts.draw(ru, cache)
    assert await charts.draw(ru, cache) is first
    assert await charts.draw(en, cache) != first  # the language is part of the key
    await charts.draw(chart_in(i18n, "ru", standing=None), cache)
    assert len(cache) == 2 and cache.get(charts.PngCache.key(ru)) is None  # the oldest went


def test_matplotlib_is_imported_only_to_draw():
    code = ("import sys, bot.app, bot.charts, bot.routers.grades\n"
            "assert 'matplotlib' not in sys.modules, 'imported at start'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


async def test_the_fake_bot_api_takes_a_picture_and_its_redraw(i18n):
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import BufferedInputFile, InputMediaPhoto

    from tests.support.botapi import FakeBotAPI

    png = charts.render(chart_in(i18n, "ru"))
    async with FakeBotAPI("42:PHOTO") as api:
        bot = Bot("42:PHOTO", session=AiohttpSession(api=TelegramAPIServer.from_base(api.url)))
        try:
            sent = await bot.send_photo(7, BufferedInputFile(png, "chart.png"), caption="📈")
            assert sent.caption == "📈" and sent.photo[-1].width == 1000
            edited = await bot.edit_message_media(
                InputMediaPhoto(media=BufferedInputFile(png, "chart.png"), caption="2"),
                chat_id=7, message_id=sent.message_id)
            assert edited.message_id == sent.message_id and edited.caption == "2"
        finally:
            await bot.session.close()
    assert [s.method for s in api.sent] == ["sendphoto", "editmessagemedia"]
    assert not api.unknown_methods


def week():
    from core.services.digest import WeekChart, WeekSubject

    return WeekChart(1, "Иван Петров", date(2026, 11, 23), date(2026, 11, 27), TERM, (
        WeekSubject("Алгебра", 4.3, 4.6, ("4-", "3")),
        WeekSubject("Биология", 4.0, 4.0, ()),
        WeekSubject("История", None, None, ("зачёт",)),
        WeekSubject("Физика", 4.5, 4.5, ("5/4",)),
    ))


def test_the_weekly_chart_in_both_languages(i18n):
    with i18n.context(), i18n.use_locale("ru"):
        c = charts.week_picture(week())
    assert c.title == "Неделя 23–27 нояб. — Иван Петров"
    assert c.subtitle == "4 оценки за неделю · средние за период «2 четверть»"
    assert c.rows == (
        charts.WeekRow("Алгебра", 4.3, "4,30", 4.6, "4-, 3"),  # fell from 4,60
        charts.WeekRow("Биология", 4.0, "4,00", None, ""),  # no marks: no mark of before
        charts.WeekRow("История", None, "", None, "зачёт"),
        charts.WeekRow("Физика", 4.5, "4,50", None, "5/4"),  # a mark that left it as it was
    )
    assert c.legend == ("средний балл сейчас", "до этой недели", "оценки недели")
    with i18n.context(), i18n.use_locale("en"):
        e = charts.week_picture(week())
    assert e.title == "Week Nov 23–27 — Иван Петров"
    assert e.subtitle == "4 marks this week · averages for 2 четверть"
    assert e.rows[0].average_label == "4.30"
    assert e.legend == ("average now", "before this week", "this week's marks")
    assert charts.png_size(charts.render(c)) == (1000, 600)
    assert charts.png_size(charts.render(e)) == (1000, 600)


async def test_the_weekly_chart_is_drawn_in_the_readers_language(i18n):
    ru = await charts.draw_week(week(), None, "ru-RU", i18n)
    en = await charts.draw_week(week(), "en", "ru", i18n)  # the chosen language wins
    assert ru != en and charts.png_size(ru) == (1000, 600)
    assert len(charts.CACHE) == 0 or charts.PngCache.key(charts.week_picture(week())) not in (
        charts.CACHE._items)  # not among the charts users ask for
