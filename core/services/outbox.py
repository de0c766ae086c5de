"""The outbox: pushes written with the facts they announce, claimed and settled by senders.

A sender claims every due row of a few recipients at once (so a recipient's pending pushes go out
as one message) under a lease, with its identity (``host:pid:token``, unique per start even where
every container runs as pid 1). On PostgreSQL senders claim side by side with
``FOR UPDATE SKIP LOCKED``; on SQLite the claim holds the write lock. A live sender renews the
lease of what it holds; the claims of a sender that died (kill -9, a lost host) run out with
their lease and are taken by the others. No process ids are compared: they mean nothing across
hosts and containers.

Queuing a push on PostgreSQL notifies the senders (``NOTIFY diary_outbox``, delivered at commit),
so they wake at once instead of polling.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.pushes import SCOPES, UNHELD, Preferences, from_row
from core.quiet import QuietHours
from core.services.access import load_children_many
from core.storage.db import Database, Tx, in_list

log = logging.getLogger(__name__)

# The channel that wakes the senders on PostgreSQL.
CHANNEL = "diary_outbox"
# What the outbox knows of each kind comes from core/pushes.py: the scope checked again when a
# push about a child is sent (``SCOPES``), and the kinds quiet hours never hold (``UNHELD``).


class Doorbell:
    """Rung by whatever queues pushes in this process (an import, the API, a job); this
    process's sender waits on it, so they go at once. (Senders of other processes hear of them
    by ``NOTIFY`` on PostgreSQL, and look every ``poll_interval`` on SQLite.)"""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def ring(self) -> None:
        self.event.set()


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
    """``host:pid:token``: the token tells this start from an earlier one with the same pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


_PENDING = "sent_at IS NULL AND dropped_at IS NULL"
# A claim reads this many of the oldest due rows per recipient it wants (most recipients have
# one or two rows due; the second read takes the rest of theirs).
_SCAN_PER_RECIPIENT = 4
# At most this many cooling chats are named in the claim's SQL.
_SKIP_IN_SQL = 500
# At most this many rows in one claim (a chat with more gets the rest with the next one), so
# that every list of ids stays far below the databases' limits on bound parameters.
_ROWS_PER_CLAIM = 1000
# The advisory lock space of "a claim is choosing this recipient" (PostgreSQL).
_CLAIM_LOCK_SPACE = 7301


def _chunks(ids: list[int], size: int = _ROWS_PER_CLAIM) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


# A sender settles only rows it still holds: after its lease ran out another may have taken (or
# even sent) them. (Marking a row sent is never fenced: a message that went out must not go out
# again.)
_MINE = "claimed_by = ? AND sent_at IS NULL AND dropped_at IS NULL"


