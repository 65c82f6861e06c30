"""WhatsApp's 24-hour window and status webhooks, in SQLite (tables ``chat_inbound`` and ``outbox``).

- ``inbound``: a chat wrote; its window opens and the messages held for it go back on the queue.
- ``facts``: what the delivery worker needs to decide free-form or template, for a batch of rows.
- ``hold`` / ``templated`` / ``closed``: the worker's outcomes outside the window.
- ``status``: one status webhook entry (sent → delivered → read, never backwards; failed);
  one that overtook its message waits in ``early_statuses`` until ``apply_early``.
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

from .statuses import HELD, apply_early, apply_status, remember_early

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
                "ON CONFLICT (channel, chat_ref) DO UPDATE SET closed_at = NULL, last_at = CASE "
                "WHEN excluded.last_at > chat_inbound.last_at THEN excluded.last_at ELSE chat_inbound.last_at END",
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
            "SELECT o.id, w.last_at, w.closed_at, u.lang, u.profile ->> 'owner_name' AS owner_name, "
            "u.profile ->> 'business_name' AS business_name FROM outbox o "
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

    async def hold(self, row_id: int, reason: str, *, message_ref: str | None = None, template: str | None = None,
                   channel: str | None = None) -> None:
        """The row waits for the user to write (``reason`` says why); a template sent meanwhile is kept,
        with the statuses that came before its message id (``channel``'s)."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE outbox SET status = 'held', error = ?, message_ref = COALESCE(?, message_ref), "
                "template = COALESCE(?, template) WHERE id = ? AND status IN ('sending', 'claimed', 'pending')",
                (reason[:300], message_ref, template, row_id),
            )
            if message_ref and channel:
                apply_early(conn, channel, [message_ref])

        await self.db.run_transaction(work)

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
                     title: str = "", now: int | None = None) -> str:
        """Apply one status webhook entry; returns what it did.

        A message id no row has yet is kept in ``early_statuses`` (``early``): the status overtook
        its message, and ``apply_early`` applies it once the sender stores the id.

        delivered/read move the row forward only. failed: 131047 → the chat's window is closed and
        the row queued again (it goes as a template, or waits); 131026 → the user cannot be reached,
        marked as blocked like a Telegram 403; 131049 → held until the user writes; others → failed.
        """

        def work(conn: sqlite3.Connection) -> str:
            outcome = apply_status(conn, channel, message_ref, status, at, code, title)
            if outcome != "unknown":
                return outcome
            remember_early(conn, channel, message_ref, status, at, code, title, now or at)
            return "early"

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
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE delivery IN ('delivered', 'read')), COUNT(*) FILTER (WHERE delivery = 'read'), "
            "COUNT(template) "
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
            "SELECT u.channel, COUNT(*), COUNT(*) FILTER (WHERE u.channel = 'whatsapp' AND NOT EXISTS ("
            " SELECT 1 FROM chat_inbound w WHERE w.channel = u.channel AND w.chat_ref = u.user_ref"
            " AND w.last_at >= ? AND (w.closed_at IS NULL OR w.closed_at < w.last_at))) "
            f"FROM users u WHERE {where} GROUP BY u.channel",
            [window_since, *params],
        )
        counts = {channel: 0 for channel in channels}
        counts["outside_window"] = 0
        for r in rows:
            counts[r[0]] = r[1]
            counts["outside_window"] += int(r[2] or 0)
        return counts
