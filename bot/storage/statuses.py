"""WhatsApp status webhook entries against outbox rows, in SQLite (shared by the outbox and windows stores).

A status moves a sent row forward (sent → delivered → read, never backwards) or reports its
failure. One can overtake its message: WhatsApp may report it before the delivery worker has
stored the message id the send returned. Such an entry waits in ``early_statuses`` and is applied
in the same transaction that stores the id (``apply_early``), so neither a crash nor a restart
loses it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

HELD = "held"
_RANK = "CASE COALESCE(delivery, 'sent') WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END"
_RANKS = {"sent": 1, "delivered": 2, "read": 3}
WINDOW_CLOSED = 131047
UNDELIVERABLE = 131026
HELD_BACK = 131049  # WhatsApp chose not to deliver (engagement limits): it goes when the user writes
_EARLY_ORDER = "CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END"


def apply_status(conn: sqlite3.Connection, channel: str, message_ref: str, status: str, at: int, code: int | None,
                 title: str) -> str:
    """One status entry against the outbox row that has its message id (``unknown``: no row has it)."""
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


def remember_early(conn: sqlite3.Connection, channel: str, message_ref: str, status: str, at: int, code: int | None,
                   title: str, received_at: int) -> None:
    """Keep a status whose message id no row has yet, for ``apply_early``."""
    conn.execute(
        "INSERT INTO early_statuses (channel, message_ref, status, at, code, title, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (channel, message_ref, status, at, code, title or "", received_at),
    )


def apply_early(conn: sqlite3.Connection, channel: str, message_refs: Sequence[str]) -> dict[str, int]:
    """Apply (and forget) the early statuses of ``message_refs``, lowest rank first; what each did."""
    done: dict[str, int] = {}
    refs = sorted(set(message_refs))
    for start in range(0, len(refs), 500):
        chunk = refs[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT message_ref, status, at, code, title FROM early_statuses WHERE channel = ? AND message_ref IN ({marks}) "
            f"ORDER BY message_ref, {_EARLY_ORDER}", (channel, *chunk),
        ).fetchall()
        if not rows:
            continue
        for r in rows:
            outcome = apply_status(conn, channel, r[0], r[1], r[2], r[3], r[4])
            done[outcome] = done.get(outcome, 0) + 1
        conn.execute(f"DELETE FROM early_statuses WHERE channel = ? AND message_ref IN ({marks})", (channel, *chunk))
    return done
