"""Snapshot sync over both backends: what is new, changed and deleted becomes journal events,
with the safeguards (missing twice, complete, truncated, first snapshot silent)."""

from __future__ import annotations

import json

import pytest
from alembic import command

from bot.services import build_services
from core.importers.journal import parse_journal
from core.services.snapshot import MIN_PREVIOUS, sync_snapshots
from core.storage.db import Database
from core.storage.migrate import MIGRATION_LOCK, alembic_config
from tests.support.school import ANNA_PHONE, IVAN_PHONE, SECRET, TZ, import_roster

ANNA = 5001
IVAN = 5002
TAKEN = "2026-11-23T10:00:00+03:00"


def mark(n: int, value: object = 5, day: str = "2026-11-23", subject: str = "Алгебра",
         **extra) -> dict:
    return {"grade_id": f"g{n}", "subject": subject, "date": day, "value": value, **extra}


def snap(sid: str, marks: list[dict], student: str = "S-1001", taken: str = TAKEN,
         **extra) -> dict:
    body = {"snapshot_id": sid, "student_id": student, "from": "2026-11-01", "to": "2026-11-30",
            "taken_at": taken, "marks": marks, **extra}
    return {k: v for k, v in body.items() if v is not None}


def text(*snapshots: dict) -> str:
    return "\n".join(json.dumps(s, ensure_ascii=False) for s in snapshots) + "\n"


async def sync(services, *snapshots: dict, **kw):
    return await sync_snapshots(services.journal, text(*snapshots), filename="s.jsonl", **kw)


async def outbox(services) -> list[dict]:
    rows = await services.db.fetchall("SELECT telegram_id, kind, payload FROM outbox ORDER BY id")
    return [{"to": r[0], "kind": r[1], **json.loads(r[2])} for r in rows]


