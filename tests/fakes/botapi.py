"""A fake Telegram Bot API HTTP server on 127.0.0.1, for end-to-end tests and benchmarks.

It speaks the protocol aiogram uses: ``POST {url}/bot{token}/{method}`` with multipart or
urlencoded form data (every value a string, complex values JSON-encoded), a JSON body, or a
query string; it answers with Telegram's envelope ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``.

Tests push updates which the bot receives by long polling, and inspect what the bot sent.
Failures and limits can be injected: blocked chats (403), 5xx answers, dropped connections
and flood control (429 with ``retry_after``, from token buckets, global and per chat).

    async with FakeBotAPI(token="123:ABC") as api:
        ...  # start the bot with TELEGRAM_API_URL=api.url
        api.user_message(1001, "/start")
        reply = await api.wait_for(lambda m: m.chat_id == 1001 and "Hello" in (m.text or ""))
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple

from aiohttp import web

__all__ = ["BOT_USER", "MAX_TEXT_LENGTH", "ApiCall", "FakeBotAPI", "SentMessage"]

MAX_TEXT_LENGTH = 4096

BOT_USER: dict[str, Any] = {
    "id": 42,
    "is_bot": True,
    "first_name": "Diary",
    "username": "diary_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}

# Methods answered with ``true`` and only recorded in ``calls``.
_TRUE_METHODS = (
    "deleteWebhook",
    "setMyCommands",
    "deleteMyCommands",
    "setMyDescription",
    "setMyShortDescription",
    "setChatMenuButton",
    "answerCallbackQuery",
)
# Methods addressed to a chat: recorded in ``sent`` as ``SentMessage``.
_CHAT_METHODS = (
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "sendChatAction",
)
_OTHER_METHODS = ("getMe", "getUpdates")
# Telegram's method names are case-insensitive.
_CANONICAL = {name.lower(): name for name in (*_TRUE_METHODS, *_CHAT_METHODS, *_OTHER_METHODS)}

# Update types Telegram leaves out when ``allowed_updates`` was never given (or was empty).
_NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_HTML_TAG = re.compile(r"<[^>]*>")

# How long ``close()`` lets in-flight requests finish before the server drops them.
_SHUTDOWN_TIMEOUT = 2.0


@dataclass(slots=True)
class SentMessage:
    """One accepted call to a chat method (``sendMessage``, ``editMessageText``, ...)."""

    method: str
    """Canonical method name, e.g. ``"sendMessage"``."""
    chat_id: int
    text: str | None
    """The text as the bot sent it (markup included); None for methods without text."""
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    """The reply markup parsed from JSON, or None."""
    message_id: int | None
    """The new message's id for ``sendMessage``, the target's id for edits and deletes."""
    at: float
    """When the request was received, ``time.monotonic()``."""
    params: dict[str, Any] = field(default_factory=dict)
    """Every parameter of the request, as received (form values are strings)."""


class ApiCall(NamedTuple):
    """One request to any method (except ``getUpdates``), as received."""

    method: str
    params: dict[str, Any]


class _TokenBucket:
    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)
        self.stamp = now

    def wait_time(self, now: float) -> float:
        """Refill, then return 0 if a token is available, else seconds until one is."""
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class _ApiError(Exception):
    def __init__(self, status: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _visible_text(text: str, parse_mode: str | None) -> str:
    """The text a user would see; HTML markup is removed (other modes are left as they are)."""
    if parse_mode and parse_mode.lower() == "html":
        return html.unescape(_HTML_TAG.sub("", text))
    return text


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Bad Request: invalid {name} specified") from None


def _as_json(value: Any) -> Any:
    """A complex parameter: JSON-encoded in form data, already decoded in a JSON body."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(400, "Bad Request: can't parse JSON object") from None
    return value


