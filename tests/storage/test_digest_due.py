"""Each account's next digest moment (``accounts.digest_due_at``): kept right by whatever
decides it, and the only thing a digest run reads. School time: Moscow unless said otherwise."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from bot.services import Tuning, build_services
from core.clock import to_db
from core.errors import PhoneNotFound
from core.importers.journal import parse_journal
from core.models import Scope
from tests.support.school import (
    ANNA_PHONE,
    IVAN_PHONE,
    SECRET,
    TZ,
    import_roster,
    journal_history,
)

ANNA, IVAN, TRUSTED = 5001, 5002, 8001
TRUSTED_PHONE = "+7 903 111-22-33"


def msk(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def stored(moment: datetime) -> str:
    return to_db(moment)


async def due(services, telegram_id: int) -> str | None:
    return await services.db.scalar(
        "SELECT digest_due_at FROM accounts WHERE telegram_id = ?", (telegram_id,))


async def digests_to(services) -> list[int]:
    return [r[0] for r in await services.db.fetchall(
        "SELECT telegram_id FROM outbox WHERE kind = 'digest' ORDER BY id")]


class Statements:
    """The SQL statements the database runs while it is watched."""

    def __init__(self, db) -> None:
        self.engine = db.engine.sync_engine
        self.seen: list[str] = []

    def _record(self, _conn, _cursor, statement, _params, _context, _many) -> None:
        self.seen.append(statement)

    @property
    def queries(self) -> list[str]:
        """What was run, without SQLite's BEGIN."""
        return [s for s in self.seen if not s.startswith("BEGIN")]

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


async def anna_linked(services) -> None:
    """Анна linked, with digests also when there is nothing new (so every decided one goes)."""
    await services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await services.preferences.set_flag(ANNA, "digest_empty", True)


async def crowd(services, clock, count: int, times: dict[str, int] | None = None) -> list[int]:
    """Анна linked, a grade for Иван today, and ``count`` more accounts following Анна's
    children (inserted in bulk; ``times``: how many of them have which own digest time)."""
    await services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await journal_history(services)
    await services.journal.import_journal(parse_journal([json.dumps(
        {"id": "g1", "type": "grade", "grade_id": "g1", "student_id": "S-1001",
         "subject": "Алгебра", "date": "2026-11-23", "value": 5}, ensure_ascii=False)], "j"),
        "j")
    guardian = await services.db.scalar(
        "SELECT guardian_id FROM account_links WHERE telegram_id = ?", (ANNA,))
    others = list(range(900_000, 900_000 + count))
    own: list[tuple[int, str]] = []
    for hhmm, n in (times or {}).items():
        own += [(tg, hhmm) for tg in others[len(own): len(own) + n]]
    stamp = to_db(clock.now())
    async with services.db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO accounts (telegram_id, chat_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?)", [(tg, tg, stamp, stamp) for tg in others])
        await tx.executemany(
            "INSERT INTO account_links (telegram_id, guardian_id, via, linked_at)"
            " VALUES (?, ?, 'support', ?)", [(tg, guardian, stamp) for tg in others])
        await tx.executemany(
            "INSERT INTO account_settings (telegram_id, digest_time) VALUES (?, ?)", own)
        await services.digest.schedule.refresh(tx, others, clock.now())
    return others


async def test_linking_sets_the_moment_and_an_account_without_children_has_none(school, clock):
    clock.moment = msk(23, 10)
    await school.linking.touch(ANNA, ANNA, "ru")
    assert await due(school, ANNA) is None  # /start alone: no child, no digest
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    assert await due(school, ANNA) == stored(msk(23, 19))
    clock.moment = msk(23, 20, 30)  # linked after 19:00, within the grace: today's, at once
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    assert await due(school, IVAN) == stored(msk(23, 19))
    result = await school.digest.run()
    assert (result.considered, result.sent + result.empty) == (2, 2)  # nothing new: not sent
    assert await due(school, IVAN) == stored(msk(24, 19))


async def test_linked_after_the_grace_the_first_digest_is_tomorrows(school, clock):
    clock.moment = msk(23, 23, 30)
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    assert await due(school, ANNA) == stored(msk(24, 19))
    assert (await school.digest.run()).considered == 0


