"""Keyboard builders: pure functions of data, texts through gettext."""

from __future__ import annotations

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.callbacks import SettingsCb
from bot.i18n import gettext as _
from bot.i18n import lazy_gettext as __

# Matched against incoming text in the reader's language.
HAVE_CODE = __("🔑 I have a code")


def link_options(with_code: bool = True) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(text=_("📱 Share my phone number"), request_contact=True)]]
    if with_code:
        rows.append([KeyboardButton(text=str(HAVE_CODE))])
    return ReplyKeyboardMarkup(
        keyboard=rows,
        resize_keyboard=True,
        one_time_keyboard=True,
        input_field_placeholder=_("Share your number or enter a code"),
    )


def open_private_chat(username: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("Open a private chat"), url=f"https://t.me/{username}")]
        ]
    )


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


def confirm_unlink() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("Yes, unlink and delete my data"),
                    callback_data=SettingsCb(action="unlink_yes").pack(),
                )
            ],
            [
                InlineKeyboardButton(
                    text=_("« Back"), callback_data=SettingsCb(action="home").pack()
                )
            ],
        ]
    )


def language_name(locale: str) -> str:
    return {"ru": "Русский", "en": "English"}.get(locale, locale)
