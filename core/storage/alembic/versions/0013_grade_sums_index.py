"""A subject's sums read from the index alone.

- ``grades_student_subject_sums`` replaces ``grades_student_subject``: the same key (student,
  subject, date) and besides it what the sums of an average read (``points``, ``parts``,
  ``weight``, and ``deleted_at`` that leaves a deleted grade out), so that Σ(points·weight) and
  Σ(parts·weight) of a child's subject in a period (a journal import reads them for every grade
  it announces) never visit the table. On PostgreSQL the extra columns are ``INCLUDE``d (an
  index-only scan); SQLite has no ``INCLUDE`` and keeps them after the key. Every query the old
  index served is served by the new one: one index to write for a grade, as before.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ["student_id", "subject", "date"]
SUMS = ["points", "parts", "weight", "deleted_at"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("grades_student_subject_sums", "grades", KEY, postgresql_include=SUMS)
    else:
        op.create_index("grades_student_subject_sums", "grades", KEY + SUMS)
    op.drop_index("grades_student_subject", "grades")


def downgrade() -> None:
    op.create_index("grades_student_subject", "grades", KEY)
    op.drop_index("grades_student_subject_sums", "grades")
