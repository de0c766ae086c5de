"""The Bot API as the outbox sender uses it: ``sendMessage`` and ``sendPhoto`` over aiohttp.

The sender needs two methods and Telegram's answers to them; aiogram would bring some 160 MB of
Telegram models into every sender process for that, and a request built through them costs more
CPU than the message itself. Here a message is one JSON request (a new picture one multipart
request) and the answer is read for what the sender needs: the message id, or the error.

Errors are sorted as the Bot API documents them, into what the sender does next:

- :class:`RetryAfter` (429): the chat waits ``retry_after`` seconds;
- :class:`Forbidden` (403: blocked, deactivated), :class:`BadRequest` (400, and 413 for a file
  too large: that message is dropped, the others go; a chat that became a supergroup, 400 with
  ``migrate_to_chat_id``, is a refusal too: pushes go to private chats only);
- :class:`Unauthorized` (401: a wrong or revoked token), :class:`NotFound` (404: a wrong server);
- :class:`ServerError` (5xx) and :class:`NetworkError` (no answer): tried again later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

DEFAULT_SERVER = "https://api.telegram.org"
TIMEOUT = 30.0  # seconds for one request: well inside a claim's lease (60 s), so a send that
# Telegram took late is recorded by this sender, not made again by another
CONNECTIONS = 100  # open connections to the server at most


class TelegramError(Exception):
    """The Bot API refused a request (``error_code``, ``description``)."""

    def __init__(self, method: str, message: str, code: int | None = None) -> None:
        super().__init__(f"Telegram server says - {message}")
        self.method = method
        self.message = message
        self.code = code


class BadRequest(TelegramError):
    pass


class EntityTooLarge(BadRequest):
    pass


class Unauthorized(TelegramError):
    pass


class Forbidden(TelegramError):
    pass


class NotFound(TelegramError):
    pass


class ServerError(TelegramError):
    pass


class NetworkError(TelegramError):
    pass


class RetryAfter(TelegramError):
    def __init__(self, method: str, message: str, retry_after: float) -> None:
        super().__init__(method, message, 429)
        self.retry_after = retry_after


_BY_CODE: dict[int, type[TelegramError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 413: EntityTooLarge}


@dataclass(frozen=True)
class Sent:
    """What the sender keeps of a message Telegram accepted."""

    message_id: int


def error_of(method: str, status: int, body: Any) -> TelegramError:
    """The error an answer that is not ``ok`` stands for."""
    if not isinstance(body, dict):  # a proxy's page, not the Bot API's answer
        if status == 429:
            return RetryAfter(method, "HTTP 429", 1.0)
        return (ServerError if status >= 500 else _BY_CODE.get(status, TelegramError))(
            method, f"HTTP {status}", status)
    message = str(body.get("description") or f"HTTP {status}")
    given = body.get("error_code")
    code: int = given if isinstance(given, int) else status
    raw = body.get("parameters")
    parameters: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if code == 429 or parameters.get("retry_after") is not None:
        return RetryAfter(method, message, float(parameters.get("retry_after") or 1))
    if code >= 500:
        return ServerError(method, message, code)
    return _BY_CODE.get(code, TelegramError)(method, message, code)


class BotApi:
    """One bot's requests to one Bot API server, on one connection pool."""

    def __init__(self, token: str, server: str | None = None,
                 timeout: float = TIMEOUT) -> None:
        self._token = token
        self._base = f"{(server or DEFAULT_SERVER).rstrip('/')}/bot{token}/"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTIONS), timeout=self._timeout,
                json_serialize=lambda value: json.dumps(value, ensure_ascii=False))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> BotApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, method: str, params: dict[str, Any],
                   upload: tuple[str, str, bytes] | None = None) -> Any:
        """Make one request; its ``result``, or the error it was answered with. ``upload``:
        (parameter, file name, bytes) of a file sent with it."""
        payload = {k: v for k, v in params.items() if v is not None}
        try:
            if upload is None:
                request = self._client().post(self._base + method, json=payload)
            else:
                form = aiohttp.FormData(quote_fields=False)
                for key, value in payload.items():
                    form.add_field(key, value if isinstance(value, str)
                                   else json.dumps(value, ensure_ascii=False))
                name, filename, data = upload
                form.add_field(name, data, filename=filename,
                               content_type="application/octet-stream")
                request = self._client().post(self._base + method, data=form)
            async with request as response:
                status = response.status
                raw = await response.read()
        except TimeoutError:
            raise NetworkError(method, "Request timeout error") from None
        except aiohttp.ClientError as exc:
            # The request's address carries the token: never in a message, a log or a row.
            text = str(exc).replace(self._token, "<token>") if self._token else str(exc)
            raise NetworkError(method, f"{type(exc).__name__}: {text}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if status == 200 and isinstance(body, dict) and body.get("ok"):
            return body.get("result")
        raise error_of(method, status, body)

    async def send_message(self, chat_id: int, text: str, reply_markup: Any = None,
                           reply_to: int | None = None, paid: bool = False) -> Sent:
        result = await self.call("sendMessage", {
            "chat_id": chat_id, "text": text,
            "link_preview_options": {"is_disabled": True},
            "reply_markup": reply_markup, "reply_parameters": _reply(reply_to),
            "allow_paid_broadcast": True if paid else None})
        return Sent(int(result["message_id"]))

    async def send_photo(self, chat_id: int, photo: str | bytes, caption: str | None = None,
                         reply_markup: Any = None, reply_to: int | None = None,
                         paid: bool = False) -> Sent:
        """A picture by its file id (``str``) or a new one (PNG ``bytes``, uploaded)."""
        params = {"chat_id": chat_id, "caption": caption, "reply_markup": reply_markup,
                  "reply_parameters": _reply(reply_to),
                  "allow_paid_broadcast": True if paid else None}
        if isinstance(photo, bytes):
            result = await self.call("sendPhoto", {**params, "photo": "attach://picture"},
                                     upload=("picture", "picture.png", photo))
        else:
            result = await self.call("sendPhoto", {**params, "photo": photo})
        return Sent(int(result["message_id"]))


def _reply(message_id: int | None) -> dict[str, Any] | None:
    """Answer a message, or go alone if it was deleted."""
    if message_id is None:
        return None
    return {"message_id": message_id, "allow_sending_without_reply": True}
