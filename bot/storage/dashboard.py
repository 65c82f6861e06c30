"""The web dashboard's tables and queries: sign-in links, sessions, the staff board, the broadcast list,
and each startup's note and follow-up day on its leads (``lead_notes``, keyed by lead and startup).

Tokens are kept as SHA-256 hashes only (``dashboard_tokens``); the caller hashes. A link is spent
by the one UPDATE that marks it used, so two clicks racing cannot both open a session. Expired
rows are deleted whenever a new one is written (their retention is their lifetime).
The SQL runs on SQLite and PostgreSQL alike (``?`` placeholders, ``RETURNING``, ``->>``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .db import Database

BOARD_LIMIT = 1000  # the most leads a board shows (newest first)


@dataclass(frozen=True)
class Grant:
    """Whom a link or session stands for: the chat they are known by, and their language."""

    channel: str
    chat_ref: str
    platform_user_id: int | None
    lang: str
    csrf: str | None = None
    expires_at: int = 0


@dataclass(frozen=True)
class BoardLead:
    """One lead on the staff board."""

    id: int
    status: str
    score: int
    state: str | None
    sector: str | None
    lang: str
    offered_at: int | None
    created_at: int
    profile: dict
    follow_up: str | None = None  # YYYY-MM-DD, India time
    note: str | None = None
    accepted_at: int | None = None  # only when the board is read for an export


@dataclass(frozen=True)
class LeadNote:
    """The startup's note and follow-up date on one of its leads (who set each, and when)."""

    note: str | None = None
    note_by: str | None = None
    note_at: int | None = None
    follow_up: str | None = None
    follow_up_by: str | None = None
    follow_up_at: int | None = None


@dataclass(frozen=True)
class DueFollowUp:
    """A follow-up whose day has come, on a lead still open."""

    lead_id: int
    startup_id: str
    follow_up: str
    business: str | None


@dataclass(frozen=True)
class BroadcastLine:
    """One broadcast in the admins' list."""

    id: int
    kind: str
    module_id: str | None
    text_en: str | None
    text_hi: str | None
    recipients: int
    status: str
    created_at: int


def _grant(row) -> Grant:
    return Grant(row["channel"], row["chat_ref"], row["platform_user_id"], row["lang"], row["csrf"], row["expires_at"])


_GRANT = "channel, chat_ref, platform_user_id, lang, csrf, expires_at"


