"""Alembic environment: migrations run on the connection ``core.storage.migrate`` hands over
(already inside its locked transaction), on SQLite and on PostgreSQL alike."""

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `diary db upgrade` (core.storage.migrate.upgrade)")
applied: list[str] = config.attributes.setdefault("applied", [])


def _record(*, ctx, step, heads, run_args) -> None:
    if step.is_upgrade:
        applied.append(step.up_revision_id)


context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=True,          # SQLite cannot ALTER most things: copy-and-move
    transactional_ddl=True,        # both engines roll DDL back with the transaction
    on_version_apply=_record,  # type: ignore[arg-type]  # alembic passes keywords
)
with context.begin_transaction():
    context.run_migrations()
