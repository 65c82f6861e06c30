"""Long polling that tells Telegram an update arrived only once it is stored.

``getUpdates`` confirms every update below the ``offset`` it is called with. PTB's own updater
calls it again as soon as the previous batch is in its in-memory queue, so a crash a moment
later loses updates Telegram will never send again. Here a batch is written to the inbox first
(one transaction) and only then is the next ``getUpdates`` made; the batch is then handed to
PTB's queue. At start-up, stored updates that were not handled are handled first, in order.

The batch is fetched raw (the ``getUpdates`` request PTB's ``get_updates`` makes, with its
errors) so that each update is stored as the JSON Telegram sent, not rebuilt from PTB's
objects (``to_dict``); each is parsed on its own, and one that does not parse becomes a bare
update with its id (as ``TolerantBot`` does), so one odd update never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any


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


def lean(data: Any) -> Any:
    """An update as the bot reads it: a tap's message without its buttons. The bot never reads the
    tapped message's buttons back (it redraws from its own state), and building them was most of
    the cost of parsing a tap (a list of 36 states is 36 button objects and more)."""
    query = data.get("callback_query") if isinstance(data, dict) else None
    message = query.get("message") if isinstance(query, dict) else None
    if isinstance(message, dict) and "reply_markup" in message:
        message = {k: v for k, v in message.items() if k != "reply_markup"}
        return {**data, "callback_query": {**query, "message": message}}
    return data


def parse_batch(bot, raw) -> list[tuple[Update, dict | None]]:
    """The updates of a raw ``getUpdates`` result, each with its JSON (``None`` when it did not parse)."""
    insert = getattr(bot, "insert_callback_data", None)  # ExtBot's arbitrary callback data (a no-op here)
    batch: list[tuple[Update, dict | None]] = []
    if not isinstance(raw, list):  # getUpdates answers a list; anything else holds no update
        log.warning("getUpdates answered %s, not a list of updates", type(raw).__name__)
        return batch
    for data in raw:
        try:
            update, kept = Update.de_json(lean(data), bot), data
        except Exception:  # noqa: BLE001 - one odd update must not deafen the bot
            update_id = data.get("update_id") if isinstance(data, dict) else None
            log.error("skipping update %s: it cannot be parsed", update_id)
            if not isinstance(update_id, int):
                continue
            update, kept = Update(update_id=update_id), None
        if insert is not None:
            insert(update)
        batch.append((update, kept))
    return batch


def _poll_read_timeout(bot, timeout: float) -> float:
    """The read timeout of a long poll: the getUpdates transport's own plus the poll's (as PTB's get_updates)."""
    requests = getattr(bot, "_request", None)  # (get_updates request, other requests)
    own = getattr(requests[0], "read_timeout", None) if requests else None
    return (own or 0) + timeout


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
        params = {"timeout": self.timeout, "allowed_updates": list(ALLOWED_UPDATES)}
        read_timeout = _poll_read_timeout(bot, self.timeout)
        while not self._stopping.is_set():
            try:
                raw = await bot._post("getUpdates", dict(params, offset=self._offset), read_timeout=read_timeout)  # noqa: SLF001
                batch = parse_batch(bot, raw)
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
            if not batch:
                await self.inbox.flush()
                if self.poll_interval:
                    await asyncio.sleep(self.poll_interval)
                continue
            if not await self._store(batch):
                log.error("handling %d update(s) without storing them first: the database cannot take them", len(batch))
            self._offset = batch[-1][0].update_id + 1
            for update, _ in batch:
                await self.application.update_queue.put(update)
            if self.poll_interval:
                await asyncio.sleep(self.poll_interval)

    async def _store(self, batch: Sequence[tuple[Update, dict | None]]) -> bool:
        """Write the batch (updates with their JSON) to the inbox, retrying while the database is busy
        (nothing is confirmed meanwhile).

        False when it could not be stored within ``STORE_PATIENCE``.
        """
        items = [self._item(update, data) for update, data in batch]
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
