"""Broadcasts in SQLite: segments as SQL, recipients enqueued in one statement, the admin wizard.

A segment becomes a WHERE clause over ``users`` (with parameters, never interpolated values).
Enqueueing is one ``INSERT … SELECT`` into the outbox inside the transaction that creates the
broadcast: 1,00,000 recipients cost one statement, not 1,00,000 round trips, and a crash
keeps either the broadcast with all its rows or neither. ``dedup_key`` ``bc:<id>:<user_id>``
makes a second copy of a row impossible.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.segments import Segment
from ..core.wizard import Draft
from .db import Database
from .inbox import already_seen, mark_seen
from .outbox import broadcast_ref

# Never reachable by a broadcast, whatever the segment: no consent, blocked the bot, opted out.
ELIGIBLE = "u.consent = 'given' AND u.blocked_at IS NULL AND u.broadcasts_off = 0"
_PROGRESS = "SELECT 1 FROM progress p WHERE p.user_id = u.id AND p.module_id = ?"
# A progress row exists once the owner has opened the module.
_MODULE_SQL = {
    "passed": f"EXISTS ({_PROGRESS} AND p.passed = 1)",
    "started": f"EXISTS ({_PROGRESS} AND p.passed = 0)",
    "not_started": f"NOT EXISTS ({_PROGRESS})",
    "not_passed": f"NOT EXISTS ({_PROGRESS} AND p.passed = 1)",
}
# Outbox statuses of rows that may still go out.
UNSENT = ("pending", "claimed", "sending")
_SAVE_DRAFT = (
    "INSERT INTO broadcast_drafts (channel, chat_ref, seq, step, data, lang, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (channel, chat_ref) DO UPDATE SET seq = excluded.seq, step = excluded.step, data = excluded.data, "
    "lang = excluded.lang, updated_at = excluded.updated_at"
)


def _draft_row(draft: Draft, now: int) -> tuple:
    return (draft.channel, draft.chat_ref, draft.seq, draft.step, json.dumps(draft.data, ensure_ascii=False), draft.lang, now)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def segment_where(segment: Segment, channels: Sequence[str]) -> tuple[str, list[Any]]:
    """The SQL condition on ``users u`` that selects ``segment`` on ``channels``, and its parameters."""
    clauses = [ELIGIBLE, f"u.channel IN ({_marks(channels)})"]
    params: list[Any] = list(channels)
    if segment.lang:
        clauses.append("u.lang = ?")
        params.append(segment.lang)
    if segment.states:
        clauses.append(f"u.profile ->> 'state' IN ({_marks(segment.states)})")
        params += segment.states
    if segment.sectors:
        clauses.append(f"u.profile ->> 'sector' IN ({_marks(segment.sectors)})")
        params += segment.sectors
    if segment.onboarded is not None:
        clauses.append("u.onboarded_at IS NOT NULL" if segment.onboarded else "u.onboarded_at IS NULL")
    for module_id, status in segment.modules:
        clauses.append(_MODULE_SQL[status])
        params.append(module_id)
    return " AND ".join(clauses), params


@dataclass(frozen=True)
class BroadcastRow:
    """One broadcast as stored."""

    id: int
    kind: str
    module_id: str | None
    text_en: str | None
    text_hi: str | None
    segment: Segment
    recipients: int
    send_at: int
    status: str
    admin_channel: str | None
    admin_chat: str | None
    admin_lang: str
    status_ref: str | None
    created_at: int
    finished_at: int | None


def _row(r: Any) -> BroadcastRow:
    return BroadcastRow(
        r["id"], r["kind"], r["module_id"], r["text_en"], r["text_hi"], Segment.from_dict(json.loads(r["segment"])),
        r["recipients"], r["send_at"], r["status"], r["admin_channel"], r["admin_chat"], r["admin_lang"],
        r["status_ref"], r["created_at"], r["finished_at"],
    )


class SqliteBroadcasts:
    """The broadcasts and broadcast_drafts tables, and the outbox rows of broadcasts."""

    def __init__(self, db: Database):
        self.db = db

    async def count(self, segment: Segment, channels: Sequence[str]) -> dict[str, int]:
        """Reachable owners in ``segment`` by language: ``{"hi": n, "en": m}``."""
        where, params = segment_where(segment, channels)
        rows = await self.db.fetchall(
            f"SELECT CASE WHEN u.lang = 'en' THEN 'en' ELSE 'hi' END, COUNT(*) FROM users u WHERE {where} GROUP BY 1", params
        )
        counts = {"hi": 0, "en": 0}
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def create(
        self,
        *,
        kind: str,
        segment: Segment,
        channels: Sequence[str],
        payloads: dict[str, str],
        send_at: int,
        now: int,
        created_by: str,
        module_id: str | None = None,
        text_en: str | None = None,
        text_hi: str | None = None,
        admin: tuple[str, str] | None = None,
        admin_lang: str = "en",
        draft: Draft | None = None,
    ) -> tuple[int, int]:
        """Create a broadcast and enqueue one outbox row per recipient; returns (id, recipients).

        ``payloads`` are the stored messages (``dump_say``) by language, kept once on the broadcast;
        each owner's outbox row names only the language they get (``broadcast_ref``).
        ``draft``, the admin's wizard as it is after Confirm, is saved in the same transaction.
        """
        where, params = segment_where(segment, channels)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO broadcasts (kind, module_id, text_en, text_hi, payload_en, payload_hi, segment, send_at, created_by, "
                "admin_channel, admin_chat, admin_lang, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    kind, module_id, text_en, text_hi, payloads["en"], payloads["hi"], json.dumps(segment.to_dict(), ensure_ascii=False),
                    send_at, created_by, admin[0] if admin else None, admin[1] if admin else None, admin_lang, now,
                ),
            )
            broadcast_id = (await cur.fetchone())[0]
            cur = await conn.execute(
                "INSERT INTO outbox (user_id, channel, chat_ref, kind, payload, dedup_key, batch_id, not_before, created_at) "
                "SELECT u.id, u.channel, u.user_ref, 'broadcast', CASE WHEN u.lang = 'en' THEN ? ELSE ? END, "
                f"'bc:' || ? || ':' || u.id, ?, ?, ? FROM users u WHERE {where} ORDER BY u.id ON CONFLICT DO NOTHING",
                [broadcast_ref("en"), broadcast_ref("hi"), broadcast_id, broadcast_id, max(send_at, now), now, *params],
            )
            recipients = cur.rowcount
            await conn.execute("UPDATE broadcasts SET recipients = ? WHERE id = ?", (recipients, broadcast_id))
            if draft is not None:
                await conn.execute(_SAVE_DRAFT, _draft_row(draft, now))
        return broadcast_id, recipients

    async def get(self, broadcast_id: int) -> BroadcastRow | None:
        """The broadcast with this id."""
        row = await self.db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
        return _row(row) if row else None

    async def active(self) -> list[BroadcastRow]:
        """Broadcasts not yet finished or cancelled, oldest first."""
        rows = await self.db.fetchall("SELECT * FROM broadcasts WHERE status = 'active' ORDER BY id")
        return [_row(r) for r in rows]

    async def to_report(self) -> list[BroadcastRow]:
        """Broadcasts in progress, and finished ones whose final status was not shown yet."""
        rows = await self.db.fetchall("SELECT * FROM broadcasts WHERE status = 'active' OR reported = 0 ORDER BY id")
        return [_row(r) for r in rows]

    async def mark_reported(self, broadcast_id: int) -> None:
        """The final status of a finished or cancelled broadcast has been shown."""
        await self.db.execute("UPDATE broadcasts SET reported = 1 WHERE id = ? AND status != 'active'", (broadcast_id,))

    async def progress(self, broadcast_id: int) -> dict[str, int]:
        """The broadcast's outbox rows by status (pending, sent, failed, blocked, skipped, …)."""
        rows = await self.db.fetchall(
            "SELECT status, COUNT(*) FROM outbox WHERE batch_id = ? AND kind = 'broadcast' GROUP BY status", (broadcast_id,)
        )
        return {r[0]: r[1] for r in rows}

    async def queued_ahead(self, broadcast_id: int) -> int:
        """Messages the delivery worker sends before this broadcast's next one: due earlier, or in flight."""
        first = await self.db.fetchone(
            "SELECT not_before, id FROM outbox WHERE batch_id = ? AND kind = 'broadcast' AND status = 'pending' "
            "ORDER BY not_before, id LIMIT 1", (broadcast_id,)
        )
        if first is None:
            return 0
        row = await self.db.fetchone(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND kind != 'reply' "
            "         AND (not_before < ? OR (not_before = ? AND id < ?)))"
            " + (SELECT COUNT(*) FROM outbox WHERE status = 'claimed')"
            " + (SELECT COUNT(*) FROM outbox WHERE status = 'sending')",
            (first[0], first[0], first[1]),
        )
        return row[0]

    async def set_status_ref(self, broadcast_id: int, ref: str | None) -> None:
        """Remember the admin's status message, to edit it from now on."""
        await self.db.execute("UPDATE broadcasts SET status_ref = ? WHERE id = ?", (ref, broadcast_id))

    async def finish(self, broadcast_id: int, now: int) -> None:
        """Every row has an outcome: the broadcast is done."""
        await self.db.execute(
            "UPDATE broadcasts SET status = 'done', finished_at = ? WHERE id = ? AND status = 'active'", (now, broadcast_id)
        )

    async def cancel(self, broadcast_id: int | None, now: int) -> list[tuple[int, int]]:
        """Stop what has not been sent of one active broadcast (or all); returns (id, rows cancelled).

        Rows already being sent finish; every row not yet handed to the platform is cancelled.
        """
        async with self.db.transaction() as conn:
            if broadcast_id is None:
                cur = await conn.execute("SELECT id FROM broadcasts WHERE status = 'active' ORDER BY id")
            else:
                cur = await conn.execute("SELECT id FROM broadcasts WHERE status = 'active' AND id = ?", (broadcast_id,))
            ids = [r[0] for r in await cur.fetchall()]
            result = []
            for bid in ids:
                cur = await conn.execute(
                    "UPDATE outbox SET status = 'cancelled', error = 'cancelled by an admin' "
                    "WHERE batch_id = ? AND kind = 'broadcast' AND status IN ('pending', 'claimed')",
                    (bid,),
                )
                result.append((bid, cur.rowcount))
                await conn.execute("UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id = ?", (now, bid))
        return result

    # ---- the admin wizard ----------------------------------------------------------------------

    async def load_draft(self, channel: str, chat_ref: str) -> Draft | None:
        """The wizard of this admin chat, if it ever started one."""
        row = await self.db.fetchone(
            "SELECT seq, step, data, lang FROM broadcast_drafts WHERE channel = ? AND chat_ref = ?", (channel, chat_ref)
        )
        if row is None:
            return None
        return Draft(channel, chat_ref, row["seq"], row["step"], json.loads(row["data"]), row["lang"])

    async def save_draft(self, draft: Draft, now: int) -> None:
        """Store the wizard's state (committed before the admin sees the next screen)."""
        await self.db.execute(_SAVE_DRAFT, _draft_row(draft, now))

    async def first_time(self, channel: str, update_id: str, now: int) -> bool:
        """Record a platform update as handled; False if it already was (a redelivered update).

        An id remembered from longer ago than the channel's window is a new update sharing it."""

        def work(conn: sqlite3.Connection) -> bool:
            if already_seen(conn, channel, update_id, now):
                return False
            mark_seen(conn, channel, update_id, now)
            return True

        return await self.db.run_transaction(work)
