"""/homework and /schedule: a day (or week) of a class, with day-by-day navigation in place."""

from __future__ import annotations

import html
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot import render, ui
from bot.callbacks import FIRST_DAY, LAST_DAY, DayCb
from bot.i18n import gettext as _
from bot.ui import edit_in_place
from core.errors import AccessDenied, NotLinked
from core.models import Child, Viewer
from core.services.dayargs import DayArg, SubjectArg, WeekArg, parse_arg
from core.services.timetable import (
    ChildDay,
    Homework,
    Lesson,
    Link,
    SubjectHomework,
    TimetableService,
)

HOMEWORK, SCHEDULE = "h", "s"


def create_router() -> Router:
    router = Router(name="timetable")
    router.message.register(cmd_homework, Command("homework"))
    router.message.register(cmd_schedule, Command("schedule"))
    router.callback_query.register(on_day, DayCb.filter(F.v.in_({HOMEWORK, SCHEDULE})))
    return router


def _h(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _href(url: str, text: str) -> str:
    """A link; ``text`` is HTML already."""
    return f'<a href="{html.escape(url, quote=True)}">{text}</a>'


def _short_url(url: str, limit: int = 40) -> str:
    """``https://www.example.ru/a/b`` as ``example.ru/a/b``, cut at ``limit`` characters."""
    shown = url.partition("://")[2] or url
    if shown.lower().startswith("www."):
        shown = shown[4:]
    shown = shown.rstrip("/")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def links_line(links: tuple[Link, ...]) -> str:
    """A task's links to materials, on the line under it."""
    return "   🔗 " + " · ".join(_href(x.url, _h(x.title or _short_url(x.url))) for x in links)


def _marks(hw: Homework) -> str:
    """«(optional)», «(individual)» by the subject."""
    marks = "" if hw.required else " " + _("(optional)")
    if hw.personal:
        marks += " " + _("(individual)")
    return marks


def _teacher_parts(lesson: Lesson) -> list[str]:
    if not lesson.teacher_replaced or lesson.cancelled:
        return [_h(lesson.teacher)] if lesson.teacher else []
    parts = [f"<s>{_h(lesson.teacher)}</s>"] if lesson.teacher else []
    if lesson.substitute:
        parts.append(_("substitute: {name}").format(name=_h(lesson.substitute)))
    else:
        parts.append(_("teacher replaced"))
    return parts


def short_day(d: date) -> str:
    return render.day(d, "MMMEd")


def week_of(d: date) -> list[date]:
    monday = d - timedelta(days=d.weekday())
    return [monday + timedelta(days=i) for i in range(6)]


def _child_head(child: Child, several: bool) -> list[str]:
    return [f"<b>{_h(render.child_line(child))}</b>"] if several else []


def homework_lines(day: ChildDay, tz: ZoneInfo, brief: bool = False) -> list[str]:
    lines = []
    for hw in day.homework:
        subject = f"<b>{_h(hw.subject)}</b>" + _marks(hw)
        text = hw.text if not brief or len(hw.text) <= 120 else hw.text[:117] + "…"
        line = f"• {subject}: {_h(text)}"
        if hw.links:
            line += "\n" + links_line(hw.links)
        if not brief:  # «(optional)» stands by the subject already: said once
            edited = _("edited {when}").format(when=render.moment(hw.updated_at, tz))
            required = _("required")
            note = f"{required} · {edited}" if hw.required else edited
            line += f"\n   <i>{note}</i>"
        lines.append(line)  # a task and its note stay in one message
    return lines


def lesson_lines(day: ChildDay, brief: bool = False) -> list[str]:
    lines = []
    for lesson in day.lessons:
        span = f"{lesson.start:%H:%M}–{lesson.end:%H:%M}"
        if brief:
            text = f"{lesson.number}. {_h(lesson.subject)}"
            if lesson.group:
                text += f" ({_h(lesson.group)})"
            lines.append(f"<s>{text}</s>" if lesson.cancelled else text)
            continue
        parts = [f"{span} <b>{_h(lesson.subject)}</b>"]
        if lesson.group:
            parts.append(_h(lesson.group))
        if lesson.room:
            parts.append(_("room {room}").format(room=_h(lesson.room)))
        parts += _teacher_parts(lesson)
        if lesson.remote and not lesson.cancelled:
            online = _("online")
            parts.append("💻 " + (_href(lesson.link, online) if lesson.link else online))
        text = " · ".join(parts)
        if lesson.cancelled:
            text = f"<s>{text}</s> — " + _("cancelled")
        lines.append(f"{lesson.number}. {text}")
    return lines


def day_text(view: str, days: list[ChildDay], tz: ZoneInfo) -> list[str]:
    day = days[0].day
    head = (_("📚 Homework for {day}") if view == HOMEWORK
            else _("🗓 Timetable for {day}")).format(day=render.for_day(day))
    lines = [head]
    several = len(days) > 1
    for entry in days:
        lines.append("")
        lines += _child_head(entry.child, several)
        body = homework_lines(entry, tz) if view == HOMEWORK else lesson_lines(entry)
        if not body:
            body = [_("No homework.") if view == HOMEWORK else _("No lessons.")]
        lines += body
    return lines


def week_text(view: str, weeks: list[list[ChildDay]], tz: ZoneInfo) -> list[str]:
    days = [d.day for d in weeks[0]]
    head = (_("📚 Homework for the week {span}") if view == HOMEWORK
            else _("🗓 Timetable for the week {span}")).format(span=render.days(days[0], days[-1]))
    lines = [head]
    several = len(weeks) > 1
    for week in weeks:
        lines.append("")
        lines += _child_head(week[0].child, several)
        empty = True
        for entry in week:
            body = (homework_lines(entry, tz, brief=True) if view == HOMEWORK
                    else [", ".join(lesson_lines(entry, brief=True))] if entry.lessons else [])
            if body:
                empty = False
                lines.append(f"<u>{short_day(entry.day)}</u>")
                lines += body
        if empty:
            lines.append(_("No homework.") if view == HOMEWORK else _("No lessons."))
    return lines


def _clamp(d: date) -> date:
    """Buttons reach no further than callback data may carry."""
    return date.fromordinal(min(max(d.toordinal(), FIRST_DAY), LAST_DAY))


def keyboard(view: str, child_id: int, day: date, week: bool) -> InlineKeyboardMarkup:
    day = _clamp(day)
    if week:
        prev_day, next_day = _clamp(day - timedelta(days=7)), _clamp(day + timedelta(days=7))
        row = [
            InlineKeyboardButton(text="« " + _("previous week"), callback_data=DayCb(
                v=view, c=child_id, d=prev_day.toordinal(), w=1).pack()),
            InlineKeyboardButton(text=_("day"), callback_data=DayCb(
                v=view, c=child_id, d=day.toordinal()).pack()),
            InlineKeyboardButton(text=_("next week") + " »", callback_data=DayCb(
                v=view, c=child_id, d=next_day.toordinal(), w=1).pack()),
        ]
    else:
        prev_day, next_day = _clamp(day - timedelta(days=1)), _clamp(day + timedelta(days=1))
        row = [
            InlineKeyboardButton(text="« " + short_day(prev_day), callback_data=DayCb(
                v=view, c=child_id, d=prev_day.toordinal()).pack()),
            InlineKeyboardButton(text=_("week"), callback_data=DayCb(
                v=view, c=child_id, d=day.toordinal(), w=1).pack()),
            InlineKeyboardButton(text=short_day(next_day) + " »", callback_data=DayCb(
                v=view, c=child_id, d=next_day.toordinal()).pack()),
        ]
    other = SCHEDULE if view == HOMEWORK else HOMEWORK
    switch = InlineKeyboardButton(
        text=_("🗓 Timetable") if other == SCHEDULE else _("📚 Homework"),
        callback_data=DayCb(v=other, c=child_id, d=day.toordinal(), w=int(week)).pack())
    return InlineKeyboardMarkup(inline_keyboard=[row, [switch]])


def subject_text(found: list[SubjectHomework]) -> list[str]:
    lines: list[str] = []
    for entry in found:
        if lines:
            lines.append("")
        subjects = ", ".join(entry.subjects)
        lines.append(_("📚 {subject} — {child}").format(
            subject=f"<b>{_h(subjects)}</b>", child=_h(render.child_line(entry.child))))
        if not entry.homework:
            lines.append(_("Nothing set from today on."))
        for hw in entry.homework:
            lines.append(_("• by {day}{optional}: {text}").format(
                day=short_day(hw.due), optional=_marks(hw), text=_h(hw.text)))
            if hw.links:
                lines.append(links_line(hw.links))
    return lines


def hint(view: str, text: str) -> str:
    if view == HOMEWORK:
        return _("I did not understand «{text}». Try: /homework tomorrow, /homework fri,"
                 " /homework 24.11, /homework week, /homework math").format(text=_h(text[:50]))
    return _("I did not understand «{text}». Try: /schedule tomorrow, /schedule fri,"
             " /schedule 24.11, /schedule week").format(text=_h(text[:50]))


async def _show(view: str, viewer: Viewer, timetable: TimetableService, child_id: int,
                day: date | None, week: bool) -> tuple[list[str], InlineKeyboardMarkup]:
    children = timetable.visible(viewer, child_id)
    if not children:
        raise AccessDenied() if viewer.is_linked else NotLinked()
    if day is None:
        day = await timetable.default_day(children)
    if week:
        weeks = [await timetable.day([c], d) for c in children for d in week_of(day)]
        per_child = [[w[0] for w in weeks[i : i + 6]] for i in range(0, len(weeks), 6)]
        text = week_text(view, per_child, timetable.tz)
    else:
        text = day_text(view, await timetable.day(children, day), timetable.tz)
    return text, keyboard(view, child_id, day, week)


async def _command(view: str, message: Message, command: CommandObject, viewer: Viewer,
                   timetable: TimetableService) -> None:
    children = timetable.visible(viewer)
    if not children:
        raise AccessDenied() if viewer.is_linked else NotLinked()
    try:
        arg = parse_arg(command.args, timetable.today())
    except ValueError:
        await message.answer(hint(view, command.args or ""), parse_mode="HTML")
        return
    if isinstance(arg, SubjectArg):
        found = await timetable.by_subject(children, arg.query)
        if not found or view == SCHEDULE:
            await message.answer(hint(view, arg.query), parse_mode="HTML")
            return
        await ui.answer(message, subject_text(found))
        return
    day = arg.day if isinstance(arg, DayArg | WeekArg) else None
    text, markup = await _show(view, viewer, timetable, 0, day, isinstance(arg, WeekArg))
    await ui.answer(message, text, markup)


async def cmd_homework(message: Message, command: CommandObject, viewer: Viewer,
                       timetable: TimetableService) -> None:
    await _command(HOMEWORK, message, command, viewer, timetable)


async def cmd_schedule(message: Message, command: CommandObject, viewer: Viewer,
                       timetable: TimetableService) -> None:
    await _command(SCHEDULE, message, command, viewer, timetable)


async def on_day(callback: CallbackQuery, callback_data: DayCb, viewer: Viewer,
                 timetable: TimetableService) -> None:
    day = date.fromordinal(max(1, callback_data.d))
    text, markup = await _show(callback_data.v, viewer, timetable, callback_data.c, day,
                               bool(callback_data.w))
    await edit_in_place(callback, text, markup)
