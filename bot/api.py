"""The HTTP ingestion API: a school's journal system posts journal events and its roster live.

Mounted under ``/v1`` of an aiohttp application: by `diary web` beside the webhook (on
``WEB_PORT``), and by `diary run` on ``API_HOST``:``API_PORT`` when ``API_PORT`` is set.

- ``POST /v1/events``: journal events as JSON Lines (or a JSON array of event objects), checked
  and applied exactly as `diary journal import` does: the same parser, the same idempotency by
  event id, one transaction with the pushes. All or nothing by default (any rejected line: 422,
  nothing applied); ``?partial=true`` applies the valid lines as ``--skip-invalid`` does;
  ``?notify=false`` stores without pushes as ``--no-notify``. The answer has a result per line.
- ``POST /v1/roster``: the roster CSV as `diary roster import` (``?dry_run=true``).
- ``POST /v1/snapshots``: snapshots of marks as `diary journal sync` (``?dry_run``, ``?force``,
  ``?notify``).
- ``GET /v1/openapi.json``: the OpenAPI 3.1 document of all this.

Every request but the document needs ``Authorization: Bearer <token>``, a token issued with
`diary tokens issue --school NAME`: what it posts may be about that school's children and
classes only. Each token may make ``API_RATE_PER_MINUTE`` requests a minute (a token bucket that
holds a minute's worth: in Redis when ``REDIS_URL`` is set, so every process counts together,
else in this process); a body over ``API_MAX_BODY_BYTES`` is refused (413) before it is read
whole. Every error is JSON, ``{"error": code, "detail": what is wrong}``. Neither tokens nor
bodies are ever logged.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy.exc
from aiohttp import web

from bot.config import Settings
from bot.services import Services
from core.errors import InputInvalid, Problem
from core.identity import Hasher
from core.importers.journal import ParsedJournal, PeriodEvent, parse_event, parse_journal
from core.importers.roster import parse_roster
from core.importers.text import decode, split_lines
from core.services.snapshot import sync_snapshots
from core.services.tokens import ApiToken, ApiTokens

log = logging.getLogger(__name__)

PREFIX = "/v1"
CHUNK = 64 * 1024
JSON_LINES_TYPES = frozenset({
    "", "application/x-ndjson", "application/ndjson", "application/jsonl",
    "application/x-jsonlines", "application/json-lines", "application/octet-stream",
})
CSV_TYPES = frozenset({"", "text/csv", "application/csv", "application/octet-stream"})
STATUSES = ("accepted", "already_there", "duplicate_in_request", "rejected")


class ApiError(Exception):
    """An answer other than success: its HTTP status, its code and what is wrong."""

    def __init__(self, status: int, error: str, detail: str,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> web.Response:
        return web.json_response({"error": self.error, "detail": self.detail, **self.extra},
                                 status=self.status, headers=self.headers,
                                 dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


# -- the rate limit ----------------------------------------------------------------------------


class LocalRateLimit:
    """A token bucket per API token, in this process: ``per_minute`` requests a minute, as many
    at once after a quiet minute. ``clock``: seconds (monotonic)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.buckets: dict[int, tuple[float, float]] = {}  # token id -> (tokens, when)

    async def take(self, key: int) -> float:
        """0 when the request may go on, else the seconds until it may."""
        now = self.clock()
        tokens, stamp = self.buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - stamp) * self.rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    async def close(self) -> None:
        pass


# The same bucket in Redis, one atomic script a request. The time comes from the caller.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
if now > stamp then
  tokens = math.min(capacity, tokens + (now - stamp) * rate)
  stamp = now
end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(stamp))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class RedisRateLimit:
    """The bucket shared by every process through Redis; when Redis cannot be reached, this
    process's own bucket stands in (logged), so the API keeps answering."""

    def __init__(self, url: str, per_minute: int,
                 clock: Callable[[], float] = time.time, prefix: str = "diary:api") -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url)
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self.clock, self.prefix = clock, prefix
        self.local = LocalRateLimit(per_minute, clock)
        self._take = self.redis.register_script(_TAKE)
        self._failing = False

    async def take(self, key: int) -> float:
        from redis.exceptions import RedisError

        try:
            wait = float(await self._take(keys=[f"{self.prefix}:rate:{key}"],
                                          args=[self.capacity, self.rate, self.clock()]))
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("api rate limit: Redis unavailable (%s); counting in this process",
                            exc.__class__.__name__)
            self._failing = True
            return await self.local.take(key)
        self._failing = False
        return wait

    async def close(self) -> None:
        await self.redis.aclose()


# -- the application ---------------------------------------------------------------------------


