"""Keeping the database the size a year of traffic needs, not the size of everything that ever happened.

- ``prune_seen``: handled update ids past their channel's window (``inbox.SEEN_FOR``);
- ``expire_held``: WhatsApp messages held for a user who has not written for ``HELD_DAYS`` are
  given up ('cancelled', "expired"): a reminder or an announcement weeks old would only confuse;
- ``prune_outbox``: delivery records (sent, failed, cancelled …) older than ``OUTBOX_DAYS``, except
  the reminders that still count against an owner who has not written since (the "three nudges"
  rule reads them);
- ``prune_events``: the event log after ``EVENT_DAYS``, except the records of consent and erasure
  (kept for as long as the owner's row: they are the proof, and ``/stats`` reads the erasures);
  the funnel itself is counted from users, progress and leads, which stay;
- ``prune_answers``: single quiz answers after ``ANSWER_DAYS`` (a module's best score and its pass
  stay in ``progress``);
- ``quick_check`` on a connection of its own (a reader beside the bot's, so turns go on meanwhile);
- ``optimize`` (``PRAGMA optimize``) and ``checkpoint`` (the WAL folded in and truncated).

Pruning goes in small transactions so a turn never waits long behind it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from .db import Database
from .inbox import SEEN_FOR, prune_seen

OUTBOX_DAYS = 30
HELD_DAYS = 7
EVENT_DAYS = 90
ANSWER_DAYS = 180
KEPT_EVENTS = ("consent_given", "consent_refused", "data_deleted")
BATCH = 5000
USERS_PER_PASS = 2000  # quiz answers are keyed by owner: pruned a range of owners per transaction
_FINISHED = "('sent', 'failed', 'cancelled', 'skipped', 'unknown', 'blocked')"
# The first row of the retention window: rows are added in time order, so everything before it is old.
_FIRST_RECENT = "SELECT id FROM outbox WHERE created_at >= ? ORDER BY id LIMIT 1"
_LAST_ID = "SELECT COALESCE(MAX(id), 0) FROM outbox"
_PRUNE_OUTBOX = (
    "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o WHERE o.id < ? AND o.created_at < ? "
    f"AND o.status IN {_FINISHED} AND o.kind != 'reply' "
    "AND NOT (o.kind = 'reminder' AND o.created_at >= COALESCE((SELECT u.last_seen_at FROM users u WHERE u.id = o.user_id), 0)) "
    "ORDER BY o.id LIMIT ?)"
)
CHANNELS = (*SEEN_FOR, "console")
_FIRST_RECENT_EVENT = "SELECT id FROM events WHERE at >= ? ORDER BY id LIMIT 1"
_LAST_EVENT = "SELECT COALESCE(MAX(id), 0) FROM events"
_PRUNE_EVENTS = (
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < ? AND at < ? "
    f"AND kind NOT IN ({', '.join(repr(k) for k in KEPT_EVENTS)}) ORDER BY id LIMIT ?)"
)
_LAST_USER = "SELECT COALESCE(MAX(id), 0) FROM users"
_PRUNE_ANSWERS = "DELETE FROM quiz_answers WHERE user_id > ? AND user_id <= ? AND answered_at < ?"


class SqliteMaintenance:
    """The daily housekeeping of one database."""

    def __init__(self, db: Database):
        self.db = db

    async def prune_seen(self, now: int, batch: int = BATCH) -> int:
        """Forget handled update ids past their window; how many."""
        total = 0
        for channel in CHANNELS:
            while True:
                done = await self.db.run_transaction(lambda conn, c=channel: prune_seen(conn, c, now, batch))
                total += done
                if done < batch:
                    break
                await asyncio.sleep(0)  # let a waiting turn in between batches
        return total

    async def expire_held(self, now: int, days: int = HELD_DAYS) -> int:
        """Give up messages held (outside WhatsApp's window) for longer than ``days``; how many."""
        return await self.db.run_transaction(lambda conn: conn.execute(
            "UPDATE outbox SET status = 'cancelled', error = ? WHERE status = 'held' AND created_at < ?",
            (f"expired: the user did not write within {days} days", now - days * 24 * 3600)).rowcount)

    async def prune_early_statuses(self, now: int, days: int = HELD_DAYS) -> int:
        """Forget statuses that waited ``days`` for a message id no outbox row ever had; how many."""
        return await self.db.run_transaction(lambda conn: conn.execute(
            "DELETE FROM early_statuses WHERE received_at < ?", (now - days * 24 * 3600,)).rowcount)

    async def prune_outbox(self, now: int, days: int = OUTBOX_DAYS, batch: int = BATCH) -> int:
        """Delete finished outbox rows older than ``days``; how many."""
        cutoff = now - days * 24 * 3600

        def first_recent(conn: sqlite3.Connection) -> int:
            row = conn.execute(_FIRST_RECENT, (cutoff,)).fetchone()
            return row[0] if row is not None else conn.execute(_LAST_ID).fetchone()[0] + 1

        below = await self.db.run(first_recent)
        total = 0
        while True:
            done = await self.db.run_transaction(lambda conn: conn.execute(_PRUNE_OUTBOX, (below, cutoff, batch)).rowcount)
            total += done
            if done < batch:
                return total
            await asyncio.sleep(0)

    async def prune_events(self, now: int, days: int = EVENT_DAYS, batch: int = BATCH) -> int:
        """Delete logged events older than ``days`` (not consents and erasures); how many."""
        cutoff = now - days * 24 * 3600

        def first_recent(conn: sqlite3.Connection) -> int:
            row = conn.execute(_FIRST_RECENT_EVENT, (cutoff,)).fetchone()
            return row[0] if row is not None else conn.execute(_LAST_EVENT).fetchone()[0] + 1

        below = await self.db.run(first_recent)
        total = 0
        while True:
            done = await self.db.run_transaction(lambda conn: conn.execute(_PRUNE_EVENTS, (below, cutoff, batch)).rowcount)
            total += done
            if done < batch:
                return total
            await asyncio.sleep(0)

    async def prune_answers(self, now: int, days: int = ANSWER_DAYS, users: int = USERS_PER_PASS) -> int:
        """Delete single quiz answers older than ``days``, a range of owners at a time; how many."""
        cutoff = now - days * 24 * 3600
        last = await self.db.run(lambda conn: conn.execute(_LAST_USER).fetchone()[0])
        total = 0
        for start in range(0, last, users):
            total += await self.db.run_transaction(
                lambda conn, a=start: conn.execute(_PRUNE_ANSWERS, (a, a + users, cutoff)).rowcount)
            await asyncio.sleep(0)
        return total

    async def quick_check(self) -> list[str]:
        """``PRAGMA quick_check`` on a read-only connection of its own: ``["ok"]`` when sound.

        On PostgreSQL the server checks its own pages (data checksums, when the cluster has them);
        this only checks that the database answers.
        """
        if self.db.engine == "postgresql":
            await self.db.fetchone("SELECT 1")
            return ["ok"]
        if self.db.path == ":memory:":
            return ["ok"]

        def check() -> list[str]:
            conn = sqlite3.connect(f"{Path(self.db.path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            try:
                return [str(r[0]) for r in conn.execute("PRAGMA quick_check(20)").fetchall()]
            finally:
                conn.close()

        return await asyncio.to_thread(check)

    async def optimize(self) -> None:
        """Refresh the query planner's statistics where they went stale (``PRAGMA optimize``; ``ANALYZE``)."""
        if self.db.engine == "postgresql":
            await self.db.run(lambda conn: conn.execute("ANALYZE"))
            return
        await self.db.run(lambda conn: conn.execute("PRAGMA optimize").fetchall())

    async def checkpoint(self) -> tuple[int, int, int]:
        """The WAL folded into the database and truncated (see ``Database.checkpoint``)."""
        return await self.db.checkpoint()

    async def counts(self) -> dict[str, int]:
        """Rows in the tables that grow with traffic."""
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("seen_updates", "outbox", "events", "quiz_answers", "inbox")}

        return await self.db.run(read)

    async def file_bytes(self) -> int:
        """The size of the database file and its WAL, in bytes (on PostgreSQL: ``pg_database_size``)."""
        if self.db.engine == "postgresql":
            return int((await self.db.fetchone("SELECT pg_database_size(current_database())"))[0])
        if self.db.path == ":memory:":
            return 0
        return sum(Path(self.db.path + suffix).stat().st_size for suffix in ("", "-wal")
                   if Path(self.db.path + suffix).exists())
