"""Webhook mode: Telegram POSTs updates to our aiohttp server instead of being long-polled.

Telegram sends the secret given to setWebhook in the ``X-Telegram-Bot-Api-Secret-Token``
header; a request without the right secret is refused with 403 before its body is read, so
nobody else can inject updates. The secret never appears in a log line.

An update is answered 200 only once it is stored in the inbox: if the database cannot take it,
Telegram gets a 503 and delivers it again later, so nothing acknowledged is lost.

A tap (callback query) is answered inside the 200 itself: Telegram carries out a method given
in the webhook response's body, which saves a request per tap. The response waits for the turn
to decide the answer (a pop-up such as "that button is from an earlier message", or none), at
most ``answer_wait`` seconds; after that it is a bare 200 and the tap is answered by a request
of its own, as in polling mode. Telegram reports nothing about a method in a response, which
suits a tap's answer: it has no result anybody reads.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from .telegram_polling import inbox_item, lean

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1 << 20
ANSWER_WAIT = 2.0
"""Seconds a tap's webhook request waits for its answer to carry it (a turn takes milliseconds)."""


def webhook_app(application: Application, secret: str, path: str = "/telegram", inbox=None, extra=None,
                answer_wait: float = ANSWER_WAIT) -> web.Application:
    """An aiohttp app that checks the secret header, stores each update in ``inbox`` and queues it for PTB.

    ``extra(app)``, when given, adds routes of its own to the same server (the dashboard);
    ``answer_wait`` is how long a tap's request waits to carry the tap's answer."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request refused: wrong or missing secret token (from %s)", request.remote)
            return web.Response(status=403)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.Response(status=413)
        try:
            data = await request.json()
            update = Update.de_json(lean(data), application.bot)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("webhook request refused: not an update (%s)", type(exc).__name__)
            return web.Response(status=400)
        if inbox is not None:
            try:
                await inbox.put("telegram", [inbox_item(update, data)], int(time.time()))
            except Exception as exc:  # noqa: BLE001 - not stored: Telegram must send it again
                log.error("webhook update not stored (%s); asking Telegram to send it again", type(exc).__name__)
                return web.Response(status=503)
        channel = application.bot_data.get("channel")
        query = update.callback_query
        if channel is None or query is None or answer_wait <= 0:
            await application.update_queue.put(update)
            return web.Response(status=200)
        waiting = channel.answer_in_response(query.id)
        await application.update_queue.put(update)
        try:
            text = await asyncio.wait_for(asyncio.shield(waiting), answer_wait)
        except TimeoutError:
            if not waiting.done() or waiting.cancelled():
                channel.stop_waiting(query.id, waiting)
                return web.Response(status=200)
            text = waiting.result()
        answer = {"method": "answerCallbackQuery", "callback_query_id": query.id}
        if text:
            answer["text"] = text
        return web.json_response(answer)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_post(path, receive)
    app.router.add_get("/health", health)
    if extra is not None:
        extra(app)
    return app


async def start_webhook(application: Application, *, url: str, secret: str, listen: str, port: int, inbox=None,
                        extra=None) -> web.AppRunner:
    """Replay what a crash left stored, serve the webhook and register it with Telegram.

    The application must be started; ``cleanup()`` the returned runner to stop receiving.
    """
    path = "/" + url.split("://", 1)[-1].split("/", 1)[-1] if "/" in url.split("://", 1)[-1] else "/telegram"
    if inbox is not None:  # what a crash left stored and unhandled goes first, in order
        for item in await inbox.pending("telegram"):
            await application.update_queue.put(Update.de_json(json.loads(item.payload), application.bot))
    runner = web.AppRunner(webhook_app(application, secret, path, inbox, extra))
    await runner.setup()
    await web.TCPSite(runner, listen, port).start()
    await application.bot.set_webhook(url, secret_token=secret, allowed_updates=["message", "callback_query"])
    log.info("Export Saathi is running on Telegram (webhook on %s:%d%s)", listen, port, path)
    return runner
