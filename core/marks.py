"""Marks as schools give them: what is shown, on which scale, and what it counts as.

A journal sends a mark's ``value`` as the school shows it — an integer or a text such as ``4-``,
``5/4``, ``зачёт``, ``н/а`` — with an optional ``scale`` (``5`` by default, ``10``, ``100``,
``pass``) and an optional ``five``: the five-point number it counts as (МЭШ sends it beside the
original). Pure: no I/O.

What a mark counts as in an average is a tuple of five-point numbers, one per mark it stands for:

* a five-point mark counts as itself; a plus or minus (``4-``, ``5+``) does not change it;
* a double mark (``5/4``) counts as two marks, each on its own;
* a 10- or 100-point mark counts as its ``five`` when given, else as :data:`TEN_TO_FIVE` /
  :data:`HUNDRED_TO_FIVE` say;
* a text mark (``зачёт``, ``н/а``, ``осв.``) and a mark on the ``pass`` scale count as nothing,
  unless the journal gives its ``five``.

Whether a mark counts also depends on its weight: a weight of 0 shows the mark and leaves it out
of every average (see :func:`counted`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SCALES = ("5", "10", "100", "pass")
DEFAULT_SCALE = "5"
SHOWN_LIMIT = 16  # «незачёт», «осв.», «н/а», «5/4/3»: a mark is short; longer text is garbage

# The five-point mark a 10-point mark counts as when the journal does not say: 9–10 → 5,
# 7–8 → 4, 5–6 → 3, 1–4 → 2 (0 means no mark at all and is refused).
TEN_TO_FIVE = {10: 5, 9: 5, 8: 4, 7: 4, 6: 3, 5: 3, 4: 2, 3: 2, 2: 2, 1: 2}
# A 100-point mark: 85–100 → 5, 65–84 → 4, 50–64 → 3, 0–49 → 2.
HUNDRED_TO_FIVE = ((85, 5), (65, 4), (50, 3), (0, 2))

_FIVE_POINT = re.compile(r"^([1-5])([+-]|\+\+|--)?$")
_NUMBER = re.compile(r"^\d{1,3}$")


@dataclass(frozen=True, slots=True)
class Mark:
    """One mark as the school gave it."""

    shown: str  # as the school shows it: «5», «4-», «5/4», «зачёт», «8»
    scale: str  # one of SCALES
    fives: tuple[float, ...]  # the five-point marks it counts as; () when it counts as none

    @property
    def points(self) -> float:
        """The sum of its five-point marks (what it adds to an average's numerator)."""
        return float(sum(self.fives))

    @property
    def parts(self) -> int:
        """How many marks it counts as (what it adds to an average's denominator)."""
        return len(self.fives)

    @property
    def numeric(self) -> int | None:
        """Its first five-point mark, rounded half up, for a one-figure display; None for a
        mark that counts as nothing."""
        return math.floor(self.fives[0] + 0.5) if self.fives else None


def counted(mark: Mark, weight: int) -> bool:
    """Whether the mark enters averages: it counts as something and its weight is above 0."""
    return weight > 0 and bool(mark.fives)


def hundred_to_five(value: int) -> int:
    for low, five in HUNDRED_TO_FIVE:
        if value >= low:
            return five
    return 2


def _scale(raw: object) -> str | None:
    if raw is None:
        return DEFAULT_SCALE
    if type(raw) is int:
        raw = str(raw)
    if type(raw) is str and raw.strip().lower() in SCALES:
        return raw.strip().lower()
    return None


def _fives(raw: object) -> tuple[float, ...] | str:
    """The journal's ``five``: a number from 1 to 5, or a list of them (one per part)."""
    items = raw if type(raw) is list else [raw]
    out: list[float] = []
    for item in items:
        if not isinstance(item, int | float) or isinstance(item, bool) or not 1 <= item <= 5 \
                or item != item:
            return "must be a number from 1 to 5, or a list of them"
        out.append(float(item))
    if not out:
        return "must be a number from 1 to 5, or a list of them"
    return tuple(out)


def parse_mark(value: object, scale: object = None, five: object = None) -> Mark | tuple[str, str]:
    """A :class:`Mark`, or ``(field, reason)`` naming what is wrong (``value``, ``scale`` or
    ``five``). ``None`` for ``scale`` and ``five`` means absent."""
    sc = _scale(scale)
    if sc is None:
        return "scale", "must be 5, 10, 100 or pass"
    given: tuple[float, ...] | None = None
    if five is not None:
        found = _fives(five)
        if isinstance(found, str):
            return "five", found
        given = found
    if type(value) is int:
        shown = str(value)
    elif type(value) is str:
        shown = " ".join(value.split())
    elif value is None:
        return "value", "required"
    else:
        return "value", "must be an integer or a text"
    if not shown:
        return "value", "required"
    if len(shown) > SHOWN_LIMIT:
        return "value", f"longer than {SHOWN_LIMIT} characters"

    derived: tuple[float, ...] | str
    if sc == "5":
        derived = _five_point(shown)
    elif sc == "10":
        derived = _numeric(shown, 1, 10, lambda v: TEN_TO_FIVE[v])
    elif sc == "100":
        derived = _numeric(shown, 0, 100, hundred_to_five)
    else:  # pass: «зачёт», «незачёт» — shown, counted only when the journal says as what
        derived = ()
    if isinstance(derived, str):
        return "value", derived
    if given is not None:
        if len(derived) > 1 and len(given) != len(derived):
            return "five", f"needs one number for each of the {len(derived)} marks in value"
        return Mark(shown, sc, given)
    return Mark(shown, sc, derived)


def _five_point(shown: str) -> tuple[float, ...] | str:
    """«5», «4-», «5/4»: the marks; a text that is not a number («зачёт», «н/а»): none."""
    parts = [p.strip() for p in shown.split("/")]
    found = [_FIVE_POINT.match(p) for p in parts]
    if all(found):
        return tuple(float(m.group(1)) for m in found if m)
    if any(p.isdigit() for p in parts):
        return "must be from 1 to 5 on the five-point scale (or set scale)"
    return ()  # a text mark: shown, counted as nothing


def _numeric(shown: str, low: int, high: int, to_five) -> tuple[float, ...] | str:
    parts = [p.strip() for p in shown.split("/")]
    if all(_NUMBER.match(p) for p in parts):
        values = [int(p) for p in parts]
        if all(low <= v <= high for v in values):
            return tuple(float(to_five(v)) for v in values)
        return f"must be from {low} to {high} on this scale"
    if any(p.isdigit() for p in parts):
        return f"must be from {low} to {high} on this scale"
    return ()
