"""Messages sent as paid broadcasts (above Telegram's free rate), per school day.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paid_messages",
        sa.Column("day", sa.Text(), primary_key=True),  # YYYY-MM-DD, school time
        sa.Column("messages", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paid_messages")
