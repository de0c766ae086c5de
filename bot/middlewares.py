"""Per-update context: who is asking, as the core sees them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.context import FSMContext
from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18nMiddleware

from bot.i18n import pick_locale
from core.models import Viewer
from core.services.access import AccessService


class ViewerMiddleware(BaseMiddleware):
    """Loads the Viewer (account and visible children) for the user behind the update."""

    def __init__(self, access: AccessService) -> None:
        self.access = access

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            data["viewer"] = await self.access.viewer(user.id)
        return await handler(event, data)


class RememberScreen(BaseMiddleware):
    """Within a conversation, the message whose buttons were pressed last is remembered, so
    that leaving the conversation (/cancel) can take its buttons away."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        result = await handler(event, data)
        state: FSMContext | None = data.get("state")
        message = getattr(event, "message", None)
        if state is not None and message is not None and await state.get_state() is not None:
            await state.update_data(screen=message.message_id)
        return result


class LocaleMiddleware(I18nMiddleware):
    """Each update in its reader's language: the account's choice, then Telegram's."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        viewer: Viewer | None = data.get("viewer")
        user: User | None = data.get("event_from_user")
        return pick_locale(
            viewer.locale if viewer else None,
            user.language_code if user else None,
            self.i18n.default_locale,
        )
