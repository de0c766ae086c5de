"""Screens and pushes longer than Telegram's 4,096 characters arrive whole, in several parts."""

from __future__ import annotations

import json
import re
from datetime import date

from aiogram.methods import EditMessageText, SendMessage

from bot.callbacks import DayCb, GradesCb
from bot.i18n import create_i18n
from bot.notify import render_batch
from bot.ui import fit, split_text
from core.importers.journal import parse_journal
from core.services.outbox import OutboxItem
from tests.support import updates as up
from tests.support.recording import TELEGRAM_LIMIT, telegram_length, visible
from tests.support.school import IVAN_PHONE

ANNA, IVAN = 5001, 5002


async def load(services, *events: dict) -> None:
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    summary, _ = await services.journal.import_journal(parse_journal(lines, "j"), "j",
                                                       notify=False)
    assert not summary.problems if hasattr(summary, "problems") else True


def words(n: int, stem: str) -> str:
    """``n`` distinct numbered words, some of them outside the BMP (two UTF-16 units)."""
    return " ".join(f"{stem}{i}" + ("🧪" if i % 7 == 0 else "") for i in range(n))


def shown(session) -> list[str]:
    sent = [c for c in session.calls if isinstance(c, SendMessage | EditMessageText)]
    for c in sent:
        assert telegram_length(visible(c.text, c.parse_mode)) <= TELEGRAM_LIMIT
    return [visible(c.text, c.parse_mode if isinstance(c.parse_mode, str) else None)
            for c in sent]


def assert_whole(parts: list[str], text: str) -> None:
    """Every word of ``text`` arrives, in order, none cut in half."""
    seen = [w.strip("«»") for w in " ".join(parts).split()]
    expected = text.split()
    positions = iter(range(len(seen)))
    for word in expected:
        assert any(seen[i] == word for i in positions), f"{word!r} is missing or cut"


async def test_homework_of_ten_thousand_characters_arrives_whole(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    task = words(1500, "задача")[:10_000].rsplit(" ", 1)[0]
    assert 9_000 < len(task) <= 10_000
    await load(s, {"id": "h1", "type": "homework", "homework_id": "h1", "class": "7Б",
                   "subject": "Алгебра", "due": "2026-11-24", "text": task,
                   "updated_at": "2026-11-20T12:30:00Z"},
               {"id": "h2", "type": "homework", "homework_id": "h2", "class": "7Б",
                "subject": "Физика", "due": "2026-11-24", "text": "§ 12",
                "updated_at": "2026-11-20T12:30:00Z"})
    await tg.feed(up.message(IVAN, "/homework завтра"))
    parts = shown(tg.session)
    assert len(parts) == 3
    assert parts[0].startswith("📚 Домашнее задание на вторник, 24 ноября")
    assert_whole(parts, task)
    assert parts[-1].endswith("• Физика: § 12\n   обязательное · изменено 20 ноября, 15:30")
    sent = tg.session.of(SendMessage)
    assert [m.reply_markup is not None for m in sent] == [False, False, True]

    # Navigation edits the pressed message into the first part and sends the rest.
    tg.session.clear()
    day = date(2026, 11, 24).toordinal()
    await tg.feed(up.callback(IVAN, DayCb(v="h", d=day - 1).pack()))
    await tg.feed(up.callback(IVAN, DayCb(v="h", d=day).pack()))
    edits = tg.session.of(EditMessageText)
    assert len(edits) == 2 and edits[-1].reply_markup is None
    parts = shown(tg.session)[1:]
    assert len(parts) == 3
    assert_whole(parts, task)
    assert tg.session.of(SendMessage)[-1].reply_markup is not None


async def test_a_subject_with_four_long_comments_shows_them_all(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    comments = [words(400, f"к{n}-")[:2000].rsplit(" ", 1)[0] for n in range(4)]
    await load(s, {"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
                   "start": "2026-11-05", "end": "2026-12-28"},
               *[{"id": f"e{n}", "type": "grade", "grade_id": f"g{n}", "student_id": "S-1001",
                  "subject": "Алгебра", "date": f"2026-11-1{n}", "value": 5, "weight": 1,
                  "comment": c, "teacher": "Иванова М. П."} for n, c in enumerate(comments)])
    await tg.feed(up.message(IVAN, "/grades"))
    ivan = await s.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
    key = GradesCb.unpack(tg.session.last().reply_markup.inline_keyboard[0][0].callback_data).s
    tg.session.clear()
    await tg.feed(up.callback(IVAN, GradesCb(a="sub", c=ivan, s=key).pack()))
    parts = shown(tg.session)
    assert len(parts) >= 2
    assert parts[0].startswith("📘 Алгебра — Иван Петров")
    for c in comments:
        assert_whole(parts, c)
    # Each mark's block (mark, comment, teacher) stays in one message.
    assert all(p.count("«") == p.count("»") for p in parts)
    assert tg.session.last().reply_markup is not None


async def test_an_overview_of_sixteen_subjects_with_eighty_marks_each(tg):
    s = tg.services
    await s.linking.link_contact(IVAN, IVAN, IVAN, IVAN_PHONE)
    subjects = [f"Предмет номер {n:02d}" for n in range(16)]
    events = [{"id": "p2", "type": "period", "period_id": "q2", "name": "2 четверть",
               "start": "2026-11-05", "end": "2026-12-28"}]
    for n, subject in enumerate(subjects):
        for m in range(80):
            events.append({"id": f"e{n}-{m}", "type": "grade", "grade_id": f"g{n}-{m}",
                           "student_id": "S-1001", "subject": subject,
                           "date": f"2026-11-{10 + m % 13}", "value": 2 + m % 4,
                           "weight": 1 + m % 3})
    await load(s, *events)
    await tg.feed(up.message(IVAN, "/grades"))
    parts = shown(tg.session)
    assert len(parts) >= 2
    text = "\n".join(parts)
    for subject in subjects:
        assert text.count(subject) == 1
        # A subject's heading and its marks are never split apart.
        assert any(re.search(re.escape(subject) + r"[^\n]*\n[2-5]", p) for p in parts)
    legend = 1  # «5×2 — a mark of weight 2»
    assert text.count("×") == sum(1 for e in events[1:] if e["weight"] > 1) + legend
    assert tg.session.of(SendMessage)[-1].reply_markup is not None


def test_a_single_huge_push_is_split_at_words_within_the_limit():
    task = words(1500, "слово")[:10_000].rsplit(" ", 1)[0]
    item = OutboxItem(1, "homework", 1, {"subject": "Алгебра", "text": task,
                                         "required": True}, None, 0)  # type: ignore[arg-type]
    with create_i18n("ru").context(), create_i18n("ru").use_locale("ru"):
        messages, unknown = render_batch((item,))
    assert not unknown and len(messages) == 3
    for m in messages:
        assert telegram_length(m.text) <= TELEGRAM_LIMIT
    assert_whole([m.text for m in messages], task)
    assert [m.ids for m in messages] == [[], [], [1]]


def test_html_parts_stay_balanced_and_blocks_stay_whole():
    text = "<b>Заголовок</b>\n\n<i>" + words(1200, "w") + "</i>"
    parts = split_text(text, html=True)
    assert len(parts) == 2 and parts[0].startswith("<b>Заголовок</b>\n\n<i>w0🧪 ")
    assert all(p.count("<i>") == p.count("</i>") == 1 for p in parts)
    assert parts[1].startswith("<i>w") and parts[1].endswith("w1199</i>")
    assert fit(["a" * 3000, "b" * 3000, "c" * 90]) == ["a" * 3000, "b" * 3000 + "\n" + "c" * 90]
