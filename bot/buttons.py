"""Inline buttons of pushes, without aiogram.

A sender renders pushes and nothing else; importing aiogram for its keyboard types would cost it
about 160 MB. The buttons of pushes are plain values here, sent to the Bot API as JSON; their
callback data is packed exactly as the ``CallbackData`` classes of :mod:`bot.callbacks` pack it
(``prefix:value:value``, the fields in their declared order), which the handlers unpack and check
(a test holds the two together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_CALLBACK = 64  # bytes of callback data Telegram takes


@dataclass(frozen=True)
class Button:
    text: str
    callback_data: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, str]:
        found = {"text": str(self.text)}
        if self.callback_data is not None:
            found["callback_data"] = self.callback_data
        if self.url is not None:
            found["url"] = self.url
        return found


@dataclass(frozen=True)
class Keyboard:
    inline_keyboard: tuple[tuple[Button, ...], ...]

    @classmethod
    def of(cls, rows: list[list[Button]]) -> Keyboard:
        return cls(tuple(tuple(row) for row in rows))

    def to_dict(self) -> dict[str, Any]:
        return {"inline_keyboard": [[b.to_dict() for b in row] for row in self.inline_keyboard]}

    def to_aiogram(self) -> Any:
        """As aiogram's ``InlineKeyboardMarkup``, for a handler that shows a push's buttons."""
        from aiogram.types import InlineKeyboardMarkup

        return InlineKeyboardMarkup.model_validate(self.to_dict())


def pack(prefix: str, *values: str | int | bool | None) -> str:
    """Callback data as aiogram's ``CallbackData.pack`` makes it."""
    parts = [prefix]
    for value in values:
        text = "" if value is None else str(int(value)) if isinstance(value, bool) else str(value)
        if ":" in text:
            raise ValueError(f"':' in callback data value {text!r}")
        parts.append(text)
    data = ":".join(parts)
    if len(data.encode()) > MAX_CALLBACK:
        raise ValueError(f"callback data too long: {data!r}")
    return data


# The pushes' buttons (see InviteCb, SignCb and TeacherCb in bot.callbacks).
def invite(action: str, invitation: int) -> str:
    return pack("iv", action, invitation)


def sign(student_id: int, week_day: int) -> str:
    return pack("sg", student_id, week_day)


def teacher(action: str, item: int = 0) -> str:
    return pack("tc", action, item)
