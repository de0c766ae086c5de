"""A week of real-shaped NetSchool and МЭШ data (tests/data/): every line imports, every lesson is
kept, and averages leave out what does not count."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from core.importers.journal import parse_journal
from tests.support.school import ANNA_PHONE

DATA = Path(__file__).resolve().parents[1] / "data"
ANNA = 5001


async def load(services, name: str):
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    parsed = parse_journal(lines, name)
    assert parsed.problems == []
    summary, checked = await services.journal.import_journal(
        parsed, name, dict(enumerate(lines, 1)))
    assert checked.problems == [] and summary.rejected == 0
    return summary


async def test_a_netschool_week_and_a_mesh_week_import_whole(school):
    await school.linking.link_contact(ANNA, ANNA, ANNA, ANNA_PHONE)
    netschool = await load(school, "netschool_week.jsonl")
    mesh = await load(school, "mesh_week.jsonl")
    assert netschool.applied_total == netschool.lines
    assert mesh.applied_total == mesh.lines == 42

    # Every lesson kept: two English groups share the third lesson each day.
    rows = await school.db.fetchall(
        "SELECT date, number, group_name, teacher_replaced, substitute, remote, cancelled"
        " FROM lessons WHERE date BETWEEN '2026-11-16' AND '2026-11-20' ORDER BY 1, 2, 3")
    assert len(rows) == 25
    assert [(r[1], r[2]) for r in rows if r[0] == "2026-11-16"] == [
        (1, ""), (2, ""), (3, "1 группа"), (3, "2 группа"), (4, "")]
    assert [r[4] for r in rows if r[3]] == ["Сидоров П. П."]
    assert sum(r[5] for r in rows) == 1 and sum(r[6] for r in rows) == 1

    # Placeholders are no homework; one student's task is that student's.
    tasks = await school.db.fetchall(
        "SELECT h.external_id, h.class_id IS NULL, s.external_id FROM homework h"
        " LEFT JOIN students s ON s.id = h.student_id WHERE h.external_id LIKE 'mesh-%'"
        " ORDER BY 1")
    assert [tuple(r) for r in tasks] == [("mesh-h1", False, None), ("mesh-h4", True, "S-1001")]

    # Averages count what counts: 8 of 10 as 4, a mark with a dot, weight 0 and «зачёт» left
    # out, «5/4» as two marks, 93 of 100 as 5.
    viewer = await school.access.viewer(ANNA)
    ivan = next(c for c in viewer.children if c.name.first == "Иван")
    overview = await school.grades.overview(viewer, ivan.id, date(2026, 11, 23))
    averages = {s.subject: (round(s.average, 2) if s.average is not None else None)
                for s in overview.subjects}
    # NetSchool: 5×1, «4-»×2, «5/4»×3 (two marks), «н/а»×0; МЭШ: 8/10 (as 4)×1, 5×2, 3×1 with
    # a dot.
    assert averages["Алгебра"] == round((5 + 4 * 2 + (5 + 4) * 3 + 4 + 5 * 2 + 3)
                                        / (1 + 2 + 2 * 3 + 1 + 2 + 1), 2)
    assert averages["Физика"] == 5.0
    assert averages["Английский язык"] == 4.5
    finals = await school.db.fetchall(
        "SELECT subject, shown FROM final_grades ORDER BY subject")
    assert [tuple(r) for r in finals] == [("Алгебра", "5"), ("Физика", "9")]
