"""Formatting helpers: names, dates and numbers through Babel, in the current locale."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_interval, format_skeleton
from babel.dates import format_datetime as babel_datetime

from bot.i18n import current_locale, ngettext
from bot.i18n import gettext as _
from core.models import Child, Role


def locale() -> str:
    return current_locale()


def day(d: date, skeleton: str = "MMMMd") -> str:
    """A date in the reader's language and order: «27 ноября», «November 27»."""
    return format_skeleton(skeleton, d, locale=locale())


def days(start: date, end: date) -> str:
    """A span of days, short: «16–20 нояб.», «Nov 16 – 20»."""
    return format_interval(start, end, "MMMd", locale=locale())


def long_day(d: date) -> str:
    """«вторник, 24 ноября», «Tuesday, November 24»: the pattern is part of the translation."""
    return format_date(d, _("EEEE, MMMM d"), locale=locale())


# Russian weekdays after «на»/«за» take the accusative: на среду, на пятницу, на субботу.
_RU_ACCUSATIVE = {"среда": "среду", "пятница": "пятницу", "суббота": "субботу"}


def for_day(d: date) -> str:
    """``long_day`` where it follows «на»/«за» (for a day): «на пятницу, 27 ноября»,
    «for Friday, November 27»."""
    text = long_day(d)
    if locale() == "ru":
        name, comma, rest = text.partition(",")
        text = _RU_ACCUSATIVE.get(name, name) + comma + rest
    return text


def capitalized(text: str) -> str:
    """The first letter upper case, the rest as Babel wrote it («November» stays capitalised,
    unlike ``str.capitalize``)."""
    return text[:1].upper() + text[1:]


def moment(m: datetime, tz: ZoneInfo, fmt: str = "d MMMM, HH:mm") -> str:
    return babel_datetime(m, fmt, tzinfo=tz, locale=locale())


def child_line(child: Child) -> str:
    if child.class_name:
        return _("{name}, {class_name} class").format(name=child.name.short,
                                                      class_name=child.class_name)
    return child.name.short


def children_list(children: tuple[Child, ...]) -> str:
    return "\n".join(f"• {child_line(c)}" for c in children)


def whose(children: tuple[Child, ...] | list[Child]) -> str:
    """Whom the account sees, in the reader's own role: a student their own diary, a parent
    their children, a trusted person the children they follow."""
    own = [c for c in children if c.role is Role.STUDENT]
    kids = [c for c in children if c.role is Role.GUARDIAN]
    followed = [c for c in children if c.role is Role.TRUSTED]
    lines = []
    for child in own:
        lines.append(_("This is your own diary: {child}.").format(child=child_line(child)))
    if kids:
        lines += [_("Children you can follow:"), children_list(tuple(kids))]
    if followed:
        lines += [_("You follow:"), children_list(tuple(followed))]
    return "\n".join(lines)


def marks_count(n: int) -> str:
    """«1 оценка», «3 оценки», «5 оценок»."""
    return ngettext("{n} mark", "{n} marks", n).format(n=n)
