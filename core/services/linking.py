"""Linking a Telegram account to roster people: by a shared phone, a one-time code, or support.

The answers never reveal whether a child exists: an unknown phone and a phone of nobody linked
look the same, and every failed code is the same ``LinkCodeInvalid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import Clock, from_db, to_db
from core.errors import (
    CodeEntryLocked,
    ContactNotOwn,
    LinkCodeExpired,
    LinkCodeInvalid,
    PhoneInvalid,
    PhoneNotFound,
    UnknownStudent,
)
from core.identity import Hasher, new_link_code, normalize_code, normalize_phone
from core.models import IssuedCode, LinkResult, PersonName, Role, class_key
from core.services.access import load_children
from core.services.digest_due import DigestSchedule
from core.services.teachers import link_teachers, redeem_teacher_code, teachers_by_phone
from core.storage.db import Database, Tx

CODE_TTL = timedelta(days=14)
CODE_FAILURE_LIMIT = 5
CODE_FAILURE_WINDOW = timedelta(hours=1)
CODE_LOCK = timedelta(hours=1)


@dataclass(frozen=True)
class _Targets:
    guardian_ids: list[int]
    student_ids: list[int]


class LinkingService:
    def __init__(self, db: Database, hasher: Hasher, clock: Clock,
                 schedule: DigestSchedule) -> None:
        self.db = db
        self.hasher = hasher
        self.clock = clock
        self.schedule = schedule  # a new link may make the account's digest due

    # -- accounts -------------------------------------------------------------------------

    async def touch(self, telegram_id: int, chat_id: int, language_code: str | None) -> None:
        """Record that the user talks to the bot: creates the account, makes it reachable again."""
        async with self.db.transaction() as tx:
            await self._upsert_account(tx, telegram_id, chat_id, language_code)

    async def _upsert_account(
        self, tx: Tx, telegram_id: int, chat_id: int, language_code: str | None
    ) -> None:
        now = to_db(self.clock.now())
        await tx.execute(
            """
            INSERT INTO accounts (telegram_id, chat_id, language_code, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (telegram_id) DO UPDATE SET
                chat_id = excluded.chat_id,
                language_code = COALESCE(excluded.language_code, accounts.language_code),
                unreachable_at = NULL,
                updated_at = excluded.updated_at
            """,
            (telegram_id, chat_id, language_code, now, now),
        )

    async def set_locale(self, telegram_id: int, locale: str | None) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE accounts SET locale = ?, updated_at = ? WHERE telegram_id = ?",
                (locale, to_db(self.clock.now()), telegram_id),
            )

    async def unlink(self, telegram_id: int) -> bool:
        """Forget the account: its links, settings, conversation state and verified phone."""
        async with self.db.transaction() as tx:
            cur = await tx.execute("DELETE FROM accounts WHERE telegram_id = ?", (telegram_id,))
            await tx.execute("DELETE FROM code_failures WHERE telegram_id = ?", (telegram_id,))
            await tx.execute(
                "DELETE FROM fsm_state WHERE key LIKE ?", (f"%:{telegram_id}:{telegram_id}:%",)
            )
            return cur.rowcount > 0

    # -- by phone ---------------------------------------------------------------------------

    async def link_contact(
        self,
        telegram_id: int,
        chat_id: int,
        contact_user_id: int | None,
        phone: str,
        language_code: str | None = None,
    ) -> LinkResult:
        """Link by a contact shared with Telegram's button. Only the sender's own card counts."""
        if contact_user_id != telegram_id:
            raise ContactNotOwn()
        return await self._link_phone(telegram_id, chat_id, phone, "phone", language_code)

    async def support_link(self, telegram_id: int, phone: str) -> LinkResult:
        """The support desk links an account after checking the person by other means."""
        # In a private chat the chat id is the user id.
        return await self._link_phone(telegram_id, telegram_id, phone, "support", None)

    async def demo_link(self, telegram_id: int, chat_id: int, phone: str,
                        language_code: str | None) -> LinkResult:
        """Demo mode only: link a visitor to the demo family made for them."""
        return await self._link_phone(telegram_id, chat_id, phone, "demo", language_code)

    async def _link_phone(
        self, telegram_id: int, chat_id: int, phone: str, via: str, language_code: str | None
    ) -> LinkResult:
        normalized = normalize_phone(phone)
        if normalized is None:
            raise PhoneInvalid()
        phone_hash = self.hasher.phone(normalized)
        async with self.db.transaction() as tx:
            if via in ("phone", "demo"):
                # The user is talking to the bot: the account exists whatever the outcome.
                await self._upsert_account(tx, telegram_id, chat_id, language_code)
            if via == "phone":
                # Telegram vouched for this number: remember it (hashed) for invitations.
                await tx.execute(
                    "UPDATE accounts SET phone_hash = ? WHERE telegram_id = ?",
                    (phone_hash, telegram_id),
                )
            guardians = [
                r[0]
                for r in await tx.fetchall(
                    "SELECT id FROM guardians WHERE phone_hash = ?", (phone_hash,)
                )
            ]
            students = [
                r[0]
                for r in await tx.fetchall(
                    "SELECT id FROM students WHERE phone_hash = ? AND active = 1", (phone_hash,)
                )
            ]
            # Class teachers link by the same number (never in demo mode).
            teachers = await teachers_by_phone(tx, phone_hash) if via != "demo" else []
            if not guardians and not students and not teachers:
                result = None
            else:
                await self._upsert_account(tx, telegram_id, chat_id, language_code)
                result = await self._link(tx, telegram_id, _Targets(guardians, students), via)
                if teachers:
                    result = await link_teachers(tx, telegram_id, teachers, via,
                                                 self.clock.now(), result)
        if result is None:
            raise PhoneNotFound()
        return result

    async def _link(self, tx: Tx, telegram_id: int, targets: _Targets, via: str) -> LinkResult:
        now = to_db(self.clock.now())
        new = 0
        for column, ids in (("guardian_id", targets.guardian_ids),
                            ("student_id", targets.student_ids)):
            for person in ids:
                cur = await tx.execute(
                    f"INSERT INTO account_links (telegram_id, {column}, via, linked_at)"
                    f" VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (telegram_id, person, via, now),
                )
                new += cur.rowcount
        if new:
            await self.schedule.refresh(tx, [telegram_id], self.clock.now())
        children = await load_children(tx, telegram_id)
        return LinkResult(
            children=children,
            new_links=new,
            as_guardian=bool(targets.guardian_ids),
            as_student=bool(targets.student_ids),
        )

    # -- by code ----------------------------------------------------------------------------

    async def redeem_code(
        self, telegram_id: int, chat_id: int, raw: str, language_code: str | None = None
    ) -> LinkResult:
        now = self.clock.now()
        code = normalize_code(raw)
        failure: Exception | None = None
        result: LinkResult | None = None
        async with self.db.locked("code-entry", telegram_id) as tx:
            # The lock is read under the write lock, in the transaction that counts a failure:
            # a burst of attempts (or two processes) cannot all pass before a failure counts.
            locked_until = await self._locked_until(tx, telegram_id, now)
            if locked_until is None:
                failure, result = await self._redeem(tx, telegram_id, chat_id, code,
                                                     language_code, now)
                if failure is not None:
                    locked_until = await self._locked_until(tx, telegram_id, now)
        if locked_until is not None:
            raise CodeEntryLocked(until=locked_until)
        if failure is not None:
            raise failure
        assert result is not None
        return result

    async def _redeem(self, tx: Tx, telegram_id: int, chat_id: int, code: str | None,
                      language_code: str | None, now: datetime
                      ) -> tuple[Exception | None, LinkResult | None]:
        """Check ``code`` and link by it, or record the failure."""
        failure: Exception | None = None
        result: LinkResult | None = None
        await self._upsert_account(tx, telegram_id, chat_id, language_code)
        row = None
        if code is not None:
            row = await tx.fetchone(
                "SELECT * FROM link_codes WHERE code_hash = ?", (self.hasher.code(code),)
            )
        taught = (await redeem_teacher_code(tx, self.hasher.code(code), telegram_id, now)
                  if code is not None and row is None else None)
        if isinstance(taught, LinkResult):  # a class teacher's code
            result = taught
        elif taught == "expired":
            failure = LinkCodeExpired(expired_at=now)
        elif row is None or row["used_at"] is not None:
            failure = LinkCodeInvalid()
            await tx.execute(
                "INSERT INTO code_failures (telegram_id, at) VALUES (?, ?)",
                (telegram_id, to_db(now)),
            )
        elif from_db(row["expires_at"]) <= now:
            failure = LinkCodeExpired(expired_at=from_db(row["expires_at"]))
        elif (await tx.execute(
                # Conditional: of two accounts redeeming one code at once, one wins.
                "UPDATE link_codes SET used_at = ?, used_by = ? WHERE code_hash = ?"
                " AND used_at IS NULL", (to_db(now), telegram_id, row["code_hash"]),
        )).rowcount != 1:
            failure = LinkCodeInvalid()
        else:
            targets = _Targets(
                [row["guardian_id"]] if row["guardian_id"] else [],
                [row["student_id"]] if row["student_id"] else [],
            )
            result = await self._link(tx, telegram_id, targets, "code")
        return failure, result

    async def _locked_until(self, tx: Tx, telegram_id: int, now: datetime) -> datetime | None:
        """The end of the current lock, if five failures fell within one hour lately."""
        since = to_db(now - CODE_FAILURE_WINDOW - CODE_LOCK)
        rows = await tx.fetchall(
            "SELECT at FROM code_failures WHERE telegram_id = ? AND at > ? ORDER BY at",
            (telegram_id, since),
        )
        moments = [from_db(r[0]) for r in rows]
        until = None
        n = CODE_FAILURE_LIMIT
        for i in range(n - 1, len(moments)):
            if moments[i] - moments[i - n + 1] <= CODE_FAILURE_WINDOW:
                candidate = moments[i] + CODE_LOCK
                until = candidate if until is None or candidate > until else until
        return until if until is not None and until > now else None

    async def issue_codes(
        self,
        class_name: str | None = None,
        student_external_id: str | None = None,
        school: str | None = None,
        ttl: timedelta = CODE_TTL,
    ) -> list[IssuedCode]:
        """Fresh codes for the students picked and each of their guardians.

        A new code for a person revokes their earlier unused ones, so only the latest paper works.
        A guardian of several picked children gets one code (it links all of their children).
        """
        now = self.clock.now()
        expires = now + ttl
        where = ["s.active = 1"]
        params: list[object] = []
        if class_name:
            where.append("c.name = ?")
            params.append(class_key(class_name))
        if student_external_id:
            where.append("s.external_id = ?")
            params.append(student_external_id)
        if school is not None:
            where.append("sc.name = ?")
            params.append(school)
        issued: list[IssuedCode] = []
        async with self.db.transaction() as tx:
            students = await tx.fetchall(
                f"""
                SELECT s.id, s.external_id, s.last_name, s.first_name, s.middle_name,
                       COALESCE(c.name, '') AS class_name
                FROM students s JOIN schools sc ON sc.id = s.school_id
                LEFT JOIN classes c ON c.id = s.class_id
                WHERE {" AND ".join(where)}
                ORDER BY class_name, s.last_name, s.first_name, s.external_id
                """,
                params,
            )
            if not students and student_external_id:
                raise UnknownStudent(student_id=student_external_id)
            done_guardians: set[int] = set()
            for s in students:
                student_name = PersonName(s["last_name"], s["first_name"], s["middle_name"])
                code = await self._new_code(tx, None, s["id"], now, expires)
                issued.append(
                    IssuedCode(
                        code, Role.STUDENT, student_name, s["external_id"], student_name,
                        s["class_name"], "", expires,
                    )
                )
                guardians = await tx.fetchall(
                    "SELECT g.id, g.last_name, g.first_name, g.middle_name, gs.relation"
                    " FROM guardianships gs JOIN guardians g ON g.id = gs.guardian_id"
                    " WHERE gs.student_id = ? ORDER BY g.last_name, g.first_name, g.id",
                    (s["id"],),
                )
                for g in guardians:
                    if g["id"] in done_guardians:
                        continue
                    done_guardians.add(g["id"])
                    code = await self._new_code(tx, g["id"], None, now, expires)
                    issued.append(
                        IssuedCode(
                            code, Role.GUARDIAN,
                            PersonName(g["last_name"], g["first_name"], g["middle_name"]),
                            s["external_id"], student_name, s["class_name"], g["relation"],
                            expires,
                        )
                    )
        return issued

    async def _new_code(self, tx: Tx, guardian_id, student_id, now, expires) -> str:
        if guardian_id is not None:
            await tx.execute(
                "DELETE FROM link_codes WHERE guardian_id = ? AND used_at IS NULL", (guardian_id,)
            )
        else:
            await tx.execute(
                "DELETE FROM link_codes WHERE student_id = ? AND used_at IS NULL", (student_id,)
            )
        code = new_link_code()
        await tx.execute(
            "INSERT INTO link_codes (code_hash, guardian_id, student_id, issued_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (self.hasher.code(code), guardian_id, student_id, to_db(now), to_db(expires)),
        )
        return code
