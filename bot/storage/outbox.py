"""The outbox: messages that must be delivered once, stored before they are sent.

Producers ``enqueue`` rows (inside their own transaction when the message is a consequence of
a change, so a crash cannot keep one without the other). The delivery worker ``reserve``s due
rows ('claimed': taken off the queue but not yet handed to the platform, so a restart simply
puts them back), marks each 'sending' right before its request (``start_sending``), and records
the outcome ('sent' in batches with ``sent_many``). Only rows left 'sending' by a crash are in
doubt: they become 'unknown' and are never sent again.

Replies (kind ``reply``) follow another rule. They are written in the turn's own transaction
already 'sending' (the turn's sender owns them), sent right after the commit in order per chat,
and deleted once sent. A reply still 'sending' or 'claimed' at a restart goes back to
'pending' and is sent again: a repeated question is harmless, silence is not.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.messages import Choice, Menu, Outbound, Photo, Picked, Say, Tapped, Toast
from .db import Database
from .statuses import apply_early

RETRY_LIMIT = 8
REPLY = "reply"
"""The kind of the outbox rows that carry a turn's replies."""
NOT_KEPT = '{"text": "(not kept)", "choices": [], "columns": 1}'
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
    output: Outbound | None = None  # replies: what to render (a Say, Picked, Toast, Photo or Menu)
    reply_to: Tapped | None = None  # replies: the message whose button was tapped
    close_contact: bool = False  # replies: take the share-my-number keyboard away with this one
    lang: str = ""  # replies: the user's language when the turn ran


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
    data = {"text": say.text, "choices": [[c.id, c.label] for c in say.choices], "columns": say.columns}
    if say.again:
        data["again"] = say.again
    return json.dumps(data, ensure_ascii=False)


def broadcast_ref(lang: str) -> str:
    """A broadcast row's payload: which of the broadcast's messages (stored once, per language) it gets."""
    return '{"broadcast": "en"}' if lang == "en" else '{"broadcast": "hi"}'


_BROADCAST_REFS = {broadcast_ref("en"): "payload_en", broadcast_ref("hi"): "payload_hi"}


async def _broadcast_payloads(conn: Any, rows: Sequence[Any]) -> dict[tuple[int, str], str]:
    """The stored messages that broadcast rows among ``rows`` refer to, by (broadcast id, ref)."""
    ids = sorted({r["batch_id"] for r in rows if r["kind"] == "broadcast" and r["payload"] in _BROADCAST_REFS})
    if not ids:
        return {}
    cur = await conn.execute(
        f"SELECT id, payload_en, payload_hi FROM broadcasts WHERE id IN ({', '.join('?' * len(ids))})", ids
    )
    found: dict[tuple[int, str], str] = {}
    for b in await cur.fetchall():
        for ref, column in _BROADCAST_REFS.items():
            if b[column] is not None:
                found[(b["id"], ref)] = b[column]
    return found


def _payload(row: Any, broadcasts: dict[tuple[int, str], str]) -> str:
    """The row's own payload, or the broadcast message it refers to."""
    return broadcasts.get((row["batch_id"], row["payload"]), row["payload"]) if row["kind"] == "broadcast" else row["payload"]


def load_say(payload: str) -> Say:
    """The ``Say`` stored by ``dump_say``."""
    data = json.loads(payload)
    return Say(data["text"], tuple(Choice(i, label) for i, label in data.get("choices", [])), data.get("columns", 1),
               again=data.get("again", ""))


