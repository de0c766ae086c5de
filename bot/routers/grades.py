"""/grades: per-subject weighted averages for a period, and a subject's detail."""

from __future__ import annotations

from datetime import date

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)

from bot import charts, render, ui
from bot.callbacks import GradesCb
from bot.i18n import gettext as _
from bot.i18n import ngettext
from bot.render import average
from bot.ui import edit_in_place
from core.clock import Clock
from core.errors import AccessDenied, NotLinked
from core.models import Child, Scope, Viewer
from core.services.finals import FinalMark, FinalsTable, finals_table, subject_finals
from core.services.grades import (
    GradesService,
    Mark,
    Need,
    Overview,
    Period,
    SubjectDetail,
    school_year,
)

PAGE = 10


def create_router() -> Router:
    router = Router(name="grades")
    router.message.register(cmd_grades, Command("grades"))
    router.callback_query.register(on_children, GradesCb.filter(F.a == "kids"))
    router.callback_query.register(on_overview, GradesCb.filter(F.a == "ov"))
    router.callback_query.register(on_subject, GradesCb.filter(F.a == "sub"))
    router.callback_query.register(on_finals, GradesCb.filter(F.a == "fin"))
    router.callback_query.register(on_subject_chart, GradesCb.filter(F.a == "gc"))
    router.callback_query.register(on_overview_chart, GradesCb.filter(F.a == "oc"))
    return router


def _today(clock: Clock, tz) -> date:
    return clock.now().astimezone(tz).date()


def period_title(period: Period) -> str:
    span = render.days(period.start, period.end)
    if period.is_school_year:
        name = _("School year {start}/{end}").format(
            start=period.start.year, end=str(period.end.year)[-2:]
        )
    else:
        name = period.name
    return f"{name} ({span})"


def mark_text(mark: Mark, today: date | None = None) -> str:
    """A mark in a subject's line: «5×2» (weight 2), «4-», «5/4», «(н/а)» when it does not
    count in the average, «4•» while it carries a dot."""
    text = _html(mark.text)
    if not mark.counted:
        text = f"({text})"
    elif mark.weight > 1:
        text = f"{text}×{mark.weight}"
    if today is not None and mark.dotted(today):
        text += "•"
    return text


def overview_text(ov: Overview) -> list[str]:
    """Lines, a subject's heading and marks in one, so a long overview splits between subjects."""
    lines = [
        _("📊 {child} — {period}").format(child=_html(render.child_line(ov.child)),
                                         period=_html(period_title(ov.period))),
        "",
    ]
    if not ov.subjects:
        lines.append(_("No grades in this period yet."))
    weighted = left_out = dotted = False
    for s in ov.subjects:
        head = f"<b>{_html(s.subject)}</b>"
        if s.average is not None:
            head += " — " + _("{average} ({count})").format(
                average=average(s.average), count=render.marks_count(s.averaged))
        standing = ov.standings.get(s.subject)
        if standing is not None:
            head += " · " + render.position_text(standing)
        if s.open_dots:
            head += " · " + ngettext("{n} open dot", "{n} open dots", s.open_dots).format(
                n=s.open_dots)
        if s.missed:
            head += " · " + ngettext("{n} lesson missed", "{n} lessons missed",
                                     s.missed).format(n=s.missed)
        if s.marks:
            head += "\n" + " ".join(mark_text(m, ov.today) for m in s.marks)
        lines.append(head)
        if s.marks:
            weighted = weighted or any(m.weight > 1 and m.counted for m in s.marks)
            left_out = left_out or any(not m.counted for m in s.marks)
            dotted = dotted or any(m.dotted(ov.today) for m in s.marks)
    notes = []
    if weighted:
        notes.append(_("5×2 — a mark of weight 2. The average is weighted."))
    if left_out:
        notes.append(_("(5) — not counted in the average."))
    if dotted:
        notes.append(_("4• — a mark with a dot: see /dots."))
    if notes:
        lines += ["", "\n".join(notes)]
    return lines


