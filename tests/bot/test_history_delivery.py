"""A student's history and the news in it, as the family's chats get them.

In a student's first journal data and the `HISTORY_WINDOW_MINUTES` after it, what is recent (set,
or without `set_at` dated, within `RELEVANCE_DAYS`) is news and reaches the family; older facts
are history and never do. The news of that hour waits for the window's end, so a history posted
in batches reaches each recipient as one message.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

from core.importers.journal import parse_journal
from tests.support.delivery import worker
from tests.support.school import ANNA_PHONE, IVAN_PHONE, SERGEY_PHONE

ANNA, IVAN, SERGEY = 5001, 5002, 5003
MARIA = "S-1002"  # Anna's daughter, 5А


async def family(school):
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    await school.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    await school.linking.link_contact(SERGEY, SERGEY, SERGEY, SERGEY_PHONE)
    return school


def grade(n: int, day: date, value: int = 5, student: str = "S-1001",
          subject: str = "Алгебра", **extra) -> str:
    return json.dumps({"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": student,
                       "subject": subject, "date": day.isoformat(), "value": value, "weight": 1,
                       **extra}, ensure_ascii=False)


async def post(services, lines: list[str], **kw):
    summary, _ = await services.journal.import_journal(parse_journal(lines, "api"), "api", **kw)
    return summary


def term(student: str, first: int) -> list[str]:
    """Two marks a school day from 1 September to Monday 23 November (today)."""
    lines, day, n = [], date(2026, 9, 1), first
    subjects = ("Алгебра", "Физика")
    while day <= date(2026, 11, 23):
        if day.weekday() < 5:
            for subject in subjects:
                lines.append(grade(n, day, 3 + n % 3, student, subject))
                n += 1
        day += timedelta(days=1)
    return lines


async def test_todays_mark_in_a_students_first_import_reaches_the_family(school, api, bot):
    """The journal posts live on its first morning, with no history loaded before."""
    s = await family(school)
    summary = await post(s, [grade(1, date(2026, 11, 23), 5, work="Самостоятельная работа"),
                             grade(2, date(2026, 10, 14), 3)])
    assert summary.pushes == 3  # today's mark, to Anna, Sergey and Ivan; October's is history
    await worker(bot, s).run_until_empty()
    assert api.messages_to(ANNA) == []  # the window of Ivan's history is still open

    s.clock.moment += timedelta(minutes=60)
    stats = await worker(bot, s).run_until_empty()
    assert stats.messages == 3
    text = api.messages_to(ANNA)[0].text
    assert text.startswith("🔔 Новая оценка 5 · Алгебра\nИван · 23 ноября · вес 1 · "
                           "Самостоятельная работа")
    assert "14 октября" not in text and "3 ·" not in text
    assert [m.text for m in api.messages_to(SERGEY)] == [text]
    assert len(api.messages_to(IVAN)) == 1

    # From now on Ivan's marks are news at once.
    await post(s, [grade(3, date(2026, 11, 23), 4)])
    await worker(bot, s).run_until_empty()
    assert api.messages_to(ANNA)[-1].text.startswith("🔔 Новая оценка 4 · Алгебра")
    assert len(api.messages_to(ANNA)) == 2


async def test_a_terms_history_posted_in_batches_is_one_message_about_the_recent_days(
        school, api, bot):
    """A new deployment: the journal posts the whole term of two children in batches of 50,
    in no particular order, a few minutes apart; senders run all the while."""
    s = await family(school)
    lines = term("S-1001", 1) + term(MARIA, 1000)
    random.Random(7).shuffle(lines)
    # Both children come in the first batch (a deployment posts its classes together).
    lines.sort(key=lambda line: json.loads(line)["grade_id"] not in ("g1", "g1000"))
    batches = [lines[i:i + 50] for i in range(0, len(lines), 50)]
    assert len(batches) >= 5
    for batch in batches:
        await post(s, batch)
        await worker(bot, s).run_until_empty()
        s.clock.moment += timedelta(minutes=3)
    assert api.messages_to(ANNA) == [] and api.messages_to(IVAN) == []

    s.clock.moment += timedelta(minutes=60)
    await worker(bot, s).run_until_empty()
    recent = {"2026-11-20": "20 ноября", "2026-11-23": "23 ноября"}  # Friday and today
    for who, children in ((ANNA, 2), (SERGEY, 1), (IVAN, 1)):
        messages = api.messages_to(who)
        assert len(messages) == 1, who
        text = messages[0].text
        # Two subjects a day, two school days within RELEVANCE_DAYS, for each child.
        assert text.count("🔔 Новая оценка") == 4 * children
        assert all(day in text for day in recent.values())
        assert "19 ноября" not in text and "сентября" not in text and "октября" not in text
    assert "Мария" in api.messages_to(ANNA)[0].text
    assert "Мария" not in api.messages_to(SERGEY)[0].text
    assert api.duplicates() == []
    # Nothing more is ever sent about the term.
    s.clock.moment += timedelta(days=1)
    await worker(bot, s).run_until_empty()
    assert len(api.messages_to(ANNA)) == 1


async def test_children_whose_history_comes_in_batches_minutes_apart_are_one_message(
        school, api, bot):
    """The journal posts class by class: Ivan's 7Б, then ten minutes later Maria's 5А."""
    s = await family(school)
    for lines in (term("S-1001", 1), term(MARIA, 1000)):
        for batch in (lines[:60], lines[60:]):
            await post(s, batch)
            await worker(bot, s).run_until_empty()
            s.clock.moment += timedelta(minutes=5)
    s.clock.moment += timedelta(minutes=40)  # an hour on: Ivan's window is over, Maria's not
    await worker(bot, s).run_until_empty()
    assert api.messages_to(ANNA) == []  # her news of Ivan waits for Maria's
    assert len(api.messages_to(SERGEY)) == 1 and len(api.messages_to(IVAN)) == 1
    s.clock.moment += timedelta(minutes=10)
    await worker(bot, s).run_until_empty()
    [message] = api.messages_to(ANNA)
    assert message.text.count("🔔 Новая оценка") == 8
    assert "Иван" in message.text and "Мария" in message.text


async def test_history_loaded_without_pushes_sends_nothing_and_ends_the_window(
        school, api, bot):
    s = await family(school)
    summary = await post(s, term("S-1001", 1), notify=False)
    assert summary.pushes == 0
    # What comes next is news at once.
    await post(s, [grade(5000, date(2026, 11, 23), 2)])
    await worker(bot, s).run_until_empty()
    assert [m.text.splitlines()[0] for m in api.messages_to(ANNA)] == [
        "🔔 Новая оценка 2 · Алгебра"]