class SqliteDashboard:
    """Sign-in links, sessions and the dashboard's read queries."""

    def __init__(self, db: Database):
        self.db = db

    async def add(self, kind: str, token_hash: str, grant: Grant, now: int) -> None:
        """Store a link or session (``kind``) valid until ``grant.expires_at``; expired ones go."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM dashboard_tokens WHERE expires_at < ?", (now,))
            await conn.execute(
                "INSERT INTO dashboard_tokens (token_hash, kind, channel, chat_ref, platform_user_id, lang, csrf, expires_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (token_hash, kind, grant.channel, grant.chat_ref, grant.platform_user_id, grant.lang, grant.csrf,
                 grant.expires_at, now),
            )

    async def spend_link(self, token_hash: str, now: int) -> Grant | None:
        """Mark the link used and return whom it stands for; ``None`` if unknown, used or expired."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE dashboard_tokens SET used_at = ? WHERE token_hash = ? AND kind = 'link' AND used_at IS NULL "
                f"AND expires_at > ? RETURNING {_GRANT}",
                (now, token_hash, now),
            )
            row = await cur.fetchone()
        return _grant(row) if row else None

    async def session(self, token_hash: str, now: int) -> Grant | None:
        """The live session with this hash."""
        row = await self.db.fetchone(
            f"SELECT {_GRANT} FROM dashboard_tokens WHERE token_hash = ? AND kind = 'session' AND expires_at > ?",
            (token_hash, now),
        )
        return _grant(row) if row else None

    async def set_lang(self, token_hash: str, lang: str) -> None:
        """The session's viewer chose another language."""
        await self.db.execute("UPDATE dashboard_tokens SET lang = ? WHERE token_hash = ? AND kind = 'session'", (lang, token_hash))

    async def end(self, token_hash: str) -> None:
        """Sign out: the session is deleted."""
        await self.db.execute("DELETE FROM dashboard_tokens WHERE token_hash = ? AND kind = 'session'", (token_hash,))

    async def board(self, startup_id: str, *, status: str | None = None, state: str | None = None,
                    sector: str | None = None, lang: str | None = None, min_score: int | None = None,
                    since: int | None = None, until: int | None = None, with_dates: bool = False,
                    limit: int = BOARD_LIMIT) -> list[BoardLead]:
        """The startup's leads (only its own), newest offer first, filtered as given: ``min_score`` and
        more, offered (or made) at ``since`` or later and before ``until``. ``with_dates`` adds when the
        startup accepted each (for the export)."""
        where, params = ["l.startup_id = ?"], [startup_id]
        for column, value in (("l.status", status), ("l.state", state), ("l.sector", sector), ("l.lang", lang)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        for clause, value in (("l.score >= ?", min_score), ("COALESCE(l.offered_at, l.created_at) >= ?", since),
                              ("COALESCE(l.offered_at, l.created_at) < ?", until)):
            if value is not None:
                where.append(clause)
                params.append(value)
        accepted = ("(SELECT MIN(h.at) FROM lead_history h WHERE h.lead_id = l.id AND h.startup_id = l.startup_id "
                    "AND h.status = 'accepted')" if with_dates else "NULL")
        rows = await self.db.fetchall(
            "SELECT l.id, l.status, l.score, l.state, l.sector, l.lang, l.offered_at, l.created_at, u.profile, "
            f"n.follow_up, n.note, {accepted} AS accepted_at "
            "FROM leads l LEFT JOIN users u ON u.id = l.user_id "
            "LEFT JOIN lead_notes n ON n.lead_id = l.id AND n.startup_id = l.startup_id "
            f"WHERE {' AND '.join(where)} "
            "ORDER BY COALESCE(l.offered_at, l.created_at) DESC, l.id DESC LIMIT ?",
            (*params, limit),
        )
        return [BoardLead(r["id"], r["status"], r["score"], r["state"], r["sector"], r["lang"] or "hi", r["offered_at"],
                          r["created_at"], _profile(r["profile"]), r["follow_up"], r["note"], r["accepted_at"]) for r in rows]

    async def overdue(self, startup_id: str, today: str, open_statuses: Sequence[str]) -> list[BoardLead]:
        """The startup's open leads whose follow-up day is before ``today`` (YYYY-MM-DD), oldest first."""
        marks = ", ".join("?" * len(open_statuses))
        rows = await self.db.fetchall(
            "SELECT l.id, l.status, l.score, l.state, l.sector, l.lang, l.offered_at, l.created_at, u.profile, n.follow_up "
            "FROM lead_notes n JOIN leads l ON l.id = n.lead_id AND l.startup_id = n.startup_id "
            "LEFT JOIN users u ON u.id = l.user_id "
            f"WHERE n.startup_id = ? AND n.follow_up < ? AND l.status IN ({marks}) ORDER BY n.follow_up, l.id LIMIT ?",
            (startup_id, today, *open_statuses, BOARD_LIMIT),
        )
        return [BoardLead(r["id"], r["status"], r["score"], r["state"], r["sector"], r["lang"] or "hi", r["offered_at"],
                          r["created_at"], _profile(r["profile"]), r["follow_up"]) for r in rows]

    async def note(self, lead_id: int, startup_id: str) -> LeadNote:
        """The startup's note and follow-up on the lead (empty when there are none)."""
        row = await self.db.fetchone(
            "SELECT note, note_by, note_at, follow_up, follow_up_by, follow_up_at FROM lead_notes "
            "WHERE lead_id = ? AND startup_id = ?",
            (lead_id, startup_id),
        )
        if row is None:
            return LeadNote()
        return LeadNote(row["note"], row["note_by"], row["note_at"], row["follow_up"], row["follow_up_by"], row["follow_up_at"])

    async def set_note(self, lead_id: int, startup_id: str, note: str | None, by: str, now: int) -> None:
        """Write or replace the startup's note on the lead (``None`` clears it)."""
        await self.db.execute(
            "INSERT INTO lead_notes (lead_id, startup_id, note, note_by, note_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (lead_id, startup_id) DO UPDATE SET note = excluded.note, note_by = excluded.note_by, "
            "note_at = excluded.note_at",
            (lead_id, startup_id, note, by, now),
        )

    async def set_follow_up(self, lead_id: int, startup_id: str, day: str | None, by: str, now: int) -> None:
        """Set or clear (``None``) the startup's follow-up day on the lead."""
        await self.db.execute(
            "INSERT INTO lead_notes (lead_id, startup_id, follow_up, follow_up_by, follow_up_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (lead_id, startup_id) DO UPDATE SET follow_up = excluded.follow_up, "
            "follow_up_by = excluded.follow_up_by, follow_up_at = excluded.follow_up_at",
            (lead_id, startup_id, day, by, now),
        )

    async def due_follow_ups(self, first: str, last: str, open_statuses: Sequence[str]) -> list[DueFollowUp]:
        """Follow-ups on a day from ``first`` to ``last`` (YYYY-MM-DD) on leads still open with that startup."""
        marks = ", ".join("?" * len(open_statuses))
        rows = await self.db.fetchall(
            "SELECT n.lead_id, n.startup_id, n.follow_up, u.profile FROM lead_notes n "
            "JOIN leads l ON l.id = n.lead_id AND l.startup_id = n.startup_id LEFT JOIN users u ON u.id = l.user_id "
            f"WHERE n.follow_up >= ? AND n.follow_up <= ? AND l.status IN ({marks}) ORDER BY n.follow_up, n.lead_id",
            (first, last, *open_statuses),
        )
        return [DueFollowUp(r["lead_id"], r["startup_id"], r["follow_up"], _profile(r["profile"]).get("business_name"))
                for r in rows]

    async def history(self, lead_id: int, startup_id: str) -> list[dict]:
        """The lead's changes while with ``startup_id``, oldest first (another startup's past is not theirs)."""
        rows = await self.db.fetchall(
            "SELECT id, status, note, at FROM lead_history WHERE lead_id = ? AND startup_id = ? ORDER BY at, id",
            (lead_id, startup_id),
        )
        return [dict(r) for r in rows]

    async def broadcasts(self, limit: int = 20) -> list[BroadcastLine]:
        """The newest broadcasts."""
        rows = await self.db.fetchall(
            "SELECT id, kind, module_id, text_en, text_hi, recipients, status, created_at FROM broadcasts ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [BroadcastLine(r["id"], r["kind"], r["module_id"], r["text_en"], r["text_hi"], r["recipients"] or 0, r["status"],
                              r["created_at"]) for r in rows]

    async def delivery_counts(self, broadcast_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """Per broadcast: its outbox rows by status, and delivered/read as the platforms reported them."""
        if not broadcast_ids:
            return {}
        marks = ", ".join("?" * len(broadcast_ids))
        rows = await self.db.fetchall(
            "SELECT batch_id, status, COUNT(*) AS n, "
            " COUNT(*) FILTER (WHERE delivery IN ('delivered', 'read')) AS delivered, "
            " COUNT(*) FILTER (WHERE delivery = 'read') AS seen "
            f"FROM outbox WHERE kind = 'broadcast' AND batch_id IN ({marks}) GROUP BY batch_id, status",
            tuple(broadcast_ids),
        )
        out: dict[int, dict[str, int]] = {b: {} for b in broadcast_ids}
        for r in rows:
            counts = out[r["batch_id"]]
            counts[r["status"]] = counts.get(r["status"], 0) + int(r["n"])
            counts["delivered"] = counts.get("delivered", 0) + int(r["delivered"] or 0)
            counts["read"] = counts.get("read", 0) + int(r["seen"] or 0)
        return out


def _profile(raw) -> dict:
    if raw is None:
        return {}
    return raw if isinstance(raw, dict) else json.loads(raw)
