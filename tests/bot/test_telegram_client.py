"""The sender's Bot API client and push buttons, without aiogram."""

from __future__ import annotations

import socket
from datetime import date

import pytest

from bot import buttons
from bot.callbacks import InviteCb, SignCb, TeacherCb
from bot.telegram import (
    BadRequest,
    BotApi,
    EntityTooLarge,
    Forbidden,
    NetworkError,
    NotFound,
    RetryAfter,
    ServerError,
    TelegramError,
    Unauthorized,
    error_of,
)
from tests.support.botapi import FakeBotAPI

TOKEN = "123:TEST"


def test_push_buttons_pack_as_the_handlers_unpack():
    assert buttons.invite("yes", 17) == InviteCb(a="yes", i=17).pack() == "iv:yes:17"
    week = date(2026, 11, 23).toordinal()
    assert buttons.sign(5, week) == SignCb(c=5, w=week).pack()
    assert buttons.teacher("mute", 9) == TeacherCb(a="mute", i=9).pack()
    assert TeacherCb.unpack(buttons.teacher("re", 2**40)) == TeacherCb(a="re", i=2**40)
    with pytest.raises(ValueError):
        buttons.pack("x", "a:b")


@pytest.mark.parametrize(("status", "body", "kind"), [
    (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
           "parameters": {"retry_after": 7}}, RetryAfter),
    (403, {"ok": False, "error_code": 403,
           "description": "Forbidden: bot was blocked by the user"}, Forbidden),
    (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
     BadRequest),
    (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, Unauthorized),
    (404, {"ok": False, "error_code": 404, "description": "Not Found"}, NotFound),
    (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, ServerError),
    (502, None, ServerError),  # a proxy's page, not JSON
    (409, {"ok": False, "error_code": 409, "description": "Conflict"}, TelegramError),
    (413, {"ok": False, "error_code": 413, "description": "Request Entity Too Large"},
     EntityTooLarge),  # that message is dropped like any refused one, the rest go on
    (429, None, RetryAfter),  # a proxy's own 429 page: wait, do not fail
])
def test_answers_are_sorted_by_what_the_sender_does_next(status, body, kind):
    error = error_of("sendMessage", status, body)
    assert type(error) is kind
    if kind is RetryAfter and body is not None:
        assert error.retry_after == 7.0 and error.message.startswith("Too Many Requests")
    if kind is EntityTooLarge:
        assert isinstance(error, BadRequest)


async def test_a_message_and_a_picture_through_the_fake_api():
    async with FakeBotAPI(TOKEN) as fake, BotApi(TOKEN, fake.url) as api:
        markup = {"inline_keyboard": [[{"text": "✅ Принять", "callback_data": "iv:yes:1"}]]}
        sent = await api.send_message(42, "Привет", reply_markup=markup, reply_to=7, paid=True)
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
        photo = await api.send_photo(42, png, caption="📈 Неделя")
        again = await api.send_photo(42, "AgAC1", caption="то же")
        first, second, third = fake.sent
        assert (first.method, first.text, first.reply_markup) == ("sendmessage", "Привет",
                                                                  markup)
        assert first.params["reply_parameters"] == {"message_id": 7,
                                                    "allow_sending_without_reply": True}
        assert first.params["allow_paid_broadcast"] is True
        assert first.params["link_preview_options"] == {"is_disabled": True}
        assert (second.method, second.params["photo"], second.params["caption"]) == (
            "sendphoto", png, "📈 Неделя")
        assert third.params["photo"] == "AgAC1"
        assert sent.message_id != photo.message_id != again.message_id
        fake.blocked_chats.add(43)
        with pytest.raises(Forbidden):
            await api.send_message(43, "x")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with BotApi(TOKEN, f"http://127.0.0.1:{port}", timeout=5) as api:
        with pytest.raises(NetworkError):
            await api.send_message(42, "x")
    async with FakeBotAPI("other:TOKEN") as fake, BotApi(TOKEN, fake.url) as api:
        with pytest.raises(Unauthorized):
            await api.send_message(42, "x")


async def test_the_token_never_shows_in_an_error():
    async with BotApi("123:SECRETTOKEN", "http://exa mple.invalid:99999") as api:  # bad address
        with pytest.raises(NetworkError) as caught:
            await api.send_message(42, "x")
    assert "SECRETTOKEN" not in str(caught.value) and "<token>" in str(caught.value)
    assert caught.value.__cause__ is None  # nor in the cause a log would print
