"""The project's own wording of dates, spans and numbers, in both languages.

Only the names of months and weekdays come from Babel's CLDR data; the order, punctuation and
spaces are ours, so a Babel release that changes its interval formats or spaces («23—27»,
«Nov 23 – 27», «ноябрь 2026 г.») changes nothing a user sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from bot import i18n, render


@pytest.fixture
def lang() -> Iterator[object]:
    translations = i18n.create_i18n()
    with translations.context():
        yield translations.use_locale


def test_a_day_in_each_form(lang):
    d = date(2026, 11, 24)
    with lang("ru"):
        assert [render.day(d), render.day(d, "MMMd"), render.day(d, "MMMEd"),
                render.day(d, "yMMMM"), render.day(d, "yMMMd"), render.day(d, "EEE")] == [
            "24 ноября", "24 нояб.", "вт, 24 нояб.", "ноябрь 2026", "24 нояб. 2026", "вт"]
        assert render.long_day(d) == "вторник, 24 ноября"
        assert render.for_day(date(2026, 11, 27)) == "пятницу, 27 ноября"
    with lang("en"):
        assert [render.day(d), render.day(d, "MMMd"), render.day(d, "MMMEd"),
                render.day(d, "yMMMM"), render.day(d, "yMMMd"), render.day(d, "EEE")] == [
            "November 24", "Nov 24", "Tue, Nov 24", "November 2026", "Nov 24, 2026", "Tue"]
        assert render.long_day(d) == "Tuesday, November 24"


def test_a_span_within_a_month_names_the_month_once_with_an_en_dash(lang):
    with lang("ru"):
        assert render.days(date(2026, 11, 23), date(2026, 11, 27)) == "23–27 нояб."
        assert render.days(date(2026, 11, 25), date(2026, 11, 27), "MMMMd") == "25–27 ноября"
        assert render.days(date(2026, 11, 1), date(2026, 11, 11)) == "1–11 нояб."
    with lang("en"):
        assert render.days(date(2026, 11, 23), date(2026, 11, 27)) == "Nov 23–27"
        assert render.days(date(2026, 11, 25), date(2026, 11, 27), "MMMMd") == "November 25–27"


def test_a_span_across_months_or_years_spells_both_days_around_a_spaced_dash(lang):
    with lang("ru"):
        assert render.days(date(2026, 11, 30), date(2026, 12, 4)) == "30 нояб. – 4 дек."
        assert render.days(date(2026, 12, 28), date(2027, 1, 9), "yMMMd") == (
            "28 дек. 2026 – 9 янв. 2027")
        # The same month of another year is no compact span.
        assert render.days(date(2025, 11, 3), date(2026, 11, 5), "yMMMd") == (
            "3 нояб. 2025 – 5 нояб. 2026")
    with lang("en"):
        assert render.days(date(2026, 11, 30), date(2026, 12, 4)) == "Nov 30 – Dec 4"
        assert render.days(date(2026, 12, 28), date(2027, 1, 9), "yMMMd") == (
            "Dec 28, 2026 – Jan 9, 2027")


def test_a_span_of_one_day_is_that_day(lang):
    with lang("ru"):
        assert render.days(date(2026, 11, 27), date(2026, 11, 27), "MMMMd") == "27 ноября"


def test_numbers_in_the_readers_notation(lang):
    with lang("ru"):
        assert [render.average(4.375), render.average(4.0), render.average(None),
                render.decimal(4.5), render.decimal(4.0)] == ["4,38", "4,00", "—", "4,5", "4"]
    with lang("en"):
        assert [render.average(4.375), render.decimal(3.5)] == ["4.38", "3.5"]


def test_an_unknown_skeleton_is_a_programming_error(lang):
    with lang("ru"), pytest.raises(ValueError, match="MMMMEEEEd"):
        render.day(date(2026, 11, 24), "MMMMEEEEd")


def test_a_moment_in_each_style(lang):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    m, tz = datetime(2026, 11, 20, 12, 30, tzinfo=UTC), ZoneInfo("Europe/Moscow")
    with lang("ru"):
        assert [render.moment(m, tz), render.moment(m, tz, "short"),
                render.moment(m, tz, "time")] == ["20 ноября, 15:30", "20 нояб., 15:30", "15:30"]
    with lang("en"):  # one English style on every screen, month first
        assert [render.moment(m, tz), render.moment(m, tz, "short"),
                render.moment(m, tz, "time")] == ["Nov 20, 15:30", "Nov 20, 15:30", "15:30"]
