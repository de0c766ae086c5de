"""The outbox sender against the loopback Bot API fake: limits, failures, exactly once."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from bot.services import build_services
from bot.web import render_metrics
from core.clock import to_db
from core.importers.journal import parse_journal
from core.services.outbox import Outbox, enqueue_many, outbox_row, this_sender
from core.storage.db import Database
from tests.support.delivery import worker
from tests.support.school import (
    ANNA_PHONE,
    IVAN_PHONE,
    SECRET,
    SERGEY_PHONE,
    journal_history,
)

ANNA, IVAN, SERGEY = 5001, 5002, 5003


def sender_outbox(services, db: Database, owner: str) -> Outbox:
    """The outbox of another sender (a process of its own, ``owner``), without quiet hours."""
    return Outbox(db, services.clock, services.tz, None, timedelta(seconds=60), owner=owner)


@pytest.fixture
async def linked(school):
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await school.linking.link_contact(SERGEY, SERGEY, SERGEY, SERGEY_PHONE)
    await journal_history(school)
    return school


async def grades(services, *values: int, student="S-1001", subject="Алгебра", start=1, **kw):
    lines = [
        json.dumps({"id": f"e{start + i}", "type": "grade", "grade_id": f"g{start + i}",
                    "student_id": student, "subject": subject, "date": "2026-11-23",
                    "value": v, "weight": 2, "work": "Контрольная работа", **kw},
                   ensure_ascii=False)
        for i, v in enumerate(values)
    ]
    summary, _ = await services.journal.import_journal(parse_journal(lines, "j"), "j")
    return summary


async def pending(services) -> int:
    return await services.outbox.pending()


async def test_a_grade_reaches_every_recipient_once_in_russian(linked, api, bot):
    await grades(linked, 5, comment="Отлично")
    stats = await worker(bot, linked).run_until_empty()
    assert stats.messages == 3 and await pending(linked) == 0
    text = api.messages_to(ANNA)[0].text
    assert text.startswith("🔔 Новая оценка 5 · Алгебра")
    assert "Иван · 23 ноября · вес 2 · Контрольная работа" in text
    assert "Комментарий: «Отлично»" in text
    assert "Средний балл: 5,00 (первая оценка)" in text
    assert len(api.messages_to(IVAN)) == 1 and len(api.messages_to(SERGEY)) == 1
    assert api.duplicates() == []
    # Running again sends nothing.
    await worker(bot, linked).run_until_empty()
    assert api.stats["delivered"] == 3


async def test_grades_due_together_go_as_one_message(linked, api, bot):
    await grades(linked, 4, 5, 3)
    await worker(bot, linked).run_until_empty()
    messages = api.messages_to(ANNA)
    assert len(messages) == 1
    assert messages[0].text.count("🔔 Новая оценка") == 3
    assert "Средний балл: 4,00 → 4,50" in messages[0].text


async def test_429_waits_retry_after_and_loses_nothing(linked, api, bot):
    api.global_bucket = None
    api.per_chat_rate, api.per_chat_burst = 0.5, 1
    await grades(linked, 5)
    w = worker(bot, linked)
    await w.run_until_empty()
    await grades(linked, 4, start=10)  # the chat's bucket is empty now: 429
    await w.run_until_empty()
    assert api.stats["rejected_429"] >= 1 and w.stats.rate_limited >= 1
    assert await pending(linked) == 3  # released, not failed
    linked.clock.advance(seconds=3)
    await asyncio.sleep(2.1)
    await w.run_until_empty()
    assert await pending(linked) == 0

    # What the operator sees: the sender's counters, in `diary status` and /metrics.
    await w._heartbeat()
    [state] = [x for x in (await linked.status.status()).workers if x.role == "delivery"]
    assert state.messages == 6 and state.rate_limited == w.stats.rate_limited >= 1
    assert state.paid == 0
    metrics = render_metrics(await linked.status.status(), linked.clock.now().timestamp())
    assert f'diary_sender_messages_total{{owner="{w.outbox.owner}"}} 6' in metrics
    assert (f'diary_sender_rate_limited_total{{owner="{w.outbox.owner}"}}'
            f' {w.stats.rate_limited}') in metrics
    assert "diary_paid_messages_today 0" in metrics
    assert len(api.messages_to(ANNA)) == 2 and api.duplicates() == []


async def test_server_errors_and_network_errors_are_retried(linked, api, bot):
    await grades(linked, 5)
    api.fail_next(1, 502)
    api.drop_next(1)
    w = worker(bot, linked, concurrency=1)
    for _ in range(6):
        await w.run_until_empty()
        linked.clock.advance(seconds=5)
        if not await pending(linked):
            break
    assert w.stats.retries == 2
    assert await pending(linked) == 0
    assert sorted(s.chat_id for s in api.sent) == [ANNA, IVAN, SERGEY]
    assert api.duplicates() == []


async def test_403_marks_the_account_unreachable_until_start(linked, api, bot):
    api.blocked_chats.add(ANNA)
    await grades(linked, 5)
    await worker(bot, linked).run_until_empty()
    assert api.messages_to(ANNA) == [] and len(api.messages_to(IVAN)) == 1
    assert await linked.db.scalar(
        "SELECT unreachable_at IS NOT NULL FROM accounts WHERE telegram_id = ?", (ANNA,)) == 1
    assert await pending(linked) == 0  # dropped, not retried
    # New grades do not queue for her while she is unreachable...
    summary = await grades(linked, 4, start=10)
    assert summary.pushes == 2
    # ...and she is reachable again after /start.
    api.blocked_chats.clear()
    await linked.linking.touch(ANNA, ANNA, "ru")
    await grades(linked, 3, start=20)
    await worker(bot, linked).run_until_empty()
    heads = [m.text.splitlines()[0] for m in api.messages_to(ANNA)]
    assert heads == ["🔔 Новая оценка 3 · Алгебра"]


async def test_a_long_message_is_split(linked, api, bot):
    await grades(linked, *([5] * 30), comment="Очень длинный комментарий учителя. " * 6)
    await worker(bot, linked).run_until_empty()
    parts = api.messages_to(ANNA)
    assert len(parts) >= 2
    assert all(len(p.text) <= 4096 for p in parts)
    assert sum(p.text.count("🔔 Новая оценка") for p in parts) == 30


async def test_quiet_hours_hold_pushes_and_release_them_as_one_message(linked, api, bot):
    linked.clock.moment = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # 23:30 in Moscow
    await grades(linked, 5, set_at="2026-11-23T20:29:00Z")
    await grades(linked, 4, start=10, set_at="2026-11-23T20:29:00Z")
    w = worker(bot, linked)
    await w.run_until_empty()
    assert api.sent == [] and await pending(linked) == 6
    held = await linked.db.scalar("SELECT MIN(not_before) FROM outbox")
    assert held == "2026-11-24T05:00:00.000000Z"  # 08:00 Moscow
    linked.clock.moment = datetime(2026, 11, 24, 5, 0, 1, tzinfo=UTC)
    await w.run_until_empty()
    messages = api.messages_to(ANNA)
    assert len(messages) == 1 and messages[0].text.count("🔔 Новая оценка") == 2


async def test_two_senders_never_send_the_same_row(linked, api, bot):
    for n in range(6):
        await grades(linked, 5, start=100 + n)
    # Two connections, as two processes have: no in-process lock keeps the senders apart.
    async with Database(linked.db.url) as other:
        first = worker(bot, linked, sender_outbox(linked, linked.db, "host:1"))
        second = worker(bot, linked, sender_outbox(linked, other, "host:2"))
        await asyncio.gather(first.run_until_empty(), second.run_until_empty())
    assert api.duplicates() == []
    assert first.stats.rows + second.stats.rows == 18
    assert await pending(linked) == 0


async def test_claims_of_a_dead_sender_are_taken_when_the_lease_runs_out(linked, api, bot):
    await grades(linked, 5)
    # Another process, even one with this process's pid (containers all run as pid 1).
    dead = sender_outbox(linked, linked.db, f"{socket.gethostname()}:1:dead")
    claimed = await dead.claim()
    assert len(claimed) == 3  # Anna, Ivan and Sergey: one push each
    await worker(bot, linked).run_until_empty()
    assert api.sent == []  # held by the other sender's lease
    linked.clock.advance(seconds=59)
    assert not await linked.outbox.has_due()
    linked.clock.advance(seconds=2)
    assert await linked.outbox.has_due()
    await worker(bot, linked).run_until_empty()
    assert sorted(m.chat_id for m in api.sent) == [ANNA, IVAN, SERGEY]
    assert await pending(linked) == 0


async def test_a_live_sender_renews_its_lease_and_keeps_its_rows(linked, api, bot):
    await grades(linked, 5)
    mine = sender_outbox(linked, linked.db, "host-a:1:live")
    other = sender_outbox(linked, linked.db, "host-b:1:other")
    [batch] = await mine.claim(recipients=1)
    assert len(batch.items) == 1
    for _ in range(5):  # five minutes, renewed every 15 s as the worker does
        for _ in range(4):
            linked.clock.advance(seconds=15)
            assert await mine.renew(batch.ids) == set(batch.ids)
        assert batch.telegram_id not in {b.telegram_id for b in await other.claim()}
    assert await other.renew(batch.ids) == set()  # not its rows
    # A row it no longer holds (settled) is not renewed.
    await mine.sent(batch.ids)
    assert await mine.renew(batch.ids) == set()


async def test_a_queued_push_wakes_an_idle_sender_at_once(linked, api, bot, monkeypatch):
    """PostgreSQL: NOTIFY at commit wakes the sender; it does not poll. (SQLite: polling.)"""
    monkeypatch.setattr("bot.delivery.IDLE_MAX", 3600.0)
    w = worker(bot, linked, poll_interval=3600.0, sleep=asyncio.sleep)
    task = asyncio.create_task(w.run())
    try:
        if linked.db.is_sqlite:
            await asyncio.sleep(0.2)
            assert not w._listening
            return
        for _ in range(200):
            if w._listening:
                break
            await asyncio.sleep(0.05)
        assert w._listening
        await asyncio.sleep(0.3)  # idle: asleep for an hour unless woken
        # The import runs on a connection of its own, as another process would.
        async with Database(linked.db.url) as other:
            importer = build_services(other, SECRET, linked.tz, linked.clock)
            await grades(importer, 5)
        await api.wait_for(lambda s: s.chat_id == ANNA, timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_owner_tells_two_starts_with_the_same_pid_apart(linked):
    first, second = this_sender(), this_sender()
    assert first != second
    assert first.rsplit(":", 2)[:2] == second.rsplit(":", 2)[:2]


async def test_a_failure_part_way_never_resends_what_went_out(linked, api, bot):
    api.global_bucket = None
    api.per_chat_rate, api.per_chat_burst = 0.5, 1  # the second message to a chat gets a 429
    await grades(linked, *([4] * 30), comment="Подробный комментарий учителя к работе. " * 6)
    w = worker(bot, linked)
    await w.run_until_empty()
    first = len(api.messages_to(ANNA))
    assert first == 1 and w.stats.rate_limited >= 1
    for _ in range(10):
        if not await pending(linked):
            break
        linked.clock.advance(seconds=3)
        await asyncio.sleep(2.1)
        await w.run_until_empty()
    parts = api.messages_to(ANNA)
    assert len(parts) >= 2 and api.duplicates() == []
    assert sum(p.text.count("🔔 Новая оценка") for p in parts) == 30


async def test_the_digest_is_not_held_by_quiet_hours(linked, api, bot):
    from core.services.outbox import enqueue

    linked.clock.moment = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 22:00 in Moscow
    await grades(linked, 5, set_at="2026-11-23T18:59:00Z")
    async with linked.db.transaction() as tx:
        await enqueue(tx, ANNA, "digest", {"day": "2026-11-23", "children": []}, "d",
                      linked.clock.now())
    batches = {b.telegram_id: b for b in await linked.outbox.claim(recipients=10)}
    assert [i.kind for i in batches[ANNA].items] == ["digest"]
    assert IVAN not in batches  # his grade push waits for the morning


async def test_a_chat_being_sent_to_is_not_claimed_by_another_sender(linked, api, bot):
    await grades(linked, 5)
    async with Database(linked.db.url) as other_db:
        a = sender_outbox(linked, linked.db, "host-a:1:a")
        b = sender_outbox(linked, other_db, "host-b:1:b")
        first = await a.claim()
        assert {x.telegram_id for x in first} == {ANNA, IVAN, SERGEY}
        await grades(linked, 4, start=10)  # news for the same chats while A sends
        assert await b.claim() == []  # they wait for A's lease, not beside it
        await a.sent([i for x in first for i in x.ids])
        second = await b.claim()
        assert {x.telegram_id for x in second} == {ANNA, IVAN, SERGEY}


async def test_settling_never_touches_rows_another_sender_took_and_sent(linked):
    await grades(linked, 5)
    a = sender_outbox(linked, linked.db, "host-a:1:a")
    b = sender_outbox(linked, linked.db, "host-b:1:b")
    ids = [i for x in await a.claim() for i in x.ids]
    linked.clock.advance(seconds=61)  # A stalled past its lease; B took the rows and sent them
    taken = [i for x in await b.claim() for i in x.ids]
    assert sorted(taken) == sorted(ids)
    await b.sent(taken)
    await a.drop(ids, "late")
    await a.retry(ids, timedelta(seconds=5), "late")
    rows = await linked.db.fetchall("SELECT sent_at, dropped_at, attempts FROM outbox")
    assert all(r["sent_at"] and r["dropped_at"] is None and r["attempts"] == 1 for r in rows)


async def test_a_claim_takes_at_most_a_thousand_rows_and_the_rest_next(linked):
    async with linked.db.transaction() as tx:
        await enqueue_many(tx, [outbox_row(ANNA, "relink", "{}", f"many:{n}", linked.clock.now())
                                for n in range(1_200)])
    first = await linked.outbox.claim()
    assert [len(b.items) for b in first] == [1_000]
    assert await linked.outbox.renew(first[0].ids) == set(first[0].ids)
    second = await linked.outbox.claim()
    assert second == []  # Anna's chat is being sent to
    await linked.outbox.sent(first[0].ids)
    assert [len(b.items) for b in await linked.outbox.claim()] == [200]


async def test_pushes_queued_in_one_go_keep_their_order_and_each_key_once(linked):
    """``enqueue_many`` counts only the new rows (a key already queued, or twice in the same
    call, is skipped), and the rows' ids follow the order they were given in."""
    now = linked.clock.now()
    ivan = await linked.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    async with linked.db.transaction() as tx:
        await tx.execute("DELETE FROM outbox")
        assert await enqueue_many(tx, [outbox_row(ANNA, "relink", "{}", "old", now)]) == 1
        added = await enqueue_many(tx, [
            outbox_row(ANNA, "grade_new", '{"n": 3}', "c", now, student_id=ivan),
            outbox_row(IVAN, "announcement", '{"text": "Ёлка"}', "a", now,
                       hold=timedelta(seconds=60)),
            outbox_row(ANNA, "relink", "{}", "old", now),
            outbox_row(SERGEY, "grade_new", '{"n": 1}', "b", now, student_id=ivan),
            outbox_row(SERGEY, "grade_new", '{"n": 2}', "b", now, student_id=ivan),
        ])
    assert added == 3
    rows = await linked.db.fetchall(
        "SELECT dedup_key, telegram_id, kind, student_id, payload, created_at, not_before"
        " FROM outbox ORDER BY id")
    stamp, later = to_db(now), to_db(now + timedelta(seconds=60))
    assert [tuple(r) for r in rows] == [
        ("old", ANNA, "relink", None, "{}", stamp, stamp),
        ("c", ANNA, "grade_new", ivan, '{"n": 3}', stamp, stamp),
        ("a", IVAN, "announcement", None, '{"text": "Ёлка"}', stamp, later),
        ("b", SERGEY, "grade_new", ivan, '{"n": 1}', stamp, stamp),
    ]


