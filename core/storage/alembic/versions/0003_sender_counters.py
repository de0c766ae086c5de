"""Senders' counters for /metrics, and the indexes of the outbox claim across processes.

- ``workers.messages``, ``rate_limited``, ``paid``: what each sender has done since it started
  (Prometheus counters, kept in the shared database so any web worker can show them), and
  ``sent_per_second``: its rate over its last heartbeat interval.
- ``outbox_due_order``: pending rows in id order, so a claim takes the oldest due rows without
  sorting the whole queue.
- ``outbox_claimed``: the rows a sender holds, so it renews its lease cheaply.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "sent_at IS NULL AND dropped_at IS NULL"


def _partial(name: str, columns: list[str], where: str) -> None:
    op.create_index(name, "outbox", columns, sqlite_where=sa.text(where),
                    postgresql_where=sa.text(where))


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        for name in ("messages", "rate_limited", "paid"):
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False,
                                       server_default="0"))
        batch.add_column(sa.Column("sent_per_second", sa.Float(), nullable=False,
                                   server_default="0"))
    _partial("outbox_due_order", ["id"], PENDING)
    _partial("outbox_claimed", ["claimed_by"], f"{PENDING} AND claimed_by IS NOT NULL")


def downgrade() -> None:
    op.drop_index("outbox_claimed", "outbox")
    op.drop_index("outbox_due_order", "outbox")
    with op.batch_alter_table("workers") as batch:
        for name in ("sent_per_second", "paid", "rate_limited", "messages"):
            batch.drop_column(name)
