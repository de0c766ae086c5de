"""The Bot API fake, driven by a real aiogram Bot over HTTP."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatAction
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from tests.fakes import FakeBotAPI, SentMessage

TOKEN = "123:ABC"
ANNA = 5001
IVAN = 5002


@pytest.fixture
async def api():
    async with FakeBotAPI(token=TOKEN) as fake:
        yield fake


class LoopbackSession(AiohttpSession):
    """AiohttpSession without the 0.25 s pause its close() keeps for TLS connections."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(api: FakeBotAPI, token: str = TOKEN) -> Bot:
    return Bot(token, session=LoopbackSession(api=TelegramAPIServer.from_base(api.url)))


@pytest.fixture
async def bot(api):
    b = make_bot(api)
    yield b
    await b.session.close()


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=t)] for t in labels]
    )


def same_markup(received: InlineKeyboardMarkup | None, expected: InlineKeyboardMarkup) -> bool:
    # Received objects carry the bot in a private attribute; compare the data only.
    return received is not None and received.model_dump() == expected.model_dump()


async def test_serves_on_loopback_and_get_me(api, bot):
    assert api.url.startswith("http://127.0.0.1:")
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (42, True, "diary_test_bot")
    assert api.calls_to("getme") == [{}]


async def test_wrong_token_is_unauthorized(api):
    wrong = make_bot(api, "999:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()


async def test_setup_methods_answer_true_and_are_recorded(api, bot):
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert await bot.set_my_commands([BotCommand(command="start", description="Начать")],
                                      language_code="ru")
    assert await bot.set_my_description("Дневник")
    assert await bot.set_my_short_description("Дневник")
    assert await bot.delete_my_commands()
    assert await bot.set_chat_menu_button()
    assert await bot.answer_callback_query("1", text="ok")
    assert [c.method for c in api.calls] == [
        "deleteWebhook", "setMyCommands", "setMyDescription", "setMyShortDescription",
        "deleteMyCommands", "setChatMenuButton", "answerCallbackQuery",
    ]
    (commands,) = api.calls_to("setMyCommands")
    assert commands["language_code"] == "ru" and '"start"' in commands["commands"]
    assert api.unknown_methods == []


async def test_send_message_is_recorded_and_answered_with_a_message(api, bot):
    first = await bot.send_message(ANNA, "Привет", parse_mode="HTML")
    second = await bot.send_message(ANNA, "<b>Оценка</b> 5 &amp; 4", parse_mode="HTML")
    other = await bot.send_message(IVAN, "Здравствуйте")
    assert isinstance(first, Message) and first.chat.id == ANNA and first.text == "Привет"
    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert second.text == "Оценка 5 & 4"  # as Telegram shows it, markup parsed
    assert first.from_user is not None and first.from_user.id == 42
    record = api.messages_to(ANNA)[1]
    assert isinstance(record, SentMessage)
    assert (record.method, record.chat_id, record.text, record.parse_mode) == (
        "sendMessage", ANNA, "<b>Оценка</b> 5 &amp; 4", "HTML")
    assert record.message_id == 2 and record.at <= time.monotonic()
    assert [m.text for m in api.messages_to(IVAN)] == ["Здравствуйте"]
    assert api.stats["delivered"] == 3 and api.stats["requests"] == 3


async def test_reply_markup_round_trips(api, bot):
    sent = await bot.send_message(ANNA, "Выберите", reply_markup=keyboard("a", "b"))
    assert same_markup(sent.reply_markup, keyboard("a", "b"))
    assert api.sent[-1].reply_markup == {"inline_keyboard": [
        [{"text": "a", "callback_data": "a"}], [{"text": "b", "callback_data": "b"}]]}

    reply_kb = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Контакт",
                                                             request_contact=True)]])
    plain = await bot.send_message(ANNA, "Поделитесь", reply_markup=reply_kb)
    assert plain.reply_markup is None  # Telegram echoes inline keyboards only
    assert api.sent[-1].reply_markup["keyboard"][0][0]["request_contact"] is True

    edited = await bot.edit_message_text("Готово", chat_id=ANNA, message_id=sent.message_id,
                                         reply_markup=keyboard("c"))
    assert isinstance(edited, Message) and edited.text == "Готово"
    assert same_markup(edited.reply_markup, keyboard("c"))
    edited = await bot.edit_message_reply_markup(chat_id=ANNA, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None
    assert edited.text == "Готово"
    assert await bot.send_chat_action(ANNA, ChatAction.TYPING) is True
    assert await bot.delete_message(ANNA, sent.message_id) is True
    assert [(m.method, m.message_id) for m in api.messages_to(ANNA, method=None)] == [
        ("sendMessage", 1), ("sendMessage", 2), ("editMessageText", 1),
        ("editMessageReplyMarkup", 1), ("sendChatAction", None), ("deleteMessage", 1),
    ]


async def test_long_polling_delivers_pushed_updates_and_confirms_by_offset(api, bot):
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    first = api.user_message(ANNA, "/start link")
    updates = await poll
    assert time.monotonic() - started < 2
    assert [u.update_id for u in updates] == [first]
    message = updates[0].message
    assert message is not None and message.text == "/start link"
    assert message.from_user.language_code == "ru" and message.chat.type == "private"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 6

    contact = api.user_contact(ANNA, "+79990000001", ANNA)
    updates = await bot.get_updates(offset=first + 1, timeout=1)
    assert [u.update_id for u in updates] == [contact]
    assert updates[0].message.contact.phone_number == "+79990000001"
    assert api.pending_updates[0]["update_id"] == contact

    sent = await bot.send_message(ANNA, "Выберите", reply_markup=keyboard("x"))
    press = api.user_callback(ANNA, "x", sent.message_id)
    updates = await bot.get_updates(offset=contact + 1, timeout=1)
    assert [u.update_id for u in updates] == [press]
    query = updates[0].callback_query
    assert query.data == "x" and query.message.message_id == sent.message_id
    assert query.message.text == "Выберите"
    assert same_markup(query.message.reply_markup, keyboard("x"))


async def test_a_dispatcher_polls_answers_and_confirms(api, bot):
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"Здравствуйте, {message.from_user.first_name}!")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False,
                                                   close_bot_session=False))
    try:
        api.user_message(ANNA, "/start")
        reply = await api.wait_for(lambda m: m.chat_id == ANNA, timeout=5)
        assert reply.text == "Здравствуйте, Анна!"
        # An update type the bot did not ask for is never delivered.
        api.push_update({"edited_message": {"message_id": 1, "date": 0, "text": "x",
                                            "chat": {"id": ANNA, "type": "private"}}})
        api.user_message(IVAN, "/start", first_name="Иван")
        await api.wait_for(lambda m: m.chat_id == IVAN, timeout=5)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)
    assert [u["update_id"] for u in api.filtered_updates] == [2]
    assert api.unknown_methods == []


