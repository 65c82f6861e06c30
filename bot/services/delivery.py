"""The delivery worker: sends outbox rows under the platform's rate limits, exactly once.

- Paced to ``rate`` messages a second overall and one message a second per chat.
- 429 → the whole worker waits the ``retry_after`` the platform named (flood control is per
  bot), and the row is retried without using up an attempt.
- 5xx, timeouts, network errors → the row is retried with exponential backoff, then failed.
- 403 → the user has blocked the bot: the row and the user are marked, pending rows for that
  chat are dropped.
- A channel with a customer-service window (WhatsApp: 24 hours after the user's last message)
  gets, outside it, the approved template for the row's kind instead, or the row is held until
  the user writes again (``services/window.py``). A free-form message the platform refuses as
  outside the window (``WindowClosed``) goes again at once as the template.

Exactly once: a row is marked 'sending' before its request and 'sent' after, so a row is never
sent twice. To hold the rate without holding many rows in doubt, the work is pipelined: rows
are reserved from the outbox a fraction of a second ahead ('claimed', which a restart simply
puts back on the queue), each small group is marked 'sending' a few milliseconds before its
time slot, requests run concurrently, and the 'sent' marks are committed in batches every few
tens of milliseconds. A crash (SIGKILL) therefore leaves only the rows of the last few tens of
milliseconds in doubt — 'unknown' after the restart, never sent again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..core.messages import Say
from ..core.templates import TemplateSend
from ..storage.outbox import OutboxRow, SqliteOutbox
from .clock import Clock, SystemClock

if TYPE_CHECKING:
    from .window import ChatWindows

log = logging.getLogger(__name__)
LONG_WAIT = 0.25  # seconds: a pause in which the 'sent' marks of finished requests are committed first


async def wake_or_stop(wake: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    """Sleep until ``wake`` or ``stop`` is set, or ``timeout`` seconds have passed."""
    waiter = asyncio.ensure_future(wake.wait())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    stopper.cancel()


class RetryLater(Exception):
    """Send again later: after ``seconds`` (or backoff when ``None``); ``flood`` for a 429."""

    def __init__(self, reason: str, seconds: float | None = None, flood: bool = False):
        super().__init__(reason)
        self.seconds, self.flood = seconds, flood


class Blocked(Exception):
    """The user has blocked the bot (Telegram 403)."""


class Refused(Exception):
    """The platform refused this message for good (e.g. a malformed message)."""


class WindowClosed(Refused):
    """A free-form message refused because the user has not written within the window (WhatsApp 131047)."""


class TemplateRefused(Refused):
    """A template refused: not approved, paused, or its parameters do not match (WhatsApp 132xxx)."""


_HELD: Any = object()  # what ``_send`` returns for a row that waits instead of being sent


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
    in_doubt: int = 0  # rows found 'sending' at start-up (marked 'unknown', not resent)
    templates: int = 0  # sent as approved templates (outside a window)
    held: int = 0  # waiting for the user to write (no template, or an "open" template sent)
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
        concurrency: int | None = None,
        on_sent: Callable[[OutboxRow], Awaitable[None]] | None = None,
        tick: float = 0.0,
        flush_interval: float = 0.02,
        windows: ChatWindows | None = None,
    ):
        self.outbox = outbox
        self.windows = windows
        self.senders = senders
        self.clock = clock or SystemClock()
        self.rate = rate
        self.per_chat_interval = per_chat_interval
        # Enough requests in flight to hold the rate when each takes ~250 ms (a slow network).
        self.concurrency = int(concurrency) if concurrency else max(8, math.ceil(rate / 4))
        self.on_sent = on_sent
        self.tick = tick  # rows whose slots fall within one tick are marked 'sending' together (0: only overdue ones)
        self.flush_interval = flush_interval
        self.batch = max(self.concurrency, math.ceil(rate / 5))  # reserve ~0.2 s of work at a time
        # A slot missed by a hiccup (a slow commit, a GC pause) is made up within this much time,
        # as a short burst, instead of being lost: the rate holds without exceeding it by more.
        self.catch_up = 0.1
        # A group takes one slot per row before any request starts: never more rows than slots.
        self.group_max = max(1, min(self.concurrency, math.ceil(rate * (tick + self.catch_up))))
        self.stats = DeliveryStats()
        self._wake = asyncio.Event()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_by_chat: dict[tuple[str, str], float] = {}
        self._slots = asyncio.Semaphore(self.concurrency)
        self._tasks: set[asyncio.Task] = set()
        self._done: list[tuple[int, str | None]] = []
        self._refs: list[tuple[str, str]] = []  # (channel, message id) of the rows in _done with status webhooks (WhatsApp)
        self._templated: list[tuple[int, str]] = []  # sent rows that went as a template: (row id, template name)
        self._flush_lock = asyncio.Lock()
        self._last_flush = 0.0
        self._started = False

    def wake(self) -> None:
        """New rows may be due: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, poll: float = 5.0) -> None:
        """Deliver until ``stop`` is set."""
        # The first run after start-up settles what a crash left; a run restarted by the runtime
        # (after a database error) only puts back the rows it had reserved and not started.
        recovered = await self.outbox.recover(int(self.clock.now()), in_doubt=not self._started, channels=tuple(self.senders))
        self._started = True
        self.stats.in_doubt += recovered
        if recovered:
            log.warning("%d outbox message(s) were being sent when the bot stopped; not resending them", recovered)
        try:
            while not stop.is_set():
                handled = await self._pump(stop)
                if handled:
                    continue
                await self._settle()
                self._wake.clear()
                due = await self.outbox.next_due(tuple(self.senders))
                timeout = poll if due is None else min(poll, max(0.05, due - self.clock.now()))
                await wake_or_stop(self._wake, stop, timeout)
        finally:
            await self._settle()

    async def drain(self) -> int:
        """Deliver everything due now (tests, scripts); returns how many rows were handled."""
        total = 0
        while True:
            handled = await self._pump()
            total += handled
            if handled:
                continue
            if not self._tasks:
                break
            await self._settle()
        await self._settle()
        return total

    async def flush(self) -> None:
        """Commit the 'sent' marks of the requests that have finished."""
        async with self._flush_lock:
            self._last_flush = asyncio.get_running_loop().time()
            if not self._done:
                return
            done, self._done = self._done, []
            refs, self._refs = self._refs, []
            try:
                early = await self.outbox.sent_many(done, int(self.clock.now()), refs)
            except BaseException:  # kept for the next flush: these were sent, they must not end up in doubt
                self._done, self._refs = done + self._done, refs + self._refs
                raise
            templated, self._templated = self._templated, []
            if templated and self.windows is not None:
                await self.windows.templated(templated)
            if early and self.windows is not None:  # statuses that overtook their messages, applied now
                self.windows.after_statuses(early)

    async def _settle(self) -> None:
        """Wait for every request in flight, then commit their outcomes."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.flush()

    async def _pump(self, stop: asyncio.Event | None = None) -> int:
        """Reserve a batch and start its requests, each in its time slot; returns the batch size.

        Returns when the last request of the batch has started, not finished, so the next batch
        follows without a gap in the pacing.
        """
        rows = await self.outbox.reserve(int(self.clock.now()), self.batch, tuple(self.senders))
        if not rows:
            return 0
        loop = asyncio.get_running_loop()
        queue = deque(rows)
        later: list[tuple[float, int, OutboxRow]] = []  # rows waiting for their chat's interval
        order = itertools.count()
        unlaunched = {row.id for row in rows}  # claimed, not yet 'sending': safe to put back
        try:
            facts = await self.windows.facts(rows) if self.windows is not None else {}
            await self._launch(queue, later, order, unlaunched, stop, facts)
        except asyncio.CancelledError:  # stopping mid-batch: what was never sent goes back on the queue
            await asyncio.shield(self.outbox.release(list(unlaunched)))
            raise
        if len(self._last_by_chat) > 10_000:  # bounded: forget chats not seen within the interval
            cutoff = loop.time() - self.per_chat_interval
            self._last_by_chat = {k: v for k, v in self._last_by_chat.items() if v > cutoff}
        return len(rows)

    async def _launch(
        self,
        queue: deque[OutboxRow],
        later: list[tuple[float, int, OutboxRow]],
        order: itertools.count,
        unlaunched: set[int],
        stop: asyncio.Event | None,
        facts: dict[int, Any] | None = None,
    ) -> None:
        """Give each reserved row its time slot, mark it 'sending' at that moment, start its request."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate
        while queue or later:
            if stop is not None and stop.is_set():
                await self.outbox.release(list(unlaunched))
                return
            now = loop.time()
            # Behind by more than ``catch_up`` means idle (or a long stall): start afresh, no burst.
            start = max(self._next_slot, self._paused_until) if self._next_slot >= now - self.catch_up else now
            slot, horizon = start, max(start, now) + self.tick
            group: list[tuple[float, OutboxRow]] = []
            while len(group) < self.group_max and slot <= horizon:
                if later and later[0][0] <= slot:
                    row = heapq.heappop(later)[2]
                elif queue:
                    row = queue.popleft()
                else:
                    break
                chat = (row.channel, row.chat_ref)
                ready = self._last_by_chat.get(chat, -math.inf) + self.per_chat_interval
                if ready > slot:
                    heapq.heappush(later, (ready, next(order), row))
                    continue
                group.append((slot, row))
                self._last_by_chat[chat] = slot
                slot += interval
                self._next_slot = slot
            if not group:  # only rows whose chats must wait
                await self._wait_until(later[0][0])
                continue
            await self._wait_until(group[0][0])
            for _ in group:
                await self._slots.acquire()
            try:
                live = await self.outbox.start_sending([row.id for _, row in group])
            except BaseException:  # still only 'claimed': a restarted run puts them back
                for _ in group:
                    self._slots.release()
                raise
            for slot_at, row in group:
                unlaunched.discard(row.id)
                if row.id not in live:  # cancelled or dropped since it was reserved
                    self._slots.release()
                    continue
                task = asyncio.create_task(self._deliver(replace(row, attempts=row.attempts + 1), slot_at,
                                                         (facts or {}).get(row.id)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(self._done) >= self.batch or loop.time() - self._last_flush >= self.flush_interval:
                await self.flush()

    async def _wait_until(self, moment: float) -> None:
        """Sleep until ``moment`` (loop time). A long wait (a chat's one-second interval, a 429 pause)
        first sees the requests in flight finish and commits their marks: until then a crash would
        leave rows in doubt that were delivered long ago."""
        loop = asyncio.get_running_loop()
        if moment - loop.time() > LONG_WAIT and (self._tasks or self._done):
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=moment - loop.time())
            await self.flush()
        await asyncio.sleep(max(0.0, moment - loop.time()))

    async def _deliver(self, row: OutboxRow, slot: float, facts: Any = None) -> None:
        try:
            sender = self.senders.get(row.channel)
            if sender is None:
                await self.outbox.fail(row.id, f"no sender for channel {row.channel!r}")
                self.stats.failed += 1
                return
            loop = asyncio.get_running_loop()
            wait = max(slot, self._paused_until) - loop.time()
            if wait > 0:  # a 429 may have paused the worker since this row got its slot
                await asyncio.sleep(wait)
            try:
                ref = await self._send(sender, row, facts)
                if ref is _HELD:
                    return
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
            except Exception as exc:  # the request may have gone out: never resend, say why
                log.exception("outbox row %s: unexpected error while sending", row.id)
                await self.outbox.fail(row.id, f"unexpected error: {exc!r}")
                self.stats.failed += 1
                return
            self._done.append((row.id, ref))
            if ref and self.windows is not None and self.windows.applies(row):
                self._refs.append((row.channel, ref))
        finally:
            self._slots.release()
        self.stats.sent += 1
        if row.batch_id is not None:
            self.stats.by_batch[row.batch_id] = self.stats.by_batch.get(row.batch_id, 0) + 1
        if self.on_sent is not None:
            await self.on_sent(row)

    async def _send(self, sender: Any, row: OutboxRow, facts: Any) -> Any:
        """Send ``row`` as it is, or (outside the user's window) as its template; ``_HELD`` if it waits."""
        windows = self.windows
        say = row.say.resent() if row.attempts > 1 else row.say  # a retry follows a try that may have arrived
        if windows is None or not windows.applies(row) or not hasattr(sender, "send_template"):
            return await sender.send(row.chat_ref, say)
        now = self.clock.now()
        plan = windows.plan(row, facts, now)
        if plan is None:
            try:
                return await sender.send(row.chat_ref, say)
            except WindowClosed:  # the platform knows better than our record: the template, then
                log.info("outbox row %s: outside the window after all; trying its template", row.id)
                await windows.mark_closed(row)
                plan = windows.plan(row, windows.closed(facts, now), now)
        if not isinstance(plan, TemplateSend):
            await windows.hold(row.id, plan.reason)
            self.stats.held += 1
            return _HELD
        try:
            ref = await sender.send_template(row.chat_ref, plan)
        except TemplateRefused as exc:
            log.error("template %s (%s) refused: %s; outbox row %s waits for the user to write", plan.name, plan.lang, exc, row.id)
            await windows.hold(row.id, f"not_approved:{plan.name}")
            self.stats.held += 1
            return _HELD
        self.stats.templates += 1
        if plan.opens:  # the full message follows when the user taps the template's button (or writes)
            await windows.hold(row.id, f"template_sent:{plan.name}", message_ref=ref, template=plan.name,
                               channel=row.channel)
            self.stats.held += 1
            return _HELD
        self._templated.append((row.id, plan.name))
        return ref

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


class Lanes:
    """The delivery workers of one process, one per platform: woken together, counted together."""

    def __init__(self, workers: list[DeliveryWorker]):
        self.workers = workers

    def wake(self) -> None:
        """New rows may be due: every worker looks now."""
        for worker in self.workers:
            worker.wake()

    def __iter__(self):
        return iter(self.workers)