async def enqueue(
    tx: Tx,
    telegram_id: int,
    kind: str,
    payload: Mapping[str, Any],
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
    created = _stamp(now)
    return (telegram_id, kind, student_id, payload_json, dedup_key, created,
            _stamp(now + hold) if hold else created)


# An import queues thousands of pushes stamped with the same moment: formatted once.
_stamp = functools.lru_cache(maxsize=16)(to_db)


_OUTBOX_COLUMNS = ("(telegram_id, kind, student_id, payload, dedup_key, created_at,"
                   " not_before)")
# PostgreSQL: the rows as one array a column, unnested in their order (the ids follow it, as
# they follow the order of the rows of a multi-row VALUES).
_UNNEST_SQL = (
    f"INSERT INTO outbox {_OUTBOX_COLUMNS}"
    " SELECT telegram_id, kind, student_id, payload, dedup_key, created_at, not_before"
    " FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]),"
    " CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]))"
    " WITH ORDINALITY AS r (telegram_id, kind, student_id, payload, dedup_key, created_at,"
    " not_before, n) ORDER BY n ON CONFLICT DO NOTHING")


async def enqueue_many(tx: Tx, rows: list[tuple[Any, ...]]) -> int:
    """Queue many pushes (``outbox_row`` tuples) in one statement; returns how many were new
    (a dedup key already queued is skipped)."""
    if not rows:
        return 0
    if tx.conn.dialect.name == "sqlite":  # the driver's executemany: one statement, prepared
        added = await tx.executemany_count(
            f"INSERT INTO outbox {_OUTBOX_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING", rows)
    else:  # one statement of seven arrays, whatever the number of rows
        columns = [list(c) for c in zip(*rows, strict=True)]
        added = max(0, (await tx.execute(_UNNEST_SQL, columns)).rowcount)
    if added:
        await notify_senders(tx)
    return added


async def notify_senders(tx: Tx) -> None:
    """Wake the senders when this transaction commits (PostgreSQL; one notice per transaction
    however often it is called). On SQLite senders look every ``poll_interval``."""
    if tx.conn.dialect.name != "sqlite":
        await tx.execute(f"NOTIFY {CHANNEL}")


async def record_worker(tx: Tx, role: str, owner: str, now: datetime, *, progress: bool = False,
                        error: str | None = None, messages: int = 0, rate_limited: int = 0,
                        paid: int = 0, rate: float | None = None) -> None:
    """A worker's sign of life: ``progress`` when it got something done; ``error`` (or None)
    is the outcome of its last round; ``messages``, ``rate_limited`` (429s) and ``paid`` are
    added to its counters; ``rate``: messages a second since its last record."""
    stamp = to_db(now)
    await tx.execute(
        "INSERT INTO workers (role, owner, started_at, beat_at, progress_at, last_error,"
        " messages, rate_limited, paid, sent_per_second) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (role, owner) DO UPDATE SET"
        " beat_at = excluded.beat_at,"
        " progress_at = COALESCE(excluded.progress_at, workers.progress_at),"
        " last_error = excluded.last_error,"
        " messages = workers.messages + excluded.messages,"
        " rate_limited = workers.rate_limited + excluded.rate_limited,"
        " paid = workers.paid + excluded.paid,"
        " sent_per_second = CASE WHEN ? THEN excluded.sent_per_second"
        " ELSE workers.sent_per_second END",
        (role, owner, stamp, stamp, stamp if progress else None,
         None if error is None else error[:500], messages, rate_limited, paid, rate or 0.0,
         rate is not None),
    )


async def release_held(tx: Tx, telegram_id: int, held_until: datetime, until: datetime) -> int:
    """Pushes that quiet hours held until ``held_until`` go at ``until`` instead (the hours were
    turned off or now end sooner). A claim holds rows by setting exactly that moment, so rows
    waiting for other reasons (a retry, a rate limit) keep their own time."""
    unheld = sorted(UNHELD)
    cur = await tx.execute(
        f"UPDATE outbox SET not_before = ? WHERE telegram_id = ? AND {_PENDING}"
        f" AND not_before = ? AND kind NOT IN ({', '.join('?' * len(unheld))})",
        (to_db(until), telegram_id, to_db(held_until), *unheld),
    )
    if cur.rowcount:
        await notify_senders(tx)
    return cur.rowcount


class Outbox:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        tz: ZoneInfo,
        quiet_default: QuietHours | None,
        lease: timedelta,
        owner: str | None = None,
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

    async def next_due(self) -> datetime | None:
        """When the earliest pending row not held by a sender becomes due (None: nothing
        pending), so that an idle sender sleeps until then."""
        now = to_db(self.clock.now())
        raw = await self.db.scalar(
            f"SELECT MIN(not_before) FROM outbox WHERE {_PENDING}"
            " AND (claimed_until IS NULL OR claimed_until < ?)", (now,))
        return from_db(raw) if raw else None

    async def claim(self, recipients: int = 50, exclude: Iterable[int] = ()) -> list[Batch]:
        """Claim all due rows of up to ``recipients`` recipients, skipping ``exclude`` (chats this
        sender is busy with or cooling down).

        The oldest due rows name the recipients; then every due row of those recipients is
        claimed, so that what piled up for a chat goes out as one message. On PostgreSQL both
        reads take ``FOR UPDATE SKIP LOCKED``: senders claim side by side, each passing over the
        rows another is claiming at that moment, and a row is held by one sender only. On
        SQLite the transaction holds the database's write lock, so claims take turns."""
        now = self.clock.now()
        stamp = to_db(now)
        skip = set(exclude)
        pg = not self.db.is_sqlite
        locking = " FOR UPDATE SKIP LOCKED" if pg else ""
        unclaimed = "(claimed_until IS NULL OR claimed_until < ?)"
        # Cooling chats are left out in SQL, so that their rows never fill the window; the few
        # beyond the bind limit are left out below.
        named: list[Any] = sorted(skip)[:_SKIP_IN_SQL]
        not_in = ""
        if named:
            marks, named = in_list(named)
            not_in = f" AND telegram_id NOT IN ({marks})"
        async with self.db.transaction() as tx:
            oldest = await tx.fetchall(
                f"SELECT id, telegram_id FROM outbox WHERE {_PENDING} AND not_before <= ?"
                f" AND {unclaimed}{not_in} ORDER BY id LIMIT ?{locking}",
                (stamp, stamp, *named, recipients * _SCAN_PER_RECIPIENT + len(skip)))
            chosen: list[int] = []
            for row in oldest:
                tg = row["telegram_id"]
                if tg not in skip and tg not in chosen:
                    chosen.append(tg)
            if pg and chosen:
                # One claim at a time per recipient: another sender claiming the same chat at
                # this moment (it reached a later row of it) keeps it.
                padded = in_list(chosen)[1]
                locked = {r[0] for r in await tx.fetchall(
                    "SELECT DISTINCT tg FROM (VALUES "
                    + ", ".join("(CAST(? AS BIGINT))" for _ in padded)
                    + f") AS v(tg) WHERE pg_try_advisory_xact_lock({_CLAIM_LOCK_SPACE},"
                    " hashtext(tg::text))", padded)}
                chosen = [tg for tg in chosen if tg in locked]
            if chosen:
                # A chat another sender is sending to now waits for its lease to end: two
                # messages never go to one chat side by side.
                marks, padded = in_list(chosen)
                busy = {r[0] for r in await tx.fetchall(
                    f"SELECT DISTINCT telegram_id FROM outbox WHERE telegram_id IN"
                    f" ({marks}) AND {_PENDING} AND claimed_until >= ?",
                    (*padded, stamp))}
                chosen = [tg for tg in chosen if tg not in busy][:recipients]
            if not chosen:
                return []
            due: dict[int, list[Any]] = {tg: [] for tg in chosen}
            expired: dict[str, int] = {}
            marks, padded = in_list(chosen)
            for r in await tx.fetchall(
                    "SELECT id, telegram_id, kind, student_id, payload, created_at, attempts,"
                    f" claimed_by FROM outbox WHERE telegram_id IN ({marks})"
                    f" AND {_PENDING} AND not_before <= ? AND {unclaimed} ORDER BY id"
                    f" LIMIT {_ROWS_PER_CLAIM}{locking}", (*padded, stamp, stamp)):
                due[r["telegram_id"]].append(r)
                if r["claimed_by"] is not None and r["claimed_by"] != self.owner:
                    expired[r["claimed_by"]] = expired.get(r["claimed_by"], 0) + 1
            for owner, count in expired.items():
                log.warning("took over %d %s claimed by %s, whose lease ran out (a sender that"
                            " died or stalled)", count, "push" if count == 1 else "pushes", owner)
            chosen = [tg for tg in chosen if due[tg]]
            if not chosen:
                return []
            marks, padded = in_list(chosen)
            accounts = {r["telegram_id"]: r for r in await tx.fetchall(
                "SELECT telegram_id, chat_id, locale, language_code, unreachable_at"
                f" FROM accounts WHERE telegram_id IN ({marks})", padded)}
            drops: list[tuple[str, str, int]] = []
            for tg in chosen:
                if tg not in accounts or accounts[tg]["unreachable_at"] is not None:
                    # Only the rows this claim holds: a row another claim holds is not waited for.
                    drops.extend((stamp, "unreachable", r["id"]) for r in due[tg])
            chosen = [tg for tg in chosen
                      if tg in accounts and accounts[tg]["unreachable_at"] is None]
            settings: dict[int, Any] = {}
            if chosen:
                marks, padded = in_list(chosen)
                settings = {r["telegram_id"]: r for r in await tx.fetchall(
                    f"SELECT * FROM account_settings WHERE telegram_id IN ({marks})", padded)}
            children = await load_children_many(tx, chosen) if chosen else {}
            holds: dict[str, list[int]] = {}
            claims: list[int] = []
            batches: list[Batch] = []
            for tg in chosen:
                rows = self._sendable(tg, settings.get(tg), due[tg], children.get(tg, ()), now,
                                      stamp, drops, holds)
                if not rows:
                    continue
                claims.extend(item.id for item in rows)
                account = accounts[tg]
                batches.append(Batch(tg, account["chat_id"], account["locale"],
                                     account["language_code"], tuple(rows)))
            if drops:
                await tx.executemany(
                    "UPDATE outbox SET dropped_at = ?, last_error = ? WHERE id = ?", drops)
            for until, ids in holds.items():
                for part in _chunks(ids):
                    marks, padded = in_list(part)
                    await tx.execute(f"UPDATE outbox SET not_before = ? WHERE id IN ({marks})",
                                     (until, *padded))
            for part in _chunks(claims):
                marks, padded = in_list(part)
                await tx.execute(
                    "UPDATE outbox SET claimed_by = ?, claimed_until = ?"
                    f" WHERE id IN ({marks})", (self.owner, to_db(now + self.lease), *padded))
        return batches

    def _sendable(self, tg: int, settings_row: Any, due: list[Any], children: Iterable[Any],
                  now: datetime, stamp: str, drops: list[tuple[str, str, int]],
                  holds: dict[str, list[int]]) -> list[OutboxItem]:
        """What of a recipient's due rows may go now. The rest is dropped (switched off in
        /settings, about a child no longer visible, unreadable) or held (quiet hours)."""
        # Stored settings that cannot be read never hold up the others: the defaults stand
        # in, and the operator hears of it.
        try:
            prefs = from_row(settings_row)
            quiet = (QuietHours.parse(prefs.quiet_hours) if prefs.quiet_hours is not None
                     else self.quiet_default)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("account %s: unreadable settings (%s); defaults used", tg, exc)
            prefs, quiet = Preferences(), self.quiet_default
        release = quiet.release_at(now, self.tz) if quiet else None
        visible = {c.id: c.scopes for c in children}
        items: list[OutboxItem] = []
        for r in due:
            kind, student = r["kind"], r["student_id"]
            if (student is not None and kind in SCOPES
                    and SCOPES[kind] not in visible.get(student, ())):
                # Nothing about a child they may no longer see (a revoked trust, a roster
                # change) is sent.
                drops.append((stamp, "no access", r["id"]))
                continue
            if not prefs.allows(kind, student):  # switched off in /settings
                drops.append((stamp, "muted", r["id"]))
                continue
            try:
                payload = json.loads(r["payload"])
            except ValueError:
                log.error("outbox row %s: unreadable payload; dropped", r["id"])
                drops.append((stamp, "unreadable payload", r["id"]))
                continue
            if release is not None and kind not in UNHELD:
                # Held until the quiet hours end — except the digest, whose time the user
                # chose themselves.
                holds.setdefault(to_db(release), []).append(r["id"])
                continue
            items.append(OutboxItem(r["id"], kind, student, payload, from_db(r["created_at"]),
                                    r["attempts"]))
        return items

    async def _settle(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany(sql, params)

    async def sent(self, ids: list[int]) -> None:
        """Telegram accepted the messages carrying these rows. (Statements on the rows alone:
        senders side by side never wait for each other here.)"""
        stamp = to_db(self.clock.now())
        async with self.db.transaction() as tx:
            for part in _chunks(ids):
                marks, padded = in_list(part)
                await tx.execute(
                    "UPDATE outbox SET sent_at = ?, claimed_by = NULL, claimed_until = NULL,"
                    f" attempts = attempts + 1 WHERE id IN ({marks})", (stamp, *padded))

    async def heartbeat(self, role: str, error: str | None = None, *, progress: bool = False,
                        messages: int = 0, rate_limited: int = 0, paid: int = 0,
                        rate: float | None = None) -> None:
        """The sender is alive (and, with ``error``, failing). Since its last record it sent
        ``messages`` (``progress``), met ``rate_limited`` 429s, sent ``paid`` paid broadcasts
        (added to today's count) at ``rate`` messages a second."""
        async with self.db.transaction() as tx:
            if paid:
                await tx.execute(
                    "INSERT INTO paid_messages (day, messages) VALUES (?, ?) ON CONFLICT (day)"
                    " DO UPDATE SET messages = paid_messages.messages + excluded.messages",
                    (self.clock.now().astimezone(self.tz).date().isoformat(), paid))
            await record_worker(tx, role, self.owner, self.clock.now(), error=error,
                                progress=progress, messages=messages, rate_limited=rate_limited,
                                paid=paid, rate=rate)

    async def renew(self, ids: list[int]) -> set[int]:
        """Extend the lease of these rows; returns those this sender still holds (the others
        were taken by another sender after the lease ran out, or settled)."""
        held: set[int] = set()
        if not ids:
            return held
        async with self.db.transaction() as tx:
            for part in _chunks(ids):
                marks, padded = in_list(part)
                held.update(r[0] for r in await tx.fetchall(
                    f"UPDATE outbox SET claimed_until = ? WHERE id IN ({marks})"
                    f" AND {_MINE} RETURNING id",
                    (to_db(self.clock.now() + self.lease), *padded, self.owner)))
        return held

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

    async def pending(self) -> int:
        return int(await self.db.scalar(f"SELECT COUNT(*) FROM outbox WHERE {_PENDING}") or 0)