def _html(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def overview_keyboard(ov: Overview, period_index: int, several: bool) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    buttons = [
        InlineKeyboardButton(
            text=s.subject[:40],
            callback_data=GradesCb(a="sub", c=ov.child.id, p=period_index, s=s.key).pack(),
        )
        for s in ov.subjects
    ]
    rows += [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if ov.periods:
        current = ov.periods.index(ov.period) if ov.period in ov.periods else -1
        nav = []
        if current > 0:
            nav.append(InlineKeyboardButton(
                text="« " + ov.periods[current - 1].name,
                callback_data=GradesCb(a="ov", c=ov.child.id, p=current - 1).pack()))
        if 0 <= current < len(ov.periods) - 1:
            nav.append(InlineKeyboardButton(
                text=ov.periods[current + 1].name + " »",
                callback_data=GradesCb(a="ov", c=ov.child.id, p=current + 1).pack()))
        if nav:
            rows.append(nav)
    if any(s.average is not None for s in ov.subjects):
        rows.append([InlineKeyboardButton(
            text=_("📈 Chart"),
            callback_data=GradesCb(a="oc", c=ov.child.id, p=period_index).pack())])
    rows.append([InlineKeyboardButton(text=_("📋 Final marks"),
                                      callback_data=GradesCb(a="fin", c=ov.child.id).pack())])
    if several:
        rows.append([InlineKeyboardButton(text=_("👥 Another child"),
                                          callback_data=GradesCb(a="kids").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _subject_head(d: SubjectDetail, title: str) -> list[str]:
    """A subject's title (``title`` with ``{subject}`` and ``{child}``), period, average and
    class standing: the top of its screen and of its chart's caption."""
    s = d.summary
    lines = [
        title.format(subject=f"<b>{_html(s.subject)}</b>", child=_html(d.child.name.short)),
        _html(period_title(d.period)),
    ]
    if s.average is not None:
        lines.append(_("Average: {average} ({count})").format(
            average=average(s.average), count=render.marks_count(s.averaged)))
    if d.standing is not None:
        lines.append(standing_text(d))
    return lines


def detail_text(d: SubjectDetail, page: int, finals: list[FinalMark] | None = None
                ) -> list[str]:
    """Lines, each mark with its comment and teacher in one."""
    s = d.summary
    lines = _subject_head(d, _("📘 {subject} — {child}"))
    if s.open_dots:
        lines.append(ngettext("{n} open dot — see /dots", "{n} open dots — see /dots",
                              s.open_dots).format(n=s.open_dots))
    if s.missed:
        lines.append(ngettext("{n} lesson missed in the period",
                              "{n} lessons missed in the period", s.missed).format(n=s.missed))
    if finals:
        lines.append(finals_line(finals))
    lines.append("")
    marks = list(reversed(s.marks))  # newest first
    for m in marks[page * PAGE : (page + 1) * PAGE]:
        parts = [render.day(m.date)]
        if m.counted:
            parts.append(_("weight {weight}").format(weight=m.weight))
        if m.work:
            parts.append(_html(m.work))
        shown = f"<b>{_html(render.mark_shown(m.text, m.scale))}</b>"
        if m.counted and m.counts_as == 1 and (m.scale != "5" or not m.text[:1].isdigit()):
            # What a mark of another scale counts as: «8 из 10 (в среднем как 4)».
            shown += " " + _("(counts as {mark})").format(mark=_five(m))
        line = shown + " — " + ", ".join(parts)
        if not m.counted:
            line += " — " + _("not counted in the average")
        if m.from_dot:
            line += " " + _("(from a dot)")
        if m.dotted(d.today) and m.point_until is not None:
            line += "\n    " + _("📌 with a dot until {date}").format(
                date=render.day(m.point_until))
        if m.comment:
            line += "\n    " + render.quoted(_html(m.comment))
        if m.teacher:
            line += f"\n    {_html(m.teacher)}"
        lines.append(line)
    if d.target is not None and d.needs:
        options = [need_text(n) for n in d.needs]
        target = average(d.target)
        if len(options) == 1:
            lines += ["", _("To reach {target}: {option}.").format(target=target,
                                                                    option=options[0])]
        else:
            lines += ["", "\n".join([_("To reach {target}, any one of:").format(target=target),
                                      *(f"• {o}" for o in options)])]
    elif s.average is not None and d.target is None:
        lines += ["", _("The average already rounds to 5.")]
    return lines


def standing_text(d: SubjectDetail) -> str:
    """«Средний балл класса: 3,60. Иван Петров: выше среднего по классу.»"""
    assert d.standing is not None
    return _("Class average: {average}. {child}: {position}.").format(
        average=average(d.standing.average), child=_html(d.child.name.short),
        position=render.position_text(d.standing))


def _five(mark: Mark) -> str:
    """The five-point mark a one-part mark counts as: «4», «4,5»."""
    return render.decimal(mark.total / mark.weight)


def need_text(need: Need) -> str:
    """«ещё 2 пятёрки с весом 3»: Russian names each mark, so each mark has its words."""
    n, w = need.count, need.weight
    if need.value == 5:
        return ngettext("{count} more 5 of weight {weight}", "{count} more 5s of weight {weight}",
                        n).format(count=n, weight=w)
    if need.value == 4:
        return ngettext("{count} more 4 of weight {weight}", "{count} more 4s of weight {weight}",
                        n).format(count=n, weight=w)
    if need.value == 3:
        return ngettext("{count} more 3 of weight {weight}", "{count} more 3s of weight {weight}",
                        n).format(count=n, weight=w)
    return ngettext("{count} more 2 of weight {weight}", "{count} more 2s of weight {weight}",
                    n).format(count=n, weight=w)


def detail_keyboard(d: SubjectDetail, period_index: int, page: int) -> InlineKeyboardMarkup:
    rows = []
    pages = max(1, -(-d.summary.count // PAGE))
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(text="‹", callback_data=GradesCb(
            a="sub", c=d.child.id, p=period_index, s=d.summary.key, pg=page - 1).pack()))
    if pages > 1:
        nav.append(InlineKeyboardButton(text=f"{page + 1}/{pages}", callback_data=GradesCb(
            a="sub", c=d.child.id, p=period_index, s=d.summary.key, pg=page).pack()))
    if page < pages - 1:
        nav.append(InlineKeyboardButton(text="›", callback_data=GradesCb(
            a="sub", c=d.child.id, p=period_index, s=d.summary.key, pg=page + 1).pack()))
    if nav:
        rows.append(nav)
    if d.summary.marks:
        rows.append([InlineKeyboardButton(text=_("📈 Chart"), callback_data=GradesCb(
            a="gc", c=d.child.id, p=period_index, s=d.summary.key).pack())])
    rows.append([InlineKeyboardButton(
        text=_("« All subjects"),
        callback_data=GradesCb(a="ov", c=d.child.id, p=period_index).pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def children_keyboard(children: list[Child]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=render.child_line(c),
                              callback_data=GradesCb(a="ov", c=c.id).pack())]
        for c in children
    ])


def _visible(viewer: Viewer) -> list[Child]:
    children = [c for c in viewer.children if Scope.GRADES in c.scopes]
    if not children:
        raise AccessDenied() if viewer.is_linked else NotLinked()
    return children


async def _overview(viewer: Viewer, grades: GradesService, clock: Clock, tz, child_id: int,
                    period_index: int) -> tuple[list[str], InlineKeyboardMarkup]:
    today = _today(clock, tz)
    period_key = None
    if period_index >= 0:
        periods = (await grades.overview(viewer, child_id, today)).periods
        if period_index < len(periods):
            period_key = periods[period_index].key
    ov = await grades.overview(viewer, child_id, today, period_key)
    index = ov.periods.index(ov.period) if ov.period in ov.periods else -1
    return overview_text(ov), overview_keyboard(ov, index, len(_visible(viewer)) > 1)


async def cmd_grades(message: Message, viewer: Viewer, grades: GradesService, clock: Clock,
                     tz) -> None:
    children = _visible(viewer)
    if len(children) > 1:
        await message.answer(_("Whose grades?"), reply_markup=children_keyboard(children))
        return
    text, markup = await _overview(viewer, grades, clock, tz, children[0].id, -1)
    await ui.answer(message, text, markup)


async def _edit(callback: CallbackQuery, text: ui.Text, markup: InlineKeyboardMarkup) -> None:
    await edit_in_place(callback, text, markup)


async def on_children(callback: CallbackQuery, viewer: Viewer) -> None:
    children = _visible(viewer)
    await _edit(callback, _("Whose grades?"), children_keyboard(children))


async def on_overview(callback: CallbackQuery, callback_data: GradesCb, viewer: Viewer,
                      grades: GradesService, clock: Clock, tz) -> None:
    text, markup = await _overview(viewer, grades, clock, tz, callback_data.c, callback_data.p)
    await _edit(callback, text, markup)


async def on_subject(callback: CallbackQuery, callback_data: GradesCb, viewer: Viewer,
                     grades: GradesService, clock: Clock, tz) -> None:
    today = _today(clock, tz)
    period_key = None
    if callback_data.p >= 0:
        periods = (await grades.overview(viewer, callback_data.c, today)).periods
        if callback_data.p < len(periods):
            period_key = periods[callback_data.p].key
    detail = await grades.subject(viewer, callback_data.c, callback_data.s, today, period_key)
    finals = await subject_finals(grades, viewer, detail.child.id, detail.summary.subject,
                                  school_year(detail.period.start))
    pages = max(1, -(-detail.summary.count // PAGE))
    page = min(max(0, callback_data.pg), pages - 1)
    await _edit(callback, detail_text(detail, page, finals),
                detail_keyboard(detail, callback_data.p, page))


# -- final marks ---------------------------------------------------------------------------

SUBJECT_WIDTH = 14  # a phone shows about 30 monospace characters a line
EMPTY = "·"
PREDICTED = "≈"


def finals_line(finals: list[FinalMark]) -> str:
    """«Итоговые: 1 четверть — 5, год — 5»: a subject's final marks of the school year."""
    year = _("year")
    marks = ", ".join(
        f"{_html(m.period_name) if m.period is not None else year} — <b>{_html(m.shown)}</b>"
        for m in finals)
    return _("Final marks: {marks}").format(marks=marks)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finals_text(t: FinalsTable) -> list[str]:
    """A monospace table, rows subjects and columns the periods (numbered) and the year; the
    predicted mark of the current period as «≈4» where its final one is not set."""
    lines = [
        _("📋 Final marks — {child}").format(child=_html(render.child_line(t.child))),
        _("School year {start}/{end}").format(start=t.year.start.year,
                                              end=str(t.year.end.year)[-2:]),
        "",
    ]
    if not t.rows:
        lines.append(_("No final marks yet, and no grades in the current period to predict"
                       " them from."))
        return lines
    columns: list[str | None] = [p.key for p in t.periods] + [None]
    heads = [str(n) for n in range(1, len(t.periods) + 1)] + [_("Year")]
    predicted = t.predicted_column
    table = [[_("Subject"), *heads]]
    for r in t.rows:
        cells = [_cut(r.subject, SUBJECT_WIDTH)]
        for key in columns:
            if key in r.finals:
                cells.append(r.finals[key])
            elif key == predicted and r.predicted is not None:
                cells.append(f"{PREDICTED}{r.predicted}")
            else:
                cells.append(EMPTY)
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    widths[1:] = [max(2, w) for w in widths[1:]]
    text = "\n".join(
        " ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                       strict=True))]).rstrip()
        for row in table)
    lines.append(f"<pre>{_html(text)}</pre>")
    if t.periods:
        lines.append(", ".join(f"{n} — {_html(p.name)}" for n, p in enumerate(t.periods, 1))
                     + ".")
    if t.any_predicted:
        if t.current.is_school_year:
            lines.append(_("≈ — predicted: the year's average, rounded; shown until the final"
                           " mark is set."))
        else:
            lines.append(_("≈ — predicted: the average for {period}, rounded; shown until the"
                           " final mark is set.").format(period=_html(t.current.name)))
    return lines


def finals_keyboard(t: FinalsTable, several: bool) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(text=_("« All subjects"),
                                  callback_data=GradesCb(a="ov", c=t.child.id).pack())]]
    if several:
        rows.append([InlineKeyboardButton(text=_("👥 Another child"),
                                          callback_data=GradesCb(a="kids").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def on_finals(callback: CallbackQuery, callback_data: GradesCb, viewer: Viewer,
                    grades: GradesService, clock: Clock, tz) -> None:
    table = await finals_table(grades, viewer, callback_data.c, _today(clock, tz))
    await _edit(callback, finals_text(table), finals_keyboard(table, len(_visible(viewer)) > 1))


# -- charts ----------------------------------------------------------------------------------

async def _period_key(grades: GradesService, viewer: Viewer, child_id: int, index: int,
                      today: date) -> str | None:
    if index < 0:
        return None
    periods = (await grades.overview(viewer, child_id, today)).periods
    return periods[index].key if index < len(periods) else None


def chart_keyboard(ov: Overview, action: str, key: str = "") -> InlineKeyboardMarkup | None:
    """The periods before and after the chart's, to redraw it in place."""
    if ov.period not in ov.periods:
        return None
    current = ov.periods.index(ov.period)
    nav = []
    if current > 0:
        nav.append(InlineKeyboardButton(
            text="« " + ov.periods[current - 1].name,
            callback_data=GradesCb(a=action, c=ov.child.id, p=current - 1, s=key).pack()))
    if current < len(ov.periods) - 1:
        nav.append(InlineKeyboardButton(
            text=ov.periods[current + 1].name + " »",
            callback_data=GradesCb(a=action, c=ov.child.id, p=current + 1, s=key).pack()))
    return InlineKeyboardMarkup(inline_keyboard=[nav]) if nav else None


def subject_caption(d: SubjectDetail) -> str:
    return "\n".join(_subject_head(d, _("📈 {subject} — {child}")))


def overview_caption(ov: Overview) -> str:
    return "\n".join([
        _("📈 Averages — {child}").format(child=_html(render.child_line(ov.child))),
        _html(period_title(ov.period)),
    ])


async def _show_chart(callback: CallbackQuery, png: bytes, caption: str,
                      markup: InlineKeyboardMarkup | None) -> None:
    """A new picture under the pressed screen, or, pressed on a chart, that chart redrawn."""
    message = callback.message
    photo = BufferedInputFile(png, filename="chart.png")
    if isinstance(message, Message) and message.photo:
        try:
            await message.edit_media(InputMediaPhoto(media=photo, caption=caption,
                                                     parse_mode="HTML"), reply_markup=markup)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                raise
    elif message is not None:
        await callback.bot.send_photo(message.chat.id, photo, caption=caption,  # type: ignore[union-attr]
                                      reply_markup=markup, parse_mode="HTML")
    await callback.answer()


async def on_subject_chart(callback: CallbackQuery, callback_data: GradesCb, viewer: Viewer,
                           grades: GradesService, clock: Clock, tz) -> None:
    today = _today(clock, tz)
    period_key = await _period_key(grades, viewer, callback_data.c, callback_data.p, today)
    ov = await grades.overview(viewer, callback_data.c, today, period_key)  # checks the child
    summary = next((s for s in ov.subjects if s.key == callback_data.s), None)
    if summary is None or not summary.marks:
        await callback.answer(charts.no_marks_text(), show_alert=True)
        return
    detail = await grades.subject(viewer, ov.child.id, summary.key, today, period_key)
    finals = await subject_finals(grades, viewer, detail.child.id, summary.subject,
                                  school_year(detail.period.start))
    png = await charts.draw(charts.subject_chart(detail, finals, grades.threshold))
    await _show_chart(callback, png, subject_caption(detail),
                      chart_keyboard(ov, "gc", summary.key))


async def on_overview_chart(callback: CallbackQuery, callback_data: GradesCb, viewer: Viewer,
                            grades: GradesService, clock: Clock, tz) -> None:
    today = _today(clock, tz)
    period_key = await _period_key(grades, viewer, callback_data.c, callback_data.p, today)
    ov = await grades.overview(viewer, callback_data.c, today, period_key)
    chart = charts.overview_chart(ov)
    if not chart.bars:
        await callback.answer(charts.no_marks_text(), show_alert=True)
        return
    png = await charts.draw(chart)
    await _show_chart(callback, png, overview_caption(ov), chart_keyboard(ov, "oc"))
