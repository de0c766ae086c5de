"""Keyboard builders: pure functions of data, texts through gettext."""

from __future__ import annotations

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __

from bot.callbacks import SettingsCb

# Matched against incoming text in the reader's language.
HAVE_CODE = __("🔑 I have a code")


def link_options() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("📱 Share my phone number"), request_contact=True)],
            [KeyboardButton(text=str(HAVE_CODE))],
        ],
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


def settings_home(locale: str, linked: bool) -> InlineKeyboardMarkup:
    other = "en" if locale == "ru" else "ru"
    rows = [
        [
            InlineKeyboardButton(
                text=_("🌐 Language: {language}").format(language=language_name(locale)),
                callback_data=SettingsCb(action="lang", value=other).pack(),
            )
        ]
    ]
    if linked:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🚪 Unlink my account"),
                    callback_data=SettingsCb(action="unlink").pack(),
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


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
