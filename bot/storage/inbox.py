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

__all__ = ["InboxItem", "SqliteInbox", "SEEN_FOR", "already_seen", "mark_seen", "prune_seen"]

DAY = 24 * 3600
SEEN_FOR = {"telegram": DAY, "whatsapp": 7 * DAY}
"""How long a handled update's id is kept, per channel: as long as the platform may deliver it again.

Telegram keeps an update for redelivery at most 24 hours, and after a week without updates it
starts its ids anywhere, so an old id may come back on a new update; WhatsApp's message ids are
unique, and Meta retries a webhook for up to 7 days. Other channels (the terminal): a day."""

# Seen: handled within the channel's window, or handled after this very copy was stored (a replay of
# the inbox after a long stop). An id older than both is a new update that happens to share it.
_SELECT_SEEN = (
    "SELECT 1 FROM seen_updates s WHERE s.channel = ? AND s.update_id = ? AND (s.at >= ? OR s.at >= "
    "(SELECT i.received_at FROM inbox i WHERE i.channel = s.channel AND i.update_id = s.update_id))"
)
_MARK_SEEN = (
    "INSERT INTO seen_updates (channel, update_id, at) VALUES (?, ?, ?) "
    "ON CONFLICT (channel, update_id) DO UPDATE SET at = excluded.at"
)
_PRUNE_SEEN = (
    "DELETE FROM seen_updates WHERE (channel, update_id) IN (SELECT s.channel, s.update_id FROM seen_updates s "
    "WHERE s.channel = ? AND s.at < ? AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.channel = s.channel "
    "AND i.update_id = s.update_id) LIMIT ?)"
)


def seen_window(channel: str) -> int:
    """Seconds a handled update id of ``channel`` is remembered."""
    return SEEN_FOR.get(channel, DAY)


def already_seen(conn: sqlite3.Connection, channel: str, update_id: str, now: int) -> bool:
    """Whether this update was handled already (an old id past its window does not count)."""
    return conn.execute(_SELECT_SEEN, (channel, update_id, now - seen_window(channel))).fetchone() is not None


def mark_seen(conn: sqlite3.Connection, channel: str, update_id: str, now: int) -> None:
    """Record the update as handled now (in the transaction of what handling it did)."""
    conn.execute(_MARK_SEEN, (channel, update_id, now))


def prune_seen(conn: sqlite3.Connection, channel: str, now: int, limit: int) -> int:
    """Forget up to ``limit`` ids of ``channel`` past their window (never one still in the inbox)."""
    return conn.execute(_PRUNE_SEEN, (channel, now - seen_window(channel), limit)).rowcount


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
                "INSERT INTO inbox (channel, update_id, chat_ref, payload, received_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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

    async def of_chat(self, channel: str, chat_ref: str) -> list[InboxItem]:
        """The updates stored for one chat and not yet removed (``remove``), in the order they were stored."""
        rows = await self.db.fetchall(
            "SELECT update_id, payload, chat_ref FROM inbox WHERE channel = ? AND chat_ref = ? ORDER BY id", (channel, chat_ref)
        )
        return [InboxItem(r["update_id"], r["payload"], r["chat_ref"]) for r in rows]

    async def remove(self, channel: str, update_id: str) -> None:
        """Delete a handled update's row now, not with the next write: where several workers share the
        inbox, a row left behind would look unhandled to the others."""
        await self.db.execute("DELETE FROM inbox WHERE channel = ? AND update_id = ?", (channel, update_id))

    async def stale_chats(self, channel: str, stored_before: int) -> list[str]:
        """Chats with an update of ``channel`` stored before ``stored_before`` and still here."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT chat_ref FROM inbox WHERE channel = ? AND received_at < ?", (channel, stored_before)
        )
        return [str(r[0]) for r in rows]

    async def count(self) -> int:
        """How many updates are stored and not yet deleted."""
        row = await self.db.fetchone("SELECT COUNT(*) FROM inbox")
        return int(row[0])
