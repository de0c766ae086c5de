"""Progress charts: the time to draw one and what the first one costs in memory.

In a fresh interpreter that has imported the bot as it runs (``bot.app``, matplotlib not yet
loaded), the resident memory is read from ``/proc/self/status``; then the first chart is drawn
(its time includes importing matplotlib and loading its font), the memory read again, and 50
more subject charts (20–45 marks of a term each, every one different, the cache off) and 20
overview charts (12 subjects) and 20 weekly charts (Friday's digest: 12 subjects, 0–3 marks each
that week) are drawn through :func:`bot.charts.draw`, off the event loop, as the bot does.
Figures: p50/p95 per chart, RSS before and after the first chart and at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from bench.bulk import percentile

ROOT = Path(__file__).resolve().parents[1]
CHARTS = 50
OVERVIEWS = 20
WEEKS = 20


def _rss_mb() -> float:
    found = re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())
    return round(int(found.group(1)) / 1024, 1) if found else 0.0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def _measure() -> dict[str, float]:
    import bot.app  # noqa: F401  (the bot as it runs)
    from bot import charts
    from bot.i18n import create_i18n
    from core.models import Child, PersonName, Role
    from core.services.digest import WeekChart, WeekSubject
    from core.services.grades import (
        Mark,
        Overview,
        Period,
        Standing,
        SubjectDetail,
        SubjectSummary,
        weighted_average,
    )

    assert "matplotlib" not in sys.modules
    rng = random.Random(7)
    child = Child(1, PersonName("Петров", "Иван"), "7Б", "Школа", Role.GUARDIAN)
    term = Period("q2", "2 четверть", date(2026, 11, 5), date(2026, 12, 28))
    today = date(2026, 12, 20)

    def marks() -> tuple[Mark, ...]:
        found = []
        for _n in range(rng.randint(20, 45)):
            day = term.start + timedelta(days=rng.randint(0, 44))
            value = rng.choice((2, 3, 3, 4, 4, 4, 5, 5, 5))
            weight = rng.choice((1, 1, 1, 2, 3, 0))
            found.append(Mark(value, weight, day, points=value, parts=1,
                              point_until=today if rng.random() < 0.05 else None))
        return tuple(sorted(found, key=lambda m: m.date))

    def subject() -> SubjectDetail:
        found = marks()
        summary = SubjectSummary("Алгебра", "k", found, weighted_average(found))
        return SubjectDetail(child, term, summary, 4.5, (), today, Standing(3.9, "above"))

    i18n = create_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        specs = [charts.subject_chart(subject()) for _n in range(CHARTS + 1)]
        overviews = []
        for _n in range(OVERVIEWS):
            subjects = tuple(SubjectSummary(f"Предмет {k}", str(k), (), rng.uniform(3, 5))
                             for k in range(12))
            overviews.append(charts.overview_chart(Overview(
                child, term, (term,), subjects, today,
                {s.subject: Standing(rng.uniform(3, 5), "above") for s in subjects[::2]})))
        weeks = []
        for _n in range(WEEKS):
            rows = []
            for k in range(12):
                week_marks = tuple(str(rng.choice((3, 4, 5))) for _m in range(rng.randint(0, 3)))
                rows.append(WeekSubject(f"Предмет {k}", rng.uniform(3, 5), rng.uniform(3, 5),
                                        week_marks))
            weeks.append(charts.week_picture(WeekChart(
                1, "Иван Петров", date(2026, 12, 14), date(2026, 12, 18), term, tuple(rows))))
    before = _rss_mb()
    started = time.perf_counter()
    await charts.draw(specs[0], cache=None)
    first = time.perf_counter() - started
    after_first = _rss_mb()
    times = []
    for spec in specs[1:]:
        started = time.perf_counter()
        await charts.draw(spec, cache=None)
        times.append(time.perf_counter() - started)
    overview_times = []
    for spec in overviews:
        started = time.perf_counter()
        await charts.draw(spec, cache=None)
        overview_times.append(time.perf_counter() - started)
    week_times = []
    for spec in weeks:
        started = time.perf_counter()
        await charts.draw(spec, cache=None)
        week_times.append(time.perf_counter() - started)
    times.sort()
    overview_times.sort()
    week_times.sort()
    return {
        "charts": CHARTS,
        "first_chart_ms": _ms(first),
        "subject_p50_ms": _ms(statistics.median(times)),
        "subject_p95_ms": _ms(percentile(times, 0.95)),
        "overview_p50_ms": _ms(statistics.median(overview_times)),
        "overview_p95_ms": _ms(percentile(overview_times, 0.95)),
        "week_p50_ms": _ms(statistics.median(week_times)),
        "week_p95_ms": _ms(percentile(week_times, 0.95)),
        "rss_before_mb": before,
        "rss_after_first_mb": after_first,
        "rss_end_mb": _rss_mb(),
    }


async def run(tmp: Path) -> dict[str, float]:
    """In a fresh interpreter, so no other benchmark has loaded matplotlib before."""
    del tmp
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.chart", cwd=ROOT, stdout=subprocess.PIPE)
    out, _err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"bench.chart exited with {process.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_measure())))