async def test_long_polling_times_out_with_nothing(api, bot):
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 1.8


async def test_rate_limit_gives_retry_after(bot):
    async with FakeBotAPI(token=TOKEN, per_chat_rate=0.5, per_chat_burst=2) as limited:
        b = make_bot(limited)
        try:
            await b.send_message(ANNA, "1")
            await b.send_message(ANNA, "2")
            with pytest.raises(TelegramRetryAfter) as caught:
                await b.send_message(ANNA, "3")
            await b.send_message(IVAN, "another chat has its own bucket")
        finally:
            await b.session.close()
    assert caught.value.retry_after >= 1
    assert limited.stats["rejected_429"] == 1 and limited.stats["delivered"] == 3
    assert [m.text for m in limited.messages_to(ANNA)] == ["1", "2"]


async def test_global_rate_limit():
    async with FakeBotAPI(token=TOKEN, global_rate=3) as limited:
        b = make_bot(limited)
        try:
            for chat in range(3):
                await b.send_message(1000 + chat, "hi")
            with pytest.raises(TelegramRetryAfter) as caught:
                await b.send_message(2000, "hi")
        finally:
            await b.session.close()
    assert caught.value.retry_after == 1
    assert "Too Many Requests: retry after 1" in str(caught.value)


async def test_blocked_chat_is_forbidden(api, bot):
    api.blocked_chats.add(IVAN)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(IVAN, "hi")
    assert api.sent == [] and api.stats["rejected_403"] == 1


