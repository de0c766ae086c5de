"""/teacher: a parent writes to the child's class teacher; the teacher answers with «Reply».

Everything goes through the bot: neither side sees the other's phone number or username. The
ids in the buttons (a child, a message, a thread) are checked against the presser in the core
on every use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import render
from bot.callbacks import TeacherCb
from bot.filters import NOT_COMMAND
from bot.i18n import gettext as _
from bot.i18n import ngettext
from bot.middlewares import RememberScreen
from bot.notify import relation_name
from bot.states import TeacherStates as S
from core.clock import Clock
from core.errors import MessageTooLong, NoClassTeacher, TeacherNotConnected
from core.models import Child, Role, Viewer
from core.services.access import AccessService
from core.services.conversations import ConversationService, Thread
from core.services.teachers import seats

PREVIEW = 300  # characters of each message shown in a history


def create_router() -> Router:
    router = Router(name="teacher")
    router.message.register(cmd_teacher, Command("teacher"))
    router.callback_query.middleware(RememberScreen())
    cb = router.callback_query.register
    cb(on_kid, TeacherCb.filter(F.a == "kid"))
    cb(on_reply, TeacherCb.filter(F.a == "re"))
    cb(on_history, TeacherCb.filter(F.a == "hist"))
    cb(on_mute, TeacherCb.filter(F.a.in_({"mute", "unmute"})))
    cb(on_inbox, TeacherCb.filter(F.a == "inbox"))
    # Telegram's own «Reply» to a conversation's message answers it, as the button does.
    router.message.register(on_native_reply, StateFilter(None), F.reply_to_message,
                            F.text | F.photo, NOT_COMMAND, _replied)
    router.message.register(on_text, StateFilter(S.text), F.text, NOT_COMMAND)
    router.message.register(on_photo, StateFilter(S.text), F.photo)
    router.message.register(on_other, StateFilter(S.text), NOT_COMMAND)
    return router


def _btn(text: str, action: str, value: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=TeacherCb(a=action, i=value).pack())


def _kids(viewer: Viewer) -> list[Child]:
    return [c for c in viewer.children if c.role is Role.GUARDIAN]


def when(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    """«today at 08:00», «tomorrow at 08:00», «on Monday, November 30, at 08:00»."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    at = render.moment(moment, tz, "time")
    if local.date() == today:
        return _("today at {time}").format(time=at)
    if local.date() == today + timedelta(days=1):
        return _("tomorrow at {time}").format(time=at)
    return _("on {day} at {time}").format(day=render.for_day(local.date()), time=at)


# -- the parent -----------------------------------------------------------------------------


async def cmd_teacher(message: Message, viewer: Viewer, conversations: ConversationService,
                      state: FSMContext) -> None:
    await state.clear()
    if await seats(conversations.db, viewer.telegram_id):
        text, markup = await _inbox(viewer, conversations)
        await message.answer(text, reply_markup=markup)
        return
    kids = _kids(viewer)
    if not kids:
        await message.answer(_("Your account is not linked yet. Send /start to link it.")
                             if not viewer.is_linked else
                             _("Only a parent can write to the class teacher."))
        return
    if len(kids) == 1:
        await _prompt(message, viewer, kids[0], conversations, state)
        return
    await message.answer(_("Whose class teacher do you want to write to?"),
                         reply_markup=_choice(kids))


def _choice(kids: list[Child]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [_btn(render.child_line(c), "kid", c.id)] for c in kids])


async def _prompt(message: Message, viewer: Viewer, child: Child,
                  conversations: ConversationService, state: FSMContext) -> None:
    try:
        teacher, thread = await conversations.class_teacher(viewer, child.id)
    except NoClassTeacher:
        await message.answer(_("The school has not named a class teacher for {class_name} in"
                               " the bot yet.").format(class_name=child.class_name))
        return
    except TeacherNotConnected:
        await message.answer(_("The class teacher of {class_name} has not joined the bot yet."
                               " Please try again later.").format(class_name=child.class_name))
        return
    await state.set_state(S.text)
    await state.update_data(kid=child.id, re=None, side="parent")
    text = "\n".join([
        _("✉️ A message to the class teacher {teacher} about {child}.").format(
            teacher=teacher.full, child=render.child_line(child)),
        _("Write it in one message, or send a photo with a caption (a doctor's note, for"
          " example). /cancel to stop."),
    ])
    markup = (InlineKeyboardMarkup(inline_keyboard=[[_btn(_("📜 History"), "hist", thread)]])
              if thread else None)
    await message.answer(text, reply_markup=markup)


