"""`diary db copy`: every row of one database into another (a school moving from SQLite to
PostgreSQL, or back), all or nothing.

The target is brought to the current schema first and must hold no rows. Tables are copied in
the order of their foreign keys, in one transaction of the target; on PostgreSQL the id
sequences then continue after the copied ids. Hashes of phones, SNILS, e-mails and codes are
copied as they are, so the target needs the same ``SECRET_KEY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import MetaData, func, insert, select, text

from core.storage.db import Database
from core.storage.migrate import upgrade

# Migration bookkeeping is the target's own.
SKIP = {"alembic_version", "schema_migrations"}
BATCH = 2000


class TargetNotEmpty(Exception):
    def __init__(self, tables: list[str]) -> None:
        super().__init__(", ".join(tables))
        self.tables = tables


@dataclass
class CopyResult:
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def copy_database(source: Database, target: Database) -> CopyResult:
    await upgrade(source)
    await upgrade(target)
    metadata = MetaData()
    async with target.engine.connect() as conn:
        await conn.run_sync(lambda c: metadata.reflect(c))
    tables = [t for t in metadata.sorted_tables if t.name not in SKIP]
    source_tables = await source.tables()
    busy = []
    async with target.read(snapshot=False) as tx:
        for table in tables:
            if await tx.scalar(f"SELECT COUNT(*) FROM {table.name}"):
                busy.append(table.name)
    if busy:
        raise TargetNotEmpty(busy)
    result = CopyResult()
    async with target.transaction() as tx:
        for table in tables:
            if table.name not in source_tables:
                continue
            names = [c.name for c in table.columns]
            stmt = select(*[text(f'"{n}"') for n in names]).select_from(text(table.name))
            copied = 0
            async with source.read() as read:
                rows = (await read.conn.execute(stmt)).all()
            for start in range(0, len(rows), BATCH):
                chunk = [dict(zip(names, row, strict=True)) for row in rows[start:start + BATCH]]
                await tx.conn.execute(insert(table), chunk)
                copied += len(chunk)
            result.rows[table.name] = copied
        if not target.is_sqlite:
            for table in tables:
                column = table.columns.get("id")
                if column is None or not column.autoincrement or not column.primary_key:
                    continue
                top = (await tx.conn.execute(select(func.max(column)))).scalar()
                sequence = (await tx.conn.execute(
                    text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name})).scalar()
                if sequence and top is not None:
                    await tx.conn.execute(text("SELECT setval(:s, :v)"),
                                          {"s": sequence, "v": int(top)})
    return result
