"""Weighted averages and what the next mark needs: pure arithmetic."""

from __future__ import annotations

from datetime import date

import pytest

from core.services.grades import (
    Mark,
    Need,
    fives_needed,
    needs_for,
    next_target,
    school_year,
    weighted_average,
)


def marks(*pairs: tuple[int, int]) -> tuple[Mark, ...]:
    return tuple(Mark(v, w, date(2026, 11, 2)) for v, w in pairs)


def test_weighted_average_is_sum_of_mark_times_weight_over_weights():
    assert weighted_average(marks((5, 2), (4, 1), (3, 3))) == pytest.approx((10 + 4 + 9) / 6)
    assert weighted_average(marks((5, 1))) == 5
    assert weighted_average(()) is None


@pytest.mark.parametrize(
    ("average", "target"),
    [(4.38, 4.5), (4.5, None), (4.6, None), (3.7, 4.5), (3.2, 3.5), (2.0, 2.5), (4.49, 4.5)],
)
def test_next_target(average, target):
    assert next_target(average) == target


def test_next_target_with_another_threshold():
    assert next_target(4.38, 0.6) == 4.6
    assert next_target(4.65, 0.6) is None


def test_fives_needed_matches_the_definition():
    # 4 and 4 (weight 1 each): average 4; to reach 4.5 one more 5 of weight 2 is enough:
    # (8 + 10) / 4 = 4.5.
    assert fives_needed(8, 2, 4.5, 2) == 1
    assert fives_needed(8, 2, 4.5, 1) == 2  # (8 + 10) / 4 = 4.5
    assert fives_needed(9, 2, 4.5, 1) == 0


def test_needs_lists_the_cheapest_options_first():
    ms = marks((4, 1), (4, 1), (4, 3), (5, 1))  # Σ = 4+4+12+5 = 25, Σw = 6 → 4,17
    target = next_target(weighted_average(ms))
    assert target == 4.5
    needs = needs_for(ms, target)
    assert needs == (Need(2, 3), Need(4, 1))  # (25 + 30) / 12 = 4,58; (25 + 20) / 10 = 4,5
    for need in needs:
        total, weights = 25 + 5 * need.weight * need.count, 6 + need.weight * need.count
        assert total / weights >= 4.5
        fewer = need.count - 1
        assert (25 + 5 * need.weight * fewer) / (6 + need.weight * fewer) < 4.5


def test_school_year_bounds():
    assert school_year(date(2026, 11, 23)).start == date(2026, 9, 1)
    assert school_year(date(2027, 3, 1)).end == date(2027, 8, 31)
    assert school_year(date(2026, 8, 31)).start == date(2025, 9, 1)


def test_needs_prefer_lower_marks_when_they_suffice():
    ms = marks((3, 1), (3, 1), (4, 1))  # 3,33 → 3,50: one 4 does it, as one 5 would
    assert needs_for(ms, 3.5) == (Need(1, 1, 4),)
    ms = marks((3, 1), (3, 1), (3, 1), (4, 1))  # 3,25 → 3,50: two 4s, or one 5
    assert needs_for(ms, 3.5) == (Need(1, 1, 5),)
    ms = marks((4, 1), (4, 1), (5, 1), (3, 2))  # 3,8 → 4,5: only fives are above 4,5
    assert all(n.value == 5 for n in needs_for(ms, 4.5))
