"""The push-kind registry (``core/pushes.py``) is whole: every kind can be shown, checked and
switched off, and a new kind needs nothing beyond its registration, its producer and its
renderer."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import get_type_hints

import pytest

from bot import notify
from bot.i18n import create_i18n
from bot.routers.settings import switch_labels
from core import pushes
from core.models import Scope
from core.pushes import KINDS, SWITCHES, About, PushKind, Shape
from core.services.outbox import OutboxItem, enqueue
from core.services.preferences import Preferences
from tests.support.delivery import worker
from tests.support.school import ANNA_PHONE


def test_every_kind_has_a_renderer_of_its_shape():
    missing = [k.name for k in KINDS.values() if k.name not in notify.RENDERERS]
    assert not missing, f"push kinds without a renderer in bot/notify.py: {missing}"
    stray = sorted(set(notify.RENDERERS) - set(KINDS))
    assert not stray, f"renderers of kinds core/pushes.py does not know: {stray}"
    for kind in KINDS.values():
        hints = get_type_hints(notify.RENDERERS[kind.name])
        takes = next(iter(v for k, v in hints.items() if k != "return"))
        grouped = getattr(takes, "__origin__", None) is list
        assert grouped == (kind.shape is Shape.GROUPED), kind.name
        returns = hints["return"]
        if kind.shape is Shape.OWN:
            assert returns is notify.Outgoing, kind.name
        elif kind.shape is Shape.INTERACTIVE:
            assert getattr(returns, "__origin__", None) is tuple, kind.name
        else:
            assert returns is str, kind.name


def test_every_kind_about_a_child_or_the_school_has_a_scope():
    for kind in KINDS.values():
        if kind.about is About.ACCOUNT:
            assert kind.scope is None, kind.name
        else:
            assert isinstance(kind.scope, Scope), kind.name


def test_a_kind_without_a_scope_or_a_grouped_one_without_its_key_is_refused():
    with pytest.raises(ValueError, match="needs a scope"):
        pushes.register(PushKind("test_no_scope", Shape.BLOCK, dict, About.CHILD))
    with pytest.raises(ValueError, match="group_by"):
        pushes.register(PushKind("test_group", Shape.GROUPED, dict, About.ACCOUNT))
    with pytest.raises(ValueError, match="twice"):
        pushes.register(KINDS["grade_new"])
    assert "test_no_scope" not in KINDS and "test_group" not in KINDS


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_every_switch_has_a_translated_label(locale):
    i18n = create_i18n(locale)
    with i18n.context(), i18n.use_locale(locale):
        labels = switch_labels()
    assert set(labels) == {s.name for s in SWITCHES}
    if locale == "ru":
        untranslated = [name for name, label in labels.items()
                        if not any("а" <= ch <= "я" for ch in label.lower())]
        assert not untranslated, f"switches without a Russian label: {untranslated}"


def test_preferences_hold_every_switch_with_its_default():
    fields = {f.name: f.default for f in dataclasses.fields(Preferences) if f.type in (bool,
                                                                                        "bool")}
    assert fields == {s.name: s.default for s in SWITCHES}
    assert all(Preferences().allows(k, None) == (
        k not in pushes.SWITCHED or pushes.SWITCH[pushes.SWITCHED[k]].default) for k in KINDS)


def test_each_kind_renders_an_example_payload():
    """Every renderer takes a payload of its kind's type (the keys its TypedDict requires)."""
    i18n = create_i18n("ru")
    examples = _examples()
    assert set(examples) == set(KINDS)
    with i18n.context(), i18n.use_locale("ru"):
        items = tuple(OutboxItem(n, kind, 1, payload, _NOW, 0)
                      for n, (kind, payload) in enumerate(sorted(examples.items()), 1))
        messages, unknown = notify.render_batch(items)
    assert unknown == []
    assert sorted(i for m in messages for i in m.ids) == list(range(1, len(items) + 1))
    for kind, payload in examples.items():
        required = KINDS[kind].payload.__required_keys__
        assert required <= set(payload), (kind, sorted(required - set(payload)))


