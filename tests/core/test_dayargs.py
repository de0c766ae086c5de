from datetime import date

import pytest

from core.services.dayargs import DayArg, SubjectArg, WeekArg, match_subject, parse_arg

MONDAY = date(2026, 11, 23)


@pytest.mark.parametrize(("text", "expected"), [
    ("завтра", DayArg(date(2026, 11, 24))),
    ("Tomorrow", DayArg(date(2026, 11, 24))),
    ("сегодня", DayArg(MONDAY)),
    ("today", DayArg(MONDAY)),
    ("вчера", DayArg(date(2026, 11, 22))),
    ("послезавтра", DayArg(date(2026, 11, 25))),
    ("пн", DayArg(MONDAY)),
    ("вт", DayArg(date(2026, 11, 24))),
    ("пятница", DayArg(date(2026, 11, 27))),
    ("в пятницу", DayArg(date(2026, 11, 27))),
    ("во вторник", DayArg(date(2026, 11, 24))),
    ("на завтра", DayArg(date(2026, 11, 24))),
    ("friday", DayArg(date(2026, 11, 27))),
    ("Sun", DayArg(date(2026, 11, 29))),
    ("понедельник", DayArg(MONDAY)),
    ("2026-11-24", DayArg(date(2026, 11, 24))),
    ("24.11", DayArg(date(2026, 11, 24))),
    ("24/11", DayArg(date(2026, 11, 24))),
    ("03.01", DayArg(date(2027, 1, 3))),  # the closest 3 January is next year's
    ("24.11.2026", DayArg(date(2026, 11, 24))),
    ("неделя", WeekArg(MONDAY)),
    ("week", WeekArg(MONDAY)),
    ("матем", SubjectArg("матем")),
    ("Русский язык", SubjectArg("Русский язык")),
])
def test_arguments(text, expected):
    assert parse_arg(text, MONDAY) == expected


@pytest.mark.parametrize("text", ["31.02", "2026-13-01", "42", "??", "x"])
def test_unknown_arguments(text):
    with pytest.raises(ValueError):
        parse_arg(text, MONDAY)


def test_no_argument():
    assert parse_arg(None, MONDAY) is None
    assert parse_arg("  ", MONDAY) is None


def test_subject_matching():
    subjects = ["Алгебра", "Геометрия", "Математика", "Русский язык", "Английский язык",
                "Литература"]
    assert match_subject("матем", subjects) == ["Математика"]
    assert match_subject("язык", subjects) == ["Английский язык", "Русский язык"]
    assert match_subject("русс", subjects) == ["Русский язык"]
    assert match_subject("лгеб", subjects) == ["Алгебра"]
    assert match_subject("химия", subjects) == []


def test_29_february_in_a_leap_year():
    assert parse_arg("29.02", date(2028, 2, 1)) == DayArg(date(2028, 2, 29))
