"""A demo school for newcomers: believable data made through the real importers.

Every visitor gets a family of their own (a parent and two children, or a student) added to the
demo school's roster, a term of grades, dots, absences, and the classes' homework and timetable,
all as roster CSV and journal JSONL fed to the same parsers and services a real school uses. A
simulator then adds a grade, a dot or an absence for each visitor's family every few minutes.

A demo database is marked in ``meta``; a database that holds a school's data without that mark
is refused, so demo mode cannot be switched on against a real school by accident.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock
from core.errors import DemoRefused
from core.importers.journal import parse_journal
from core.importers.roster import COLUMNS, parse_roster
from core.models import LinkResult
from core.services.access import load_children
from core.services.journal import JournalService
from core.services.linking import LinkingService
from core.services.roster import RosterService
from core.storage.db import Database

SCHOOL = "Демо-школа № 1"
CLASSES = {
    "5А": ["Математика", "Русский язык", "Литература", "История", "Биология", "Английский язык"],
    "7Б": ["Алгебра", "Геометрия", "Русский язык", "Литература", "Физика", "История",
           "Английский язык"],
}
WORKS = [("Работа на уроке", 1), ("Домашняя работа", 1), ("Самостоятельная работа", 2),
         ("Проверочная работа", 2), ("Контрольная работа", 3)]
# One teacher for each subject of each class, on every lesson, grade and dot; a teacher may
# teach a subject in both classes, or two subjects (Russian and literature) in one.
TEACHERS = {
    "5А": {"Математика": "Иванова М. П.", "Русский язык": "Соколова Е. А.",
           "Литература": "Соколова Е. А.", "История": "Орлов В. С.",
           "Биология": "Ким А. Р.", "Английский язык": "Белова Т. Н."},
    "7Б": {"Алгебра": "Захаров Д. И.", "Геометрия": "Захаров Д. И.",
           "Русский язык": "Никитина Л. В.", "Литература": "Никитина Л. В.",
           "Физика": "Гусев П. А.", "История": "Орлов В. С.",
           "Английский язык": "Белова Т. Н."},
}
# Each subject's room: lessons of a subject are in its teacher's classroom.
ROOMS = {"Математика": "201", "Алгебра": "305", "Геометрия": "305", "Русский язык": "214",
         "Литература": "214", "История": "118", "Биология": "226", "Физика": "311",
         "Английский язык": "207"}
LESSONS_A_DAY = {"5А": 5, "7Б": 6}
BOYS = ["Иван", "Артём", "Максим", "Лев", "Марк", "Тимофей"]
GIRLS = ["Мария", "Анна", "Софья", "Ева", "Алиса", "Виктория"]
SURNAMES = [("Петров", "Петрова"), ("Смирнов", "Смирнова"), ("Волков", "Волкова"),
            ("Соколов", "Соколова"), ("Морозов", "Морозова"), ("Лебедев", "Лебедева")]
MOTHERS = ["Анна", "Елена", "Ольга", "Татьяна", "Наталья"]
# What a teacher of each subject sets: {p} a paragraph or page, {n} and {m} exercise numbers.
HOMEWORK = {
    "Математика": ["№ {n}, {m}", "Учебник, с. {p}: № {n}, {m}", "Выучить таблицу на с. {p},"
                   " № {n}"],
    "Алгебра": ["§ {p}, № {n}, {m}", "№ {n}, {m}, повторить формулы сокращённого умножения",
                "§ {p}, решить № {n} (а, б)"],
    "Геометрия": ["§ {p}, задачи № {n}, {m}", "Выучить теорему из § {p} с доказательством",
                  "§ {p}, построить чертёж к задаче № {n}"],
    "Русский язык": ["Упражнение {n}", "Выучить правило на с. {p}, упражнение {n}",
                     "Упражнение {n}, словарные слова на с. {p}"],
    "Литература": ["Прочитать главы {a}–{b}", "Выучить стихотворение наизусть",
                   "Ответить на вопросы на с. {p} письменно"],
    "История": ["Параграф {p}, вопросы 1–4", "§ {p}, составить план ответа",
                "§ {p}, выучить даты"],
    "Биология": ["Параграф {p}, вопросы в конце параграфа", "§ {p}, зарисовать схему",
                 "§ {p}, заполнить таблицу в тетради"],
    "Физика": ["§ {p}, упражнение {a} (задачи 1–3)", "§ {p}, ответить на вопросы после"
               " параграфа", "Лабораторная работа {a}: оформить отчёт"],
    "Английский язык": ["Учебник, с. {p}, упр. {a}: прочитать и перевести текст",
                        "Рабочая тетрадь, с. {p}, упр. {a}, {b}",
                        "Выучить новые слова на с. {p}, упр. {a} письменно"],
}
VALUES = [5, 5, 5, 4, 4, 4, 4, 3, 3, 2]
META_MARK = "demo"
META_VISITORS = "demo_visitors"


@dataclass(frozen=True)
class Family:
    number: int
    guardian_phone: str
    student_phone: str  # the older child's own phone, for "try as a student"
    rows: list[list[str]]
    student_ids: list[str]


def family(number: int) -> Family:
    """The roster rows of visitor ``number``'s family: a mother, a 7th- and a 5th-grader."""
    rnd = random.Random(number)
    male, female = rnd.choice(SURNAMES)
    phone = f"+7 999 {number // 10000:03d}-{number // 100 % 100:02d}-{number % 100:02d}"
    student_phone = f"+7 998 {number // 10000:03d}-{number // 100 % 100:02d}-{number % 100:02d}"
    older = (f"D{number:05d}-1", "7Б", male, rnd.choice(BOYS))
    younger = (f"D{number:05d}-2", "5А", female, rnd.choice(GIRLS))
    mother = [female, rnd.choice(MOTHERS), "", phone, "", "", "mother"]
    rows = [
        [SCHOOL, older[1], older[0], older[2], older[3], "", student_phone, "", "", *mother],
        [SCHOOL, younger[1], younger[0], younger[2], younger[3], "", "", "", "", *mother],
    ]
    return Family(number, phone, student_phone, rows, [older[0], younger[0]])


