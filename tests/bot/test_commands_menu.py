from __future__ import annotations

from aiogram.methods import SetMyCommands

from bot.commands import set_commands
from bot.i18n import create_i18n
from tests.support.recording import make_bot


async def test_menu_is_set_in_russian_and_english():
    bot, session = make_bot()
    await set_commands(bot, create_i18n("ru"))
    calls = session.of(SetMyCommands)
    by_language = {c.language_code: {cmd.command: cmd.description for cmd in c.commands}
                   for c in calls}
    assert set(by_language) == {"ru", "en", None}
    assert by_language["ru"]["grades"] == "Оценки и средний балл"
    assert by_language["en"]["grades"] == "Grades and averages"
    assert by_language[None] == by_language["ru"]  # DEFAULT_LOCALE=ru for everyone else
    assert list(by_language["ru"]) == [
        "start", "grades", "dots", "homework", "schedule", "absence", "trusted", "teacher",
        "news", "settings", "help", "cancel"]
    assert by_language["ru"]["news"] == "Объявления школы"
    assert by_language["en"]["news"] == "School announcements"
    assert all(c.scope.type == "all_private_chats" for c in calls)


def test_the_scheduler_logs_only_warnings(services):
    import logging
    from types import SimpleNamespace

    from bot.jobs import create_scheduler
    from tests.support.school import TZ

    try:
        create_scheduler(services, SimpleNamespace(tz=TZ))
    except (AttributeError, TypeError):
        pass  # the scheduler's own settings are beside the point here
    assert logging.getLogger("apscheduler.executors.default").getEffectiveLevel() == \
        logging.WARNING
    assert logging.getLogger("apscheduler.scheduler").getEffectiveLevel() == logging.WARNING
