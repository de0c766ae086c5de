"""Demo mode through the dispatcher: try as a parent, see grades."""

from __future__ import annotations

from aiogram.methods import EditMessageText

from bot.app import create_dispatcher
from bot.callbacks import DemoCb
from bot.fsm import SQLiteStorage
from bot.i18n import create_i18n
from bot.runtime import demo_school
from tests.support import updates as up
from tests.support.recording import make_bot

VISITOR = 9100


async def test_try_as_a_parent_then_grades(services):
    school = demo_school(services)
    await school.seed()
    dp = create_dispatcher(services, create_i18n("ru"), SQLiteStorage(services.db, services.clock),
                           demo=school)
    bot, session = make_bot()
    await dp.feed_update(bot, up.message(VISITOR, "/start"))
    offer = session.last()
    assert offer.text.startswith("👋 Это демо-школа: все данные здесь вымышлены.")
    buttons = [row[0].text for row in offer.reply_markup.inline_keyboard]
    assert buttons == ["👪 Попробовать как родитель", "🎒 Попробовать как ученик"]
    await dp.feed_update(bot, up.callback(VISITOR, DemoCb(a="parent").pack()))
    done = session.of(EditMessageText)[-1].text
    assert done.startswith("Готово! В демо вы следите за:")
    assert "7Б класс" in done and "5А класс" in done
    await dp.feed_update(bot, up.message(VISITOR, "/grades"))
    assert session.last().text == "Чьи оценки?"
