"""/absence: a parent files an absence notice — child, days or lessons, reason, comment, confirm.

Every step edits the same message. A wrong input (text where a button is expected, a comment too
long, a day out of range) gets a friendly re-ask; /cancel leaves at any step.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n import gettext as _

from bot import render
from bot.callbacks import AbsenceCb
from bot.filters import NOT_COMMAND
from bot.states import AbsenceStates as S
from bot.ui import edit_in_place
from core.errors import AccessDenied, InvalidDateRange, NoticeOverlap
from core.models import Child, Viewer
from core.services.absence import MAX_COMMENT, AbsenceService, Notice, Reason
from core.services.access import AccessService
from core.services.timetable import TimetableService


def create_router() -> Router:
    router = Router(name="absence")
    router.message.register(cmd_absence, Command("absence"))
    cb = router.callback_query.register
    cb(on_list, AbsenceCb.filter(F.a == "list"))
    cb(on_cancel_notice, AbsenceCb.filter(F.a == "cancel"))
    cb(on_noop, AbsenceCb.filter(F.a == "noop"))
    cb(on_child, StateFilter(S.child), AbsenceCb.filter(F.a == "child"))
    cb(on_mode, StateFilter(S.mode), AbsenceCb.filter(F.a == "mode"))
    cb(on_month, StateFilter(S.start, S.end), AbsenceCb.filter(F.a == "month"))
    cb(on_day, StateFilter(S.start, S.end), AbsenceCb.filter(F.a == "day"))
    cb(on_lesson, StateFilter(S.lessons), AbsenceCb.filter(F.a == "lesson"))
    cb(on_lessons_done, StateFilter(S.lessons), AbsenceCb.filter(F.a == "done"))
    cb(on_reason, StateFilter(S.reason), AbsenceCb.filter(F.a == "reason"))
    cb(on_skip_comment, StateFilter(S.comment), AbsenceCb.filter(F.a == "skip"))
    cb(on_send, StateFilter(S.confirm), AbsenceCb.filter(F.a == "send"))
    # A command is never taken for an answer: it goes to its own handler.
    router.message.register(on_comment, StateFilter(S.comment), F.text, NOT_COMMAND)
    router.message.register(
        on_not_a_button,
        StateFilter(S.child, S.mode, S.start, S.end, S.lessons, S.reason, S.confirm, S.comment),
        NOT_COMMAND,
    )
    return router


def _h(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _btn(text: str, action: str, value: object = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=AbsenceCb(a=action, v=str(value)).pack())


def _kb(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[r for r in rows if r])


REASONS = {
    Reason.ILLNESS: lambda: _("🤒 Illness"),
    Reason.FAMILY: lambda: _("👨‍👩‍👧 Family circumstances"),
    Reason.MEDICAL: lambda: _("🏥 Medical appointment"),
    Reason.OTHER: lambda: _("✏️ Other"),
}


def reason_name(reason: Reason) -> str:
    return REASONS[reason]()


def period_text(start: date, end: date, lessons: tuple[int, ...] | list[int]) -> str:
    if lessons:
        numbers = ", ".join(str(n) for n in sorted(lessons))
        return _("{day}, lessons {numbers}").format(day=render.long_day(start), numbers=numbers)
    if start == end:
        return render.long_day(start)
    return f"{render.day(start)} – {render.day(end)}"


# -- calendar -------------------------------------------------------------------------------


def month_keyboard(year: int, month: int, first: date, last: date, start: date | None,
                   extra: list[InlineKeyboardButton] | None = None) -> InlineKeyboardMarkup:
    title = render.capitalized(render.day(date(year, month, 1), "yMMMM"))
    prev_month = (date(year, month, 1) - timedelta(days=1)).replace(day=1)
    next_month = (date(year, month, 28) + timedelta(days=4)).replace(day=1)
    nav = [
        _btn("‹", "month", prev_month.toordinal()) if prev_month >= first.replace(day=1)
        else _btn(" ", "noop"),
        _btn(title, "noop"),
        _btn("›", "month", next_month.toordinal()) if next_month <= last
        else _btn(" ", "noop"),
    ]
    monday = date(2024, 1, 1)
    heads = [_btn(render.day(monday + timedelta(days=i), "EEEEEE"), "noop") for i in range(7)]
    rows = [nav, heads]
    for week in calendar.Calendar().monthdatescalendar(year, month):
        row = []
        for d in week:
            if d.month != month or not first <= d <= last or (start and d < start):
                row.append(_btn(" ", "noop"))
            else:
                label = f"[{d.day}]" if d == start else str(d.day)
                row.append(_btn(label, "day", d.toordinal()))
        rows.append(row)
    if extra:
        rows.append(extra)
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _edit(callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    await edit_in_place(callback, text, markup)


# -- steps ------------------------------------------------------------------------------------


async def cmd_absence(message: Message, viewer: Viewer, absence: AbsenceService,
                      state: FSMContext) -> None:
    children = absence.children(viewer)
    if not children:
        await state.clear()
        await message.answer(_("Only parents (legal guardians) can file absence notices."))
        return
    await state.clear()
    if len(children) == 1:
        await state.update_data(child=children[0].id, child_name=children[0].name.short)
        await state.set_state(S.mode)
        await message.answer(mode_text(children[0].name.short), reply_markup=mode_keyboard(),
                             parse_mode="HTML")
        return
    await state.set_state(S.child)
    await message.answer(
        _("📝 Absence notice. Which child will be away?"),
        reply_markup=_kb(*[[_btn(render.child_line(c), "child", c.id)] for c in children],
                         [_btn(_("📋 My notices"), "list")]),
    )


def mode_text(child_name: str) -> str:
    return _("📝 Absence notice for {child}. Will they miss whole days or some lessons of one"
             " day?").format(child=f"<b>{_h(child_name)}</b>")


def mode_keyboard() -> InlineKeyboardMarkup:
    return _kb([_btn(_("📅 A day or several days"), "mode", "days")],
               [_btn(_("🕘 Some lessons of one day"), "mode", "lessons")],
               [_btn(_("📋 My notices"), "list")])


async def on_child(callback: CallbackQuery, callback_data: AbsenceCb, viewer: Viewer,
                   state: FSMContext) -> None:
    child = _guardian_child(viewer, callback_data.v)
    await state.update_data(child=child.id, child_name=child.name.short)
    await state.set_state(S.mode)
    await _edit(callback, mode_text(child.name.short), mode_keyboard())


def _guardian_child(viewer: Viewer, raw: str) -> Child:
    """A child id from a button: data from the network, checked on every use."""
    if not raw.isdigit():
        raise AccessDenied()
    return AccessService.require_guardian(viewer, int(raw))


async def _show_calendar(callback: CallbackQuery, absence: AbsenceService, data: dict[str, Any],
                         end_step: bool, month: date | None = None) -> None:
    first, last = absence.window()
    start = date.fromisoformat(data["start"]) if end_step and data.get("start") else None
    shown = month or start or absence.today()
    if end_step:
        assert start is not None
        text = _("First day: {day}. Now pick the last day, or press «Only this day».").format(
            day=render.long_day(start))
        extra = [_btn(_("Only {day}").format(day=render.day(start)), "day", start.toordinal())]
    elif data.get("mode") == "lessons":
        text = _("Pick the day (from {first} to {last}).").format(
            first=render.day(first), last=render.day(last))
        extra = None
    else:
        text = _("Pick the first day of the absence (from {first} to {last}).").format(
            first=render.day(first), last=render.day(last))
        extra = None
    await _edit(callback, text, month_keyboard(shown.year, shown.month, first, last, start,
                                               extra))


async def on_mode(callback: CallbackQuery, callback_data: AbsenceCb, absence: AbsenceService,
                  state: FSMContext) -> None:
    mode = "lessons" if callback_data.v == "lessons" else "days"
    await state.update_data(mode=mode, start=None, lessons=[])
    await state.set_state(S.start)
    await _show_calendar(callback, absence, await state.get_data(), end_step=False)


async def on_month(callback: CallbackQuery, callback_data: AbsenceCb, absence: AbsenceService,
                   state: FSMContext) -> None:
    month = date.fromordinal(int(callback_data.v)) if callback_data.v.isdigit() else None
    end_step = await state.get_state() == S.end.state
    await _show_calendar(callback, absence, await state.get_data(), end_step, month)


async def on_day(callback: CallbackQuery, callback_data: AbsenceCb, absence: AbsenceService,
                 timetable: TimetableService, viewer: Viewer, state: FSMContext) -> None:
    data = await state.get_data()
    first, last = absence.window()
    day = date.fromordinal(int(callback_data.v)) if callback_data.v.isdigit() else None
    if day is None or not first <= day <= last:
        await callback.answer(_("Pick a day from {first} to {last}.").format(
            first=render.day(first), last=render.day(last)), show_alert=True)
        return
    if await state.get_state() == S.start.state:
        await state.update_data(start=day.isoformat())
        if data.get("mode") == "lessons":
            await _ask_lessons(callback, viewer, timetable, state, day)
            return
        await state.set_state(S.end)
        await _show_calendar(callback, absence, await state.get_data(), end_step=True,
                             month=day)
        return
    start = date.fromisoformat(data["start"])
    if day < start:
        await callback.answer(_("The last day cannot be before the first one."), show_alert=True)
        return
    await state.update_data(end=day.isoformat())
    await _ask_reason(callback, state)


async def _ask_lessons(callback: CallbackQuery, viewer: Viewer, timetable: TimetableService,
                       state: FSMContext, day: date) -> None:
    data = await state.get_data()
    child = _guardian_child(viewer, str(data["child"]))
    [entry] = await timetable.day([child], day)
    lessons = [lesson for lesson in entry.lessons if not lesson.cancelled]
    if not lessons:
        await state.update_data(mode="days", end=day.isoformat(), lessons=[])
        # One answer per callback: the alert goes with the next screen.
        await _ask_reason(callback, state, alert=_(
            "The timetable of that day is not known: the notice will cover the whole day."))
        return
    await state.update_data(end=day.isoformat(), lessons=[],
                            known=[[x.number, x.subject] for x in lessons])
    await state.set_state(S.lessons)
    await _edit(callback, *lessons_screen(day, [[x.number, x.subject] for x in lessons], []))


def lessons_screen(day: date, known: list[list[Any]], chosen: list[int]
                   ) -> tuple[str, InlineKeyboardMarkup]:
    rows = [[_btn(("✅ " if number in chosen else "▫️ ") + f"{number}. {subject}", "lesson",
                  number)] for number, subject in known]
    rows.append([_btn(_("Done"), "done")])
    text = _("{day}: tick the lessons the child will miss, then press «Done».").format(
        day=render.long_day(day))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def on_lesson(callback: CallbackQuery, callback_data: AbsenceCb, state: FSMContext) -> None:
    data = await state.get_data()
    known = {n for n, _s in data.get("known", [])}
    number = int(callback_data.v) if callback_data.v.isdigit() else -1
    if number not in known:
        await callback.answer(_("This button is out of date."))
        return
    chosen = set(data.get("lessons", []))
    chosen ^= {number}
    await state.update_data(lessons=sorted(chosen))
    await _edit(callback, *lessons_screen(date.fromisoformat(data["start"]), data["known"],
                                          sorted(chosen)))


async def on_lessons_done(callback: CallbackQuery, state: FSMContext) -> None:
    if not (await state.get_data()).get("lessons"):
        await callback.answer(_("Tick at least one lesson."), show_alert=True)
        return
    await _ask_reason(callback, state)


async def _ask_reason(callback: CallbackQuery, state: FSMContext,
                      alert: str | None = None) -> None:
    await state.set_state(S.reason)
    data = await state.get_data()
    period = period_text(date.fromisoformat(data["start"]), date.fromisoformat(data["end"]),
                         data.get("lessons") or [])
    await edit_in_place(callback, _("{period}. What is the reason?").format(period=period),
                        _kb(*[[_btn(reason_name(r), "reason", r.value)] for r in Reason]),
                        answer=alert, alert=alert is not None)


async def on_reason(callback: CallbackQuery, callback_data: AbsenceCb, state: FSMContext) -> None:
    try:
        reason = Reason(callback_data.v)
    except ValueError:
        await callback.answer(_("This button is out of date."))
        return
    await state.update_data(reason=reason.value)
    await state.set_state(S.comment)
    await _edit(callback, _("Add a comment for the school (up to {limit} characters), or press"
                            " «No comment».").format(limit=MAX_COMMENT),
                _kb([_btn(_("No comment"), "skip")]))


async def on_comment(message: Message, state: FSMContext) -> None:
    text = (message.text or "").strip()
    if len(text) > MAX_COMMENT:
        await message.answer(_("The comment is {length} characters long; please keep it within"
                               " {limit}.").format(length=len(text), limit=MAX_COMMENT))
        return
    await state.update_data(comment=text)
    await _confirm(message, state)


async def on_skip_comment(callback: CallbackQuery, state: FSMContext) -> None:
    await state.update_data(comment="")
    await callback.answer()
    assert isinstance(callback.message, Message)
    await _confirm(callback.message, state, edit=True)


def summary_text(data: dict[str, Any]) -> str:
    lines = [
        _("Please check the notice:"),
        _("Child: {child}").format(child=_h(data["child_name"])),
        _("When: {period}").format(period=period_text(
            date.fromisoformat(data["start"]), date.fromisoformat(data["end"]),
            data.get("lessons") or [])),
        _("Reason: {reason}").format(reason=reason_name(Reason(data["reason"]))),
    ]
    if data.get("comment"):
        lines.append(_("Comment: «{comment}»").format(comment=_h(data["comment"])))
    return "\n".join(lines)


async def _confirm(message: Message, state: FSMContext, edit: bool = False) -> None:
    await state.set_state(S.confirm)
    data = await state.get_data()
    markup = _kb([_btn(_("✅ Send to the school"), "send")])
    if edit:
        await message.edit_text(summary_text(data), reply_markup=markup, parse_mode="HTML")
    else:
        await message.answer(summary_text(data), reply_markup=markup, parse_mode="HTML")


async def on_send(callback: CallbackQuery, viewer: Viewer, absence: AbsenceService,
                  state: FSMContext) -> None:
    data = await state.get_data()
    try:
        notice = await absence.file(
            viewer, int(data["child"]), date.fromisoformat(data["start"]),
            date.fromisoformat(data["end"]), tuple(data.get("lessons") or ()),
            Reason(data["reason"]), data.get("comment", ""))
    except NoticeOverlap as exc:
        await state.update_data(start=None, end=None, lessons=[])
        await state.set_state(S.start)
        await callback.answer()
        first, last = absence.window()
        today = absence.today()
        text = _("There is already a notice for {period} ({reason}). Pick other dates, or cancel"
                 " that notice in «My notices».").format(
            period=period_text(exc.start, exc.end, ()), reason=reason_name(Reason(exc.reason)))
        assert isinstance(callback.message, Message)
        await callback.message.edit_text(
            text, reply_markup=month_keyboard(today.year, today.month, first, last, None,
                                              [_btn(_("📋 My notices"), "list")]))
        return
    except InvalidDateRange:
        await state.update_data(start=None, end=None, lessons=[])
        await state.set_state(S.start)
        first, last = absence.window()
        today = absence.today()
        await edit_in_place(
            callback, _("These dates can no longer be filed; please pick them again."),
            month_keyboard(today.year, today.month, first, last, None))
        return
    await state.clear()
    await _edit(callback, receipt_text(notice), None)


def receipt_text(notice: Notice) -> str:
    return "\n".join([
        _("✅ Notice No. {number} is sent to the school.").format(number=notice.id),
        _("{child}: {period}, {reason}.").format(
            child=_h(notice.child_name), period=period_text(notice.start, notice.end,
                                                            notice.lessons),
            reason=reason_name(notice.reason).split(" ", 1)[-1].lower()),
        _("Absence marks on these days will show as excused. /absence lists and cancels"
          " notices."),
    ])


async def on_not_a_button(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    if current == S.comment.state:
        await message.answer(_("Please send the comment as text, or press «No comment»."))
        return
    await message.answer(_("Please choose with the buttons above, or send /cancel to stop."))


# -- listing and cancelling ---------------------------------------------------------------


def list_screen(notices: list[Notice], today: date) -> tuple[str, InlineKeyboardMarkup]:
    if not notices:
        return _("You have no current absence notices. /absence files a new one."), _kb()
    lines = [_("📋 Your current absence notices:")]
    rows = []
    for n in notices:
        line = _("No. {number} · {child} · {period} · {reason}").format(
            number=n.id, child=_h(n.child_name), period=period_text(n.start, n.end, n.lessons),
            reason=reason_name(n.reason))
        if n.comment:
            line += f" · «{_h(n.comment)}»"
        lines.append(line)
        if n.start > today:
            rows.append([_btn(_("✖️ Cancel No. {number}").format(number=n.id), "cancel", n.id)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def on_list(callback: CallbackQuery, viewer: Viewer, absence: AbsenceService,
                  state: FSMContext) -> None:
    await state.clear()
    await _edit(callback, *list_screen(await absence.mine(viewer), absence.today()))


async def on_cancel_notice(callback: CallbackQuery, callback_data: AbsenceCb, viewer: Viewer,
                           absence: AbsenceService) -> None:
    if not callback_data.v.isdigit():
        raise AccessDenied()
    notice = await absence.cancel(viewer, int(callback_data.v))
    text, markup = list_screen(await absence.mine(viewer), absence.today())
    await edit_in_place(callback, text, markup,
                        answer=_("Notice No. {number} is cancelled.").format(number=notice.id))


async def on_noop(callback: CallbackQuery) -> None:
    await callback.answer()
