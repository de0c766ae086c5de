"""Snapshot sync: what each student's last snapshot held.

- ``snapshot_state``: per student and window (the period's first and last day, and the subject,
  ``''`` for all subjects) the last snapshot synced: its id, when it was taken and how many marks
  it held (what the next one is compared with to refuse a truncated export).
- ``snapshot_missing``: the marks stored for that student and window that the last snapshot did
  not hold, kept once: the snapshot that first missed each and when it was taken. A mark missing
  from the next snapshot as well is deleted; one that comes back is forgotten here.

Both start empty: an existing database upgrades in place.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TEXT = sa.Text()
KEY = ("student_id", "period_start", "period_end", "subject")


def _key() -> list[sa.Column]:
    return [
        sa.Column("student_id", ID, sa.ForeignKey("students.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("period_start", TEXT, nullable=False),
        sa.Column("period_end", TEXT, nullable=False),
        sa.Column("subject", TEXT, nullable=False, server_default=""),
    ]


def upgrade() -> None:
    op.create_table(
        "snapshot_state",
        *_key(),
        sa.Column("snapshot_id", TEXT, nullable=False),
        sa.Column("taken_at", TEXT, nullable=False),
        sa.Column("marks", sa.Integer(), nullable=False),
        sa.Column("synced_at", TEXT, nullable=False),
        sa.PrimaryKeyConstraint(*KEY),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "snapshot_missing",
        *_key(),
        sa.Column("grade_id", TEXT, nullable=False),
        sa.Column("snapshot_id", TEXT, nullable=False),
        sa.Column("missing_since", TEXT, nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "grade_id"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("snapshot_missing")
    op.drop_table("snapshot_state")
