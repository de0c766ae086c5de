"""The school's announcements as a viewer reads them (/news, the digest).

An announcement is for its school, or for some of its classes, and for parents (guardians, and
trusted persons given ``ANNOUNCEMENT_SCOPE``), students or both. A viewer reads those meant for
one of their children's class or school in one of the viewer's roles for that child. The journal
service stores them and pushes them (``core.services.journal``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from core.clock import from_db
from core.models import Child, Role, Scope
from core.pushes import SCOPES
from core.storage.db import Database, Tx

# What a trusted person must have been given to read announcements: the scope of their pushes.
ANNOUNCEMENT_SCOPE: Scope = SCOPES["announcement"]
# Who reads an announcement of each audience.
ANNOUNCEMENT_ROLES = {
    "parents": frozenset({Role.GUARDIAN, Role.TRUSTED}),
    "students": frozenset({Role.STUDENT}),
    "all": frozenset(Role),
}


@dataclass(frozen=True)
class Announcement:
    id: int
    text: str
    audience: str
    classes: tuple[str, ...]  # (): the whole school
    school: str
    links: tuple[tuple[str, str | None], ...]  # (url, title)
    pinned_until: date | None
    created_at: date  # the day it was first published, school time
    updated: bool  # its text was changed since

    def pinned(self, today: date) -> bool:
        return self.pinned_until is not None and self.pinned_until >= today


def reads(child: Child, audience: str) -> bool:
    """Whether a viewer in their role for ``child`` is of the audience."""
    if child.role is Role.TRUSTED and ANNOUNCEMENT_SCOPE not in child.scopes:
        return False
    return child.role in ANNOUNCEMENT_ROLES[audience]


def visible(children: Iterable[Child], item: Announcement) -> bool:
    return any(c.school == item.school and (not item.classes or c.class_name in item.classes)
               and reads(c, item.audience) for c in children)


async def school_announcements(tx: Tx | Database, schools: Iterable[str], tz, since: str = ""
                               ) -> list[Announcement]:
    """The announcements of these schools (first published at ``since`` or later, a stored
    moment), newest first."""
    names = sorted(set(schools))
    if not names:
        return []
    marks = ", ".join("?" * len(names))
    rows = await tx.fetchall(
        "SELECT a.id, a.text, a.audience, a.links, a.pinned_until, a.created_at, a.revision,"
        f" s.name FROM announcements a JOIN schools s ON s.id = a.school_id"
        f" WHERE s.name IN ({marks}) AND a.created_at >= ?"
        " ORDER BY a.created_at DESC, a.id DESC", (*names, since))
    if not rows:
        return []
    classes: dict[int, list[str]] = {}
    ids = [r["id"] for r in rows]
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        for r in await tx.fetchall(
                "SELECT ac.announcement_id, c.name FROM announcement_classes ac"
                " JOIN classes c ON c.id = ac.class_id"
                f" WHERE ac.announcement_id IN ({', '.join('?' * len(part))})"
                " ORDER BY c.name", part):
            classes.setdefault(r[0], []).append(r[1])
    return [Announcement(
        id=r["id"], text=r["text"], audience=r["audience"],
        classes=tuple(classes.get(r["id"], ())), school=r["name"],
        links=tuple((x["url"], x.get("title")) for x in json.loads(r["links"] or "[]")),
        pinned_until=date.fromisoformat(r["pinned_until"]) if r["pinned_until"] else None,
        created_at=from_db(r["created_at"]).astimezone(tz).date(),
        updated=bool(r["revision"])) for r in rows]


class NewsService:
    """/news: what a viewer may read, pinned ones first, then the newest."""

    def __init__(self, db: Database, tz) -> None:
        self.db = db
        self.tz = tz

    async def for_children(self, children: tuple[Child, ...], today: date
                           ) -> list[Announcement]:
        found = await school_announcements(self.db, (c.school for c in children), self.tz)
        mine = [a for a in found if visible(children, a)]
        return [a for a in mine if a.pinned(today)] + [a for a in mine if not a.pinned(today)]
