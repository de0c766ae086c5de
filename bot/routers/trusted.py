"""/trusted: guardians invite, list and revoke trusted persons; invitees accept by a button;
trusted persons see what they follow and can leave."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot import render, ui
from bot.callbacks import InviteCb, TrustCb
from bot.filters import NOT_COMMAND
from bot.i18n import gettext as _
from bot.middlewares import RememberScreen
from bot.notify import invitation as invitation_card
from bot.notify import scope_names
from bot.states import TrustStates as S
from bot.ui import edit_in_place
from core.errors import AccessDenied, NameInvalid, PhoneInvalid
from core.models import Role, Scope, Viewer
from core.services.access import AccessService
from core.services.trusted import Invitation, InviteePhone, TrustService, invitation_push

DEFAULT_SCOPES = [Scope.GRADES.value, Scope.ATTENDANCE.value, Scope.HOMEWORK.value]
EVENTS = {
    "invited": lambda: _("invited"),
    "accepted": lambda: _("accepted"),
    "declined": lambda: _("declined"),
    "expired": lambda: _("invitation expired"),
    "revoked": lambda: _("access revoked"),
    "left": lambda: _("left"),
    "ended": lambda: _("access ended (roster change)"),
}


def create_router() -> Router:
    router = Router(name="trusted")
    router.message.register(cmd_trusted, Command("trusted"))
    router.callback_query.middleware(RememberScreen())
    cb = router.callback_query.register
    cb(on_answer, InviteCb.filter())
    cb(on_home, TrustCb.filter(F.a == "home"))
    cb(on_invite, TrustCb.filter(F.a == "invite"))
    cb(on_log, TrustCb.filter(F.a == "log"))
    cb(on_revoke, TrustCb.filter(F.a == "revoke"))
    cb(on_revoke_yes, TrustCb.filter(F.a == "revoke_yes"))
    cb(on_leave, TrustCb.filter(F.a == "leave"))
    cb(on_leave_yes, TrustCb.filter(F.a == "leave_yes"))
    cb(on_kid, StateFilter(S.kids), TrustCb.filter(F.a == "kid"))
    cb(on_kids_done, StateFilter(S.kids), TrustCb.filter(F.a == "kids_done"))
    cb(on_scope, StateFilter(S.scopes), TrustCb.filter(F.a == "scope"))
    cb(on_scopes_done, StateFilter(S.scopes), TrustCb.filter(F.a == "scopes_done"))
    cb(on_send, StateFilter(S.confirm), TrustCb.filter(F.a == "send"))
    # A command is never taken for an answer: it goes to its own handler.
    router.message.register(on_phone, StateFilter(S.phone), F.text | F.contact, NOT_COMMAND)
    router.message.register(on_surname, StateFilter(S.surname), F.text, NOT_COMMAND)
    router.message.register(on_wrong_input, NOT_COMMAND,
                            StateFilter(S.kids, S.phone, S.surname, S.scopes, S.confirm))
    return router


def _h(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _btn(text: str, action: str, value: object = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=TrustCb(a=action, v=str(value)).pack())


async def _edit(callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    await edit_in_place(callback, text, markup)


def _scopes(scopes) -> str:
    return scope_names([s.value for s in Scope if s in scopes])


# -- the home screen ------------------------------------------------------------------------


async def home(viewer: Viewer, trusted: TrustService,
               tz: ZoneInfo) -> tuple[str, InlineKeyboardMarkup]:
    guardian_of = [c for c in viewer.children if c.role is Role.GUARDIAN]
    if not guardian_of:
        mine = await trusted.my_access(viewer)
        if not mine:
            return _("Parents invite trusted persons (a grandmother, a nanny, a tutor) here."
                     " You have no access as a trusted person."), InlineKeyboardMarkup(
                inline_keyboard=[])
        lines = [_("🤝 You follow as a trusted person:")]
        rows = []
        for t in mine:
            lines.append(f"• <b>{_h(t.child_name)}</b> — {_scopes(t.scopes)}")
            rows.append([_btn(_("🚪 Stop following {child}").format(child=t.child_name),
                              "leave", t.trust_id)])
        return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)
    overview = await trusted.overview(viewer)
    lines = [_("🤝 Trusted persons see what you allow them to. You can end access at any"
               " time.")]
    rows = []
    for child in guardian_of:
        lines.append("")
        lines.append(f"<b>{_h(render.child_line(child))}</b>")
        people = [t for t in overview.trusted if t.student_id == child.id]
        if not people:
            lines.append(_("No trusted persons."))
        for t in people:
            since = render.day(t.since.astimezone(tz).date())
            lines.append(_("• {surname} — {scopes} (since {day})").format(
                surname=_h(t.surname), scopes=_scopes(t.scopes), day=since))
            rows.append([_btn(_("🗑 End access: {surname} → {child}").format(
                surname=t.surname, child=child.name.first), "revoke", t.trust_id)])
        for inv in overview.pending:
            if child.id in {cid for cid, _n in inv.children}:
                lines.append(_("• {surname} — invited, waiting for an answer until {day}").format(
                    surname=_h(inv.surname), day=render.day(inv.expires_at.astimezone(tz).date())))
    rows.insert(0, [_btn(_("➕ Invite"), "invite"), _btn(_("📜 Log"), "log")])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def cmd_trusted(message: Message, viewer: Viewer, trusted: TrustService,
                      state: FSMContext, tz: ZoneInfo) -> None:
    await state.clear()
    text, markup = await home(viewer, trusted, tz)
    await ui.answer(message, text, markup)


async def on_home(callback: CallbackQuery, viewer: Viewer, trusted: TrustService,
                  state: FSMContext, tz: ZoneInfo) -> None:
    await state.clear()
    await _edit(callback, *await home(viewer, trusted, tz))


async def on_log(callback: CallbackQuery, viewer: Viewer, trusted: TrustService,
                 tz: ZoneInfo) -> None:
    entries = await trusted.log(viewer)
    lines = [_("📜 Trusted persons: what happened")]
    if not entries:
        lines.append(_("Nothing yet."))
    for e in entries:
        lines.append(f"{render.moment(e.at, tz, 'short')} · "
                     f"{_h(e.person)} · {_h(e.child_name)} · {EVENTS.get(e.event, str)()}")
    await _edit(callback, "\n".join(lines), InlineKeyboardMarkup(
        inline_keyboard=[[_btn(_("« Back"), "home")]]))


def _confirm_markup(yes: str, action: str, trust_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_btn(yes, action, trust_id)],
                                                 [_btn(_("« Back"), "home")]])


async def on_revoke(callback: CallbackQuery, callback_data: TrustCb, viewer: Viewer,
                    trusted: TrustService) -> None:
    """Asked once before the access ends."""
    if not callback_data.v.isdigit():
        raise AccessDenied()
    person = next((t for t in (await trusted.overview(viewer)).trusted
                   if t.trust_id == int(callback_data.v)), None)
    if person is None:
        raise AccessDenied()
    await _edit(callback, _("End access? {surname} will no longer see: {child}.").format(
        surname=_h(person.surname), child=_h(person.child_name)),
        _confirm_markup(_("Yes, end access"), "revoke_yes", person.trust_id))


async def on_revoke_yes(callback: CallbackQuery, callback_data: TrustCb, viewer: Viewer,
                        trusted: TrustService, tz: ZoneInfo) -> None:
    if not callback_data.v.isdigit():
        raise AccessDenied()
    person = await trusted.revoke(viewer, int(callback_data.v))
    text, markup = await home(viewer, trusted, tz)
    await edit_in_place(callback, text, markup, answer=_("Access for {surname} has ended.")
                        .format(surname=person.surname))


async def on_leave(callback: CallbackQuery, callback_data: TrustCb, viewer: Viewer,
                   trusted: TrustService) -> None:
    """Asked once before the trusted person gives the access up."""
    if not callback_data.v.isdigit():
        raise AccessDenied()
    person = next((t for t in await trusted.my_access(viewer)
                   if t.trust_id == int(callback_data.v)), None)
    if person is None:
        raise AccessDenied()
    await _edit(callback, _("Stop following? You will no longer see: {child}.").format(
        child=_h(person.child_name)),
        _confirm_markup(_("Yes, stop following"), "leave_yes", person.trust_id))


async def on_leave_yes(callback: CallbackQuery, callback_data: TrustCb, viewer: Viewer,
                       trusted: TrustService) -> None:
    if not callback_data.v.isdigit():
        raise AccessDenied()
    person = await trusted.leave(viewer, int(callback_data.v))
    await edit_in_place(callback, _("You no longer follow {child}.").format(
        child=_h(person.child_name)), answer=_("You no longer follow {child}.").format(
        child=person.child_name))


# -- inviting -------------------------------------------------------------------------------


async def on_invite(callback: CallbackQuery, viewer: Viewer, state: FSMContext) -> None:
    children = [c for c in viewer.children if c.role is Role.GUARDIAN]
    if not children:
        raise AccessDenied()
    await state.clear()
    if len(children) == 1:
        await state.update_data(kids=[children[0].id])
        await _ask_phone(callback, state)
        return
    await state.update_data(kids=[])
    await state.set_state(S.kids)
    await _edit(callback, *kids_screen(viewer, []))


def kids_screen(viewer: Viewer, chosen: list[int]) -> tuple[str, InlineKeyboardMarkup]:
    rows = [[_btn(("✅ " if c.id in chosen else "▫️ ") + render.child_line(c), "kid", c.id)]
            for c in viewer.children if c.role is Role.GUARDIAN]
    rows.append([_btn(_("Next »"), "kids_done")])
    return _("Whom will the trusted person follow? Tick one or more children."), (
        InlineKeyboardMarkup(inline_keyboard=rows))


async def on_kid(callback: CallbackQuery, callback_data: TrustCb, viewer: Viewer,
                 state: FSMContext) -> None:
    if not callback_data.v.isdigit():
        raise AccessDenied()
    child = AccessService.require_guardian(viewer, int(callback_data.v))
    chosen = set((await state.get_data()).get("kids", []))
    chosen ^= {child.id}
    await state.update_data(kids=sorted(chosen))
    await _edit(callback, *kids_screen(viewer, sorted(chosen)))


async def on_kids_done(callback: CallbackQuery, state: FSMContext) -> None:
    if not (await state.get_data()).get("kids"):
        await callback.answer(_("Tick at least one child."), show_alert=True)
        return
    await _ask_phone(callback, state)


async def _ask_phone(callback: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(S.phone)
    await _edit(callback, _("Send the mobile number of the person you invite, for example"
                            " +7 900 123-45-67 (or share their contact)."), None)


async def on_phone(message: Message, trusted: TrustService, state: FSMContext) -> None:
    raw = message.contact.phone_number if message.contact else (message.text or "")
    try:
        phone = trusted.invitee_phone(raw)
    except PhoneInvalid:
        await message.answer(_("This does not look like a Russian mobile number. Please send it"
                               " like +7 900 123-45-67, or /cancel."))
        return
    # Only the keyed hash is kept in the conversation state, never the number itself.
    await state.update_data(phone_hash=phone.hash, phone_masked=phone.masked)
    await state.set_state(S.surname)
    await message.answer(_("Their surname (for example, Иванова): the invitation shows it, so"
                           " that they know it is meant for them."))


async def on_surname(message: Message, state: FSMContext) -> None:
    surname = " ".join((message.text or "").split())
    if not surname or len(surname) > 100 or any(ch.isdigit() for ch in surname):
        await message.answer(_("Please send just the surname in letters, or /cancel."))
        return
    await state.update_data(surname=surname, scopes=DEFAULT_SCOPES)
    await state.set_state(S.scopes)
    text, markup = scopes_screen(DEFAULT_SCOPES)
    sent = await message.answer(text, reply_markup=markup)
    await state.update_data(screen=sent.message_id)


def scopes_screen(chosen: list[str]) -> tuple[str, InlineKeyboardMarkup]:
    rows = [[_btn(("✅ " if s.value in chosen else "▫️ ") + scope_names([s.value]), "scope",
                  s.value)] for s in Scope]
    rows.append([_btn(_("Next »"), "scopes_done")])
    return _("What may they see? Tap to switch."), InlineKeyboardMarkup(inline_keyboard=rows)


async def on_scope(callback: CallbackQuery, callback_data: TrustCb, state: FSMContext) -> None:
    if callback_data.v not in Scope._value2member_map_:
        await callback.answer()
        return
    chosen = set((await state.get_data()).get("scopes", []))
    chosen ^= {callback_data.v}
    ordered = [s.value for s in Scope if s.value in chosen]
    await state.update_data(scopes=ordered)
    await _edit(callback, *scopes_screen(ordered))


async def on_scopes_done(callback: CallbackQuery, viewer: Viewer, state: FSMContext) -> None:
    data = await state.get_data()
    if not data.get("scopes"):
        await callback.answer(_("Choose at least one thing they may see."), show_alert=True)
        return
    await state.set_state(S.confirm)
    names = ", ".join(c.name.short for c in viewer.children if c.id in data["kids"])
    masked = data["phone_masked"]
    text = _("Invite {surname} ({phone}) to follow {children}? They will see: {scopes}. The"
             " invitation is valid for 7 days.").format(
        surname=_h(data["surname"]), phone=masked, children=_h(names),
        scopes=scope_names(data["scopes"]))
    await _edit(callback, text, InlineKeyboardMarkup(inline_keyboard=[
        [_btn(_("✅ Send the invitation"), "send")], [_btn(_("« Back"), "home")]]))


async def on_send(callback: CallbackQuery, viewer: Viewer, trusted: TrustService, bot: Bot,
                  state: FSMContext) -> None:
    data = await state.get_data()
    await state.clear()
    try:
        invitation, token, invitee = await trusted.invite(
            viewer, list(data["kids"]), InviteePhone(data["phone_hash"], data["phone_masked"]),
            data["surname"], {Scope(s) for s in data["scopes"]})
    except (PhoneInvalid, NameInvalid):
        await _edit(callback, _("The number or the surname is not valid; start again with"
                                " /trusted."), None)
        return
    me = await bot.me()
    link = f"https://t.me/{me.username}?start=inv_{token}"
    lines = [_("✅ Invitation sent.") if invitee else _("✅ Invitation created.")]
    if invitee:
        lines.append(_("{surname} already uses this bot: the invitation is in their chat.")
                     .format(surname=_h(invitation.surname)))
    lines.append(_("You can also forward this link to them; only the owner of that number can"
                   " accept it:") if invitee else
                 _("Forward this link to them; only the owner of that number can accept it:"))
    lines.append(link)
    await _edit(callback, "\n".join(lines), InlineKeyboardMarkup(
        inline_keyboard=[[_btn(_("« Trusted persons"), "home")]]))


async def on_wrong_input(message: Message) -> None:
    await message.answer(_("Please use the buttons above, or send /cancel to stop."))


# -- the invitee's side ---------------------------------------------------------------------


async def show_invitations(message: Message, invitations: list[Invitation],
                           tz: ZoneInfo) -> None:
    for inv in invitations:
        text, markup = invitation_card(invitation_push(inv, tz))
        await message.answer(text, reply_markup=markup.to_aiogram())


async def on_answer(callback: CallbackQuery, callback_data: InviteCb,
                    trusted: TrustService) -> None:
    user = callback.from_user
    if callback_data.a == "yes":
        inv = await trusted.accept(user.id, callback_data.i)
        children = ", ".join(n for _i, n in inv.children)
        commands = scope_commands(inv.scopes)
        if len(commands) > 1:
            text = _("✅ You accepted. You now follow {children} and see: {scopes}. These work"
                     " for you: {commands}.").format(
                children=children, scopes=_scopes(inv.scopes),
                commands=_(" and ").join([", ".join(commands[:-1]), commands[-1]]))
        else:
            text = _("✅ You accepted. You now follow {children} and see: {scopes}. Messages"
                     " about it will come here; /trusted shows what you follow.").format(
                children=children, scopes=_scopes(inv.scopes))
    else:
        inv = await trusted.decline(user.id, callback_data.i)
        # A name after a preposition would need declining: it stands on its own instead.
        text = _("Invitation declined. Invited by: {inviter}.").format(inviter=inv.inviter_name)
    await _edit(callback, _h(text), None)


def scope_commands(scopes) -> list[str]:
    """The commands a trusted person's scopes open, /trusted always."""
    commands = []
    if Scope.GRADES in scopes:
        commands += ["/grades", "/dots"]
    if Scope.HOMEWORK in scopes:
        commands += ["/homework", "/schedule", "/news"]
    return [*commands, "/trusted"]
