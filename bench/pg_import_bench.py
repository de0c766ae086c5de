"""Journal import on PostgreSQL: the server at ``TEST_DATABASE_URL`` (default the local one), in
schemas of its own, dropped at the end; skipped with a plain message when it cannot be reached.

The school is prepared once in SQLite (bench/import_bench.py ``prepare``) and copied into a new
schema for each import (``diary db copy``), then vacuumed and analyzed.

- pushes vs --no-notify: 10,000 fresh grades for 2,000 students with linked guardians (over
  100,000 grades of history), a push each, against the same file with --no-notify into the same
  data, in turn (medians, and the median of the pairs' ratios);
- importers at once: four processes, each importing its own file of 10,000 fresh grades (its own
  500 students of the school, pushes written), started together, against one such process alone,
  three times in turn; events a second in total, from the first import's start to the last one's
  end (medians, and the median of the rounds' ratios), and when the first of the four was done
  (one after the other: after about a quarter of the whole time; at the same time: near its end).

A process is ``python -m bench.pg_import_bench worker URL FILE``: it reads and parses its file and
connects, says it is ready, and imports when told to go.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.import_bench import (
    LIVE,
    live_figures,
    live_lines,
    prepare,
    services_of,
    timed_import,
)
from bench.pg import dsn, pg_schema
from core.importers.journal import parse_journal
from core.storage.copy import copy_database
from core.storage.db import Database, server_settings

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parents[1]


def server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_URL)


def _unreachable(url: str) -> str | None:
    """Why the server cannot be reached, or None."""
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "localhost", parsed.port or 5432),
                                      timeout=2):
            return None
    except OSError as exc:
        shown = parsed.render_as_string(hide_password=True)
        return f"PostgreSQL at {shown} is not reachable ({exc}): benchmark skipped"


_dsn = dsn
schema = pg_schema  # the URL of a new schema on a server, dropped at the end


@asynccontextmanager
async def copied(server: str, template: Path) -> AsyncIterator[str]:
    """A new schema holding every row of the SQLite ``template`` (``diary db copy``), vacuumed
    and analyzed as autovacuum would leave it a minute later; dropped at the end."""
    async with schema(server) as url:
        async with Database(template) as source, Database(url) as target:
            await copy_database(source, target)
        plain, settings = server_settings(make_url(url))
        conn = await asyncpg.connect(_dsn(plain.render_as_string(hide_password=False)),
                                     server_settings=settings)
        try:
            await conn.execute("VACUUM ANALYZE")  # not in a transaction: asyncpg's autocommit
        finally:
            await conn.close()
        yield url


async def pushes_vs_no_notify(server: str, template: Path, students: int,
                              runs: int) -> dict[str, float]:
    """The same file into the same data, with pushes and with --no-notify (each into a copy of
    ``template``), ``runs`` times in turn."""
    lines = live_lines(students)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(runs):
        for notify in (True, False):
            async with copied(server, template) as url, Database(url) as db:
                elapsed, summary = await timed_import(services_of(db), lines, "live.jsonl",
                                                      notify=notify)
            assert summary.applied_total == LIVE and summary.pushes == (LIVE if notify else 0)
            seconds[notify].append(elapsed)
    return live_figures(seconds, runs)


async def _workers(url: str, files: list[Path]) -> dict[str, float]:
    """One importer process a file, started together once every one is ready."""
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.pg_import_bench", "worker", url, str(path), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE) for path in files]
    try:
        for proc in procs:
            assert proc.stdout is not None
            ready = await proc.stdout.readline()
            assert ready.strip() == b"ready", ready
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outcomes = []
        for proc in procs:
            assert proc.stdout is not None
            outcomes.append(json.loads(await proc.stdout.readline()))
    finally:
        for proc in procs:
            if proc.returncode is None and proc.stdin is not None:
                proc.stdin.close()
        codes = await asyncio.gather(*(proc.wait() for proc in procs))
    assert codes == [0] * len(procs), codes
    events = sum(o["applied"] for o in outcomes)
    seconds = max(o["end"] for o in outcomes) - min(o["start"] for o in outcomes)
    return {
        "events": events,
        "pushes": sum(o["pushes"] for o in outcomes),
        "seconds": round(seconds, 2),
        "events_per_second": round(events / seconds),
        # One after the other, the first is done after a share of the whole time; at the same
        # time, near its end.
        "first_done_seconds": round(min(o["end"] for o in outcomes)
                                    - min(o["start"] for o in outcomes), 2),
    }


def _write_file(workdir: Path, name: str, students: int, first_student: int,
                events: int) -> Path:
    path = workdir / f"{name}.jsonl"
    path.write_text("\n".join(live_lines(students, events, prefix=f"{name}-",
                                         first_student=first_student)) + "\n", encoding="utf-8")
    return path


async def importers_at_once(server: str, workdir: Path, processes: int = 4,
                            students_each: int = 500, events_each: int = LIVE, runs: int = 3
                            ) -> dict[str, float]:
    """One process, then ``processes`` at once, ``runs`` times in turn, into one schema: each
    file has ids of its own (nothing is already imported); medians, and the median ratio."""
    one: list[dict[str, float]] = []
    many: list[dict[str, float]] = []
    template = workdir / "importers.sqlite3"
    await prepare(template, processes * students_each, events=0)
    async with copied(server, template) as url:
        for r in range(runs):
            alone = _write_file(workdir, f"r{r}-one", students_each, 0, events_each)
            one.append(await _workers(url, [alone]))
            files = [_write_file(workdir, f"r{r}-p{k}", students_each, k * students_each,
                                 events_each) for k in range(processes)]
            many.append(await _workers(url, files))
    for figures, count in ((one, 1), (many, processes)):
        for f in figures:
            assert f["events"] == f["pushes"] == events_each * count, f
    return {
        "importer_files_events": events_each,
        "importer_files_students": students_each,
        "one_importer_seconds": round(statistics.median(f["seconds"] for f in one), 2),
        "one_importer_events_per_second": round(
            statistics.median(f["events_per_second"] for f in one)),
        f"{processes}_importers_seconds": round(
            statistics.median(f["seconds"] for f in many), 2),
        f"{processes}_importers_first_done_seconds": round(statistics.median(
            f["first_done_seconds"] for f in many), 2),
        f"{processes}_importers_events_per_second": round(
            statistics.median(f["events_per_second"] for f in many)),
        f"{processes}_importers_vs_one": round(statistics.median(
            m["events_per_second"] / o["events_per_second"] for o, m in zip(one, many,
                                                                           strict=True)), 2),
    }


async def run(workdir: Path, students: int = 2000, history: int = 100_000,
              runs: int = 3) -> dict[str, object]:
    server = server_url()
    why = _unreachable(server)
    if why is not None:
        print(why, file=sys.stderr, flush=True)
        return {"skipped": why}
    template = workdir / "school.sqlite3"
    await prepare(template, students, history)
    return {
        **await pushes_vs_no_notify(server, template, students, runs),
        **await importers_at_once(server, workdir),
    }


async def worker(url: str, path: str, lines: list[str]) -> None:
    parsed = parse_journal(lines, path)
    async with Database(url) as db:
        services = services_of(db)
        await db.scalar("SELECT 1")  # connected before the start
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        start = time.time()
        summary, _ = await services.journal.import_journal(parsed, path)
        end = time.time()
    print(json.dumps({"start": start, "end": end, "applied": summary.applied_total,
                      "pushes": summary.pushes}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] != ["worker"] or len(sys.argv) != 4:
        sys.exit("usage: python -m bench.pg_import_bench worker URL FILE")
    _url, _path = sys.argv[2:]
    asyncio.run(worker(_url, _path, Path(_path).read_text(encoding="utf-8").splitlines()))