async def test_the_digest_time_and_switch_in_settings_move_the_moment(school, clock):
    clock.moment = msk(23, 10)
    await anna_linked(school)
    await school.preferences.set_digest_time(ANNA, "21:00")
    assert await due(school, ANNA) == stored(msk(23, 21))
    await school.preferences.toggle_flag(ANNA, "digest_enabled")  # off
    assert await due(school, ANNA) is None
    clock.moment = msk(23, 21, 1)
    assert (await school.digest.run()).considered == 0
    await school.preferences.set_flag(ANNA, "digest_enabled", True)  # on again at 21:01
    assert await due(school, ANNA) == stored(msk(23, 21))
    assert (await school.digest.run()).sent == 1
    assert await due(school, ANNA) == stored(msk(24, 21))
    # Today's digest went: an earlier time now counts from tomorrow, never a second today.
    await school.preferences.set_digest_time(ANNA, "17:00")
    assert await due(school, ANNA) == stored(msk(24, 17))
    assert (await school.digest.run()).sent == 0


async def test_an_earlier_time_chosen_after_it_passed_still_sends_todays(school, clock):
    clock.moment = msk(23, 10)
    await anna_linked(school)
    clock.moment = msk(23, 18, 30)  # not yet at 19:00 — the parent picks 17:00
    await school.preferences.set_digest_time(ANNA, "17:00")
    assert await due(school, ANNA) == stored(msk(23, 17))
    assert (await school.digest.run()).sent == 1
    assert await due(school, ANNA) == stored(msk(24, 17))


async def test_sent_nothing_to_say_or_too_late_each_moves_to_the_next_day(school, clock):
    clock.moment = msk(23, 10)
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)  # nothing new today
    code = (await school.linking.issue_codes(student_external_id="S-1005"))[0].code
    await school.linking.redeem_code(7001, 7001, code)
    await school.preferences.set_flag(ANNA, "digest_empty", True)
    clock.moment = msk(23, 19)
    result = await school.digest.run()
    assert (result.sent, result.empty) == (1, 1)  # Анна asked for it even empty; 7001 not
    assert await due(school, ANNA) == await due(school, 7001) == stored(msk(24, 19))
    logged = dict(await school.db.fetchall("SELECT telegram_id, sent FROM digest_log"))
    assert logged == {ANNA: 1, 7001: 0}
    clock.moment = msk(24, 23, 30)  # the bot was down all evening
    result = await school.digest.run()
    assert (result.considered, result.sent, result.skipped_late) == (2, 0, 2)
    assert await due(school, ANNA) == stored(msk(25, 19))
    assert (await school.digest.run()).considered == 0  # given up once, not every run


async def test_down_for_days_the_stale_moment_is_worked_out_again(school, clock):
    clock.moment = msk(23, 10)
    await anna_linked(school)
    await school.digest.run()  # the first run records the default time
    clock.moment = msk(26, 12)  # back three days later, at noon
    result = await school.digest.run()
    assert (result.considered, result.sent, result.skipped_late) == (1, 0, 0)
    assert await due(school, ANNA) == stored(msk(26, 19))
    clock.moment = msk(26, 19, 2)
    assert (await school.digest.run()).sent == 1


async def test_a_trusted_person_is_due_only_with_the_digest_scope(school, clock):
    clock.moment = msk(23, 10)
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    with pytest.raises(PhoneNotFound):  # not in the roster, but Telegram verified the number
        await school.linking.link_contact(TRUSTED, TRUSTED, TRUSTED, TRUSTED_PHONE)
    viewer = await school.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    inv, _, _ = await school.trusted.invite(viewer, [ivan.id], TRUSTED_PHONE, "Иванова",
                                            {Scope.ATTENDANCE})
    await school.trusted.accept(TRUSTED, inv.id)
    assert await due(school, TRUSTED) is None  # no digest scope
    inv, _, _ = await school.trusted.invite(viewer, [ivan.id], TRUSTED_PHONE, "Иванова",
                                            {Scope.ATTENDANCE, Scope.DIGEST})
    await school.trusted.accept(TRUSTED, inv.id)
    assert await due(school, TRUSTED) == stored(msk(23, 19))
    [person] = (await school.trusted.overview(viewer)).trusted
    await school.trusted.revoke(viewer, person.trust_id)
    assert await due(school, TRUSTED) is None


