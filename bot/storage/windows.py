"""WhatsApp's 24-hour window and status webhooks, in SQLite (tables ``chat_inbound`` and ``outbox``).

- ``inbound``: a chat wrote; its window opens and the messages held for it go back on the queue.
- ``facts``: what the delivery worker needs to decide free-form or template, for a batch of rows.
- ``hold`` / ``templated`` / ``closed``: the worker's outcomes outside the window.
- ``status``: one status webhook entry (sent → delivered → read, never backwards; failed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.segments import Segment
from .broadcasts import segment_where
from .db import Database
from .outbox import ERASED_PAYLOAD

HELD = "held"
_RANK = "CASE COALESCE(delivery, 'sent') WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END"
_RANKS = {"sent": 1, "delivered": 2, "read": 3}
WINDOW_CLOSED = 131047
UNDELIVERABLE = 131026
HELD_BACK = 131049  # WhatsApp chose not to deliver (engagement limits): it goes when the user writes


@dataclass(frozen=True)
class RowFacts:
    """What deciding between a free-form message and a template needs to know about one outbox row."""

    last_inbound: int | None = None
    closed_at: int | None = None
    lang: str | None = None  # the owner's language (rows to an owner)
    owner_name: str | None = None
    business_name: str | None = None


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


class SqliteWindows:
    """Last inbound message per chat, held rows, and delivery statuses of sent rows."""

    def __init__(self, db: Database):
        self.db = db

    async def inbound(self, channel: str, chat_refs: Iterable[str], now: int) -> dict[str, int]:
        """The chats wrote at ``now``: their windows open, held rows go back on the queue.

        Returns, per chat, how many held messages were released. A held row whose owner erased
        their data since is cancelled instead (its text is gone).
        """
        refs = sorted(set(chat_refs))
        if not refs:
            return {}

        def work(conn: sqlite3.Connection) -> dict[str, int]:
            conn.executemany(
                "INSERT INTO chat_inbound (channel, chat_ref, last_at) VALUES (?, ?, ?) "
                "ON CONFLICT (channel, chat_ref) DO UPDATE SET last_at = MAX(last_at, excluded.last_at), closed_at = NULL",
                [(channel, ref, now) for ref in refs],
            )
            marks = _marks(refs)
            conn.execute(
                f"UPDATE outbox SET status = 'cancelled', error = 'erased' WHERE status = 'held' AND channel = ? "
                f"AND chat_ref IN ({marks}) AND payload = ?",
                (channel, *refs, ERASED_PAYLOAD),
            )
            cur = conn.execute(
                f"UPDATE outbox SET status = 'pending', not_before = ?, error = NULL WHERE status = 'held' AND channel = ? "
                f"AND chat_ref IN ({marks}) RETURNING chat_ref",
                (now, channel, *refs),
            )
            released: dict[str, int] = {}
            for (ref,) in cur.fetchall():
                released[ref] = released.get(ref, 0) + 1
            return released

        return await self.db.run_transaction(work)

    async def facts(self, row_ids: Sequence[int]) -> dict[int, RowFacts]:
        """The chat's window and the owner's language and names, for each of ``row_ids``."""
        if not row_ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT o.id, w.last_at, w.closed_at, u.lang, json_extract(u.profile, '$.owner_name') AS owner_name, "
            "json_extract(u.profile, '$.business_name') AS business_name FROM outbox o "
            "LEFT JOIN chat_inbound w ON w.channel = o.channel AND w.chat_ref = o.chat_ref "
            f"LEFT JOIN users u ON u.id = o.user_id WHERE o.id IN ({_marks(row_ids)})",
            list(row_ids),
        )
        return {r["id"]: RowFacts(r["last_at"], r["closed_at"], r["lang"], r["owner_name"], r["business_name"]) for r in rows}

    async def window(self, channel: str, chat_ref: str) -> tuple[int | None, int | None]:
        """``(last inbound, closed at)`` of one chat."""
        row = await self.db.fetchone("SELECT last_at, closed_at FROM chat_inbound WHERE channel = ? AND chat_ref = ?",
                                     (channel, chat_ref))
        return (None, None) if row is None else (row[0], row[1])

    async def hold(self, row_id: int, reason: str, *, message_ref: str | None = None, template: str | None = None) -> None:
        """The row waits for the user to write (``reason`` says why); a template sent meanwhile is kept."""
        await self.db.execute(
            "UPDATE outbox SET status = 'held', error = ?, message_ref = COALESCE(?, message_ref), "
            "template = COALESCE(?, template) WHERE id = ? AND status IN ('sending', 'claimed', 'pending')",
            (reason[:300], message_ref, template, row_id),
        )

    async def templated(self, results: Sequence[tuple[int, str]]) -> None:
        """Rows that went out as the named template (their 'sent' mark is the worker's)."""
        if results:
            def work(conn: sqlite3.Connection) -> None:
                conn.executemany("UPDATE outbox SET template = ? WHERE id = ?", [(name, row_id) for row_id, name in results])

            await self.db.run_transaction(work)

    async def closed(self, channel: str, chat_ref: str, now: int) -> None:
        """WhatsApp says the chat's window is closed (131047), whatever our record says."""
        await self.db.execute(
            "INSERT INTO chat_inbound (channel, chat_ref, last_at, closed_at) VALUES (?, ?, 0, ?) "
            "ON CONFLICT (channel, chat_ref) DO UPDATE SET closed_at = excluded.closed_at",
            (channel, chat_ref, now),
        )

    async def waiting(self, channel: str, chat_ref: str) -> int:
        """Messages queued for the chat (other than a turn's replies)."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM outbox WHERE channel = ? AND chat_ref = ? AND kind != 'reply' "
            "AND status IN ('pending', 'claimed', 'sending')",
            (channel, chat_ref),
        )
        return int(row[0]) if row else 0

    async def status(self, channel: str, message_ref: str, status: str, at: int, code: int | None = None,
                     title: str = "") -> str:
        """Apply one status webhook entry; returns what it did (``unknown`` for a message id no row has).

        delivered/read move the row forward only. failed: 131047 → the chat's window is closed and
        the row queued again (it goes as a template, or waits); 131026 → the user cannot be reached,
        marked as blocked like a Telegram 403; 131049 → held until the user writes; others → failed.
        """

        def work(conn: sqlite3.Connection) -> str:
            row = conn.execute(
                f"SELECT id, chat_ref, status, template, {_RANK} AS rank FROM outbox "
                "WHERE message_ref = ? AND channel = ? AND kind != 'reply' ORDER BY id DESC LIMIT 1",
                (message_ref, channel),
            ).fetchone()
            if row is None:
                return "unknown"
            if row["status"] not in ("sent", HELD):
                return "ignored"
            if status in _RANKS:
                if _RANKS[status] <= row["rank"]:
                    return "ignored"  # never backwards (statuses may arrive out of order)
                conn.execute("UPDATE outbox SET delivery = ?, delivery_at = ? WHERE id = ?", (status, at, row["id"]))
                return status
            if status != "failed" or row["rank"] >= 2:  # a message delivered or read cannot fail any more
                return "ignored"
            why = f"WhatsApp {code}: {title}"[:300] if code else f"WhatsApp: {title or 'failed'}"[:300]
            if code == WINDOW_CLOSED and row["template"] is None:
                conn.execute(
                    "INSERT INTO chat_inbound (channel, chat_ref, last_at, closed_at) VALUES (?, ?, 0, ?) "
                    "ON CONFLICT (channel, chat_ref) DO UPDATE SET closed_at = excluded.closed_at",
                    (channel, row["chat_ref"], at),
                )
                conn.execute("UPDATE outbox SET status = 'pending', not_before = ?, delivery = 'failed', delivery_at = ?, "
                             "error = ?, message_ref = NULL WHERE id = ?", (at, at, why, row["id"]))
                return "retry"
            if code == UNDELIVERABLE:
                conn.execute("UPDATE outbox SET status = 'blocked', delivery = 'failed', delivery_at = ?, error = ? WHERE id = ?",
                             (at, why, row["id"]))
                conn.execute(
                    "UPDATE outbox SET status = 'blocked', error = 'blocked by the user' "
                    "WHERE channel = ? AND chat_ref = ? AND status IN ('pending', 'claimed', 'held')",
                    (channel, row["chat_ref"]),
                )
                conn.execute("UPDATE users SET blocked_at = ? WHERE channel = ? AND user_ref = ? AND blocked_at IS NULL",
                             (at, channel, row["chat_ref"]))
                return "blocked"
            if code == HELD_BACK:
                conn.execute("UPDATE outbox SET status = 'held', delivery = 'failed', delivery_at = ?, error = ? WHERE id = ?",
                             (at, f"held_back:{code}", row["id"]))
                return HELD
            conn.execute("UPDATE outbox SET status = 'failed', delivery = 'failed', delivery_at = ?, error = ? WHERE id = ?",
                         (at, why, row["id"]))
            return "failed"

        return await self.db.run_transaction(work)

    async def held(self) -> list[tuple[str, str, int]]:
        """``(channel, reason, count)`` of the messages waiting for their users to write."""
        rows = await self.db.fetchall(
            "SELECT channel, COALESCE(error, ''), COUNT(*) FROM outbox WHERE status = 'held' GROUP BY 1, 2 ORDER BY 3 DESC, 2"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def delivery_counts(self, batch_id: int) -> dict[str, int]:
        """A broadcast's WhatsApp rows that were delivered (or read) and read; empty when it has none."""
        row = await self.db.fetchone(
            "SELECT COUNT(*), SUM(delivery IN ('delivered', 'read')), SUM(delivery = 'read'), SUM(template IS NOT NULL) "
            "FROM outbox WHERE batch_id = ? AND kind = 'broadcast' AND channel = 'whatsapp'",
            (batch_id,),
        )
        if row is None or not row[0]:
            return {}
        return {"delivered": int(row[1] or 0), "read": int(row[2] or 0), "templates": int(row[3] or 0)}

    async def reach(self, segment: Segment, channels: Sequence[str], window_since: int) -> dict[str, int]:
        """Owners ``segment`` reaches, per channel, and (key ``outside_window``) WhatsApp owners silent since before ``window_since``."""
        where, params = segment_where(segment, channels)
        rows = await self.db.fetchall(
            "SELECT u.channel, COUNT(*), SUM(u.channel = 'whatsapp' AND NOT COALESCE(("
            " SELECT w.last_at >= ? AND (w.closed_at IS NULL OR w.closed_at < w.last_at) FROM chat_inbound w"
            " WHERE w.channel = u.channel AND w.chat_ref = u.user_ref), 0)) "
            f"FROM users u WHERE {where} GROUP BY u.channel",
            [window_since, *params],
        )
        counts = {channel: 0 for channel in channels}
        counts["outside_window"] = 0
        for r in rows:
            counts[r[0]] = r[1]
            counts["outside_window"] += int(r[2] or 0)
        return counts
