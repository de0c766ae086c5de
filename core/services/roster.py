"""Applying a validated roster to the database: one transaction, people updated in place.

The roster is the full list for each school it names. A student keeps their row (and so their
history) across re-imports, matched by the school's ``student_id``; a guardian is matched by phone,
then SNILS, then e-mail. A guardianship missing from the new roster is deleted, so the guardian's
account loses that child at once; a student missing from it is deactivated, not deleted.

A phone number or e-mail can pass to another person (a recycled number, a typo fixed). So a match
counts only if it is still the same person: the same surname and first name (case, ``ё``/``е``
and spaces aside), or the same SNILS, which is a person's for life (a new surname after a
marriage). Otherwise the roster's person is a new guardian; the old one loses the identifier and
their account links at once, and each account that was linked is asked to link again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from core.clock import Clock, to_db
from core.identity import Hasher
from core.importers.roster import Ids, Roster, RosterGuardian
from core.services.outbox import enqueue
from core.services.trusted import end_orphaned
from core.storage.db import Database, Tx


@dataclass
class RosterSummary:
    students: int = 0
    guardians: int = 0
    classes: int = 0
    links: int = 0
    students_added: int = 0
    students_updated: int = 0
    students_moved: int = 0
    students_deactivated: int = 0
    guardians_added: int = 0
    guardians_updated: int = 0
    guardians_removed: int = 0
    links_added: int = 0
    links_removed: int = 0
    trusts_ended: int = 0
    guardians_replaced: int = 0  # an identifier now names another person: a new guardian
    replaced: list[list] = field(default_factory=list)  # [line, column] of each
    dry_run: bool = False


class _Rollback(Exception):
    pass


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold().replace("ё", "е")


def _same_person(old, new: RosterGuardian, snils_hash: str | None) -> bool:
    """Whether a stored guardian matched by an identifier is still the roster's person."""
    if snils_hash is not None and old["snils_hash"] == snils_hash:
        return True
    return (_name_key(old["last_name"]) == _name_key(new.last_name)
            and _name_key(old["first_name"]) == _name_key(new.first_name))


@dataclass(frozen=True)
class _Hashes:
    phone: str | None
    email: str | None
    snils: str | None


