"""Read-check-writes that one process's lock used to hide, with two connections at once (two
processes), on SQLite and on PostgreSQL: exactly one of two conflicting writes wins."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from bot.services import build_services
from core.errors import DomainError
from core.models import Scope
from core.services.absence import Reason
from core.storage.db import Database
from tests.support.school import ANNA_PHONE, SECRET, TZ

ANNA, GRANNY = 5001, 8001
GRANNY_PHONE = "+7 903 111-22-33"


@pytest.fixture
async def two(school, database_url, clock):
    """The school's services, and the same services on a second connection."""
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    other_db = await Database(database_url).connect()
    other = build_services(other_db, SECRET, TZ, clock)
    yield school, other
    await other_db.close()


async def outcomes(*calls) -> tuple[int, int]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, DomainError):
            raise r
    failed = sum(isinstance(r, DomainError) for r in results)
    return len(results) - failed, failed


async def ivan(services) -> int:
    return await services.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")


async def test_two_overlapping_notices_at_once_one_is_filed(two):
    a, b = two
    child = await ivan(a)
    viewer_a, viewer_b = await a.access.viewer(ANNA), await b.access.viewer(ANNA)
    day = date(2026, 11, 24)
    assert await outcomes(
        a.absence.file(viewer_a, child, day, day, (), Reason.ILLNESS, "a"),
        b.absence.file(viewer_b, child, day, date(2026, 11, 25), (), Reason.FAMILY, "b"),
    ) == (1, 1)
    assert await a.db.scalar("SELECT COUNT(*) FROM absence_notices") == 1


async def test_an_invitation_accepted_and_declined_at_once_is_one_of_them(two):
    a, b = two
    with pytest.raises(DomainError):  # not in the roster, but Telegram vouched for the number
        await a.linking.link_contact(GRANNY, GRANNY, GRANNY, GRANNY_PHONE)
    viewer = await a.access.viewer(ANNA)
    inv, _, _ = await a.trusted.invite(viewer, [await ivan(a)], GRANNY_PHONE, "Иванова",
                                       {Scope.GRADES})
    assert await outcomes(a.trusted.accept(GRANNY, inv.id),
                          b.trusted.decline(GRANNY, inv.id)) == (1, 1)
    status = await a.db.scalar("SELECT status FROM invitations WHERE id = ?", (inv.id,))
    trusts = await a.db.scalar("SELECT COUNT(*) FROM trusts")
    assert (status, trusts) in (("accepted", 1), ("declined", 0))


async def test_two_children_muted_at_once_are_both_muted(two):
    a, b = two
    viewer = await a.access.viewer(ANNA)
    first, second = sorted(c.id for c in viewer.children)[:2]
    await asyncio.gather(a.preferences.toggle_child(ANNA, first),
                         b.preferences.toggle_child(ANNA, second))
    assert (await a.preferences.get(ANNA)).muted_children == {first, second}


async def test_two_invitations_for_the_tenth_place_at_once_one_is_made(two):
    a, b = two
    child = await ivan(a)
    viewer_a, viewer_b = await a.access.viewer(ANNA), await b.access.viewer(ANNA)
    for n in range(9):
        await a.trusted.invite(viewer_a, [child], f"+7 903 000-00-{n:02d}", "Иванова",
                               {Scope.GRADES})
    assert await outcomes(
        a.trusted.invite(viewer_a, [child], "+7 903 000-00-50", "Петрова", {Scope.GRADES}),
        b.trusted.invite(viewer_b, [child], "+7 903 000-00-51", "Сидорова", {Scope.GRADES}),
    ) == (1, 1)
    assert await a.db.scalar(
        "SELECT COUNT(*) FROM invitations WHERE status = 'pending'") == 10


async def test_one_code_redeemed_by_two_accounts_at_once_links_one(two):
    a, b = two
    codes = await a.linking.issue_codes(student_external_id="S-1005")
    code = codes[0].code
    assert await outcomes(a.linking.redeem_code(7001, 7001, code),
                          b.linking.redeem_code(7002, 7002, code)) == (1, 1)
    assert await a.db.scalar("SELECT COUNT(DISTINCT telegram_id) FROM account_links"
                             " WHERE telegram_id IN (7001, 7002)") == 1
    assert await a.db.scalar("SELECT COUNT(*) FROM link_codes WHERE used_at IS NOT NULL") == 1