async def test_an_account_that_follows_nobody_any_more_is_cleared_by_the_run(school, clock):
    clock.moment = msk(23, 10)
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.digest.run()  # the first run records the default time
    async with school.db.transaction() as tx:  # as when the roster drops the guardian
        await tx.execute("DELETE FROM account_links WHERE telegram_id = ?", (ANNA,))
    clock.moment = msk(23, 19)
    result = await school.digest.run()
    assert (result.considered, result.sent) == (1, 0)
    assert await due(school, ANNA) is None
    assert (await school.digest.run()).considered == 0


async def test_unreachable_accounts_are_not_read_until_they_come_back(school, clock):
    clock.moment = msk(23, 10)
    await anna_linked(school)
    async with school.db.transaction() as tx:  # Telegram said 403 (the outbox marks it)
        await tx.execute("UPDATE accounts SET unreachable_at = ? WHERE telegram_id = ?",
                         (to_db(clock.now()), ANNA))
    for day in (23, 24, 25):
        clock.moment = msk(day, 19, 1)
        assert (await school.digest.run()).considered == 0
    await school.linking.touch(ANNA, ANNA, "ru")  # /start again at 19:01 on the 25th
    result = await school.digest.run()
    assert (result.considered, result.sent) == (1, 1)
    assert await due(school, ANNA) == stored(msk(26, 19))


async def test_a_run_reads_only_the_accounts_that_are_due(school, clock):
    """300 more accounts follow Анна's children: 100 at 17:00, 100 at 19:00, 100 at 21:00.
    Each run reads the accounts of its hour and nothing else, a chunk at a time."""
    clock.moment = msk(23, 10)
    await crowd(school, clock, 300, {"17:00": 100, "21:00": 100})
    school.digest.chunk = 40
    clock.moment = msk(23, 12)
    assert (await school.digest.run()).considered == 0  # the first run records the default
    with Statements(school.db) as watched:
        nothing = await school.digest.run()
    assert (nothing.considered, nothing.sent) == (0, 0)
    # Nothing due: the default time checked, one look through the index at the due accounts.
    assert len(watched.queries) == 2, watched.queries
    assert "a.digest_due_at <= " in watched.queries[1]
    for hour, expected in ((17, 100), (19, 101), (21, 100)):
        clock.moment = msk(23, hour)
        result = await school.digest.run()
        assert (result.considered, result.sent) == (expected, expected), hour
        clock.advance(minutes=5)
        assert (await school.digest.run()).considered == 0
    sent = await digests_to(school)
    assert len(sent) == len(set(sent)) == 301
    assert await school.db.scalar(
        "SELECT COUNT(*) FROM accounts WHERE digest_due_at < ?", (to_db(msk(24, 0)),)) == 0


async def test_a_changed_default_time_moves_the_accounts_on_it(school, clock):
    clock.moment = msk(23, 10)
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.preferences.set_flag(ANNA, "digest_empty", True)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await school.preferences.set_digest_time(IVAN, "20:00")
    assert (await school.digest.run()).considered == 0
    assert await school.db.scalar(
        "SELECT value FROM meta WHERE key = 'digest_default_time'") == "19:00"
    # The school now says DIGEST_TIME=18:00 (a restart with the new setting).
    restarted = build_services(school.db, SECRET, TZ, clock, Tuning(digest_time="18:00"))
    assert (await restarted.digest.run()).considered == 0
    assert await due(school, ANNA) == stored(msk(23, 18))
    assert await due(school, IVAN) == stored(msk(23, 20))  # his own time stays
    assert await restarted.digest.sync_default_time() == 0  # once
    clock.moment = msk(23, 18)
    assert (await restarted.digest.run()).sent == 1


