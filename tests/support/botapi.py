"""A fake Telegram Bot API server on 127.0.0.1, for end-to-end tests and delivery benchmarks.

It speaks the HTTP protocol aiogram uses (``POST /bot<token>/<method>``, form or JSON), serves
long polling from a queue of updates the test pushes, records what the bot sends, and can play
Telegram's limits and failures: 429 with ``retry_after`` (token buckets, global and per chat),
403 for blocked chats, 5xx, and dropped connections.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Telegram's date of every message the fake makes: fixed, never the wall clock.
MESSAGE_DATE = 1_795_424_400  # 2026-11-23 09:00 UTC

BOT = {"id": 42, "is_bot": True, "first_name": "Diary", "username": "diary_test_bot",
       "can_join_groups": True, "can_read_all_group_messages": False,
       "supports_inline_queries": False}
OK_METHODS = {"deletewebhook", "setmycommands", "setmydescription", "setmyshortdescription",
              "deletemycommands", "setchatmenubutton", "answercallbackquery", "sendchataction"}
SEND_METHODS = {"sendmessage", "editmessagetext", "editmessagereplymarkup", "deletemessage",
                "sendphoto", "editmessagemedia"}
PHOTO_METHODS = {"sendphoto", "editmessagemedia"}


@dataclass
class Sent:
    method: str
    chat_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    message_id: int | None
    at: float
    params: dict[str, Any] = field(default_factory=dict)


class _Bucket:
    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.stamp = capacity, time.monotonic()

    def take(self) -> float:
        """0 if a token was taken, else seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class FakeBotAPI:
    def __init__(
        self,
        token: str = "123:TEST",
        global_rate: float | None = None,
        per_chat_rate: float | None = None,
        per_chat_burst: float = 3,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.global_bucket = _Bucket(global_rate, global_rate) if global_rate else None
        self.per_chat_rate = per_chat_rate
        self.per_chat_burst = per_chat_burst
        self.latency = latency
        self.chat_buckets: dict[int, _Bucket] = {}
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.unknown_methods: list[str] = []
        self.blocked_chats: set[int] = set()
        self.stats: Counter[str] = Counter()
        self._fail: list[int] = []
        self._drop = 0
        self._gate: asyncio.Event | None = None
        self._discard_held = False
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""
        # Webhook mode: once the bot calls setWebhook, updates are POSTed to it instead of
        # waiting for getUpdates. ``webhook_targets`` stands in for a load balancer: the
        # updates go round-robin to these URLs instead of the registered one.
        self.webhook: dict[str, Any] | None = None
        self.webhook_targets: list[str] | None = None
        self.webhook_answers: list[int] = []  # HTTP status of every webhook delivery
        self._targets = itertools.count()
        self._posts: set[asyncio.Task[None]] = set()

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        for task in list(self._posts):
            task.cancel()
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what tests do ----------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        update = {"update_id": next(self._update_ids), **update}
        if self.webhook is not None:
            task = asyncio.get_running_loop().create_task(self._post_update(update))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)
            return update["update_id"]
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update["update_id"]

    async def _post_update(self, update: dict[str, Any], secret: str | None = None) -> None:
        """Deliver one update to the webhook as Telegram does: POST JSON with the secret token
        header, again after a failure (a few times)."""
        import aiohttp

        assert self.webhook is not None
        targets = self.webhook_targets or [self.webhook["url"]]
        token = secret if secret is not None else self.webhook.get("secret_token", "")
        for attempt in range(5):
            url = targets[next(self._targets) % len(targets)]
            try:
                async with aiohttp.ClientSession() as session, session.post(
                        url, json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": token}) as response:
                    self.webhook_answers.append(response.status)
                    if response.status < 400:
                        return
            except aiohttp.ClientError:
                self.webhook_answers.append(0)
            await asyncio.sleep(0.2 * (attempt + 1))

    async def post_with_secret(self, update: dict[str, Any], secret: str) -> int:
        """One update posted with the given secret token; the webhook's HTTP status."""
        before = len(self.webhook_answers)
        await self._post_update({"update_id": next(self._update_ids), **update}, secret)
        return self.webhook_answers[before]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @staticmethod
    def _user(user_id: int, first_name: str, language_code: str | None) -> dict[str, Any]:
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        return user

    def user_message(self, user_id: int, text: str, first_name: str = "Анна",
                     language_code: str | None = "ru", chat_type: str = "private",
                     chat_id: int | None = None) -> int:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": MESSAGE_DATE,
            "chat": {"id": chat_id if chat_id is not None else user_id, "type": chat_type},
            "from": self._user(user_id, first_name, language_code), "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(text.split()[0])}]
        return self.push_update({"message": message})

    def user_contact(self, user_id: int, phone_number: str, contact_user_id: int | None,
                     first_name: str = "Анна") -> int:
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        return self.push_update({"message": {
            "message_id": next(self._message_ids), "date": MESSAGE_DATE,
            "chat": {"id": user_id, "type": "private"},
            "from": self._user(user_id, first_name, "ru"), "contact": contact,
        }})

    def user_callback(self, user_id: int, data: str, message_id: int) -> int:
        return self.push_update({"callback_query": {
            "id": str(next(self._message_ids)), "from": self._user(user_id, "Анна", "ru"),
            "chat_instance": "1", "data": data,
            "message": {"message_id": message_id, "date": MESSAGE_DATE,
                        "chat": {"id": user_id, "type": "private"}, "from": BOT, "text": "…"},
        }})

    def hold_sends(self) -> None:
        """Keep every sendMessage waiting (as if Telegram were slow) until released."""
        self._gate = asyncio.Event()
        self._discard_held = False

    def release_sends(self, discard: bool = False) -> None:
        """Let held requests go on; with ``discard`` they fail unrecorded (the sender is gone)."""
        if self._gate is not None:
            self._discard_held = discard
            self._gate.set()
            self._gate = None

    @property
    def held(self) -> int:
        return self.stats["held"] - self.stats["released"]

    def fail_next(self, n: int, status: int = 500) -> None:
        self._fail.extend([status] * n)

    def drop_next(self, n: int) -> None:
        self._drop += n

    def messages_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id and s.method == "sendmessage"]

    def duplicates(self) -> list[tuple[int, str]]:
        counts = Counter((s.chat_id, s.text or "") for s in self.sent if s.method == "sendmessage")
        return [key for key, n in counts.items() if n > 1]

    async def wait_for(
        self, predicate: Callable[[Sent], bool], timeout: float = 10.0  # noqa: ASYNC109
    ) -> Sent:
        deadline = time.monotonic() + timeout
        while True:
            for record in self.sent:
                if predicate(record):
                    return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n".join(f"  {s.method} → {s.chat_id}: {s.text!r}" for s in self.sent)
                raise AssertionError(f"nothing matching was sent in {timeout} s; sent:\n{seen}")
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
                except TimeoutError:
                    pass

    # -- the HTTP side ----------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
            # An uploaded file stands where the parameters name it («attach://…»): its bytes.
            files = {k: v.file.read() for k, v in form.items() if isinstance(v, web.FileField)}
            for key, value in list(params.items()):
                if isinstance(value, str) and value.startswith("attach://"):
                    params[key] = files.get(value.removeprefix("attach://"), value)
            params.update({k: v for k, v in files.items() if k not in params})
        return params

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        params = await self._params(request)
        self.calls.append((method, params))
        self.stats["requests"] += 1
        if method == "getme":
            return self._ok(BOT)
        if method == "getupdates":
            return await self._get_updates(params)
        if method == "setwebhook":
            self.webhook = {"url": params["url"], "secret_token": params.get("secret_token", ""),
                            "allowed_updates": params.get("allowed_updates")}
            return self._ok(True)
        if method == "getwebhookinfo":
            return self._ok({"url": (self.webhook or {}).get("url", ""),
                             "pending_update_count": 0})
        if method in OK_METHODS:
            return self._ok(True)
        if method in SEND_METHODS:
            return await self._send(request, method, params)
        self.unknown_methods.append(method)
        return self._error(404, "Not Found: method not found")

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        # Answer within a second at most, so a stopping bot is never kept waiting.
        timeout = min(float(params.get("timeout") or 0), 1.0)
        limit = int(params.get("limit") or 100)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self._updates and time.monotonic() < deadline and self._runner is not None:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        return self._ok(self._updates[:limit])

    async def _send(self, request: web.Request, method: str, params: dict[str, Any]
                    ) -> web.StreamResponse:
        chat_id = int(params.get("chat_id") or 0)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self._gate is not None and method == "sendmessage":
            gate = self._gate
            self.stats["held"] += 1
            await gate.wait()
            self.stats["released"] += 1
            if self._discard_held:
                return self._error(500, "Internal Server Error")
        if self._drop:
            self._drop -= 1
            self.stats["dropped"] += 1
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if self._fail:
            status = self._fail.pop(0)
            self.stats["failed_5xx"] += 1
            return self._error(status, "Internal Server Error" if status == 500 else "Bad Gateway")
        if chat_id in self.blocked_chats:
            self.stats["rejected_403"] += 1
            return self._error(403, "Forbidden: bot was blocked by the user")
        if method == "sendmessage":
            wait = self.global_bucket.take() if self.global_bucket else 0.0
            if not wait and self.per_chat_rate:
                bucket = self.chat_buckets.setdefault(
                    chat_id, _Bucket(self.per_chat_rate, self.per_chat_burst))
                wait = bucket.take()
            if wait:
                self.stats["rejected_429"] += 1
                retry = max(1, int(wait + 0.999))
                return self._error(429, f"Too Many Requests: retry after {retry}",
                                   retry_after=retry)
        text = params.get("text")
        if text is not None and len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        message_id = int(params["message_id"]) if params.get("message_id") else None
        if method in ("sendmessage", "sendphoto"):
            message_id = next(self._message_ids)
            self.stats["delivered"] += 1
        self.sent.append(Sent(method, chat_id, text, markup, message_id, time.monotonic(),
                              params))
        await self._notify()
        if method in ("deletemessage", "editmessagereplymarkup") and text is None:
            return self._ok(True)
        result: dict[str, Any] = {
            "message_id": message_id, "date": MESSAGE_DATE,
            "chat": {"id": chat_id, "type": "private"}, "from": BOT, "text": text or "",
        }
        if markup and "inline_keyboard" in markup:
            result["reply_markup"] = markup
        if method in PHOTO_METHODS:  # a picture: its caption instead of a text
            del result["text"]
            media = params.get("media")
            if isinstance(media, str):  # editMessageMedia: the caption goes with the picture
                media = json.loads(media)
            result["caption"] = (media or params).get("caption") or ""
            result["photo"] = [{"file_id": f"AgAC{message_id}", "file_unique_id": f"u{message_id}",
                                "width": 1000, "height": 600}]
        return self._ok(result)
