"""What `/homework` and `/schedule` arguments mean: a day (Russian or English) or a subject."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_RELATIVE = {
    "сегодня": 0, "today": 0, "завтра": 1, "tomorrow": 1, "послезавтра": 2,
    "вчера": -1, "yesterday": -1,
}
_WEEKDAYS = {
    0: ("пн", "пон", "понедельник", "mon", "monday"),
    1: ("вт", "вто", "вторник", "tue", "tues", "tuesday"),
    2: ("ср", "сре", "среда", "среду", "wed", "wednesday"),
    3: ("чт", "чет", "четверг", "thu", "thur", "thurs", "thursday"),
    4: ("пт", "пят", "пятница", "пятницу", "fri", "friday"),
    5: ("сб", "суб", "суббота", "субботу", "sat", "saturday"),
    6: ("вс", "вос", "воскресенье", "sun", "sunday"),
}
_WEEKDAY_WORDS = {word: wd for wd, words in _WEEKDAYS.items() for word in words}
_DM = re.compile(r"^(\d{1,2})[./](\d{1,2})(?:[./](\d{2}|\d{4}))?$")
_WEEK = {"неделя", "неделю", "week"}


@dataclass(frozen=True)
class DayArg:
    day: date


@dataclass(frozen=True)
class WeekArg:
    day: date


@dataclass(frozen=True)
class SubjectArg:
    query: str


Arg = DayArg | WeekArg | SubjectArg


def parse_arg(text: str | None, today: date) -> Arg | None:
    """None for no argument; raises ValueError for something that is neither a day nor a
    plausible subject."""
    if text is None or not text.strip():
        return None
    word = " ".join(text.strip().lower().replace("ё", "е").split())
    for prefix in ("во ", "в ", "на ", "on ", "for "):
        word = word.removeprefix(prefix)
    raw = " ".join(text.split())
    if word in _RELATIVE:
        return DayArg(today + timedelta(days=_RELATIVE[word]))
    if word in _WEEK:
        return WeekArg(today)
    if word in _WEEKDAY_WORDS:
        ahead = (_WEEKDAY_WORDS[word] - today.weekday()) % 7
        return DayArg(today + timedelta(days=ahead))
    try:
        if len(word) == 10:
            return DayArg(date.fromisoformat(word))
    except ValueError:
        pass
    m = _DM.match(word)
    if m:
        day, month, year = int(m.group(1)), int(m.group(2)), m.group(3)
        if year:
            try:
                return DayArg(date(int(year) + (2000 if len(year) == 2 else 0), month, day))
            except ValueError:
                raise ValueError(text) from None
        candidates = []
        for k in (-1, 0, 1):  # 29.02 exists only in some years
            try:
                candidates.append(date(today.year + k, month, day))
            except ValueError:
                pass
        if not candidates:
            raise ValueError(text)
        return DayArg(min(candidates, key=lambda d: abs((d - today).days)))
    if len(word) >= 3 and any(ch.isalpha() for ch in word) and not word[0].isdigit():
        return SubjectArg(raw)
    raise ValueError(text)


# English names of school subjects, for readers who type them: each stands for the Russian
# names (or their beginnings) a school's journal uses.
SUBJECT_ALIASES: dict[str, tuple[str, ...]] = {
    "mathematics": ("математика", "алгебра", "геометрия"),
    "maths": ("математика", "алгебра", "геометрия"),
    "algebra": ("алгебра",),
    "geometry": ("геометрия",),
    "probability": ("вероятность",),
    "russian": ("русский язык",),
    "literature": ("литература",),
    "reading": ("литературное чтение",),
    "english": ("английский язык",),
    "german": ("немецкий язык",),
    "french": ("французский язык",),
    "physics": ("физика",),
    "chemistry": ("химия",),
    "biology": ("биология",),
    "geography": ("география",),
    "history": ("история",),
    "social studies": ("обществознание",),
    "computer science": ("информатика",),
    "informatics": ("информатика",),
    "science": ("окружающий мир", "естествознание"),
    "music": ("музыка",),
    "art": ("изобразительное искусство", "изо"),
    "technology": ("технология", "труд"),
    "pe": ("физическая культура", "физкультура"),
    "physical education": ("физическая культура", "физкультура"),
    "sport": ("физическая культура", "физкультура"),
    "safety": ("обж", "основы безопасности"),
}


def match_subject(query: str, subjects: list[str]) -> list[str]:
    """Subjects matching a fuzzy query: prefix of the name or of a word, then substring; an
    English name («math», «algebra») stands for the Russian one."""
    found = _match(query, subjects)
    if found:
        return found
    q = query.casefold().strip()
    names = {name for alias, names in SUBJECT_ALIASES.items()
             if alias == q or (len(q) >= 3 and alias.startswith(q)) for name in names}
    return sorted({s for name in names for s in _match(name, subjects)})


def _match(query: str, subjects: list[str]) -> list[str]:
    q = query.casefold().replace("ё", "е")
    norm = {s: s.casefold().replace("ё", "е") for s in subjects}
    exact = [s for s, n in norm.items() if n == q]
    if exact:
        return exact
    prefix = [s for s, n in norm.items() if n.startswith(q) or any(
        w.startswith(q) for w in n.split())]
    if prefix:
        return sorted(prefix)
    return sorted(s for s, n in norm.items() if q in n)
