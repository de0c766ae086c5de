"""/news: the school's announcements for the viewer's children's classes and school, in the
viewer's role (parents, students), pinned ones first, then the newest, five a page."""

from __future__ import annotations

from datetime import date

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import render, ui
from bot.callbacks import NewsCb
from bot.i18n import gettext as _
from core.clock import Clock
from core.errors import AccessDenied, NotLinked
from core.models import Viewer
from core.services.access import AccessService
from core.services.announcements import Announcement, NewsService, reads

PAGE = 5


def create_router() -> Router:
    router = Router(name="news")
    router.message.register(cmd_news, Command("news"))
    router.callback_query.register(on_page, NewsCb.filter())
    return router


def _h(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _item(a: Announcement, today: date, schools: bool) -> list[str]:
    head = [f"<b>{render.day(a.created_at)}</b>"]
    if schools:
        head.append(_h(a.school))
    if a.classes:
        head.append(_h(", ".join(a.classes)))
    if a.audience == "parents":
        head.append(_("for parents"))
    elif a.audience == "students":
        head.append(_("for students"))
    if a.updated:
        head.append(_("updated"))
    lines = [("📌 " if a.pinned(today) else "") + " · ".join(head), _h(a.text)]
    for url, title in a.links:
        lines.append(f"🔗 {_h(title)}: {_h(url)}" if title else f"🔗 {_h(url)}")
    return lines


def news_screen(items: list[Announcement], page: int, today: date, schools: bool
                ) -> tuple[list[str], InlineKeyboardMarkup | None, int]:
    """The page's text (blocks), its buttons, and the page shown (a page past the end shows
    the last one)."""
    pages = max(1, -(-len(items) // PAGE))
    page = min(page, pages - 1)
    blocks = [_("📢 School announcements")]
    if not items:
        blocks.append(_("There are no announcements yet."))
        return blocks, None, 0
    if pages > 1:
        blocks[0] += " · " + _("page {page} of {pages}").format(page=page + 1, pages=pages)
    for a in items[page * PAGE : (page + 1) * PAGE]:
        blocks.append("\n".join(["", *_item(a, today, schools)]))
    row = []
    if page + 1 < pages:
        row.append(InlineKeyboardButton(text=_("‹ Earlier"),
                                        callback_data=NewsCb(p=page + 1).pack()))
    if page > 0:
        row.append(InlineKeyboardButton(text=_("Later ›"),
                                        callback_data=NewsCb(p=page - 1).pack()))
    return blocks, InlineKeyboardMarkup(inline_keyboard=[row]) if row else None, page


async def _screen(viewer: Viewer, page: int, access: AccessService, clock: Clock, tz
                  ) -> tuple[list[str], InlineKeyboardMarkup | None]:
    if not viewer.is_linked:
        raise NotLinked()
    if not any(reads(c, "all") for c in viewer.children):
        raise AccessDenied()  # a trusted person not given the school's news: not «none yet»
    today = clock.now().astimezone(tz).date()
    items = await NewsService(access.db, tz).for_children(viewer.children, today)
    schools = len({c.school for c in viewer.children}) > 1
    blocks, markup, _page = news_screen(items, page, today, schools)
    return blocks, markup


async def cmd_news(message: Message, viewer: Viewer, access: AccessService, clock: Clock,
                   tz) -> None:
    blocks, markup = await _screen(viewer, 0, access, clock, tz)
    await ui.answer(message, blocks, markup)


async def on_page(callback: CallbackQuery, callback_data: NewsCb, viewer: Viewer,
                  access: AccessService, clock: Clock, tz) -> None:
    blocks, markup = await _screen(viewer, callback_data.p, access, clock, tz)
    await ui.edit_in_place(callback, blocks, markup)