@dataclass
class Api:
    services: Services
    settings: Settings
    tokens: ApiTokens
    limit: LocalRateLimit | RedisRateLimit

    # -- what every request goes through ---------------------------------------------------

    async def authorized(self, request: web.Request) -> ApiToken:
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if not header:
            raise _unauthorized("missing", "send Authorization: Bearer <token>")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthorized("invalid_request",
                                "the Authorization header must be Bearer <token>")
        token = await self.tokens.authenticate(credentials)
        if token is None:
            raise _unauthorized("invalid_token", "unknown or revoked token")
        wait = await self.limit.take(token.id)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, "rate_limited",
                           f"more than {self.settings.api_rate_per_minute} requests a minute"
                           f" with this token; try again in {retry} s",
                           headers={"Retry-After": str(retry)})
        return token

    async def body(self, request: web.Request) -> bytes:
        """The whole body, refused (413) as soon as it is known to exceed the limit."""
        limit = self.settings.api_max_body_bytes
        too_large = ApiError(413, "payload_too_large",
                             f"the body is larger than {limit} bytes (API_MAX_BODY_BYTES);"
                             " send it in several requests")
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def flag(request: web.Request, name: str, default: bool) -> bool:
        raw = request.query.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in ("true", "1", "yes", "on", ""):  # a bare ?partial is true
            return True
        if value in ("false", "0", "no", "off"):
            return False
        raise ApiError(400, "bad_request", f"{name}: must be true or false")

    @staticmethod
    def text(data: bytes, source: str) -> str:
        try:
            text, _encoding = decode(data, source)
        except InputInvalid as exc:
            problem = exc.problems[0]
            raise ApiError(400, "bad_encoding", f"line {problem.line}: {problem.message}"
                           ) from None
        return text

    # -- POST /v1/events -------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        token = await self.authorized(request)
        kind = request.content_type if request.headers.get("Content-Type") else ""
        if kind != "application/json" and kind not in JSON_LINES_TYPES and not (
                kind.startswith("text/")):
            raise ApiError(415, "unsupported_media_type",
                           f"{kind}: send application/x-ndjson (JSON Lines) or"
                           " application/json (an array of event objects)")
        partial = self.flag(request, "partial", False)
        notify = self.flag(request, "notify", True)
        source = f"api:token {token.id}"
        text = self.text(await self.body(request), source)
        if kind == "application/json":
            batch = _array_batch(text, source)
        else:
            batch = _lines_batch(text, source)
        if not batch.numbers:
            raise ApiError(400, "empty_body", "the body holds no events")
        await self.keep_to_school(batch, token, source)
        journal = self.services.journal
        try:
            summary, checked = await journal.import_journal(
                batch.parsed, source, batch.raw, notify=notify, skip_invalid=partial,
                school=token.school)
        except InputInvalid as exc:
            results = _rejected_results(batch, exc.problems)
            totals = dict.fromkeys(STATUSES, 0)
            totals.update(lines=len(batch.numbers), rejected=len(results))
            log.info("api: token %d posted %d lines, %d rejected: nothing applied", token.id,
                     len(batch.numbers), len(results))
            raise ApiError(422, "invalid_lines",
                           f"{_count(len(results), 'line')} rejected; nothing was applied"
                           " (with ?partial=true the valid lines are applied)",
                           applied=False, totals=totals, results=results) from None
        results = _results(batch, checked)
        totals = {status: sum(1 for r in results if r["status"] == status)
                  for status in STATUSES}
        log.info("api: token %d posted %d lines: %d accepted, %d already there, %d repeated,"
                 " %d rejected; %d pushes queued", token.id, len(batch.numbers),
                 totals["accepted"], totals["already_there"], totals["duplicate_in_request"],
                 totals["rejected"], summary.pushes)
        return _json({
            "applied": True, "partial": partial, "notify": notify,
            "totals": {"lines": len(batch.numbers), **totals},
            "applied_by_type": dict(sorted(summary.applied.items())),
            "pushes": summary.pushes,
            "results": results,
        })

    async def keep_to_school(self, batch: Batch, token: ApiToken, source: str) -> None:
        """Periods are the whole installation's calendar: a school's token may declare them
        only where it is the one school (else `diary journal import` does)."""
        parsed = batch.parsed
        if not any(isinstance(e, PeriodEvent) for e in parsed.events):
            return
        others = await self.services.db.scalar(
            "SELECT COUNT(*) FROM schools WHERE name <> ?", (token.school,))
        if not others:
            return
        kept = []
        for event in parsed.events:
            if isinstance(event, PeriodEvent):
                parsed.problems.append(Problem(
                    source, event.line, "type", "periods apply to every school here: they are"
                    " imported with `diary journal import`, not by one school's token"))
                parsed.rejected_lines[event.line] = batch.raw[event.line]
            else:
                kept.append(event)
        parsed.events[:] = kept

    # -- POST /v1/roster -------------------------------------------------------------------

    async def roster(self, request: web.Request) -> web.Response:
        token = await self.authorized(request)
        kind = request.content_type if request.headers.get("Content-Type") else ""
        if kind not in CSV_TYPES and not kind.startswith("text/"):
            raise ApiError(415, "unsupported_media_type", f"{kind}: send text/csv")
        dry_run = self.flag(request, "dry_run", False)
        source = f"api:token {token.id}"
        text = self.text(await self.body(request), source)
        try:
            roster = parse_roster(text, source)
        except InputInvalid as exc:
            raise _roster_invalid(exc.problems) from None
        students, problems = [], []
        for student in roster.students:
            if student.school == "":
                student = replace(student, school=token.school)
            elif student.school != token.school:
                problems.append(Problem(source, student.line, "school",
                                        "another school than the token's"))
            students.append(student)
        if problems:
            raise _roster_invalid(problems)
        try:
            summary = await self.services.roster.apply(
                replace(roster, students=students), source, dry_run=dry_run)
        except InputInvalid as exc:
            raise _roster_invalid(exc.problems) from None
        counts = {k: v for k, v in asdict(summary).items() if isinstance(v, int)
                  and not isinstance(v, bool)}
        log.info("api: token %d %s a roster of %d students", token.id,
                 "checked" if dry_run else "imported", summary.students)
        return _json({
            "dry_run": dry_run, "counts": counts,
            "warnings": [{"line": line, "field": field,
                          "reason": "now names another person than before (a different name):"
                                    " a new guardian; the previous one's Telegram account links"
                                    + (" would end" if dry_run else " ended")}
                         for line, field in summary.replaced],
        })

    # -- POST /v1/snapshots ----------------------------------------------------------------

    async def snapshots(self, request: web.Request) -> web.Response:
        token = await self.authorized(request)
        kind = request.content_type if request.headers.get("Content-Type") else ""
        if kind not in JSON_LINES_TYPES and not kind.startswith("text/"):
            raise ApiError(415, "unsupported_media_type",
                           f"{kind}: send application/x-ndjson (one snapshot a line)")
        dry_run = self.flag(request, "dry_run", False)
        force = self.flag(request, "force", False)
        notify = self.flag(request, "notify", True)
        source = f"api:token {token.id}"
        text = self.text(await self.body(request), source)
        if not text.strip():
            raise ApiError(400, "empty_body", "the body holds no snapshots")
        result = await sync_snapshots(self.services.journal, text, filename=source,
                                      force=force, notify=notify, dry_run=dry_run,
                                      school=token.school)
        body = result.as_dict()
        if not result.ok:
            log.info("api: token %d posted %d snapshot lines, %d problems: nothing applied",
                     token.id, result.lines, len(result.problems))
            error = ApiError(422, "invalid_snapshots",
                             f"{_count(len(result.problems), 'problem')}; nothing was changed")
            error.extra = {k: v for k, v in body.items() if k != "file"}
            raise error
        log.info("api: token %d synced %d snapshots: %d new, %d changed, %d deleted;"
                 " %d pushes queued", token.id, len(result.snapshots), result.total("new"),
                 result.total("changed"), result.total("deleted"), result.pushes)
        body.pop("file")
        return _json(body)

    # -- GET /v1/openapi.json --------------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        from bot.api_schema import document

        return _json(document(self.settings))


