"""Linking accounts over the real SQLite adapter."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.services import build_services
from core.errors import (
    CodeEntryLocked,
    ContactNotOwn,
    LinkCodeExpired,
    LinkCodeInvalid,
    PhoneInvalid,
    PhoneNotFound,
)
from core.identity import format_code
from core.models import Role
from core.storage.db import Database
from tests.support.school import ANNA_PHONE, IVAN_PHONE, SECRET, SERGEY_PHONE, TZ

ANNA = 5001
IVAN = 5002
STRANGER = 5999


def names(result) -> list[str]:
    return [c.name.short for c in result.children]


async def test_guardian_phone_links_all_their_children(school):
    result = await school.linking.link_contact(ANNA, ANNA, ANNA, "8 (900) 123-45-67")
    assert names(result) == ["Иван Петров", "Мария Петрова"]
    assert result.as_guardian and result.new_links == 1
    viewer = await school.access.viewer(ANNA)
    assert {c.role for c in viewer.children} == {Role.GUARDIAN}
    assert {c.class_name for c in viewer.children} == {"7Б", "5А"}


async def test_relinking_is_idempotent(school):
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    again = await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    assert again.new_links == 0
    assert await school.db.scalar("SELECT COUNT(*) FROM account_links") == 1


async def test_student_phone_links_the_student(school):
    result = await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    assert names(result) == ["Иван Петров"]
    assert result.as_student and not result.as_guardian
    viewer = await school.access.viewer(IVAN)
    assert viewer.children[0].role is Role.STUDENT


async def test_forwarded_contact_never_links(school):
    with pytest.raises(ContactNotOwn):
        await school.linking.link_contact(STRANGER, STRANGER, ANNA, ANNA_PHONE)
    with pytest.raises(ContactNotOwn):
        await school.linking.link_contact(STRANGER, STRANGER, None, ANNA_PHONE)
    assert await school.db.scalar("SELECT COUNT(*) FROM account_links") == 0


async def test_unknown_and_invalid_phones(school):
    with pytest.raises(PhoneNotFound):
        await school.linking.link_contact(STRANGER, STRANGER, STRANGER, "+7 999 000-00-00")
    with pytest.raises(PhoneInvalid):
        await school.linking.link_contact(STRANGER, STRANGER, STRANGER, "+44 20 7946 0958")
    # The verified phone is remembered (hashed) even without a match, for invitations later.
    row = await school.db.fetchone("SELECT phone_hash FROM accounts WHERE telegram_id = ?",
                                   (STRANGER,))
    assert row["phone_hash"] and "9990000000" not in row["phone_hash"]


async def test_code_links_once_and_only_once(school):
    codes = await school.linking.issue_codes(student_external_id="S-1001")
    by_role = {(c.recipient, c.recipient_name.first): c for c in codes}
    assert set(by_role) == {(Role.STUDENT, "Иван"), (Role.GUARDIAN, "Анна"),
                            (Role.GUARDIAN, "Сергей")}
    sergey_code = by_role[(Role.GUARDIAN, "Сергей")].code
    assert len(sergey_code) == 12
    result = await school.linking.redeem_code(7001, 7001, format_code(sergey_code).lower())
    assert names(result) == ["Иван Петров"]
    with pytest.raises(LinkCodeInvalid):
        await school.linking.redeem_code(7002, 7002, sergey_code)
    # Only hashes are stored.
    stored = [r[0] for r in await school.db.fetchall("SELECT code_hash FROM link_codes")]
    assert sergey_code not in stored


async def test_a_new_code_revokes_the_old_one(school):
    first = await school.linking.issue_codes(student_external_id="S-1005")
    second = await school.linking.issue_codes(student_external_id="S-1005")
    with pytest.raises(LinkCodeInvalid):
        await school.linking.redeem_code(7001, 7001, first[0].code)
    result = await school.linking.redeem_code(7001, 7001, second[0].code)
    assert names(result) == ["Артём Волков"]


async def test_codes_for_a_class_give_one_code_per_guardian(school):
    codes = await school.linking.issue_codes(class_name="7б")
    students = {c.student_external_id for c in codes if c.recipient is Role.STUDENT}
    assert students == {"S-1001", "S-1003", "S-1004"}
    guardians = [c.recipient_name.first for c in codes if c.recipient is Role.GUARDIAN]
    assert sorted(guardians) == ["Андрей", "Анна", "Елена", "Сергей"]


async def test_code_expires_after_14_days(school, clock):
    codes = await school.linking.issue_codes(student_external_id="S-1005")
    clock.advance(days=14, seconds=1)
    with pytest.raises(LinkCodeExpired):
        await school.linking.redeem_code(7001, 7001, codes[0].code)


async def test_five_wrong_codes_lock_entry_for_an_hour(school, clock):
    good = (await school.linking.issue_codes(student_external_id="S-1005"))[0].code
    for _ in range(4):
        with pytest.raises(LinkCodeInvalid):
            await school.linking.redeem_code(7001, 7001, "AAAA-BBBB-CCCC")
        clock.advance(minutes=5)
    with pytest.raises(CodeEntryLocked) as locked:
        await school.linking.redeem_code(7001, 7001, "not a code")
    assert locked.value.until == clock.now() + timedelta(hours=1)
    # Even the right code is refused while locked; another account is not affected.
    with pytest.raises(CodeEntryLocked):
        await school.linking.redeem_code(7001, 7001, good)
    clock.advance(minutes=61)
    result = await school.linking.redeem_code(7001, 7001, good)
    assert names(result) == ["Артём Волков"]


async def test_support_link_and_unlink(school):
    result = await school.linking.support_link(8001, SERGEY_PHONE)
    assert names(result) == ["Иван Петров"]
    assert await school.db.scalar(
        "SELECT via FROM account_links WHERE telegram_id = 8001") == "support"
    assert await school.linking.unlink(8001)
    assert await school.db.scalar("SELECT COUNT(*) FROM accounts WHERE telegram_id = 8001") == 0
    assert await school.db.scalar("SELECT COUNT(*) FROM account_links") == 0
    viewer = await school.access.viewer(8001)
    assert not viewer.is_linked


async def _burst(services_list, attempts: int) -> tuple[int, int]:
    async def attempt(n: int):
        linking = services_list[n % len(services_list)].linking
        try:
            await linking.redeem_code(STRANGER, STRANGER, f"WRONG{n:07d}")
        except (LinkCodeInvalid, CodeEntryLocked) as exc:
            return exc
        raise AssertionError("a wrong code linked")

    results = await asyncio.gather(*(attempt(n) for n in range(attempts)))
    locked = sum(isinstance(r, CodeEntryLocked) for r in results)
    return len(results) - locked, locked


async def test_a_burst_of_wrong_codes_checks_at_most_five(school):
    invalid, locked = await _burst([school], 40)
    checked = await school.db.scalar(
        "SELECT COUNT(*) FROM code_failures WHERE telegram_id = ?", (STRANGER,))
    assert checked == 5
    assert (invalid, locked) == (4, 36)  # the fifth wrong code is told about the lock


async def test_the_limit_holds_across_two_connections(school, tmp_path, clock):
    other = await Database(school.db.url).connect()
    try:
        second = build_services(other, SECRET, TZ, clock)
        invalid, locked = await _burst([school, second], 40)
    finally:
        await other.close()
    checked = await school.db.scalar(
        "SELECT COUNT(*) FROM code_failures WHERE telegram_id = ?", (STRANGER,))
    assert checked == 5
    assert (invalid, locked) == (4, 36)
