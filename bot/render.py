"""Formatting helpers: names, dates and numbers through Babel, in the current locale."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.dates import format_datetime as babel_datetime
from babel.numbers import format_decimal

from bot.i18n import current_locale, ngettext
from bot.i18n import gettext as _
from core.models import Child, Role
from core.services.grades import ABOVE, BELOW, LEVEL, TOP_QUARTER, Standing


def locale() -> str:
    return current_locale()


def _pattern(skeleton: str) -> str:
    """The project's own date pattern for a skeleton, part of the translation like
    ``long_day``'s: only the names of months and weekdays come from Babel's CLDR data, never
    its choice of order, punctuation or spaces, which change between Babel releases."""
    match skeleton:
        case "MMMMd":
            return _("MMMM d")
        case "MMMd":
            return _("MMM d")
        case "MMMEd":
            return _("EEE, MMM d")
        case "yMMMM":
            return _("LLLL y")
        case "yMMMd":
            return _("MMM d, y")
        case "EEE":
            return "EEE"
    raise ValueError(f"no date pattern for the skeleton {skeleton!r}")


def day(d: date, skeleton: str = "MMMMd") -> str:
    """A date in the reader's language and order: «27 ноября», «November 27»; ``skeleton``
    names the fields (``MMMd``: «27 нояб.», «Nov 27»; ``MMMEd``: «пт, 27 нояб.»; ``yMMMM``:
    «ноябрь 2026»; ``yMMMd``; ``EEE``: «пт», «Fri»)."""
    return format_date(d, _pattern(skeleton), locale=locale())


def days(start: date, end: date, skeleton: str = "MMMd") -> str:
    """A span of days, the project's one wording in every language: within a month the days
    joined by an en dash, the month written once («23–27 нояб.», «Nov 23–27», «25–27 ноября»);
    across months two whole days around a spaced en dash («30 нояб. – 4 дек.», «Nov 30 – Dec
    4»). The punctuation is ours, not the CLDR interval format of whichever Babel is installed:
    only the day as Babel writes it (``skeleton``) comes from there."""
    if start == end:
        return day(start, skeleton)
    if (start.year, start.month) == (end.year, end.month) and start < end:
        last = day(end, skeleton)
        number = re.search(rf"(?<!\d){end.day}(?!\d)", last)
        if number:
            return f"{last[:number.start()]}{start.day}–{end.day}{last[number.end():]}"
    return f"{day(start, skeleton)} – {day(end, skeleton)}"


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


def average(value: float | None) -> str:
    """An average with two decimals in the reader's notation: «4,38», «4.38»; «—» for none."""
    if value is None:
        return "—"
    return format_decimal(round(value, 2), format="0.00", locale=locale())


def decimal(value: float) -> str:
    """A number with as many decimals as it has (up to three): «4», «4,5», «3,5»."""
    return format_decimal(value, locale=locale())


def quoted(text: str) -> str:
    """A quotation in the reader's marks: «…» in Russian, “…” in English."""
    return _("«{text}»").format(text=text)


def moment(m: datetime, tz: ZoneInfo, style: str = "day") -> str:
    """A moment in school time, its pattern part of the translation like ``day``'s: ``day``
    «20 ноября, 15:30», «Nov 20, 15:30» (what was edited or signed when); ``short`` «20 нояб.,
    15:30», «Nov 20, 15:30» (the lines of a log); ``time`` «15:30»."""
    match style:
        case "day":
            pattern = _("MMM d, HH:mm")
        case "short":
            # Another msgid for the same English: Russian writes the month whole above.
            pattern = _("LLL d, HH:mm")
        case "time":
            pattern = "HH:mm"
        case _:
            raise ValueError(f"no moment style {style!r}")
    return babel_datetime(m, pattern, tzinfo=tz, locale=locale())


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


def mark_shown(shown: str | int | None, scale: str | None = None) -> str:
    """A mark as the school shows it: «4-», «5/4», «зачёт»; on a 10- or 100-point scale with
    it («8 из 10»)."""
    text = str(shown) if shown is not None else "—"
    if scale in ("10", "100"):
        return _("{mark} of {scale}").format(mark=text, scale=scale)
    return text


def days_left(n: int) -> str:
    if n <= 0:
        return _("last day")
    return ngettext("{n} day left", "{n} days left", n).format(n=n)


def position_text(standing: Standing) -> str:
    """«выше среднего по классу»: where the child stands, without anyone else's marks."""
    if standing.position == TOP_QUARTER:
        return _("in the top quarter of the class")
    if standing.position == ABOVE:
        return _("above the class average")
    if standing.position == BELOW:
        return _("below the class average")
    assert standing.position == LEVEL
    return _("at the class average")