def dump_reply(output: Outbound, reply_to: Tapped | None = None, close_contact: bool = False, lang: str = "") -> str:
    """A reply output as the outbox stores it (``load_say`` still reads its text and buttons)."""
    if isinstance(output, Say):
        data: dict[str, Any] = json.loads(dump_say(output))
        data["op"] = "say"
        if output.ask_contact:
            data["ask_contact"] = True
        if output.replace:
            data["replace"] = True
    elif isinstance(output, Picked):
        data = {"op": "picked", "text": "", "label": output.label}
    elif isinstance(output, Toast):
        data = {"op": "toast", "text": output.text}
    elif isinstance(output, Menu):
        data = {"op": "menu", "text": "", "dashboard": output.dashboard}
    elif isinstance(output, Photo) and output.ref:  # drawn when sent: the name, not the bytes
        data = {"op": "photo", "text": output.caption, "filename": output.filename, "ref": output.ref}
    elif isinstance(output, Photo):
        data = {"op": "photo", "text": output.caption, "filename": output.filename,
                "data": base64.b64encode(output.data).decode("ascii")}
    else:  # pragma: no cover - Outbound is closed
        raise TypeError(f"not an output: {output!r}")
    if reply_to is not None:
        data["reply_to"] = [reply_to.message_ref, reply_to.text]
    if close_contact:
        data["close_contact"] = True
    if lang:
        data["lang"] = lang
    return json.dumps(data, ensure_ascii=False)


def load_reply(payload: str) -> tuple[Outbound, Tapped | None, bool, str]:
    """``(output, reply_to, close_contact, lang)`` stored by ``dump_reply``; an erased row is a plain text."""
    data = json.loads(payload)
    op = data.get("op", "say")
    if op == "picked":
        output: Outbound = Picked(data.get("label", ""))
    elif op == "toast":
        output = Toast(data.get("text", ""))
    elif op == "menu":
        output = Menu(bool(data.get("dashboard")))
    elif op == "photo":
        output = Photo(base64.b64decode(data.get("data", "")), data.get("text", ""), data.get("filename", "image.png"),
                       str(data.get("ref", "")))
    else:
        say = load_say(payload)
        output = Say(say.text, say.choices, say.columns, bool(data.get("ask_contact")), bool(data.get("replace")))
    tapped = data.get("reply_to")
    reply_to = Tapped(str(tapped[0]), str(tapped[1])) if tapped else None
    return output, reply_to, bool(data.get("close_contact")), str(data.get("lang", ""))


_REPLY_COLUMNS = "id, user_id, channel, chat_ref, kind, payload, attempts, batch_id"
_INSERT_REPLY = (
    "INSERT INTO outbox (user_id, channel, chat_ref, kind, payload, status, attempts, not_before, created_at) "
    "VALUES (?, ?, ?, 'reply', ?, 'sending', 1, ?, ?) RETURNING id"
)


def _reply_row(r: Any) -> OutboxRow:
    output, reply_to, close_contact, lang = load_reply(r["payload"])
    return OutboxRow(r["id"], r["user_id"], r["channel"], r["chat_ref"], r["kind"], _say_of(output), r["attempts"],
                     r["batch_id"], output, reply_to, close_contact, lang)


def _say_of(output: Outbound) -> Say:
    """The text part of a reply, for code that reads every row as a ``Say``."""
    if isinstance(output, Say):
        return output
    return Say(getattr(output, "text", "") or getattr(output, "caption", ""))


def add_replies(
    conn: sqlite3.Connection,
    *,
    user_id: int | None,
    channel: str,
    chat_ref: str,
    outputs: Sequence[Outbound],
    reply_to: Tapped | None,
    close_contact: bool,
    now: int,
    lang: str = "",
) -> list[OutboxRow]:
    """Write a turn's replies on its open transaction, already 'sending': the caller sends them next.

    ``close_contact`` goes on the first message that is sent as a new message (it carries the
    keyboard change on Telegram).
    """
    rows = []
    for output in outputs:
        close = close_contact and isinstance(output, Say) and not output.replace
        payload = dump_reply(output, reply_to, close, lang)
        close_contact = close_contact and not close
        row_id = conn.execute(_INSERT_REPLY, (user_id, channel, chat_ref, payload, now, now)).fetchone()[0]
        rows.append(OutboxRow(row_id, user_id, channel, chat_ref, REPLY, _say_of(output), 1, None, output, reply_to,
                              close, lang))
    return rows