async def on_kid(callback: CallbackQuery, callback_data: TeacherCb, viewer: Viewer,
                 conversations: ConversationService, state: FSMContext) -> None:
    assert callback.message is not None
    kids = _kids(viewer)
    if callback_data.i == 0:  # a teacher who is a parent too: choose the child
        await callback.answer()
        if not kids:
            await callback.message.answer(_("Only a parent can write to the class teacher."))
        else:
            await callback.message.answer(_("Whose class teacher do you want to write to?"),
                                          reply_markup=_choice(kids))
        return
    child = AccessService.require_guardian(viewer, callback_data.i)  # a forged id stops here
    await callback.answer()
    await _prompt(callback.message, viewer, child, conversations, state)  # type: ignore[arg-type]


# -- either side ----------------------------------------------------------------------------


async def on_reply(callback: CallbackQuery, callback_data: TeacherCb, viewer: Viewer,
                   conversations: ConversationService, state: FSMContext) -> None:
    assert callback.message is not None
    thread = await conversations.reply_target(viewer, callback_data.i)
    await state.set_state(S.text)
    await state.update_data(kid=thread.student_id, re=callback_data.i, side=thread.side)
    if thread.side == "teacher":
        head = _("↩️ Your answer to {parent} about {child}, {class_name}.").format(
            parent=_parent(thread), child=thread.child.short, class_name=thread.class_name)
    else:
        head = _("↩️ Your answer to the class teacher {teacher} about {child}.").format(
            teacher=thread.teacher.full, child=thread.child.short)
    await callback.answer()
    await callback.message.answer("\n".join([head, _(
        "Write it in one message, or send a photo with a caption. /cancel to stop.")]))


def _parent(thread: Thread) -> str:
    name = thread.parent.full if thread.parent else _("a parent")
    return f"{name} ({relation_name(thread.relation)})" if thread.relation else name


async def _replied(message: Message, conversations: ConversationService) -> dict | bool:
    assert message.reply_to_message is not None and message.from_user is not None
    found = await conversations.replied(message.from_user.id,
                                        message.reply_to_message.message_id)
    return {"replied": found} if found is not None else False


async def on_native_reply(message: Message, replied: int, viewer: Viewer,
                          conversations: ConversationService, state: FSMContext, tz: ZoneInfo,
                          clock: Clock) -> None:
    thread = await conversations.reply_target(viewer, replied)
    await state.set_state(S.text)  # a text too long may be sent again, shortened
    await state.update_data(kid=thread.student_id, re=replied, side=thread.side)
    text = message.caption or "" if message.photo else message.text or ""
    await _send(message, viewer, conversations, state, tz, clock, text,
                message.photo[-1].file_id if message.photo else None)


async def on_text(message: Message, viewer: Viewer, conversations: ConversationService,
                  state: FSMContext, tz: ZoneInfo, clock: Clock) -> None:
    await _send(message, viewer, conversations, state, tz, clock, message.text or "", None)


async def on_photo(message: Message, viewer: Viewer, conversations: ConversationService,
                   state: FSMContext, tz: ZoneInfo, clock: Clock) -> None:
    assert message.photo
    await _send(message, viewer, conversations, state, tz, clock, message.caption or "",
                message.photo[-1].file_id)


async def on_other(message: Message) -> None:
    await message.answer(_("Please send text or a photo with a caption, or /cancel."))


