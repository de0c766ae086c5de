"""Building the daily digests for 10,000 recipients (target: under 30 s), and the digest job
among 200,000 accounts of which 1 % are due (``bench.digest_scale``; ``digest-city``: 2.5
million accounts)."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import digest_scale
from bench.data import SUBJECTS, journal_lines, roster_csv
from bot.services import build_services
from core.clock import FrozenClock
from core.importers.journal import parse_journal
from core.importers.roster import parse_roster
from core.storage.db import Database
from core.storage.migrate import upgrade

TZ = ZoneInfo("Europe/Moscow")
RECIPIENTS = 10_000
SCALE = 200_000
CITY = 2_500_000


async def run(workdir: Path) -> dict[str, object]:
    figures: dict[str, object] = dict(await recipients(workdir))
    figures["scale"] = await digest_scale.at_scale(workdir, SCALE)
    return figures


async def run_city(workdir: Path) -> dict[str, object]:
    return await digest_scale.at_scale(workdir, CITY, repeats=1)


async def recipients(workdir: Path) -> dict[str, float]:
    db = await Database(workdir / "digest.sqlite3").connect()
    await upgrade(db)
    clock = FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=TZ).astimezone(UTC))
    services = build_services(db, b"bench-secret-0123456789abcdef", TZ, clock)
    await services.roster.apply(parse_roster(roster_csv(RECIPIENTS), "r.csv"), "r.csv")
    for i in range(RECIPIENTS):
        await services.linking.support_link(40_000_000 + i, f"+7910{i:07d}")
    # History, then today's grades for about half the students, a timetable and homework for
    # tomorrow for every class, and some open dots.
    await services.journal.import_journal(parse_journal(
        journal_lines(RECIPIENTS, 50_000, date(2026, 9, 1), 80), "h"), "h", notify=False)
    today = journal_lines(RECIPIENTS, 6_000, date(2026, 11, 24), 1, seed=5, prefix="t")
    rnd = random.Random(7)
    classes = [r[0] for r in await db.fetchall("SELECT name FROM classes")]
    extra = []
    for n, cls in enumerate(classes):
        for lesson in range(1, 7):
            extra.append(json.dumps({"id": f"l{n}-{lesson}", "type": "lesson", "class": cls,
                                     "date": "2026-11-25", "number": lesson,
                                     "subject": rnd.choice(SUBJECTS),
                                     "start": f"{7 + lesson:02d}:30",
                                     "end": f"{8 + lesson:02d}:15"}, ensure_ascii=False))
            extra.append(json.dumps({"id": f"h{n}-{lesson}", "type": "homework",
                                     "homework_id": f"h{n}-{lesson}", "class": cls,
                                     "subject": rnd.choice(SUBJECTS), "due": "2026-11-25",
                                     "text": "Параграф 12, вопросы 1–5"}, ensure_ascii=False))
    for n in range(2_000):
        extra.append(json.dumps({"id": f"d{n}", "type": "dot", "dot_id": f"d{n}",
                                 "student_id": f"S{rnd.randrange(RECIPIENTS):05d}",
                                 "subject": rnd.choice(SUBJECTS), "date": "2026-11-20",
                                 "expires": "2026-11-27"}, ensure_ascii=False))
    await services.journal.import_journal(parse_journal(today + extra, "t"), "t", notify=False)

    clock.moment = datetime(2026, 11, 24, 19, 0, tzinfo=TZ).astimezone(UTC)
    started = time.perf_counter()
    result = await services.digest.run()
    elapsed = time.perf_counter() - started
    assert result.sent == RECIPIENTS, result
    started = time.perf_counter()
    again = await services.digest.run()
    again_s = time.perf_counter() - started
    assert again.sent == 0
    await db.close()
    return {"recipients": RECIPIENTS, "seconds": round(elapsed, 1),
            "per_second": round(RECIPIENTS / elapsed), "second_run_seconds": round(again_s, 2)}
