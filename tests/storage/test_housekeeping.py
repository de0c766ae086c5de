from __future__ import annotations

from bot.jobs import housekeeping
from core.clock import to_db
from core.services.outbox import enqueue


async def test_old_delivered_pushes_and_decisions_are_forgotten(services, clock):
    async with services.db.transaction() as tx:
        await enqueue(tx, 1, "grade_new", {}, "old", clock.now())
        await enqueue(tx, 1, "grade_new", {}, "pending", clock.now())
        await tx.execute("INSERT INTO digest_log VALUES (1, '2026-10-01', ?, 1)",
                         (to_db(clock.now()),))
        await tx.execute("INSERT INTO fsm_state (key, state, updated_at) VALUES"
                         " ('42:1:1:default', 'TrustStates:phone', ?)", (to_db(clock.now()),))
    old = await services.db.scalar("SELECT id FROM outbox WHERE dedup_key = 'old'")
    await services.outbox.sent([old])
    clock.advance(days=31)
    result = await housekeeping(services)
    assert result["outbox"] == 1 and result["digest_log"] == 1
    assert result["conversations"] == 1
    # Undelivered pushes are never thrown away.
    assert [r[0] for r in await services.db.fetchall("SELECT dedup_key FROM outbox")] == [
        "pending"]


async def test_housekeeping_deletes_in_chunks_and_keeps_what_is_recent(services, clock,
                                                                       monkeypatch):
    import bot.jobs

    monkeypatch.setattr(bot.jobs, "CHUNK", 2)  # five rows: three transactions per kind
    async with services.db.transaction() as tx:
        for n in range(5):
            await enqueue(tx, n, "grade_new", {}, f"old{n}", clock.now())
            await tx.execute("INSERT INTO digest_log VALUES (?, '2026-10-01', ?, 1)",
                             (n, to_db(clock.now())))
            await tx.execute("INSERT INTO fsm_state (key, state, updated_at) VALUES (?, 'S', ?)",
                             (f"{n}:{n}:{n}:default", to_db(clock.now())))
        await tx.execute("INSERT INTO fsm_state (key, state) VALUES ('9:9:9:default', NULL)")
    await services.outbox.sent([r[0] for r in await services.db.fetchall(
        "SELECT id FROM outbox")])
    clock.advance(days=31)
    async with services.db.transaction() as tx:
        await enqueue(tx, 1, "grade_new", {}, "fresh", clock.now())
        await tx.execute("INSERT INTO digest_log VALUES (1, ?, ?, 1)",
                         (clock.now().date().isoformat(), to_db(clock.now())))
        await tx.execute("INSERT INTO fsm_state (key, state, updated_at) VALUES"
                         " ('7:7:7:default', 'S', ?)", (to_db(clock.now()),))
    result = await housekeeping(services)
    assert (result["outbox"], result["digest_log"], result["conversations"]) == (5, 5, 6)
    assert [r[0] for r in await services.db.fetchall("SELECT dedup_key FROM outbox")] == [
        "fresh"]
    assert await services.db.scalar("SELECT COUNT(*) FROM digest_log") == 1
    assert [r[0] for r in await services.db.fetchall("SELECT key FROM fsm_state")] == [
        "7:7:7:default"]
    assert (await housekeeping(services))["outbox"] == 0


async def test_a_weekly_charts_picture_is_forgotten_a_day_after_it_went(services, clock):
    async with services.db.transaction() as tx:
        await enqueue(tx, 1, "week_chart", {"png": "iVBORw0KGgo="}, "chart", clock.now())
        await enqueue(tx, 1, "digest", {}, "digest", clock.now())
        await enqueue(tx, 1, "week_chart", {"png": "iVBORw0KGgo="}, "waiting", clock.now())
    ids = [r[0] for r in await services.db.fetchall(
        "SELECT id FROM outbox WHERE dedup_key IN ('chart', 'digest')")]
    await services.outbox.sent(ids)
    clock.advance(hours=23)
    assert (await housekeeping(services))["outbox"] == 0
    clock.advance(hours=2)
    assert (await housekeeping(services))["outbox"] == 1
    assert sorted(r[0] for r in await services.db.fetchall(
        "SELECT dedup_key FROM outbox")) == ["digest", "waiting"]


async def test_the_pictures_are_found_by_their_own_index(services):
    if not services.db.is_sqlite:
        return  # the plan is SQLite's to read; PostgreSQL has the same partial index
    plan = " ".join(str(r[-1]) for r in await services.db.fetchall(
        "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE kind = 'week_chart' AND sent_at < ?",
        ("2026-11-01",)))
    assert "outbox_week_chart_sent" in plan
