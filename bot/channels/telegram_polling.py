"""Long polling that tells Telegram an update arrived only once it is stored.

``getUpdates`` confirms every update below the ``offset`` it is called with. PTB's own updater
calls it again as soon as the previous batch is in its in-memory queue, so a crash a moment
later loses updates Telegram will never send again. Here a batch is written to the inbox first
(one transaction) and only then is the next ``getUpdates`` made; the batch is then handed to
PTB's queue. At start-up, stored updates that were not handled are handled first, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence


from telegram import Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import Application

from ..core.messages import InboxItem
from ..services.hub import Inbox

log = logging.getLogger(__name__)
CHANNEL = "telegram"
ALLOWED_UPDATES = ("message", "callback_query")
STORE_PATIENCE = 3.0
"""Seconds a batch waits for the database (a lock held elsewhere) before it is handled unstored:
past that the database is in real trouble (full, broken), and owners are better told "please
send it again" by the handler than left waiting in silence."""


def inbox_item(update: Update, data: dict | None = None) -> InboxItem:
    """The stored form of ``update``: its id, its JSON and its chat.

    A button tap arrives with the whole message it was under, which may be about someone else (a
    lead card names the owner): only what is needed to handle the tap is kept of that message.
    """
    data = dict(data if data is not None else update.to_dict())
    query = data.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        message = query["message"]
        query = dict(query, message={k: message[k] for k in ("message_id", "date", "chat") if k in message})
        data["callback_query"] = query
    chat = update.effective_chat
    return InboxItem(str(update.update_id), json.dumps(data, ensure_ascii=False), str(chat.id) if chat is not None else None)


class DurablePolling:
    """Fetches updates, stores them, then lets Telegram forget them; ``start``/``stop`` like PTB's updater."""

    def __init__(self, application: Application, inbox: Inbox, *, timeout: int = 10, poll_interval: float = 0.0,
                 item=inbox_item):
        self.application = application
        self.inbox = inbox
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._item = item
        self._offset: int | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self.running = False

    async def start(self) -> None:
        """Replay what a crash left unhandled, then poll in the background."""
        bot = self.application.bot
        await bot.delete_webhook(drop_pending_updates=False)
        replay = await self.inbox.pending(CHANNEL)
        for item in replay:
            await self.application.update_queue.put(Update.de_json(json.loads(item.payload), bot))
        if replay:
            log.warning("handling %d update(s) stored before the last stop", len(replay))
        self.running = True
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        """Stop polling; confirm what was stored, so Telegram does not send it again."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.running = False
        if self._offset is not None:
            with contextlib.suppress(TelegramError, asyncio.TimeoutError):
                # Confirms everything below the offset; the one update it may return stays unconfirmed.
                await self.application.bot.get_updates(offset=self._offset, limit=1, timeout=0)
        with contextlib.suppress(Exception):
            await self.inbox.flush()

    async def _run(self) -> None:
        backoff = 1.0
        bot = self.application.bot
        while not self._stopping.is_set():
            try:
                updates = await bot.get_updates(offset=self._offset, timeout=self.timeout,
                                                allowed_updates=list(ALLOWED_UPDATES))
            except RetryAfter as exc:
                retry = exc.retry_after
                await asyncio.sleep(retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry))
                continue
            except TelegramError as exc:
                log.warning("getUpdates failed (%s); trying again in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if not updates:
                await self.inbox.flush()
                if self.poll_interval:
                    await asyncio.sleep(self.poll_interval)
                continue
            if not await self._store(updates):
                log.error("handling %d update(s) without storing them first: the database cannot take them", len(updates))
            self._offset = updates[-1].update_id + 1
            for update in updates:
                await self.application.update_queue.put(update)
            if self.poll_interval:
                await asyncio.sleep(self.poll_interval)

    async def _store(self, updates: Sequence[Update]) -> bool:
        """Write the batch to the inbox, retrying while the database is busy (nothing is confirmed meanwhile).

        False when it could not be stored within ``STORE_PATIENCE``.
        """
        items = [self._item(update) for update in updates]
        wait, deadline = 0.25, time.monotonic() + STORE_PATIENCE
        while True:
            try:
                await self.inbox.put(CHANNEL, items, int(time.time()))
                return True
            except Exception as exc:  # noqa: BLE001 - locked or full: keep the batch, confirm nothing
                if time.monotonic() + wait > deadline:
                    return False
                log.warning("could not store %d update(s) (%s); trying again in %.2f s", len(items), exc, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 1.0)
