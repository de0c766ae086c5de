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

from bot import render
from bot.callbacks import AbsenceCb
from bot.filters import NOT_COMMAND
from bot.i18n import gettext as _
from bot.i18n import ngettext
from bot.middlewares import RememberScreen
from bot.states import AbsenceStates as S
from bot.ui import edit_in_place
from core.errors import AccessDenied, InvalidDateRange, NoticeNotCancellable, NoticeOverlap
from core.models import Child, Viewer
from core.services.absence import MAX_COMMENT, AbsenceService, Notice, Reason
from core.services.access import AccessService
from core.services.timetable import TimetableService


def create_router() -> Router:
    router = Router(name="absence")
    router.message.register(cmd_absence, Command("absence"))
    router.callback_query.middleware(RememberScreen())
    cb = router.callback_query.register
    cb(on_list, AbsenceCb.filter(F.a == "list"))
    cb(on_cancel_notice, AbsenceCb.filter(F.a == "cancel"))
    cb(on_cancel_notice_yes, AbsenceCb.filter(F.a == "cancel_yes"))
    cb(on_noop, AbsenceCb.filter(F.a == "noop"))
    cb(on_back, StateFilter(S.mode, S.start, S.end, S.lessons, S.reason, S.comment, S.confirm),
       AbsenceCb.filter(F.a == "back"))
    cb(on_child, StateFilter(S.child), AbsenceCb.filter(F.a == "child"))
    cb(on_mode, StateFilter(S.mode), AbsenceCb.filter(F.a == "mode"))
    cb(on_month, StateFilter(S.start, S.end), AbsenceCb.filter(F.a == "month"))
    cb(on_day, StateFilter(S.start, S.end), AbsenceCb.filter(F.a == "day"))
    cb(on_range, StateFilter(S.start), AbsenceCb.filter(F.a == "range"))
    cb(on_lesson, StateFilter(S.lessons), AbsenceCb.filter(F.a == "lesson"))
    cb(on_lessons_done, StateFilter(S.lessons), AbsenceCb.filter(F.a == "done"))
    cb(on_reason, StateFilter(S.reason), AbsenceCb.filter(F.a == "reason"))
    cb(on_skip_comment, StateFilter(S.comment), AbsenceCb.filter(F.a == "skip"))
    cb(on_send, StateFilter(S.confirm), AbsenceCb.filter(F.a == "send"))
    cb(on_quit, StateFilter(S.confirm), AbsenceCb.filter(F.a == "quit"))
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


def _back() -> list[InlineKeyboardButton]:
    return [_btn(_("« Back"), "back")]


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


def period_text(start: date, end: date, lessons: tuple[int, ...] | list[int],
                subjects: dict[int, str] | None = None, after_for: bool = False) -> str:
    """«среда, 25 ноября», «25–27 ноября», «вторник, 24 ноября, уроки 2 (Физика), 3
    (Химия)»; ``after_for``: the words follow «на» (a weekday in the accusative)."""
    day = render.for_day(start) if after_for else render.long_day(start)
    if lessons:
        subjects = subjects or {}
        numbers = ", ".join(f"{n} ({_h(subjects[n])})" if subjects.get(n) else str(n)
                            for n in sorted(lessons))
        return ngettext("{day}, lesson {numbers}", "{day}, lessons {numbers}",
                        len(lessons)).format(day=day, numbers=numbers)
    if start == end:
        return day
    return render.days(start, end, "MMMMd")


def _subjects(data: dict[str, Any]) -> dict[int, str]:
    return {int(k[0]): str(k[1]) for k in data.get("known") or []}


# -- calendar -------------------------------------------------------------------------------


