"""Who may see which child. Every view and every push asks here; nothing else decides access.

Access is computed from the roster on every call, never cached in an account: when the roster drops
a guardian from a child, the guardian's account loses that child on its very next update.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from core.errors import AccessDenied
from core.models import (
    ALL_SCOPES,
    Account,
    Child,
    PersonName,
    Role,
    Scope,
    StudentId,
    TelegramId,
    Viewer,
)
from core.storage.db import Database, Tx, in_list


def _access_sql(condition: str, reachable: bool = False, names: bool = True) -> str:
    """The access rules, once: one row per (account, child, role, scopes). Guardians see their
    children through the roster's guardianships, students see themselves, trusted persons what a
    guardian who still is one gave them. ``condition`` filters each branch; ``{account}`` in it
    stands for the account id and ``s`` for the student. ``reachable``: only accounts Telegram
    still delivers to. ``names``: the child's names, class and school too (else its id only)."""
    if names:
        columns = ("s.id, s.last_name, s.first_name, s.middle_name,"
                   " COALESCE(c.name, '') AS class_name, sc.name AS school")
        joins = "JOIN schools sc ON sc.id = s.school_id LEFT JOIN classes c ON c.id = s.class_id"
    else:
        columns, joins = "s.id", ""

    def branch(account: str) -> str:
        where = condition.format(account=account)
        if reachable:
            joins_ = (f"{joins} JOIN accounts a ON a.telegram_id = {account}"
                      f" AND a.unreachable_at IS NULL")
        else:
            joins_ = joins
        return f"{joins_} WHERE {where}"

    return f"""
SELECT l.telegram_id AS account, {columns}, 'guardian' AS role, NULL AS scopes
FROM account_links l
JOIN guardianships g ON g.guardian_id = l.guardian_id
JOIN students s ON s.id = g.student_id AND s.active = 1 {branch("l.telegram_id")}
UNION
SELECT l.telegram_id AS account, {columns}, 'student' AS role, NULL AS scopes
FROM account_links l
JOIN students s ON s.id = l.student_id AND s.active = 1 {branch("l.telegram_id")}
UNION
SELECT t.telegram_id AS account, {columns}, 'trusted' AS role, t.scopes AS scopes
FROM trusts t
JOIN guardianships g ON g.guardian_id = t.guardian_id AND g.student_id = t.student_id
JOIN students s ON s.id = t.student_id AND s.active = 1 {branch("t.telegram_id")}
"""


_CHILDREN_SQL = _access_sql("{account} = :tg")
_AUDIENCE_SQL = _access_sql("s.id = :s", reachable=True, names=False)
_CLASS_AUDIENCE_SQL = _access_sql("s.class_id = :c", reachable=True)
_MANY = 500  # children asked for in one query


@functools.lru_cache(maxsize=8)
def _audiences_sql(size: int) -> str:
    return _access_sql(f"s.id IN ({', '.join(f':s{n}' for n in range(size))})",
                       reachable=True, names=False)


def parse_scopes(text: str | None) -> frozenset[Scope]:
    if text is None:
        return ALL_SCOPES
    return frozenset(Scope(s) for s in text.split(",") if s in Scope._value2member_map_)

# Role precedence when one account sees a child in two ways (a guardian who is also the student's
# own account is unusual, but a guardian always wins over a trusted person).
_RANK = {Role.GUARDIAN: 0, Role.STUDENT: 1, Role.TRUSTED: 2}


def _audience(rows, scope: Scope) -> list[tuple[int, Role]]:
    """(account, role) of the rows that may see ``scope``, each account once, by its best
    role; sorted by account."""
    seen: dict[int, Role] = {}
    for row in rows:
        role = Role(row["role"])
        if scope not in parse_scopes(row["scopes"]):
            continue
        if row["account"] not in seen or _RANK[role] < _RANK[seen[row["account"]]]:
            seen[row["account"]] = role
    return sorted(seen.items())


def _account(row) -> Account:
    return Account(
        telegram_id=TelegramId(row["telegram_id"]),
        chat_id=row["chat_id"],
        locale=row["locale"],
        language_code=row["language_code"],
        unreachable=row["unreachable_at"] is not None,
    )


async def load_children(tx: Tx | Database, telegram_id: int) -> tuple[Child, ...]:
    return _children(await tx.fetchall(_CHILDREN_SQL, {"tg": telegram_id}))


async def load_children_many(
    tx: Tx | Database, telegram_ids: list[int]
) -> dict[int, tuple[Child, ...]]:
    """``load_children`` for many accounts in one query."""
    accounts = [tg for tg in telegram_ids if tg is not None]
    if not accounts:
        return {}
    _marks, padded = in_list(accounts)  # a few statement texts for any number of accounts
    names = {f"a{n}": tg for n, tg in enumerate(padded)}
    sql = _access_sql(f"{{account}} IN ({', '.join(':' + name for name in names)})")
    grouped: dict[int, list] = {}
    for row in await tx.fetchall(sql, names):
        grouped.setdefault(row["account"], []).append(row)
    return {tg: _children(items) for tg, items in grouped.items()}


