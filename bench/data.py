"""Synthetic but realistic school data for benchmarks: a roster and a journal."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date, timedelta

SUBJECTS = ["Алгебра", "Геометрия", "Русский язык", "Литература", "Физика", "Химия",
            "Биология", "История", "Обществознание", "География", "Английский язык",
            "Информатика"]
WORKS = ["Работа на уроке", "Домашняя работа", "Самостоятельная работа", "Контрольная работа",
         "Диктант", "Проверочная работа"]
FIRST = ["Иван", "Мария", "Алексей", "Анна", "Дмитрий", "Елена", "Сергей", "Ольга", "Артём",
         "Софья", "Максим", "Дарья"]
LAST = ["Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Волков", "Соколов",
        "Лебедев", "Козлов", "Новиков", "Морозов"]
HEADER = ["school", "class", "student_id", "student_last_name", "student_first_name",
          "student_middle_name", "student_phone", "student_email", "student_snils",
          "guardian_last_name", "guardian_first_name", "guardian_middle_name", "guardian_phone",
          "guardian_email", "guardian_snils", "guardian_relation"]


def guardian_phone(i: int) -> str:
    return f"+7 910 {i // 10000:03d}-{(i // 100) % 100:02d}-{i % 100:02d}"


def roster_csv(students: int, seed: int = 1) -> str:
    """``students`` students in classes of 25, each with one guardian (phone +7 910 …)."""
    rnd = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(students):
        grade = 5 + (i // 25) % 7
        letter = "АБВГД"[(i // 175) % 5]
        last = rnd.choice(LAST)
        writer.writerow(["Школа № 1", f"{grade}{letter}", f"S{i:05d}", last, rnd.choice(FIRST),
                         "", "", "", "", last + "а", rnd.choice(FIRST[1::2]), "",
                         guardian_phone(i), "", "", "mother"])
    return out.getvalue()


def journal_lines(students: int, events: int, start: date, days: int, seed: int = 2,
                  prefix: str = "b", first_student: int = 0) -> list[str]:
    """Grade events for ``students`` students from S{first_student}, ids prefixed ``prefix``."""
    rnd = random.Random(seed)
    lines = []
    for n in range(events):
        day = start + timedelta(days=rnd.randrange(days))
        lines.append(json.dumps({
            "id": f"{prefix}{n}", "type": "grade", "grade_id": f"{prefix}g{n}",
            "student_id": f"S{first_student + rnd.randrange(students):05d}",
            "subject": rnd.choice(SUBJECTS),
            "date": day.isoformat(), "value": rnd.choice([2, 3, 3, 4, 4, 4, 5, 5, 5]),
            "weight": rnd.choice([1, 1, 1, 2, 3]), "work": rnd.choice(WORKS),
        }, ensure_ascii=False))
    return lines
