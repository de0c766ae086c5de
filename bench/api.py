"""The ingestion API: events a second through `POST /v1/events` (100,000 grade events in batches
of 500, sent one after the other by one client to a real `diary run` with API_PORT), beside the
journal import the CLI runs on the same data (the whole file at once, and the same batches of
500 without HTTP); then the push latency from a post: the API's answer (the grade and its push
committed) and the Bot API fake receiving the message, with an idle bot.

Each import goes into its own copy of one prepared database (2,000 students, every guardian
linked). The client and the server share the machine's two cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import aiohttp

from bench.data import journal_lines
from bench.import_bench import SECRET, copy_sqlite, prepare, services_of
from core.identity import Hasher
from core.importers.journal import parse_journal
from core.services.tokens import ApiTokens
from core.storage.db import Database
from tests.support.botapi import FakeBotAPI

STUDENTS = 2000
EVENTS = 100_000
BATCH = 500
SAMPLES = 30
TOKEN = "3:API-BENCH"
SCHOOL = "Школа № 1"  # bench/data.py's roster
CLOCK_START = "2026-12-01T12:00:00+03:00"  # NOW in school time: the history is old news


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _batches(lines: list[str]) -> list[list[str]]:
    return [lines[i:i + BATCH] for i in range(0, len(lines), BATCH)]


async def _cli_whole(database: str, lines: list[str]) -> dict[str, float]:
    """The CLI's import of the whole file at once."""
    async with Database(database) as db:
        started = time.perf_counter()
        summary, _ = await services_of(db).journal.import_journal(
            parse_journal(lines, "journal.jsonl"), "journal.jsonl", notify=False)
        seconds = time.perf_counter() - started
    assert summary.applied_total == len(lines)
    return {"cli_seconds": round(seconds, 2),
            "cli_events_per_second": round(len(lines) / seconds)}


async def _cli_batches(database: str, lines: list[str]) -> dict[str, float]:
    """The CLI's import in the API's batches, without HTTP."""
    async with Database(database) as db:
        journal = services_of(db).journal
        started = time.perf_counter()
        for n, batch in enumerate(_batches(lines)):
            summary, _ = await journal.import_journal(parse_journal(batch, f"b{n}"), f"b{n}",
                                                      notify=False)
            assert summary.applied_total == len(batch)
        seconds = time.perf_counter() - started
    return {"cli_batches_seconds": round(seconds, 2),
            "cli_batches_events_per_second": round(len(lines) / seconds)}


def _history() -> list[str]:
    return journal_lines(STUDENTS, EVENTS, date(2026, 9, 1), 80, prefix="h")


async def run(workdir: Path) -> dict[str, float]:
    """SQLite: each import into a copy of one prepared database."""
    base = workdir / "api-base.sqlite3"
    figures: dict[str, float] = {"students": STUDENTS, "events": EVENTS, "batch": BATCH}
    await prepare(base, STUDENTS, 0)
    history = _history()
    for name, phase in (("cli", _cli_whole), ("batches", _cli_batches), ("api", None)):
        copy = workdir / f"{name}.sqlite3"
        copy_sqlite(base, copy)
        if phase is not None:
            figures.update(await phase(str(copy), history))
        else:
            figures.update(await _api(workdir, str(copy), {"DATABASE_PATH": str(copy)},
                                      history, figures["cli_seconds"]))
    return figures


async def run_postgresql(workdir: Path) -> dict[str, float] | str:
    """PostgreSQL: each import into a schema of its own, prepared alike."""
    from bench.pg import Unavailable, pg_schema

    figures: dict[str, float] = {"students": STUDENTS, "events": EVENTS, "batch": BATCH}
    history = _history()
    try:
        for phase in (_cli_whole, _cli_batches, None):
            async with pg_schema() as url:
                await prepare(url, STUDENTS, 0)  # type: ignore[arg-type]
                if phase is not None:
                    figures.update(await phase(url, history))
                else:
                    figures.update(await _api(workdir, url, {"DATABASE_URL": url}, history,
                                              figures["cli_seconds"]))
    except Unavailable as exc:
        return str(exc)
    return figures