def _children(rows) -> tuple[Child, ...]:
    best: dict[int, Child] = {}
    for row in rows:
        child = Child(
            id=StudentId(row["id"]),
            name=PersonName(row["last_name"], row["first_name"], row["middle_name"]),
            class_name=row["class_name"],
            school=row["school"],
            role=Role(row["role"]),
            scopes=parse_scopes(row["scopes"]),
        )
        current = best.get(child.id)
        if current is None or _RANK[child.role] < _RANK[current.role]:
            best[child.id] = child
    return tuple(sorted(best.values(), key=lambda c: (c.name.first, c.name.last, c.id)))


class AccessService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def viewer(self, telegram_id: int) -> Viewer:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM accounts WHERE telegram_id = ?", (telegram_id,))
            account = _account(row) if row else None
            children = await load_children(tx, telegram_id) if account else ()
        return Viewer(TelegramId(telegram_id), account, children)

    @staticmethod
    def require(viewer: Viewer, student_id: int, scope: Scope | None = None) -> Child:
        """The child if the viewer may see it (in that scope); AccessDenied otherwise.

        A child id arriving in a callback is data from the network: callers pass it here on every
        use. The error does not say whether the child exists.
        """
        child = viewer.child(student_id)
        if child is None or (scope is not None and scope not in child.scopes):
            raise AccessDenied(student_id=student_id)
        return child

    @staticmethod
    def require_guardian(viewer: Viewer, student_id: int) -> Child:
        child = AccessService.require(viewer, student_id)
        if child.role is not Role.GUARDIAN:
            raise AccessDenied(student_id=student_id)
        return child

    async def audience(self, tx: Tx, student_id: int, scope: Scope) -> list[tuple[int, Role]]:
        """Reachable accounts to notify about a child in a scope: (telegram_id, role).

        Guardians and the student see every scope; trusted persons only what they were given.
        """
        return _audience(await tx.fetchall(_AUDIENCE_SQL, {"s": student_id}), scope)

    async def audiences(self, tx: Tx, student_ids: Iterable[int], scope: Scope
                        ) -> dict[int, list[tuple[int, Role]]]:
        """``audience`` of many children, asked in a few queries: student id -> accounts
        (every child asked for is in the answer, an empty list if nobody is to be told)."""
        wanted = sorted(set(student_ids))
        rows: dict[int, list] = {sid: [] for sid in wanted}
        for i in range(0, len(wanted), _MANY):
            part = wanted[i : i + _MANY]
            # Padded (the last id again) to one of a few lengths: each new text is compiled.
            size = next(n for n in (1, 8, 64, _MANY) if n >= len(part))
            names = {f"s{n}": sid for n, sid in enumerate(part + part[-1:] * (size - len(part)))}
            for row in await tx.fetchall(_audiences_sql(size), names):
                rows[row["id"]].append(row)
        return {sid: _audience(found, scope) for sid, found in rows.items()}

    async def class_audience(
        self, tx: Tx, class_id: int, scope: Scope, setting: str, default: bool
    ) -> list[tuple[int, int, str]]:
        """Reachable accounts following active students of a class, for a class-wide push that
        the account has not switched off: (telegram_id, student_id, student's first name)."""
        assert setting in ("push_homework", "push_timetable", "push_replacements")
        rows = [r for r in await tx.fetchall(_CLASS_AUDIENCE_SQL, {"c": class_id})
                if scope in parse_scopes(r["scopes"])]
        accounts = sorted({r["account"] for r in rows})
        chosen: dict[int, bool] = {}
        for i in range(0, len(accounts), 500):
            part = accounts[i : i + 500]
            for r in await tx.fetchall(
                    f"SELECT telegram_id, {setting} FROM account_settings"
                    f" WHERE telegram_id IN ({','.join('?' * len(part))})", part):
                if r[1] is not None:
                    chosen[r[0]] = bool(r[1])
        return sorted({(r["account"], r["id"], r["first_name"]) for r in rows
                       if chosen.get(r["account"], default)})


# Who follows the active students of a school (``:sc``), or of some of its classes.
_SCHOOL_AUDIENCE_SQL = _access_sql("s.school_id = :sc", reachable=True, names=False)


@functools.lru_cache(maxsize=8)
def _classes_audience_sql(size: int) -> str:
    return _access_sql(f"s.class_id IN ({', '.join(f':c{n}' for n in range(size))})",
                       reachable=True, names=False)


async def school_audience(tx: Tx, school_id: int, class_ids: Iterable[int], scope: Scope
                          ) -> list[tuple[int, int, Role]]:
    """Reachable accounts following active students of the school (of ``class_ids`` where some
    are given): (telegram_id, student_id, role), each a way the account sees a child; a trusted
    person only if given ``scope`` for that child."""
    wanted = sorted(set(class_ids))
    if not wanted:
        rows = await tx.fetchall(_SCHOOL_AUDIENCE_SQL, {"sc": school_id})
    else:
        rows = []
        for i in range(0, len(wanted), _MANY):
            part = wanted[i : i + _MANY]
            size = next(n for n in (1, 8, 64, _MANY) if n >= len(part))
            names = {f"c{n}": cid for n, cid in enumerate(part + part[-1:] * (size - len(part)))}
            rows += await tx.fetchall(_classes_audience_sql(size), names)
    return sorted({(r["account"], r["id"], Role(r["role"])) for r in rows
                   if scope in parse_scopes(r["scopes"])})
