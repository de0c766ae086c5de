"""Marks as schools give them: what each form counts as."""

import pytest

from core.marks import Mark, counted, parse_mark


@pytest.mark.parametrize(("value", "scale", "five", "shown", "fives"), [
    (5, None, None, "5", (5.0,)),
    ("4-", None, None, "4-", (4.0,)),
    ("5+", "5", None, "5+", (5.0,)),
    ("5/4", None, None, "5/4", (5.0, 4.0)),
    ("зачёт", None, None, "зачёт", ()),
    ("н/а", None, None, "н/а", ()),
    ("осв.", None, None, "осв.", ()),
    (8, 10, None, "8", (4.0,)),
    ("9", "10", None, "9", (5.0,)),
    (8, 10, 4.5, "8", (4.5,)),
    (72, "100", None, "72", (4.0,)),
    (0, 100, None, "0", (2.0,)),
    ("зачёт", "pass", None, "зачёт", ()),
    ("зачёт", "pass", 5, "зачёт", (5.0,)),
    ("5/4", None, [5, 4], "5/4", (5.0, 4.0)),
])
def test_each_form_counts_as_the_school_means(value, scale, five, shown, fives):
    mark = parse_mark(value, scale, five)
    assert mark == Mark(shown, str(scale or 5), fives)


@pytest.mark.parametrize(("value", "scale", "five", "problem"), [
    (6, None, None, ("value", "must be from 1 to 5 on the five-point scale (or set scale)")),
    (0, None, None, ("value", "must be from 1 to 5 on the five-point scale (or set scale)")),
    (11, 10, None, ("value", "must be from 1 to 10 on this scale")),
    (5, 12, None, ("scale", "must be 5, 10, 100 or pass")),
    (5, None, 7, ("five", "must be a number from 1 to 5, or a list of them")),
    ("5/4", None, 4.5, ("five", "needs one number for each of the 2 marks in value")),
    (None, None, None, ("value", "required")),
    ("  ", None, None, ("value", "required")),
    (True, None, None, ("value", "must be an integer or a text")),
    ("x" * 17, None, None, ("value", "longer than 16 characters")),
])
def test_a_bad_mark_names_its_field(value, scale, five, problem):
    assert parse_mark(value, scale, five) == problem


def test_weight_zero_and_text_marks_do_not_count():
    assert counted(parse_mark(5), 1)
    assert not counted(parse_mark(5), 0)
    assert not counted(parse_mark("зачёт"), 2)
    double = parse_mark("5/4")
    assert (double.points, double.parts, double.numeric) == (9.0, 2, 5)
