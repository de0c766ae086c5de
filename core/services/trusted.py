"""Trusted persons: a guardian invites a grandmother, a nanny or a tutor by phone; access to the
chosen children and scopes starts when the owner of that number accepts, and ends on revocation,
on leaving, or when the inviting guardian is no longer the child's guardian."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.errors import (
    AccessDenied,
    InvitationInvalid,
    NameInvalid,
    PhoneInvalid,
    SelfInvitation,
    TooManyTrusted,
)
from core.identity import Hasher, normalize_phone
from core.models import Role, Scope, Viewer
from core.pushes import InvitationPush
from core.services.access import AccessService, parse_scopes
from core.services.digest_due import DigestSchedule
from core.services.outbox import enqueue
from core.storage.db import Database, Tx

MAX_TRUSTED = 10
INVITATION_TTL = timedelta(days=7)
_NAME = re.compile(r"^[^\W\d_][^\W\d_\s'’.-]*(?:[\s'’.-]+[^\W\d_]+)*$")


@dataclass(frozen=True)
class InviteePhone:
    hash: str
    masked: str  # «+7 ··· ···-··-67»


@dataclass(frozen=True)
class Invitation:
    id: int
    inviter_tg: int
    inviter_name: str
    surname: str
    children: tuple[tuple[int, str], ...]  # (student id, first name and surname)
    scopes: frozenset[Scope]
    status: str
    expires_at: datetime


@dataclass(frozen=True)
class TrustedPerson:
    trust_id: int
    student_id: int
    child_name: str
    telegram_id: int
    surname: str
    scopes: frozenset[Scope]
    since: datetime
    inviter_tg: int


@dataclass(frozen=True)
class LogEntry:
    at: datetime
    event: str
    person: str
    child_name: str


@dataclass(frozen=True)
class Overview:
    trusted: tuple[TrustedPerson, ...]
    pending: tuple[Invitation, ...]


def _scopes_text(scopes: frozenset[Scope] | set[Scope]) -> str:
    return ",".join(s.value for s in Scope if s in scopes)


def invitation_push(inv: Invitation, tz: ZoneInfo) -> InvitationPush:
    """What an invitation card shows: pushed to the invitee, and shown again by /trusted."""
    return {"invitation_id": inv.id, "inviter": inv.inviter_name, "surname": inv.surname,
            "children": [name for _id, name in inv.children],
            "scopes": [s.value for s in Scope if s in inv.scopes],
            "expires": to_db(inv.expires_at),
            "expires_day": inv.expires_at.astimezone(tz).date().isoformat()}


class TrustService:
    def __init__(self, db: Database, hasher: Hasher, clock: Clock, tz: ZoneInfo,
                 schedule: DigestSchedule, ttl: timedelta = INVITATION_TTL) -> None:
        self.db = db
        self.tz = tz
        self.hasher = hasher
        self.clock = clock
        self.schedule = schedule  # a trust begun or ended moves the trusted person's digest
        self.ttl = ttl

    # -- reading ------------------------------------------------------------------------------

    async def _invitation(self, tx: Tx | Database, row) -> Invitation:
        ids = json.loads(row["students"])
        names = await tx.fetchall(
            f"SELECT id, first_name || ' ' || last_name FROM students"
            f" WHERE id IN ({','.join('?' * len(ids))}) ORDER BY first_name", ids)
        inviter = await tx.scalar(
            "SELECT first_name || ' ' || last_name FROM guardians WHERE id = ?",
            (row["guardian_id"],))
        return Invitation(row["id"], row["inviter_tg"], inviter or "", row["surname"],
                          tuple((r[0], r[1]) for r in names), parse_scopes(row["scopes"]),
                          row["status"], from_db(row["expires_at"]))

    async def pending_for(self, telegram_id: int) -> list[Invitation]:
        """Invitations waiting for the owner of this account's verified number."""
        rows = await self.db.fetchall(
            "SELECT i.* FROM invitations i JOIN accounts a ON a.phone_hash = i.phone_hash"
            " WHERE a.telegram_id = ? AND i.status = 'pending' AND i.expires_at > ?"
            " AND i.inviter_tg != a.telegram_id ORDER BY i.id",
            (telegram_id, to_db(self.clock.now())))
        return [await self._invitation(self.db, r) for r in rows]

    async def by_token(self, token: str) -> Invitation | None:
        row = await self.db.fetchone("SELECT * FROM invitations WHERE token_hash = ?",
                                     (self.hasher.code(token),))
        return await self._invitation(self.db, row) if row else None

    async def overview(self, viewer: Viewer) -> Overview:
        """For a guardian: the trusted persons and pending invitations of their children."""
        children = [c.id for c in viewer.children if c.role is Role.GUARDIAN]
        if not children:
            return Overview((), ())
        marks = ",".join("?" * len(children))
        rows = await self.db.fetchall(
            f"SELECT t.*, s.first_name || ' ' || s.last_name AS child_name FROM trusts t"
            f" JOIN students s ON s.id = t.student_id"
            f" JOIN guardianships g ON g.guardian_id = t.guardian_id"
            f" AND g.student_id = t.student_id"
            f" WHERE t.student_id IN ({marks}) ORDER BY s.first_name, t.surname", children)
        trusted = tuple(
            TrustedPerson(r["id"], r["student_id"], r["child_name"], r["telegram_id"],
                          r["surname"], parse_scopes(r["scopes"]), from_db(r["created_at"]),
                          r["inviter_tg"]) for r in rows)
        pending = [
            await self._invitation(self.db, r)
            for r in await self.db.fetchall(
                "SELECT * FROM invitations WHERE status = 'pending' AND expires_at > ?"
                " ORDER BY id", (to_db(self.clock.now()),))
            if set(json.loads(r["students"])) & set(children)
        ]
        return Overview(trusted, tuple(pending))

    async def my_access(self, viewer: Viewer) -> list[TrustedPerson]:
        """For a trusted person: what they were given."""
        rows = await self.db.fetchall(
            "SELECT t.*, s.first_name || ' ' || s.last_name AS child_name FROM trusts t"
            " JOIN students s ON s.id = t.student_id"
            " JOIN guardianships g ON g.guardian_id = t.guardian_id"
            " AND g.student_id = t.student_id WHERE t.telegram_id = ? ORDER BY s.first_name",
            (viewer.telegram_id,))
        return [TrustedPerson(r["id"], r["student_id"], r["child_name"], r["telegram_id"],
                              r["surname"], parse_scopes(r["scopes"]), from_db(r["created_at"]),
                              r["inviter_tg"]) for r in rows]

    async def log(self, viewer: Viewer, limit: int = 30) -> list[LogEntry]:
        children = [c.id for c in viewer.children if c.role is Role.GUARDIAN]
        if not children:
            return []
        rows = await self.db.fetchall(
            f"SELECT l.at, l.event, l.person, s.first_name AS child FROM trust_log l"
            f" JOIN students s ON s.id = l.student_id"
            f" WHERE l.student_id IN ({','.join('?' * len(children))})"
            f" ORDER BY l.at DESC, l.id DESC LIMIT ?", (*children, limit))
        return [LogEntry(from_db(r["at"]), r["event"], r["person"], r["child"]) for r in rows]

    # -- writing -----------------------------------------------------------------------------

    async def _log(self, tx: Tx, student_ids, event: str, person: str, actor: int | None) -> None:
        stamp = to_db(self.clock.now())
        await tx.executemany(
            "INSERT INTO trust_log (student_id, event, person, actor_tg, at)"
            " VALUES (?, ?, ?, ?, ?)", [(sid, event, person, actor, stamp) for sid in student_ids])

    def invitee_phone(self, raw: str) -> InviteePhone:
        """The invitee's number as kept during the conversation: hashed, and masked for
        display. PhoneInvalid if it is not a Russian mobile number."""
        normalized = normalize_phone(raw)
        if normalized is None:
            raise PhoneInvalid()
        return InviteePhone(self.hasher.phone(normalized),
                            f"{normalized[:2]} ··· ···-··-{normalized[-2:]}")

    async def invite(self, viewer: Viewer, child_ids: list[int], phone: str | InviteePhone,
                     surname: str, scopes: set[Scope]) -> tuple[Invitation, str, int | None]:
        """Returns the invitation, its deep-link token (shown once) and the invitee's account
        if they already use the bot with that verified number (the invitation is pushed)."""
        children = [AccessService.require_guardian(viewer, cid) for cid in child_ids]
        if not children or not scopes:
            raise AccessDenied()
        if isinstance(phone, str):
            phone = self.invitee_phone(phone)
        surname = " ".join(surname.split())
        if not surname or len(surname) > 100 or not _NAME.match(surname):
            raise NameInvalid()
        phone_hash = phone.hash
        now = self.clock.now()
        token = secrets.token_urlsafe(12)
        async with self.db.transaction() as tx:
            for child in sorted(children, key=lambda c: c.id):  # at most MAX_TRUSTED, at once too
                await tx.lock("trusts", child.id)
            own = await tx.scalar("SELECT phone_hash FROM accounts WHERE telegram_id = ?",
                                  (viewer.telegram_id,))
            if own == phone_hash:
                raise SelfInvitation()
            await tx.execute(
                "UPDATE invitations SET status = 'replaced', decided_at = ?"
                " WHERE phone_hash = ? AND inviter_tg = ? AND status = 'pending'",
                (to_db(now), phone_hash, viewer.telegram_id))
            for child in children:
                used = await tx.scalar("SELECT COUNT(*) FROM trusts WHERE student_id = ?",
                                       (child.id,))
                # The list of children is JSON: a LIKE narrows it down, Python decides.
                used += sum(child.id in json.loads(r[0]) for r in await tx.fetchall(
                    "SELECT students FROM invitations WHERE status = 'pending'"
                    " AND expires_at > ? AND students LIKE ?", (to_db(now), f"%{child.id}%")))
                if used >= MAX_TRUSTED:
                    raise TooManyTrusted(child=child.name.short, limit=MAX_TRUSTED)
            guardian_id = await tx.scalar(
                "SELECT l.guardian_id FROM account_links l JOIN guardianships g"
                " ON g.guardian_id = l.guardian_id WHERE l.telegram_id = ? AND g.student_id = ?",
                (viewer.telegram_id, children[0].id))
            invitation_id = await tx.insert(
                "INSERT INTO invitations (token_hash, inviter_tg, guardian_id, phone_hash,"
                " surname, students, scopes, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.hasher.code(token), viewer.telegram_id, guardian_id, phone_hash, surname,
                 json.dumps([c.id for c in children]), _scopes_text(scopes), to_db(now),
                 to_db(now + self.ttl)))
            await self._log(tx, [c.id for c in children], "invited", surname, viewer.telegram_id)
            invitation = await self._invitation(
                tx, await tx.fetchone("SELECT * FROM invitations WHERE id = ?", (invitation_id,)))
            invitee = await tx.scalar(
                "SELECT telegram_id FROM accounts WHERE phone_hash = ? AND telegram_id != ?"
                " AND unreachable_at IS NULL ORDER BY updated_at DESC LIMIT 1",
                (phone_hash, viewer.telegram_id))
            if invitee is not None:
                await enqueue(tx, invitee, "invitation", self._payload(invitation),
                              f"invitation:{invitation_id}:{invitee}", now)
        return invitation, token, invitee

    def _payload(self, inv: Invitation) -> InvitationPush:
        return invitation_push(inv, self.tz)

    async def _pending_row(self, tx: Tx, telegram_id: int, invitation_id: int):
        row = await tx.fetchone(
            "SELECT i.* FROM invitations i JOIN accounts a ON a.phone_hash = i.phone_hash"
            " WHERE i.id = ? AND a.telegram_id = ?", (invitation_id, telegram_id))
        if row is None or row["status"] != "pending" or from_db(row["expires_at"]) <= (
                self.clock.now()) or row["inviter_tg"] == telegram_id:
            raise InvitationInvalid(invitation_id=invitation_id)
        return row

    async def accept(self, telegram_id: int, invitation_id: int) -> Invitation:
        """Only the owner of the invited number (verified by Telegram) can accept."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            await tx.lock("invitation", invitation_id)  # accepted or declined, never both
            row = await self._pending_row(tx, telegram_id, invitation_id)
            granted = []
            for sid in json.loads(row["students"]):
                still = await tx.scalar(
                    "SELECT 1 FROM guardianships WHERE guardian_id = ? AND student_id = ?",
                    (row["guardian_id"], sid))
                if not still:
                    continue
                await tx.execute(
                    "INSERT INTO trusts (student_id, telegram_id, guardian_id, inviter_tg,"
                    " invitation_id, surname, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (student_id, telegram_id) DO UPDATE SET"
                    " scopes = excluded.scopes, guardian_id = excluded.guardian_id,"
                    " inviter_tg = excluded.inviter_tg, invitation_id = excluded.invitation_id",
                    (sid, telegram_id, row["guardian_id"], row["inviter_tg"], row["id"],
                     row["surname"], row["scopes"], to_db(now)))
                granted.append(sid)
            if not granted:
                raise InvitationInvalid(invitation_id=invitation_id)
            await tx.execute(
                "UPDATE invitations SET status = 'accepted', invitee_tg = ?, decided_at = ?"
                " WHERE id = ?", (telegram_id, to_db(now), row["id"]))
            await self._log(tx, granted, "accepted", row["surname"], telegram_id)
            await self.schedule.refresh(tx, [telegram_id], now)
            invitation = await self._invitation(tx, row)
            await enqueue(tx, row["inviter_tg"], "trust_news",
                          {**self._payload(invitation), "event": "accepted"},
                          f"invitation:{row['id']}:accepted", now)
        return invitation

    async def decline(self, telegram_id: int, invitation_id: int) -> Invitation:
        now = self.clock.now()
        async with self.db.transaction() as tx:
            await tx.lock("invitation", invitation_id)
            row = await self._pending_row(tx, telegram_id, invitation_id)
            await tx.execute(
                "UPDATE invitations SET status = 'declined', invitee_tg = ?, decided_at = ?"
                " WHERE id = ?", (telegram_id, to_db(now), row["id"]))
            await self._log(tx, json.loads(row["students"]), "declined", row["surname"],
                            telegram_id)
            invitation = await self._invitation(tx, row)
            await enqueue(tx, row["inviter_tg"], "trust_news",
                          {**self._payload(invitation), "event": "declined"},
                          f"invitation:{row['id']}:declined", now)
        return invitation

    async def expire(self) -> int:
        now = self.clock.now()
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT * FROM invitations WHERE status = 'pending' AND expires_at <= ?",
                (to_db(now),))
            for row in rows:
                cur = await tx.execute(
                    "UPDATE invitations SET status = 'expired', decided_at = ?"
                    " WHERE id = ? AND status = 'pending'", (to_db(now), row["id"]))
                if not cur.rowcount:
                    continue
                await self._log(tx, json.loads(row["students"]), "expired", row["surname"],
                                None)
                invitation = await self._invitation(tx, row)
                await enqueue(tx, row["inviter_tg"], "trust_news",
                              {**self._payload(invitation), "event": "expired"},
                              f"invitation:{row['id']}:expired", now)
        return len(rows)

    async def revoke(self, viewer: Viewer, trust_id: int) -> TrustedPerson:
        """A guardian of the child ends a trusted person's access at once."""
        async with self.db.transaction() as tx:
            person = await self._trust(tx, trust_id)
            if person is None:
                raise AccessDenied(trust=trust_id)
            AccessService.require_guardian(viewer, person.student_id)
            await self._end(tx, person, "revoked", viewer.telegram_id, notify=person.telegram_id)
        return person

    async def leave(self, viewer: Viewer, trust_id: int) -> TrustedPerson:
        """The trusted person gives the access up."""
        async with self.db.transaction() as tx:
            person = await self._trust(tx, trust_id)
            if person is None or person.telegram_id != viewer.telegram_id:
                raise AccessDenied(trust=trust_id)
            await self._end(tx, person, "left", viewer.telegram_id, notify=person.inviter_tg)
        return person

    async def _trust(self, tx: Tx, trust_id: int) -> TrustedPerson | None:
        r = await tx.fetchone(
            "SELECT t.*, s.first_name || ' ' || s.last_name AS child_name FROM trusts t"
            " JOIN students s ON s.id = t.student_id WHERE t.id = ?", (trust_id,))
        if r is None:
            return None
        return TrustedPerson(r["id"], r["student_id"], r["child_name"], r["telegram_id"],
                             r["surname"], parse_scopes(r["scopes"]), from_db(r["created_at"]),
                             r["inviter_tg"])

    async def _end(self, tx: Tx, person: TrustedPerson, event: str, actor: int | None,
                   notify: int | None) -> None:
        now = self.clock.now()
        await tx.execute("DELETE FROM trusts WHERE id = ?", (person.trust_id,))
        await self.schedule.refresh(tx, [person.telegram_id], now)
        await self._log(tx, [person.student_id], event, person.surname, actor)
        if notify is not None:
            await enqueue(tx, notify, "trust_news",
                          {"event": event, "surname": person.surname,
                           "children": [person.child_name]},
                          f"trust:{person.trust_id}:{event}:{to_db(now)}", now)


