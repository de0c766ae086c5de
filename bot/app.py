"""create_dispatcher: routers, middlewares and services wired together. No I/O: tests use it too."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import Update

from bot.i18n import I18n
from bot.middlewares import LocaleMiddleware, ViewerMiddleware
from bot.retry import replying
from bot.routers import (
    absence,
    common,
    dots,
    errors,
    grades,
    news,
    settings,
    signoff,
    start,
    teacher,
    timetable,
    trusted,
)
from bot.routers import demo as demo_router
from bot.services import Services
from core.demo import DemoSchool


class DiaryDispatcher(Dispatcher):
    """Everything done for an update — handlers, error handlers, middlewares — answers a user:
    requests made meanwhile wait out Telegram's flood control (``bot.retry``)."""

    async def feed_update(self, bot: Bot, update: Update, **kwargs: Any) -> Any:
        with replying():
            return await super().feed_update(bot, update, **kwargs)


def create_dispatcher(
    services: Services, i18n: I18n, storage: BaseStorage, demo: DemoSchool | None = None,
    isolation: BaseEventIsolation | None = None,
) -> Dispatcher:
    """``demo``: run as the demo school (`diary demo`): /start offers a family to try.
    ``isolation``: how updates of one chat are kept apart (in-process by default; in Redis when
    several processes receive updates)."""
    # Updates of one chat are handled one at a time (two quick taps must not interleave over
    # the conversation's state); different chats still run side by side.
    dp = DiaryDispatcher(storage=storage, events_isolation=isolation or SimpleEventIsolation(),
                         **services.workflow_data(), demo=demo)
    dp.update.outer_middleware(ViewerMiddleware(services.access))
    # bot.i18n.I18n has aiogram's I18n interface without loading its catalogues machinery.
    LocaleMiddleware(i18n).setup(dp)  # type: ignore[arg-type]
    routers = [errors.create_router(), common.create_group_guard(), common.create_router()]
    if demo is not None:
        routers.append(demo_router.create_router())
    dp.include_routers(
        *routers,
        settings.create_router(),
        grades.create_router(),
        dots.create_router(),
        timetable.create_router(),
        absence.create_router(),
        trusted.create_router(),
        signoff.create_router(),
        teacher.create_router(),
        news.create_router(),
        start.create_router(),
        common.create_fallback(),
    )
    return dp