async def _api(workdir: Path, database: str, db_env: dict[str, str], history: list[str],
               cli_seconds: float) -> dict[str, float]:
    """A real `diary run` with API_PORT on ``database``: the events in batches, then the
    latency of single posts."""
    figures: dict[str, float] = {}
    async with Database(database) as db:
        _record, token = await ApiTokens(db, Hasher(SECRET), services_of(db).clock).issue(SCHOOL)
    port = _port()
    async with FakeBotAPI(TOKEN) as api:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "DATABASE_PATH", "REDIS_URL")}
        env.update(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.url, SECRET_KEY=SECRET.decode(),
                   QUIET_HOURS="", CLOCK_START=CLOCK_START, API_PORT=str(port),
                   API_HOST="127.0.0.1", API_RATE_PER_MINUTE="1000000", **db_env)
        log = open(workdir / "api-bot.log", "a")
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=workdir,
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v1/events"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        try:
            async with aiohttp.ClientSession() as session:
                await _until_up(session, api, proc, port)
                await asyncio.sleep(1.0)  # let it settle
                bodies = [("\n".join(batch) + "\n").encode() for batch in _batches(history)]
                accepted = 0
                started = time.perf_counter()
                for body in bodies:
                    # History, loaded as an operator would: without pushes.
                    async with session.post(url + "?notify=false", data=body,
                                            headers=headers) as response:
                        assert response.status == 200, await response.text()
                        accepted += (await response.json())["totals"]["accepted"]
                seconds = time.perf_counter() - started
                assert accepted == EVENTS
                figures.update(api_seconds=round(seconds, 2),
                               api_events_per_second=round(EVENTS / seconds),
                               api_vs_cli=round(cli_seconds / seconds, 2))
                figures.update(await _latency(session, api, url, headers))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    return figures


async def _until_up(session: aiohttp.ClientSession, api: FakeBotAPI,
                    proc: subprocess.Popen, port: int) -> None:
    for _ in range(2400):
        if proc.poll() is not None:
            raise RuntimeError("the bot exited; see api-bot.log")
        if any(m == "setmycommands" for m, _ in api.calls):
            try:
                async with session.get(f"http://127.0.0.1:{port}/v1/openapi.json") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
        await asyncio.sleep(0.05)
    raise RuntimeError("the API did not come up")


async def _latency(session: aiohttp.ClientSession, api: FakeBotAPI, url: str,
                   headers: dict[str, str]) -> dict[str, float]:
    """One fresh grade a post for students with a history and a linked guardian."""
    answered: list[float] = []
    delivered: list[float] = []
    today = CLOCK_START[:10]
    for i in range(SAMPLES):
        body = json.dumps({"id": f"lat{i}", "type": "grade", "grade_id": f"lat{i}",
                           "student_id": f"S{i:05d}", "subject": "Физика", "date": today,
                           "value": 5}, ensure_ascii=False) + "\n"
        chat = 10_000_000 + i
        posted = time.monotonic()
        async with session.post(url, data=body.encode(), headers=headers) as response:
            answer = await response.json()
        answered.append(time.monotonic() - posted)
        assert answer["pushes"] == 1, answer
        record = await api.wait_for(lambda s, chat=chat: s.chat_id == chat, timeout=15)
        delivered.append(record.at - posted)
        await asyncio.sleep(0.3)

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1]

    return {
        "latency_samples": SAMPLES,
        "post_answer_p50_ms": round(statistics.median(answered) * 1000, 1),
        "post_answer_p95_ms": round(p95(answered) * 1000, 1),
        "post_to_telegram_p50_ms": round(statistics.median(delivered) * 1000, 1),
        "post_to_telegram_p95_ms": round(p95(delivered) * 1000, 1),
        "post_to_telegram_max_ms": round(max(delivered) * 1000, 1),
    }