def month_keyboard(year: int, month: int, first: date, last: date, start: date | None,
                   extra: list[list[InlineKeyboardButton]] | None = None,
                   back: bool = True) -> InlineKeyboardMarkup:
    """A month to pick a school day from: no Sundays, no day outside the window (or before the
    first day picked), and no week without a day to pick."""
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
    heads = [_btn(render.day(monday + timedelta(days=i), "EEE"), "noop") for i in range(7)]
    rows = [nav, heads]
    for week in calendar.Calendar().monthdatescalendar(year, month):
        row = []
        for d in week:
            if (d.month != month or not first <= d <= last or (start and d < start)
                    or d.weekday() == 6):
                row.append(_btn(" ", "noop"))
            else:
                label = f"[{d.day}]" if d == start else str(d.day)
                row.append(_btn(label, "day", d.toordinal()))
        if any(b.text.strip() for b in row):
            rows.append(row)
    rows += extra or []
    if back:
        rows.append(_back())
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _edit(callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    await edit_in_place(callback, text, markup)


# -- steps ------------------------------------------------------------------------------------


def children_screen(children: list[Child]) -> tuple[str, InlineKeyboardMarkup]:
    return _("📝 Absence notice. Which child will be away?"), _kb(
        *[[_btn(render.child_line(c), "child", c.id)] for c in children],
        [_btn(_("📋 My notices"), "list")])


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
        sent = await message.answer(mode_text(children[0].name.short),
                                    reply_markup=mode_keyboard(False), parse_mode="HTML")
    else:
        await state.set_state(S.child)
        text, markup = children_screen(children)
        sent = await message.answer(text, reply_markup=markup)
    await state.update_data(several=len(children) > 1, screen=sent.message_id)


def mode_text(child_name: str) -> str:
    return _("📝 Absence notice for {child}. Will they miss whole days or some lessons of one"
             " day?").format(child=f"<b>{_h(child_name)}</b>")


def mode_keyboard(back: bool) -> InlineKeyboardMarkup:
    return _kb([_btn(_("📅 A day or several days"), "mode", "days")],
               [_btn(_("🕘 Some lessons of one day"), "mode", "lessons")],
               [_btn(_("📋 My notices"), "list")], _back() if back else [])


async def on_child(callback: CallbackQuery, callback_data: AbsenceCb, viewer: Viewer,
                   state: FSMContext) -> None:
    child = _guardian_child(viewer, callback_data.v)
    await state.update_data(child=child.id, child_name=child.name.short)
    await state.set_state(S.mode)
    await _edit(callback, mode_text(child.name.short), mode_keyboard(True))


def _guardian_child(viewer: Viewer, raw: str) -> Child:
    """A child id from a button: data from the network, checked on every use."""
    if not raw.isdigit():
        raise AccessDenied()
    return AccessService.require_guardian(viewer, int(raw))


def _first_step_text(data: dict[str, Any], first: date, last: date) -> str:
    if data.get("mode") == "lessons":
        return _("Pick the day (from {first} to {last}).").format(
            first=render.day(first), last=render.day(last))
    return _("Pick the first day of the absence (from {first} to {last}).").format(
        first=render.day(first), last=render.day(last))


async def _show_calendar(callback: CallbackQuery, absence: AbsenceService, data: dict[str, Any],
                         end_step: bool, month: date | None = None) -> None:
    first, last = absence.window()
    start = date.fromisoformat(data["start"]) if end_step and data.get("start") else None
    shown = month or start or absence.today()
    if end_step:
        assert start is not None
        text = _("First day: {day}. Now pick the last day, or press «Only {short}».").format(
            day=render.long_day(start), short=render.day(start))
        extra = [[_btn(_("Only {day}").format(day=render.day(start)), "day",
                       start.toordinal())]]
    else:
        text = _first_step_text(data, first, last)
        extra = None
    await _edit(callback, text, month_keyboard(shown.year, shown.month, first, last, start,
                                               extra))


async def on_mode(callback: CallbackQuery, callback_data: AbsenceCb, absence: AbsenceService,
                  state: FSMContext) -> None:
    mode = "lessons" if callback_data.v == "lessons" else "days"
    await state.update_data(mode=mode, start=None, lessons=[], known=[])
    await state.set_state(S.start)
    await _show_calendar(callback, absence, await state.get_data(), end_step=False)


async def on_month(callback: CallbackQuery, callback_data: AbsenceCb, absence: AbsenceService,
                   state: FSMContext) -> None:
    month = date.fromordinal(int(callback_data.v)) if callback_data.v.isdigit() else None
    end_step = await state.get_state() == S.end.state
    await _show_calendar(callback, absence, await state.get_data(), end_step, month)


def _pickable(callback: CallbackQuery, absence: AbsenceService, day: date | None
              ) -> str | None:
    """Why ``day`` cannot be picked, or None."""
    first, last = absence.window()
    if day is None or not first <= day <= last:
        return _("Pick a day from {first} to {last}.").format(
            first=render.day(first), last=render.day(last))
    if day.weekday() == 6:
        return _("There are no lessons on Sunday: please pick another day.")
    return None


async def on_day(callback: CallbackQuery, callback_data: AbsenceCb, absence: AbsenceService,
                 timetable: TimetableService, viewer: Viewer, state: FSMContext) -> None:
    data = await state.get_data()
    day = date.fromordinal(int(callback_data.v)) if callback_data.v.isdigit() else None
    problem = _pickable(callback, absence, day)
    if problem is not None or day is None:
        await callback.answer(problem, show_alert=True)
        return
    if await state.get_state() == S.start.state:
        await state.update_data(start=day.isoformat())
        if data.get("mode") == "lessons":
            if await _taken(callback, absence, viewer, state, day, day, whole_days_only=True):
                return
            await _ask_lessons(callback, viewer, timetable, absence, state, day)
            return
        await state.set_state(S.end)
        await _show_calendar(callback, absence, await state.get_data(), end_step=True,
                             month=day)
        return
    start = date.fromisoformat(data["start"])
    if day < start:
        await callback.answer(_("The last day cannot be before the first one."), show_alert=True)
        return
    if await _taken(callback, absence, viewer, state, start, day):
        return
    await state.update_data(end=day.isoformat())
    await _ask_reason(callback, state)


async def _taken(callback: CallbackQuery, absence: AbsenceService, viewer: Viewer,
                 state: FSMContext, start: date, end: date,
                 whole_days_only: bool = False) -> bool:
    """Days another notice already covers are explained at once, with the free ones offered;
    True when that happened."""
    data = await state.get_data()
    taken = await absence.overlapping(viewer, int(data["child"]), start, end)
    if whole_days_only:  # some lessons of a day: only a notice for the whole day is in the way
        taken = [n for n in taken if not n.lessons]
    if not taken:
        return False
    other = taken[0]
    free = absence.free_spans(start, end, taken) if not whole_days_only else []
    text = _("There is already a notice for {period} ({reason}).").format(
        period=period_text(other.start, other.end, (), after_for=True),
        reason=reason_name(other.reason))
    if free:
        text += " " + _("The free days are below; or pick other dates.")
    else:
        text += " " + _("Pick other dates, or cancel that notice in «My notices».")
    first, last = absence.window()
    await state.update_data(start=None, end=None, lessons=[])
    await state.set_state(S.start)
    extra = [[_btn(render.days(a, b, "MMMMd"), "range",
                   f"{a.toordinal()}_{b.toordinal()}")] for a, b in free[:5]]
    if not free:
        extra = [[_btn(_("📋 My notices"), "list")]]
    await _edit(callback, text, month_keyboard(start.year, start.month, first, last, None,
                                               extra))
    return True


async def on_range(callback: CallbackQuery, callback_data: AbsenceCb, absence: AbsenceService,
                   viewer: Viewer, state: FSMContext) -> None:
    """A free run of days offered after an overlap: the notice covers just those."""
    first_raw, _sep, last_raw = callback_data.v.partition("_")
    start, end = date.fromordinal(int(first_raw)), date.fromordinal(int(last_raw))
    problem = _pickable(callback, absence, start) or _pickable(callback, absence, end)
    if problem is None and end < start:
        problem = _("The last day cannot be before the first one.")
    if problem is not None:
        await callback.answer(problem, show_alert=True)
        return
    if await _taken(callback, absence, viewer, state, start, end):
        return
    await state.update_data(mode="days", start=start.isoformat(), end=end.isoformat(),
                            lessons=[], known=[])
    await _ask_reason(callback, state)


async def _ask_lessons(callback: CallbackQuery, viewer: Viewer, timetable: TimetableService,
                       absence: AbsenceService, state: FSMContext, day: date) -> None:
    data = await state.get_data()
    child = _guardian_child(viewer, str(data["child"]))
    [entry] = await timetable.day([child], day)
    lessons = [lesson for lesson in entry.lessons if not lesson.cancelled]
    if not lessons:
        if await _taken(callback, absence, viewer, state, day, day):
            return
        await state.update_data(mode="days", end=day.isoformat(), lessons=[], known=[],
                                unknown_day=True)
        # One answer per callback: the alert goes with the next screen.
        await _ask_reason(callback, state, alert=_(
            "The timetable of that day is not known: the notice will cover the whole day."))
        return
    known = [[x.number, x.subject, f"{x.start:%H:%M}", f"{x.end:%H:%M}"] for x in lessons]
    await state.update_data(end=day.isoformat(), lessons=[], known=known)
    await state.set_state(S.lessons)
    await _edit(callback, *lessons_screen(day, known, []))


def lessons_screen(day: date, known: list[list[Any]], chosen: list[int]
                   ) -> tuple[str, InlineKeyboardMarkup]:
    rows = []
    for number, subject, *span in known:
        label = f"{number}. {subject}" + (f", {span[0]}–{span[1]}" if len(span) == 2 else "")
        rows.append([_btn(("✅ " if number in chosen else "▫️ ") + label, "lesson", number)])
    rows.append([_btn(_("Done"), "done")])
    rows.append(_back())
    text = render.capitalized(_("{day}: tick the lessons the child will miss, then press"
                                " «Done».").format(day=render.long_day(day)))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def on_lesson(callback: CallbackQuery, callback_data: AbsenceCb, state: FSMContext) -> None:
    data = await state.get_data()
    known = {k[0] for k in data.get("known", [])}
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
                         data.get("lessons") or [], _subjects(data))
    await edit_in_place(callback, render.capitalized(
        _("{period}. What is the reason?").format(period=period)),
                        _kb(*[[_btn(reason_name(r), "reason", r.value)] for r in Reason],
                            _back()),
                        answer=alert, alert=alert is not None)


