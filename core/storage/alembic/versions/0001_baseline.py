"""The whole schema as of the numbered SQL migrations 0001–0009, for SQLite and PostgreSQL.

A SQLite database made by those migrations is stamped with this revision instead of running it
(``core.storage.migrate``).

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Row ids: 64-bit on PostgreSQL; on SQLite exactly INTEGER, so the id is the rowid.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Telegram user and chat ids need more than 32 bits.
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


def _partial(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(name, table, columns, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def upgrade() -> None:
    op.create_table("meta", _col("key", TEXT, primary_key=True), _col("value", TEXT))
    op.create_table("schools", _id(), _col("name", TEXT, unique=True))
    op.create_table(
        "classes", _id(),
        _ref("school_id", "schools.id", ondelete="CASCADE"),
        _col("name", TEXT),
        sa.UniqueConstraint("school_id", "name"),
    )
    op.create_table(
        "students", _id(),
        _col("external_id", TEXT, unique=True),
        _ref("school_id", "schools.id"),
        _ref("class_id", "classes.id", null=True),
        _col("last_name", TEXT), _col("first_name", TEXT),
        _col("middle_name", TEXT, server_default=""),
        _col("phone_hash", TEXT, null=True), _col("email_hash", TEXT, null=True),
        _col("snils_hash", TEXT, null=True),
        _col("active", INT, server_default="1"),
        _col("created_at", TEXT), _col("updated_at", TEXT),
    )
    op.create_index("students_class", "students", ["class_id"])
    _partial("students_phone", "students", ["phone_hash"], "phone_hash IS NOT NULL")

    op.create_table(
        "guardians", _id(),
        _col("last_name", TEXT), _col("first_name", TEXT),
        _col("middle_name", TEXT, server_default=""),
        _col("phone_hash", TEXT, null=True), _col("email_hash", TEXT, null=True),
        _col("snils_hash", TEXT, null=True),
        _col("created_at", TEXT), _col("updated_at", TEXT),
    )
    for kind in ("phone", "email", "snils"):
        _partial(f"guardians_{kind}", "guardians", [f"{kind}_hash"], f"{kind}_hash IS NOT NULL")

    op.create_table(
        "guardianships",
        _ref("guardian_id", "guardians.id", ondelete="CASCADE"),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _col("relation", TEXT, server_default=""),
        sa.PrimaryKeyConstraint("guardian_id", "student_id"),
    )
    op.create_index("guardianships_student", "guardianships", ["student_id"])

    op.create_table(
        "accounts",
        _col("telegram_id", TG, primary_key=True, autoincrement=False),
        _col("chat_id", TG),
        _col("locale", TEXT, null=True),
        _col("language_code", TEXT, null=True),
        _col("phone_hash", TEXT, null=True),
        _col("unreachable_at", TEXT, null=True),
        _col("created_at", TEXT), _col("updated_at", TEXT),
    )
    _partial("accounts_phone", "accounts", ["phone_hash"], "phone_hash IS NOT NULL")

    op.create_table(
        "account_links", _id(),
        _ref("telegram_id", "accounts.telegram_id", ondelete="CASCADE", type_=TG),
        _ref("guardian_id", "guardians.id", null=True, ondelete="CASCADE"),
        _ref("student_id", "students.id", null=True, ondelete="CASCADE"),
        _col("via", TEXT), _col("linked_at", TEXT),
        sa.CheckConstraint("via IN ('phone', 'code', 'support', 'demo')"),
        sa.CheckConstraint("(guardian_id IS NULL) <> (student_id IS NULL)"),
        sa.UniqueConstraint("telegram_id", "guardian_id"),
        sa.UniqueConstraint("telegram_id", "student_id"),
    )
    op.create_index("account_links_guardian", "account_links", ["guardian_id"])
    op.create_index("account_links_student", "account_links", ["student_id"])

    op.create_table(
        "link_codes",
        _col("code_hash", TEXT, primary_key=True),
        _ref("guardian_id", "guardians.id", null=True, ondelete="CASCADE"),
        _ref("student_id", "students.id", null=True, ondelete="CASCADE"),
        _col("issued_at", TEXT), _col("expires_at", TEXT),
        _col("used_at", TEXT, null=True), _col("used_by", TG, null=True),
        sa.CheckConstraint("(guardian_id IS NULL) <> (student_id IS NULL)"),
    )
    op.create_index("link_codes_guardian", "link_codes", ["guardian_id"])
    op.create_index("link_codes_student", "link_codes", ["student_id"])

    op.create_table("code_failures", _col("telegram_id", TG), _col("at", TEXT))
    op.create_index("code_failures_account", "code_failures", ["telegram_id", "at"])

    op.create_table(
        "fsm_state",
        _col("key", TEXT, primary_key=True),
        _col("state", TEXT, null=True),
        _col("data", TEXT, server_default="{}"),
        _col("updated_at", TEXT, null=True),
    )
    op.create_table(
        "imports", _id(),
        _col("kind", TEXT), _col("source", TEXT), _col("finished_at", TEXT),
        _col("summary", TEXT),
    )

    # Journal facts, the import ledger, the outbox.
    op.create_table(
        "journal_events",
        _col("event_id", TEXT, primary_key=True),
        _col("type", TEXT), _col("applied_at", TEXT),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "periods", _id(),
        _col("external_id", TEXT, unique=True), _col("name", TEXT),
        _col("start_date", TEXT), _col("end_date", TEXT),
    )
    op.create_table(
        "grades", _id(),
        _col("external_id", TEXT, null=True, unique=True),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _col("subject", TEXT), _col("date", TEXT),
        _col("value", INT, sa.CheckConstraint("value BETWEEN 1 AND 5")),
        _col("weight", INT, sa.CheckConstraint("weight >= 1"), server_default="1"),
        _col("work", TEXT, null=True), _col("comment", TEXT, null=True),
        _col("teacher", TEXT, null=True), _col("set_at", TEXT, null=True),
        _col("dot_id", ID, null=True), _col("deleted_at", TEXT, null=True),
        _col("created_at", TEXT), _col("updated_at", TEXT),
        _col("quiet", INT, server_default="0"),
    )
    op.create_index("grades_student_subject", "grades", ["student_id", "subject", "date"])

    op.create_table(
        "dots", _id(),
        _col("external_id", TEXT, unique=True),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _col("subject", TEXT), _col("date", TEXT), _col("expires", TEXT),
        _col("work", TEXT, null=True), _col("comment", TEXT, null=True),
        _col("teacher", TEXT, null=True), _col("value", INT, null=True),
        _col("weight", INT, server_default="1"),
        _col("status", TEXT, sa.CheckConstraint("status IN ('open', 'graded', 'vanished')"),
             server_default="open"),
        _col("closed_at", TEXT, null=True),
        _ref("grade_id", "grades.id", null=True),
        _col("created_at", TEXT),
    )
    op.create_index("dots_student", "dots", ["student_id", "status"])
    _partial("dots_open", "dots", ["expires"], "status = 'open'")

    op.create_table(
        "attendance", _id(),
        _col("external_id", TEXT, unique=True),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _col("date", TEXT), _col("lesson", INT), _col("subject", TEXT),
        _col("mark", TEXT, sa.CheckConstraint("mark IN ('absent', 'late')")),
        _col("excused", INT, server_default="0"),
        _col("created_at", TEXT),
    )
    op.create_index("attendance_student", "attendance", ["student_id", "date"])

    op.create_table(
        "homework", _id(),
        _col("external_id", TEXT, unique=True),
        _ref("class_id", "classes.id", ondelete="CASCADE"),
        _col("subject", TEXT), _col("due", TEXT), _col("text", TEXT),
        _col("required", INT, server_default="1"),
        _col("updated_at", TEXT),
    )
    op.create_index("homework_class_due", "homework", ["class_id", "due"])

    op.create_table(
        "lessons",
        _ref("class_id", "classes.id", ondelete="CASCADE"),
        _col("date", TEXT), _col("number", INT), _col("subject", TEXT),
        _col("start_time", TEXT), _col("end_time", TEXT),
        _col("room", TEXT, null=True), _col("teacher", TEXT, null=True),
        _col("cancelled", INT, server_default="0"),
        _col("updated_at", TEXT),
        sa.PrimaryKeyConstraint("class_id", "date", "number"),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "outbox", _id(),
        _col("telegram_id", TG), _col("kind", TEXT),
        _col("student_id", ID, null=True), _col("payload", TEXT),
        _col("dedup_key", TEXT, null=True, unique=True),
        _col("created_at", TEXT), _col("not_before", TEXT),
        _col("attempts", INT, server_default="0"),
        _col("claimed_by", TEXT, null=True), _col("claimed_until", TEXT, null=True),
        _col("sent_at", TEXT, null=True), _col("dropped_at", TEXT, null=True),
        _col("last_error", TEXT, null=True),
    )
    pending = "sent_at IS NULL AND dropped_at IS NULL"
    _partial("outbox_pending", "outbox", ["not_before"], pending)
    _partial("outbox_recipient", "outbox", ["telegram_id"], pending)

    # Per-account choices; NULL everywhere means the default.
    op.create_table(
        "account_settings",
        _col("telegram_id", TG, sa.ForeignKey("accounts.telegram_id", ondelete="CASCADE"),
             primary_key=True, autoincrement=False),
        _col("quiet_hours", TEXT, null=True),
        _col("push_homework", INT, null=True), _col("push_timetable", INT, null=True),
        _col("push_grades", INT, null=True), _col("push_dots", INT, null=True),
        _col("push_attendance", INT, null=True), _col("digest_enabled", INT, null=True),
        _col("digest_time", TEXT, null=True), _col("digest_empty", INT, null=True),
        _col("muted_children", TEXT, null=True),
    )

    op.create_table(
        "absence_notices", _id(),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _col("filed_by", TG),
        _ref("guardian_id", "guardians.id", null=True, ondelete="SET NULL"),
        _col("start_date", TEXT), _col("end_date", TEXT),
        _col("lessons", TEXT, null=True),
        _col("reason", TEXT,
             sa.CheckConstraint("reason IN ('illness', 'family', 'medical', 'other')")),
        _col("comment", TEXT, server_default=""),
        _col("created_at", TEXT), _col("cancelled_at", TEXT, null=True),
        sa.CheckConstraint("end_date >= start_date"),
    )
    op.create_index("absence_notices_student", "absence_notices", ["student_id", "start_date"])

    op.create_table(
        "invitations", _id(),
        _col("token_hash", TEXT, unique=True),
        _col("inviter_tg", TG),
        _ref("guardian_id", "guardians.id", ondelete="CASCADE"),
        _col("phone_hash", TEXT), _col("surname", TEXT),
        _col("students", TEXT), _col("scopes", TEXT),
        _col("status", TEXT, sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'expired', 'replaced', 'ended')"),
            server_default="pending"),
        _col("invitee_tg", TG, null=True),
        _col("created_at", TEXT), _col("expires_at", TEXT),
        _col("decided_at", TEXT, null=True),
    )
    op.create_index("invitations_phone", "invitations", ["phone_hash", "status"])
    _partial("invitations_pending", "invitations", ["expires_at"], "status = 'pending'")

    op.create_table(
        "trusts", _id(),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _ref("telegram_id", "accounts.telegram_id", ondelete="CASCADE", type_=TG),
        _ref("guardian_id", "guardians.id", ondelete="CASCADE"),
        _col("inviter_tg", TG),
        _ref("invitation_id", "invitations.id", null=True),
        _col("surname", TEXT), _col("scopes", TEXT), _col("created_at", TEXT),
        sa.UniqueConstraint("student_id", "telegram_id"),
    )
    op.create_index("trusts_account", "trusts", ["telegram_id"])
    op.create_index("trusts_student", "trusts", ["student_id"])

    op.create_table(
        "trust_log", _id(),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _col("event", TEXT), _col("person", TEXT),
        _col("actor_tg", TG, null=True), _col("at", TEXT),
    )
    op.create_index("trust_log_student", "trust_log", ["student_id", "at"])

    op.create_table(
        "digest_log",
        _col("telegram_id", TG), _col("day", TEXT), _col("decided_at", TEXT),
        _col("sent", INT),
        sa.PrimaryKeyConstraint("telegram_id", "day"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "signoffs", _id(),
        _ref("student_id", "students.id", ondelete="CASCADE"),
        _col("week_start", TEXT), _col("telegram_id", TG),
        _ref("guardian_id", "guardians.id", null=True, ondelete="SET NULL"),
        _col("signed_at", TEXT),
        sa.UniqueConstraint("student_id", "week_start", "telegram_id"),
    )
    op.create_index("signoffs_week", "signoffs", ["week_start"])

    op.create_table(
        "workers",
        _col("role", TEXT), _col("owner", TEXT), _col("started_at", TEXT),
        _col("beat_at", TEXT), _col("progress_at", TEXT, null=True),
        _col("last_error", TEXT, null=True),
        sa.PrimaryKeyConstraint("role", "owner"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup instead")
