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
