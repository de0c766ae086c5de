"""Chat-type guard, /help and /cancel."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot import keyboards as kb
from bot.callbacks import is_forged
from bot.i18n import gettext as _
from core.models import Role, Scope, Viewer
from core.services.conversations import ConversationService
from core.services.teachers import seats

log = logging.getLogger(__name__)


def create_group_guard() -> Router:
    """In groups the bot shows no personal data: it only points to the private chat."""
    router = Router(name="group_guard")
    not_private = F.chat.type != ChatType.PRIVATE
    router.message.filter(not_private)
    router.message.register(on_group_command, F.text.startswith("/"))
    router.message.register(ignore)
    router.callback_query.filter(F.message.chat.type != ChatType.PRIVATE)
    router.callback_query.register(on_group_callback)
    return router


async def on_group_command(message: Message, bot: Bot) -> None:
    me = await bot.me()
    await message.answer(
        _("I work only in a private chat, so that children's data stays within the family."),
        reply_markup=kb.open_private_chat(me.username or ""),
    )


async def ignore(message: Message) -> None:
    return None


async def on_group_callback(callback: CallbackQuery) -> None:
    await callback.answer(_("I work only in a private chat."), show_alert=True)


def create_router() -> Router:
    router = Router(name="common")
    router.message.register(cmd_help, Command("help"))
    router.message.register(cmd_cancel, Command("cancel"))
    cancel_words = F.text.casefold().in_({"отмена", "cancel"})
    router.message.register(cmd_cancel, StateFilter("*"), cancel_words)
    return router


def help_text(viewer: Viewer | None) -> str:
    lines = [_("I am the family's window into the school e-diary.")]
    linked = viewer is not None and viewer.is_linked
    if not linked:
        lines.append(
            _(
                "To begin, send /start and share your phone number (the one the school has"
                " on record) or enter the code the school gave you."
            )
        )
    lines.append("")
    lines += menu_lines(viewer if linked else None)
    return "\n".join(lines)


def menu_lines(viewer: Viewer | None) -> list[str]:
    """The commands this person can use, in their role (everything for an unlinked one)."""
    children = viewer.children if viewer is not None else ()
    scopes: set[Scope] = set(Scope) if not children else set().union(
        *(c.scopes for c in children))
    roles = {c.role for c in children} if children else set(Role)
    lines = [_("/start — link your account or see who is linked")]
    if Scope.GRADES in scopes:
        lines.append(_("/grades — grades and weighted averages"))
        lines.append(_("/dots — open dots and how many days are left"))
    if Scope.HOMEWORK in scopes:
        lines.append(_("/homework — homework: /homework tomorrow, /homework fri,"
                       " /homework math"))
        lines.append(_("/schedule — the timetable: /schedule tomorrow, /schedule week"))
        lines.append(_("/news — the school's announcements"))
    if Role.GUARDIAN in roles:
        lines.append(_("/absence — tell the school in advance that a child will be away"))
        lines.append(_("/trusted — let a grandmother, a nanny or a tutor follow the child"))
        lines.append(_("/teacher — write to the class teacher"))
    elif Role.TRUSTED in roles:
        lines.append(_("/trusted — whom you follow; stop following"))
    lines.append(_("/settings — language, notifications, unlinking"))
    lines.append(_("/cancel — stop what you are doing"))
    lines.append(_("/help — this message"))
    return lines


async def cmd_help(message: Message, viewer: Viewer) -> None:
    await message.answer(help_text(viewer))


async def cmd_cancel(message: Message, state: FSMContext, bot: Bot) -> None:
    had_state = await state.get_state() is not None
    screen = (await state.get_data()).get("screen") if had_state else None
    await state.clear()
    if screen is not None:  # the buttons of the conversation left go with it
        try:
            await bot.edit_message_reply_markup(chat_id=message.chat.id, message_id=screen,
                                                reply_markup=None)
        except TelegramBadRequest:  # too old, deleted, or already without buttons
            pass
    text = _("Cancelled.") if had_state else _("Nothing to cancel.")
    await message.answer(text, reply_markup=ReplyKeyboardRemove())


def create_fallback() -> Router:
    """Last in line: a message nobody handled gets a hint rather than silence."""
    router = Router(name="fallback")
    router.message.register(on_unknown)
    router.callback_query.register(on_forged_callback, F.data.func(is_forged))
    router.callback_query.register(on_stale_callback)
    return router


async def on_unknown(message: Message, viewer: Viewer, conversations: ConversationService
                     ) -> None:
    """Anything said outside a conversation: what the bot can do, for this person's role."""
    if not viewer.is_linked and await seats(conversations.db, viewer.telegram_id):
        await message.answer(_("I did not understand this message. Parents' messages are in"
                               " /teacher; answer them with «↩️ Reply»."))
        return
    if not viewer.is_linked:
        await message.answer(
            _("I don't know you yet. Send /start to link your account, /help for more.")
        )
        return
    command = (message.text or "").startswith("/")
    head = (_("I don't know this command. Here is what I can do:") if command
            else _("I did not understand this message. Here is what I can do:"))
    await message.answer("\n".join([head, *menu_lines(viewer)]))


async def on_forged_callback(callback: CallbackQuery) -> None:
    """Data no button of this bot carries: refused without a word (and without a traceback)."""
    log.info("refused forged callback data %r from %s", callback.data, callback.from_user.id)
    await callback.answer()


async def on_stale_callback(callback: CallbackQuery) -> None:
    await callback.answer(_("This button is out of date."), show_alert=False)