def _on_channels(channels: Sequence[str] | None) -> str:
    """`` AND channel IN (?, …)`` for ``channels``; nothing when every channel is meant (``None``)."""
    if channels is None:
        return ""
    return f" AND channel IN ({', '.join('?' * len(channels))})" if channels else " AND 0"

class SqliteOutbox:
    """The outbox table."""

    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    async def add(conn: Any, items: Sequence[Outgoing], now: int) -> int:
        """Insert ``items`` on an open transaction ``conn``; rows whose dedup key exists are skipped."""
        cur = await conn.executemany(
            "INSERT INTO outbox (user_id, channel, chat_ref, kind, payload, dedup_key, batch_id, not_before, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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

    async def recover(self, now: int, *, in_doubt: bool = True, channels: Sequence[str] | None = None) -> int:
        """After a restart: rows a crash left 'sending' become 'unknown' (never sent twice).

        Rows only 'claimed' were never handed to the platform: they go back to 'pending'. With
        ``in_doubt=False`` (a worker restarted inside a running process, whose requests have all
        finished) only that is done. ``channels``: only the rows of these channels (each platform
        has a worker of its own, which must not touch another's rows in flight). Returns how many
        rows are in doubt.
        """
        on, params = _on_channels(channels), tuple(channels or ())
        async with self.db.transaction() as conn:
            doubtful = 0
            if in_doubt:
                cur = await conn.execute(
                    "UPDATE outbox SET status = 'unknown', error = 'interrupted while sending'"
                    f" WHERE status = 'sending' AND kind != 'reply'{on}", params
                )
                doubtful = cur.rowcount
            await conn.execute(f"UPDATE outbox SET status = 'pending' WHERE status = 'claimed' AND kind != 'reply'{on}", params)
            return doubtful

    async def reserve(self, now: int, limit: int, channels: Sequence[str] | None = None) -> list[OutboxRow]:
        """Up to ``limit`` due rows (on ``channels``, if given), taken off the queue ('claimed') but not yet 'sending'.

        Rows for a channel this process cannot send on stay queued for a process that can.

        Broadcast rows to owners who opted out, blocked the bot or withdrew consent since the
        broadcast was enqueued are set aside here ('skipped') instead of being sent.
        """
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE outbox SET status = 'claimed' WHERE id IN ("
                " SELECT id FROM outbox WHERE status = 'pending' AND not_before <= ? AND kind != 'reply'"
                f"{_on_channels(channels)} ORDER BY not_before, id LIMIT ?"
                ") RETURNING id, user_id, channel, chat_ref, kind, payload, attempts, batch_id",
                (now, *(channels or ()), limit),
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
            broadcasts = await _broadcast_payloads(conn, [r for r in rows if r["id"] not in skipped])
        payloads: dict[str, Say] = {}  # a broadcast's rows share two payloads: parse each once
        result = []
        for r in sorted(rows, key=lambda r: (r["id"])):
            if r["id"] in skipped:
                continue
            text = _payload(r, broadcasts)
            say = payloads.get(text)
            if say is None:
                say = payloads[text] = load_say(text)
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

    async def sent_many(self, results: Sequence[tuple[int, str | None]], now: int,
                        early: Sequence[tuple[str, str]] = ()) -> dict[str, int]:
        """Several rows the platform accepted, as ``(row id, message ref)``: one transaction.

        ``early``: ``(channel, message ref)`` of those on a channel with status webhooks; the
        statuses that overtook them are applied in the same transaction (``statuses.apply_early``).
        Returns what those did.
        """
        if not results:
            return {}

        def work(conn: sqlite3.Connection) -> dict[str, int]:
            conn.executemany(
                "UPDATE outbox SET status = 'sent', sent_at = ?, message_ref = ?, error = NULL WHERE id = ?",
                [(now, ref, row_id) for row_id, ref in results],
            )
            done: dict[str, int] = {}
            for channel in sorted({c for c, _ in early}):
                for outcome, n in apply_early(conn, channel, [r for c, r in early if c == channel]).items():
                    done[outcome] = done.get(outcome, 0) + n
            return done

        return await self.db.run_transaction(work)

    async def claim(self, now: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` due rows, marked 'sending' before they are returned."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id IN ("
                " SELECT id FROM outbox WHERE status = 'pending' AND not_before <= ? AND kind != 'reply'"
                " ORDER BY not_before, id LIMIT ?"
                ") RETURNING id, user_id, channel, chat_ref, kind, payload, attempts, batch_id",
                (now, limit),
            )
            rows = await cur.fetchall()
            broadcasts = await _broadcast_payloads(conn, rows)
        rows = sorted(rows, key=lambda r: r["id"])
        return [
            OutboxRow(r["id"], r["user_id"], r["channel"], r["chat_ref"], r["kind"], load_say(_payload(r, broadcasts)), r["attempts"],
                      r["batch_id"])
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

    async def next_due(self, channels: Sequence[str] | None = None) -> int | None:
        """When the earliest pending row (on ``channels``, if given) becomes due (``None`` if there is none)."""
        row = await self.db.fetchone("SELECT MIN(not_before) FROM outbox WHERE status = 'pending' AND kind != 'reply'"
                                     + _on_channels(channels), tuple(channels or ()))
        return None if row is None or row[0] is None else int(row[0])

    async def counts(self, batch_id: int | None = None) -> dict[str, int]:
        """Rows by status (for one batch, or all)."""
        if batch_id is None:
            rows = await self.db.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        else:
            rows = await self.db.fetchall("SELECT status, COUNT(*) FROM outbox WHERE batch_id = ? GROUP BY status", (batch_id,))
        return {r[0]: r[1] for r in rows}

    # ------------------------------------------------------------------ replies
    async def enqueue_replies(
        self, *, user_id: int | None, channel: str, chat_ref: str, outputs: Sequence[Outbound],
        reply_to: Tapped | None, now: int, lang: str = "",
    ) -> list[OutboxRow]:
        """Store replies that were decided outside a conversation turn, already 'sending'."""
        def write(conn: sqlite3.Connection) -> list[OutboxRow]:
            return add_replies(conn, user_id=user_id, channel=channel, chat_ref=chat_ref, outputs=outputs,
                               reply_to=reply_to, close_contact=False, now=now, lang=lang)

        return await self.db.run_transaction(write)

    async def claim_open_replies(self, channel: str, chat_ref: str, now: int) -> list[OutboxRow]:
        """The chat's replies waiting for a retry, taken now (a newer turn's replies must not overtake them).

        A reply taken ('sending') has its ``not_before`` set to when it was taken: the lease
        ``recover_replies`` measures (a reply 'sending' for long belongs to a process that died).
        """
        def work(conn: sqlite3.Connection) -> list[OutboxRow]:
            cur = conn.execute(
                f"UPDATE outbox SET status = 'sending', attempts = attempts + 1, not_before = ? WHERE id IN ("
                " SELECT id FROM outbox WHERE kind = 'reply' AND status = 'pending' AND channel = ? AND chat_ref = ?"
                f") RETURNING {_REPLY_COLUMNS}",
                (now, channel, chat_ref),
            )
            return sorted((_reply_row(r) for r in cur.fetchall()), key=lambda row: row.id)

        return await self.db.run_transaction(work)

    async def claim_due_replies(self, now: int, limit: int = 500) -> list[OutboxRow]:
        """Replies whose retry is due, oldest first, taken ('sending') for the caller to send."""
        def work(conn: sqlite3.Connection) -> list[OutboxRow]:
            cur = conn.execute(
                f"UPDATE outbox SET status = 'sending', attempts = attempts + 1, not_before = ? WHERE id IN ("
                " SELECT id FROM outbox WHERE kind = 'reply' AND status = 'pending' AND not_before <= ?"
                " ORDER BY not_before, id LIMIT ?"
                f") RETURNING {_REPLY_COLUMNS}",
                (now, now, limit),
            )
            return sorted((_reply_row(r) for r in cur.fetchall()), key=lambda row: row.id)

        return await self.db.run_transaction(work)

    async def next_reply_due(self) -> int | None:
        """When the earliest reply waiting for a retry becomes due."""
        row = await self.db.fetchone("SELECT MIN(not_before) FROM outbox WHERE kind = 'reply' AND status = 'pending'")
        return None if row is None or row[0] is None else int(row[0])

    async def replies_sent(self, ids: Sequence[int]) -> None:
        """Replies the platform accepted: deleted (what an owner was told is not kept)."""
        if ids:
            def work(conn: sqlite3.Connection) -> None:
                conn.executemany("DELETE FROM outbox WHERE id = ? AND kind = 'reply'", [(i,) for i in ids])

            await self.db.run_transaction(work)

    async def drop_replies(self, ids: Sequence[int]) -> None:
        """Replies that will never be sent (the user blocked the bot): deleted."""
        await self.replies_sent(ids)

    async def retry_replies(self, rows: Sequence[OutboxRow], not_before: int, error: str, *, counts: bool = True) -> int:
        """Put replies back to wait until ``not_before``; those out of attempts fail. Returns how many will retry."""
        retry = [r.id for r in rows if not counts or r.attempts < RETRY_LIMIT]
        failed = [r.id for r in rows if counts and r.attempts >= RETRY_LIMIT]

        def work(conn: sqlite3.Connection) -> None:
            if retry:
                conn.executemany(
                    "UPDATE outbox SET status = 'pending', not_before = ?, error = ?, attempts = attempts - ? WHERE id = ?",
                    [(not_before, error[:300], 0 if counts else 1, i) for i in retry],
                )
            if failed:
                conn.executemany("UPDATE outbox SET status = 'failed', error = ?, payload = ? WHERE id = ?",
                                 [(error[:300], NOT_KEPT, i) for i in failed])

        await self.db.run_transaction(work)
        return len(retry)

    async def fail_reply(self, row_id: int, error: str) -> None:
        """The platform refused this reply for good: keep why, not what it said."""
        await self.db.execute("UPDATE outbox SET status = 'failed', error = ?, payload = ? WHERE id = ?",
                              (error[:300], NOT_KEPT, row_id))

    async def recover_replies(self, now: int, lease: int | None = None) -> list[tuple[str, str]]:
        """After a restart: replies not confirmed sent wait to be sent again. Returns their chats.

        ``lease``: only those taken more than ``lease`` seconds ago (several processes share the
        outbox: a younger one is being sent by a live process, an older one's process died); of
        those, a reply to a user who has written since it was made is dropped, not sent late.
        """
        def work(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            if lease is not None:  # taken over late: a reply the user has since answered past would only confuse
                conn.execute(
                    "DELETE FROM outbox WHERE kind = 'reply' AND status IN ('sending', 'claimed') AND not_before <= ? "
                    "AND EXISTS (SELECT 1 FROM users u WHERE u.channel = outbox.channel AND u.user_ref = outbox.chat_ref "
                    "AND u.last_seen_at > outbox.created_at)",
                    (now - lease,),
                )
            taken_before = "AND not_before <= ? " if lease is not None else ""
            cur = conn.execute(
                "UPDATE outbox SET status = 'pending', not_before = ? "
                f"WHERE kind = 'reply' AND status IN ('sending', 'claimed') {taken_before}RETURNING channel, chat_ref",
                (now, now - lease) if lease is not None else (now,),
            )
            return sorted({(r[0], r[1]) for r in cur.fetchall()})

        return await self.db.run_transaction(work)
