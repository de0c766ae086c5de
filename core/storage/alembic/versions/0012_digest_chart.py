"""The weekly chart in Friday's digest.

- ``account_settings.digest_chart``: on Fridays the digest is followed by a picture of each
  child's week (NULL: off).

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


def upgrade() -> None:
    with op.batch_alter_table("account_settings") as batch:
        batch.add_column(sa.Column("digest_chart", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_settings") as batch:
        batch.drop_column("digest_chart")
