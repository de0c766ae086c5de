"""Formatting helpers: names, dates and numbers through Babel, in the current locale."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date, format_skeleton
from babel.dates import format_datetime as babel_datetime

from core.models import Child


def locale() -> str:
    try:
        return I18n.get_current().current_locale
    except LookupError:
        return "ru"


def day(d: date, skeleton: str = "MMMMd") -> str:
    """A date in the reader's language and order: «27 ноября», «November 27»."""
    return format_skeleton(skeleton, d, locale=locale())


def long_day(d: date) -> str:
    """«вторник, 24 ноября», «Tuesday, November 24»: the pattern is part of the translation."""
    return format_date(d, _("EEEE, MMMM d"), locale=locale())


def moment(m: datetime, tz: ZoneInfo, fmt: str = "d MMMM, HH:mm") -> str:
    return babel_datetime(m, fmt, tzinfo=tz, locale=locale())


def child_line(child: Child) -> str:
    if child.class_name:
        return _("{name}, {class_name} class").format(name=child.name.short,
                                                      class_name=child.class_name)
    return child.name.short


def children_list(children: tuple[Child, ...]) -> str:
    return "\n".join(f"• {child_line(c)}" for c in children)
