"""The delivery worker: sends outbox rows under the platform's rate limits, exactly once.

- Paced to ``rate`` messages a second overall and one message a second per chat.
- 429 → the whole worker waits the ``retry_after`` the platform named (flood control is per
  bot), and the row is retried without using up an attempt.
- 5xx, timeouts, network errors → the row is retried with exponential backoff, then failed.
- 403 → the user has blocked the bot: the row and the user are marked, pending rows for that
  chat are dropped.
A row is marked 'sending' before the request and 'sent' right after, so a row is never sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..core.messages import Say
from ..storage.outbox import OutboxRow, SqliteOutbox
from .clock import Clock, SystemClock

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Send again later: after ``seconds`` (or backoff when ``None``); ``flood`` for a 429."""

    def __init__(self, reason: str, seconds: float | None = None, flood: bool = False):
        super().__init__(reason)
        self.seconds, self.flood = seconds, flood


class Blocked(Exception):
    """The user has blocked the bot (Telegram 403)."""


class Refused(Exception):
    """The platform refused this message for good (e.g. a malformed message)."""


class Sender(Protocol):
    """Sends one message on a channel; raises ``RetryLater``, ``Blocked`` or ``Refused``."""

    async def send(self, chat_ref: str, say: Say) -> str | None: ...


@dataclass
class DeliveryStats:
    """What the worker did since it started."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    flood_waits: int = 0
    by_batch: dict[int, int] = field(default_factory=dict)


class DeliveryWorker:
    """Drains the outbox in the background; ``wake()`` it after enqueueing."""

    def __init__(
        self,
        outbox: SqliteOutbox,
        senders: dict[str, Sender],
        *,
        clock: Clock | None = None,
        rate: float = 25.0,
        per_chat_interval: float = 1.0,
        concurrency: int = 8,
        on_sent: Callable[[OutboxRow], Awaitable[None]] | None = None,
    ):
        self.outbox = outbox
        self.senders = senders
        self.clock = clock or SystemClock()
        self.rate = rate
        self.per_chat_interval = per_chat_interval
        self.concurrency = concurrency
        self.on_sent = on_sent
        self.stats = DeliveryStats()
        self._wake = asyncio.Event()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_by_chat: dict[tuple[str, str], float] = {}
        self._slots = asyncio.Semaphore(concurrency)

    def wake(self) -> None:
        """New rows may be due: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, poll: float = 5.0) -> None:
        """Deliver until ``stop`` is set."""
        recovered = await self.outbox.recover(int(self.clock.now()))
        if recovered:
            log.warning("%d outbox message(s) were being sent when the bot stopped; not resending them", recovered)
        while not stop.is_set():
            handled = await self.drain_once()
            if handled:
                continue
            self._wake.clear()
            due = await self.outbox.next_due()
            timeout = poll if due is None else min(poll, max(0.05, due - self.clock.now()))
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def drain(self) -> int:
        """Deliver everything due now (tests, scripts); returns how many rows were handled."""
        total = 0
        while handled := await self.drain_once():
            total += handled
        return total

    async def drain_once(self) -> int:
        """Claim one batch of due rows and deliver it."""
        # Claim only what can go out at once: a crash leaves at most this many rows in doubt.
        rows = await self.outbox.claim(int(self.clock.now()), limit=self.concurrency)
        if not rows:
            return 0
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _pace(self, row: OutboxRow) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            wait = max(self._paused_until - now, self._next_slot - now)
            chat = (row.channel, row.chat_ref)
            last = self._last_by_chat.get(chat)
            if last is not None:
                wait = max(wait, last + self.per_chat_interval - now)
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._next_slot = max(self._next_slot, loop.time()) + 1.0 / self.rate
        self._last_by_chat[chat] = loop.time()
        if len(self._last_by_chat) > 10_000:  # bounded: forget chats not seen within the interval
            cutoff = loop.time() - self.per_chat_interval
            self._last_by_chat = {k: v for k, v in self._last_by_chat.items() if v > cutoff}

    async def _deliver(self, row: OutboxRow) -> None:
        sender = self.senders.get(row.channel)
        if sender is None:
            await self.outbox.fail(row.id, f"no sender for channel {row.channel!r}")
            self.stats.failed += 1
            return
        async with self._slots:
            await self._pace(row)
            try:
                ref = await sender.send(row.chat_ref, row.say)
            except RetryLater as exc:
                await self._retry(row, exc)
                return
            except Blocked:
                await self.outbox.blocked(row, int(self.clock.now()))
                self.stats.blocked += 1
                return
            except Refused as exc:
                log.error("outbox row %s refused: %s", row.id, exc)
                await self.outbox.fail(row.id, str(exc))
                self.stats.failed += 1
                return
            await self.outbox.sent(row.id, int(self.clock.now()), ref)
        self.stats.sent += 1
        if row.batch_id is not None:
            self.stats.by_batch[row.batch_id] = self.stats.by_batch.get(row.batch_id, 0) + 1
        if self.on_sent is not None:
            await self.on_sent(row)

    async def _retry(self, row: OutboxRow, exc: RetryLater) -> None:
        now = self.clock.now()
        if exc.flood:
            self.stats.flood_waits += 1
            wait = exc.seconds or 1.0
            loop = asyncio.get_running_loop()
            self._paused_until = max(self._paused_until, loop.time() + wait)
            await self.outbox.retry(row, int(now + wait), str(exc), counts=False)
            self.stats.retried += 1
            return
        wait = exc.seconds if exc.seconds is not None else min(2 ** row.attempts, 300)
        if await self.outbox.retry(row, int(now + wait), str(exc)):
            self.stats.retried += 1
        else:
            self.stats.failed += 1
            log.error("outbox row %s failed after %d attempts: %s", row.id, row.attempts, exc)