class FakeBotAPI:
    """The fake server. Use as ``async with FakeBotAPI(token=...) as api:``; see the module doc.

    Rate limits are off unless given: ``global_rate`` messages per second for the whole bot
    (bucket capacity ``global_rate``), ``per_chat_rate`` per second for each chat (bucket
    capacity ``per_chat_burst``). Only ``sendMessage`` is limited. ``latency`` delays every
    answer to a chat method by that many seconds.
    """

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        global_rate: float | None = None,
        per_chat_rate: float | None = None,
        per_chat_burst: float = 3,
        latency: float = 0.0,
        bot_user: dict[str, Any] | None = None,
    ) -> None:
        if global_rate is not None and global_rate <= 0:
            raise ValueError("global_rate must be positive")
        if per_chat_rate is not None and per_chat_rate <= 0:
            raise ValueError("per_chat_rate must be positive")
        if per_chat_burst < 1:
            raise ValueError("per_chat_burst must be at least 1")
        self.token = token
        self.bot_user: dict[str, Any] = dict(bot_user or BOT_USER)
        self.global_rate = global_rate
        self.per_chat_rate = per_chat_rate
        self.per_chat_burst = per_chat_burst
        self.latency = latency
        self.url = ""

        # What tests look at.
        self.sent: list[SentMessage] = []
        self.calls: list[ApiCall] = []
        self.unknown_methods: list[str] = []
        self.filtered_updates: list[dict[str, Any]] = []
        self.blocked_chats: set[int] = set()
        self.stats: Counter[str] = Counter()
        self._delivered: Counter[tuple[int, str]] = Counter()

        # Fault injection and limits.
        self._fail_statuses: list[int] = []
        self._drops = 0
        self._global_bucket = (
            _TokenBucket(global_rate, global_rate, time.monotonic())
            if global_rate is not None
            else None
        )
        self._chat_buckets: dict[int, _TokenBucket] = {}

        # Updates and messages.
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}

        # Server state.
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._closing = False
        self._reset_stats()

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI is already running")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closing = False
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._handle_other)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        """Stop the server; waiting long polls answer at once. Safe to call twice."""
        self._closing = True
        self._notify()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- updates the bot will receive -------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update (its ``update_id`` is assigned here) and wake the long polls."""
        update_id = next(self._update_ids)
        self._updates.append({**update, "update_id": update_id})
        self._notify()
        return update_id

    def user_message(
        self,
        user_id: int,
        text: str,
        first_name: str = "Анна",
        language_code: str | None = "ru",
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> int:
        """A text message from a user; a leading ``/command`` gets a bot_command entity."""
        chat = self._user_chat(user_id, first_name, chat_type, chat_id)
        message = self._user_message_base(user_id, first_name, language_code, chat)
        message["text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        self._messages[chat["id"], message["message_id"]] = message
        return self.push_update({"message": message})

    def user_contact(
        self,
        user_id: int,
        phone_number: str,
        contact_user_id: int | None,
        first_name: str = "Анна",
        language_code: str | None = "ru",
    ) -> int:
        """A shared contact; ``contact_user_id`` None is a contact without a Telegram account."""
        chat = self._user_chat(user_id, first_name, "private", None)
        message = self._user_message_base(user_id, first_name, language_code, chat)
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        message["contact"] = contact
        self._messages[chat["id"], message["message_id"]] = message
        return self.push_update({"message": message})

    def user_callback(
        self,
        user_id: int,
        data: str,
        message_id: int,
        first_name: str = "Анна",
        language_code: str | None = "ru",
        chat_id: int | None = None,
    ) -> int:
        """A press on an inline button of message ``message_id`` in the user's chat.

        The update carries that message as the bot last sent or edited it (text, keyboard),
        or a bare message of the bot if the fake never saw it.
        """
        chat_id = user_id if chat_id is None else chat_id
        message = self._messages.get((chat_id, message_id))
        if message is None:
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "from": self.bot_user,
            }
        query = {
            "id": str(next(self._callback_ids)),
            "from": self._user(user_id, first_name, language_code),
            "chat_instance": str(abs(chat_id)),
            "data": data,
            "message": message,
        }
        return self.push_update({"callback_query": query})

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not confirmed yet by the bot (``getUpdates`` with a higher offset)."""
        return list(self._updates)

    # -- fault injection --------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500) -> None:
        """The next ``n`` sendMessage calls answer with HTTP ``status`` (5xx); not delivered."""
        self._fail_statuses.extend([status] * n)

    def drop_next(self, n: int) -> None:
        """The next ``n`` sendMessage calls get the connection closed without an answer."""
        self._drops += n

    # -- what was sent ----------------------------------------------------------------------

    def messages_to(self, chat_id: int, method: str | None = "sendMessage") -> list[SentMessage]:
        """Records to ``chat_id``: sent messages by default; ``method=None`` for every record."""
        wanted = None if method is None else method.lower()
        return [
            m
            for m in self.sent
            if m.chat_id == chat_id and (wanted is None or m.method.lower() == wanted)
        ]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call to ``method`` (case-insensitive)."""
        wanted = method.lower()
        return [call.params for call in self.calls if call.method.lower() == wanted]

    def duplicates(self) -> list[tuple[int, str]]:
        """(chat_id, text) pairs delivered by sendMessage more than once."""
        return [key for key, n in self._delivered.items() if n > 1]

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one call
        *,
        since: int = 0,
    ) -> SentMessage:
        """The first record in ``sent[since:]`` satisfying ``predicate``, waiting for it.

        Raises AssertionError listing what was sent if none comes within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        checked = since
        while True:
            while checked < len(self.sent):
                record = self.sent[checked]
                checked += 1
                if predicate(record):
                    return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._describe_sent(timeout, since))
            await self._wait_change(remaining)

    def reset(self) -> None:
        """Forget what was sent and called, the counters and the fault injections."""
        self.sent.clear()
        self.calls.clear()
        self.unknown_methods.clear()
        self.filtered_updates.clear()
        self._delivered.clear()
        self._fail_statuses.clear()
        self._drops = 0
        self._reset_stats()

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle_other(self, request: web.Request) -> web.Response:
        return self._error(404, "Not Found")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["http_requests"] += 1
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        raw_method = request.match_info["method"]
        method = _CANONICAL.get(raw_method.lower())
        try:
            params = await self._read_params(request)
            if method is None:
                self.unknown_methods.append(raw_method)
                self.calls.append(ApiCall(raw_method, params))
                raise _ApiError(404, "Not Found: method not found")
            if method == "getUpdates":
                return await self._get_updates(params)
            self.calls.append(ApiCall(method, params))
            if method == "getMe":
                return self._ok(self.bot_user)
            if method in _TRUE_METHODS:
                return self._ok(True)
            return await self._chat_method(request, method, params)
        except _ApiError as e:
            return self._error(e.status, e.description, **e.parameters)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if not request.body_exists:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON body") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: the JSON body must be an object")
            params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                # Uploaded files are kept as their file names.
                params[key] = value if isinstance(value, str) else value.filename
        return params

    # -- getUpdates -------------------------------------------------------------------------

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = _as_int(params.get("offset") or 0, "offset")
        limit = min(max(_as_int(params.get("limit") or 100, "limit"), 1), 100)
        timeout = max(_as_int(params.get("timeout") or 0, "timeout"), 0)
        allowed = params.get("allowed_updates")
        if allowed is not None:
            allowed = _as_json(allowed)
            self._allowed_updates = frozenset(allowed) if allowed else None

        # Confirm what the bot has seen: ids below a positive offset; a negative offset
        # keeps only the last -offset updates.
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

        # A newer getUpdates ends this one with 409, as Telegram does.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()

        deadline = time.monotonic() + timeout
        while True:
            if self._closing:
                return self._ok([])
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._deliverable_updates(limit)
            if batch:
                return self._ok(batch)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._ok([])
            await self._wait_change(remaining)

    def _deliverable_updates(self, limit: int) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for update in self._updates:
            kind = next((key for key in update if key != "update_id"), "")
            if self._allowed_updates is None:
                allowed = kind not in _NOT_DEFAULT_UPDATES
            else:
                allowed = kind in self._allowed_updates
            if allowed:
                kept.append(update)
            else:
                self.filtered_updates.append(update)
        self._updates = kept
        return kept[:limit]

    # -- chat methods -----------------------------------------------------------------------

    async def _chat_method(
        self, request: web.Request, method: str, params: dict[str, Any]
    ) -> web.StreamResponse:
        received = time.monotonic()
        is_send = method == "sendMessage"
        if is_send:
            self.stats["requests"] += 1
        if self.latency:
            await asyncio.sleep(self.latency)

        if is_send and self._drops:
            self._drops -= 1
            self.stats["dropped"] += 1
            return self._drop_connection(request)
        if is_send and self._fail_statuses:
            status = self._fail_statuses.pop(0)
            self.stats["failed_5xx"] += 1
            raise _ApiError(status, _reason(status))

        if params.get("inline_message_id") and method.startswith("editMessage"):
            # Inline messages have no chat: nothing to record, Telegram answers true.
            return self._ok(True)
        if params.get("chat_id") in (None, ""):
            raise _ApiError(400, "Bad Request: chat_id is empty")
        try:
            chat_id = int(params["chat_id"])
        except (TypeError, ValueError):
            raise _ApiError(400, "Bad Request: chat not found") from None

        text = params.get("text")
        parse_mode = params.get("parse_mode") or None
        if method in ("sendMessage", "editMessageText"):
            text = "" if text is None else str(text)
            visible = _visible_text(text, parse_mode).strip()
            if not visible:
                self._count_rejected(is_send, "rejected_400")
                raise _ApiError(400, "Bad Request: message text is empty")
            if len(visible) > MAX_TEXT_LENGTH:
                self._count_rejected(is_send, "rejected_400")
                raise _ApiError(400, "Bad Request: message is too long")

        if chat_id in self.blocked_chats:
            self._count_rejected(is_send, "rejected_403")
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if is_send:
            self._take_rate_tokens(chat_id)

        markup = params.get("reply_markup")
        reply_markup = _as_json(markup) if markup not in (None, "") else None
        if method == "sendMessage":
            message_id = self._next_message_id(chat_id)
        elif method == "sendChatAction":
            message_id = None
        else:
            message_id = _as_int(params.get("message_id"), "message_id")

        record = SentMessage(
            method=method,
            chat_id=chat_id,
            text=text,
            parse_mode=parse_mode,
            reply_markup=reply_markup,
            message_id=message_id,
            at=received,
            params=params,
        )
        self.sent.append(record)
        if is_send:
            self.stats["delivered"] += 1
            self._delivered[chat_id, text or ""] += 1
        self._notify()
        return self._ok(self._result(record))

    def _take_rate_tokens(self, chat_id: int) -> None:
        now = time.monotonic()
        chat_bucket = None
        if self.per_chat_rate is not None:
            chat_bucket = self._chat_buckets.get(chat_id)
            if chat_bucket is None:
                chat_bucket = _TokenBucket(self.per_chat_rate, self.per_chat_burst, now)
                self._chat_buckets[chat_id] = chat_bucket
        buckets = [b for b in (self._global_bucket, chat_bucket) if b is not None]
        wait = max((b.wait_time(now) for b in buckets), default=0.0)
        if wait > 0:
            self.stats["rejected_429"] += 1
            retry_after = max(1, math.ceil(wait))
            raise _ApiError(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )
        for bucket in buckets:
            bucket.take()

    def _result(self, record: SentMessage) -> Any:
        """The answer to an accepted chat method; keeps the fake's copy of the chat's messages."""
        key = (record.chat_id, record.message_id or 0)
        if record.method == "sendChatAction":
            return True
        if record.method == "deleteMessage":
            self._messages.pop(key, None)
            return True
        inline_markup = (
            record.reply_markup
            if record.reply_markup and "inline_keyboard" in record.reply_markup
            else None
        )
        if record.method == "sendMessage":
            message: dict[str, Any] = {
                "message_id": record.message_id,
                "from": self.bot_user,
                "chat": self._chat(record.chat_id),
                "date": int(time.time()),
            }
        else:
            message = dict(
                self._messages.get(key)
                or {
                    "message_id": record.message_id,
                    "from": self.bot_user,
                    "chat": self._chat(record.chat_id),
                    "date": int(time.time()),
                }
            )
            message["edit_date"] = int(time.time())
        if record.method != "editMessageReplyMarkup":
            message["text"] = _visible_text(record.text or "", record.parse_mode)
        # Telegram drops the inline keyboard when an edit comes without one.
        message.pop("reply_markup", None)
        if inline_markup is not None:
            message["reply_markup"] = inline_markup
        self._messages[key] = message
        return message

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    @staticmethod
    def _drop_connection(request: web.Request) -> web.StreamResponse:
        """Close the connection before any byte of an answer (the client sees a network error)."""
        if request.transport is not None:
            request.transport.abort()
        # Nothing reaches the client any more; aiohttp only needs a response object.
        return web.Response(status=HTTPStatus.INTERNAL_SERVER_ERROR)

    def _count_rejected(self, is_send: bool, key: str) -> None:
        if is_send:
            self.stats[key] += 1

    def _reset_stats(self) -> None:
        self.stats.clear()
        for key in (
            "http_requests",
            "requests",
            "delivered",
            "rejected_429",
            "rejected_403",
            "rejected_400",
            "failed_5xx",
            "dropped",
        ):
            self.stats[key] = 0

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.get(chat_id)
        if counter is None:
            counter = self._message_ids[chat_id] = itertools.count(1)
        return next(counter)

    @staticmethod
    def _user(user_id: int, first_name: str, language_code: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        return user

    def _user_chat(
        self, user_id: int, first_name: str, chat_type: str, chat_id: int | None
    ) -> dict[str, Any]:
        chat_id = user_id if chat_id is None else chat_id
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = f"Chat {chat_id}"
        self._chats[chat_id] = chat
        return chat

    def _user_message_base(
        self, user_id: int, first_name: str, language_code: str | None, chat: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": self._user(user_id, first_name, language_code),
        }

    def _chat(self, chat_id: int) -> dict[str, Any]:
        known = self._chats.get(chat_id)
        if known is not None:
            return known
        if chat_id > 0:
            return {"id": chat_id, "type": "private"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}

    def _notify(self) -> None:
        """Wake everything waiting for a change (new update, new record, closing)."""
        if (
            self._loop is not None
            and self._loop_thread != threading.get_ident()
            and not self._loop.is_closed()
        ):
            self._loop.call_soon_threadsafe(self._notify_in_loop)
        else:
            self._notify_in_loop()

    def _notify_in_loop(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_change(self, timeout: float) -> None:  # noqa: ASYNC109
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    def _describe_sent(self, timeout: float, since: int) -> str:
        lines = [f"nothing matching was sent within {timeout} s; sent since #{since}:"]
        for record in self.sent[since:]:
            text = record.text if record.text is None else _shorten(record.text)
            lines.append(f"  {record.method} -> {record.chat_id} #{record.message_id}: {text!r}")
        if len(lines) == 1:
            lines.append("  (nothing)")
        if self.unknown_methods:
            lines.append(f"unknown methods called: {sorted(set(self.unknown_methods))}")
        if self._updates:
            lines.append(f"updates not confirmed by the bot: {len(self._updates)}")
        return "\n".join(lines)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