async def test_moments_follow_the_wall_clock_across_daylight_saving(db, clock):
    """Berlin: summer time begins on 29 March 2026 and ends on 25 October 2026."""
    berlin = ZoneInfo("Europe/Berlin")
    services = build_services(db, SECRET, berlin, clock)
    await import_roster(services)

    def cet(month: int, day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=berlin).astimezone(UTC)

    clock.moment = cet(3, 27, 10)
    await services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await services.preferences.set_flag(ANNA, "digest_empty", True)
    assert await due(services, ANNA) == "2026-03-27T18:00:00.000000Z"  # 19:00 CET
    for day, utc in ((27, "2026-03-28T18:00:00.000000Z"), (28, "2026-03-29T17:00:00.000000Z"),
                     (29, "2026-03-30T17:00:00.000000Z")):
        clock.moment = cet(3, day, 19)
        assert (await services.digest.run()).sent == 1, day
        assert await due(services, ANNA) == utc, day
    clock.moment = datetime(2026, 3, 29, 17, 59, tzinfo=UTC)  # 19:59 CEST: long sent
    assert (await services.digest.run()).considered == 0
    clock.moment = cet(10, 24, 10)
    await services.preferences.set_digest_time(ANNA, "18:00")
    assert await due(services, ANNA) == "2026-10-24T16:00:00.000000Z"  # 18:00 CEST
    clock.moment = cet(10, 24, 18)
    assert (await services.digest.run()).sent == 1
    assert await due(services, ANNA) == "2026-10-25T17:00:00.000000Z"  # 18:00 CET
    clock.moment = datetime(2026, 10, 25, 16, 0, tzinfo=UTC)  # 17:00 CET: not yet
    assert (await services.digest.run()).considered == 0
    clock.moment = cet(10, 25, 18)
    assert (await services.digest.run()).sent == 1
    days = [r[0] for r in await db.fetchall(
        "SELECT day FROM digest_log WHERE telegram_id = ? ORDER BY day", (ANNA,))]
    assert days == ["2026-03-27", "2026-03-28", "2026-03-29", "2026-10-24", "2026-10-25"]


async def test_other_work_goes_on_between_the_chunks_of_a_run(school, clock):
    """A run holds the database a chunk at a time: a user's write waits for one chunk, not
    for the whole run."""
    clock.moment = msk(23, 10)
    await crowd(school, clock, 400)
    school.digest.chunk = 20
    clock.moment = msk(23, 19)
    run = asyncio.create_task(school.digest.run())
    while not run.done():  # until the first chunk is decided
        if await school.db.scalar("SELECT COUNT(*) FROM digest_log"):
            break
    await school.linking.set_locale(ANNA, "en")  # a tap in /settings meanwhile
    assert not run.done()
    assert await school.db.scalar("SELECT COUNT(*) FROM digest_log") < 401
    result = await run
    assert (result.considered, result.sent) == (401, 401)


async def test_digests_carry_todays_data_of_their_children_only(school, clock):
    """A chunk loads the grades and marks of its accounts' children, not the whole school's."""
    clock.moment = msk(23, 10)
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await journal_history(school)
    lines = [json.dumps(e, ensure_ascii=False) for e in (
        {"id": "g1", "type": "grade", "grade_id": "g1", "student_id": "S-1001",
         "subject": "Алгебра", "date": "2026-11-23", "value": 5},
        {"id": "g2", "type": "grade", "grade_id": "g2", "student_id": "S-1003",
         "subject": "Физика", "date": "2026-11-23", "value": 2})]
    await school.journal.import_journal(parse_journal(lines, "j"), "j")
    clock.moment = msk(23, 19)
    with Statements(school.db) as watched:
        assert (await school.digest.run()).sent == 1
    [payload] = [json.loads(r[0]) for r in await school.db.fetchall(
        "SELECT payload FROM outbox WHERE kind = 'digest'")]
    grades = {c["name"]: [g["subject"] for g in c["grades"]] for c in payload["children"]}
    assert grades == {"Иван Петров": ["Алгебра"], "Мария Петрова": []}
    reads = [s for s in watched.seen if "FROM grades" in s or "FROM attendance" in s
             or "FROM dots" in s]
    assert reads and all("student_id IN" in s for s in reads), reads
