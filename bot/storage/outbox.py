"""The outbox: messages that must be delivered once, stored before they are sent.

Producers ``enqueue`` rows (inside their own transaction when the message is a consequence of
a change, so a crash cannot keep one without the other). The delivery worker ``reserve``s due
rows ('claimed': taken off the queue but not yet handed to the platform, so a restart simply
puts them back), marks each 'sending' right before its request (``start_sending``), and records
the outcome ('sent' in batches with ``sent_many``). Only rows left 'sending' by a crash are in
doubt: they become 'unknown' and are never sent again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.messages import Choice, Say
from .db import Database

RETRY_LIMIT = 8
ERASED_PAYLOAD = '{"text": "(erased at the owner\'s request)", "choices": [], "columns": 1}'
"""What an outbox row holds after the owner it was about asked for their data to be erased."""


@dataclass(frozen=True)
class OutboxRow:
    """One message to deliver."""

    id: int
    user_id: int | None
    channel: str
    chat_ref: str
    kind: str
    say: Say
    attempts: int
    batch_id: int | None


@dataclass(frozen=True)
class Outgoing:
    """A message to enqueue."""

    channel: str
    chat_ref: str
    kind: str
    say: Say
    user_id: int | None = None
    dedup_key: str | None = None
    batch_id: int | None = None
    not_before: int = 0


def dump_say(say: Say) -> str:
    """A ``Say`` as the outbox stores it."""
    return json.dumps(
        {"text": say.text, "choices": [[c.id, c.label] for c in say.choices], "columns": say.columns},
        ensure_ascii=False,
    )


def load_say(payload: str) -> Say:
    """The ``Say`` stored by ``dump_say``."""
    data = json.loads(payload)
    return Say(data["text"], tuple(Choice(i, label) for i, label in data.get("choices", [])), data.get("columns", 1))


class SqliteOutbox:
    """The outbox table."""

    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    async def add(conn: Any, items: Sequence[Outgoing], now: int) -> int:
        """Insert ``items`` on an open transaction ``conn``; rows whose dedup key exists are skipped."""
        cur = await conn.executemany(
            "INSERT OR IGNORE INTO outbox (user_id, channel, chat_ref, kind, payload, dedup_key, batch_id, not_before, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i.user_id, i.channel, i.chat_ref, i.kind, dump_say(i.say), i.dedup_key, i.batch_id, max(i.not_before, now), now)
                for i in items
            ],
        )
        return cur.rowcount

    async def enqueue(self, items: Sequence[Outgoing], now: int) -> int:
        """Insert ``items`` in their own transaction; returns how many were new."""
        async with self.db.transaction() as conn:
            return await self.add(conn, items, now)

    async def recover(self, now: int) -> int:
        """After a restart: rows a crash left 'sending' become 'unknown' (never sent twice).

        Rows only 'claimed' were never handed to the platform: they go back to 'pending'.
        Returns how many rows are in doubt.
        """
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE outbox SET status = 'unknown', error = 'interrupted while sending' WHERE status = 'sending'"
            )
            await conn.execute("UPDATE outbox SET status = 'pending' WHERE status = 'claimed'")
            return cur.rowcount

    async def reserve(self, now: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` due rows, taken off the queue ('claimed') but not yet 'sending'.

        Broadcast rows to owners who opted out, blocked the bot or withdrew consent since the
        broadcast was enqueued are set aside here ('skipped') instead of being sent.
        """
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE outbox SET status = 'claimed' WHERE id IN ("
                " SELECT id FROM outbox WHERE status = 'pending' AND not_before <= ? ORDER BY not_before, id LIMIT ?"
                ") RETURNING id, user_id, channel, chat_ref, kind, payload, attempts, batch_id",
                (now, limit),
            )
            rows = await cur.fetchall()
            broadcast = [r["id"] for r in rows if r["kind"] == "broadcast"]
            skipped: set[int] = set()
            if broadcast:
                marks = ", ".join("?" * len(broadcast))
                cur = await conn.execute(
                    "UPDATE outbox SET status = 'skipped', error = 'opted out' WHERE id IN ("
                    f" SELECT o.id FROM outbox o JOIN users u ON u.id = o.user_id WHERE o.id IN ({marks})"
                    "  AND (u.broadcasts_off = 1 OR u.blocked_at IS NOT NULL OR u.consent != 'given')"
                    ") RETURNING id",
                    broadcast,
                )
                skipped = {r[0] for r in await cur.fetchall()}
        payloads: dict[str, Say] = {}  # a broadcast's rows share two payloads: parse each once
        result = []
        for r in sorted(rows, key=lambda r: (r["id"])):
            if r["id"] in skipped:
                continue
            say = payloads.get(r["payload"])
            if say is None:
                say = payloads[r["payload"]] = load_say(r["payload"])
            result.append(OutboxRow(r["id"], r["user_id"], r["channel"], r["chat_ref"], r["kind"], say, r["attempts"], r["batch_id"]))
        return result

    async def start_sending(self, ids: Sequence[int]) -> set[int]:
        """Mark claimed rows 'sending' right before their requests go out.

        Returns the ids still claimed; the others were cancelled meanwhile and must not be sent.
        """
        if not ids:
            return set()
        marks = ", ".join("?" * len(ids))
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE status = 'claimed' AND id IN ({marks}) "
                "RETURNING id",
                list(ids),
            )
            return {r[0] for r in await cur.fetchall()}

    async def release(self, ids: Sequence[int]) -> None:
        """Put claimed rows back on the queue (the worker is stopping before sending them)."""
        if ids:
            marks = ", ".join("?" * len(ids))
            await self.db.execute(f"UPDATE outbox SET status = 'pending' WHERE status = 'claimed' AND id IN ({marks})", list(ids))

    async def sent_many(self, results: Sequence[tuple[int, str | None]], now: int) -> None:
        """Several rows the platform accepted, as ``(row id, message ref)``: one transaction."""
        if results:
            async with self.db.transaction() as conn:
                await conn.executemany(
                    "UPDATE outbox SET status = 'sent', sent_at = ?, message_ref = ?, error = NULL WHERE id = ?",
                    [(now, ref, row_id) for row_id, ref in results],
                )

    async def claim(self, now: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` due rows, marked 'sending' before they are returned."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id IN ("
                " SELECT id FROM outbox WHERE status = 'pending' AND not_before <= ? ORDER BY not_before, id LIMIT ?"
                ") RETURNING id, user_id, channel, chat_ref, kind, payload, attempts, batch_id",
                (now, limit),
            )
            rows = await cur.fetchall()
        rows = sorted(rows, key=lambda r: r["id"])
        return [
            OutboxRow(r["id"], r["user_id"], r["channel"], r["chat_ref"], r["kind"], load_say(r["payload"]), r["attempts"], r["batch_id"])
            for r in rows
        ]

    async def sent(self, row_id: int, now: int, message_ref: str | None = None) -> None:
        """The platform accepted the message."""
        await self.db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, message_ref = ?, error = NULL WHERE id = ?", (now, message_ref, row_id)
        )

    async def retry(self, row: OutboxRow, not_before: int, error: str, *, counts: bool = True) -> bool:
        """Try again at ``not_before``; after ``RETRY_LIMIT`` attempts the row fails. True if it will retry.

        A flood-control wait (``counts=False``) is not the message's fault and does not use up
        an attempt.
        """
        if not counts:
            await self.db.execute(
                "UPDATE outbox SET status = 'pending', attempts = attempts - 1, not_before = ? WHERE id = ?", (not_before, row.id)
            )
            return True
        if row.attempts >= RETRY_LIMIT:
            await self.db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?", (error[:300], row.id))
            return False
        await self.db.execute(
            "UPDATE outbox SET status = 'pending', not_before = ?, error = ? WHERE id = ?", (not_before, error[:300], row.id)
        )
        return True

    async def fail(self, row_id: int, error: str) -> None:
        """The platform refused the message for good."""
        await self.db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?", (error[:300], row_id))

    async def blocked(self, row: OutboxRow, now: int) -> None:
        """The user blocked the bot: mark the row and the user, cancel what else waits for the chat."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE outbox SET status = 'blocked', error = 'blocked by the user' WHERE id = ?", (row.id,))
            await conn.execute(
                "UPDATE outbox SET status = 'blocked', error = 'blocked by the user' "
                "WHERE channel = ? AND chat_ref = ? AND status IN ('pending', 'claimed')",
                (row.channel, row.chat_ref),
            )
            await conn.execute(
                "UPDATE users SET blocked_at = ? WHERE channel = ? AND user_ref = ? AND blocked_at IS NULL",
                (now, row.channel, row.chat_ref),
            )

    async def next_due(self) -> int | None:
        """When the earliest pending row becomes due (``None`` if there is none)."""
        row = await self.db.fetchone("SELECT MIN(not_before) FROM outbox WHERE status = 'pending'")
        return None if row is None or row[0] is None else int(row[0])

    async def counts(self, batch_id: int | None = None) -> dict[str, int]:
        """Rows by status (for one batch, or all)."""
        if batch_id is None:
            rows = await self.db.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        else:
            rows = await self.db.fetchall("SELECT status, COUNT(*) FROM outbox WHERE batch_id = ? GROUP BY status", (batch_id,))
        return {r[0]: r[1] for r in rows}
