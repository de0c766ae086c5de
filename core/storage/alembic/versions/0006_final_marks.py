"""Final marks of each period and of the year.

- ``final_grades``: one row per final mark the journal sent (``final_grade`` events), matched by
  its ``external_id`` (the journal's ``final_id``). ``period_id`` is the period (``periods.id``)
  the mark closes, NULL for the year's mark. ``school_year`` is the year the mark belongs to, as
  the calendar year the school year starts in (2026 for 2026/27): the period's for a period's
  mark; for the year's mark that of its ``set_at``, else of the day it arrived. The mark as the
  school shows it (``shown``, on ``scale``) and what it counts as (``points``, the sum of its
  five-point marks, over ``parts`` of them) as ``core.marks`` reads it. A withdrawn mark keeps
  its row with ``deleted_at`` set.
- ``final_grades_student``: a child's final marks of a school year, by subject.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "final_grades",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.Text(), nullable=False, unique=True),
        sa.Column("student_id", ID, sa.ForeignKey("students.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("period_id", ID, sa.ForeignKey("periods.id"), nullable=True),
        sa.Column("school_year", sa.Integer(), nullable=False),
        sa.Column("shown", sa.Text(), nullable=False),
        sa.Column("scale", sa.Text(), nullable=False, server_default="5"),
        sa.Column("points", sa.Float(), nullable=False, server_default="0"),
        sa.Column("parts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("set_at", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.Text(), nullable=True),
    )
    op.create_index("final_grades_student", "final_grades",
                    ["student_id", "school_year", "subject"])
    op.create_index("final_grades_period", "final_grades", ["period_id"])


def downgrade() -> None:
    op.drop_index("final_grades_period", "final_grades")
    op.drop_index("final_grades_student", "final_grades")
    op.drop_table("final_grades")
