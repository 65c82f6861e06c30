"""Replies: a turn's messages, stored with the turn and sent right after it, in order per chat.

The rules for a reply in flight (README, "Nothing lost, nothing twice"):

- A turn's replies are written in the turn's own transaction (``SqliteSessionStore.save_turn``),
  already 'sending': this queue sends them at once, in order, and deletes them once the
  platform accepted them. Nothing is added to the time an owner waits.
- A 5xx, a timeout or a 429 puts the reply and every later reply of that chat back to wait
  (backoff, or the ``retry_after`` given); the chat's next turn, or the retry loop, sends them
  before anything newer. So the owner always sees the question their next answer belongs to.
- After a crash every reply not confirmed sent is sent again (a repeated question is harmless;
  silence is not). Broadcasts, lead cards and reminders keep the bulk worker's rule instead:
  never sent twice.
- 403: the user blocked the bot; their replies are dropped and the user is marked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from ..core.messages import Outbound, Photo, Tapped
from ..storage.outbox import OutboxRow, SqliteOutbox
from .clock import Clock, SystemClock
from .delivery import Blocked, Refused, RetryLater, wake_or_stop
from .locks import KeyedLocks

log = logging.getLogger(__name__)
MAX_BACKOFF = 120
SENT_FLUSH = 0.05  # seconds: sent replies are deleted in batches; a crash inside this window only resends them


class ReplySender(Protocol):
    """Renders one stored reply on its channel; raises ``RetryLater``, ``Blocked`` or ``Refused``."""

    async def reply(self, row: OutboxRow) -> str | None: ...


class ReplyQueue:
    """Sends replies as soon as their turn is committed, and again after a failure or a crash."""

    def __init__(self, outbox: SqliteOutbox, clock: Clock | None = None,
                 pictures: Callable[[str, str], bytes] | None = None):
        self.outbox = outbox
        self.pictures = pictures  # draws a named picture (a lesson diagram) in a language
        self.clock = clock or SystemClock()
        self.lease: int | None = None  # seconds: replies 'sending' longer than this are another process's, dead
        self.senders: dict[str, ReplySender] = {}
        self._chats = KeyedLocks()
        self._stalled: set[tuple[str, str]] = set()  # chats with replies waiting for a retry
        self._tasks: set[asyncio.Task] = set()
        self._by_chat: dict[tuple[str, str], set[asyncio.Task]] = {}
        self._wake = asyncio.Event()
        self.sent = 0
        self.retried = 0
        self._sent_ids: list[int] = []
        self._flusher: asyncio.Task | None = None

    def attach(self, channel: str, sender: ReplySender) -> None:
        """Replies on ``channel`` are rendered by ``sender``."""
        self.senders[channel] = sender
        self._wake.set()

    def send_soon(self, rows: Sequence[OutboxRow]) -> None:
        """Send ``rows`` (one chat's, in order) in the background, right away."""
        if not rows:
            return
        key = (rows[0].channel, rows[0].chat_ref)
        task = asyncio.create_task(self.send_chat(*key, rows))
        self._tasks.add(task)
        self._by_chat.setdefault(key, set()).add(task)
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: tuple[str, str], task: asyncio.Task) -> None:
        self._tasks.discard(task)
        tasks = self._by_chat.get(key)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                del self._by_chat[key]

    async def idle(self, chat_refs, channel: str, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until the replies being sent to these chats went out."""
        tasks = [t for ref in chat_refs for t in self._by_chat.get((channel, ref), ())]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def enqueue(self, *, user_id: int | None, channel: str, chat_ref: str, outputs: Sequence[Outbound],
                      reply_to: Tapped | None = None, lang: str = "") -> None:
        """Store and send replies decided outside a conversation turn (staff, admin, /my_data)."""
        if outputs:
            rows = await self.outbox.enqueue_replies(user_id=user_id, channel=channel, chat_ref=chat_ref,
                                                     outputs=outputs, reply_to=reply_to, now=int(self.clock.now()),
                                                     lang=lang)
            self.send_soon(rows)

    async def send_chat(self, channel: str, chat_ref: str, rows: Sequence[OutboxRow] = ()) -> None:
        """Send ``rows`` to one chat in order, after any of its older replies that wait for a retry."""
        key = (channel, chat_ref)
        async with self._chats.hold(key):
            rows = list(rows)
            if key in self._stalled:
                self._stalled.discard(key)
                try:
                    older = await self.outbox.claim_open_replies(channel, chat_ref, int(self.clock.now()))
                except Exception:
                    self._stalled.add(key)
                    raise
                seen = {r.id for r in rows}
                rows = sorted([r for r in older if r.id not in seen] + rows, key=lambda r: r.id)
            await self._send_in_order(key, rows)

    async def _send_in_order(self, key: tuple[str, str], rows: list[OutboxRow]) -> None:
        sender = self.senders.get(key[0])
        done: list[int] = []
        try:
            for index, row in enumerate(rows):
                if sender is None:
                    await self._wait(key, rows[index:], RetryLater(f"no sender for channel {key[0]!r} yet", 5.0))
                    return
                try:
                    await sender.reply(await self._drawn(row))
                except RetryLater as exc:
                    await self._wait(key, rows[index:], exc)
                    return
                except Blocked:
                    await self.outbox.blocked(row, int(self.clock.now()))
                    await self.outbox.drop_replies([r.id for r in rows[index:]])
                    return
                except Refused as exc:
                    log.error("reply %s refused by %s: %s", row.id, key[0], exc)
                    await self.outbox.fail_reply(row.id, str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - a rendering bug must not silence the chat
                    log.exception("reply %s could not be rendered", row.id)
                    await self.outbox.fail_reply(row.id, f"unexpected error: {exc!r}")
                    continue
                done.append(row.id)
                self.sent += 1
        finally:
            if done:
                self._sent_ids += done
                if self._flusher is None or self._flusher.done():
                    self._flusher = asyncio.create_task(self._flush_sent(SENT_FLUSH))

    async def _drawn(self, row: OutboxRow) -> OutboxRow:
        """``row`` with its named picture drawn, in the row's language (the outbox keeps only the name).

        Drawn off the event loop (the first drawing of a diagram takes ~0.1 s); a name the content
        no longer has (a diagram removed by an upgrade while its reply waited) is refused, not retried.
        """
        output = row.output
        if isinstance(output, Photo) and output.ref and not output.data and self.pictures is not None:
            try:
                data = await asyncio.to_thread(self.pictures, output.ref, row.lang)
            except KeyError:
                raise Refused(f"no picture named {output.ref!r} in the content any more") from None
            return replace(row, output=replace(output, data=data))
        return row

    async def _flush_sent(self, delay: float = 0.0) -> None:
        """Delete the rows of sent replies: one statement for every chat's sends of the last moment."""
        if delay:
            await asyncio.sleep(delay)
        while self._sent_ids:
            ids, self._sent_ids = self._sent_ids, []
            try:
                await self.outbox.replies_sent(ids)
            except Exception:  # noqa: BLE001 - kept for the next flush; a restart would resend them
                self._sent_ids = ids + self._sent_ids
                log.warning("could not mark %d sent replies; trying again shortly", len(ids))
                await asyncio.sleep(1.0)

    async def _wait(self, key: tuple[str, str], rows: list[OutboxRow], exc: RetryLater) -> None:
        attempts = max((r.attempts for r in rows), default=1)
        wait = exc.seconds if exc.seconds is not None else min(2 ** attempts, MAX_BACKOFF)
        log.warning("reply to a %s chat not sent yet (%s); retrying in %.0f s", key[0], exc, wait)
        await self.outbox.retry_replies(rows, int(self.clock.now() + wait), str(exc), counts=not exc.flood)
        self.retried += len(rows)
        self._stalled.add(key)
        self._wake.set()

    async def recover(self) -> int:
        """After a restart: every reply not confirmed sent waits to be sent again; returns how many chats."""
        chats = await self.outbox.recover_replies(int(self.clock.now()), self.lease)
        self._stalled.update(chats)
        if chats:
            log.warning("replies to %d chat(s) were not confirmed sent before the restart; sending them again", len(chats))
        return len(chats)

    async def retry_due(self) -> int:
        """Send every reply whose retry is due; returns how many chats were tried."""
        rows = await self.outbox.claim_due_replies(int(self.clock.now()))
        by_chat: dict[tuple[str, str], list[OutboxRow]] = {}
        for row in rows:
            by_chat.setdefault((row.channel, row.chat_ref), []).append(row)
        await asyncio.gather(*(self.send_chat(channel, chat, batch) for (channel, chat), batch in by_chat.items()))
        return len(by_chat)

    async def run(self, stop: asyncio.Event, poll: float = 5.0) -> None:
        """Recover, then retry replies as they become due, until ``stop`` is set.

        With a ``lease`` (several processes on one database) recovery runs every round: the replies a
        process that died had taken are sent by the others once their lease is over."""
        await self.recover()
        while not stop.is_set():
            self._wake.clear()
            if self.lease is not None:
                await self.recover()
            await self.retry_due()
            due = await self.outbox.next_reply_due()
            timeout = poll if due is None else min(poll, max(0.2, due - self.clock.now()))
            await wake_or_stop(self._wake, stop, timeout)
        await self.settle()

    async def settle(self) -> None:
        """Wait for the replies being sent now and their rows to be marked (tests, a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush_sent()
