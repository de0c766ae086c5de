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


def shown(value: int | None, weight: int, points: float, parts: int, text: str = "") -> Mark:
    return Mark(value, weight, date(2026, 11, 2), shown=text or str(value), points=points,
                parts=parts)


def test_a_mark_of_weight_zero_or_that_counts_as_nothing_is_left_out():
    ms = (shown(5, 1, 5, 1), shown(4, 0, 4, 1), shown(None, 1, 0, 0, "зачёт"),
          shown(None, 0, 0, 0, "н/а"))
    assert weighted_average(ms) == 5
    assert [m.counted for m in ms] == [True, False, False, False]
    assert weighted_average(ms[1:]) is None


def test_a_double_mark_counts_as_two_and_a_converted_mark_as_its_five():
    # «5/4» of weight 2: 5·2 + 4·2 over 2 marks of weight 2; 8 of 10 counts as 4; 72 of 100
    # given by the journal as 4.5.
    ms = (shown(5, 2, 9, 2, "5/4"), shown(4, 1, 4, 1, "8"), shown(5, 1, 4.5, 1, "72"))
    assert weighted_average(ms) == pytest.approx((18 + 4 + 4.5) / 6)
    assert [m.counts_as for m in ms] == [2, 1, 1]


def test_what_the_next_mark_needs_ignores_marks_that_do_not_count():
    # 3 and 4 count (3,5); a 5 of weight 0 and a «зачёт» do not, and weight 0 is no option.
    ms = (shown(3, 1, 3, 1), shown(4, 1, 4, 1), shown(5, 0, 5, 1), shown(None, 3, 0, 0, "зачёт"))
    assert needs_for(ms, 4.5) == (Need(4, 1),)  # (7 + 15) / 5 = 4,4 < 4,5 = (7 + 20) / 6
    # «5/4» counts as two marks, 4 and 5: 4,5 already, nothing needed; as one 5 it would be 5.
    assert needs_for((shown(5, 1, 9, 2, "5/4"),), 4.5) == ()
    assert needs_for((shown(5, 1, 9, 2, "5/4"), shown(3, 1, 3, 1)), 4.5) == (Need(3, 1),)