async def test_a_new_kind_is_a_registration_a_renderer_and_a_producer(school, api, bot):
    """A kind of the tests' own, queued, checked against its scope and delivered."""
    kind = pushes.register(PushKind("test_notice", Shape.BLOCK, dict, About.CHILD,
                                    Scope.GRADES, pushes.SWITCH["push_grades"]))

    def render(p: dict) -> str:
        return f"🧪 {p['child']}: {p['text']}"

    notify.RENDERERS[kind.name] = render
    try:
        await school.linking.link_contact(5001, 5001, 5001, ANNA_PHONE)
        sid = await school.db.scalar("SELECT id FROM students WHERE external_id = 'S-1001'")
        async with school.db.transaction() as tx:
            await enqueue(tx, 5001, kind.name, {"child": "Иван", "text": "проверка"}, "t:1",
                          school.clock.now(), sid)
        await worker(bot, school).run_until_empty()
        assert [m.text for m in api.messages_to(5001)] == ["🧪 Иван: проверка"]
        # Switched off in /settings, it is not sent.
        await school.preferences.set_flag(5001, "push_grades", False)
        async with school.db.transaction() as tx:
            await enqueue(tx, 5001, kind.name, {"child": "Иван", "text": "ещё"}, "t:2",
                          school.clock.now(), sid)
        await worker(bot, school).run_until_empty()
        assert len(api.messages_to(5001)) == 1
        row = await school.db.fetchone("SELECT dropped_at, last_error FROM outbox WHERE dedup_key"
                                       " = 't:2:5001' OR dedup_key = 't:2'")
        assert row is not None and row[1] == "muted"
    finally:
        pushes.unregister(kind.name)
        del notify.RENDERERS[kind.name]


# -- an example payload of each kind ----------------------------------------------------------

_NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _examples() -> dict[str, dict]:
    grade = {"child": "Иван", "subject": "Алгебра", "value": 5, "shown": "5", "weight": 2,
             "date": "2026-11-23", "avg_before": 4.0, "avg_after": 4.5}
    dot = {"child": "Иван", "subject": "Физика", "expires": "2026-11-27", "days_left": 4}
    final = {"child": "Иван", "subject": "Алгебра", "period": "1 четверть", "value": "5"}
    lesson = {"child": "Иван", "subject": "Физика", "date": "2026-11-24", "number": 2,
              "start": "09:30"}
    chat = {"message": 1, "thread": 1, "child": "Иван Петров", "class": "7Б", "text": "Добрый день",
            "photo": None, "reply_to": None}
    return {
        "grade_new": grade, "grade_changed": {**grade, "old_value": 4, "old_shown": "4"},
        "grade_deleted": grade,
        "final_grade": final, "final_grade_changed": {**final, "old_value": "4"},
        "final_grade_deleted": final,
        "dot_new": dot, "dot_reminder": dot, "dot_vanished": {**dot, "reason": "teacher"},
        "attendance": {"child": "Иван", "date": "2026-11-23", "lesson": 2, "subject": "Физика",
                       "mark": "absent", "excused": False, "by_notice": False},
        "homework": {"child": "Иван", "subject": "Алгебра", "text": "№ 12"},
        "lesson_cancelled": lesson,
        "lesson_replaced": {**lesson, "substitute": "Сидоров П. П."},
        "announcement": {"text": "Собрание в четверг", "updated": False},
        "trust_news": {"event": "declined", "surname": "Петрова"},
        "relink": {},
        "invitation": {"invitation_id": 1, "inviter": "Анна Петрова", "surname": "Петрова",
                       "children": ["Иван"], "scopes": ["grades"],
                       "expires": "2026-11-30T09:00:00.000000Z"},
        "digest": {"day": "2026-11-23", "children": []},
        "week_chart": {"child": "Иван Петров", "start": "2026-11-23", "end": "2026-11-27",
                       "marks": 3, "png": json.dumps("")[1:-1]},
        "teacher_message": {**chat, "from": "Петрова Анна", "relation": "mother"},
        "teacher_answer": {**chat, "teacher": "Иванова М. П."},
    }



def test_a_switch_opens_what_its_kinds_are_about():
    """The scope /settings shows an instant-message switch by is the scope of its kinds."""
    for kind in KINDS.values():
        if kind.switch is not None and kind.switch.section is pushes.Section.PUSHES:
            assert kind.switch.scope is kind.scope, kind.name
