"""Translations: aiogram's I18n over compiled gettext catalogues, and the locale of each update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot.config import LOCALES
from core.models import Viewer

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"


def create_i18n(default_locale: str = "ru", path: Path = LOCALES_DIR) -> I18n:
    return I18n(path=path, default_locale=default_locale, domain=DOMAIN)


def pick_locale(
    explicit: str | None, telegram_language: str | None, default: str
) -> str:
    """The user's own choice wins, then Telegram's language if we speak it, then the default."""
    if explicit in LOCALES:
        return explicit
    if telegram_language:
        base = telegram_language.split("-")[0].lower()
        if base in LOCALES:
            return base
    return default


class LocaleMiddleware(I18nMiddleware):
    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        viewer: Viewer | None = data.get("viewer")
        user: User | None = data.get("event_from_user")
        return pick_locale(
            viewer.locale if viewer else None,
            user.language_code if user else None,
            self.i18n.default_locale,
        )
