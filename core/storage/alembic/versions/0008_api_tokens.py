"""The HTTP ingestion API: bearer tokens per source school.

- ``api_tokens``: one row per token a school's journal system holds. The token itself is never
  stored: ``token_hash`` is its HMAC-SHA256 keyed with the instance secret (as phones and link
  codes). ``school`` is the school's name as the roster spells it ('' for a single-school
  installation); a token may be issued before that school's roster is imported. A revoked token
  keeps its row (``revoked_at``) for the record.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("school", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("token_hash", sa.Text(), nullable=False, unique=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("last_used_at", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