async def grades(services) -> dict[str, tuple]:
    rows = await services.db.fetchall(
        "SELECT external_id, value, weight, comment, subject, deleted_at IS NOT NULL"
        " FROM grades ORDER BY external_id")
    return {r[0]: (r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}


async def table(services, name: str) -> list[tuple]:
    return [tuple(r) for r in await services.db.fetchall(f"SELECT * FROM {name} ORDER BY 1, 2")]


@pytest.fixture
async def linked(school):
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    return school


FOUR = [mark(1, 5), mark(2, 4), mark(3, 3, comment="Без ошибок"), mark(4, 5)]


async def test_first_snapshot_is_stored_without_pushes(linked):
    result = await sync(linked, snap("s1", FOUR))
    assert result.status == "synced" and result.problems == []
    [report] = result.snapshots
    assert (report.new, report.changed, report.deleted, report.first, report.pushes) == (
        4, 0, 0, 1, 0)
    assert sorted(await grades(linked)) == ["g1", "g2", "g3", "g4"]
    assert await outbox(linked) == []
    assert await linked.db.fetchall(
        "SELECT snapshot_id, marks, period_start, period_end, subject FROM snapshot_state") == [
        ("s1", 4, "2026-11-01", "2026-11-30", "")]


async def test_new_changed_and_missing_marks(linked):
    await sync(linked, snap("s1", FOUR))
    second = [mark(1, 4), mark(2, 4), mark(3, 3), mark(5, 5, weight=2)]  # g4 missing
    result = await sync(linked, snap("s2", second, taken="2026-11-23T11:00:00+03:00"))
    [report] = result.snapshots
    assert (report.new, report.changed, report.deleted, report.missing_once,
            report.unchanged, report.first) == (1, 2, 0, 1, 1, 0)
    assert report.pushes == result.pushes == 6  # g5 new, g1 and g3 changed: to Anna and Ivan
    stored = await grades(linked)
    assert stored["g1"][0] == 4 and stored["g3"][2] is None  # the comment cleared
    assert stored["g4"][4] is False  # missing once: kept
    assert stored["g5"][:2] == (5, 2)
    pushes = [r for r in await outbox(linked) if r["to"] == ANNA]
    assert [(r["kind"], r["value"]) for r in pushes] == [
        ("grade_new", 5), ("grade_changed", 4), ("grade_changed", 3)]
    assert pushes[1]["old_value"] == 5
    kinds = dict(await linked.db.fetchall(
        "SELECT event_id, type FROM journal_events WHERE event_id LIKE 'sync:s2:%'"))
    assert kinds["sync:s2:g5:new"] == "grade"
    assert sorted(k.rsplit(":", 1)[0] for k in kinds if ":chg:" in k) == [
        "sync:s2:g1:chg", "sync:s2:g3:chg"]
    assert all(kinds[k] == "grade_changed" for k in kinds if ":chg:" in k)
    assert await linked.db.fetchall("SELECT grade_id, snapshot_id FROM snapshot_missing") == [
        ("g4", "s2")]


async def test_a_mark_missing_twice_is_deleted_with_its_push(linked):
    await sync(linked, snap("s1", FOUR))
    three = FOUR[:3]
    await sync(linked, snap("s2", three, taken="2026-11-23T11:00:00+03:00"))
    assert await outbox(linked) == []
    result = await sync(linked, snap("s3", three, taken="2026-11-23T12:00:00+03:00"))
    [report] = result.snapshots
    assert (report.deleted, report.missing_once, report.pushes) == (1, 0, 2)
    assert (await grades(linked))["g4"][4] is True
    rows = await outbox(linked)
    assert [(r["to"], r["kind"], r["value"]) for r in rows] == [
        (ANNA, "grade_deleted", 5), (IVAN, "grade_deleted", 5)]
    assert await table(linked, "snapshot_missing") == []
    assert await linked.db.scalar(
        "SELECT type FROM journal_events WHERE event_id = 'sync:s3:g4:del'") == "grade_deleted"


async def test_a_mark_that_comes_back_starts_again(linked):
    await sync(linked, snap("s1", FOUR))
    await sync(linked, snap("s2", FOUR[:3], taken="2026-11-23T11:00:00+03:00"))
    back = await sync(linked, snap("s3", FOUR, taken="2026-11-23T12:00:00+03:00"))
    assert back.snapshots[0].unchanged == 4 and back.snapshots[0].missing_once == 0
    assert await table(linked, "snapshot_missing") == []
    again = await sync(linked, snap("s4", FOUR[:3], taken="2026-11-23T13:00:00+03:00"))
    assert (again.snapshots[0].missing_once, again.snapshots[0].deleted) == (1, 0)
    assert (await grades(linked))["g4"][4] is False


async def test_complete_snapshot_deletes_at_once(linked):
    await sync(linked, snap("s1", FOUR))
    result = await sync(linked, snap("s2", FOUR[:3], complete=True,
                                     taken="2026-11-23T11:00:00+03:00"))
    assert (result.snapshots[0].deleted, result.snapshots[0].missing_once) == (1, 0)
    assert (await grades(linked))["g4"][4] is True
    assert [r["kind"] for r in await outbox(linked)] == ["grade_deleted", "grade_deleted"]


async def test_a_deleted_mark_sent_again_comes_back_as_new(linked):
    await sync(linked, snap("s1", FOUR))
    await sync(linked, snap("s2", FOUR[:3], complete=True, taken="2026-11-23T11:00:00+03:00"))
    result = await sync(linked, snap("s3", FOUR, taken="2026-11-23T12:00:00+03:00"))
    assert result.snapshots[0].new == 1
    assert (await grades(linked))["g4"][4] is False
    assert [r["kind"] for r in await outbox(linked)][-2:] == ["grade_new", "grade_new"]


async def test_subject_or_date_change_is_sent_as_a_corrected_grade(linked):
    await sync(linked, snap("s1", FOUR))
    moved = [mark(1, 5, subject="Геометрия"), *FOUR[1:]]
    result = await sync(linked, snap("s2", moved, taken="2026-11-23T11:00:00+03:00"))
    assert result.snapshots[0].changed == 1
    assert (await grades(linked))["g1"][3] == "Геометрия"
    assert await linked.db.scalar(
        "SELECT type FROM journal_events WHERE event_id LIKE 'sync:s2:g1:chg:%'") == "grade"


def many(count: int) -> list[dict]:
    return [mark(n, 5, day=f"2026-11-{n % 20 + 1:02d}") for n in range(1, count + 1)]


async def test_a_truncated_snapshot_is_refused_and_changes_nothing(linked):
    await sync(linked, snap("s1", many(12)))
    before = (await grades(linked), await table(linked, "snapshot_state"),
              await table(linked, "journal_events"), await table(linked, "imports"))
    result = await sync(linked, snap("s2", many(5), taken="2026-11-23T11:00:00+03:00"))
    assert result.status == "invalid"
    assert [str(p) for p in result.problems] == [
        "s.jsonl:1: marks: 5 marks where the previous snapshot (taken at 2026-11-23T10:00+03:00)"
        " held 12: looks cut short, refused (--force takes it)"]
    after = (await grades(linked), await table(linked, "snapshot_state"),
             await table(linked, "journal_events"), await table(linked, "imports"))
    assert after == before
    assert await table(linked, "snapshot_missing") == []
    # Six of twelve is half: not refused.
    half = await sync(linked, snap("s2", many(6), taken="2026-11-23T11:00:00+03:00"),
                      dry_run=True)
    assert half.status == "dry_run" and half.snapshots[0].missing_once == 6


async def test_force_takes_a_truncated_snapshot(linked):
    await sync(linked, snap("s1", many(12)))
    result = await sync(linked, snap("s2", many(5), taken="2026-11-23T11:00:00+03:00"),
                        force=True)
    assert result.status == "synced" and result.snapshots[0].forced
    assert result.snapshots[0].missing_once == 7
    assert await linked.db.scalar("SELECT marks FROM snapshot_state") == 5


async def test_without_a_previous_snapshot_the_stored_marks_are_the_measure(linked):
    lines = [json.dumps({"id": f"e{n}", "type": "grade", "student_id": "S-1001", **m})
             for n, m in enumerate(many(MIN_PREVIOUS))]
    await linked.journal.import_journal(parse_journal(lines, "j.jsonl"), "j.jsonl", notify=False)
    result = await sync(linked, snap("s1", many(2), complete=True))
    assert result.status == "invalid"
    assert "2 marks where 10 are stored for the period: looks cut short" in str(result.problems[0])
    assert len([g for g in (await grades(linked)).values() if not g[4]]) == MIN_PREVIOUS


async def test_the_same_file_twice_changes_nothing(linked):
    await sync(linked, snap("s1", FOUR))
    body = text(snap("s2", [mark(1, 3), *FOUR[1:3], mark(7, 4)],
                     taken="2026-11-23T11:00:00+03:00"),
                snap("s3", [mark(1, 3), FOUR[1], mark(7, 4)], taken="2026-11-23T12:00:00+03:00"))
    first = await sync_snapshots(linked.journal, body, filename="s.jsonl")
    assert [(s.new, s.changed, s.deleted, s.missing_once) for s in first.snapshots] == [
        (1, 1, 0, 1), (0, 0, 1, 1)]
    state = (await grades(linked), await outbox(linked), await table(linked, "journal_events"),
             await table(linked, "snapshot_state"), await table(linked, "snapshot_missing"))
    again = await sync_snapshots(linked.journal, body, filename="s.jsonl")
    assert again.status == "synced" and again.pushes == 0
    assert [(s.new, s.changed, s.deleted) for s in again.snapshots] == [(0, 0, 0), (0, 0, 0)]
    assert (await grades(linked), await outbox(linked), await table(linked, "journal_events"),
            await table(linked, "snapshot_state"), await table(linked, "snapshot_missing")
            ) == state


async def test_a_change_made_once_is_not_made_again(linked):
    await sync(linked, snap("s1", FOUR))
    body = snap("s2", [*FOUR, mark(9, 4)], taken="2026-11-23T11:00:00+03:00")
    assert (await sync(linked, body)).snapshots[0].new == 1
    delete = json.dumps({"id": "d9", "type": "grade_deleted", "grade_id": "g9"})
    await linked.journal.import_journal(parse_journal([delete], "j.jsonl"), "j.jsonl")
    again = await sync(linked, body)  # the journal deleted g9 since: its event was applied once
    assert (again.snapshots[0].new, again.snapshots[0].already_imported) == (0, 1)
    assert (await grades(linked))["g9"][4] is True


async def test_an_older_snapshot_leaves_the_student_alone(linked):
    await sync(linked, snap("s2", FOUR, taken="2026-11-23T11:00:00+03:00"))
    result = await sync(linked, snap("s1", FOUR[:1], complete=True))
    assert result.status == "synced" and result.snapshots[0].stale == 1
    assert result.snapshots[0].deleted == 0
    assert not any(g[4] for g in (await grades(linked)).values())


async def test_a_snapshot_from_the_future_is_refused(linked):
    result = await sync(linked, snap("s1", FOUR, taken="2026-11-25T10:00:00+03:00"))
    assert [str(p) for p in result.problems] == [
        "s.jsonl:1: taken_at: 2026-11-25T10:00+03:00 is in the future (now is"
        " 2026-11-23T12:00+03:00)"]
    assert await grades(linked) == {}
    tomorrow = await sync(linked, snap("s1", FOUR, taken="2026-11-24T10:00:00+03:00"))
    assert tomorrow.status == "synced"  # a day ahead is taken: a wrong offset, not a typo


async def test_a_snapshot_id_used_again_for_another_export_is_refused(linked):
    await sync(linked, snap("s1", FOUR))
    result = await sync(linked, snap("s1", FOUR, taken="2026-11-24T10:00:00+03:00"))
    assert [str(p) for p in result.problems] == [
        "s.jsonl:1: snapshot_id: already used for the snapshot of S-1001 taken at"
        " 2026-11-23T10:00+03:00; each export needs its own"]


async def test_no_notify_and_dry_run(linked):
    await sync(linked, snap("s1", FOUR))
    dry = await sync(linked, snap("s2", [mark(9, 2), *FOUR], taken="2026-11-23T11:00:00+03:00"),
                     dry_run=True)
    assert dry.status == "dry_run" and dry.snapshots[0].new == 1 and dry.pushes == 2
    assert "g9" not in await grades(linked) and await outbox(linked) == []
    assert await linked.db.scalar("SELECT snapshot_id FROM snapshot_state") == "s1"
    quiet = await sync(linked, snap("s2", [mark(9, 2), *FOUR],
                                    taken="2026-11-23T11:00:00+03:00"), notify=False)
    assert quiet.snapshots[0].new == 1 and quiet.pushes == 0 and await outbox(linked) == []


async def test_a_class_snapshot(linked):
    # 7Б: S-1001 (Ivan), S-1003, S-1004. Ivan had a snapshot before; the others had none.
    await sync(linked, snap("s0", FOUR))
    marks = [{**mark(1, 5), "student_id": "S-1001"}, {**mark(2, 4), "student_id": "S-1001"},
             {**mark(31, 4), "student_id": "S-1003"}, {**mark(32, 5), "student_id": "S-1003"}]
    result = await sync(linked, {"snapshot_id": "c1", "class": "7 б", "period_id": None,
                                 "from": "2026-11-01", "to": "2026-11-30", "taken_at":
                                 "2026-11-23T11:00:00+03:00", "marks": marks})
    assert result.status == "synced", result.problems
    [report] = result.snapshots
    assert (report.students, report.new, report.unchanged, report.missing_once,
            report.first) == (3, 2, 2, 2, 2)
    assert report.pushes == 0  # S-1003's marks: her first snapshot; Ivan's: nothing new
    assert await linked.db.fetchall(
        "SELECT s.external_id, t.marks FROM snapshot_state t JOIN students s"
        " ON s.id = t.student_id ORDER BY 1") == [("S-1001", 2), ("S-1003", 2), ("S-1004", 0)]
    # A mark of a student of another class is named.
    bad = await sync(linked, {"snapshot_id": "c2", "class": "7Б", "from": "2026-11-01",
                              "to": "2026-11-30", "taken_at": "2026-11-23T12:00:00+03:00",
                              "marks": [*marks, {**mark(40), "student_id": "S-1002"}]})
    assert [str(p) for p in bad.problems] == [
        "s.jsonl:1: marks[4].student_id: 'S-1002' is not an active student of class 7Б"]


async def test_a_period_and_a_subject(linked):
    period = json.dumps({"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
                         "start": "2026-11-05", "end": "2026-12-28"}, ensure_ascii=False)
    await linked.journal.import_journal(parse_journal([period], "p.jsonl"), "p.jsonl")
    await sync(linked, snap("s1", [*FOUR, mark(8, 4, subject="Физика")], period_id="q2",
                            **{"from": None, "to": None}))
    result = await sync(linked, snap("s2", [mark(8, 5, subject="Физика")], period_id="q2",
                                     subject="Физика", complete=True, taken="2026-11-23T08:00:00Z",
                                     **{"from": None, "to": None}))
    assert result.status == "synced", result.problems
    [report] = result.snapshots
    assert (report.start, report.end, report.changed, report.deleted) == (
        "2026-11-05", "2026-12-28", 1, 0)  # the algebra marks are not this snapshot's business
    assert not any(g[4] for g in (await grades(linked)).values())


async def test_problems_name_the_line_and_the_mark(linked):
    await sync(linked, snap("s1", FOUR, student="S-1003"))
    result = await sync(
        linked,
        snap("a", [mark(1, 5, day="2026-10-30")]),
        snap("b", [mark(2)], student="S-9999"),
        snap("c", [mark(3)], period_id="nope", **{"from": None, "to": None}),
    )
    assert result.status == "invalid"
    assert [str(p) for p in result.problems] == [
        "s.jsonl:1: marks[0].date: 2026-10-30 is outside the snapshot's period"
        " (2026-11-01 to 2026-11-30)",
        "s.jsonl:2: student_id: unknown student 'S-9999' (not on the roster)",
        "s.jsonl:3: period_id: unknown period 'nope' (a journal period event declares it;"
        " or give from and to)",
    ]
    stolen = await sync(linked, snap("d", [mark(1)]))  # g1 is S-1003's
    assert [str(p) for p in stolen.problems] == [
        "s.jsonl:1: marks[0].grade_id: already used for another student"]
    assert await linked.db.scalar("SELECT COUNT(*) FROM snapshot_state") == 1


async def test_the_result_is_plain_data(linked):
    result = await sync(linked, snap("s1", FOUR))
    data = json.loads(json.dumps(result.as_dict()))
    assert data["status"] == "synced" and data["totals"]["new"] == 4
    assert data["snapshots"][0]["snapshot_id"] == "s1" and data["problems"] == []
    bad = await sync_snapshots(linked.journal, b'{"snapshot_id": 1}\n', filename="x")
    assert json.loads(json.dumps(bad.as_dict()))["problems"][0] == {
        "file": "x", "line": 1, "field": "student_id",
        "reason": "required: the student's id, or class for a class's snapshot"}


async def test_revision_0009_upgrades_in_place_and_downgrades(database_url, clock):
    def run(step, revision: str):
        def go(conn) -> None:
            config = alembic_config()
            config.attributes["connection"] = conn
            step(config, revision)
        return go

    async with Database(database_url) as db:
        async with db.locked(MIGRATION_LOCK) as tx:
            await tx.conn.run_sync(run(command.upgrade, "0008"))
        services = build_services(db, SECRET, TZ, clock)
        await import_roster(services)
        assert not {"snapshot_state", "snapshot_missing"} & await db.tables()
        async with db.locked(MIGRATION_LOCK) as tx:
            await tx.conn.run_sync(run(command.upgrade, "0009"))
        assert {"snapshot_state", "snapshot_missing"} <= await db.tables()
        assert await db.scalar("SELECT COUNT(*) FROM students") == 5
        result = await sync(services, snap("s1", FOUR))
        assert result.status == "synced" and result.snapshots[0].new == 4
        async with db.locked(MIGRATION_LOCK) as tx:
            await tx.conn.run_sync(run(command.downgrade, "0008"))
        assert not {"snapshot_state", "snapshot_missing"} & await db.tables()
