"""The ingestion API through aiohttp's test client, as a journal system would call it: every
answer is checked against the OpenAPI document the server serves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api import mount_api, served_routes
from bot.config import Settings
from bot.services import Services
from core.identity import Hasher
from core.importers.journal import parse_journal
from core.services.tokens import ApiTokens
from tests.support.school import ANNA_PHONE, EXAMPLE_ROSTER, SECRET, import_roster

SCHOOL = "ГБОУ Школа № 1234"
OTHER_SCHOOL = "Лицей № 2"
ANNA = 777001
TODAY = "2026-11-23"  # the frozen clock's day
NDJSON = {"Content-Type": "application/x-ndjson"}
FIVE_POINT = "must be from 1 to 5 on the five-point scale (or set scale)"


class Ticker:
    """The rate limit's clock: seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def grade(n: int | str, student: str = "S-1001", value: int = 5, **extra: Any) -> dict:
    return {"id": f"e-{n}", "type": "grade", "grade_id": f"g-{n}", "student_id": student,
            "subject": "Алгебра", "date": TODAY, "value": value, "weight": 2,
            "work": "Контрольная работа", **extra}


def lines(*events: dict | str) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e, ensure_ascii=False)) + "\n"
                   for e in events)


def settings_for(tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": SECRET.decode(), "database_path": tmp_path / "unused.sqlite3",
        "redis_url": None, "api_port": None, "api_max_body_bytes": 64 * 1024,
        "api_rate_per_minute": 1000}
    values.update(changes)
    return Settings(_env_file=None, **values)


class Api:
    """A client of the API that checks each answer against the served OpenAPI document."""

    def __init__(self, client: TestClient, app: web.Application, token: str) -> None:
        self.client, self.app, self.token = client, app, token
        self.doc: dict[str, Any] | None = None

    async def document(self) -> dict[str, Any]:
        if self.doc is None:
            response = await self.client.get("/v1/openapi.json")
            assert response.status == 200
            self.doc = await response.json()
        return self.doc

    async def call(self, method: str, path: str, *, token: str | None = "default",
                   headers: dict[str, str] | None = None, **kwargs: Any
                   ) -> tuple[int, dict[str, Any], Any]:
        sent = dict(headers or {})
        if token is not None:
            bearer = self.token if token == "default" else token
            sent.setdefault("Authorization", f"Bearer {bearer}")
        response = await self.client.request(method, path, headers=sent, **kwargs)
        body = await response.json()
        await self.conforms(method, path, response.status, body, response.headers)
        return response.status, body, response.headers

    async def conforms(self, method: str, path: str, status: int, body: Any,
                       headers: Any) -> None:
        doc = await self.document()
        answers = doc["paths"][path.split("?")[0]][method.lower()]["responses"]
        answer = answers.get(str(status)) or answers["default"]
        schema = answer["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator(
            {**schema, "components": doc["components"]}).validate(body)
        for name in answer.get("headers", {}):
            assert name in headers, f"{status} without {name}"

    async def events(self, body: str | bytes | list, query: str = "", **kwargs: Any):
        if isinstance(body, list):
            return await self.call("POST", f"/v1/events{query}", json=body, **kwargs)
        kwargs.setdefault("headers", dict(NDJSON))
        return await self.call("POST", f"/v1/events{query}", data=body, **kwargs)

    async def roster(self, text: str, query: str = "", **kwargs: Any):
        kwargs.setdefault("headers", {"Content-Type": "text/csv"})
        return await self.call("POST", f"/v1/roster{query}", data=text.encode(), **kwargs)


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def history(school: Services) -> Services:
    """The example school; Anna (S-1001's mother) linked; S-1001 has a grade of history."""
    await school.linking.support_link(ANNA, ANNA_PHONE)
    old = json.dumps(grade("old", date="2026-11-02"), ensure_ascii=False)
    await school.journal.import_journal(parse_journal([old], "history.jsonl"), "history.jsonl",
                                        notify=False)
    return school


@pytest.fixture
def tokens(history: Services) -> ApiTokens:
    return ApiTokens(history.db, Hasher(SECRET), history.clock)