def comment_keyboard() -> InlineKeyboardMarkup:
    return _kb([_btn(_("No comment"), "skip")], _back())


def comment_question() -> str:
    return _("Add a comment for the school (up to {limit} characters), or press"
             " «No comment».").format(limit=MAX_COMMENT)


async def on_reason(callback: CallbackQuery, callback_data: AbsenceCb, state: FSMContext) -> None:
    try:
        reason = Reason(callback_data.v)
    except ValueError:
        await callback.answer(_("This button is out of date."))
        return
    await state.update_data(reason=reason.value)
    await state.set_state(S.comment)
    await _edit(callback, comment_question(), comment_keyboard())


async def on_comment(message: Message, state: FSMContext) -> None:
    text = (message.text or "").strip()
    if len(text) > MAX_COMMENT:
        sent = await message.answer(ngettext(
            "The comment is {length} character long; please keep it within {limit}.",
            "The comment is {length} characters long; please keep it within {limit}.",
            len(text)).format(length=len(text), limit=MAX_COMMENT),
            reply_markup=comment_keyboard())
        await state.update_data(screen=sent.message_id)
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
            data.get("lessons") or [], _subjects(data))),
        _("Reason: {reason}").format(reason=reason_name(Reason(data["reason"]))),
    ]
    if data.get("comment"):
        lines.append(_("Comment: «{comment}»").format(comment=_h(data["comment"])))
    return "\n".join(lines)


