"""Lessons of groups in one slot, replaced and remote lessons; per-student homework and links.

- ``lessons`` gets a row id instead of its key (class, date, number), so several lessons may
  share a slot: each group's, or each that the journal gives an id of its own. A lesson is
  found by ``lesson_id`` (the journal's id) where it has one (``lessons_lesson_id``), else by
  its slot and group (``lessons_slot``; ``group_name`` is '' for the whole class).
  ``teacher_replaced``/``substitute``: another teacher takes the lesson; ``remote``/``link``:
  the lesson is online. Existing rows keep their values: the whole class's lesson of the slot.
  On SQLite the table (WITHOUT ROWID before) is made anew and its rows copied; on PostgreSQL it
  is altered in place.
- ``homework``: ``class_id`` may be NULL for a task set to one student (``student_id``);
  exactly one of the two is set. ``links``: the task's links to materials as JSON text,
  ``[{"url": …, "title": …}]``.
- ``account_settings.push_replacements``: the switch of the pushes about replaced teachers.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sa.Text()
INT = sa.Integer()
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

OLD_COLUMNS = ("class_id", "date", "number", "subject", "start_time", "end_time", "room",
               "teacher", "cancelled", "updated_at")


def _new_columns() -> list[sa.Column]:
    return [
        sa.Column("lesson_id", TEXT, nullable=True),
        sa.Column("group_name", TEXT, nullable=False, server_default=""),
        sa.Column("teacher_replaced", INT, nullable=False, server_default="0"),
        sa.Column("substitute", TEXT, nullable=True),
        sa.Column("remote", INT, nullable=False, server_default="0"),
        sa.Column("link", TEXT, nullable=True),
    ]


def _partial(name: str, table: str, columns: list[str], where: str, unique: bool = False) -> None:
    op.create_index(name, table, columns, unique=unique, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def _old_columns() -> list[sa.Column]:
    return [
        sa.Column("class_id", ID, sa.ForeignKey("classes.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("date", TEXT, nullable=False), sa.Column("number", INT, nullable=False),
        sa.Column("subject", TEXT, nullable=False),
        sa.Column("start_time", TEXT, nullable=False), sa.Column("end_time", TEXT, nullable=False),
        sa.Column("room", TEXT, nullable=True), sa.Column("teacher", TEXT, nullable=True),
        sa.Column("cancelled", INT, nullable=False, server_default="0"),
        sa.Column("updated_at", TEXT, nullable=False),
    ]


def _upgrade_lessons() -> None:
    columns = ", ".join(OLD_COLUMNS)
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "lessons_0007",
            sa.Column("id", ID, primary_key=True, autoincrement=True),
            *_old_columns(), *_new_columns(),
        )
        op.execute(f"INSERT INTO lessons_0007 ({columns}) SELECT {columns} FROM lessons"
                   f" ORDER BY class_id, date, number")
        op.drop_table("lessons")
        op.rename_table("lessons_0007", "lessons")
    else:
        op.execute("ALTER TABLE lessons DROP CONSTRAINT lessons_pkey")
        op.execute("ALTER TABLE lessons ADD COLUMN id BIGSERIAL PRIMARY KEY")
        for column in _new_columns():
            op.add_column("lessons", column)
    _partial("lessons_lesson_id", "lessons", ["lesson_id"], "lesson_id IS NOT NULL", unique=True)
    _partial("lessons_slot", "lessons", ["class_id", "date", "number", "group_name"],
             "lesson_id IS NULL", unique=True)
    op.create_index("lessons_class_date", "lessons", ["class_id", "date", "number"])


def _downgrade_lessons() -> None:
    # One lesson a slot, as before: the whole class's, else the one written last.
    op.execute(
        "DELETE FROM lessons WHERE EXISTS (SELECT 1 FROM lessons o"
        " WHERE o.class_id = lessons.class_id AND o.date = lessons.date"
        " AND o.number = lessons.number AND o.id <> lessons.id"
        " AND (o.lesson_id IS NULL AND o.group_name = '', o.updated_at, o.id)"
        " > (lessons.lesson_id IS NULL AND lessons.group_name = '', lessons.updated_at,"
        " lessons.id))")
    for name in ("lessons_class_date", "lessons_slot", "lessons_lesson_id"):
        op.drop_index(name, "lessons")
    columns = ", ".join(OLD_COLUMNS)
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "lessons_0006", *_old_columns(),
            sa.PrimaryKeyConstraint("class_id", "date", "number"),
            sqlite_with_rowid=False,
        )
        op.execute(f"INSERT INTO lessons_0006 ({columns}) SELECT {columns} FROM lessons")
        op.drop_table("lessons")
        op.rename_table("lessons_0006", "lessons")
    else:
        for column in reversed(_new_columns()):
            op.drop_column("lessons", column.name)
        op.drop_column("lessons", "id")
        op.create_primary_key("lessons_pkey", "lessons", ["class_id", "date", "number"])


def upgrade() -> None:
    _upgrade_lessons()
    with op.batch_alter_table("homework") as batch:
        batch.alter_column("class_id", existing_type=ID, nullable=True)
        batch.add_column(sa.Column("student_id", ID, nullable=True))
        batch.add_column(sa.Column("links", TEXT, nullable=True))
        batch.create_foreign_key("homework_student_id_fkey", "students", ["student_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_check_constraint("homework_one_owner",
                                      "(class_id IS NULL) <> (student_id IS NULL)")
    _partial("homework_student_due", "homework", ["student_id", "due"], "student_id IS NOT NULL")
    with op.batch_alter_table("account_settings") as batch:
        batch.add_column(sa.Column("push_replacements", INT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_settings") as batch:
        batch.drop_column("push_replacements")
    op.drop_index("homework_student_due", "homework")
    op.execute("DELETE FROM homework WHERE class_id IS NULL")
    with op.batch_alter_table("homework") as batch:
        batch.drop_constraint("homework_one_owner", type_="check")
        batch.drop_constraint("homework_student_id_fkey", type_="foreignkey")
        batch.drop_column("links")
        batch.drop_column("student_id")
        batch.alter_column("class_id", existing_type=ID, nullable=False)
    _downgrade_lessons()
