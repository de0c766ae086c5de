"""Scheduled jobs read only what is due: each account's next digest moment, and indexes on what
the other jobs look for.

- ``accounts.digest_due_at``: when the account's next daily digest is due (UTC text; NULL: no
  digest), behind the partial index ``accounts_digest_due`` of reachable accounts. Existing
  accounts that may get a digest (switched on, following a child by a link or by a trust with
  the digest scope) are made due at once ("1970-01-01…"): the first digest run works out each
  one's moment in school time, and sends today's digest if its time has come.
- ``grades_created``: an account's grades announced today, without reading the day's grades of
  every school.
- ``dots_open_date``: open dots of an attestation period that has ended.
- ``outbox_sent``, ``outbox_dropped``, ``digest_log_day``, ``link_codes_expires``,
  ``link_codes_used``, ``fsm_state_updated``, ``code_failures_at``: what housekeeping deletes.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH = "1970-01-01T00:00:00.000000Z"


def _partial(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(name, table, columns, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("digest_due_at", sa.Text(), nullable=True))
    op.execute(sa.text(
        "UPDATE accounts SET digest_due_at = :epoch WHERE"
        " (EXISTS (SELECT 1 FROM account_links l WHERE l.telegram_id = accounts.telegram_id)"
        " OR EXISTS (SELECT 1 FROM trusts t WHERE t.telegram_id = accounts.telegram_id"
        " AND (t.scopes IS NULL OR ',' || t.scopes || ',' LIKE '%,digest,%')))"
        " AND NOT EXISTS (SELECT 1 FROM account_settings s"
        " WHERE s.telegram_id = accounts.telegram_id AND s.digest_enabled = 0)"
    ).bindparams(epoch=EPOCH))
    _partial("accounts_digest_due", "accounts", ["digest_due_at"],
             "digest_due_at IS NOT NULL AND unreachable_at IS NULL")
    _partial("grades_created", "grades", ["student_id", "created_at"],
             "deleted_at IS NULL AND quiet = 0")
    _partial("dots_open_date", "dots", ["date"], "status = 'open'")
    _partial("outbox_sent", "outbox", ["sent_at"], "sent_at IS NOT NULL")
    _partial("outbox_dropped", "outbox", ["dropped_at"], "dropped_at IS NOT NULL")
    op.create_index("digest_log_day", "digest_log", ["day"])
    op.create_index("link_codes_expires", "link_codes", ["expires_at"])
    _partial("link_codes_used", "link_codes", ["used_at"], "used_at IS NOT NULL")
    op.create_index("fsm_state_updated", "fsm_state", ["updated_at"])
    op.create_index("code_failures_at", "code_failures", ["at"])


def downgrade() -> None:
    for name, table in (("code_failures_at", "code_failures"),
                        ("fsm_state_updated", "fsm_state"),
                        ("link_codes_used", "link_codes"),
                        ("link_codes_expires", "link_codes"),
                        ("digest_log_day", "digest_log"),
                        ("outbox_dropped", "outbox"),
                        ("outbox_sent", "outbox"),
                        ("dots_open_date", "dots"),
                        ("grades_created", "grades"),
                        ("accounts_digest_due", "accounts")):
        op.drop_index(name, table)
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("digest_due_at")