async def _confirm(message: Message, state: FSMContext, edit: bool = False) -> None:
    await state.set_state(S.confirm)
    data = await state.get_data()
    markup = _kb([_btn(_("✅ Send to the school"), "send")],
                 [_btn(_("« Back"), "back"), _btn(_("✖️ Cancel"), "quit")])
    if edit:
        await message.edit_text(summary_text(data), reply_markup=markup, parse_mode="HTML")
    else:
        sent = await message.answer(summary_text(data), reply_markup=markup, parse_mode="HTML")
        await state.update_data(screen=sent.message_id)


async def on_back(callback: CallbackQuery, viewer: Viewer, absence: AbsenceService,
                  state: FSMContext) -> None:
    """One step back, with what was chosen there kept."""
    current = await state.get_state()
    data = await state.get_data()
    if current == S.mode.state:
        if not data.get("several"):
            await callback.answer()
            return
        await state.set_state(S.child)
        await _edit(callback, *children_screen(absence.children(viewer)))
    elif current == S.start.state:
        await state.set_state(S.mode)
        await _edit(callback, mode_text(data["child_name"]), mode_keyboard(
            bool(data.get("several"))))
    elif current in (S.end.state, S.lessons.state):
        await state.set_state(S.start)
        await _show_calendar(callback, absence, data, end_step=False,
                             month=date.fromisoformat(data["start"]) if data.get("start")
                             else None)
    elif current == S.reason.state:
        if data.get("known"):
            await state.set_state(S.lessons)
            await _edit(callback, *lessons_screen(date.fromisoformat(data["start"]),
                                                  data["known"], data.get("lessons") or []))
        elif data.get("unknown_day"):
            await state.update_data(mode="lessons", unknown_day=False)
            await state.set_state(S.start)
            await _show_calendar(callback, absence, await state.get_data(), end_step=False,
                                 month=date.fromisoformat(data["start"]))
        else:
            await state.set_state(S.end)
            await _show_calendar(callback, absence, data, end_step=True)
    elif current == S.comment.state:
        await _ask_reason(callback, state)
    else:  # the confirmation
        await state.set_state(S.comment)
        await _edit(callback, comment_question(), comment_keyboard())


