"""Shared filters."""

from aiogram import F

# Text that is not a command (messages without text pass too): a command typed in the middle of
# a conversation goes to its own handler instead of being taken for an answer.
NOT_COMMAND = ~F.text.startswith("/")
