"""Owners who may be due a reminder: one indexed query, read in pages by user id."""

from __future__ import annotations

import sqlite3

from .db import Database

PAGE = 1000
_CANDIDATES = """
    SELECT u.id, u.channel, u.user_ref, u.lang, u.profile, u.last_seen_at,
           (SELECT p.module_id FROM progress p WHERE p.user_id = u.id AND p.passed = 0
             ORDER BY p.updated_at DESC LIMIT 1) AS module_id,
           (SELECT COUNT(*) FROM outbox o WHERE o.user_id = u.id AND o.kind = 'reminder'
             AND o.created_at >= u.last_seen_at) AS nudges,
           (SELECT MAX(o.created_at) FROM outbox o WHERE o.user_id = u.id AND o.kind = 'reminder') AS last_nudge
    FROM users u
    WHERE u.id > ? AND u.last_seen_at <= ? AND u.reminders_off = 0 AND u.blocked_at IS NULL
      AND u.onboarded_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM progress p WHERE p.user_id = u.id AND p.passed = 0)
    ORDER BY u.id LIMIT ?
"""


class SqliteReminderCandidates:
    """Onboarded owners, quiet since a moment, with a module in progress, reminders on, not blocked."""

    def __init__(self, db: Database):
        self.db = db

    async def page(self, after_user_id: int, quiet_since: int, limit: int = PAGE) -> list[sqlite3.Row]:
        """The next ``limit`` candidates after ``after_user_id`` (with their nudge counts), by user id."""
        return await self.db.fetchall(_CANDIDATES, (after_user_id, quiet_since, limit))
