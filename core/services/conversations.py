"""Parents and class teachers write to each other through the bot.

A thread is one child, the child's class teacher and one parent's account. Every message is
stored with its push in one transaction; the push goes through the outbox (``teacher_message``
to the teacher, ``teacher_answer`` to the parent), never straight to Telegram. Each message keeps
its Telegram message id on both sides: the author's own, and the delivered copy's (written by
the sender once Telegram accepted it), so that an answer arrives as a reply to the message it
answers, in either chat.

A parent's message written outside the teachers' working hours waits in the outbox
(``not_before``) until they open. A teacher may mute a thread: its new messages are stored and
shown in the history, but not pushed (the parent is not told). Neither side ever sees the
other's phone number or Telegram username: the bot carries everything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from core.clock import Clock, from_db, to_db
from core.errors import AccessDenied, MessageTooLong, NoClassTeacher, TeacherNotConnected
from core.models import PersonName, Role, Viewer, class_key
from core.services.access import AccessService, load_children
from core.services.outbox import enqueue
from core.storage.db import Database, Tx
from core.worktime import WorkingHours

TEXT_LIMIT = 3500  # a message's text: with the heading it stays within Telegram's 4,096
CAPTION_LIMIT = 800  # a photo's caption: with the heading within Telegram's 1,024
HISTORY = 10  # messages shown in a thread's history


@dataclass(frozen=True)
class Posted:
    message_id: int
    thread_id: int
    deliver_at: datetime | None  # None: at once; else when working hours open


@dataclass(frozen=True)
class Thread:
    id: int
    student_id: int
    child: PersonName
    class_name: str
    teacher: PersonName
    parent: PersonName | None
    relation: str
    muted: bool
    side: str  # the viewer's: "parent" or "teacher"


@dataclass(frozen=True)
class Entry:
    id: int
    author: str  # "parent" or "teacher"
    text: str
    photo: bool
    at: datetime
    muted: bool


def _name(row, prefix: str) -> PersonName:
    return PersonName(row[f"{prefix}_last"], row[f"{prefix}_first"], row[f"{prefix}_middle"])


_THREAD_SQL = """
SELECT th.id, th.student_id, th.teacher_id, th.parent_tg, th.muted,
       s.last_name AS child_last, s.first_name AS child_first, s.middle_name AS child_middle,
       s.class_id, s.active, COALESCE(c.name, '') AS class_name,
       t.last_name AS teacher_last, t.first_name AS teacher_first,
       t.middle_name AS teacher_middle,
       g.last_name AS parent_last, g.first_name AS parent_first, g.middle_name AS parent_middle,
       COALESCE(gs.relation, '') AS relation
FROM threads th
JOIN students s ON s.id = th.student_id
LEFT JOIN classes c ON c.id = s.class_id
JOIN teachers t ON t.id = th.teacher_id
LEFT JOIN guardians g ON g.id = th.guardian_id
LEFT JOIN guardianships gs ON gs.guardian_id = th.guardian_id AND gs.student_id = th.student_id
WHERE th.id = ?
"""


def _check_length(text: str, photo: str | None) -> None:
    limit = CAPTION_LIMIT if photo else TEXT_LIMIT
    if len(text) > limit:
        raise MessageTooLong(limit, len(text))


async def note_delivered(db: Database, message_id: int, telegram_message_id: int) -> None:
    """The sender delivered a copy of message ``message_id``: remember its id in the
    recipient's chat (the side that did not write it)."""
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE thread_messages SET"
            " teacher_message_id = CASE WHEN author = 'parent' THEN ? ELSE teacher_message_id END,"
            " parent_message_id = CASE WHEN author = 'teacher' THEN ? ELSE parent_message_id END"
            " WHERE id = ?", (telegram_message_id, telegram_message_id, message_id))


