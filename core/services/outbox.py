"""The outbox: pushes written with the facts they announce, claimed and settled by a sender.

A sender claims every due row of a few recipients at once (so a recipient's pending pushes go out
as one message), under a lease and with its identity (``host:pid``). Claims are taken inside
``BEGIN IMMEDIATE``, so two senders — the bot and ``diary jobs run deliver`` — never hold the same
row. A sender that dies leaves its claims behind; they are taken back when the lease runs out, or
at once by the next sender on the same host that sees the owner's process is gone.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.models import Scope
from core.quiet import QuietHours
from core.services.access import load_children
from core.services.preferences import Preferences, from_row
from core.storage.db import Database, Tx

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
# The scope a push about a child belongs to: checked again when it is sent.
KIND_SCOPES = {
    "grade_new": Scope.GRADES, "grade_changed": Scope.GRADES, "grade_deleted": Scope.GRADES,
    "dot_new": Scope.GRADES, "dot_reminder": Scope.GRADES, "dot_vanished": Scope.GRADES,
    "attendance": Scope.ATTENDANCE, "homework": Scope.HOMEWORK,
    "lesson_cancelled": Scope.HOMEWORK,
}


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    student_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class Batch:
    """All due pushes of one recipient, oldest first."""

    telegram_id: int
    chat_id: int
    locale: str | None
    language_code: str | None
    items: tuple[OutboxItem, ...]

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.items]


def this_sender() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PENDING = "sent_at IS NULL AND dropped_at IS NULL"
# A sender settles only rows it still holds: after its lease ran out another may have taken them.
# (Marking a row sent is never fenced: a message that went out must not go out again.)
_MINE = "(claimed_by = ? OR claimed_by IS NULL)"


async def enqueue(
    tx: Tx,
    telegram_id: int,
    kind: str,
    payload: dict[str, Any],
    dedup_key: str,
    now: datetime,
    student_id: int | None = None,
    hold: timedelta = timedelta(0),
) -> bool:
    """Queue one push inside the caller's transaction. The same dedup key is queued only once.

    ``hold`` delays it a little so that related facts arriving soon after join the message."""
    return await enqueue_many(tx, [outbox_row(
        telegram_id, kind, json.dumps(payload, ensure_ascii=False), dedup_key, now, student_id,
        hold)]) > 0


def outbox_row(telegram_id: int, kind: str, payload_json: str, dedup_key: str, now: datetime,
               student_id: int | None = None, hold: timedelta = timedelta(0)) -> tuple[Any, ...]:
    """One push as ``enqueue_many`` takes it."""
    return (telegram_id, kind, student_id, payload_json, dedup_key, _stamp(now),
            _stamp(now + hold))


# An import queues thousands of pushes stamped with the same moment: formatted once.
_stamp = functools.lru_cache(maxsize=16)(to_db)


async def enqueue_many(tx: Tx, rows: list[tuple[Any, ...]]) -> int:
    """Queue many pushes (``outbox_row`` tuples) in one statement; returns how many were new
    (a dedup key already queued is skipped)."""
    if not rows:
        return 0
    return await tx.executemany_count(
        "INSERT INTO outbox (telegram_id, kind, student_id, payload, dedup_key,"
        " created_at, not_before) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )


async def record_worker(tx: Tx, role: str, owner: str, now: datetime, *, progress: bool = False,
                        error: str | None = None) -> None:
    """A worker's sign of life: ``progress`` when it got something done; ``error`` (or None)
    is the outcome of its last round."""
    stamp = to_db(now)
    await tx.execute(
        "INSERT INTO workers (role, owner, started_at, beat_at, progress_at, last_error)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (role, owner) DO UPDATE SET"
        " beat_at = excluded.beat_at,"
        " progress_at = COALESCE(excluded.progress_at, workers.progress_at),"
        " last_error = excluded.last_error",
        (role, owner, stamp, stamp, stamp if progress else None,
         None if error is None else error[:500]),
    )


async def release_held(tx: Tx, telegram_id: int, held_until: datetime, until: datetime) -> int:
    """Pushes that quiet hours held until ``held_until`` go at ``until`` instead (the hours were
    turned off or now end sooner). A claim holds rows by setting exactly that moment, so rows
    waiting for other reasons (a retry, a rate limit) keep their own time."""
    cur = await tx.execute(
        f"UPDATE outbox SET not_before = ? WHERE telegram_id = ? AND {_PENDING}"
        f" AND not_before = ? AND kind != 'digest'",
        (to_db(until), telegram_id, to_db(held_until)),
    )
    return cur.rowcount


class Outbox:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        tz: ZoneInfo,
        quiet_default: QuietHours | None = None,
        owner: str | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.quiet_default = quiet_default
        self.owner = owner or this_sender()
        self.lease = lease

    async def has_due(self) -> bool:
        """A cheap read (no write lock) to decide whether claiming is worth it."""
        now = to_db(self.clock.now())
        return bool(
            await self.db.scalar(
                f"SELECT 1 FROM outbox WHERE {_PENDING} AND not_before <= ?"
                " AND (claimed_until IS NULL OR claimed_until < ?) LIMIT 1",
                (now, now),
            )
        )

    async def claim(self, recipients: int = 50, exclude: Iterable[int] = ()) -> list[Batch]:
        """Claim all due rows of up to ``recipients`` recipients, skipping ``exclude``."""
        now = self.clock.now()
        stamp = to_db(now)
        skip = set(exclude)
        batches: list[Batch] = []
        # Senders claim one at a time (in any process), so no row is claimed twice.
        async with self.db.locked("outbox-claim") as tx:
            candidates = await tx.fetchall(
                "SELECT o.telegram_id, MIN(o.id) AS first, a.chat_id, a.locale, a.language_code,"
                " a.unreachable_at, a.telegram_id IS NOT NULL AS known"
                " FROM outbox o LEFT JOIN accounts a ON a.telegram_id = o.telegram_id"
                " WHERE o.sent_at IS NULL AND o.dropped_at IS NULL AND o.not_before <= ?"
                " AND (o.claimed_until IS NULL OR o.claimed_until < ?)"
                " GROUP BY o.telegram_id, a.telegram_id, a.chat_id, a.locale, a.language_code,"
                " a.unreachable_at ORDER BY first LIMIT ?",
                (stamp, stamp, recipients + len(skip)),
            )
            for cand in candidates:
                tg = cand["telegram_id"]
                if tg in skip:
                    continue
                if not cand["known"] or cand["unreachable_at"] is not None:
                    await tx.execute(
                        f"UPDATE outbox SET dropped_at = ?, last_error = 'unreachable'"
                        f" WHERE telegram_id = ? AND {_PENDING}",
                        (stamp, tg),
                    )
                    continue
                # A recipient's stored settings that cannot be read never hold up the others:
                # the defaults stand in, and the operator hears of it.
                settings_row = await tx.fetchone(
                    "SELECT * FROM account_settings WHERE telegram_id = ?", (tg,))
                try:
                    prefs = from_row(settings_row)
                    quiet = (
                        QuietHours.parse(prefs.quiet_hours)
                        if prefs.quiet_hours is not None
                        else self.quiet_default
                    )
                except (ValueError, TypeError, KeyError) as exc:
                    log.error("account %s: unreadable settings (%s); defaults used", tg, exc)
                    prefs, quiet = Preferences(), self.quiet_default
                release = quiet.release_at(now, self.tz) if quiet else None
                if release is not None:
                    # Held until the quiet hours end — except the digest, whose time the user
                    # chose themselves.
                    await tx.execute(
                        f"UPDATE outbox SET not_before = ? WHERE telegram_id = ? AND {_PENDING}"
                        f" AND not_before < ? AND kind != 'digest'",
                        (to_db(release), tg, to_db(release)),
                    )
                due = await tx.fetchall(
                    f"SELECT id, kind, student_id, payload, created_at, attempts FROM outbox"
                    f" WHERE telegram_id = ? AND {_PENDING} AND not_before <= ?"
                    f" AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id",
                    (tg, stamp, stamp),
                )
                # What the recipient switched off in /settings is not sent, and nothing about a
                # child they may no longer see (a revoked trust, a roster change) is sent either.
                muted = {r["id"] for r in due if not prefs.allows(r["kind"], r["student_id"])}
                visible = {c.id: c.scopes for c in await load_children(tx, tg)}
                gone = {
                    r["id"] for r in due
                    if r["student_id"] is not None and r["kind"] in KIND_SCOPES
                    and KIND_SCOPES[r["kind"]] not in visible.get(r["student_id"], ())
                }
                await tx.executemany(
                    "UPDATE outbox SET dropped_at = ?, last_error = ? WHERE id = ?",
                    [(stamp, "muted", i) for i in muted - gone]
                    + [(stamp, "no access", i) for i in gone])
                payloads: dict[int, dict[str, Any]] = {}
                broken: set[int] = set()
                for r in due:
                    try:
                        payloads[r["id"]] = json.loads(r["payload"])
                    except ValueError:
                        broken.add(r["id"])
                if broken:
                    log.error("%d outbox rows with an unreadable payload dropped", len(broken))
                    await tx.executemany(
                        "UPDATE outbox SET dropped_at = ?, last_error = ? WHERE id = ?",
                        [(stamp, "unreadable payload", i) for i in broken - muted - gone])
                rows = [r for r in due if r["id"] not in muted | gone | broken]
                if not rows:
                    continue
                await tx.executemany(
                    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                    [(self.owner, to_db(now + self.lease), r["id"]) for r in rows],
                )
                items = tuple(
                    OutboxItem(r["id"], r["kind"], r["student_id"], payloads[r["id"]],
                               from_db(r["created_at"]), r["attempts"])
                    for r in rows
                )
                batches.append(
                    Batch(tg, cand["chat_id"], cand["locale"], cand["language_code"], items)
                )
                if len(batches) >= recipients:
                    break
        return batches

    async def _settle(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany(sql, params)

    async def sent(self, ids: list[int], role: str | None = None, paid: int = 0) -> None:
        """Telegram accepted the message carrying these rows; ``role`` records the sender's
        progress, and ``paid`` the paid broadcasts it took, in the same transaction."""
        stamp = to_db(self.clock.now())
        async with self.db.transaction() as tx:
            if paid:
                await tx.execute(
                    "INSERT INTO paid_messages (day, messages) VALUES (?, ?) ON CONFLICT (day)"
                    " DO UPDATE SET messages = paid_messages.messages + excluded.messages",
                    (self.clock.now().astimezone(self.tz).date().isoformat(), paid))
            await tx.executemany(
                "UPDATE outbox SET sent_at = ?, claimed_by = NULL, claimed_until = NULL,"
                " attempts = attempts + 1 WHERE id = ?",
                [(stamp, i) for i in ids],
            )
            if role is not None:
                await record_worker(tx, role, self.owner, self.clock.now(), progress=True)

    async def heartbeat(self, role: str, error: str | None = None) -> None:
        """The sender is alive (and, with ``error``, failing)."""
        async with self.db.transaction() as tx:
            await record_worker(tx, role, self.owner, self.clock.now(), error=error)

    async def retry(self, ids: list[int], delay: timedelta, error: str) -> None:
        """A transient failure: try again after ``delay``."""
        when = to_db(self.clock.now() + delay)
        await self._settle(
            "UPDATE outbox SET not_before = ?, attempts = attempts + 1, last_error = ?,"
            f" claimed_by = NULL, claimed_until = NULL WHERE id = ? AND {_MINE}",
            [(when, error[:500], i, self.owner) for i in ids],
        )

    async def defer(self, ids: list[int], until: datetime) -> None:
        """Not a failure (a rate limit): release the rows until then."""
        await self._settle(
            "UPDATE outbox SET not_before = ?, claimed_by = NULL, claimed_until = NULL"
            f" WHERE id = ? AND {_MINE}",
            [(to_db(until), i, self.owner) for i in ids],
        )

    async def drop(self, ids: list[int], error: str) -> None:
        """A permanent failure for these rows (kept for the record, never retried)."""
        stamp = to_db(self.clock.now())
        await self._settle(
            "UPDATE outbox SET dropped_at = ?, last_error = ?, claimed_by = NULL,"
            f" claimed_until = NULL WHERE id = ? AND {_MINE}",
            [(stamp, error[:500], i, self.owner) for i in ids],
        )

    async def unreachable(self, telegram_id: int, error: str) -> None:
        """Telegram refuses this chat (blocked, deactivated): stop until the user comes back."""
        stamp = to_db(self.clock.now())
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE accounts SET unreachable_at = ? WHERE telegram_id = ?", (stamp, telegram_id)
            )
            await tx.execute(
                f"UPDATE outbox SET dropped_at = ?, last_error = ?, claimed_by = NULL,"
                f" claimed_until = NULL WHERE telegram_id = ? AND {_PENDING}",
                (stamp, error[:500], telegram_id),
            )

    async def release_dead_claims(self, alive: Callable[[int], bool] = _pid_alive) -> int:
        """Take back claims of senders on this host whose process is gone (after kill -9)."""
        host = socket.gethostname()
        rows = await self.db.fetchall(
            f"SELECT DISTINCT claimed_by FROM outbox WHERE {_PENDING} AND claimed_by LIKE ?",
            (f"{host}:%",),
        )
        dead = []
        for row in rows:
            pid = row[0].rpartition(":")[2]
            if row[0] != self.owner and pid.isdigit() and not alive(int(pid)):
                dead.append(row[0])
        if not dead:
            return 0
        async with self.db.transaction() as tx:
            released = 0
            for owner in dead:
                cur = await tx.execute(
                    f"UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                    f" WHERE claimed_by = ? AND {_PENDING}",
                    (owner,),
                )
                released += cur.rowcount
        return released

    async def pending(self) -> int:
        return int(await self.db.scalar(f"SELECT COUNT(*) FROM outbox WHERE {_PENDING}") or 0)
