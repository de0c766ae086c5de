"""The weekly chart in Friday's digest.

- ``account_settings.digest_chart``: on Fridays the digest is followed by a picture of each
  child's week (NULL: off).
- ``outbox_week_chart_sent`` / ``_dropped``: the rows of those pictures (some 60 KB each) that
  went out or were dropped, which housekeeping deletes after a day rather than 30, found without
  reading every other push of the month.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CHARTS = sa.text("kind = 'week_chart'")


def upgrade() -> None:
    with op.batch_alter_table("account_settings") as batch:
        batch.add_column(sa.Column("digest_chart", sa.Integer(), nullable=True))
    for column in ("sent", "dropped"):
        op.create_index(f"outbox_week_chart_{column}", "outbox", [f"{column}_at"],
                        sqlite_where=CHARTS, postgresql_where=CHARTS)


def downgrade() -> None:
    for column in ("sent", "dropped"):
        op.drop_index(f"outbox_week_chart_{column}", "outbox")
    with op.batch_alter_table("account_settings") as batch:
        batch.drop_column("digest_chart")