class ConversationService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo, hours: WorkingHours) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.hours = hours

    # -- who is whose teacher ---------------------------------------------------------------

    async def _class_teacher(self, tx: Tx, student_id: int):
        return await tx.fetchone(
            "SELECT t.id, t.last_name, t.first_name, t.middle_name FROM students s"
            " JOIN teacher_classes tc ON tc.class_id = s.class_id"
            " JOIN teachers t ON t.id = tc.teacher_id AND t.active = 1"
            " WHERE s.id = ? AND s.active = 1", (student_id,))

    async def _teacher_accounts(self, tx: Tx, teacher_id: int) -> list[int]:
        return [r[0] for r in await tx.fetchall(
            "SELECT tl.telegram_id FROM teacher_links tl JOIN accounts a"
            " ON a.telegram_id = tl.telegram_id AND a.unreachable_at IS NULL"
            " WHERE tl.teacher_id = ? ORDER BY tl.telegram_id", (teacher_id,))]

    async def class_teacher(self, viewer: Viewer, student_id: int) -> tuple[PersonName, int | None]:
        """The class teacher a parent would write to about this child, and the parent's thread
        with them (if any). NoClassTeacher / TeacherNotConnected when nobody can be written to."""
        AccessService.require_guardian(viewer, student_id)
        async with self.db.read() as tx:
            teacher = await self._class_teacher(tx, student_id)
            if teacher is None:
                raise NoClassTeacher()
            if not await self._teacher_accounts(tx, teacher["id"]):
                raise TeacherNotConnected()
            thread = await tx.scalar(
                "SELECT id FROM threads WHERE student_id = ? AND teacher_id = ? AND parent_tg = ?",
                (student_id, teacher["id"], viewer.telegram_id))
        return PersonName(teacher["last_name"], teacher["first_name"],
                          teacher["middle_name"]), thread

    async def _leads(self, tx: Tx, telegram_id: int, thread) -> bool:
        """Whether the account is the thread's teacher and leads the child's class now."""
        return bool(await tx.scalar(
            "SELECT 1 FROM teacher_links tl JOIN teachers t ON t.id = tl.teacher_id"
            " AND t.active = 1 JOIN teacher_classes tc ON tc.teacher_id = t.id"
            " WHERE tl.telegram_id = ? AND t.id = ? AND tc.class_id = ?",
            (telegram_id, thread["teacher_id"], thread["class_id"])))

    async def _thread(self, tx: Tx, viewer: Viewer, thread_id: int) -> Thread:
        """The thread as this viewer may see it; AccessDenied when it is not theirs."""
        row = await tx.fetchone(_THREAD_SQL, (thread_id,))
        if row is None or not row["active"]:
            raise AccessDenied()
        if row["parent_tg"] == viewer.telegram_id and (
                (child := viewer.child(row["student_id"])) is not None
                and child.role is Role.GUARDIAN):
            side = "parent"
        elif row["class_id"] is not None and await self._leads(tx, viewer.telegram_id, row):
            side = "teacher"
        else:
            raise AccessDenied()
        parent = _name(row, "parent") if row["parent_last"] is not None else None
        return Thread(row["id"], row["student_id"], _name(row, "child"), row["class_name"],
                      _name(row, "teacher"), parent, row["relation"], bool(row["muted"]), side)

    # -- writing ----------------------------------------------------------------------------

    async def write_to_teacher(self, viewer: Viewer, student_id: int, text: str,
                               photo: str | None, own_message_id: int,
                               reply_to: int | None = None) -> Posted:
        """A parent's message about their child to the child's class teacher."""
        AccessService.require_guardian(viewer, student_id)
        _check_length(text, photo)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            teacher = await self._class_teacher(tx, student_id)
            if teacher is None:
                raise NoClassTeacher()
            accounts = await self._teacher_accounts(tx, teacher["id"])
            if not accounts:
                raise TeacherNotConnected()
            guardian = await tx.fetchone(
                "SELECT g.id, g.last_name, g.first_name, g.middle_name, gs.relation"
                " FROM account_links l JOIN guardianships gs ON gs.guardian_id = l.guardian_id"
                " AND gs.student_id = ? JOIN guardians g ON g.id = l.guardian_id"
                " WHERE l.telegram_id = ? ORDER BY g.id LIMIT 1",
                (student_id, viewer.telegram_id))
            thread = await tx.fetchone(
                "INSERT INTO threads (student_id, teacher_id, parent_tg, guardian_id,"
                " created_at, last_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (student_id, teacher_id, parent_tg) DO UPDATE SET"
                " last_at = excluded.last_at,"
                " guardian_id = COALESCE(excluded.guardian_id, threads.guardian_id)"
                " RETURNING id, muted",
                (student_id, teacher["id"], viewer.telegram_id,
                 guardian["id"] if guardian else None, to_db(now), to_db(now)))
            assert thread is not None
            opens = self.hours.next_open(now, self.tz)
            deliver = opens or now
            answered = None
            if reply_to is not None:
                answered = await tx.fetchone(
                    "SELECT teacher_message_id FROM thread_messages WHERE id = ? AND thread_id = ?",
                    (reply_to, thread["id"]))
            message_id = await tx.insert(
                "INSERT INTO thread_messages (thread_id, author, author_tg, text, photo,"
                " parent_message_id, reply_to, muted, created_at, deliver_at)"
                " VALUES (?, 'parent', ?, ?, ?, ?, ?, ?, ?, ?)",
                (thread["id"], viewer.telegram_id, text, photo, own_message_id,
                 reply_to if answered is not None else None, thread["muted"], to_db(now),
                 to_db(deliver)))
            if not thread["muted"]:
                child = viewer.child(student_id)
                assert child is not None
                payload = {
                    "message": message_id, "thread": thread["id"], "child": child.name.short,
                    "class": child.class_name,
                    "from": PersonName(guardian["last_name"], guardian["first_name"],
                                       guardian["middle_name"]).full if guardian else "",
                    "relation": guardian["relation"] if guardian else "",
                    "text": text, "photo": photo,
                    "reply_to": answered["teacher_message_id"] if answered else None,
                }
                for account in accounts:
                    await enqueue(tx, account, "teacher_message", payload,
                                  f"thread_message:{message_id}:{account}", now,
                                  student_id=student_id, hold=deliver - now)
        return Posted(message_id, thread["id"], opens)

    async def reply_target(self, viewer: Viewer, message_id: int) -> Thread:
        """The thread of a message the viewer wants to answer (AccessDenied if not theirs)."""
        async with self.db.read() as tx:
            thread_id = await tx.scalar("SELECT thread_id FROM thread_messages WHERE id = ?",
                                        (message_id,))
            if thread_id is None:
                raise AccessDenied()
            return await self._thread(tx, viewer, thread_id)

    async def replied(self, telegram_id: int, telegram_message_id: int) -> int | None:
        """The conversation message that Telegram message (in this account's chat) carries, if
        any: a message answered with Telegram's own «Reply» continues its thread."""
        return await self.db.scalar(
            "SELECT m.id FROM thread_messages m JOIN threads th ON th.id = m.thread_id"
            " WHERE (m.parent_message_id = ? AND th.parent_tg = ?)"
            " OR (m.teacher_message_id = ? AND th.teacher_id IN"
            " (SELECT teacher_id FROM teacher_links WHERE telegram_id = ?))"
            " ORDER BY m.id DESC LIMIT 1",
            (telegram_message_id, telegram_id, telegram_message_id, telegram_id))

    async def answer(self, viewer: Viewer, message_id: int, text: str, photo: str | None,
                     own_message_id: int) -> Posted:
        """An answer to message ``message_id``: from the teacher to the parent, or from the
        parent to the teacher (then as a new message of the thread, in working hours)."""
        _check_length(text, photo)
        thread = await self.reply_target(viewer, message_id)
        if thread.side == "parent":
            return await self.write_to_teacher(viewer, thread.student_id, text, photo,
                                               own_message_id, reply_to=message_id)
        now = self.clock.now()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(_THREAD_SQL, (thread.id,))
            if row is None or not await self._leads(tx, viewer.telegram_id, row):
                raise AccessDenied()
            if not any(c.id == thread.student_id and c.role is Role.GUARDIAN
                       for c in await load_children(tx, row["parent_tg"])):
                raise AccessDenied()  # no longer the child's guardian: nothing goes to them
            answered = await tx.fetchone(
                "SELECT parent_message_id FROM thread_messages WHERE id = ?", (message_id,))
            new_id = await tx.insert(
                "INSERT INTO thread_messages (thread_id, author, author_tg, text, photo,"
                " teacher_message_id, reply_to, muted, created_at, deliver_at)"
                " VALUES (?, 'teacher', ?, ?, ?, ?, ?, 0, ?, ?)",
                (thread.id, viewer.telegram_id, text, photo, own_message_id, message_id,
                 to_db(now), to_db(now)))
            await tx.execute("UPDATE threads SET last_at = ? WHERE id = ?",
                             (to_db(now), thread.id))
            payload = {
                "message": new_id, "thread": thread.id, "child": thread.child.short,
                "class": thread.class_name, "teacher": thread.teacher.full, "text": text,
                "photo": photo,
                "reply_to": answered["parent_message_id"] if answered else None,
            }
            await enqueue(tx, row["parent_tg"], "teacher_answer", payload,
                          f"thread_message:{new_id}:{row['parent_tg']}", now,
                          student_id=thread.student_id)
        return Posted(new_id, thread.id, None)

    # -- reading ----------------------------------------------------------------------------

    async def history(self, viewer: Viewer, thread_id: int,
                      limit: int = HISTORY) -> tuple[Thread, list[Entry]]:
        """The thread's last ``limit`` messages, oldest first."""
        async with self.db.read() as tx:
            thread = await self._thread(tx, viewer, thread_id)
            rows = await tx.fetchall(
                "SELECT id, author, text, photo, created_at, muted FROM thread_messages"
                " WHERE thread_id = ? ORDER BY id DESC LIMIT ?", (thread_id, limit))
        entries = [Entry(r["id"], r["author"], r["text"], r["photo"] is not None,
                         from_db(r["created_at"]), bool(r["muted"])) for r in reversed(rows)]
        return thread, entries

    async def inbox(self, telegram_id: int, limit: int = HISTORY) -> list[tuple[int, str, str]]:
        """A teacher's latest threads in the classes they lead now: (thread id, child's name,
        class)."""
        rows = await self.db.fetchall(
            "SELECT th.id, s.first_name, s.last_name, c.name FROM threads th"
            " JOIN students s ON s.id = th.student_id AND s.active = 1"
            " JOIN classes c ON c.id = s.class_id"
            " JOIN teacher_classes tc ON tc.class_id = s.class_id AND tc.teacher_id = th.teacher_id"
            " JOIN teachers t ON t.id = th.teacher_id AND t.active = 1"
            " JOIN teacher_links tl ON tl.teacher_id = t.id AND tl.telegram_id = ?"
            " ORDER BY th.last_at DESC, th.id DESC LIMIT ?", (telegram_id, limit))
        return [(r[0], f"{r[1]} {r[2]}", r[3]) for r in rows]

    async def set_muted(self, viewer: Viewer, thread_id: int, muted: bool) -> Thread:
        """The teacher mutes (or unmutes) a thread; only the thread's teacher may."""
        async with self.db.transaction() as tx:
            thread = await self._thread(tx, viewer, thread_id)
            if thread.side != "teacher":
                raise AccessDenied()
            await tx.execute("UPDATE threads SET muted = ? WHERE id = ?", (int(muted), thread_id))
        return replace(thread, muted=muted)

    # -- for staff ----------------------------------------------------------------------------

    async def export(self, class_name: str | None = None,
                     student_external_id: str | None = None) -> list[dict]:
        where, params = [], []
        if class_name:
            where.append("c.name = ?")
            params.append(class_key(class_name))
        if student_external_id:
            where.append("s.external_id = ?")
            params.append(student_external_id)
        rows = await self.db.fetchall(
            "SELECT m.id, m.thread_id, m.author, m.text, m.photo, m.muted, m.created_at,"
            " m.deliver_at, m.reply_to, s.external_id, s.last_name, s.first_name,"
            " s.middle_name, COALESCE(c.name, '') AS class_name, t.external_id AS teacher_id,"
            " t.last_name AS t_last, t.first_name AS t_first, t.middle_name AS t_middle,"
            " g.last_name AS g_last, g.first_name AS g_first, g.middle_name AS g_middle"
            " FROM thread_messages m JOIN threads th ON th.id = m.thread_id"
            " JOIN students s ON s.id = th.student_id LEFT JOIN classes c ON c.id = s.class_id"
            " JOIN teachers t ON t.id = th.teacher_id"
            " LEFT JOIN guardians g ON g.id = th.guardian_id"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY class_name, s.last_name, s.first_name, m.thread_id, m.id", params)
        out = []
        for r in rows:
            parent = (PersonName(r["g_last"], r["g_first"], r["g_middle"]).full
                      if r["g_last"] is not None else "")
            out.append({
                "thread": r["thread_id"], "message": r["id"], "class": r["class_name"],
                "student_id": r["external_id"],
                "student": PersonName(r["last_name"], r["first_name"], r["middle_name"]).full,
                "teacher_id": r["teacher_id"],
                "teacher": PersonName(r["t_last"], r["t_first"], r["t_middle"]).full,
                "parent": parent, "author": r["author"], "text": r["text"],
                "photo": "yes" if r["photo"] else "", "muted": "yes" if r["muted"] else "",
                "reply_to": r["reply_to"] or "",
                "written_at": from_db(r["created_at"]).astimezone(self.tz).isoformat(
                    timespec="minutes"),
                "delivery_from": from_db(r["deliver_at"]).astimezone(self.tz).isoformat(
                    timespec="minutes"),
            })
        return out