async def test_fail_next_gives_server_errors_then_recovers(api, bot):
    api.fail_next(1)
    api.fail_next(1, status=502)
    with pytest.raises(TelegramServerError, match="Internal Server Error"):
        await bot.send_message(ANNA, "hi")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(ANNA, "hi")
    await bot.send_message(ANNA, "hi")
    assert len(api.messages_to(ANNA)) == 1 and api.stats["failed_5xx"] == 2


async def test_drop_next_gives_network_error_then_recovers(api, bot):
    api.drop_next(1)
    with pytest.raises(TelegramNetworkError):
        await asyncio.wait_for(bot.send_message(ANNA, "hi"), 5)
    await bot.send_message(ANNA, "hi")
    assert len(api.messages_to(ANNA)) == 1 and api.stats["dropped"] == 1


async def test_too_long_message_is_a_bad_request(api, bot):
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ANNA, "x" * 4097)
    await bot.send_message(ANNA, "x" * 4096)
    # HTML markup does not count towards the limit.
    await bot.send_message(ANNA, "<b>" + "x" * 4090 + "</b>", parse_mode="HTML")
    assert len(api.messages_to(ANNA)) == 2 and api.stats["rejected_400"] == 1


async def test_duplicates_are_detected(api, bot):
    await bot.send_message(ANNA, "Новая оценка 5")
    await bot.send_message(IVAN, "Новая оценка 5")
    assert api.duplicates() == []
    await bot.send_message(ANNA, "Новая оценка 5")
    assert api.duplicates() == [(ANNA, "Новая оценка 5")]


async def test_wait_for_returns_a_later_message_or_lists_what_was_sent(api, bot):
    async def later() -> None:
        await asyncio.sleep(0.2)
        await bot.send_message(ANNA, "Аккаунт привязан.")

    task = asyncio.create_task(later())
    found = await api.wait_for(lambda m: "привязан" in (m.text or ""), timeout=3)
    await task
    assert found.chat_id == ANNA
    with pytest.raises(AssertionError, match="Аккаунт привязан"):
        await api.wait_for(lambda m: m.chat_id == IVAN, timeout=0.2)


async def test_unknown_method_is_404_and_recorded(api):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api.url}/bot{TOKEN}/sendPhoto", data={"chat_id": "1"}) as resp:
            body = await resp.json()
        assert resp.status == 404
        assert body == {"ok": False, "error_code": 404,
                        "description": "Not Found: method not found"}
        # A JSON body and the query string are read too.
        async with http.post(f"{api.url}/bot{TOKEN}/sendMessage?parse_mode=HTML",
                             json={"chat_id": ANNA, "text": "<i>json</i>",
                                   "reply_markup": {"inline_keyboard": []}}) as resp:
            body = await resp.json()
    assert resp.status == 200 and body["ok"] and body["result"]["text"] == "json"
    assert api.unknown_methods == ["sendPhoto"]
    record = api.sent[-1]
    assert (record.text, record.parse_mode, record.reply_markup) == (
        "<i>json</i>", "HTML", {"inline_keyboard": []})


async def test_close_answers_a_waiting_long_poll_at_once(bot):
    fake = await FakeBotAPI(token=TOKEN).start()
    b = make_bot(fake)
    try:
        poll = asyncio.create_task(b.get_updates(timeout=30))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await fake.close()
        assert await asyncio.wait_for(poll, 3) == []
        assert time.monotonic() - started < 1.5
        await fake.close()  # twice is fine
    finally:
        await b.session.close()
