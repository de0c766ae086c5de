"""The command menu, per language (setMyCommands)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats

from bot.config import LOCALES
from bot.i18n import I18n
from bot.i18n import gettext as _


def menu() -> list[BotCommand]:
    return [
        BotCommand(command="start", description=_("Link your account")),
        BotCommand(command="grades", description=_("Grades and averages")),
        BotCommand(command="dots", description=_("Open dots and their deadlines")),
        BotCommand(command="homework", description=_("Homework")),
        BotCommand(command="schedule", description=_("Timetable")),
        BotCommand(command="absence", description=_("Tell the school the child will be away")),
        BotCommand(command="trusted", description=_("Trusted persons")),
        BotCommand(command="teacher", description=_("Write to the class teacher")),
        BotCommand(command="news", description=_("School announcements")),
        BotCommand(command="settings", description=_("Settings")),
        BotCommand(command="help", description=_("What I can do")),
        BotCommand(command="cancel", description=_("Cancel the current action")),
    ]


async def set_commands(bot: Bot, i18n: I18n) -> None:
    scope = BotCommandScopeAllPrivateChats()
    for locale in LOCALES:
        with i18n.context(), i18n.use_locale(locale):
            await bot.set_my_commands(menu(), scope=scope, language_code=locale)
    with i18n.context(), i18n.use_locale(i18n.default_locale):
        await bot.set_my_commands(menu(), scope=scope)
