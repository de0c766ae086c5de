"""/settings: pushes per kind, the digest, quiet hours, which children, language, unlinking.
Every screen edits the message in place and explains the current values."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot import keyboards as kb
from bot import render
from bot.callbacks import SettingsCb
from bot.i18n import I18n
from bot.i18n import gettext as _
from bot.ui import edit_in_place
from core.clock import Clock
from core.models import Role, Scope, Viewer
from core.pushes import SWITCH, SWITCHES, Section, reaches_students
from core.services.linking import LinkingService
from core.services.preferences import (
    DIGEST_TIMES,
    FLAGS,
    QUIET_CHOICES,
    Preferences,
    PreferencesService,
)

# The switches of instant messages, in their order (core/pushes.py).
PUSH_FLAGS = tuple(s.name for s in SWITCHES if s.section is Section.PUSHES)


def _scopes(viewer: Viewer) -> set[Scope]:
    return set().union(*(c.scopes for c in viewer.children)) if viewer.children else set()


def visible_flags(viewer: Viewer) -> list[str]:
    """The push switches of what this viewer may see (a trusted person sees only some) and
    may be sent (a student is never sent absences)."""
    scopes = _scopes(viewer)
    student = bool(viewer.children) and all(c.role is Role.STUDENT for c in viewer.children)
    return [f for f in PUSH_FLAGS if SWITCH[f].scope in scopes
            and (not student or reaches_students(f))]


def has_digest(viewer: Viewer) -> bool:
    return Scope.DIGEST in _scopes(viewer)


def has_week_chart(viewer: Viewer) -> bool:
    """The weekly chart shows marks: for a viewer who gets the digest of a child whose marks
    they may see."""
    return any(Scope.DIGEST in c.scopes and Scope.GRADES in c.scopes for c in viewer.children)


def digest_flags(viewer: Viewer) -> list[str]:
    if not has_digest(viewer):
        return []
    return ["digest_enabled", "digest_empty"] + (["digest_chart"] if has_week_chart(viewer)
                                                 else [])


def chooses_children(viewer: Viewer) -> bool:
    """A student has only their own diary: there are no children to choose."""
    return any(c.role is not Role.STUDENT for c in viewer.children)


def switch_labels() -> dict[str, str]:
    """Every switch of core/pushes.py as the user reads it (a test holds it whole)."""
    return {
        "push_grades": _("grades"),
        "push_dots": _("dots"),
        "push_attendance": _("attendance"),
        "push_homework": _("homework set for tomorrow"),
        "push_timetable": _("cancelled lessons"),
        "push_replacements": _("teacher replacements"),
        "push_announcements": _("school announcements"),
        "digest_enabled": _("Send the daily digest"),
        "digest_empty": _("Also when there is nothing new"),
        "digest_chart": _("Chart of the week on Fridays"),
    }


def create_router() -> Router:
    router = Router(name="settings")
    router.message.register(cmd_settings, Command("settings"))
    router.message.register(cmd_unlink, Command("unlink"))
    cb = router.callback_query.register
    cb(on_home, SettingsCb.filter(F.action == "home"))
    cb(on_screen, SettingsCb.filter(F.action == "screen"))
    cb(on_lang, SettingsCb.filter(F.action == "lang"))
    cb(on_flag, SettingsCb.filter(F.action == "flag"))
    cb(on_digest_time, SettingsCb.filter(F.action == "dtime"))
    cb(on_quiet, SettingsCb.filter(F.action == "quiet"))
    cb(on_kid, SettingsCb.filter(F.action == "kid"))
    cb(on_unlink, SettingsCb.filter(F.action == "unlink"))
    cb(on_unlink_yes, SettingsCb.filter(F.action == "unlink_yes"))
    return router


def _btn(text: str, action: str, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text,
                                callback_data=SettingsCb(action=action, value=value).pack())


def _back() -> list[InlineKeyboardButton]:
    return [_btn(_("« Back"), "home")]


def quiet_line(window: str) -> str:
    if not window:
        return _("🌙 Quiet hours: none — messages come at once.")
    return _("🌙 Quiet hours: {window} — messages wait until they end and come"
             " together.").format(window=quiet_text(window))


def quiet_text(value: str) -> str:
    return value.replace("-", "–") if value else _("none")


def home_text(viewer: Viewer, locale: str, prefs: Preferences,
              preferences: PreferencesService) -> str:
    lines = [_("⚙️ Settings"), ""]
    lines.append(_("🌐 Language: {language}").format(language=kb.language_name(locale)))
    if viewer.is_linked:
        names = switch_labels()
        pushes = ", ".join(f"{names[f]} — {kb.on_off(getattr(prefs, f))}"
                           for f in visible_flags(viewer))
        # No full stop of our own: the list may end in an abbreviation («вкл.»).
        lines.append(_("🔔 Instant messages: {list}").format(list=pushes))
        if not has_digest(viewer):
            pass
        elif prefs.digest_enabled:
            empty = (_("also when there is nothing new") if prefs.digest_empty
                     else _("not sent when there is nothing new"))
            lines.append(_("📰 Daily digest: at {time}, {empty}.").format(
                time=preferences.digest_time_of(prefs), empty=empty))
            if prefs.digest_chart and has_week_chart(viewer):
                lines.append(_("📈 On Fridays with a chart of the week."))
        else:
            lines.append(_("📰 Daily digest: off."))
        lines.append(quiet_line(preferences.quiet_of(prefs)))
        muted = [c.name.short for c in viewer.children if c.id in prefs.muted_children]
        if muted and chooses_children(viewer):
            lines.append(_("👥 No messages about: {names}.").format(names=", ".join(muted)))
        lines.append("")
        lines.append(render.whose(viewer.children))
    else:
        lines.append(_("Your account is not linked to any child. Send /start to link it."))
    return "\n".join(lines)


def home_keyboard(locale: str, viewer: Viewer) -> InlineKeyboardMarkup:
    other = "en" if locale == "ru" else "ru"
    linked = viewer.is_linked
    rows = []
    if linked:
        first = [_btn(_("🔔 Messages"), "screen", "notif")]
        if has_digest(viewer):
            first.append(_btn(_("📰 Digest"), "screen", "digest"))
        second = [_btn(_("🌙 Quiet hours"), "screen", "quiet")]
        if chooses_children(viewer):
            second.append(_btn(_("👥 Children"), "screen", "kids"))
        rows += [first, second]
    rows.append([_btn(_("🌐 Language: {language}").format(language=kb.language_name(locale)),
                      "lang", other)])
    if linked:
        rows.append([_btn(_("🚪 Unlink my account"), "unlink")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def screen(name: str, viewer: Viewer, prefs: Preferences,
           preferences: PreferencesService) -> tuple[str, InlineKeyboardMarkup]:
    def mark(on: bool) -> str:
        return "✅ " if on else "▫️ "

    if name == "notif":
        names = switch_labels()
        rows = [[_btn(mark(getattr(prefs, f)) + render.capitalized(names[f]), "flag", f)]
                for f in visible_flags(viewer)]
        text = _("🔔 Which messages come at once? Tap to switch. Grades, dots and attendance"
                 " are on by default; homework for tomorrow is off.")
    elif name == "digest":
        current = preferences.digest_time_of(prefs)
        names = switch_labels()
        rows = [[_btn(mark(prefs.digest_enabled) + names["digest_enabled"], "flag",
                      "digest_enabled")],
                [_btn(("● " if t == current else "") + t, "dtime", t.replace(":", ""))
                 for t in DIGEST_TIMES],
                [_btn(mark(prefs.digest_empty) + names["digest_empty"], "flag",
                      "digest_empty")]]
        text = _("📰 The daily digest: today's grades, absences, open dots and the next school"
                 " day's timetable and homework, at {time}. On Fridays it also asks you to sign"
                 " the week.").format(time=current)
        if has_week_chart(viewer):
            rows.append([_btn(mark(prefs.digest_chart) + names["digest_chart"],
                              "flag", "digest_chart")])
            text += "\n" + _("📈 On Fridays the digest can be followed by a chart of the"
                             " week: each subject's average and how the week's marks moved it.")
    elif name == "quiet":
        current = preferences.quiet_of(prefs)
        rows = [[_btn(("● " if q == current else "") + quiet_text(q), "quiet", str(n))]
                for n, q in enumerate(QUIET_CHOICES)]
        if current not in QUIET_CHOICES:
            rows.insert(0, [_btn("● " + quiet_text(current), "noop")])
        text = _("🌙 Quiet hours: messages that arrive then are held and come together when"
                 " they end. Nothing is lost.")
    else:
        rows = [[_btn(("🔕 " if c.id in prefs.muted_children else "🔔 ") + c.name.short, "kid",
                      str(c.id))] for c in viewer.children]
        text = _("👥 Messages about which children? Tap to switch. The digest follows the same"
                 " choice.")
    rows.append(_back())
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _home(viewer: Viewer, locale: str, preferences: PreferencesService):
    prefs = await preferences.get(viewer.telegram_id)
    return (home_text(viewer, locale, prefs, preferences),
            home_keyboard(locale, viewer))


async def _edit(callback: CallbackQuery, text: str, markup) -> None:
    await edit_in_place(callback, text, markup, parse_mode=None)


async def cmd_settings(
    message: Message, viewer: Viewer, i18n: I18n, preferences: PreferencesService
) -> None:
    text, markup = await _home(viewer, i18n.current_locale, preferences)
    await message.answer(text, reply_markup=markup)


async def on_home(
    callback: CallbackQuery, viewer: Viewer, i18n: I18n, preferences: PreferencesService
) -> None:
    await _edit(callback, *await _home(viewer, i18n.current_locale, preferences))


async def _screen(callback: CallbackQuery, name: str, viewer: Viewer,
                  preferences: PreferencesService) -> None:
    allowed = {"notif": True, "quiet": True, "digest": has_digest(viewer),
               "kids": chooses_children(viewer)}
    if not viewer.is_linked or not allowed.get(name):
        await callback.answer()
        return
    prefs = await preferences.get(viewer.telegram_id)
    await _edit(callback, *screen(name, viewer, prefs, preferences))


async def on_screen(callback: CallbackQuery, callback_data: SettingsCb, viewer: Viewer,
                    preferences: PreferencesService) -> None:
    await _screen(callback, callback_data.value, viewer, preferences)


async def on_flag(callback: CallbackQuery, callback_data: SettingsCb, viewer: Viewer,
                  preferences: PreferencesService) -> None:
    name = callback_data.value
    visible = visible_flags(viewer) + digest_flags(viewer)
    if name not in FLAGS or name not in visible:
        await callback.answer()
        return
    await preferences.toggle_flag(viewer.telegram_id, name)
    await _screen(callback, "digest" if name.startswith("digest") else "notif", viewer,
                  preferences)


async def on_digest_time(callback: CallbackQuery, callback_data: SettingsCb, viewer: Viewer,
                         preferences: PreferencesService) -> None:
    chosen = f"{callback_data.value[:2]}:{callback_data.value[2:]}"  # '2100' → '21:00'
    if chosen not in DIGEST_TIMES:
        await callback.answer()
        return
    await preferences.set_digest_time(viewer.telegram_id, chosen)
    await _screen(callback, "digest", viewer, preferences)


async def on_quiet(callback: CallbackQuery, callback_data: SettingsCb, viewer: Viewer,
                   preferences: PreferencesService, clock: Clock, tz: ZoneInfo) -> None:
    index = int(callback_data.value) if callback_data.value.isdigit() else -1
    if not 0 <= index < len(QUIET_CHOICES):
        await callback.answer()
        return
    await preferences.set_quiet_hours(viewer.telegram_id, QUIET_CHOICES[index], clock.now(), tz)
    await _screen(callback, "quiet", viewer, preferences)


async def on_kid(callback: CallbackQuery, callback_data: SettingsCb, viewer: Viewer,
                 preferences: PreferencesService) -> None:
    child = viewer.child(int(callback_data.value)) if callback_data.value.isdigit() else None
    if child is None:
        await callback.answer(_("This is not available to you."), show_alert=True)
        return
    await preferences.toggle_child(viewer.telegram_id, child.id)
    await _screen(callback, "kids", viewer, preferences)


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


def unlink_question() -> str:
    return _(
        "Unlink your account? I will forget your phone number and settings and stop sending"
        " you news about the children. You can link again any time with /start."
    )


async def cmd_unlink(message: Message) -> None:
    await message.answer(unlink_question(), reply_markup=kb.confirm_unlink())


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
