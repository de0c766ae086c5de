"""Marks as schools give them: what is shown, on which scale, and what it counts as; marks that
carry a dot; when each student's journal data began.

- ``grades``: ``shown`` (the mark as the school shows it: «5», «4-», «5/4», «зачёт», «8»),
  ``scale`` (``5``, ``10``, ``100``, ``pass``), ``points`` (the sum of the five-point marks it
  counts as) and ``parts`` (how many marks it counts as; 0 when it counts as nothing). An
  average is Σ(points·weight) / Σ(parts·weight). ``value`` stays its first five-point mark for
  readers that want one figure, and is NULL for a mark that counts as nothing; ``weight`` may
  be 0 (shown, not counted). ``point_until``: a visible mark that carries a dot until that day
  (МЭШ), behind the partial index ``grades_point_until``.
- ``dots``: the same four columns for the grade a dot becomes when it expires.
- ``students.journal_since``: when the first journal data of the student (grades, dots,
  attendance) was imported; an import that brings a student's first data stores it without
  pushes. Students that already have such data get the moment of their earliest row.

No index covers the sums of an average: one over (student, subject, date, deleted_at, weight,
points, parts) left the import's sums query of 500 students as fast as before (about 6 ms on
20,000 students on both backends, warm) and costs every insert.

Existing rows upgrade in place: ``shown`` = ``value``, ``points`` = ``value``, ``parts`` = 1.
A downgrade keeps only what the old schema can hold: marks without a five-point number or with
weight 0 are deleted (a dot's link to such a grade is cleared).

Revision ID: 0005
Revises: 0004
"""

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sa.Text()
INT = sa.Integer()
REAL = sa.Float()  # PostgreSQL: double precision; SQLite: REAL


def _partial(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(name, table, columns, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def _mark_columns(batch) -> None:
    batch.add_column(sa.Column("shown", TEXT, nullable=True))
    batch.add_column(sa.Column("scale", TEXT, nullable=False, server_default="5"))
    batch.add_column(sa.Column("points", REAL, nullable=True))
    batch.add_column(sa.Column("parts", INT, nullable=True))


@contextmanager
def _grades_copied(sqlite: bool) -> Iterator[BatchOperations]:
    """Alter ``grades``; on SQLite by copying it into a new table. Foreign keys are on and the
    migration runs in a transaction, where they cannot be switched off: dropping the old table
    would break the dots that point at its rows, so those links are kept aside and restored."""
    if not sqlite:
        with op.batch_alter_table("grades") as batch:
            yield batch
        return
    op.execute("CREATE TEMPORARY TABLE dot_grades AS"
               " SELECT id, grade_id FROM dots WHERE grade_id IS NOT NULL")
    op.execute("UPDATE dots SET grade_id = NULL WHERE grade_id IS NOT NULL")
    with warnings.catch_warnings():
        # The old unnamed CHECKs are meant to go: Alembic warns that it leaves them out.
        warnings.filterwarnings("ignore", "Unnamed CHECK constraint", UserWarning)
        with op.batch_alter_table("grades", recreate="always") as batch:
            yield batch
    op.execute("UPDATE dots SET grade_id = (SELECT k.grade_id FROM dot_grades k"
               " WHERE k.id = dots.id) WHERE id IN (SELECT id FROM dot_grades)")
    op.execute("DROP TABLE dot_grades")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("grades") as batch:
        _mark_columns(batch)
        batch.add_column(sa.Column("point_until", TEXT, nullable=True))
    with op.batch_alter_table("dots") as batch:
        _mark_columns(batch)
    with op.batch_alter_table("students") as batch:
        batch.add_column(sa.Column("journal_since", TEXT, nullable=True))

    op.execute("UPDATE grades SET shown = CAST(value AS TEXT), points = value, parts = 1")
    op.execute("UPDATE dots SET shown = CAST(value AS TEXT), points = value, parts = 1"
               " WHERE value IS NOT NULL")
    op.execute(
        "UPDATE students SET journal_since = (SELECT MIN(at) FROM ("
        " SELECT created_at AS at FROM grades WHERE grades.student_id = students.id"
        " UNION ALL SELECT created_at FROM dots WHERE dots.student_id = students.id"
        " UNION ALL SELECT created_at FROM attendance"
        " WHERE attendance.student_id = students.id) AS facts)")

    # SQLite: the old CHECKs are unnamed, so the table is copied without them and the new ones
    # are named; PostgreSQL named them itself.
    with _grades_copied(sqlite) as batch:
        if not sqlite:
            batch.drop_constraint("grades_value_check", type_="check")
            batch.drop_constraint("grades_weight_check", type_="check")
        batch.alter_column("value", existing_type=INT, nullable=True)
        for name, type_ in (("shown", TEXT), ("points", REAL), ("parts", INT)):
            batch.alter_column(name, existing_type=type_, nullable=False)
        batch.create_check_constraint("grades_weight_check", sa.text("weight >= 0"))
        batch.create_check_constraint("grades_parts_check", sa.text("parts >= 0"))
    _partial("grades_point_until", "grades", ["point_until"],
             "point_until IS NOT NULL AND deleted_at IS NULL")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("grades_point_until", "grades")
    gone = "SELECT id FROM grades WHERE value IS NULL OR weight < 1"
    op.execute(f"UPDATE dots SET grade_id = NULL WHERE grade_id IN ({gone})")
    op.execute("DELETE FROM grades WHERE value IS NULL OR weight < 1")
    op.execute("UPDATE dots SET value = NULL, weight = 1 WHERE value IS NOT NULL AND weight < 1")
    with _grades_copied(sqlite) as batch:
        batch.drop_constraint("grades_parts_check", type_="check")
        batch.drop_constraint("grades_weight_check", type_="check")
        for name in ("point_until", "parts", "points", "scale", "shown"):
            batch.drop_column(name)
        batch.alter_column("value", existing_type=INT, nullable=False)
        batch.create_check_constraint("grades_value_check", sa.text("value BETWEEN 1 AND 5"))
        batch.create_check_constraint("grades_weight_check", sa.text("weight >= 1"))
    # Plain columns are dropped in place: copying ``students`` on SQLite would drop the table
    # and, foreign keys being on, delete every row that cascades from it.
    for table, name in (("dots", "parts"), ("dots", "points"), ("dots", "scale"),
                        ("dots", "shown"), ("students", "journal_since")):
        if sqlite:  # SQLite 3.35 and later
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
        else:
            op.drop_column(table, name)
