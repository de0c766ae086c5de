"""Linking conversations through the dispatcher: what the user sees, what is stored."""

from __future__ import annotations

from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiogram.types import ReplyKeyboardMarkup, ReplyKeyboardRemove

from bot.callbacks import SettingsCb
from tests.support import updates as up
from tests.support.school import ANNA_PHONE

ANNA = 5001


async def test_start_offers_phone_and_code(tg):
    await tg.feed(up.message(ANNA, "/start"))
    sent = tg.session.last()
    assert "Здравствуйте, Анна!" in sent.text
    # Neutral: the same words for a parent, a student and a teacher.
    assert ("Чтобы привязать аккаунт, поделитесь номером телефона кнопкой ниже — это должен быть"
            " номер, указанный в школе. Telegram подтверждает, что номер ваш.") in sent.text
    markup = sent.reply_markup
    assert isinstance(markup, ReplyKeyboardMarkup)
    assert markup.keyboard[0][0].request_contact is True
    assert markup.keyboard[0][0].text == "📱 Поделиться номером"
    assert markup.keyboard[1][0].text == "🔑 У меня есть код"


async def test_own_contact_links_and_names_the_children(tg):
    await tg.feed(up.message(ANNA, "/start"))
    await tg.feed(up.contact(ANNA, "+7 900 123-45-67", ANNA))
    sent = tg.session.last()
    assert "Готово! Аккаунт привязан." in sent.text
    assert "Иван Петров, 7Б класс" in sent.text
    assert "Мария Петрова, 5А класс" in sent.text
    assert isinstance(sent.reply_markup, ReplyKeyboardRemove)
    assert await tg.services.db.scalar(
        "SELECT COUNT(*) FROM account_links WHERE telegram_id = ?", (ANNA,)) == 1


async def test_forwarded_contact_is_refused_and_explained(tg):
    await tg.feed(up.contact(7777, ANNA_PHONE, ANNA))
    text = tg.session.last_text()
    assert "Это не ваш собственный контакт" in text
    assert "Петров" not in text
    assert await tg.services.db.scalar("SELECT COUNT(*) FROM account_links") == 0


async def test_unknown_number_reveals_nothing(tg):
    await tg.feed(up.contact(7777, "+7 999 111-22-33", 7777))
    text = tg.session.last_text()
    assert "Этого номера нет в данных школы" in text
    assert "классного руководителя" in text
    assert "Петров" not in text


async def test_deep_link_code(tg):
    codes = await tg.services.linking.issue_codes(student_external_id="S-1003")
    student_code = next(c.code for c in codes if c.recipient.value == "student")
    await tg.feed(up.message(6001, f"/start {student_code}"))
    assert "Ольга Смирнова, 7Б класс" in tg.session.last_text()


async def test_code_by_button_with_a_wrong_code_first(tg):
    codes = await tg.services.linking.issue_codes(student_external_id="S-1004")
    guardian_code = next(c.code for c in codes if c.recipient.value == "guardian")
    await tg.feed(up.message(6002, "🔑 У меня есть код"))
    assert "Отправьте код из письма школы" in tg.session.last_text()
    await tg.feed(up.message(6002, "AAAA-BBBB-CCCC"))
    assert "Этот код не подходит" in tg.session.last_text()
    # Still waiting for a code: the right one now works.
    await tg.feed(up.message(6002, guardian_code[:6] + " " + guardian_code[6:]))
    assert "Дмитрий Кузнецов, 7Б класс" in tg.session.last_text()


async def test_typed_code_without_the_button(tg):
    codes = await tg.services.linking.issue_codes(student_external_id="S-1005")
    await tg.feed(up.message(6003, codes[0].code.lower()))
    assert "Артём Волков, 5А класс" in tg.session.last_text()


async def test_five_wrong_codes_lock(tg):
    for _ in range(5):
        await tg.feed(up.message(6004, "ABCD-EFGH-JKMN"))
    assert "Ввод кода заблокирован до 13:00" in tg.session.last_text()  # 09:00 UTC + 1h, Moscow


async def test_group_chat_shows_no_personal_data(tg):
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/start", chat_type="group", chat_id=-100500))
    sent = tg.session.of(SendMessage)
    assert len(sent) == 1
    assert "только в личном чате" in sent[0].text
    assert "Петров" not in sent[0].text
    assert sent[0].reply_markup.inline_keyboard[0][0].url == "https://t.me/diary_test_bot"
    tg.session.clear()
    await tg.feed(up.message(ANNA, "привет всем", chat_type="group", chat_id=-100500))
    assert tg.session.calls == []


async def test_help_and_cancel(tg):
    await tg.feed(up.message(ANNA, "/help"))
    assert "/start" in tg.session.last_text() and "поделитесь номером" in tg.session.last_text()
    await tg.feed(up.message(ANNA, "🔑 У меня есть код"))
    await tg.feed(up.message(ANNA, "/cancel"))
    assert tg.session.last_text() == "Отменено."
    await tg.feed(up.message(ANNA, "/cancel"))
    assert tg.session.last_text() == "Нечего отменять."


async def test_english_speaker_gets_english(tg):
    await tg.feed(up.message(ANNA, "/start", language_code="en"))
    assert "Hello, Анна! I bring the school e-diary to Telegram." in tg.session.last_text()
    assert ("To link your account, share your phone number with the button below — it must be"
            " the number the school has on record.") in tg.session.last_text()


async def test_settings_language_and_unlink(tg):
    await tg.feed(up.contact(ANNA, ANNA_PHONE, ANNA))
    await tg.feed(up.message(ANNA, "/settings"))
    text = tg.session.last_text()
    assert "Язык: Русский" in text and "Иван Петров, 7Б класс" in text
    await tg.feed(up.callback(ANNA, SettingsCb(action="lang", value="en").pack()))
    assert "Language: English" in tg.session.last_text()
    await tg.feed(up.message(ANNA, "/help"))
    assert "I am the family's window" in tg.session.last_text()  # the choice sticks
    await tg.feed(up.callback(ANNA, SettingsCb(action="unlink").pack()))
    await tg.feed(up.callback(ANNA, SettingsCb(action="unlink_yes").pack()))
    assert "unlinked" in tg.session.last_text()
    assert tg.session.of(AnswerCallbackQuery)
    assert await tg.services.db.scalar(
        "SELECT COUNT(*) FROM accounts WHERE telegram_id = ?", (ANNA,)) == 0


async def test_fsm_state_survives_a_new_dispatcher(tg, school):
    from bot.app import create_dispatcher
    from bot.fsm import SQLiteStorage
    from bot.i18n import create_i18n

    codes = await school.linking.issue_codes(student_external_id="S-1005")
    await tg.feed(up.message(6005, "🔑 У меня есть код"))
    restarted = create_dispatcher(school, create_i18n("ru"),
                                  SQLiteStorage(school.db, school.clock))
    typed = codes[0].code[:4] + "-" + codes[0].code[4:]
    await restarted.feed_update(tg.bot, up.message(6005, typed))
    assert "Артём Волков" in tg.session.last_text()
