"""The Prometheus exposition of `diary web`: what an operator's dashboards read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.web import render_metrics
from core.models import Status, WorkerState

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def sender(owner: str, beat_ago: float, **counters) -> WorkerState:
    beat = NOW - timedelta(seconds=beat_ago)
    return WorkerState("delivery", owner, NOW - timedelta(hours=1), beat, beat, None, **counters)


def test_sending_rate_counts_only_live_senders_and_counters_are_per_sender():
    status = Status(
        students=10, guardians=8, classes=2, accounts=5, linked_accounts=5,
        unreachable_accounts=0, queue_depth=1200, oldest_undelivered=NOW - timedelta(seconds=30),
        last_import=None, schema_version="0003", due_now=900, paid_today=4321,
        workers=(
            sender("a:1:x", 5, messages=1000, rate_limited=2, paid=700, sent_per_second=480.5),
            sender("b:1:y", 12, messages=900, rate_limited=0, paid=650, sent_per_second=470.0),
            sender("c:1:z", 3600, messages=50, sent_per_second=25.0),  # gone an hour ago
            WorkerState("job:digest", "a:1:x", NOW, NOW, NOW, None),
        ),
    )
    text = render_metrics(status, NOW.timestamp())
    assert "diary_sent_per_second 950.5\n" in text
    assert "diary_paid_messages_today 4321\n" in text
    assert "diary_outbox_pending 1200\n" in text
    assert "diary_outbox_oldest_undelivered_age_seconds 30\n" in text
    assert "# TYPE diary_sender_messages_total counter" in text
    assert 'diary_sender_messages_total{owner="a:1:x"} 1000' in text
    assert 'diary_sender_messages_total{owner="c:1:z"} 50' in text
    assert 'diary_sender_rate_limited_total{owner="a:1:x"} 2' in text
    assert 'diary_sender_paid_messages_total{owner="b:1:y"} 650' in text
    assert text.count("diary_sender_messages_total{") == 3  # senders only, not the jobs
