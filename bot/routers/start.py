"""/start and linking: a shared contact, a deep-link code, or a typed code."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, ReplyKeyboardRemove

from bot import keyboards as kb
from bot import render
from bot.filters import NOT_COMMAND
from bot.i18n import gettext as _
from bot.routers.errors import describe
from bot.routers.trusted import show_invitations
from bot.states import LinkStates
from core.errors import PhoneNotFound
from core.identity import normalize_code
from core.models import LinkResult, Viewer
from core.services.linking import LinkingService
from core.services.teachers import seats
from core.services.trusted import TrustService


def create_router() -> Router:
    router = Router(name="start")
    router.message.register(cmd_start_code, CommandStart(deep_link=True))
    router.message.register(cmd_start, CommandStart())
    router.message.register(on_contact, F.contact)
    router.message.register(ask_code, F.text == kb.HAVE_CODE)
    router.message.register(on_code, StateFilter(LinkStates.code), F.text, NOT_COMMAND)
    router.message.register(on_code_not_text, StateFilter(LinkStates.code), NOT_COMMAND)
    # A code typed without pressing the button works too.
    router.message.register(
        on_code, StateFilter(None), F.text.func(lambda t: normalize_code(t) is not None)
    )
    return router


def teacher_line(classes: tuple[str, ...] | list[str]) -> str:
    return _("You are the class teacher of {classes}: parents' messages will come here;"
             " /teacher lists the conversations.").format(classes=", ".join(classes))


def linked_text(result: LinkResult) -> str:
    parts = []
    if result.new_links:
        parts.append(_("Done! Your account is linked."))
    else:
        parts.append(_("Your account was already linked."))
    if result.teacher_classes:
        parts.append(teacher_line(result.teacher_classes))
        if not result.children:
            return "\n".join(parts)
    parts.append(render.whose(result.children))
    parts.append("")
    parts.append(_("New grades will come here. /help lists what I can do."))
    return "\n".join(parts)


async def cmd_start(
    message: Message, viewer: Viewer, linking: LinkingService, trusted: TrustService,
    state: FSMContext, tz: ZoneInfo,
) -> None:
    user = message.from_user
    assert user is not None
    await state.clear()
    await linking.touch(user.id, message.chat.id, user.language_code)
    waiting = await trusted.pending_for(user.id)
    if waiting:
        await show_invitations(message, waiting, tz)
    taught = [s.class_name for s in await seats(linking.db, user.id)]
    if taught and not viewer.is_linked:
        await message.answer("\n".join([
            _("Hello, {name}!").format(name=user.first_name),
            teacher_line(list(dict.fromkeys(taught)))]), reply_markup=ReplyKeyboardRemove())
        return
    if viewer.is_linked:
        await message.answer(
            "\n".join(
                [
                    _("Hello, {name}!").format(name=user.first_name),
                    render.whose(viewer.children),
                    *([teacher_line(list(dict.fromkeys(taught)))] if taught else []),
                    "",
                    _("/help lists what I can do."),
                ]
            ),
            reply_markup=ReplyKeyboardRemove(),
        )
        return
    await message.answer(
        "\n".join(
            [
                _("Hello, {name}! I bring the school e-diary to Telegram.").format(
                    name=user.first_name
                ),
                "",
                _(
                    "To link your account, share your phone number with the button below — it"
                    " must be the number the school has on record. Telegram confirms that the"
                    " number is yours."
                ),
                _("If the school gave you a code, press «I have a code»."),
            ]
        ),
        reply_markup=kb.link_options(),
    )


async def cmd_start_code(
    message: Message, command: CommandObject, linking: LinkingService, trusted: TrustService,
    state: FSMContext, tz: ZoneInfo,
) -> None:
    await state.clear()
    args = command.args or ""
    if args.startswith("inv_"):
        await _invitation_link(message, args[4:], linking, trusted, tz, state)
        return
    await _redeem(message, args, linking)


async def _invitation_link(message: Message, token: str, linking: LinkingService,
                           trusted: TrustService, tz: ZoneInfo, state: FSMContext) -> None:
    """A forwarded invitation: only the owner of the invited number may accept it."""
    user = message.from_user
    assert user is not None
    await linking.touch(user.id, message.chat.id, user.language_code)
    invitation = await trusted.by_token(token)
    if invitation is None or invitation.status != "pending":
        await message.answer(_("This invitation is no longer valid. Ask the parent to invite"
                               " you again."))
        return
    mine = [inv for inv in await trusted.pending_for(user.id) if inv.id == invitation.id]
    if mine:
        await show_invitations(message, mine, tz)
        return
    # Remembered for the contact that follows: a number that is not the invited one is told so.
    await state.update_data(invitation=invitation.id)
    await message.answer(
        _("{inviter} invites you to follow their child here. To make sure the invitation is"
          " meant for you, share your phone number with the button below.").format(
            inviter=invitation.inviter_name),
        reply_markup=kb.link_options(with_code=False),
    )


async def on_contact(message: Message, linking: LinkingService, trusted: TrustService,
                     state: FSMContext, tz: ZoneInfo) -> None:
    user = message.from_user
    contact = message.contact
    assert user is not None and contact is not None
    opened_invitation = (await state.get_data()).get("invitation")
    await state.clear()
    try:
        result = await linking.link_contact(
            user.id, message.chat.id, contact.user_id, contact.phone_number, user.language_code
        )
    except PhoneNotFound as exc:
        # Not in the school's records — but perhaps a parent invited this number.
        invitations = await trusted.pending_for(user.id)
        if not invitations and opened_invitation is not None:
            await message.answer(
                _("This invitation was sent to another phone number. If it is meant for you,"
                  " ask the parent who invited you to invite the number you shared."),
                reply_markup=ReplyKeyboardRemove())
            return
        if not invitations:
            await message.answer(describe(exc, tz), reply_markup=kb.link_options())
            return
        await message.answer(_("Thank you, the number is confirmed."),
                             reply_markup=ReplyKeyboardRemove())
        await show_invitations(message, invitations, tz)
        return
    await message.answer(linked_text(result), reply_markup=ReplyKeyboardRemove())
    await show_invitations(message, await trusted.pending_for(user.id), tz)


async def ask_code(message: Message, state: FSMContext) -> None:
    await state.set_state(LinkStates.code)
    await message.answer(
        _("Send the code from the school's letter, for example ABCD-EFGH-JKMN. /cancel to stop."),
        reply_markup=ReplyKeyboardRemove(),
    )


async def on_code(message: Message, linking: LinkingService, state: FSMContext) -> None:
    await _redeem(message, message.text or "", linking)
    await state.clear()


async def on_code_not_text(message: Message) -> None:
    await message.answer(_("Please send the code as text, or /cancel."))


async def _redeem(message: Message, raw: str, linking: LinkingService) -> None:
    user = message.from_user
    assert user is not None
    result = await linking.redeem_code(user.id, message.chat.id, raw, user.language_code)
    await message.answer(linked_text(result), reply_markup=ReplyKeyboardRemove())

