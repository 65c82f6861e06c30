"""Moving a chat to a new identifier: a WhatsApp user whose id changed keeps everything.

A chat is known by ``(channel, ref)`` in six tables: ``users``, ``outbox``, ``startup_staff``,
``broadcast_drafts``, ``inbox`` and ``chat_inbound``. WhatsApp's ids change in two ways: a user
first known by their phone number (wa_id) starts arriving with a business-scoped user id (the
bot keys them by that from then on, so no phone number stays a key), and a user changes their
number or WhatsApp gives them a new business-scoped id (a ``system`` message says so). ``move``
rewrites the ref everywhere in one transaction, so progress, lead, staff link, queued messages
and window follow the person.

If the new ref already has a user row, it is the same person who wrote from the new identity
before the system message came (WhatsApp sends it with their next message): a row that has not
finished onboarding, started a module or become a lead is dropped and the old one takes its
ref. A new row that went further is kept, and the old one stays under its old ref: two records
of one person are merged by nobody but the person (the older one can still be erased by them).
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from .db import Database

__all__ = ["SqliteIdentities", "CHAT_TABLES", "Moved"]

CHAT_TABLES = (
    ("users", "user_ref"), ("outbox", "chat_ref"), ("startup_staff", "chat_ref"), ("broadcast_drafts", "chat_ref"),
    ("inbox", "chat_ref"), ("chat_inbound", "chat_ref"),
)
Moved = Literal["moved", "merged", "kept", "nothing"]


class SqliteIdentities:
    """Moves a chat from one ref to another."""

    def __init__(self, db: Database):
        self.db = db

    async def move(self, channel: str, old: str, new: str) -> Moved:
        """Give everything of ``old`` to ``new`` (see the module's rules); what happened."""
        if old == new:
            return "nothing"
        return await self.db.run_transaction(lambda conn: move(conn, channel, old, new))


def move(conn: sqlite3.Connection, channel: str, old: str, new: str) -> Moved:
    """``SqliteIdentities.move`` inside the caller's transaction."""
    def user(ref: str) -> sqlite3.Row | None:
        return conn.execute("SELECT id, onboarded_at FROM users WHERE channel = ? AND user_ref = ?", (channel, ref)).fetchone()

    before, after = user(old), user(new)
    staff = conn.execute("SELECT 1 FROM startup_staff WHERE channel = ? AND chat_ref = ?", (channel, old)).fetchone()
    if before is None and staff is None:
        return "nothing"
    outcome: Moved = "moved"
    if before is not None and after is not None:
        went_on = after["onboarded_at"] is not None or conn.execute(
            "SELECT 1 FROM progress WHERE user_id = ? UNION ALL SELECT 1 FROM leads WHERE user_id = ? LIMIT 1",
            (after["id"], after["id"])).fetchone() is not None
        if went_on:
            return "kept"
        # the new row's messages go with it (cascade); its stored updates were handled already
        conn.execute("DELETE FROM users WHERE id = ?", (after["id"],))
        outcome = "merged"
    for table, column in CHAT_TABLES:
        # a row of ``new`` in a table keyed by the ref (a window, a draft) is newer: it stays
        conn.execute(f"UPDATE OR IGNORE {table} SET {column} = ? WHERE channel = ? AND {column} = ?",  # noqa: S608
                     (new, channel, old))
        conn.execute(f"DELETE FROM {table} WHERE channel = ? AND {column} = ?", (channel, old))  # noqa: S608
    return outcome
