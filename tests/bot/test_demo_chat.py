"""Demo mode through the dispatcher: try as a parent, see grades."""

from __future__ import annotations

from aiogram.methods import EditMessageText

from bot.app import create_dispatcher
from bot.callbacks import DemoCb
from bot.fsm import SQLiteStorage
from bot.i18n import create_i18n
from bot.roles import demo_school
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


async def _demo(services):
    school = demo_school(services)
    await school.seed()
    dp = create_dispatcher(services, create_i18n("ru"), SQLiteStorage(services.db, services.clock),
                           demo=school)
    bot, session = make_bot()
    return dp, bot, session


async def test_switching_roles_switches_the_family(services):
    dp, bot, session = await _demo(services)
    await dp.feed_update(bot, up.callback(VISITOR, DemoCb(a="parent").pack()))
    await dp.feed_update(bot, up.callback(VISITOR, DemoCb(a="student").pack()))
    done = session.of(EditMessageText)[-1].text
    assert done.startswith("Готово! В демо вы — ученик: ")
    viewer = await services.access.viewer(VISITOR)
    assert [c.role.value for c in viewer.children] == ["student"]
    await dp.feed_update(bot, up.message(VISITOR, "/absence"))
    assert session.last().text == ("Уведомление об отсутствии может подать только родитель"
                                   " (законный представитель).")


async def test_an_invitation_link_works_in_demo_mode(services):
    from core.models import Scope

    dp, bot, session = await _demo(services)
    await dp.feed_update(bot, up.callback(VISITOR, DemoCb(a="parent").pack()))
    viewer = await services.access.viewer(VISITOR)
    _inv, token, _invitee = await services.trusted.invite(
        viewer, [viewer.children[0].id], "+7 903 111-22-33", "Иванова", {Scope.GRADES})
    await dp.feed_update(bot, up.message(9101, f"/start inv_{token}"))
    sent = session.last()
    assert "поделитесь номером телефона кнопкой ниже" in sent.text
    assert sent.reply_markup.keyboard[0][0].request_contact is True
    await dp.feed_update(bot, up.contact(9101, "+7 903 111-22-33", 9101))
    card = session.last()
    assert "приглашает вас (Иванова)" in card.text
    await dp.feed_update(bot, up.callback(9101, card.reply_markup.inline_keyboard[0][0]
                                          .callback_data))
    await dp.feed_update(bot, up.message(9101, "/start"))
    text = session.last().text
    assert "У вас уже есть демо-семья" not in text
    assert "Вы следите за демо-ребёнком как доверенное лицо" in text
