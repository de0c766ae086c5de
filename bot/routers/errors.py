"""Domain errors from the core, worded for the user."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent

from bot import render
from bot.i18n import gettext as _
from core.errors import (
    AccessDenied,
    CodeEntryLocked,
    ContactNotOwn,
    DomainError,
    InvitationInvalid,
    LinkCodeExpired,
    LinkCodeInvalid,
    NameInvalid,
    NoticeNotCancellable,
    NotLinked,
    PhoneInvalid,
    PhoneNotFound,
    SelfInvitation,
    TooManyTrusted,
)

log = logging.getLogger(__name__)


def create_router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_domain_error, ExceptionTypeFilter(DomainError))
    router.errors.register(on_unexpected)
    return router


def describe(error: DomainError, tz: ZoneInfo) -> str:
    match error:
        case ContactNotOwn():
            return _(
                "This is not your own contact. To link your account, share your own number"
                " with the «Share my phone number» button — a forwarded or typed contact card"
                " cannot be used."
            )
        case PhoneInvalid():
            return _("This does not look like a Russian mobile number.")
        case PhoneNotFound():
            return _(
                "This number is not in the school's records. Ask the class teacher to record"
                " exactly this number for you in the e-diary, or link with the code from the"
                " school: press «🔑 I have a code»."
            )
        case LinkCodeInvalid():
            return _(
                "This code does not work: check it and try again. Codes can be used only once."
            )
        case LinkCodeExpired():
            return _("This code has expired. Ask the school for a new one.")
        case CodeEntryLocked():
            return _(
                "Too many wrong codes. Code entry is locked until {time}; you can still link"
                " by sharing your phone number."
            ).format(time=render.moment(error.until, tz, "time"))
        case NotLinked():
            return _("Your account is not linked yet. Send /start to link it.")
        case AccessDenied():
            return _("This is not available to you.")
        case InvitationInvalid():
            return _("This invitation is no longer valid, or it was meant for another phone"
                     " number. Ask the parent to invite you again.")
        case TooManyTrusted():
            return _("A child can have at most {limit} trusted persons.").format(
                limit=error.data.get("limit", 10))
        case SelfInvitation():
            return _("This is your own number: you already see your children.")
        case NameInvalid():
            return _("Please send just the surname in letters, or /cancel.")
        case NoticeNotCancellable():
            return _("This notice cannot be cancelled: it has already begun or was cancelled.")
    return _("Something went wrong. Please try again.")


async def _reply(event: ErrorEvent, text: str) -> None:
    update = event.update
    if update.message is not None:
        await update.message.answer(text)
    elif update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)


async def on_domain_error(event: ErrorEvent, tz: ZoneInfo) -> None:
    assert isinstance(event.exception, DomainError)
    await _reply(event, describe(event.exception, tz))


async def on_unexpected(event: ErrorEvent) -> None:
    log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
    await _reply(event, _("Something went wrong on our side. Please try again a bit later."))
