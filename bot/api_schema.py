"""The OpenAPI 3.1 document of the ingestion API (bot/api.py), served at /v1/openapi.json.

The tests hold the server to it: every route served under /v1 is here and every path here is
served, and every answer the tests get validates against the schema documented for its status.
"""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from core.importers.journal import BUILDERS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str, headers: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description,
                              "content": {"application/json": {"schema": _ref(schema)}}}
    if headers:
        answer["headers"] = headers
    return answer


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _answer(description, "Error", headers)


NONNEGATIVE = {"type": "integer", "minimum": 0}
LINE = {"type": "integer", "minimum": 1,
        "description": "the physical line (1-based) of JSON Lines, or the element's position"
                       " (1-based) in a JSON array"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "a stable code: unauthorized,"
                      " rate_limited, payload_too_large, malformed_json, bad_encoding,"
                      " bad_request, empty_body, unsupported_media_type, invalid_lines,"
                      " invalid_roster, invalid_snapshots, not_found, method_not_allowed,"
                      " busy, unavailable, internal_error"},
            "detail": {"type": "string", "description": "what is wrong, for a person"},
        },
    },
    "Problem": {
        "type": "object",
        "required": ["field", "reason"],
        "additionalProperties": False,
        "properties": {
            "field": {"type": ["string", "null"],
                      "description": "the field at fault; null when it is the whole line"},
            "reason": {"type": "string"},
        },
    },
    "LineProblem": {
        "type": "object",
        "required": ["line", "field", "reason"],
        "additionalProperties": False,
        "properties": {
            "line": {"type": "integer", "minimum": 0,
                     "description": "the CSV line (0: the file as a whole)"},
            "field": {"type": ["string", "null"], "description": "the column at fault"},
            "reason": {"type": "string"},
        },
    },
    "LineResult": {
        "type": "object",
        "required": ["line", "id", "status", "problems"],
        "additionalProperties": False,
        "properties": {
            "line": LINE,
            "id": {"type": ["string", "null"],
                   "description": "the event's id, when the line has a readable one"},
            "status": {"enum": ["accepted", "already_there", "duplicate_in_request",
                                "rejected"],
                       "description": "accepted: applied now; already_there: this id was"
                       " imported before (nothing changed); duplicate_in_request: the id came"
                       " earlier in this request; rejected: see problems"},
            "problems": {"type": "array", "items": _ref("Problem")},
        },
    },
    "Totals": {
        "type": "object",
        "required": ["lines", "accepted", "already_there", "duplicate_in_request",
                     "rejected"],
        "additionalProperties": False,
        "properties": {name: NONNEGATIVE for name in (
            "lines", "accepted", "already_there", "duplicate_in_request", "rejected")},
    },
    "EventsResult": {
        "type": "object",
        "required": ["applied", "partial", "notify", "totals", "applied_by_type", "pushes",
                     "results"],
        "additionalProperties": False,
        "properties": {
            "applied": {"const": True},
            "partial": {"type": "boolean"},
            "notify": {"type": "boolean"},
            "totals": _ref("Totals"),
            "applied_by_type": {
                "type": "object",
                "propertyNames": {"enum": sorted(BUILDERS)},
                "additionalProperties": NONNEGATIVE,
                "description": "events applied now, by type",
            },
            "pushes": {**NONNEGATIVE, "description": "pushes queued for families"},
            "results": {"type": "array", "items": _ref("LineResult"),
                        "description": "one per line that holds something, in order"},
        },
    },
    "EventsRejected": {
        "allOf": [_ref("Error"), {
            "type": "object",
            "required": ["applied", "totals", "results"],
            "properties": {
                "error": {"const": "invalid_lines"},
                "applied": {"const": False},
                "totals": _ref("Totals"),
                "results": {"type": "array", "items": _ref("LineResult"),
                            "description": "the rejected lines only (the others were valid)"},
            },
        }],
    },
    "RosterResult": {
        "type": "object",
        "required": ["dry_run", "counts", "warnings"],
        "additionalProperties": False,
        "properties": {
            "dry_run": {"type": "boolean"},
            "counts": {
                "type": "object",
                "additionalProperties": NONNEGATIVE,
                "required": ["students", "guardians", "classes", "links", "students_added",
                             "students_updated", "students_moved", "students_deactivated",
                             "guardians_added", "guardians_updated", "guardians_removed",
                             "links_added", "links_removed"],
            },
            "warnings": {"type": "array", "items": _ref("LineProblem")},
        },
    },
    "SnapshotReport": {
        "type": "object",
        "required": ["line", "snapshot_id", "complete", "marks", "new", "changed", "deleted",
                     "missing_once", "unchanged", "already_imported", "pushes", "first",
                     "stale", "forced"],
        "properties": {
            "line": LINE,
            "snapshot_id": {"type": "string"},
            "student_id": {"type": ["string", "null"]},
            "class_name": {"type": ["string", "null"]},
            "period_id": {"type": ["string", "null"]},
            "start": {"type": ["string", "null"], "description": "the window's first day"},
            "end": {"type": ["string", "null"], "description": "the window's last day"},
            "subject": {"type": ["string", "null"]},
            "complete": {"type": "boolean"},
            "marks": NONNEGATIVE,
            "students": {**NONNEGATIVE, "description": "students the snapshot covers"},
            "new": NONNEGATIVE, "changed": NONNEGATIVE, "deleted": NONNEGATIVE,
            "missing_once": {**NONNEGATIVE, "description": "missing from this snapshot only:"
                             " kept until a second one misses them too"},
            "unchanged": NONNEGATIVE, "already_imported": NONNEGATIVE, "pushes": NONNEGATIVE,
            "first": {**NONNEGATIVE, "description": "students whose first snapshot this was:"
                      " stored without pushes"},
            "stale": {**NONNEGATIVE, "description": "students left alone: a later snapshot"
                      " of theirs was synced before"},
            "forced": {"type": "boolean",
                       "description": "taken with force although it looked truncated"},
        },
    },
    "SnapshotProblem": {
        "type": "object",
        "required": ["line", "field", "reason"],
        "properties": {
            "file": {"type": "string"},
            "line": {"type": "integer", "minimum": 0},
            "field": {"type": ["string", "null"],
                      "description": "e.g. marks[3].value, student_id, taken_at"},
            "reason": {"type": "string"},
        },
    },
    "SnapshotsResult": {
        "type": "object",
        "required": ["status", "lines", "notify", "pushes", "totals", "snapshots",
                     "problems"],
        "properties": {
            "status": {"enum": ["synced", "dry_run"]},
            "lines": NONNEGATIVE,
            "encoding": {"type": ["string", "null"]},
            "notify": {"type": "boolean"},
            "pushes": NONNEGATIVE,
            "totals": {"type": "object", "additionalProperties": NONNEGATIVE},
            "snapshots": {"type": "array", "items": _ref("SnapshotReport")},
            "problems": {"type": "array", "maxItems": 0},
        },
    },
    "SnapshotsRejected": {
        "allOf": [_ref("Error"), {
            "type": "object",
            "required": ["status", "problems"],
            "properties": {
                "error": {"const": "invalid_snapshots"},
                "status": {"const": "invalid"},
                "snapshots": {"type": "array", "items": _ref("SnapshotReport")},
                "problems": {"type": "array", "items": _ref("SnapshotProblem"),
                             "minItems": 1},
            },
        }],
    },
    "RosterRejected": {
        "allOf": [_ref("Error"), {
            "type": "object",
            "required": ["problems"],
            "properties": {
                "error": {"const": "invalid_roster"},
                "problems": {"type": "array", "items": _ref("LineProblem")},
            },
        }],
    },
}

RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
CHALLENGE = {"WWW-Authenticate": {"description": 'Bearer realm="diary" (with error= for a bad'
                                                 " token)", "schema": {"type": "string"}}}


def document(settings: Settings) -> dict[str, Any]:
    limit, rate = settings.api_max_body_bytes, settings.api_rate_per_minute
    common = {
        "400": _error("a bad query parameter, a body that is not text (UTF-8, UTF-16 with a"
                      " byte order mark, or cp1251), an empty body, or malformed JSON in an"
                      " array body"),
        "401": _error("no token, a malformed Authorization header, an unknown or revoked"
                      " token", CHALLENGE),
        "413": _error(f"the body is larger than {limit} bytes"),
        "415": _error("a Content-Type the endpoint does not take"),
        "429": _error(f"more than {rate} requests a minute with this token", RETRY_AFTER),
        "503": _error("the database is busy or unreachable; nothing was changed",
                      RETRY_AFTER),
        "default": _error("anything else (404, 405, 500)"),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "School diary ingestion API",
            "version": "1",
            "description": "A school's journal system posts journal events (the JSON Lines of"
                           " `diary journal import`, see docs/CONTRACT.md) and its roster (the"
                           " CSV of `diary roster import`). Tokens are per school (`diary"
                           " tokens issue --school NAME`): events about another school's"
                           " students or classes are rejected line by line. Every error is"
                           ' JSON {"error": code, "detail": text}.',
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token from `diary tokens issue`"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/events": {"post": {
                "operationId": "postEvents",
                "summary": "Import journal events",
                "description": "Checked and applied as `diary journal import`: idempotent by"
                               " event id, in one transaction with the pushes they cause. All"
                               " or nothing unless `partial`. Pushes reach the families at"
                               " once when the process also sends (`diary run`), or through"
                               " the senders (`diary deliver`).",
                "parameters": [
                    {"name": "partial", "in": "query", "schema": {"type": "boolean",
                                                                  "default": False},
                     "description": "apply the valid lines, reject the others (as"
                                    " --skip-invalid); by default one rejected line rejects"
                                    " the request (422)"},
                    {"name": "notify", "in": "query", "schema": {"type": "boolean",
                                                                 "default": True},
                     "description": "false: store without pushes, for back-filling history"
                                    " (as --no-notify)"},
                ],
                "requestBody": {"required": True, "content": {
                    "application/x-ndjson": {"schema": {"type": "string"},
                                             "description": "JSON Lines: one event object a"
                                                            " line (also text/plain)"},
                    "application/json": {"schema": {"type": "array",
                                                    "items": {"type": "object"}},
                                         "description": "an array of event objects"},
                }},
                "responses": {
                    "200": _answer("applied (also when every line was there already)",
                                   "EventsResult"),
                    **{k: v for k, v in common.items() if k < "422"},
                    "422": _answer("lines rejected: nothing was applied", "EventsRejected"),
                    **{k: v for k, v in common.items() if k > "422"},
                },
            }},
            "/v1/roster": {"post": {
                "operationId": "postRoster",
                "summary": "Import the school's roster",
                "description": "The roster CSV of `diary roster import`: the full list of the"
                               " token's school, in one transaction. An empty `school` column"
                               " is the token's school; another school's row is a problem.",
                "parameters": [
                    {"name": "dry_run", "in": "query",
                     "schema": {"type": "boolean", "default": False},
                     "description": "check and count, change nothing"},
                ],
                "requestBody": {"required": True, "content": {
                    "text/csv": {"schema": {"type": "string"}}}},
                "responses": {
                    "200": _answer("imported (or checked, with dry_run)", "RosterResult"),
                    **{k: v for k, v in common.items() if k < "422"},
                    "422": _answer("problems: nothing was changed", "RosterRejected"),
                    **{k: v for k, v in common.items() if k > "422"},
                },
            }},
            "/v1/snapshots": {"post": {
                "operationId": "postSnapshots",
                "summary": "Sync snapshots of marks",
                "description": "One snapshot a line (the format of `diary journal sync`, see"
                               " docs/CONTRACT.md «Snapshots»): a student's or a class's marks"
                               " for a period as a whole; the difference from what is stored"
                               " is applied as journal events, in one transaction. A mark is"
                               " deleted only when two snapshots in a row miss it (or one that"
                               " says it is complete); a snapshot under half the size of the"
                               " previous one is refused as truncated unless `force`; a"
                               " student's first snapshot is stored without pushes.",
                "parameters": [
                    {"name": "dry_run", "in": "query",
                     "schema": {"type": "boolean", "default": False},
                     "description": "work everything out and report it, change nothing"},
                    {"name": "force", "in": "query",
                     "schema": {"type": "boolean", "default": False},
                     "description": "take a snapshot that looks truncated"},
                    {"name": "notify", "in": "query",
                     "schema": {"type": "boolean", "default": True},
                     "description": "false: store without pushes"},
                ],
                "requestBody": {"required": True, "content": {
                    "application/x-ndjson": {"schema": {"type": "string"},
                                             "description": "JSON Lines: one snapshot object"
                                                            " a line (also text/plain)"}}},
                "responses": {
                    "200": _answer("synced (or worked out, with dry_run)", "SnapshotsResult"),
                    **{k: v for k, v in common.items() if k < "422"},
                    "422": _answer("problems, or a snapshot refused as truncated: nothing was"
                                   " changed", "SnapshotsRejected"),
                    **{k: v for k, v in common.items() if k > "422"},
                },
            }},
            "/v1/openapi.json": {"get": {
                "operationId": "getOpenapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "the OpenAPI 3.1 document",
                                      "content": {"application/json": {
                                          "schema": {"type": "object"}}}}},
            }},
        },
    }
