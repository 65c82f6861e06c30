"""Moving an existing SQLite database to PostgreSQL (``saathi migrate-to URL``): every row, verified by counts.

The source is brought to the latest schema first (as the bot would at start), the target is
migrated by its own numbered files. Tables are copied in an order that satisfies their foreign
keys, in one PostgreSQL transaction: a failure leaves the target as it was. Row ids are kept,
and each identity sequence is moved past the largest id so new rows never collide. The target
must be empty (no rows in any table): a second run refuses instead of mixing two copies.
"""

from __future__ import annotations

from typing import Any

from .db import Database
from .pg import PgDatabase

# Parents before children (foreign keys); every table of the schema is named once.
TABLE_ORDER = (
    "startups", "users", "progress", "quiz_answers", "events", "seen_updates", "outbox", "startup_staff", "invites",
    "leads", "lead_offers", "lead_history", "broadcasts", "broadcast_drafts", "inbox", "certificates", "chat_inbound",
    "early_statuses", "dashboard_tokens", "lead_notes",
)
IDENTITY_TABLES = ("users", "events", "outbox", "leads", "lead_history", "broadcasts", "inbox")
BATCH = 1000


class TransferError(Exception):
    """The copy cannot be made (the target is not empty, a table is unknown, counts differ)."""


async def copy_to_postgres(source: Database, target: PgDatabase) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; rows per table, as counted on both sides."""
    source_tables = set(await source.tables())
    unknown = source_tables - set(TABLE_ORDER)
    if unknown:
        raise TransferError(f"tables this version does not know how to copy: {', '.join(sorted(unknown))}")
    target_tables = set(await target.tables())
    missing = [t for t in TABLE_ORDER if t in source_tables and t not in target_tables]
    if missing:
        raise TransferError(f"the PostgreSQL schema lacks {', '.join(missing)}: is it older than this version?")
    for table in TABLE_ORDER:
        if table in target_tables and (await target.fetchone(f"SELECT COUNT(*) FROM {table}"))[0]:
            raise TransferError(f"the PostgreSQL database is not empty ({table} has rows); nothing was copied")

    plan: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
    for table in TABLE_ORDER:
        if table not in source_tables:
            continue
        wanted = set(await target.columns(table))
        columns = [c for c in await source.columns(table) if c in wanted]
        rows = [tuple(r) for r in await source.fetchall(f"SELECT {', '.join(columns)} FROM {table}")]
        plan.append((table, columns, rows))

    def work(conn: Any) -> None:
        for table, columns, rows in plan:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for start in range(0, len(rows), BATCH):
                conn.executemany(sql, rows[start:start + BATCH])
        for table in IDENTITY_TABLES:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}")

    await target.run_transaction(work)
    counts: dict[str, int] = {}
    for table, _, rows in plan:
        copied = (await target.fetchone(f"SELECT COUNT(*) FROM {table}"))[0]
        if copied != len(rows):
            raise TransferError(f"{table}: {len(rows)} row(s) in SQLite but {copied} in PostgreSQL")
        counts[table] = copied
    await target.run(lambda conn: conn.execute("ANALYZE"))  # statistics for the planner now, not at autovacuum's leisure
    return counts
