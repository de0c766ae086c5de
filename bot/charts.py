"""Charts of grades as PNG pictures: a subject's marks over a period with the running average,
every subject's average beside the class's, and a child's week (Friday's digest).

A chart is built in two steps. The first, here in the bot's language, turns what the core read
into a :class:`SubjectChart` or :class:`OverviewChart`: every text on it already translated,
every date already written by Babel. The second, :func:`render`, draws that with matplotlib
(the Agg backend, no display) and knows no language. matplotlib is imported only when the first
chart is drawn, so a process that never draws one does not pay for it; drawing happens in one
worker thread off the event loop, and the PNG bytes are kept in a small LRU keyed by a hash of
everything the chart shows (its texts carry the language).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from bot import render as fmt
from bot.i18n import I18n
from bot.i18n import gettext as _
from core import marks as school_marks
from core.services.digest import WeekChart
from core.services.finals import FinalMark
from core.services.grades import (
    Mark,
    Overview,
    Period,
    SubjectDetail,
    running_average,
)

WIDTH, HEIGHT, DPI = 1000, 600, 150  # pixels: readable on a phone, small to send
TEXT_ROW = 0.7  # where marks that are no number («зачёт», «н/а») are drawn, below the 1
CACHE_SIZE = 64  # charts kept (a chart is 40–80 KB)
SUBJECT_LABEL = 16  # characters of a subject's name on the overview chart

COUNTED, DOT, OUT = "counted", "dot", "out"
COLOURS = {5: "#2e7d32", 4: "#1565c0", 3: "#ef6c00", 2: "#c62828", 1: "#6a1b9a"}
AVERAGE_COLOUR = "#263238"
CLASS_COLOUR = "#b0bec5"
FINAL_COLOUR = "#8e24aa"
LEGEND_COLOUR = "#607d8b"  # a mark of any value: the colour itself says which


@dataclass(frozen=True)
class Point:
    """One mark on the chart."""

    day: date
    y: float  # the five-point mark it counts as, or TEXT_ROW
    weight: int
    kind: str  # COUNTED, DOT (counts while its dot is open) or OUT (counts as nothing)
    label: str = ""  # written beside it when the figure alone does not say it («4-», «зачёт»)


@dataclass(frozen=True)
class SubjectChart:
    title: str
    subtitle: str
    start: date
    end: date
    points: tuple[Point, ...]
    line: tuple[tuple[date, float], ...]  # the running average
    line_label: str  # the last average, written at the line's end
    thresholds: tuple[tuple[float, str], ...]  # where the average rounds up, and the label
    final: tuple[float, str] | None  # the period's final mark: its height and label
    ticks: tuple[tuple[date, str], ...]
    legend: tuple[tuple[str, str], ...]  # (kind, text): COUNTED, DOT, OUT, "average", "final"
    empty: str  # shown instead of a chart when there are no marks


@dataclass(frozen=True)
class Bar:
    subject: str
    mine: float
    mine_label: str
    klass: float | None  # the class average, only where enough students have marks
    klass_label: str = ""


@dataclass(frozen=True)
class OverviewChart:
    title: str
    subtitle: str
    bars: tuple[Bar, ...]
    legend: tuple[str, str]  # the child's bars, the class's
    empty: str


@dataclass(frozen=True)
class WeekRow:
    subject: str
    average: float | None  # the period's average now
    average_label: str
    before: float | None  # the average before this week's marks, where they moved it
    marks: str  # this week's marks («5, 4-»), or ""


@dataclass(frozen=True)
class WeekPicture:
    title: str
    subtitle: str
    rows: tuple[WeekRow, ...]
    legend: tuple[str, str, str]  # the average, where it was before the week, the week's marks
    empty: str


Chart = SubjectChart | OverviewChart | WeekPicture


# -- what a chart shows, in the reader's language -------------------------------------------

def no_marks_text() -> str:
    return _("No marks in this period")


def period_span(period: Period) -> str:
    span = fmt.days(period.start, period.end)
    name = period.name or _("School year {start}/{end}").format(
        start=period.start.year, end=str(period.end.year)[-2:])
    return f"{name} ({span})"


def _ticks(start: date, end: date, most: int = 6) -> tuple[tuple[date, str], ...]:
    days = (end - start).days
    step = max(1, math.ceil(days / (most - 1))) if days else 1
    found = []
    day = start
    while day <= end:
        found.append((day, fmt.day(day, "MMMd")))
        day += timedelta(days=step)
    return tuple(found)


def _final_of(finals: list[FinalMark] | None, period: Period) -> FinalMark | None:
    for m in finals or ():
        if (m.period is None and period.is_school_year) or m.period == period.key:
            return m
    return None


def _point(mark: Mark, today: date | None) -> Point:
    plain = mark.text.isdigit() and mark.scale == "5"
    if mark.counted:
        y = mark.total / mark.share
        kind = DOT if mark.dotted(today) else COUNTED
    else:
        parts = mark.parts or 0
        y = (mark.points or 0) / parts if parts else (mark.value or TEXT_ROW)
        kind = OUT
    return Point(mark.date, round(float(y), 4), max(mark.weight, 0), kind,
                 "" if plain else mark.text)


def subject_chart(d: SubjectDetail, finals: list[FinalMark] | None = None,
                  threshold: float = 0.5) -> SubjectChart:
    """A subject's marks over the period of ``d``, with everything written in the current
    language."""
    s = d.summary
    points = tuple(_point(m, d.today) for m in s.marks)
    line = tuple((day, round(avg, 4)) for day, avg in running_average(s.marks))
    last = max([d.period.start, *(p.day for p in points)])
    end = d.period.end
    if d.today is not None and d.period.start <= d.today < d.period.end:
        end = max(d.today, last)
    subtitle = [period_span(d.period)]
    if s.average is not None:
        subtitle.append(_("average {average}").format(average=fmt.average(s.average)))
    if d.standing is not None:
        subtitle.append(_("class average {average}, {position}").format(
            average=fmt.average(d.standing.average), position=fmt.position_text(d.standing)))
    final = None
    legend: list[tuple[str, str]] = [(COUNTED, _("mark (larger: heavier)"))]
    if any(p.kind == DOT for p in points):
        legend.append((DOT, _("with a dot")))
    if any(p.kind == OUT for p in points):
        legend.append((OUT, _("not counted")))
    if line:
        legend.append(("average", _("average")))
    given = _final_of(finals, d.period)
    if given is not None:
        text = _("final mark: {mark}").format(mark=given.shown)
        parsed = school_marks.parse_mark(given.shown, given.scale)
        if isinstance(parsed, school_marks.Mark) and parsed.numeric is not None:
            final = (float(parsed.numeric), text)
        else:
            subtitle.append(text)
    thresholds = tuple((k + threshold, f"{fmt.decimal(k + threshold)}"
                        f" → {k + 1}") for k in (2, 3, 4))
    return SubjectChart(
        title=_("{subject} — {child}").format(subject=s.subject, child=d.child.name.short),
        subtitle="\n".join([subtitle[0], " · ".join(subtitle[1:])]).strip(),
        start=d.period.start, end=end, points=points, line=line,
        line_label=fmt.average(line[-1][1]) if line else "",
        thresholds=thresholds, final=final, ticks=_ticks(d.period.start, end),
        legend=tuple(legend), empty=no_marks_text(),
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def overview_chart(ov: Overview) -> OverviewChart:
    """Every subject's average in the period of ``ov``, the class's beside it where shown."""
    bars = []
    for s in ov.subjects:
        if s.average is None:
            continue
        standing = ov.standings.get(s.subject)
        bars.append(Bar(_cut(s.subject, SUBJECT_LABEL), round(s.average, 4), fmt.average(s.average),
                        round(standing.average, 4) if standing else None,
                        fmt.average(standing.average) if standing else ""))
    return OverviewChart(
        title=_("Averages — {child}").format(child=ov.child.name.short),
        subtitle=period_span(ov.period),
        bars=tuple(bars),
        legend=(ov.child.name.short, _("class average")),
        empty=no_marks_text(),
    )


def week_picture(week: WeekChart) -> WeekPicture:
    """A child's week: every subject's average in the period, where this week's marks moved it
    from, and the marks themselves."""
    rows = []
    for s in week.subjects:
        moved = (s.marks and s.before is not None and s.average is not None
                 and round(s.before, 2) != round(s.average, 2))
        rows.append(WeekRow(
            _cut(s.subject, SUBJECT_LABEL),
            None if s.average is None else round(s.average, 4),
            "" if s.average is None else fmt.average(s.average),
            round(s.before, 4) if moved and s.before is not None else None,
            ", ".join(s.marks)))
    period = week.period.name or _("School year {start}/{end}").format(
        start=week.period.start.year, end=str(week.period.end.year)[-2:])
    return WeekPicture(
        title=_("Week {span} — {child}").format(span=fmt.days(week.start, week.end),
                                                child=week.child),
        subtitle=_("{marks} this week · averages for {period}").format(
            marks=fmt.marks_count(week.marks), period=period),
        rows=tuple(rows),
        legend=(_("average now"), _("before this week"), _("this week's marks")),
        empty=_("No marks this week"),
    )


async def draw_week(week: WeekChart, locale: str | None, language: str | None,
                    i18n: I18n) -> bytes:
    """The weekly chart's PNG in the reader's language (``DigestService.run``'s drawer). Not
    kept in the cache of the charts users ask for: each is drawn once a week, and the digest
    run keeps what it drew itself."""
    from bot.i18n import pick_locale

    with i18n.context(), i18n.use_locale(pick_locale(locale, language, i18n.default_locale)):
        picture = week_picture(week)
    return await draw(picture, cache=None)


# -- drawing ----------------------------------------------------------------------------------

def _figure(height: int = HEIGHT):
    from matplotlib.figure import Figure  # imported when a chart is first drawn

    return Figure(figsize=(WIDTH / DPI, height / DPI), dpi=DPI, layout="constrained")


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _empty(figure, title: str, subtitle: str, message: str) -> None:
    figure.suptitle(f"{title}\n{subtitle}", fontsize=11)
    figure.text(0.5, 0.45, message, ha="center", va="center", fontsize=18, color="#455a64")


def _colour(y: float) -> str:
    return COLOURS.get(math.floor(y + 0.5), "#546e7a")


def _size(weight: int) -> float:
    return 25 + 30 * min(max(weight, 1), 5)


def draw_subject(chart: SubjectChart) -> bytes:
    from matplotlib.lines import Line2D

    figure = _figure()
    if not chart.points:
        _empty(figure, chart.title, chart.subtitle, chart.empty)
        return _png(figure)
    ax = figure.add_subplot()
    ax.set_title(f"{chart.title}\n{chart.subtitle}", fontsize=10, loc="left")
    x0, x1 = chart.start.toordinal() - 1, chart.end.toordinal() + 1
    ax.set_xlim(x0, x1)
    texts = any(p.y == TEXT_ROW for p in chart.points)
    ax.set_ylim(TEXT_ROW - 0.35 if texts else 0.6, 5.45)
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.tick_params(labelsize=10)
    ax.set_xticks([d.toordinal() for d, _label in chart.ticks],
                  [label for _d, label in chart.ticks])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for y, label in chart.thresholds:
        ax.axhline(y, color="#90a4ae", lw=0.8, ls=":", alpha=0.7, zorder=1)
        ax.text(x1 - 0.2, y + 0.03, label, fontsize=8, color="#78909c", va="bottom", ha="right")
    if chart.final is not None:
        y, label = chart.final
        ax.axhline(y, color=FINAL_COLOUR, lw=1.2, ls="--", alpha=0.8, zorder=1)
        ax.text(x0 + 0.3, y + 0.04, label, fontsize=9, color=FINAL_COLOUR, va="bottom")
    if chart.line:
        xs = [d.toordinal() for d, _avg in chart.line] + [chart.end.toordinal()]
        ys = [avg for _d, avg in chart.line] + [chart.line[-1][1]]
        ax.step(xs, ys, where="post", color=AVERAGE_COLOUR, lw=1.8, zorder=2)
        ax.text(xs[-1] + 0.3, ys[-1], chart.line_label, fontsize=10, fontweight="bold",
                color=AVERAGE_COLOUR, va="center")
    # Marks on the same day side by side, not on top of each other.
    seen: dict[tuple[date, float], int] = {}
    for p in chart.points:
        n = seen.get((p.day, p.y), 0)
        seen[(p.day, p.y)] = n + 1
        x = p.day.toordinal() + 0.35 * n
        colour = "#78909c" if p.y == TEXT_ROW else _colour(p.y)
        if p.kind == OUT:
            ax.scatter([x], [p.y], s=_size(p.weight), facecolors="none", edgecolors=colour,
                       linewidths=1.5, zorder=3)
        elif p.kind == DOT:
            ax.scatter([x], [p.y], s=_size(p.weight), marker="D", c=colour,
                       edgecolors="black", linewidths=1.2, zorder=3)
        else:
            ax.scatter([x], [p.y], s=_size(p.weight), c=colour, edgecolors="white",
                       linewidths=0.6, zorder=3)
        if p.label:
            ax.annotate(p.label, (x, p.y), xytext=(0, 6), textcoords="offset points",
                        ha="center", va="bottom", fontsize=9, color="#37474f")
    handles = []
    for kind, text in chart.legend:
        if kind == COUNTED:
            handles.append(Line2D([], [], ls="", marker="o", color=LEGEND_COLOUR, label=text))
        elif kind == DOT:
            handles.append(Line2D([], [], ls="", marker="D", color=LEGEND_COLOUR,
                                  markeredgecolor="black", label=text))
        elif kind == OUT:
            handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none",
                                  color="#78909c", label=text))
        else:
            handles.append(Line2D([], [], color=AVERAGE_COLOUR, lw=1.8, label=text))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4,
              fontsize=9, frameon=False, handletextpad=0.3, columnspacing=1.2)
    return _png(figure)


def draw_overview(chart: OverviewChart) -> bytes:
    from matplotlib.patches import Patch

    n = len(chart.bars)
    figure = _figure(max(HEIGHT, 150 + 55 * n))
    if not chart.bars:
        _empty(figure, chart.title, chart.subtitle, chart.empty)
        return _png(figure)
    ax = figure.add_subplot()
    ax.set_title(f"{chart.title}\n{chart.subtitle}", fontsize=11, loc="left")
    ys = list(range(n))[::-1]  # the first subject on top
    height = 0.38
    for y, bar in zip(ys, chart.bars, strict=True):
        ax.barh(y + height / 2, bar.mine, height, color=_colour(bar.mine), zorder=2)
        ax.text(bar.mine + 0.05, y + height / 2, bar.mine_label, va="center", fontsize=10,
                fontweight="bold")
        if bar.klass is not None:
            ax.barh(y - height / 2, bar.klass, height, color=CLASS_COLOUR, zorder=2)
            ax.text(bar.klass + 0.05, y - height / 2, bar.klass_label, va="center",
                    fontsize=9, color="#546e7a")
    ax.set_yticks(ys, [b.subject for b in chart.bars])
    ax.set_xlim(0, 5.6)
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.tick_params(labelsize=10)
    ax.grid(axis="x", color="#eceff1", zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=COLOURS[4], label=chart.legend[0])]
    if any(b.klass is not None for b in chart.bars):
        handles.append(Patch(color=CLASS_COLOUR, label=chart.legend[1]))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2,
              fontsize=9, frameon=False)
    return _png(figure)


MARKS_AT = 5.75  # where the week's marks are written, right of the bars


def draw_week_picture(chart: WeekPicture) -> bytes:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = len(chart.rows)
    figure = _figure(max(HEIGHT, 170 + 55 * n))
    if not any(r.marks for r in chart.rows):
        _empty(figure, chart.title, chart.subtitle, chart.empty)
        return _png(figure)
    ax = figure.add_subplot()
    ax.set_title(f"{chart.title}\n{chart.subtitle}", fontsize=11, loc="left")
    ys = list(range(n))[::-1]  # the first subject on top
    height = 0.6
    for y, row in zip(ys, chart.rows, strict=True):
        if row.average is not None:
            ax.barh(y, row.average, height, color=_colour(row.average),
                    alpha=1.0 if row.marks else 0.45, zorder=2)
            # Right of the bar, and of the mark of the average before the week.
            ax.text(max(row.average, row.before or 0) + 0.07, y, row.average_label,
                    va="center", fontsize=10,
                    fontweight="bold" if row.marks else "normal")
        if row.before is not None:
            ax.plot([row.before, row.before], [y - height / 2 - 0.08, y + height / 2 + 0.08],
                    color="black", lw=2.2, zorder=3)
        if row.marks:
            ax.text(MARKS_AT, y, row.marks, va="center", fontsize=11, fontweight="bold",
                    color="#37474f")
    ax.set_yticks(ys, [r.subject for r in chart.rows])
    ax.set_xlim(0, 7.4)
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.tick_params(labelsize=10)
    ax.axvline(MARKS_AT - 0.2, color="#cfd8dc", lw=0.8, zorder=1)
    ax.grid(axis="x", color="#eceff1", zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=COLOURS[4], label=chart.legend[0]),
               Line2D([], [], color="black", lw=2.2, label=chart.legend[1]),
               Line2D([], [], ls="", marker="$5$", color="#37474f", markersize=9,
                      label=chart.legend[2])]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3,
              fontsize=9, frameon=False)
    return _png(figure)


def render(chart: Chart) -> bytes:
    """The PNG of a chart (blocking: call it through :func:`draw`)."""
    if isinstance(chart, SubjectChart):
        png = draw_subject(chart)
    elif isinstance(chart, OverviewChart):
        png = draw_overview(chart)
    else:
        png = draw_week_picture(chart)
    # A figure is a web of cycles that would wait for the collector's rare full pass, some 50 MB
    # piling up by then; the young generations hold it still and take about a millisecond.
    gc.collect(1)
    return png


# -- off the event loop, remembered ----------------------------------------------------------

class PngCache:
    """The last ``size`` charts drawn, by a hash of what they show."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(chart: Chart) -> str:
        return hashlib.blake2b(repr(chart).encode(), digest_size=16).hexdigest()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, png: bytes) -> None:
        with self._lock:
            self._items[key] = png
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


CACHE = PngCache()
_executor: ThreadPoolExecutor | None = None


def _worker() -> ThreadPoolExecutor:
    # One thread: matplotlib is not made for drawing in several at once, and the machine's
    # cores belong to the bot first.
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")
    return _executor


async def draw(chart: Chart, cache: PngCache | None = CACHE) -> bytes:
    """The chart's PNG: from the cache, or drawn in the chart thread."""
    key = PngCache.key(chart)
    if cache is not None:
        found = cache.get(key)
        if found is not None:
            return found
    png = await asyncio.get_running_loop().run_in_executor(_worker(), render, chart)
    if cache is not None:
        cache.put(key, png)
    return png


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
