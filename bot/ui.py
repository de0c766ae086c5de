"""Editing a message in place, as every navigation button does."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup


async def edit_in_place(
    callback: CallbackQuery,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    parse_mode: str | None = "HTML",
    answer: str | None = None,
) -> None:
    """Replace the pressed message's text and buttons, and answer the callback.

    Pressing a button that leads to the same screen (the chosen option, a page counter) is
    not an error: Telegram's «message is not modified» is ignored.
    """
    message = callback.message
    if message is not None and not isinstance(message, InaccessibleMessage):
        try:
            await message.edit_text(text, reply_markup=markup, parse_mode=parse_mode)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                raise
    await callback.answer(answer)