def roster_text(families: list[Family]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for fam in families:
        writer.writerows(fam.rows)
    return out.getvalue()


def school_year_start(today: date) -> int:
    return today.year if today.month >= 9 else today.year - 1


def periods(today: date) -> list[dict]:
    y = school_year_start(today)
    spans = [("1 четверть", date(y, 9, 1), date(y, 10, 25)),
             ("2 четверть", date(y, 11, 5), date(y, 12, 28)),
             ("3 четверть", date(y + 1, 1, 12), date(y + 1, 3, 20)),
             ("4 четверть", date(y + 1, 3, 30), date(y + 1, 5, 26))]
    return [{"id": f"demo-p{y}-{n}", "type": "period", "period_id": f"demo-{y}-q{n}",
             "name": name, "start": start.isoformat(), "end": end.isoformat()}
            for n, (name, start, end) in enumerate(spans, 1)]


def school_days(start: date, end: date) -> list[date]:
    days, day = [], start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def homework_text(subject: str, rnd: random.Random) -> str:
    a = rnd.randrange(1, 12)
    return rnd.choice(HOMEWORK[subject]).format(
        p=rnd.randrange(5, 40), n=rnd.randrange(100, 400), m=rnd.randrange(400, 700),
        a=a, b=a + 1)


def weekly_timetable(cls: str, weekday: int) -> list[str]:
    """The subjects of ``cls`` on a weekday (0 = Monday … 4 = Friday): the same every week."""
    subjects = CLASSES[cls]
    return random.Random(f"{cls}-{weekday}").sample(subjects, LESSONS_A_DAY[cls])


def class_events(today: date) -> list[dict]:
    """Timetable and homework of the demo classes from this week's Monday to next week's
    Friday (ids carry the date, so topping up again changes nothing)."""
    events: list[dict] = []
    monday = today - timedelta(days=today.weekday())
    for cls in CLASSES:
        for day in school_days(monday, monday + timedelta(days=11)):
            rnd = random.Random(f"{cls}{day}")
            todays = weekly_timetable(cls, day.weekday())
            for n, subject in enumerate(todays, 1):
                start = datetime(2000, 1, 1, 8, 30) + timedelta(minutes=55 * (n - 1))
                events.append({
                    "id": f"demo-l-{cls}-{day}-{n}", "type": "lesson", "class": cls,
                    "date": day.isoformat(), "number": n, "subject": subject,
                    "start": start.strftime("%H:%M"),
                    "end": (start + timedelta(minutes=45)).strftime("%H:%M"),
                    "room": ROOMS[subject], "teacher": TEACHERS[cls][subject],
                    "cancelled": n == len(todays) and rnd.random() < 0.2})
            for subject in todays[:3]:
                text = homework_text(subject, rnd)
                events.append({
                    "id": f"demo-h-{cls}-{day}-{subject}", "type": "homework",
                    "homework_id": f"demo-h-{cls}-{day}-{subject}", "class": cls,
                    "subject": subject, "due": day.isoformat(), "text": text,
                    "required": rnd.random() > 0.15})
    return events


def history(fam: Family, today: date) -> list[dict]:
    """A term of grades with weights, a couple of absences, and open dots."""
    rnd = random.Random(f"history{fam.number}")
    events: list[dict] = []
    term_start = max(date(school_year_start(today), 9, 1), today - timedelta(days=60))
    days = school_days(term_start, today - timedelta(days=1))
    for sid, cls in zip(fam.student_ids, ("7Б", "5А"), strict=True):
        for subject in CLASSES[cls]:
            for n in range(rnd.randrange(5, 9)):
                work, weight = rnd.choice(WORKS)
                gid = f"demo-g-{sid}-{subject}-{n}"
                events.append({
                    "id": gid, "type": "grade", "grade_id": gid, "student_id": sid,
                    "subject": subject, "date": rnd.choice(days).isoformat(),
                    "value": rnd.choice(VALUES), "weight": weight, "work": work,
                    "teacher": TEACHERS[cls][subject]})
        for n in range(2):
            day = rnd.choice(days)
            lesson = rnd.randrange(1, LESSONS_A_DAY[cls] + 1)
            events.append({"id": f"demo-a-{sid}-{n}", "type": "attendance",
                           "attendance_id": f"demo-a-{sid}-{n}", "student_id": sid,
                           "date": day.isoformat(), "lesson": lesson,
                           "subject": weekly_timetable(cls, day.weekday())[lesson - 1],
                           "mark": "absent"})
        subject = rnd.choice(CLASSES[cls])
        events.append({"id": f"demo-d-{sid}", "type": "dot", "dot_id": f"demo-d-{sid}",
                       "student_id": sid, "subject": subject,
                       "date": (today - timedelta(days=2)).isoformat(),
                       "expires": (today + timedelta(days=rnd.randrange(1, 5))).isoformat(),
                       "work": "Сдать работу над ошибками", "value": 2, "weight": 1,
                       "teacher": TEACHERS[cls][subject]})
    events.sort(key=lambda e: e.get("date", ""))
    return events


class DemoSchool:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo, roster: RosterService,
                 journal: JournalService, linking: LinkingService) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.roster = roster
        self.journal = journal
        self.linking = linking
        self._roster_lock = asyncio.Lock()

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    async def claim(self) -> None:
        """Mark the database as a demo one; refuse one that holds a real school's data."""
        async with self.db.transaction() as tx:
            marked = await tx.scalar("SELECT value FROM meta WHERE key = ?", (META_MARK,))
            if marked is None:
                if await tx.scalar("SELECT COUNT(*) FROM students"):
                    raise DemoRefused()
                await tx.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (META_MARK,))

    async def is_demo(self) -> bool:
        return await self.db.scalar("SELECT value FROM meta WHERE key = ?", (META_MARK,)) == "1"

    async def _visitors(self) -> int:
        return int(await self.db.scalar("SELECT value FROM meta WHERE key = ?",
                                        (META_VISITORS,)) or 0)

    async def _import(self, events: list[dict], notify: bool) -> int:
        lines = [json.dumps(e, ensure_ascii=False) for e in events]
        summary, _ = await self.journal.import_journal(parse_journal(lines, "demo.jsonl"),
                                                       "demo.jsonl", notify=notify)
        return summary.pushes

    async def seed(self, families: int = 3) -> None:
        """The school itself and a few families, so it looks lived-in before anyone comes."""
        await self.claim()
        if await self._visitors() == 0:
            for _ in range(families):
                await self._add_family()
        await self._import(periods(self.today()) + class_events(self.today()), notify=False)

    async def _add_family(self) -> Family:
        # The number is taken atomically: two visitors at once never share a family.
        async with self.db.transaction() as tx:
            number = int(await tx.scalar(
                "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE"
                " SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT) RETURNING value",
                (META_VISITORS,)))
        async with self._roster_lock:
            fams = [family(n) for n in range(1, await self._visitors() + 1)]
            await self.roster.apply(parse_roster(roster_text(fams), "demo-roster.csv"),
                                    "demo-roster.csv")
        fam = family(number)
        await self._import(history(fam, self.today()), notify=False)
        return fam

    async def visit(self, telegram_id: int, chat_id: int, as_student: bool,
                    language_code: str | None) -> LinkResult:
        """A family of the visitor's own, linked to their account."""
        if not await self.is_demo():
            raise DemoRefused()
        mine = await self.db.fetchall(
            "SELECT student_id FROM account_links WHERE telegram_id = ? AND via = 'demo'",
            (telegram_id,))
        if mine:
            if any(r[0] is not None for r in mine) == as_student:  # a second tap, same role
                return LinkResult(await load_children(self.db, telegram_id), 0)
            # The other role: the visitor leaves the family made before and gets a new one.
            async with self.db.transaction() as tx:
                await tx.execute(
                    "DELETE FROM account_links WHERE telegram_id = ? AND via = 'demo'",
                    (telegram_id,))
        fam = await self._add_family()
        phone = fam.student_phone if as_student else fam.guardian_phone
        return await self.linking.demo_link(telegram_id, chat_id, phone, language_code)

    async def simulate(self) -> int:
        """One new grade, dot or absence for each visited family; returns the pushes queued."""
        if not await self.is_demo():
            return 0
        now = self.clock.now()
        today = self.today()
        rows = await self.db.fetchall(
            "SELECT DISTINCT s.external_id, c.name, 1 FROM account_links l"
            " JOIN guardianships g ON g.guardian_id = l.guardian_id"
            " JOIN students s ON s.id = g.student_id JOIN classes c ON c.id = s.class_id"
            " WHERE l.via = 'demo' UNION SELECT s.external_id, c.name, 0 FROM account_links l"
            " JOIN students s ON s.id = l.student_id JOIN classes c ON c.id = s.class_id"
            " WHERE l.via = 'demo'")
        rnd = random.Random(now.timestamp())
        stamp = now.strftime("%Y%m%d%H%M%S")
        events: list[dict] = []
        by_family: dict[str, list[tuple[str, str]]] = {}
        parents: set[str] = set()  # families a parent follows (absences are pushed to parents)
        for sid, cls, by_parent in rows:
            by_family.setdefault(sid.split("-")[0], []).append((sid, cls))
            if by_parent:
                parents.add(sid.split("-")[0])
        for fam, members in by_family.items():
            sid, cls = rnd.choice(sorted(set(members)))
            if cls not in CLASSES:
                continue
            subject = rnd.choice(CLASSES[cls])
            kind = rnd.random()
            key = f"demo-sim-{fam}-{stamp}"
            if kind < 0.7:
                work, weight = rnd.choice(WORKS)
                events.append({"id": key, "type": "grade", "grade_id": key, "student_id": sid,
                               "subject": subject, "date": today.isoformat(),
                               "value": rnd.choice(VALUES), "weight": weight, "work": work,
                               "teacher": TEACHERS[cls][subject]})
            elif kind < 0.85 or fam not in parents or today.weekday() >= 5:
                events.append({"id": key, "type": "dot", "dot_id": key, "student_id": sid,
                               "subject": subject, "date": today.isoformat(),
                               "expires": (today + timedelta(days=3)).isoformat(),
                               "work": "Не сдана тетрадь", "value": 2,
                               "teacher": TEACHERS[cls][subject]})
            else:  # a school day, a parent to tell: a lesson of today's timetable
                lesson = rnd.randrange(1, LESSONS_A_DAY[cls] + 1)
                events.append({"id": key, "type": "attendance", "attendance_id": key,
                               "student_id": sid, "date": today.isoformat(),
                               "lesson": lesson,
                               "subject": weekly_timetable(cls, today.weekday())[lesson - 1],
                               "mark": rnd.choice(["absent", "late"])})
        # Keep the coming days' timetable and homework filled in.
        events += class_events(today)
        return await self._import(events, notify=True)