async def on_quit(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await _edit(callback, _("The notice was not sent."), None)


async def on_send(callback: CallbackQuery, viewer: Viewer, absence: AbsenceService,
                  state: FSMContext) -> None:
    data = await state.get_data()
    try:
        notice = await absence.file(
            viewer, int(data["child"]), date.fromisoformat(data["start"]),
            date.fromisoformat(data["end"]), tuple(data.get("lessons") or ()),
            Reason(data["reason"]), data.get("comment", ""))
    except NoticeOverlap as exc:  # filed meanwhile (another device, another parent)
        await state.update_data(start=None, end=None, lessons=[], known=[])
        await state.set_state(S.start)
        first, last = absence.window()
        today = absence.today()
        text = " ".join([
            _("There is already a notice for {period} ({reason}).").format(
                period=period_text(exc.start, exc.end, (), after_for=True),
                reason=reason_name(Reason(exc.reason))),
            _("Pick other dates, or cancel that notice in «My notices»."),
        ])
        await edit_in_place(callback, text, month_keyboard(
            today.year, today.month, first, last, None, [[_btn(_("📋 My notices"), "list")]]))
        return
    except InvalidDateRange:
        await state.update_data(start=None, end=None, lessons=[], known=[])
        await state.set_state(S.start)
        first, last = absence.window()
        today = absence.today()
        await edit_in_place(
            callback, _("These dates can no longer be filed; please pick them again."),
            month_keyboard(today.year, today.month, first, last, None))
        return
    await state.clear()
    await _edit(callback, receipt_text(notice, _subjects(data)), None)


def receipt_text(notice: Notice, subjects: dict[int, str] | None = None) -> str:
    return "\n".join([
        _("✅ Notice No. {number} is sent to the school.").format(number=notice.id),
        _("{child}: {period}, {reason}.").format(
            child=_h(notice.child_name), period=period_text(notice.start, notice.end,
                                                            notice.lessons, subjects),
            reason=reason_name(notice.reason).split(" ", 1)[-1].lower()),
        (ngettext("Absence marks of this lesson will show as excused.",
                  "Absence marks of these lessons will show as excused.", len(notice.lessons))
         if notice.lessons else
         _("Absence marks on that day will show as excused.") if notice.start == notice.end
         else _("Absence marks on these days will show as excused."))
        + " " + _("/absence lists and cancels notices."),
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
            line += " · " + render.quoted(_h(n.comment))
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
    """Asked once before anything ends."""
    if not callback_data.v.isdigit():
        raise AccessDenied()
    notice = next((n for n in await absence.mine(viewer) if n.id == int(callback_data.v)
                   and n.start > absence.today()), None)
    if notice is None:
        raise NoticeNotCancellable(notice_id=int(callback_data.v))
    await _edit(callback, _("Cancel notice No. {number} ({child} · {period})?").format(
        number=notice.id, child=_h(notice.child_name),
        period=period_text(notice.start, notice.end, notice.lessons)),
        _kb([_btn(_("Yes, cancel it"), "cancel_yes", notice.id)],
            [_btn(_("« Back"), "list")]))


async def on_cancel_notice_yes(callback: CallbackQuery, callback_data: AbsenceCb,
                               viewer: Viewer, absence: AbsenceService) -> None:
    if not callback_data.v.isdigit():
        raise AccessDenied()
    notice = await absence.cancel(viewer, int(callback_data.v))
    text, markup = list_screen(await absence.mine(viewer), absence.today())
    await edit_in_place(callback, text, markup,
                        answer=_("Notice No. {number} is cancelled.").format(number=notice.id))


async def on_noop(callback: CallbackQuery) -> None:
    await callback.answer()