class GatedBudget:
    """Lets a send through only when the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0

    async def acquire(self, chat_id: int) -> bool:
        self.waiting += 1
        await self.gate.wait()
        return False


async def test_a_send_whose_lease_lapsed_meanwhile_is_not_made(linked, api, bot):
    await grades(linked, 5)  # three recipients
    budget = GatedBudget()
    w = worker(bot, linked, budget=budget)
    assert await w.step()
    for _ in range(100):
        if budget.waiting:
            break
        await asyncio.sleep(0.01)
    # The process stalls past its lease; another sender takes the rows.
    linked.clock.advance(seconds=61)
    other = sender_outbox(linked, linked.db, "host-b:1:b")
    taken = await other.claim()
    assert len(taken) == 3
    budget.gate.set()
    await w._drain()
    assert api.sent == []  # not sent from the stalled sender
    owners = await linked.db.fetchall("SELECT DISTINCT claimed_by FROM outbox")
    assert [r[0] for r in owners] == ["host-b:1:b"]  # and the other sender keeps them


async def test_the_weekly_chart_goes_as_a_picture_after_the_digest(linked, api, bot):
    import base64

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # any bytes: the sender uploads them
    now = linked.clock.now()
    digest = {"day": "2026-11-27", "children": []}
    week = {"child": "Иван Петров", "start": "2026-11-23", "end": "2026-11-27", "marks": 3,
            "png": base64.b64encode(png).decode()}
    ivan = await linked.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await linked.preferences.set_flag(ANNA, "digest_chart", True)  # she asked for it
    async with linked.db.transaction() as tx:
        await tx.execute("DELETE FROM outbox")
        await enqueue_many(tx, [
            outbox_row(ANNA, "digest", json.dumps(digest), "d", now),
            outbox_row(ANNA, "week_chart", json.dumps(week), "w", now, student_id=ivan)])
    stats = await worker(bot, linked).run_until_empty()
    assert stats.messages == 2 and await pending(linked) == 0
    sent = [s for s in api.sent if s.chat_id == ANNA]
    assert [s.method for s in sent] == ["sendmessage", "sendphoto"]
    assert sent[0].text.startswith("📰 Сводка")
    assert sent[1].params["caption"] == "📈 Неделя 23–27 нояб. · Иван Петров: 3 оценки"
    assert sent[1].params["photo"] == png  # uploaded whole, as a file
