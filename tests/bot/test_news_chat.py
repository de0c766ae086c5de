"""/news and the announcement pushes as a family sees them."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.callbacks import NewsCb
from core.importers.journal import parse_journal
from core.services.outbox import OutboxItem
from tests.support import updates as up
from tests.support.school import ANNA_PHONE, IVAN_PHONE

ANNA, IVAN = 5001, 5002


async def publish(services, n: int, text: str, **extra) -> None:
    event = {"id": f"ev{n}", "type": "announcement", "announcement_id": f"n{n}", "text": text,
             **extra}
    lines = [json.dumps(event, ensure_ascii=False)]
    await services.journal.import_journal(parse_journal(lines, "j"), "j", notify=False)


def buttons(call) -> list[tuple[str, str]]:
    markup = call.reply_markup
    if markup is None:
        return []
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


async def test_news_lists_pinned_first_then_newest_five_a_page(tg):
    s = tg.services  # 23 November 2026, 12:00 in Moscow
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    s.clock.moment -= timedelta(days=8)  # 15 November
    await publish(s, 1, "Закрепить: расписание звонков", pinned_until="2026-11-30",
                  links=[{"url": "https://school.ru/bells", "title": "Звонки"}])
    for n in range(2, 8):  # one a day, 16–21 November
        s.clock.moment += timedelta(days=1)
        await publish(s, n, f"Объявление {n}")
    await publish(s, 8, "Только для учеников 5А", classes=["5А"], audience="students")
    await publish(s, 9, "Старое закреплённое", pinned_until="2026-11-20")
    await publish(s, 10, "Собрание 7Б <в 18:00>", classes=["7 б"], audience="parents")
    s.clock.moment += timedelta(days=2)  # back to 23 November

    await tg.feed(up.message(ANNA, "/news"))
    first = tg.session.last()
    assert first.text == (
        "📢 Объявления школы · страница 1 из 2\n"
        "\n📌 <b>15 ноября</b>\nЗакрепить: расписание звонков\n🔗 Звонки: https://school.ru/bells\n"
        "\n<b>21 ноября</b> · 7Б · для родителей\nСобрание 7Б &lt;в 18:00&gt;\n"
        "\n<b>21 ноября</b>\nСтарое закреплённое\n"
        "\n<b>21 ноября</b>\nОбъявление 7\n"
        "\n<b>20 ноября</b>\nОбъявление 6")
    assert buttons(first) == [("‹ Раньше", NewsCb(p=1).pack())]

    await tg.feed(up.callback(ANNA, NewsCb(p=1).pack()))
    second = tg.session.last()
    assert second.text == (
        "📢 Объявления школы · страница 2 из 2\n"
        "\n<b>19 ноября</b>\nОбъявление 5\n"
        "\n<b>18 ноября</b>\nОбъявление 4\n"
        "\n<b>17 ноября</b>\nОбъявление 3\n"
        "\n<b>16 ноября</b>\nОбъявление 2")
    assert buttons(second) == [("Позже ›", NewsCb(p=0).pack())]

    # A page past the end (a forged or an outdated button) shows the viewer's last page.
    await tg.feed(up.callback(ANNA, NewsCb(p=9999).pack()))
    assert tg.session.last().text == second.text

    # Ivan, a student of 7Б: neither the parents' meeting nor 5А's students' news.
    await tg.feed(up.message(IVAN, "/news"))
    text = tg.session.last().text
    assert "Собрание" not in text and "5А" not in text
    assert text.startswith("📢 Объявления школы · страница 1 из 2\n\n📌 <b>15 ноября</b>")


async def test_news_when_there_is_none(tg):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/news"))
    assert tg.session.last().text == "📢 Объявления школы\nОбъявлений пока нет."


async def test_help_names_news(tg):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/help"))
    assert "/news — объявления школы" in tg.session.last_text()


def test_announcement_pushes_in_russian():
    from bot.i18n import create_i18n
    from bot.notify import render_items

    i18n = create_i18n("ru")
    items = (
        OutboxItem(1, "announcement", None, {"text": "Собрание в четверг", "updated": False,
                                             "links": [{"url": "https://s.ru/a", "title": "План"},
                                                       {"url": "https://s.ru/b", "title": None}]},
                   None, 0),
        OutboxItem(2, "announcement", None, {"text": "Собрание в пятницу", "updated": True},
                   None, 0),
    )
    with i18n.context(), i18n.use_locale("ru"):
        text, unknown = render_items(items)
    assert unknown == []
    assert text == ("📢 Объявление школы\nСобрание в четверг\n🔗 План: https://s.ru/a\n"
                    "🔗 https://s.ru/b\n\n"
                    "📢 Объявление школы (обновлено)\nСобрание в пятницу")
