"""/settings: language and unlinking. Every screen edits the message in place."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InaccessibleMessage, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot import keyboards as kb
from bot import render
from bot.callbacks import SettingsCb
from core.models import Viewer
from core.services.linking import LinkingService
from core.services.preferences import FLAGS, Preferences, PreferencesService


def create_router() -> Router:
    router = Router(name="settings")
    router.message.register(cmd_settings, Command("settings"))
    router.message.register(cmd_unlink, Command("unlink"))
    router.callback_query.register(on_home, SettingsCb.filter(F.action == "home"))
    router.callback_query.register(on_lang, SettingsCb.filter(F.action == "lang"))
    router.callback_query.register(on_flag, SettingsCb.filter(F.action == "flag"))
    router.callback_query.register(on_unlink, SettingsCb.filter(F.action == "unlink"))
    router.callback_query.register(on_unlink_yes, SettingsCb.filter(F.action == "unlink_yes"))
    return router


def home_text(viewer: Viewer, locale: str, prefs: Preferences) -> str:
    lines = [_("Settings"), ""]
    lines.append(_("Language: {language}").format(language=kb.language_name(locale)))
    if viewer.is_linked:
        lines.append(_("Homework set for tomorrow: {state} — a message when a task for tomorrow"
                       " is added or changed.").format(state=kb.on_off(prefs.push_homework)))
        lines.append(_("Cancelled lessons: {state} — a message when a lesson today or tomorrow"
                       " is cancelled.").format(state=kb.on_off(prefs.push_timetable)))
        lines.append(_("Grades and dots are always sent."))
        lines.append("")
        lines.append(_("Linked children:"))
        lines.append(render.children_list(viewer.children))
    else:
        lines.append(_("Your account is not linked to any child. Send /start to link it."))
    return "\n".join(lines)


async def _home(viewer: Viewer, locale: str, preferences: PreferencesService):
    prefs = await preferences.get(viewer.telegram_id)
    return home_text(viewer, locale, prefs), kb.settings_home(locale, viewer.is_linked, prefs)


async def cmd_settings(
    message: Message, viewer: Viewer, i18n: I18n, preferences: PreferencesService
) -> None:
    text, markup = await _home(viewer, i18n.current_locale, preferences)
    await message.answer(text, reply_markup=markup)


async def cmd_unlink(message: Message) -> None:
    await message.answer(unlink_question(), reply_markup=kb.confirm_unlink())


def unlink_question() -> str:
    return _(
        "Unlink your account? I will forget your phone number and settings and stop sending"
        " you news about the children. You can link again any time with /start."
    )


async def _edit(callback: CallbackQuery, text: str, markup) -> None:
    if callback.message is not None and not isinstance(callback.message, InaccessibleMessage):
        await callback.message.edit_text(text, reply_markup=markup)
    await callback.answer()


async def on_home(
    callback: CallbackQuery, viewer: Viewer, i18n: I18n, preferences: PreferencesService
) -> None:
    await _edit(callback, *await _home(viewer, i18n.current_locale, preferences))


async def on_flag(
    callback: CallbackQuery, callback_data: SettingsCb, viewer: Viewer, i18n: I18n,
    preferences: PreferencesService,
) -> None:
    if callback_data.value not in FLAGS or not viewer.is_linked:
        await callback.answer()
        return
    current = await preferences.get(viewer.telegram_id)
    await preferences.set_flag(viewer.telegram_id, callback_data.value,
                               not getattr(current, callback_data.value))
    await _edit(callback, *await _home(viewer, i18n.current_locale, preferences))


async def on_lang(
    callback: CallbackQuery, callback_data: SettingsCb, viewer: Viewer, i18n: I18n,
    linking: LinkingService, preferences: PreferencesService,
) -> None:
    locale = callback_data.value if callback_data.value in i18n.available_locales else None
    if locale is None:
        await callback.answer()
        return
    if viewer.account is None and callback.message is not None:
        await linking.touch(viewer.telegram_id, callback.message.chat.id, None)
    await linking.set_locale(viewer.telegram_id, locale)
    with i18n.use_locale(locale):
        await _edit(callback, *await _home(viewer, locale, preferences))


async def on_unlink(callback: CallbackQuery) -> None:
    await _edit(callback, unlink_question(), kb.confirm_unlink())


async def on_unlink_yes(
    callback: CallbackQuery, viewer: Viewer, linking: LinkingService, state: FSMContext
) -> None:
    await state.clear()
    await linking.unlink(viewer.telegram_id)
    await _edit(
        callback,
        _("Your account is unlinked and its data deleted. Send /start to link again."),
        None,
    )