async def _send(message: Message, viewer: Viewer, conversations: ConversationService,
                state: FSMContext, tz: ZoneInfo, clock: Clock, text: str,
                photo: str | None) -> None:
    data = await state.get_data()
    try:
        if data.get("re"):
            posted = await conversations.answer(viewer, data["re"], text, photo,
                                                message.message_id)
        else:
            posted = await conversations.write_to_teacher(viewer, data["kid"], text, photo,
                                                          message.message_id)
    except MessageTooLong as exc:
        await message.answer(ngettext(
            "The message is {length} character long; at most {limit} fit. Please shorten it"
            " and send again, or /cancel.",
            "The message is {length} characters long; at most {limit} fit. Please shorten it"
            " and send again, or /cancel.", exc.length).format(length=exc.length,
                                                             limit=exc.limit))
        return
    except (NoClassTeacher, TeacherNotConnected):
        await state.clear()
        await message.answer(_("The class teacher cannot receive messages in the bot now."
                               " Please try again later."))
        return
    await state.clear()
    if data.get("side") == "teacher":
        await message.answer(_("✅ Your answer has been sent."))
    elif posted.deliver_at is not None:
        await message.answer(_("✅ Message saved. It is outside the teacher's working hours"
                               " now: we will deliver it {when}.").format(
            when=when(posted.deliver_at, clock.now(), tz)))
    else:
        await message.answer(_("✅ Message sent to the class teacher."))


async def on_history(callback: CallbackQuery, callback_data: TeacherCb, viewer: Viewer,
                     conversations: ConversationService, tz: ZoneInfo) -> None:
    assert callback.message is not None
    thread, entries = await conversations.history(viewer, callback_data.i)
    teacher = thread.side == "teacher"
    lines = [_("📜 {child}, {class_name} · class teacher {teacher}").format(
        child=thread.child.short, class_name=thread.class_name, teacher=thread.teacher.full)]
    if teacher:
        lines.append(_("Parent: {parent}").format(parent=_parent(thread)))
        if thread.muted:
            lines.append(_("🔕 Muted: new messages are kept here without a notification."))
    lines.append("")
    if not entries:
        lines.append(_("No messages yet."))
    for e in entries:
        who = _("Parent") if e.author == "parent" else _("Teacher")
        body = e.text if len(e.text) <= PREVIEW else e.text[:PREVIEW].rstrip() + "…"
        if e.photo:
            body = ("📷 " + body).strip()
        lines.append(f"{render.moment(e.at, tz, 'short')} · {who}: {body}")
    rows = []
    theirs = [e for e in entries if e.author != thread.side]
    if theirs:
        rows.append([_btn(_("↩️ Reply"), "re", theirs[-1].id)])
    elif not teacher:
        rows.append([_btn(_("✉️ Write"), "kid", thread.student_id)])
    if teacher:
        rows.append([_btn(_("🔔 Unmute"), "unmute", thread.id) if thread.muted
                     else _btn(_("🔕 Mute"), "mute", thread.id)])
    await callback.answer()
    await callback.message.answer("\n".join(lines),
                                  reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def on_mute(callback: CallbackQuery, callback_data: TeacherCb, viewer: Viewer,
                  conversations: ConversationService) -> None:
    muted = callback_data.a == "mute"
    thread = await conversations.set_muted(viewer, callback_data.i, muted)
    if muted:
        await callback.answer(_("🔕 Muted: new messages about {child} will be kept in the history"
                                " without a notification.").format(child=thread.child.short),
                              show_alert=True)
    else:
        await callback.answer(_("🔔 Notifications about {child} are on again.").format(
            child=thread.child.short), show_alert=True)


# -- the teacher ----------------------------------------------------------------------------


async def _inbox(viewer: Viewer, conversations: ConversationService
                 ) -> tuple[str, InlineKeyboardMarkup]:
    mine = await seats(conversations.db, viewer.telegram_id)
    classes = ", ".join(dict.fromkeys(s.class_name for s in mine))
    threads = await conversations.inbox(viewer.telegram_id)
    lines = [_("📥 Messages from the parents of {classes}.").format(classes=classes)]
    if threads:
        lines.append(_("Recent conversations:"))
    else:
        lines.append(_("No messages yet. Parents write with /teacher; their messages come"
                       " here."))
    rows = [[_btn(f"{child}, {class_name}", "hist", tid)] for tid, child, class_name in threads]
    if _kids(viewer):
        rows.append([_btn(_("✉️ Write to my child's class teacher"), "kid", 0)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def on_inbox(callback: CallbackQuery, viewer: Viewer,
                   conversations: ConversationService) -> None:
    assert callback.message is not None
    text, markup = await _inbox(viewer, conversations)
    await callback.answer()
    await callback.message.answer(text, reply_markup=markup)
