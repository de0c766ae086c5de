"""/settings screens round trips and the sign-off button, through the dispatcher."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from aiogram.methods import AnswerCallbackQuery, EditMessageText

from bot.callbacks import SettingsCb, SignCb
from core.importers.journal import parse_journal
from tests.support import updates as up
from tests.support.school import ANNA_PHONE, IVAN_PHONE

ANNA, IVAN = 5001, 5002


def press(action: str, value: str = "") -> str:
    return SettingsCb(action=action, value=value).pack()


def labels(tg) -> list[str]:
    return [b.text for row in tg.session.last().reply_markup.inline_keyboard for b in row]


async def test_every_setting_round_trips(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/settings"))
    home = tg.session.last_text()
    assert home.startswith("⚙️ Настройки\n\n🌐 Язык: Русский\n🔔 Мгновенные сообщения: оценки —"
                           " вкл., точки — вкл., посещаемость — вкл., задания на завтра — выкл.,"
                           " отмена уроков — вкл.")
    assert "📰 Ежедневная сводка: в 19:00, если нечего сообщить — не присылаю." in home
    assert "🌙 Тихие часы: 22:00–08:00" in home

    await tg.feed(up.callback(ANNA, press("screen", "notif")))
    assert labels(tg)[:2] == ["✅ Оценки", "✅ Точки"]
    await tg.feed(up.callback(ANNA, press("flag", "push_dots")))
    assert labels(tg)[1] == "▫️ Точки"
    assert (await s.preferences.get(ANNA)).push_dots is False

    await tg.feed(up.callback(ANNA, press("screen", "digest")))
    await tg.feed(up.callback(ANNA, press("dtime", "2100")))
    assert "● 21:00" in labels(tg)
    await tg.feed(up.callback(ANNA, press("flag", "digest_enabled")))
    assert labels(tg)[0] == "▫️ Присылать ежедневную сводку"

    await tg.feed(up.callback(ANNA, press("screen", "quiet")))
    await tg.feed(up.callback(ANNA, press("quiet", "3")))
    assert labels(tg)[3] == "● нет"
    assert (await s.preferences.get(ANNA)).quiet_hours == ""

    maria = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1002'")
    await tg.feed(up.callback(ANNA, press("screen", "kids")))
    await tg.feed(up.callback(ANNA, press("kid", str(maria))))
    assert "🔕 Мария Петрова" in labels(tg)
    olga = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1003'")
    await tg.feed(up.callback(ANNA, press("kid", str(olga))))  # not her child
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Это вам недоступно."

    await tg.feed(up.callback(ANNA, press("home")))
    home = tg.session.of(EditMessageText)[-1].text
    assert "точки — выкл." in home and "📰 Ежедневная сводка: выкл." in home
    assert "🌙 Тихие часы: нет" in home and "👥 Без сообщений: Мария Петрова." in home


async def test_sign_off_button(tg, clock):
    from datetime import UTC, datetime

    from tests.support.school import TZ

    s = tg.services
    clock.moment = datetime(2026, 11, 27, 19, 0, tzinfo=TZ).astimezone(UTC)
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    ivan = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    data = SignCb(c=ivan, w=date(2026, 11, 23).toordinal()).pack()
    await tg.feed(up.callback(IVAN, data))  # the student cannot sign
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Это вам недоступно."
    await tg.feed(up.callback(ANNA, data))
    note = tg.session.of(AnswerCallbackQuery)[-1].text
    assert note == "✍️ Иван: ознакомлен(а), 27 ноября, 19:00."
    assert tg.session.of(EditMessageText)[-1].text.endswith(note)
    assert await s.db.scalar("SELECT COUNT(*) FROM signoffs") == 1


async def test_pressing_the_chosen_option_again_is_harmless(tg):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.callback(ANNA, press("screen", "digest")))
    tg.session.unmodified_edits = True  # the screen would not change
    await tg.feed(up.callback(ANNA, press("dtime", "1900")))
    assert tg.session.of(AnswerCallbackQuery)[-1].text is None  # answered, no error alert


async def test_turning_quiet_hours_off_releases_held_pushes_at_once(tg, clock):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    clock.moment = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # 23:30 in Moscow: quiet
    line = json.dumps({"id": "g1", "type": "grade", "grade_id": "g1", "student_id": "S-1001",
                       "subject": "Алгебра", "date": "2026-11-23", "value": 5,
                       "set_at": "2026-11-23T20:29:00Z"}, ensure_ascii=False)
    await s.journal.import_journal(parse_journal([line], "j"), "j")
    assert await s.outbox.claim() == []  # held until 08:00
    held = "SELECT not_before FROM outbox WHERE telegram_id = ? AND kind = 'grade_new'"
    assert await s.db.scalar(held, (ANNA,)) == "2026-11-24T05:00:00.000000Z"

    # Shorter hours that still cover now: held until their new end.
    await tg.feed(up.callback(ANNA, press("quiet", "2")))  # 23:00–07:00
    assert await s.db.scalar(held, (ANNA,)) == "2026-11-24T04:00:00.000000Z"
    # No quiet hours: due at once, and the sender takes it now.
    await tg.feed(up.callback(ANNA, press("quiet", "3")))
    assert await s.db.scalar(held, (ANNA,)) == "2026-11-23T20:30:00.000000Z"
    [batch] = await s.outbox.claim()
    assert batch.telegram_id == ANNA and [i.kind for i in batch.items] == ["grade_new"]


async def test_the_weekly_chart_is_a_digest_setting_off_by_default(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.callback(ANNA, press("screen", "digest")))
    assert labels(tg)[-2:] == ["▫️ График недели по пятницам", "« Назад"]
    assert tg.session.last_text().endswith(
        "📈 По пятницам за сводкой может приходить график недели: средний балл по каждому"
        " предмету и как его изменили оценки недели.")
    await tg.feed(up.callback(ANNA, press("flag", "digest_chart")))
    assert labels(tg)[-2] == "✅ График недели по пятницам"
    assert (await s.preferences.get(ANNA)).digest_chart is True
    await tg.feed(up.callback(ANNA, press("home")))
    assert "📈 По пятницам — с графиком недели." in tg.session.of(EditMessageText)[-1].text
