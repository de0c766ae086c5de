"""Builders of Telegram updates for Dispatcher.feed_update."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from aiogram.types import (
    CallbackQuery,
    Chat,
    Contact,
    Message,
    MessageEntity,
    Update,
    User,
)

# Telegram's date of every message in the tests: fixed, never the wall clock.
MESSAGE_DATE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

_ids = itertools.count(1)


def user(user_id: int, first_name: str = "Анна", language_code: str | None = "ru") -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, language_code=language_code)


def message(
    user_id: int,
    text: str | None = None,
    *,
    contact: Contact | None = None,
    chat_type: str = "private",
    chat_id: int | None = None,
    language_code: str | None = "ru",
) -> Update:
    entities = None
    if text and text.startswith("/"):
        length = len(text.split()[0])
        entities = [MessageEntity(type="bot_command", offset=0, length=length)]
    msg = Message(
        message_id=next(_ids),
        date=MESSAGE_DATE,
        chat=Chat(id=chat_id if chat_id is not None else user_id, type=chat_type,
                  title=None if chat_type == "private" else "Родители 7Б"),
        from_user=user(user_id, language_code=language_code),
        text=text,
        entities=entities,
        contact=contact,
    )
    return Update(update_id=next(_ids), message=msg)


def contact(user_id: int, phone: str, contact_user_id: int | None) -> Update:
    card = Contact(phone_number=phone, first_name="Анна", user_id=contact_user_id)
    return message(user_id, contact=card)


def callback(user_id: int, data: str, message_id: int = 500, language_code: str = "ru") -> Update:
    msg = Message(
        message_id=message_id,
        date=MESSAGE_DATE,
        chat=Chat(id=user_id, type="private"),
        from_user=user(42, "Diary"),
        text="…",
    )
    query = CallbackQuery(
        id=str(next(_ids)),
        from_user=user(user_id, language_code=language_code),
        chat_instance="ci",
        message=msg,
        data=data,
    )
    return Update(update_id=next(_ids), callback_query=query)
