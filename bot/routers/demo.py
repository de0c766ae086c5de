"""Demo mode: /start offers to try the bot as a parent or as a student, with a family of one's
own. Registered only when the bot runs with `diary demo`."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot import render
from bot.callbacks import DemoCb
from bot.i18n import gettext as _
from core.demo import DemoSchool
from core.models import Role, Viewer


def create_router() -> Router:
    router = Router(name="demo")
    # An invitation link works as in a real school (the start router takes it).
    router.message.register(cmd_start, CommandStart(), ~F.text.contains(" inv_"))
    router.callback_query.register(on_try, DemoCb.filter(F.a.in_({"parent", "student"})))
    return router


def offer() -> tuple[str, InlineKeyboardMarkup]:
    text = "\n".join([
        _("👋 This is a demo school: everything here is made up, nothing is real."),
        _("Try the bot as a parent of two children or as a student. You get a family of your"
          " own: nobody else sees it. New grades, dots and absences arrive every few minutes."),
    ])
    markup = InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=_("👪 Try as a parent"),
                              callback_data=DemoCb(a="parent").pack())],
        [InlineKeyboardButton(text=_("🎒 Try as a student"),
                              callback_data=DemoCb(a="student").pack())],
    ])
    return text, markup


async def cmd_start(message: Message, viewer: Viewer, state: FSMContext) -> None:
    await state.clear()
    text, markup = offer()
    if any(c.role is not Role.TRUSTED for c in viewer.children):
        text += "\n\n" + _("You already have a demo family: /grades, /dots, /homework.")
    elif viewer.is_linked:
        text += "\n\n" + _("You follow a demo child as a trusted person: /trusted shows"
                             " what you see.")
    await message.answer(text, reply_markup=markup)


async def on_try(callback: CallbackQuery, callback_data: DemoCb, demo: DemoSchool) -> None:
    user = callback.from_user
    chat_id = callback.message.chat.id if callback.message else user.id
    await callback.answer(_("Making your family…"))
    result = await demo.visit(user.id, chat_id, callback_data.a == "student",
                              user.language_code)
    if callback_data.a == "student":
        lines = [_("Done! In the demo you are a student: {child}.").format(
            child=", ".join(render.child_line(c) for c in result.children)), ""]
        lines.append(_("Try /homework tomorrow, /schedule, /grades and /dots."))
    else:
        lines = [_("Done! In the demo you follow:"), render.children_list(result.children), ""]
        lines.append(_("Try /grades (weighted averages), /dots, /homework, /absence, /trusted"
                       " and /settings."))
    lines.append(_("A new grade, dot or absence will arrive in a few minutes."))
    if callback.message is not None and not isinstance(callback.message, InaccessibleMessage):
        await callback.message.edit_text("\n".join(lines))
