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
    answers: dict[str, int] = field(default_factory=dict)  # module id → quiz answers stored
    messages: tuple[int, int | None] = (0, None)  # messages sent to the user from the outbox: (count, last sent at)
    reminders_off: bool = False
    broadcasts_off: bool = False
    certificate: tuple[str, int] | None = None  # (code, issued at) of a certificate not revoked


@dataclass(frozen=True)
class StaffLink:
    """A chat linked to a partner startup as its staff chat."""

    startup_name: str
    linked_at: int
    lang: str


class SqlitePrivacyRecords:
    """Reads one user's records in one trip to the database."""

    def __init__(self, db: Database):
        self.db = db

    async def stored_about(self, key: UserKey) -> StoredAbout | None:
        def read(conn: sqlite3.Connection) -> StoredAbout | None:
            row = conn.execute(
                "SELECT id, lang, profile, consent, consent_at, consent_version, referral_code, first_seen_at, last_seen_at, "
                "reminders_off, broadcasts_off FROM users WHERE channel = ? AND user_ref = ?",
                (key.channel, key.user_ref),
            ).fetchone()
            if row is None:
                return None
            user_id = row["id"]
            progress = conn.execute(
                "SELECT module_id, attempt, best FROM progress WHERE user_id = ? ORDER BY module_id", (user_id,)
            ).fetchall()
            lead = conn.execute(
                "SELECT l.status, l.created_at, COALESCE(s.name, '') AS startup FROM leads l "
                "LEFT JOIN startups s ON s.id = l.startup_id WHERE l.user_id = ?", (user_id,)
            ).fetchone()
            answers = conn.execute(
                "SELECT module_id, COUNT(*) AS n FROM quiz_answers WHERE user_id = ? GROUP BY module_id", (user_id,)
            ).fetchall()
            # Replies in a conversation are deleted once sent; what stays is the record of reminders,
            # notices and announcements (their text blanked if the owner erased their data).
            sent = conn.execute(
                "SELECT COUNT(*) AS n, MAX(sent_at) AS last FROM outbox WHERE user_id = ? AND kind != 'reply' AND status = 'sent'",
                (user_id,),
            ).fetchone()
            certificate = conn.execute(
                "SELECT code, issued_at FROM certificates WHERE user_id = ? AND revoked_at IS NULL", (user_id,)
            ).fetchone()
            return StoredAbout(
                user_id, row["lang"], json.loads(row["profile"]), row["consent"], row["consent_at"], row["consent_version"],
                row["referral_code"], row["first_seen_at"], row["last_seen_at"],
                [(p["module_id"], p["attempt"], p["best"] or 0) for p in progress],
                (lead["status"], lead["created_at"], lead["startup"]) if lead is not None else None,
                {a["module_id"]: a["n"] for a in answers},
                (sent["n"], sent["last"]),
                bool(row["reminders_off"]), bool(row["broadcasts_off"]),
                (certificate["code"], certificate["issued_at"]) if certificate is not None else None,
            )

        return await self.db.run(read)

    async def staff_link(self, key: UserKey) -> StaffLink | None:
        """The startup this chat is a staff chat of, if it is one."""
        row = await self.db.fetchone(
            "SELECT s.name, st.linked_at, st.lang FROM startup_staff st JOIN startups s ON s.id = st.startup_id "
            "WHERE st.channel = ? AND st.chat_ref = ?",
            (key.channel, key.user_ref),
        )
        return None if row is None else StaffLink(row["name"], row["linked_at"], row["lang"])