@pytest.fixture
def serve(history: Services, tokens: ApiTokens, tmp_path: Path, ticker: Ticker
          ) -> Callable[..., Any]:
    """``async with serve(**settings) as api``: the API on a test server, a token of the
    example school."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def start(**changes: Any) -> AsyncIterator[Api]:
        settings = settings_for(tmp_path, **changes)
        app = web.Application()
        sub = mount_api(app, history, settings, clock=ticker)
        _record, token = await tokens.issue(SCHOOL, "the journal")
        async with TestClient(TestServer(app)) as client:
            yield Api(client, sub, token)

    return start


@pytest.fixture
async def api(serve) -> AsyncIterator[Api]:
    async with serve() as client:
        yield client


async def pushes(services: Services, chat: int = ANNA) -> list[str]:
    rows = await services.db.fetchall(
        "SELECT kind, payload FROM outbox WHERE telegram_id = ? ORDER BY id", (chat,))
    found = [(r["kind"], json.loads(r["payload"])) for r in rows]
    return [f"{kind} {p.get('shown', p.get('value'))}" for kind, p in found]


async def grades(services: Services) -> list[str]:
    rows = await services.db.fetchall("SELECT external_id FROM grades ORDER BY external_id")
    return [r[0] for r in rows]


# -- the document and the routes ----------------------------------------------------------------


async def test_the_document_lists_exactly_the_routes_served(api):
    doc = await api.document()
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert served_routes(api.app) == documented
    assert doc["openapi"] == "3.1.0"
    assert doc["paths"]["/v1/openapi.json"]["get"]["security"] == []
    # The document's own schemas are valid JSON Schema (2020-12).
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    # It says the limits this server keeps.
    assert "65536 bytes" in json.dumps(doc)


async def test_the_document_needs_no_token_and_errors_are_json(api):
    status, _, _ = await api.call("GET", "/v1/openapi.json", token=None)
    assert status == 200
    response = await api.client.get("/v1/nothing")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
    response = await api.client.get("/v1/events")
    assert response.status == 405
    assert await response.json() == {"error": "method_not_allowed",
                                     "detail": "Method Not Allowed"}


# -- tokens -----------------------------------------------------------------------------------


async def test_no_token_a_bad_one_and_a_revoked_one_get_401_with_a_bearer_challenge(
        api, tokens, history):
    for token, headers in ((None, None), ("diary_not-a-real-one", None),
                           (None, {"Authorization": f"Basic {api.token}"})):
        status, body, sent = await api.events(lines(grade(1)), token=token,
                                              headers={**NDJSON, **(headers or {})})
        assert status == 401, body
        assert body["error"] == "unauthorized"
        assert sent["WWW-Authenticate"].startswith("Bearer")
    status, body, sent = await api.events(lines(grade(1)), token="diary_not-a-real-one")
    assert sent["WWW-Authenticate"] == 'Bearer realm="diary", error="invalid_token"'
    assert body["detail"] == "unknown or revoked token"

    record, token = await tokens.issue(SCHOOL)
    status, _, _ = await api.events(lines(grade(1)), token=token)
    assert status == 200
    await tokens.revoke(record.id)
    status, body, _ = await api.events(lines(grade(2)), token=token)
    assert status == 401 and body["detail"] == "unknown or revoked token"
    assert "g-2" not in await grades(history)


async def test_the_token_is_stored_only_as_a_keyed_hash_and_its_use_is_recorded(api, history):
    await api.events(lines(grade(1)))
    rows = await history.db.fetchall("SELECT * FROM api_tokens")
    assert rows and all(api.token not in json.dumps(dict(r), default=str) for r in rows)
    assert rows[-1]["token_hash"] == Hasher(SECRET).api_token(api.token)
    assert rows[-1]["last_used_at"] is not None


# -- limits -------------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_refused_with_413_by_length_and_while_read(api, history):
    big = lines(*[grade(n, comment="х" * 300) for n in range(120)])
    assert len(big.encode()) > 64 * 1024
    status, body, _ = await api.events(big)
    assert status == 413
    assert body == {"error": "payload_too_large",
                    "detail": "the body is larger than 65536 bytes (API_MAX_BODY_BYTES);"
                              " send it in several requests"}

    async def chunks():  # no Content-Length: counted while it is read
        for n in range(120):
            yield lines(grade(f"c{n}", comment="х" * 300)).encode()

    status, body, _ = await api.events(chunks())
    assert status == 413 and body["error"] == "payload_too_large"
    assert await grades(history) == ["g-old"]


async def test_more_requests_than_the_rate_get_429_with_retry_after(serve, ticker):
    async with serve(api_rate_per_minute=2) as api:
        for n in range(2):
            status, _, _ = await api.events(lines(grade(n)))
            assert status == 200
        status, body, headers = await api.events(lines(grade(3)))
        assert status == 429
        assert headers["Retry-After"] == "30"
        assert body["error"] == "rate_limited"
        assert body["detail"] == ("more than 2 requests a minute with this token;"
                                  " try again in 30 s")
        ticker.now += 30
        status, _, _ = await api.events(lines(grade(3)))
        assert status == 200


async def test_the_rate_is_counted_in_redis_when_it_is_set(serve, ticker):
    from tests.support.services import redis_url_or_skip

    async with serve(api_rate_per_minute=2, redis_url=redis_url_or_skip()) as api:
        for n in range(2):
            assert (await api.events(lines(grade(n))))[0] == 200
        status, _, headers = await api.events(lines(grade(3)))
        assert status == 429 and headers["Retry-After"] == "30"
        ticker.now += 29
        status, _, headers = await api.events(lines(grade(3)))
        assert status == 429 and headers["Retry-After"] == "1"
        ticker.now += 1
        assert (await api.events(lines(grade(3))))[0] == 200


async def test_other_content_types_get_415(api):
    status, body, _ = await api.call("POST", "/v1/events", data=b"<xml/>",
                                     headers={"Content-Type": "application/xml"})
    assert status == 415 and body["error"] == "unsupported_media_type"


# -- events -------------------------------------------------------------------------------------


async def test_a_grade_is_accepted_with_its_push_and_the_sender_is_woken(api, history):
    woken: list[int] = []
    history.journal.on_queued = lambda: woken.append(1)
    status, body, _ = await api.events(lines(grade(1)))
    assert status == 200
    assert body["results"] == [{"line": 1, "id": "e-1", "status": "accepted", "problems": []}]
    assert body["totals"] == {"lines": 1, "accepted": 1, "already_there": 0,
                              "duplicate_in_request": 0, "rejected": 0}
    assert body["applied_by_type"] == {"grade": 1}
    assert body["pushes"] == 1
    assert await pushes(history) == ["grade_new 5"]
    assert woken == [1]


async def test_bad_lines_reject_the_request_naming_line_and_field(api, history):
    body_text = lines(grade(1), grade(2, value=7), "", "{not json", grade(4, student="S-9999"),
                      {"id": "e-5", "type": "grade"})
    status, body, _ = await api.events(body_text)
    assert status == 422
    assert body["error"] == "invalid_lines" and body["applied"] is False
    assert body["detail"] == ("4 lines rejected; nothing was applied"
                              " (with ?partial=true the valid lines are applied)")
    by_line = {r["line"]: r for r in body["results"]}
    assert sorted(by_line) == [2, 4, 5, 6]
    assert by_line[2]["id"] == "e-2"
    assert by_line[2]["problems"] == [{"field": "value", "reason": FIVE_POINT}]
    assert by_line[4]["id"] is None
    assert by_line[4]["problems"][0]["field"] is None
    assert by_line[4]["problems"][0]["reason"].startswith("not valid JSON")
    assert by_line[5]["problems"] == [{"field": "student_id", "reason":
                                       "unknown student 'S-9999' (not on the roster)"}]
    assert {p["field"] for p in by_line[6]["problems"]} == {
        "grade_id", "student_id", "subject", "date", "value"}
    assert body["totals"]["lines"] == 5 and body["totals"]["rejected"] == 4  # one blank
    assert await grades(history) == ["g-old"]
    assert await pushes(history) == []


async def test_partial_applies_the_valid_lines_and_rejects_the_others(api, history):
    status, body, _ = await api.events(lines(grade(1), grade(2, value=0), grade(3)),
                                       query="?partial=true")
    assert status == 200
    assert [(r["line"], r["status"]) for r in body["results"]] == [
        (1, "accepted"), (2, "rejected"), (3, "accepted")]
    assert body["results"][1]["problems"] == [{"field": "value", "reason": FIVE_POINT}]
    assert body["partial"] is True and body["totals"]["rejected"] == 1
    assert await grades(history) == ["g-1", "g-3", "g-old"]


async def test_repeated_lines_and_a_repeated_post_are_taken_once(api, history):
    status, body, _ = await api.events(lines(grade(1), grade(1), grade(2)))
    assert status == 200
    assert [(r["line"], r["id"], r["status"]) for r in body["results"]] == [
        (1, "e-1", "accepted"), (2, "e-1", "duplicate_in_request"), (3, "e-2", "accepted")]
    status, body, _ = await api.events(lines(grade(1), grade(2)))
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["already_there", "already_there"]
    assert body["pushes"] == 0 and body["applied_by_type"] == {}
    assert await pushes(history) == ["grade_new 5", "grade_new 5"]


async def test_two_posts_of_one_event_at_once_apply_it_once_with_one_push(api, history):
    answers = await asyncio.gather(*(api.events(lines(grade(1))) for _ in range(2)))
    assert [a[0] for a in answers] == [200, 200]
    statuses = sorted(a[1]["results"][0]["status"] for a in answers)
    assert statuses == ["accepted", "already_there"]
    assert await pushes(history) == ["grade_new 5"]


async def test_a_json_array_is_taken_as_lines_and_malformed_json_is_400(api, history):
    status, body, _ = await api.events([grade(1), grade(1), {"id": "x"}], query="?partial=1")
    assert status == 200
    assert [(r["line"], r["status"]) for r in body["results"]] == [
        (1, "accepted"), (2, "duplicate_in_request"), (3, "rejected")]
    assert body["results"][2]["problems"] == [{"field": "type", "reason": "required"}]
    status, body, _ = await api.call("POST", "/v1/events", data=b'[{"id": "e-9",',
                                     headers={"Content-Type": "application/json"})
    assert status == 400
    assert body == {"error": "malformed_json",
                    "detail": "not valid JSON: Expecting property name enclosed in double"
                              " quotes at line 1, column 15; nothing was applied (JSON Lines"
                              " go as application/x-ndjson)"}
    status, body, _ = await api.call("POST", "/v1/events", data=lines(grade(2), grade(3)),
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"] == "malformed_json"
    assert await grades(history) == ["g-1", "g-old"]


async def test_bad_query_values_empty_bodies_and_bad_bytes_are_400(api):
    status, body, _ = await api.events(lines(grade(1)), query="?partial=maybe")
    assert (status, body["detail"]) == (400, "partial: must be true or false")
    status, body, _ = await api.events("\n\n")
    assert (status, body["error"]) == (400, "empty_body")
    status, body, _ = await api.events(b"\x00\x01")
    assert status == 400 and body["error"] == "bad_encoding"


async def test_notify_false_stores_without_pushes(api, history):
    status, body, _ = await api.events(lines(grade(1)), query="?notify=false")
    assert status == 200 and body["notify"] is False and body["pushes"] == 0
    assert await pushes(history) == []
    assert "g-1" in await grades(history)


async def test_another_schools_children_and_classes_are_rejected_line_by_line(api, history):
    await import_roster(history, (
        "school,class,student_id,student_last_name,student_first_name,guardian_last_name,"
        "guardian_first_name,guardian_phone\n"
        f"{OTHER_SCHOOL},8В,S-2001,Орлов,Пётр,Орлова,Нина,+7 903 111-22-33\n"), "other.csv")
    # The other school's own grade, imported by its journal.
    theirs = json.dumps(grade("theirs", student="S-2001"), ensure_ascii=False)
    await history.journal.import_journal(parse_journal([theirs], "o"), "o", notify=False)
    homework = {"id": "hw-1", "type": "homework", "homework_id": "hw-1", "class": "8 в",
                "subject": "Физика", "due": "2026-11-24", "text": "§ 12"}
    change = {"id": "chg-1", "type": "grade_changed", "grade_id": "g-theirs", "value": 2}
    status, body, _ = await api.events(
        lines(grade(1), grade(2, student="S-2001"), homework, change, PERIOD),
        query="?partial=true")
    assert status == 200
    assert [(r["line"], r["status"], r["problems"]) for r in body["results"]] == [
        (1, "accepted", []),
        (2, "rejected", [{"field": "student_id", "reason": "unknown student 'S-2001'"
                                                           " (not on the roster of this school)"}]),
        (3, "rejected", [{"field": "class", "reason": "unknown class '8В' (not in this school)"}]),
        (4, "rejected", [{"field": "grade_id", "reason": "unknown grade 'g-theirs'"}]),
        (5, "rejected", [{"field": "type", "reason": "periods apply to every school here: they"
                          " are imported with `diary journal import`, not by one school's"
                          " token"}]),
    ]
    assert await history.db.scalar("SELECT COUNT(*) FROM periods") == 0
    row = await history.db.fetchone("SELECT value FROM grades WHERE external_id = 'g-theirs'")
    assert row["value"] == 5
    assert "g-2" not in await grades(history)


PERIOD = {"id": "p-2", "type": "period", "period_id": "2026-q2", "name": "2 четверть",
          "start": "2026-11-05", "end": "2026-12-28"}


async def test_the_one_school_declares_its_periods(api, history):
    status, body, _ = await api.events(lines(PERIOD))
    assert status == 200 and body["applied_by_type"] == {"period": 1}
    assert await history.db.scalar("SELECT COUNT(*) FROM periods") == 1


# -- the roster ---------------------------------------------------------------------------------


ROSTER = EXAMPLE_ROSTER.read_text(encoding="utf-8")


async def test_the_roster_dry_run_then_import(api, history):
    added = ROSTER + f"{SCHOOL},7Б,S-1006,Зайцев,Павел,,,,,,,,,,,\n"
    status, body, _ = await api.roster(added, query="?dry_run=true")
    assert status == 200
    assert body["dry_run"] is True
    assert body["counts"]["students"] == 6 and body["counts"]["students_added"] == 1
    assert body["warnings"] == []
    assert await history.db.scalar("SELECT COUNT(*) FROM students") == 5
    status, body, _ = await api.roster(added)
    assert status == 200 and body["dry_run"] is False
    assert await history.db.scalar("SELECT COUNT(*) FROM students") == 6


async def test_a_roster_without_the_school_column_is_the_tokens_school(api, history):
    head, *rows = ROSTER.splitlines()
    strip = lambda row: row.split(",", 1)[1]  # noqa: E731
    text = "\n".join([strip(head), *map(strip, rows)]) + "\n"
    status, body, _ = await api.roster(text)
    assert status == 200, body
    assert body["counts"]["students_added"] == 0
    assert body["counts"]["students_deactivated"] == 0


async def test_roster_problems_name_line_and_field_and_change_nothing(api, history):
    text = ROSTER + (f"{OTHER_SCHOOL},8В,S-2001,Орлов,Пётр,,,,,,,,,,,\n"
                     f"{SCHOOL},99Я,S-1007,Зайцев,Павел,,,,,,,,,,,\n")
    status, body, _ = await api.roster(text)
    assert status == 422
    assert body["error"] == "invalid_roster"
    # The file's own problems first (the school is checked on a readable roster).
    assert body["problems"] == [{"line": 9, "field": "class",
                                 "reason": "not a class like 7Б: '99Я'"}]
    status, body, _ = await api.roster(ROSTER + f"{OTHER_SCHOOL},8В,S-2001,Орлов,Пётр,,,,,,,,,,,\n")
    assert status == 422
    assert body == {"error": "invalid_roster", "detail": "1 problem; nothing was changed",
                    "problems": [{"line": 8, "field": "school",
                                  "reason": "another school than the token's"}]}
    assert await history.db.scalar("SELECT COUNT(*) FROM students") == 5


# -- POST /v1/snapshots ---------------------------------------------------------------------------

def snapshot(sid: str, marks: list[dict], student: str = "S-1001",
             taken: str = "2026-11-23T10:00:00+03:00") -> dict:
    return {"snapshot_id": sid, "student_id": student, "from": "2026-11-01", "to": "2026-11-30",
            "taken_at": taken, "marks": marks}


def snap_mark(n: int | str, value: object = 5, day: str = TODAY) -> dict:
    return {"grade_id": f"g-{n}", "subject": "Алгебра", "date": day, "value": value,
            "weight": 2}


async def test_snapshots_are_synced_first_silently_then_with_pushes(api, history):
    first = snapshot("s1", [snap_mark("old", day="2026-11-02"), snap_mark(1, 4)])
    status, body, _ = await api.call(
        "POST", "/v1/snapshots", data=lines(first).encode(), headers=dict(NDJSON))
    assert status == 200, body["problems"]
    assert (body["status"], body["pushes"], body["totals"]["new"]) == ("synced", 0, 1)
    assert body["snapshots"][0]["first"] == 1
    second = snapshot("s2", [snap_mark("old", day="2026-11-02"), snap_mark(1, 4),
                             snap_mark(2, "5/4")], taken="2026-11-23T11:00:00+03:00")
    status, body, _ = await api.call(
        "POST", "/v1/snapshots", data=lines(second).encode(), headers=dict(NDJSON))
    assert status == 200, body["problems"]
    assert (body["totals"]["new"], body["totals"]["unchanged"], body["pushes"]) == (1, 2, 1)
    assert await pushes(history) == ["grade_new 5/4"]
    assert {"g-1", "g-2", "g-old"} <= set(await grades(history))
    # The same marks in the next export: nothing changed, whatever form they take.
    third = {**second, "snapshot_id": "s3", "taken_at": "2026-11-23T12:00:00+03:00"}
    status, body, _ = await api.call(
        "POST", "/v1/snapshots", data=lines(third).encode(), headers=dict(NDJSON))
    assert status == 200, body["problems"]
    assert (body["totals"]["unchanged"], body["totals"]["changed"], body["pushes"]) == (3, 0, 0)


async def test_a_snapshot_of_another_schools_student_changes_nothing(api, history):
    await import_roster(history, (
        "school,class,student_id,student_last_name,student_first_name,guardian_last_name,"
        "guardian_first_name,guardian_phone\n"
        f"{OTHER_SCHOOL},8В,S-2001,Орлов,Пётр,Орлова,Нина,+7 903 111-22-33\n"), "other.csv")
    before = await grades(history)
    status, body, _ = await api.call(
        "POST", "/v1/snapshots", headers=dict(NDJSON),
        data=lines(snapshot("s1", [snap_mark(1)]),
                   snapshot("s2", [snap_mark(2)], student="S-2001")).encode())
    assert status == 422
    assert (body["error"], body["status"]) == ("invalid_snapshots", "invalid")
    assert [(p["line"], p["field"], p["reason"]) for p in body["problems"]] == [
        (2, "student_id", "unknown student 'S-2001' (not on the roster of this school)")]
    assert await grades(history) == before


async def test_a_snapshot_dry_run_and_a_bad_media_type(api, history):
    body_text = lines(snapshot("s1", [snap_mark(1)])).encode()
    status, body, _ = await api.call("POST", "/v1/snapshots?dry_run=true", data=body_text,
                                     headers=dict(NDJSON))
    assert (status, body["status"], body["totals"]["new"]) == (200, "dry_run", 1)
    assert "g-1" not in await grades(history)
    status, body, _ = await api.call("POST", "/v1/snapshots", data=body_text,
                                     headers={"Content-Type": "application/xml"})
    assert (status, body["error"]) == (415, "unsupported_media_type")
