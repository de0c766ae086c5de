"""Announcements: the school's news for parents and students.

- ``announcements``: one row per ``announcement_id`` of the journal (``external_id``), of one
  school; ``audience`` is ``parents``, ``students`` or ``all``; ``links`` the links as JSON text
  (``[{"url": …, "title": …}]``) or NULL; ``pinned_until`` a day (``YYYY-MM-DD``) through which
  it stays on top of /news; ``revision`` counts the changes of its text (each one is pushed).
- ``announcement_classes``: the classes it is for; none: the whole school.
- ``account_settings.push_announcements``: the switch of the announcements' pushes (NULL: on).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TEXT = sa.Text()
INT = sa.Integer()


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("external_id", TEXT, nullable=False, unique=True),
        sa.Column("school_id", ID, sa.ForeignKey("schools.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("text", TEXT, nullable=False),
        sa.Column("audience", TEXT, sa.CheckConstraint(
            "audience IN ('parents', 'students', 'all')", name="announcements_audience"),
            nullable=False),
        sa.Column("links", TEXT, nullable=True),
        sa.Column("pinned_until", TEXT, nullable=True),
        sa.Column("revision", INT, nullable=False, server_default="0"),
        sa.Column("created_at", TEXT, nullable=False),
        sa.Column("updated_at", TEXT, nullable=False),
    )
    op.create_index("announcements_school", "announcements", ["school_id", "created_at"])
    op.create_table(
        "announcement_classes",
        sa.Column("announcement_id", ID, sa.ForeignKey("announcements.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("class_id", ID, sa.ForeignKey("classes.id", ondelete="CASCADE"),
                  nullable=False),
        sa.PrimaryKeyConstraint("announcement_id", "class_id"),
    )
    op.create_index("announcement_classes_class", "announcement_classes", ["class_id"])
    with op.batch_alter_table("account_settings") as batch:
        batch.add_column(sa.Column("push_announcements", INT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_settings") as batch:
        batch.drop_column("push_announcements")
    op.drop_index("announcement_classes_class", "announcement_classes")
    op.drop_table("announcement_classes")
    op.drop_index("announcements_school", "announcements")
    op.drop_table("announcements")
