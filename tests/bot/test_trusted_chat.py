"""Trusted persons: invite by phone, accept by a button, scopes everywhere, revoke, leave."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage

from bot.callbacks import InviteCb, TrustCb
from bot.i18n import create_i18n
from bot.notify import render_batch
from core.importers.journal import parse_journal
from tests.support import updates as up
from tests.support.school import ANNA_PHONE, EXAMPLE_ROSTER, IVAN_PHONE, import_roster

ANNA, GRANNY, STRANGER, IVAN = 5001, 6001, 6002, 5002
GRANNY_PHONE = "+7 903 111-22-33"


def press(action: str, value: object = "") -> str:
    return TrustCb(a=action, v=str(value)).pack()


async def grade(services, n: int, student: str = "S-1001") -> int:
    line = json.dumps({"id": f"g{n}", "type": "grade", "grade_id": f"g{n}",
                       "student_id": student, "subject": "Алгебра", "date": "2026-11-23",
                       "value": 5}, ensure_ascii=False)
    summary, _ = await services.journal.import_journal(parse_journal([line], "j"), "j")
    return summary.pushes


async def outbox_to(services, telegram_id: int) -> list[tuple[str, dict]]:
    rows = await services.db.fetchall(
        "SELECT kind, payload FROM outbox WHERE telegram_id = ? ORDER BY id", (telegram_id,))
    return [(r[0], json.loads(r[1])) for r in rows]


async def invite(tg, scopes_off: tuple[str, ...] = ()) -> None:
    """Анна invites the grandmother for Иван through the conversation."""
    await tg.feed(up.message(ANNA, "/trusted"))
    await tg.feed(up.callback(ANNA, press("invite")))
    ivan = await tg.services.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await tg.feed(up.callback(ANNA, press("kid", ivan)))
    await tg.feed(up.callback(ANNA, press("kids_done")))
    await tg.feed(up.message(ANNA, "12345"))
    assert tg.session.last_text().startswith("Это не похоже на российский мобильный номер")
    await tg.feed(up.message(ANNA, GRANNY_PHONE))
    state = " ".join(r[0] for r in await tg.services.db.fetchall("SELECT data FROM fsm_state"))
    assert "9031112233" not in state and "111-22-33" not in state  # kept hashed only
    await tg.feed(up.message(ANNA, "Иванова"))
    assert tg.session.last_text() == "Что будет видно? Нажмите, чтобы включить или выключить."
    for scope in scopes_off:
        await tg.feed(up.callback(ANNA, press("scope", scope)))
    await tg.feed(up.callback(ANNA, press("scopes_done")))
    await tg.feed(up.callback(ANNA, press("send")))


@pytest.fixture
async def family(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    # The grandmother already uses the bot: her number is verified but not in the roster.
    await tg.feed(up.contact(GRANNY, GRANNY_PHONE, GRANNY))
    assert "Этого номера нет в данных школы" in tg.session.last_text()
    return tg


async def test_invite_accept_and_the_pushes_follow_the_scope(family):
    tg, s = family, family.services
    await invite(tg, scopes_off=("grades",))
    done = tg.session.last_text()
    assert done.startswith("✅ Приглашение отправлено.")
    assert "https://t.me/diary_test_bot?start=inv_" in done
    [(kind, payload)] = await outbox_to(s, GRANNY)
    assert kind == "invitation" and payload["surname"] == "Иванова"
    i18n = create_i18n("ru")
    claimed = next(b for b in await s.outbox.claim() if b.telegram_id == GRANNY)
    with i18n.context(), i18n.use_locale("ru"):
        [card], _ = render_batch(claimed.items)
    assert card.text.startswith("🤝 Анна Петрова приглашает вас (Иванова) следить за: Иван Петров.")
    assert "Вам будет видно: посещаемость, задания и расписание." in card.text
    assert [b.text for b in card.markup.inline_keyboard[0]] == ["✅ Принять", "✖️ Отклонить"]

    # Someone else pressing Accept (another account, a forged button) is refused.
    await tg.feed(up.callback(STRANGER, InviteCb(a="yes", i=payload["invitation_id"]).pack()))
    assert tg.session.of(AnswerCallbackQuery)[-1].text.startswith(
        "Это приглашение уже недействительно или адресовано другому номеру")
    assert await s.db.scalar("SELECT COUNT(*) FROM trusts") == 0

    await tg.feed(up.callback(GRANNY, card.markup.inline_keyboard[0][0].callback_data))
    assert tg.session.last_text().startswith("✅ Приглашение принято. Теперь вы следите за: Иван")
    assert (await outbox_to(s, ANNA))[-1][1]["event"] == "accepted"

    # Grades are not in her scope: no grade push, no /grades; homework is.
    await grade(s, 1)
    assert [k for k, _p in await outbox_to(s, GRANNY)] == ["invitation"]
    await tg.feed(up.message(GRANNY, "/grades"))
    assert tg.session.last_text() == "Это вам недоступно."
    await tg.feed(up.message(GRANNY, "/homework завтра"))
    assert tg.session.last_text().startswith("📚 Домашнее задание на вторник, 24 ноября")
    # A trusted person cannot file absence notices or invite.
    await tg.feed(up.message(GRANNY, "/absence"))
    assert "только родитель" in tg.session.last_text()
    await tg.feed(up.message(GRANNY, "/trusted"))
    assert tg.session.last_text().startswith("🤝 Вы следите как доверенное лицо:")


async def test_with_grades_scope_she_gets_grade_pushes_until_revoked(family):
    tg, s = family, family.services
    await invite(tg)
    inv = (await outbox_to(s, GRANNY))[0][1]["invitation_id"]
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack()))
    assert await grade(s, 1) == 2  # Анна and the grandmother
    assert [k for k, _p in await outbox_to(s, GRANNY)] == ["invitation", "grade_new"]
    # Анна revokes: pushes stop at once and the grandmother is told.
    await tg.feed(up.message(ANNA, "/trusted"))
    home = tg.session.last()
    assert "• Иванова — оценки и точки, посещаемость, задания и расписание (с 23 ноября)"\
        in home.text
    revoke = next(b for row in home.reply_markup.inline_keyboard for b in row
              if b.text.startswith("🗑"))
    assert revoke.text == "🗑 Закрыть доступ: Иванова → Иван"
    await tg.feed(up.callback(ANNA, revoke.callback_data))
    await tg.feed(up.callback(ANNA, revoke.callback_data.replace("revoke", "revoke_yes")))
    assert tg.session.of(AnswerCallbackQuery)[-1].text == "Иванова: доступ закрыт."
    assert await grade(s, 2) == 1
    kinds = [(k, p.get("event")) for k, p in await outbox_to(s, GRANNY)]
    assert kinds == [("invitation", None), ("grade_new", None), ("trust_news", "revoked")]
    # The log shows it all.
    await tg.feed(up.callback(ANNA, press("log")))
    log = tg.session.of(EditMessageText)[-1].text
    assert "Иванова · Иван · доступ закрыт" in log and "Иванова · Иван · принял(а) приглашение"\
        in log


async def test_decline_expire_and_leave(family, clock):
    tg, s = family, family.services
    await invite(tg)
    inv = (await outbox_to(s, GRANNY))[0][1]["invitation_id"]
    await tg.feed(up.callback(GRANNY, InviteCb(a="no", i=inv).pack()))
    assert tg.session.last_text() == "Приглашение отклонено. Приглашал(а): Анна Петрова."
    assert (await outbox_to(s, ANNA))[-1][1]["event"] == "declined"
    # Re-inviting; this one expires after 7 days.
    await invite(tg)
    clock.advance(days=7, seconds=1)
    assert await s.trusted.expire() == 1
    assert await s.trusted.expire() == 0
    assert (await outbox_to(s, ANNA))[-1][1]["event"] == "expired"
    # A third one, accepted, then she leaves.
    await invite(tg)
    inv = (await outbox_to(s, GRANNY))[-1][1]["invitation_id"]
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack()))
    trust_id = await s.db.scalar("SELECT id FROM trusts")
    await tg.feed(up.callback(GRANNY, press("leave", trust_id)))
    await tg.feed(up.callback(GRANNY, press("leave_yes", trust_id)))
    assert tg.session.last_text() == "Вы больше не следите за: Иван Петров."
    assert (await outbox_to(s, ANNA))[-1][1]["event"] == "left"


async def test_reinviting_replaces_the_pending_invitation(family):
    tg, s = family, family.services
    await invite(tg)
    await invite(tg)
    statuses = [r[0] for r in await s.db.fetchall("SELECT status FROM invitations ORDER BY id")]
    assert statuses == ["replaced", "pending"]
    first = (await outbox_to(s, GRANNY))[0][1]["invitation_id"]
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=first).pack()))
    assert await s.db.scalar("SELECT COUNT(*) FROM trusts") == 0


async def test_forwarded_link_only_the_owner_of_the_number_accepts(tg):
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    viewer = await s.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    from core.models import Scope

    _inv, token, invitee = await s.trusted.invite(viewer, [ivan.id], GRANNY_PHONE, "Иванова",
                                                  {Scope.GRADES})
    assert invitee is None  # she does not use the bot yet
    # A stranger opens the link and shares their own (different) number: nothing to accept.
    await tg.feed(up.message(STRANGER, f"/start inv_{token}"))
    assert "поделитесь номером телефона кнопкой ниже" in tg.session.last_text()
    await tg.feed(up.contact(STRANGER, "+7 999 000-11-22", STRANGER))
    assert "приглашение отправлено на другой номер" in tg.session.last_text()
    # The grandmother opens it and shares hers: the card with buttons appears.
    await tg.feed(up.message(GRANNY, f"/start inv_{token}"))
    await tg.feed(up.contact(GRANNY, GRANNY_PHONE, GRANNY))
    card = tg.session.of(SendMessage)[-1]
    assert card.text.startswith("🤝 Анна Петрова приглашает вас (Иванова)")
    await tg.feed(up.callback(GRANNY, card.reply_markup.inline_keyboard[0][0].callback_data))
    viewer = await s.access.viewer(GRANNY)
    assert [(c.name.first, c.role.value) for c in viewer.children] == [("Иван", "trusted")]


async def test_roster_change_ends_the_trusts_the_guardian_granted(family):
    tg, s = family, family.services
    await invite(tg)
    inv = (await outbox_to(s, GRANNY))[0][1]["invitation_id"]
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack()))
    rows = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()
    rows = [r for r in rows if not (",S-1001," in r and "Петрова,Анна" in r)]
    summary = await import_roster(s, "\n".join(rows) + "\n")
    assert summary.trusts_ended == 1
    assert (await s.access.viewer(GRANNY)).children == ()
    assert (await outbox_to(s, GRANNY))[-1][1]["event"] == "ended"


async def test_students_cannot_invite_and_limits_hold(family):
    tg, s = family, family.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await tg.feed(up.message(IVAN, "/trusted"))
    assert tg.session.last_text().startswith("Здесь родители приглашают доверенных лиц")
    viewer = await s.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    from core.errors import SelfInvitation, TooManyTrusted
    from core.models import Scope

    with pytest.raises(SelfInvitation):
        await s.trusted.invite(viewer, [ivan.id], ANNA_PHONE, "Петрова", {Scope.GRADES})
    for n in range(10):
        await s.trusted.invite(viewer, [ivan.id], f"+7 904 000-00-{n:02d}", "Сидорова",
                               {Scope.GRADES})
    with pytest.raises(TooManyTrusted):
        await s.trusted.invite(viewer, [ivan.id], "+7 904 000-00-99", "Сидорова",
                               {Scope.GRADES})


async def test_a_revoked_trust_gets_nothing_already_queued(family, clock):
    from datetime import UTC, datetime

    from tests.support.school import TZ

    tg, s = family, family.services
    await invite(tg)
    inv = (await outbox_to(s, GRANNY))[0][1]["invitation_id"]
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack()))
    # A grade at 22:10, in quiet hours: the push waits for the morning...
    clock.moment = datetime(2026, 11, 23, 22, 10, tzinfo=TZ).astimezone(UTC)
    line = json.dumps({"id": "late", "type": "grade", "grade_id": "late", "student_id": "S-1001",
                       "subject": "Алгебра", "date": "2026-11-23", "value": 5,
                       "comment": "личное"}, ensure_ascii=False)
    await s.journal.import_journal(parse_journal([line], "j"), "j")
    # ...the parent ends her access at 23:00...
    trust_id = await s.db.scalar("SELECT id FROM trusts")
    await s.trusted.revoke(await s.access.viewer(ANNA), trust_id)
    # ...and in the morning the grade is not sent to her.
    clock.moment = datetime(2026, 11, 24, 8, 1, tzinfo=TZ).astimezone(UTC)
    batches = {b.telegram_id: b for b in await s.outbox.claim(recipients=10)}
    kinds = [i.kind for i in batches[GRANNY].items]
    assert "trust_news" in kinds and "grade_new" not in kinds
    assert await s.db.scalar(
        "SELECT last_error FROM outbox WHERE telegram_id = ? AND kind = 'grade_new'",
        (GRANNY,)) == "no access"


async def test_grades_scope_alone_does_not_show_missed_lessons(family):
    tg, s = family, family.services
    await invite(tg, scopes_off=("attendance",))
    inv = (await outbox_to(s, GRANNY))[0][1]["invitation_id"]
    await tg.feed(up.callback(GRANNY, InviteCb(a="yes", i=inv).pack()))
    lines = [json.dumps(e, ensure_ascii=False) for e in (
        {"id": "g", "type": "grade", "grade_id": "g", "student_id": "S-1001",
         "subject": "Физика", "date": "2026-11-20", "value": 4},
        {"id": "a", "type": "attendance", "attendance_id": "a", "student_id": "S-1001",
         "date": "2026-11-20", "lesson": 1, "subject": "Физика", "mark": "absent"})]
    await s.journal.import_journal(parse_journal(lines, "j"), "j", notify=False)
    await tg.feed(up.message(GRANNY, "/grades"))
    assert "Физика" in tg.session.last_text() and "пропущен" not in tg.session.last_text()
    await tg.feed(up.message(ANNA, "/grades"))
    await tg.feed(up.callback(ANNA, tg.session.last().reply_markup.inline_keyboard[0][0]
                              .callback_data))
    assert "· пропущен 1 урок" in tg.session.last_text()


async def test_two_quick_taps_in_the_child_picker_are_both_kept(tg):
    """Updates of one chat are handled one at a time: two presses sent together both count."""
    await tg.services.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/trusted"))
    await tg.feed(up.callback(ANNA, press("invite")))
    kids = [r[0] for r in await tg.services.db.fetchall(
        "SELECT id FROM students WHERE external_id IN ('S-1001', 'S-1002') ORDER BY id")]
    assert len(kids) == 2
    await asyncio.gather(*(tg.feed(up.callback(ANNA, press("kid", k))) for k in kids))
    context = tg.dp.fsm.get_context(tg.bot, ANNA, ANNA)
    assert (await context.get_data())["kids"] == kids
    last = tg.session.of(EditMessageText)[-1]
    assert [row[0].text.split()[0] for row in last.reply_markup.inline_keyboard[:2]] == [
        "✅", "✅"]


@pytest.mark.parametrize(("lang", "surname_prompt", "created", "forward"), [
    ("ru", "Фамилия приглашаемого (например, Иванова): она будет в приглашении, чтобы человек"
           " знал, что оно для него.",
     "✅ Приглашение создано.",
     "Перешлите эту ссылку приглашаемому — принять приглашение сможет только владелец этого"
     " номера:"),
    ("en", "Their surname (for example, Иванова): the invitation shows it, so that they know"
           " it is meant for them.",
     "✅ Invitation created.",
     "Forward this link to them; only the owner of that number can accept it:"),
])
async def test_an_invitee_who_does_not_use_the_bot_gets_the_link_only(tg, lang, surname_prompt,
                                                                       created, forward):
    """No «also» when the link is the only way, and no mos.ru outside МЭШ."""
    s = tg.services
    await s.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await tg.feed(up.message(ANNA, "/trusted", language_code=lang))
    await tg.feed(up.callback(ANNA, press("invite"), language_code=lang))
    ivan = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    await tg.feed(up.callback(ANNA, press("kid", ivan), language_code=lang))
    await tg.feed(up.callback(ANNA, press("kids_done"), language_code=lang))
    await tg.feed(up.message(ANNA, GRANNY_PHONE, language_code=lang))
    assert tg.session.last_text() == surname_prompt
    await tg.feed(up.message(ANNA, "Иванова", language_code=lang))
    await tg.feed(up.callback(ANNA, press("scopes_done"), language_code=lang))
    await tg.feed(up.callback(ANNA, press("send"), language_code=lang))
    lines = tg.session.last_text().split("\n")
    assert lines[:2] == [created, forward]
    assert lines[2].startswith("https://t.me/diary_test_bot?start=inv_") and len(lines) == 3
