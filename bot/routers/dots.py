"""/dots: open dots of each child, soonest deadline first, with the days left."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import render, ui
from bot.i18n import gettext as _
from core.errors import AccessDenied, NotLinked
from core.models import Scope, Viewer
from core.services.dots import ChildDots, DotsService


def create_router() -> Router:
    router = Router(name="dots")
    router.message.register(cmd_dots, Command("dots"))
    return router


def _h(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def dots_text(children: tuple[ChildDots, ...]) -> list[str]:
    """Lines, a dot's two lines in one, so a long list splits between dots."""
    blocks: list[str] = []
    for entry in children:
        name = f"<b>{_h(render.child_line(entry.child))}</b>"
        lines = [_("📌 Dots — {child}").format(child=name)]
        if not entry.dots:
            lines.append(_("No open dots."))
        for d in entry.dots:
            comment = render.quoted(_h(d.comment)) if d.comment else ""
            what = ": ".join(x for x in (_h(d.work), comment) if x)
            if d.mark is not None:  # a mark that carries the dot
                what = _("mark {mark}").format(mark=f"<b>{_h(d.mark)}</b>") + (
                    f", {what}" if what else "")
            head = f"• <b>{_h(d.subject)}</b>" + (f" — {what}" if what else "")
            left = render.days_left(d.days_left)
            if d.days_left <= 1:
                left = f"<b>{left}</b>"
            lines.append(head + "\n   " + _("set {set_on} · until {expires} · {left}").format(
                set_on=render.day(d.set_on), expires=render.day(d.expires), left=left))
        blocks += ([""] if blocks else []) + lines
    return blocks


async def cmd_dots(message: Message, viewer: Viewer, dots: DotsService) -> None:
    if not any(Scope.GRADES in c.scopes for c in viewer.children):
        raise AccessDenied() if viewer.is_linked else NotLinked()
    await ui.answer(message, dots_text(await dots.open_dots(viewer)))
