"""Sending and editing screens of any length, as every view and navigation button does (the
cutting itself is in :mod:`bot.text`)."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message
from aiogram.types.base import TelegramObject

from bot.text import LIMIT, Text, fit, split_text, width

__all__ = ["LIMIT", "Text", "answer", "edit_in_place", "fit", "split_text", "width"]


async def answer(message: Message, text: Text, markup: TelegramObject | None = None,
                 parse_mode: str | None = "HTML") -> None:
    """Send a screen in reply to ``message``; the buttons go with its last part."""
    parts = fit(text, html=parse_mode == "HTML")
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        await message.answer(part, reply_markup=markup if last else None,  # type: ignore[arg-type]
                             parse_mode=parse_mode)


async def edit_in_place(
    callback: CallbackQuery,
    text: Text,
    markup: InlineKeyboardMarkup | None = None,
    parse_mode: str | None = "HTML",
    answer: str | None = None,
    alert: bool = False,
) -> None:
    """Replace the pressed message's text and buttons, and answer the callback (once, with
    ``answer`` as a notice or, with ``alert``, an alert).

    A screen too long for one message: its first part replaces the pressed message and the
    rest follow as new messages, the buttons with the last. Pressing a button that leads to the
    same screen (the chosen option, a page counter) is not an error: Telegram's «message is not
    modified» is ignored.
    """
    message = callback.message
    if message is not None and not isinstance(message, InaccessibleMessage):
        parts = fit(text, html=parse_mode == "HTML")
        try:
            await message.edit_text(parts[0], reply_markup=markup if len(parts) == 1 else None,
                                    parse_mode=parse_mode)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                raise
        for n, part in enumerate(parts[1:], start=2):
            await message.answer(part, reply_markup=markup if n == len(parts) else None,
                                 parse_mode=parse_mode)
    await callback.answer(answer, show_alert=True if alert else None)
