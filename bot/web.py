"""Processes by role, for a deployment past one machine.

- `diary web`: the webhook server. Telegram posts every update to ``WEBHOOK_URL`` with the
  secret token header; a request without the right ``WEBHOOK_SECRET`` gets 401. Any number of
  these processes may run behind a load balancer: conversation state and the per-chat order of
  updates then live in Redis (``REDIS_URL``). It also serves ``/healthz``, Prometheus
  ``/metrics`` and the ingestion API under ``/v1`` (bot/api.py).
- `diary deliver`: a sender. Any number may run: each claims whole recipients in a write
  transaction, so no row goes out twice, and takes back the claims of a sender that died.
- `diary scheduler`: the scheduled jobs. Any number may run; one acts, the others wait for its
  lock and take over when it is gone.

`diary run` stays all-in-one: long polling, one sender and the scheduler in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiohttp import web

from bot.commands import set_commands
from bot.config import Settings
from bot.fsm import SQLiteStorage
from bot.i18n import create_i18n
from bot.sender import until_stopped
from bot.services import Services, open_services
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


@contextlib.asynccontextmanager
async def _bot(settings: Settings) -> AsyncIterator[Bot]:
    from bot.runtime import create_bot

    bot = create_bot(settings)
    try:
        yield bot
    finally:
        await bot.session.close()


async def run_web(settings: Settings) -> None:
    """`diary web` until SIGTERM/SIGINT."""
    # The handlers are loaded here, not with the module: `diary deliver` and `diary scheduler`
    # start from this module too and need none of them.
    from bot.app import create_dispatcher

    assert settings.webhook_url and settings.webhook_secret
    secret = settings.webhook_secret.get_secret_value()
    async with open_services(settings) as services, _bot(settings) as bot:
        storage, isolation = conversation_storage(settings, services)
        i18n = create_i18n(settings.default_locale)
        dp = create_dispatcher(services, i18n, storage, isolation=isolation)
        app = create_web_app(dp, bot, services, secret, webhook_path(settings.webhook_url))
        from bot.api import mount_api

        mount_api(app, services, settings)  # the ingestion API under /v1
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.web_host, settings.web_port)
        await site.start()
        try:
            await bot.set_webhook(settings.webhook_url, secret_token=secret,
                                  allowed_updates=dp.resolve_used_update_types(),
                                  drop_pending_updates=False)
            await set_commands(bot, i18n)
            log.info("webhook server on %s:%d, updates at %s", settings.web_host,
                     settings.web_port, webhook_path(settings.webhook_url))
            await until_stopped()
        finally:
            await runner.cleanup()
            await storage.close()
            if isolation is not None:
                await isolation.close()


async def run_scheduler(settings: Settings) -> None:
    """`diary scheduler`: waits for the scheduler's lock, then runs the jobs until stopped."""
    from bot.jobs import create_scheduler
    from bot.singleton import AlreadyRunning, process_lock

    stopping = asyncio.create_task(until_stopped())
    while not stopping.done():
        try:
            async with process_lock("scheduler", settings.database, settings.sqlite_path):
                async with open_services(settings) as services:
                    scheduler = create_scheduler(services, settings)
                    scheduler.start()
                    log.info("scheduler acting")
                    try:
                        await stopping
                    finally:
                        scheduler.shutdown(wait=False)
        except AlreadyRunning as exc:
            log.info("another scheduler (%s) acts; waiting to take over", exc.holder)
            await asyncio.wait({stopping}, timeout=5)
