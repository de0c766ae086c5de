"""When each account's next daily digest is due: ``accounts.digest_due_at``.

An account that may get a digest — switched on, and following a child through an account link or
a trust with the digest scope — carries the moment its next digest is due (UTC text, as
``core.clock.to_db``); NULL means no digest. A partial index holds only the accounts with a moment
that Telegram still delivers to, so the digest job reads just the accounts whose moment has come,
however many there are.

The moment is the account's digest time (its own, else the school's ``DIGEST_TIME``) on a day
(every day, as before) in the school's time zone (``zoneinfo``: a day's moment is its
wall-clock time, DST or not): today's while today's digest is not decided and its four hours of
grace have not run out, else tomorrow's. It is worked out again, in the same transaction,
whenever what decides it changes: the digest switch, time or children in settings, a new
account link, a trust accepted or ended; and the job moves it on to the next day once the day's
digest is sent, skipped or too late. When ``DIGEST_TIME`` changes, the next digest run moves
the moments of every account on the default time. Links that go with the roster (a guardian
replaced or removed) are not followed here: such an account stays due and the job, finding it
follows nobody any more, clears its moment.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.clock import to_db
from core.storage.db import Tx

GRACE = timedelta(hours=4)
# A moment before any other: "due now, to be worked out by the next run" (the migration that
# introduced the column gave it to every account that may get a digest).
EPOCH = "1970-01-01T00:00:00.000000Z"
# The default digest time the stored moments were worked out with (table ``meta``).
META_DEFAULT_TIME = "digest_default_time"
_PART = 500  # accounts per query


def follows_sql(account: str) -> str:
    """1 if the account follows a child that may have a digest (a link, or a trust with the
    digest scope), else 0."""
    return (f"CASE WHEN EXISTS (SELECT 1 FROM account_links l WHERE l.telegram_id = {account})"
            f" OR EXISTS (SELECT 1 FROM trusts t WHERE t.telegram_id = {account}"
            f" AND (t.scopes IS NULL OR ',' || t.scopes || ',' LIKE '%,digest,%'))"
            f" THEN 1 ELSE 0 END")


def decided_sql(account: str, day: str) -> str:
    """1 if the account's digest of ``day`` (a bind name) is decided (``digest_log``), else 0."""
    return (f"CASE WHEN EXISTS (SELECT 1 FROM digest_log d WHERE d.telegram_id = {account}"
            f" AND d.day = :{day}) THEN 1 ELSE 0 END")


def enabled(value: object) -> bool:
    """``account_settings.digest_enabled``: NULL is the default, on."""
    return value is None or bool(value)


@dataclass(frozen=True)
class DigestSchedule:
    tz: ZoneInfo
    default_time: str = "19:00"
    grace: timedelta = GRACE

    def time_of(self, own: str | None) -> str:
        return own or self.default_time

    @functools.lru_cache(maxsize=1024)  # noqa: B019 — a few days × a few times, per schedule
    def moment(self, day: date, hhmm: str) -> datetime:
        """``hhmm`` school time on ``day``, as a UTC moment."""
        hours, _, minutes = hhmm.partition(":")
        local = datetime.combine(day, time(int(hours), int(minutes)), tzinfo=self.tz)
        return local.astimezone(UTC)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()

    def next_due(self, now: datetime, hhmm: str, decided_today: bool) -> datetime:
        """Today's moment while today's digest can still go (not decided, within the grace),
        else tomorrow's. A day's digest never goes after that day's midnight."""
        today = self.today(now)
        at = self.moment(today, hhmm)
        if not decided_today and now < at + self.grace:
            return at
        return self.moment(today + timedelta(days=1), hhmm)

    async def refresh(self, tx: Tx, telegram_ids: Iterable[int], now: datetime) -> None:
        """Work out again the due moment of these accounts, inside the caller's transaction
        (after a change of what decides it)."""
        ids = sorted(set(telegram_ids))
        day = self.today(now).isoformat()
        for i in range(0, len(ids), _PART):
            part = ids[i : i + _PART]
            binds: dict[str, object] = {f"a{n}": tg for n, tg in enumerate(part)}
            binds["day"] = day
            rows = await tx.fetchall(
                f"SELECT a.telegram_id, s.digest_enabled, s.digest_time,"
                f" {follows_sql('a.telegram_id')} AS follows,"
                f" {decided_sql('a.telegram_id', 'day')} AS decided"
                f" FROM accounts a LEFT JOIN account_settings s ON s.telegram_id = a.telegram_id"
                f" WHERE a.telegram_id IN ({', '.join(':a' + str(n) for n in range(len(part)))})",
                binds)
            await tx.executemany(
                "UPDATE accounts SET digest_due_at = ? WHERE telegram_id = ?",
                [(self.due_of(now, r["digest_enabled"], r["digest_time"], r["follows"],
                              r["decided"]), r["telegram_id"]) for r in rows])

    def due_of(self, now: datetime, digest_enabled: object, digest_time: str | None,
               follows: object, decided_today: object) -> str | None:
        """The stored value of ``digest_due_at`` for an account in this state."""
        if not (enabled(digest_enabled) and follows):
            return None
        return to_db(self.next_due(now, self.time_of(digest_time), bool(decided_today)))
