"""What is stored about one user, read for ``/my_data`` (the erasing is in ``sessions.save_turn``)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..core.messages import UserKey
from .db import Database


@dataclass(frozen=True)
class StoredAbout:
    """Everything kept about one user that ``/my_data`` shows."""

    user_id: int
    lang: str
    profile: dict[str, Any]
    consent: str | None
    consent_at: int | None
    consent_version: int | None
    referral_code: str | None
    first_seen_at: int
    last_seen_at: int
    progress: list[tuple[str, int, int]] = field(default_factory=list)  # (module id, attempts, best)
    lead: tuple[str, int, str] | None = None  # (status, created at, the startup's name or "")


class SqlitePrivacyRecords:
    """Reads one user's records in one trip to the database."""

    def __init__(self, db: Database):
        self.db = db

    async def stored_about(self, key: UserKey) -> StoredAbout | None:
        def read(conn: sqlite3.Connection) -> StoredAbout | None:
            row = conn.execute(
                "SELECT id, lang, profile, consent, consent_at, consent_version, referral_code, first_seen_at, last_seen_at "
                "FROM users WHERE channel = ? AND user_ref = ?",
                (key.channel, key.user_ref),
            ).fetchone()
            if row is None:
                return None
            progress = conn.execute(
                "SELECT module_id, attempt, best FROM progress WHERE user_id = ? ORDER BY module_id", (row["id"],)
            ).fetchall()
            lead = conn.execute(
                "SELECT l.status, l.created_at, COALESCE(s.name, '') AS startup FROM leads l "
                "LEFT JOIN startups s ON s.id = l.startup_id WHERE l.user_id = ?", (row["id"],)
            ).fetchone()
            return StoredAbout(
                row["id"], row["lang"], json.loads(row["profile"]), row["consent"], row["consent_at"], row["consent_version"],
                row["referral_code"], row["first_seen_at"], row["last_seen_at"],
                [(p["module_id"], p["attempt"], p["best"] or 0) for p in progress],
                (lead["status"], lead["created_at"], lead["startup"]) if lead is not None else None,
            )

        return await self.db.run(read)