def _unauthorized(error: str, detail: str) -> ApiError:
    challenge = 'Bearer realm="diary"' + (
        f', error="{error}"' if error in ("invalid_token", "invalid_request") else "")
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def _roster_invalid(problems: list[Problem]) -> ApiError:
    return ApiError(422, "invalid_roster",
                    f"{_count(len(problems), 'problem')}; nothing was changed",
                    problems=[{"line": p.line, "field": p.field or None, "reason": p.message}
                              for p in problems])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- a request's events, line by line --------------------------------------------------------


@dataclass
class Batch:
    parsed: ParsedJournal
    raw: dict[int, str]  # line -> its text (for the record of rejects)
    numbers: list[int]  # the lines holding something, in order
    ids: dict[int, str | None]  # line -> its event's id as the parser takes it, if any


def _event_id(obj: object) -> str | None:
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    if type(value) is str and value.strip():
        return value.strip()
    if type(value) is int:
        return str(value)
    return None


def _lines_batch(text: str, source: str) -> Batch:
    lines = split_lines(text)
    parsed = parse_journal(lines, source)
    numbers: list[int] = []
    raw: dict[int, str] = {}
    for number, line in enumerate(lines, 1):
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        if line and not line.isspace():
            numbers.append(number)
            raw[number] = line
    ids: dict[int, str | None] = {e.line: e.id for e in parsed.events}
    for number in numbers:
        if number not in ids:
            try:
                ids[number] = _event_id(json.loads(raw[number]))
            except (ValueError, RecursionError):
                ids[number] = None
    return Batch(parsed, raw, numbers, ids)


