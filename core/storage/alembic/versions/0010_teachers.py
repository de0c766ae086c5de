"""Class teachers and their conversations with parents.

- ``teachers``: the people of ``teachers.csv`` (identifiers as keyed hashes only); ``active`` 0
  once the file no longer lists them.
- ``teacher_classes``: which classes each teacher leads (one class teacher a class).
- ``teacher_links``: Telegram accounts linked to a teacher (by phone or a one-time code).
- ``teacher_codes``: one-time link codes of teachers (hashes only, as ``link_codes``).
- ``threads``: one conversation per child, teacher and parent's account; ``muted`` by the
  teacher.
- ``thread_messages``: what each side wrote (text, a photo's file id), the Telegram message id
  on each side (the author's own, and the delivered copy's once sent), and whether it was stored
  without a push (the thread was muted).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TG = sa.BigInteger()
TEXT = sa.Text()
INT = sa.Integer()


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _col(name: str, type_: sa.types.TypeEngine, *args: object, null: bool = False,
         **kwargs: object) -> sa.Column:
    return sa.Column(name, type_, *args, nullable=null, **kwargs)


def _ref(name: str, target: str, *, null: bool = False, ondelete: str | None = None,
         type_: sa.types.TypeEngine = ID) -> sa.Column:
    return sa.Column(name, type_, sa.ForeignKey(target, ondelete=ondelete), nullable=null)


def upgrade() -> None:
    op.create_table(
        "teachers", _id(),
        _col("external_id", TEXT, unique=True),
        _ref("school_id", "schools.id"),
        _col("last_name", TEXT), _col("first_name", TEXT),
        _col("middle_name", TEXT, server_default=""),
        _col("phone_hash", TEXT, null=True), _col("email_hash", TEXT, null=True),
        _col("active", INT, server_default="1"),
        _col("created_at", TEXT), _col("updated_at", TEXT),
    )
    op.create_index("teachers_phone", "teachers", ["phone_hash"],
                    sqlite_where=sa.text("phone_hash IS NOT NULL"),
                    postgresql_where=sa.text("phone_hash IS NOT NULL"))
    op.create_table(
        "teacher_classes",
        _ref("class_id", "classes.id", ondelete="CASCADE"),
        _ref("teacher_id", "teachers.id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("class_id"),
    )
    op.create_index("teacher_classes_teacher", "teacher_classes", ["teacher_id"])
    op.create_table(
        "teacher_links",
        _ref("telegram_id", "accounts.telegram_id", ondelete="CASCADE", type_=TG),
        _ref("teacher_id", "teachers.id", ondelete="CASCADE"),
        _col("via", TEXT, sa.CheckConstraint("via IN ('phone', 'code', 'support')")),
        _col("linked_at", TEXT),
        sa.PrimaryKeyConstraint("telegram_id", "teacher_id"),
    )
    op.create_index("teacher_links_teacher", "teacher_links", ["teacher_id"])
    op.create_table(
        "teacher_codes",
        _col("code_hash", TEXT, primary_key=True),
        _ref("teacher_id", "teachers.id", ondelete="CASCADE"),
        _col("issued_at", TEXT), _col("expires_at", TEXT),
        _col("used_at", TEXT, null=True), _col("used_by", TG, null=True),
    )
    op.create_index("teacher_codes_teacher", "teacher_codes", ["teacher_id"])
    op.create_index("teacher_codes_expires", "teacher_codes", ["expires_at"])
    op.create_table(
        "threads", _id(),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _ref("teacher_id", "teachers.id", ondelete="CASCADE"),
        _col("parent_tg", TG),
        _ref("guardian_id", "guardians.id", null=True, ondelete="SET NULL"),
        _col("muted", INT, server_default="0"),
        _col("created_at", TEXT), _col("last_at", TEXT),
        sa.UniqueConstraint("student_id", "teacher_id", "parent_tg"),
    )
    op.create_index("threads_teacher", "threads", ["teacher_id", "last_at"])
    op.create_index("threads_parent", "threads", ["parent_tg", "student_id"])
    op.create_table(
        "thread_messages", _id(),
        _ref("thread_id", "threads.id", ondelete="CASCADE"),
        _col("author", TEXT, sa.CheckConstraint("author IN ('parent', 'teacher')")),
        _col("author_tg", TG),
        _col("text", TEXT, server_default=""),
        _col("photo", TEXT, null=True),  # Telegram's file_id of a photo
        _col("parent_message_id", TG, null=True),  # in the parent's chat
        _col("teacher_message_id", TG, null=True),  # in the teacher's chat
        _ref("reply_to", "thread_messages.id", null=True, ondelete="SET NULL"),
        _col("muted", INT, server_default="0"),
        _col("created_at", TEXT),
        _col("deliver_at", TEXT),
    )
    op.create_index("thread_messages_thread", "thread_messages", ["thread_id", "id"])
    # A message answered with Telegram's own «Reply» is found by its id in either chat.
    for side in ("parent", "teacher"):
        column = f"{side}_message_id"
        op.create_index(f"thread_messages_{side}", "thread_messages", [column],
                        sqlite_where=sa.text(f"{column} IS NOT NULL"),
                        postgresql_where=sa.text(f"{column} IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("thread_messages_teacher", "thread_messages")
    op.drop_index("thread_messages_parent", "thread_messages")
    op.drop_index("thread_messages_thread", "thread_messages")
    op.drop_table("thread_messages")
    op.drop_index("threads_parent", "threads")
    op.drop_index("threads_teacher", "threads")
    op.drop_table("threads")
    op.drop_index("teacher_codes_expires", "teacher_codes")
    op.drop_index("teacher_codes_teacher", "teacher_codes")
    op.drop_table("teacher_codes")
    op.drop_index("teacher_links_teacher", "teacher_links")
    op.drop_table("teacher_links")
    op.drop_index("teacher_classes_teacher", "teacher_classes")
    op.drop_table("teacher_classes")
    op.drop_index("teachers_phone", "teachers")
    op.drop_table("teachers")
