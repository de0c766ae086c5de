"""A Bot whose session records every API call and answers like Telegram would, in memory."""

from __future__ import annotations

import html
import itertools
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import Chat, InlineKeyboardMarkup, Message, User

# Telegram's date of every message in the tests: fixed, never the wall clock.
MESSAGE_DATE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

BOT_USER = User(id=42, is_bot=True, first_name="Diary", username="diary_test_bot")
TELEGRAM_LIMIT = 4096


class _Balance(HTMLParser):
    """Telegram refuses HTML whose tags do not pair up."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.broken = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.broken = True


def visible(text: str, parse_mode: str | None) -> str:
    """The text a user sees: entities parsed, as Telegram counts it against its limit."""
    if parse_mode == "HTML":
        return html.unescape(re.sub(r"<[^<>]*>", "", text))
    return text


def telegram_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check_text(method: TelegramMethod[Any], text: str, parse_mode: str | None) -> None:
    """Refuse what Telegram refuses: too long after entity parsing, or unbalanced HTML."""
    if parse_mode == "HTML":
        checker = _Balance()
        checker.feed(text)
        checker.close()
        if checker.broken or checker.open:
            raise TelegramBadRequest(method, "Bad Request: can't parse entities")
    shown = visible(text, parse_mode)
    if not shown.strip():
        raise TelegramBadRequest(method, "Bad Request: message text is empty")
    if telegram_length(shown) > TELEGRAM_LIMIT:
        raise TelegramBadRequest(method, "Bad Request: message is too long")


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self._ids = itertools.count(1000)
        self.unmodified_edits = False  # answer edits as Telegram does when nothing changes
        # Refusals to come, each for the next request of its kind: (kind, error factory).
        self.refusals: list[tuple[type, Any]] = []
        self.refused: list[TelegramMethod[Any]] = []  # not in ``calls``: Telegram refused them

    async def close(self) -> None:
        return None

    async def stream_content(self, *args: Any, **kwargs: Any):  # pragma: no cover
        raise NotImplementedError
        yield b""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None  # noqa: ASYNC109
    ) -> Any:
        for n, (kind, refusal) in enumerate(self.refusals):
            if isinstance(method, kind):
                del self.refusals[n]
                self.refused.append(method)
                raise refusal(method)
        self.calls.append(method)
        if isinstance(method, SendMessage | EditMessageText):
            parse_mode = method.parse_mode
            if not isinstance(parse_mode, str | None):  # the bot's default: none here
                parse_mode = None
            check_text(method, method.text, parse_mode)
        if self.unmodified_edits and isinstance(method, EditMessageText):
            raise TelegramBadRequest(method, "Bad Request: message is not modified")
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendMessage | EditMessageText):
            chat_id = method.chat_id if method.chat_id is not None else 0
            message_id = getattr(method, "message_id", None) or next(self._ids)
            markup = method.reply_markup
            return Message(
                message_id=message_id,
                date=MESSAGE_DATE,
                chat=Chat(id=int(chat_id), type="private"),
                from_user=BOT_USER,
                text=method.text,
                reply_markup=markup if isinstance(markup, InlineKeyboardMarkup) else None,
            )
        if isinstance(method, SendPhoto):
            if method.caption and telegram_length(method.caption) > 1024:
                raise TelegramBadRequest(method, "Bad Request: message caption is too long")
            return Message(message_id=next(self._ids), date=MESSAGE_DATE,
                           chat=Chat(id=int(method.chat_id), type="private"),
                           from_user=BOT_USER, caption=method.caption)
        if isinstance(method, EditMessageReplyMarkup | AnswerCallbackQuery):
            return True
        return True

    def flood(self, kind: type = TelegramMethod, retry_after: int = 3, times: int = 1) -> None:
        """The next ``times`` requests of ``kind`` are refused with 429."""
        self.refusals += [(kind, lambda m: TelegramRetryAfter(
            m, "Too Many Requests: retry after", retry_after))] * times

    # -- what tests look at ----------------------------------------------------------------

    def of(self, kind: type) -> list[Any]:
        return [c for c in self.calls if isinstance(c, kind)]

    def texts(self) -> list[str]:
        return [c.text for c in self.calls if isinstance(c, SendMessage | EditMessageText)]

    def last_text(self) -> str:
        texts = self.texts()
        assert texts, "nothing was sent"
        return texts[-1]

    def last(self) -> SendMessage | EditMessageText:
        sent = [c for c in self.calls if isinstance(c, SendMessage | EditMessageText)]
        assert sent, "nothing was sent"
        return sent[-1]

    def clear(self) -> None:
        self.calls.clear()


def make_bot() -> tuple[Bot, RecordingSession]:
    session = RecordingSession()
    bot = Bot(token="42:TEST", session=session)
    return bot, session


class RecordingApi:
    """The outbox sender's Bot API client (``bot.telegram.BotApi``) over a recording bot: the
    sender's messages land in the same session as the handlers' answers."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @staticmethod
    def _options(reply_markup: dict | None, reply_to: int | None) -> dict[str, Any]:
        from aiogram.types import ReplyParameters

        return {
            "reply_markup": (InlineKeyboardMarkup.model_validate(reply_markup)
                             if reply_markup else None),
            "reply_parameters": (ReplyParameters(message_id=reply_to,
                                                 allow_sending_without_reply=True)
                                 if reply_to else None)}

    async def _call(self, make: Any) -> Any:
        from aiogram import exceptions as aiogram_errors

        from bot import telegram

        try:
            return await make
        except aiogram_errors.TelegramRetryAfter as exc:
            raise telegram.RetryAfter("send", exc.message, exc.retry_after) from exc
        except aiogram_errors.TelegramNetworkError as exc:
            raise telegram.NetworkError("send", exc.message) from exc
        except aiogram_errors.TelegramAPIError as exc:
            kind = {aiogram_errors.TelegramBadRequest: telegram.BadRequest,
                    aiogram_errors.TelegramForbiddenError: telegram.Forbidden,
                    aiogram_errors.TelegramUnauthorizedError: telegram.Unauthorized,
                    aiogram_errors.TelegramNotFound: telegram.NotFound,
                    aiogram_errors.TelegramServerError: telegram.ServerError,
                    }.get(type(exc), telegram.TelegramError)
            raise kind("send", exc.message) from exc

    async def send_message(self, chat_id: int, text: str, reply_markup: dict | None = None,
                           reply_to: int | None = None, paid: bool = False) -> Message:
        return await self._call(self.bot.send_message(
            chat_id, text, allow_paid_broadcast=True if paid else None,
            **self._options(reply_markup, reply_to)))

    async def send_photo(self, chat_id: int, photo: str | bytes, caption: str | None = None,
                         reply_markup: dict | None = None, reply_to: int | None = None,
                         paid: bool = False) -> Message:
        from aiogram.types import BufferedInputFile

        file = BufferedInputFile(photo, "picture.png") if isinstance(photo, bytes) else photo
        return await self._call(self.bot.send_photo(
            chat_id, file, caption=caption, allow_paid_broadcast=True if paid else None,
            **self._options(reply_markup, reply_to)))

    async def close(self) -> None:
        pass
