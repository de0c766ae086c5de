"""The webhook server's parts (`diary web`, started by ``bot.roles.run_web``): the aiohttp
application that takes Telegram's updates, ``/healthz`` and Prometheus ``/metrics``; where
conversation state lives (Redis when ``REDIS_URL`` is set, so that any number of web processes
share it)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiohttp import web

from bot.config import Settings
from bot.fsm import SQLiteStorage
from bot.services import Services
from core.models import Status

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
# A conversation nobody touched for a week is forgotten (as housekeeping does in SQLite).
CONVERSATION_TTL = 7 * 24 * 3600


def conversation_storage(settings: Settings, services: Services
                         ) -> tuple[BaseStorage, BaseEventIsolation | None]:
    """Conversation state and per-chat update order: in Redis when ``REDIS_URL`` is set (needed
    as soon as more than one process receives updates), else in the database and in-process."""
    if not settings.redis_url:
        return SQLiteStorage(services.db, services.clock), None
    from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

    storage = RedisStorage.from_url(
        settings.redis_url, key_builder=DefaultKeyBuilder(prefix="diary", with_destiny=True),
        state_ttl=CONVERSATION_TTL, data_ttl=CONVERSATION_TTL)
    return storage, RedisEventIsolation(storage.redis, key_builder=storage.key_builder)


def webhook_path(url: str) -> str:
    """The path Telegram posts to: the path of the public URL (a proxy passes it on as is)."""
    return urlsplit(url).path or "/"


# A sender whose last heartbeat is older than this is not counted in the sending rate.
LIVE_WITHIN = 60.0


def render_metrics(st: Status, now_ts: float) -> str:
    """Prometheus text exposition of the deployment's state."""
    lines: list[str] = []

    def gauge(name: str, help_text: str, value: float | None,
              labels: dict[str, str] | None = None, header: bool = True) -> None:
        if header:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} gauge")
        if value is None:
            return
        label = ""
        if labels:
            label = "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"
        lines.append(f"{name}{label} {value:g}")

    def age(moment) -> float | None:
        return None if moment is None else max(0.0, now_ts - moment.timestamp())

    gauge("diary_outbox_pending", "Pushes not yet delivered (held ones included).",
          st.queue_depth)
    gauge("diary_outbox_due", "Pushes whose time has come.", st.due_now)
    gauge("diary_outbox_oldest_undelivered_age_seconds",
          "Age of the oldest push not yet delivered.", age(st.oldest_undelivered) or 0)
    gauge("diary_last_delivery_age_seconds", "Seconds since any sender delivered a push.",
          age(st.last_delivery))
    gauge("diary_delivery_stalled", "1 when pushes have been due for a minute and nothing went"
          " out.", 1 if st.stalled else 0)
    first = True
    for w in st.workers:
        gauge("diary_worker_last_beat_age_seconds", "Seconds since a worker's last sign of life.",
              age(w.beat_at), {"role": w.role, "owner": w.owner}, header=first)
        first = False
    first = True
    for w in st.workers:
        gauge("diary_worker_last_progress_age_seconds",
              "Seconds since a worker last got something done.", age(w.progress_at),
              {"role": w.role, "owner": w.owner}, header=first)
        first = False
    senders = [w for w in st.workers if w.role == "delivery"]
    live = [w for w in senders if (age(w.beat_at) or 0) <= LIVE_WITHIN]
    gauge("diary_sent_per_second", "Messages a second sent by the live senders (each over its"
          " last heartbeat interval).", round(sum(w.sent_per_second for w in live), 2))
    gauge("diary_paid_messages_today", "Paid broadcasts sent today (school time).",
          st.paid_today)
    for name, field, help_text in (
            ("diary_sender_messages_total", "messages", "Messages a sender has sent."),
            ("diary_sender_rate_limited_total", "rate_limited",
             "429 answers (Too Many Requests) a sender has met."),
            ("diary_sender_paid_messages_total", "paid",
             "Paid broadcasts a sender has sent.")):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} counter")
        for w in senders:
            lines.append(f'{name}{{owner="{_escape(w.owner)}"}} {getattr(w, field)}')
    first = True
    for w in st.workers:
        gauge("diary_worker_failing", "1 when a worker's last round failed.",
              1 if w.last_error else 0, {"role": w.role, "owner": w.owner}, header=first)
        first = False
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        await services.db.scalar("SELECT 1")
    except Exception as exc:
        log.warning("health check: database unavailable: %s", exc)
        return web.Response(status=503, text="database unavailable\n")
    return web.Response(text="ok\n")


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    st = await services.status.status()
    return web.Response(text=render_metrics(st, services.clock.now().timestamp()),
                        content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def create_web_app(dp: Dispatcher, bot: Bot, services: Services, secret: str,
                   path: str) -> web.Application:
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application

    app = web.Application()
    app[SERVICES] = services
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret).register(app, path=path)
    setup_application(app, dp, bot=bot)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