def _array_batch(text: str, source: str) -> Batch:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json",
                       f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno};"
                       " nothing was applied (JSON Lines go as application/x-ndjson)") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ApiError(400, "malformed_json", f"not valid JSON: {reason}") from None
    if not isinstance(items, list):
        raise ApiError(400, "malformed_json",
                       "application/json must be an array of event objects"
                       " (JSON Lines go as application/x-ndjson)")
    parsed = ParsedJournal()
    seen: set[str] = set()
    raw: dict[int, str] = {}
    ids: dict[int, str | None] = {}
    for number, item in enumerate(items, 1):
        raw[number] = _dumps(item)
        event, problems = parse_event(item, number, source)
        if event is None:
            parsed.problems.extend(problems)
            parsed.rejected_lines[number] = raw[number]
            ids[number] = _event_id(item)
            continue
        ids[number] = event.id
        if event.id in seen:
            parsed.duplicates += 1
            continue
        seen.add(event.id)
        parsed.events.append(event)
    parsed.lines = len(items)
    return Batch(parsed, raw, list(range(1, len(items) + 1)), ids)


def _problems_by_line(problems: list[Problem]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for p in problems:
        found.setdefault(p.line, []).append({"field": p.field or None, "reason": p.message})
    return found


def _rejected_results(batch: Batch, problems: list[Problem]) -> list[dict[str, Any]]:
    by_line = _problems_by_line(problems)
    return [{"line": n, "id": batch.ids.get(n), "status": "rejected", "problems": by_line[n]}
            for n in sorted(by_line)]


def _results(batch: Batch, checked) -> list[dict[str, Any]]:
    by_line = _problems_by_line(checked.problems)
    events = {e.line: e for e in batch.parsed.events}
    applied = {e.line for e in checked.events}
    results = []
    for n in batch.numbers:
        if n in checked.rejected_lines or n in by_line:
            status = "rejected"
        elif n in applied:
            status = "accepted"
        elif n in events:
            status = "already_there"
        else:
            status = "duplicate_in_request"
        results.append({"line": n, "id": batch.ids.get(n), "status": status,
                        "problems": by_line.get(n, [])})
    return results


# -- wiring ------------------------------------------------------------------------------------


@web.middleware
async def _errors(request: web.Request,
                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """Every answer of the API is JSON, its errors ``{"error": …, "detail": …}``."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k == "Allow"}
        return ApiError(exc.status, error, exc.reason, headers=headers).response()
    except (sqlite3.OperationalError, sqlalchemy.exc.OperationalError) as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return ApiError(503, "busy", "the database is busy; nothing was changed, try again",
                            headers={"Retry-After": "1"}).response()
        log.exception("api: %s %s failed", request.method, request.path)
        return ApiError(503, "unavailable", "the database is unavailable; nothing was changed"
                        ).response()
    except Exception:
        log.exception("api: %s %s failed", request.method, request.path)
        return ApiError(500, "internal_error", "the server failed; nothing was changed"
                        ).response()


API = web.AppKey("api", Api)


def create_api_app(services: Services, settings: Settings, *,
                   clock: Callable[[], float] | None = None) -> web.Application:
    """The API as an application to mount at ``/v1`` (see ``mount_api``). ``clock``: the rate
    limit's seconds (tests)."""
    tokens = ApiTokens(services.db, Hasher(settings.secret()), services.clock)
    limit: LocalRateLimit | RedisRateLimit
    if settings.redis_url:
        limit = RedisRateLimit(settings.redis_url, settings.api_rate_per_minute,
                               clock or time.time)
    else:
        limit = LocalRateLimit(settings.api_rate_per_minute, clock or time.monotonic)
    api = Api(services, settings, tokens, limit)
    app = web.Application(middlewares=[_errors])
    app[API] = api
    app.router.add_post("/events", api.events)
    app.router.add_post("/roster", api.roster)
    app.router.add_post("/snapshots", api.snapshots)
    app.router.add_get("/openapi.json", api.openapi, allow_head=False)

    async def close(_app: web.Application) -> None:
        await limit.close()

    app.on_cleanup.append(close)
    return app


def mount_api(app: web.Application, services: Services, settings: Settings, *,
              clock: Callable[[], float] | None = None) -> web.Application:
    """Serve the API under ``/v1`` of ``app``; returns the API's own application."""
    api = create_api_app(services, settings, clock=clock)
    app.add_subapp(PREFIX, api)
    return api


def served_routes(api: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route the API serves, the paths with their ``/v1`` prefix."""
    found = set()
    for route in api.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        found.add((route.method.lower(), PREFIX + path if not path.startswith(PREFIX)
                   else path))
    return found
