"""The inbox: platform updates stored before they are acknowledged, until they are handled.

A channel ``put``s each update (or webhook message) the moment it arrives, and only then tells
the platform it was received. Handled updates are marked ``done`` in memory and deleted in the
next write (or by ``flush``): a crash between the two only means some handled updates are
handled again after the restart, and the turn's own dedup row makes that a no-op.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from ..core.messages import InboxItem
from .db import Database

__all__ = ["InboxItem", "SqliteInbox"]


class SqliteInbox:
    """The inbox table."""

    def __init__(self, db: Database):
        self.db = db
        self._done: list[tuple[str, str]] = []

    async def put(self, channel: str, items: Sequence[InboxItem], now: int) -> None:
        """Store ``items`` durably (one transaction), deleting what was handled since the last write."""
        done, self._done = self._done, []

        def write(conn: sqlite3.Connection) -> None:
            if done:
                conn.executemany("DELETE FROM inbox WHERE channel = ? AND update_id = ?", done)
            conn.executemany(
                "INSERT OR IGNORE INTO inbox (channel, update_id, chat_ref, payload, received_at) VALUES (?, ?, ?, ?, ?)",
                [(channel, item.update_id, item.chat_ref, item.payload, now) for item in items],
            )

        try:
            await self.db.run_transaction(write)
        except BaseException:
            self._done = done + self._done
            raise

    def done(self, channel: str, update_id: str) -> None:
        """``update_id`` was handled; its row goes with the next write."""
        self._done.append((channel, update_id))

    async def flush(self) -> None:
        """Delete the rows of handled updates now (at a stop, or when no update came for a while)."""
        if self._done:
            await self.put("", (), 0)

    async def pending(self, channel: str) -> list[InboxItem]:
        """Updates stored but not known to be handled, oldest first (replayed at start-up)."""
        done = set(self._done)
        rows = await self.db.fetchall(
            "SELECT update_id, payload, chat_ref FROM inbox WHERE channel = ? ORDER BY id", (channel,)
        )
        return [InboxItem(r["update_id"], r["payload"], r["chat_ref"]) for r in rows if (channel, r["update_id"]) not in done]

    async def count(self) -> int:
        """How many updates are stored and not yet deleted."""
        row = await self.db.fetchone("SELECT COUNT(*) FROM inbox")
        return int(row[0])