async def end_orphaned(tx: Tx, now: datetime) -> int:
    """After a roster change: trusts and pending invitations whose inviting guardian is no
    longer the child's guardian end, and the trusted person is told."""
    rows = await tx.fetchall(
        "SELECT t.id, t.student_id, t.telegram_id, t.surname,"
        " s.first_name || ' ' || s.last_name AS child_name FROM trusts t"
        " JOIN students s ON s.id = t.student_id WHERE NOT EXISTS (SELECT 1 FROM guardianships g"
        " WHERE g.guardian_id = t.guardian_id AND g.student_id = t.student_id)")
    stamp = to_db(now)
    for r in rows:
        await tx.execute("DELETE FROM trusts WHERE id = ?", (r["id"],))
        await tx.execute("INSERT INTO trust_log (student_id, event, person, at)"
                         " VALUES (?, 'ended', ?, ?)", (r["student_id"], r["surname"], stamp))
        await enqueue(tx, r["telegram_id"], "trust_news",
                      {"event": "ended", "surname": r["surname"], "children": [r["child_name"]]},
                      f"trust:{r['id']}:ended:{stamp}", now)
    # Pending invitations none of whose children the inviting guardian still has.
    pending = await tx.fetchall(
        "SELECT i.id, i.students, g.student_id FROM invitations i LEFT JOIN guardianships g"
        " ON g.guardian_id = i.guardian_id WHERE i.status = 'pending'")
    kept: dict[int, bool] = {}
    for r in pending:
        kept[r["id"]] = kept.get(r["id"], False) or r["student_id"] in json.loads(r["students"])
    await tx.executemany(
        "UPDATE invitations SET status = 'ended', decided_at = ? WHERE id = ?",
        [(stamp, invitation) for invitation, keep in kept.items() if not keep])
    return len(rows)
