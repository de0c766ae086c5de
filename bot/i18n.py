"""Translations: compiled gettext catalogues and the current locale, per task.

aiogram brings an ``I18n`` of its own, but importing anything of aiogram loads the whole library
(about 160 MB of Telegram models); a sender, which renders pushes and nothing else, would carry
it for nothing. This one keeps aiogram's interface (``context()``, ``use_locale()``,
``current_locale``, ``gettext``), so aiogram's ``I18nMiddleware`` drives it in the bot
(``bot.middlewares.LocaleMiddleware``), and the module-level :func:`gettext` / :func:`ngettext`
read the instance and locale set for the running task.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from babel.support import LazyProxy

from bot.config import LOCALES

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"

_CURRENT: ContextVar[I18n | None] = ContextVar("i18n", default=None)


class I18n:
    def __init__(self, *, path: str | Path, default_locale: str = "ru",
                 domain: str = DOMAIN) -> None:
        self.path = Path(path).resolve()
        self.default_locale = default_locale
        self.domain = domain
        self.ctx_locale: ContextVar[str] = ContextVar("locale", default=default_locale)
        self.locales = self.find_locales()

    @property
    def current_locale(self) -> str:
        return self.ctx_locale.get()

    @current_locale.setter
    def current_locale(self, value: str) -> None:
        self.ctx_locale.set(value)

    @contextmanager
    def use_locale(self, locale: str) -> Iterator[None]:
        token = self.ctx_locale.set(locale)
        try:
            yield
        finally:
            self.ctx_locale.reset(token)

    @contextmanager
    def context(self) -> Iterator[I18n]:
        """Make this the instance that :func:`gettext` uses in the running task."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    @classmethod
    def get_current(cls, no_error: bool = True) -> I18n | None:
        current = _CURRENT.get()
        if current is None and not no_error:
            raise LookupError("I18n context is not set")
        return current

    def find_locales(self) -> dict[str, _gettext.GNUTranslations]:
        """Every compiled catalogue under ``path`` (``<locale>/LC_MESSAGES/<domain>.mo``)."""
        found: dict[str, _gettext.GNUTranslations] = {}
        for folder in self.path.iterdir():
            mo = folder / "LC_MESSAGES" / f"{self.domain}.mo"
            if mo.exists():
                with mo.open("rb") as fp:
                    found[folder.name] = _gettext.GNUTranslations(fp)
            elif mo.with_suffix(".po").exists():
                raise RuntimeError(f"locale {folder.name!r} is not compiled (make locales)")
        return found

    def reload(self) -> None:
        self.locales = self.find_locales()

    @property
    def available_locales(self) -> tuple[str, ...]:
        return tuple(self.locales)

    def gettext(self, singular: str, plural: str | None = None, n: int = 1,
                locale: str | None = None) -> str:
        translator = self.locales.get(locale or self.current_locale)
        if translator is None:
            return singular if n == 1 or plural is None else plural
        if plural is None:
            return translator.gettext(singular)
        return translator.ngettext(singular, plural, n)


def get_i18n() -> I18n:
    current = _CURRENT.get()
    if current is None:
        raise LookupError("I18n context is not set")
    return current


def gettext(*args: Any, **kwargs: Any) -> str:
    """The translation of a text in the running task's locale."""
    return get_i18n().gettext(*args, **kwargs)


ngettext = gettext  # (singular, plural, n)


def lazy_gettext(*args: Any, **kwargs: Any) -> LazyProxy:
    """Translated when used (texts defined at import, such as button labels)."""
    return LazyProxy(gettext, *args, **kwargs, enable_cache=False)


def current_locale(default: str = "ru") -> str:
    current = _CURRENT.get()
    return current.current_locale if current is not None else default


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
