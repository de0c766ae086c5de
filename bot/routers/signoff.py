"""The weekly sign-off button of the Friday digest: «Ознакомлен(а)»."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup

from bot import render
from bot.callbacks import SignCb
from bot.i18n import gettext as _
from bot.ui import LIMIT, width
from core.models import Viewer
from core.services.digest import DigestService


def create_router() -> Router:
    router = Router(name="signoff")
    router.callback_query.register(on_sign, SignCb.filter())
    return router


async def on_sign(callback: CallbackQuery, callback_data: SignCb, viewer: Viewer,
                  digest: DigestService, tz: ZoneInfo) -> None:
    child = viewer.child(callback_data.c)
    signed_at = await digest.sign(viewer, callback_data.c, date.fromordinal(callback_data.w))
    note = _("✍️ {child}: seen, {when}.").format(
        child=child.name.first if child else "", when=render.moment(signed_at, tz))
    message = callback.message
    if message is not None and not isinstance(message, InaccessibleMessage):
        rest = [row for row in (message.reply_markup.inline_keyboard if message.reply_markup
                                else []) if row[0].callback_data != callback.data]
        markup = InlineKeyboardMarkup(inline_keyboard=rest) if rest else None
        text = f"{message.text}\n{note}"
        if width(text) <= LIMIT:
            await message.edit_text(text, reply_markup=markup)
        else:  # the digest already fills its message: the note goes on its own
            await message.edit_reply_markup(reply_markup=markup)
            await message.answer(note)
    await callback.answer(note)
