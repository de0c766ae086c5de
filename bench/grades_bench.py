"""/grades answer time with 20,000 and then 200,000 students' grades in the database, on SQLite
and on PostgreSQL (skipped with a plain message when the server cannot be reached).

A district is written in bulk (``bench.bulk``: 1,000 students a school, 30–60 grades each over
the year's quarters so far, absences, open dots), and parents of random students are linked.
Each sample is one parent's ``/grades`` fed to the bot's dispatcher — the viewer loaded, the
conversation state read, the overview of the current quarter read and rendered, the message
sent to an in-memory Bot API that checks it as Telegram would — timed from the update's arrival
to the answer's send: first the child's first view since the data was written (its rows read
from disk, unless the page cache still holds them), then a second view (``again``). ``core``
times the core's part alone (the viewer and the overview's queries). Target: p95 < 100 ms, not
growing with the database.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.bulk import District, percentile, postgres_schema, postgres_server, postgres_unreachable
from bot.app import create_dispatcher
from bot.fsm import SQLiteStorage
from bot.i18n import create_i18n
from bot.services import Services, build_services
from core.clock import FrozenClock
from core.storage.db import Database
from core.storage.migrate import upgrade
from tests.support.recording import make_bot
from tests.support.updates import message

TZ = ZoneInfo("Europe/Moscow")
SECRET = b"bench-secret-0123456789abcdef"
TODAY = date(2027, 3, 1)  # a Monday of the third quarter
NOW = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)  # 10:00 school time
SIZES = (20_000, 200_000)
PARENTS = 400  # linked at each size, to random students of the whole roster: one sample each
WARM_UP = 20
TELEGRAM_BASE = 50_000_000_000


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _figures(prefix: str, times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {f"{prefix}_p50_ms": _ms(statistics.median(times)),
            f"{prefix}_p95_ms": _ms(percentile(times, 0.95)),
            f"{prefix}_max_ms": _ms(times[-1])}


async def _sample(services: Services, accounts: list[int]
                  ) -> tuple[list[float], list[float], list[float]]:
    """Each account's /grades through the dispatcher — the first time since the data was
    written, then once more — and then its core part alone."""
    dp = create_dispatcher(services, create_i18n("ru"),
                           SQLiteStorage(services.db, services.clock))
    bot, session = make_bot()
    passes: list[list[float]] = []
    for _ in range(2):
        times: list[float] = []
        for n, tg in enumerate(accounts):
            update = message(tg, "/grades")
            started = time.perf_counter()
            await dp.feed_update(bot, update)
            elapsed = time.perf_counter() - started
            text = session.last_text()
            assert text.startswith("📊") and "3 четверть" in text, text[:200]
            session.clear()
            if n >= WARM_UP:
                times.append(elapsed)
        passes.append(times)
    core: list[float] = []
    for tg in accounts[WARM_UP:]:
        started = time.perf_counter()
        viewer = await services.access.viewer(tg)
        await services.grades.overview(viewer, viewer.children[0].id, TODAY)
        core.append(time.perf_counter() - started)
    return passes[0], passes[1], core


async def _backend(url: str, label: str, sizes: tuple[int, ...]) -> dict[str, float]:
    results: dict[str, float] = {}
    db = await Database(url).connect()
    try:
        await upgrade(db)
        services = build_services(db, SECRET, TZ, FrozenClock(NOW))
        district = District(db, SECRET, TODAY, NOW)
        rnd = random.Random(11)
        for size in sizes:
            started = time.perf_counter()
            await district.grow(size)
            build = time.perf_counter() - started
            # Parents of random students of the whole roster, never sampled before.
            chosen = rnd.sample(range(size), PARENTS)
            accounts = await district.link(chosen, TELEGRAM_BASE + size * 10)
            rnd.shuffle(accounts)
            first, again, core = await _sample(services, accounts)
            tag = f"{label}_{size // 1000}k"
            results[f"{tag}_grades"] = district.grades
            results[f"{tag}_build_seconds"] = round(build, 1)
            results.update(_figures(tag, first))
            results.update(_figures(f"{tag}_again", again))
            results.update(_figures(f"{tag}_core", core))
    finally:
        await db.close()
    return results


async def run(workdir: Path, sizes: tuple[int, ...] = SIZES) -> dict[str, object]:
    report: dict[str, object] = {"samples": PARENTS - WARM_UP}
    report.update(await _backend(f"sqlite:///{workdir / 'grades.sqlite3'}", "sqlite", sizes))
    server = postgres_server()
    why = await postgres_unreachable(server)
    if why is not None:
        report["postgresql"] = why
        return report
    async with postgres_schema(server) as url:
        report.update(await _backend(url, "postgresql", sizes))
    return report
