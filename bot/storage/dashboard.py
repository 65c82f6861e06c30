"""The web dashboard's tables and queries: sign-in links, sessions, the staff board, the broadcast list.

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
                    sector: str | None = None, lang: str | None = None, limit: int = BOARD_LIMIT) -> list[BoardLead]:
        """The startup's leads (only its own), newest offer first, filtered as given."""
        where, params = ["l.startup_id = ?"], [startup_id]
        for column, value in (("l.status", status), ("l.state", state), ("l.sector", sector), ("l.lang", lang)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        rows = await self.db.fetchall(
            "SELECT l.id, l.status, l.score, l.state, l.sector, l.lang, l.offered_at, l.created_at, u.profile "
            f"FROM leads l LEFT JOIN users u ON u.id = l.user_id WHERE {' AND '.join(where)} "
            "ORDER BY COALESCE(l.offered_at, l.created_at) DESC, l.id DESC LIMIT ?",
            (*params, limit),
        )
        return [BoardLead(r["id"], r["status"], r["score"], r["state"], r["sector"], r["lang"] or "hi", r["offered_at"],
                          r["created_at"], _profile(r["profile"])) for r in rows]

    async def history(self, lead_id: int, startup_id: str) -> list[dict]:
        """The lead's changes while with ``startup_id``, oldest first (another startup's past is not theirs)."""
        rows = await self.db.fetchall(
            "SELECT status, note, at FROM lead_history WHERE lead_id = ? AND startup_id = ? ORDER BY at, id",
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