class RosterService:
    def __init__(self, db: Database, hasher: Hasher, clock: Clock) -> None:
        self.db = db
        self.hasher = hasher
        self.clock = clock

    def _hashes(self, ids: Ids) -> _Hashes:
        return _Hashes(
            self.hasher.phone(ids.phone) if ids.phone else None,
            self.hasher.email(ids.email) if ids.email else None,
            self.hasher.snils(ids.snils) if ids.snils else None,
        )

    async def apply(self, roster: Roster, source: str, dry_run: bool = False) -> RosterSummary:
        summary = RosterSummary(dry_run=dry_run)
        try:
            async with self.db.transaction() as tx:
                # A roster import moves, renames and deactivates students of every class, in
                # the file's order: it runs alone, never beside a journal import that has
                # locked some of those students (they take this lock shared), which would
                # deadlock the two.
                await tx.lock("journal-import")
                await self._apply(tx, roster, summary)
                await tx.execute(
                    "INSERT INTO imports (kind, source, finished_at, summary) VALUES (?, ?, ?, ?)",
                    ("roster", source, to_db(self.clock.now()), json.dumps(asdict(summary))),
                )
                if dry_run:
                    raise _Rollback
        except _Rollback:
            pass
        return summary

    async def _apply(self, tx: Tx, roster: Roster, summary: RosterSummary) -> None:
        now = to_db(self.clock.now())
        summary.students = len(roster.students)
        summary.guardians = len(roster.guardians)
        summary.links = len(roster.links)

        # Schools and classes.
        school_ids: dict[str, int] = {}
        class_ids: dict[tuple[str, str], int] = {}
        for st in roster.students:
            if st.school not in school_ids:
                await tx.execute(
                    "INSERT INTO schools (name) VALUES (?) ON CONFLICT DO NOTHING", (st.school,))
                school_ids[st.school] = await tx.scalar(
                    "SELECT id FROM schools WHERE name = ?", (st.school,)
                )
            key = (st.school, st.class_name)
            if key not in class_ids:
                await tx.execute(
                    "INSERT INTO classes (school_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (school_ids[st.school], st.class_name),
                )
                class_ids[key] = await tx.scalar(
                    "SELECT id FROM classes WHERE school_id = ? AND name = ?",
                    (school_ids[st.school], st.class_name),
                )
        summary.classes = len(class_ids)

        # Students, matched by the school's id.
        existing = {
            r["external_id"]: r
            for r in await tx.fetchall(
                "SELECT id, external_id, school_id, class_id, last_name, first_name, middle_name,"
                " phone_hash, email_hash, snils_hash, active FROM students"
            )
        }
        student_ids: dict[str, int] = {}
        inserts = []
        for st in roster.students:
            h = self._hashes(st.ids)
            school_id = school_ids[st.school]
            class_id = class_ids[(st.school, st.class_name)]
            values = (school_id, class_id, st.last_name, st.first_name, st.middle_name,
                      h.phone, h.email, h.snils)
            old = existing.get(st.student_id)
            if old is None:
                inserts.append((st.student_id, *values, now, now))
                continue
            student_ids[st.student_id] = old["id"]
            before = (old["school_id"], old["class_id"], old["last_name"], old["first_name"],
                      old["middle_name"], old["phone_hash"], old["email_hash"], old["snils_hash"])
            if before != values or not old["active"]:
                if old["class_id"] != class_id:
                    summary.students_moved += 1
                else:
                    summary.students_updated += 1
                await tx.execute(
                    "UPDATE students SET school_id = ?, class_id = ?, last_name = ?,"
                    " first_name = ?, middle_name = ?, phone_hash = ?, email_hash = ?,"
                    " snils_hash = ?, active = 1, updated_at = ? WHERE id = ?",
                    (*values, now, old["id"]),
                )
        if inserts:
            await tx.executemany(
                "INSERT INTO students (external_id, school_id, class_id, last_name, first_name,"
                " middle_name, phone_hash, email_hash, snils_hash, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
            summary.students_added = len(inserts)
            fresh = {row[0] for row in inserts}
            for r in await tx.fetchall("SELECT id, external_id FROM students"):
                if r["external_id"] in fresh:
                    student_ids[r["external_id"]] = r["id"]

        # Students of these schools that the roster no longer lists.
        listed = set(student_ids.values())
        gone = [
            r["id"]
            for r in existing.values()
            if r["active"] and r["school_id"] in school_ids.values() and r["id"] not in listed
        ]
        for sid in gone:
            await tx.execute(
                "UPDATE students SET active = 0, updated_at = ? WHERE id = ?", (now, sid)
            )
        summary.students_deactivated = len(gone)

        # Guardians, matched by phone, then SNILS, then e-mail.
        rows = await tx.fetchall(
            "SELECT id, last_name, first_name, middle_name, phone_hash, email_hash, snils_hash"
            " FROM guardians"
        )
        by_kind: dict[str, dict[str, int]] = {"phone": {}, "snils": {}, "email": {}}
        current = {r["id"]: r for r in rows}
        for r in rows:
            for kind in by_kind:
                if r[f"{kind}_hash"]:
                    by_kind[kind].setdefault(r[f"{kind}_hash"], r["id"])
        claimed: set[int] = set()
        guardian_ids: dict[int, int] = {}
        # Guardians whose identifier the roster now gives to another person: id -> (line, kind,
        # hash) of each such identifier.
        displaced: dict[int, list[tuple[int, str, str]]] = {}
        for g in roster.guardians:
            h = self._hashes(g.ids)
            match = None
            for kind in ("phone", "snils", "email"):
                value = getattr(h, kind)
                gid = by_kind[kind].get(value) if value else None
                if gid is None or gid in claimed:
                    continue
                if _same_person(current[gid], g, h.snils):
                    match = gid
                    break
                displaced.setdefault(gid, []).append((g.line, kind, value))
            person = (g.last_name, g.first_name, g.middle_name, h.phone, h.email, h.snils)
            if match is None:
                gid = await tx.insert(
                    "INSERT INTO guardians (last_name, first_name, middle_name, phone_hash,"
                    " email_hash, snils_hash, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (*person, now, now),
                )
                summary.guardians_added += 1
            else:
                gid = match
                old = current[gid]
                stored = (old["last_name"], old["first_name"], old["middle_name"],
                          old["phone_hash"], old["email_hash"], old["snils_hash"])
                if stored != person:
                    await tx.execute(
                        "UPDATE guardians SET last_name = ?, first_name = ?, middle_name = ?,"
                        " phone_hash = ?, email_hash = ?, snils_hash = ?, updated_at = ?"
                        " WHERE id = ?",
                        (*person, now, gid),
                    )
                    summary.guardians_updated += 1
            claimed.add(gid)
            guardian_ids[g.key] = gid
        await self._replace(tx, {gid: taken for gid, taken in displaced.items()
                                 if gid not in claimed}, summary)

        # Guardianships: exactly the roster's pairs for the schools it covers.
        wanted = {
            (guardian_ids[link.guardian_key], student_ids[link.student_id]): link.relation
            for link in roster.links
        }
        have = {
            (r["guardian_id"], r["student_id"]): r["relation"]
            for r in await tx.fetchall(
                "SELECT gs.guardian_id, gs.student_id, gs.relation FROM guardianships gs"
                " JOIN students s ON s.id = gs.student_id"
                f" WHERE s.school_id IN ({','.join('?' * len(school_ids))})",
                list(school_ids.values()),
            )
        }
        removed = [pair for pair in have if pair not in wanted]
        await tx.executemany(
            "DELETE FROM guardianships WHERE guardian_id = ? AND student_id = ?", removed
        )
        summary.links_removed = len(removed)
        added = [(g, s, rel) for (g, s), rel in wanted.items() if (g, s) not in have]
        await tx.executemany(
            "INSERT INTO guardianships (guardian_id, student_id, relation) VALUES (?, ?, ?)", added
        )
        summary.links_added = len(added)
        await tx.executemany(
            "UPDATE guardianships SET relation = ? WHERE guardian_id = ? AND student_id = ?",
            [(rel, g, s) for (g, s), rel in wanted.items() if have.get((g, s), rel) != rel],
        )

        # Trusts granted by a guardian no longer the child's end, and the trusted person is told
        # (before the guardian's row goes, which would take the trusts with it unannounced).
        summary.trusts_ended = await end_orphaned(tx, self.clock.now())
        # A guardian left with no child is removed, with their account links and codes.
        cur = await tx.execute(
            "DELETE FROM guardians WHERE id NOT IN (SELECT guardian_id FROM guardianships)"
        )
        summary.guardians_removed = cur.rowcount

    async def _replace(self, tx: Tx, displaced: dict[int, list[tuple[int, str, str]]],
                       summary: RosterSummary) -> None:
        """Stored guardians whose phone, e-mail or SNILS the roster gives to another person:
        the identifier leaves them, their account links end now, the accounts are told."""
        now = self.clock.now()
        for gid, taken in displaced.items():
            for line, kind, value in taken:
                await tx.execute(
                    f"UPDATE guardians SET {kind}_hash = NULL, updated_at = ?"
                    f" WHERE id = ? AND {kind}_hash = ?", (to_db(now), gid, value))
                summary.replaced.append([line, f"guardian_{kind}"])
            summary.guardians_replaced += 1
            accounts = [r[0] for r in await tx.fetchall(
                "DELETE FROM account_links WHERE guardian_id = ? RETURNING telegram_id", (gid,))]
            for telegram_id in sorted(set(accounts)):
                await enqueue(tx, telegram_id, "relink", {},
                              f"relink:{gid}:{telegram_id}:{to_db(now)}", now)
        summary.replaced.sort()
