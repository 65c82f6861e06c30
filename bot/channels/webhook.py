"""Webhook mode: Telegram POSTs updates to our aiohttp server instead of being long-polled.

Telegram sends the secret given to setWebhook in the ``X-Telegram-Bot-Api-Secret-Token``
header; a request without the right secret is refused with 403 before its body is read, so
nobody else can inject updates. The secret never appears in a log line.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal

from aiohttp import web
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1 << 20


def webhook_app(application: Application, secret: str, path: str = "/telegram") -> web.Application:
    """An aiohttp app that checks the secret header and queues each update for PTB."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request refused: wrong or missing secret token (from %s)", request.remote)
            return web.Response(status=403)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.Response(status=413)
        try:
            data = await request.json()
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("webhook request refused: not an update (%s)", type(exc).__name__)
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response(status=200)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_post(path, receive)
    app.router.add_get("/health", health)
    return app


async def serve_webhook(application: Application, *, url: str, secret: str, listen: str, port: int) -> None:
    """Register the webhook with Telegram and serve until SIGINT/SIGTERM."""
    path = "/" + url.split("://", 1)[-1].split("/", 1)[-1] if "/" in url.split("://", 1)[-1] else "/telegram"
    await application.initialize()
    if application.post_init:
        await application.post_init(application)
    await application.start()
    runner = web.AppRunner(webhook_app(application, secret, path))
    await runner.setup()
    site = web.TCPSite(runner, listen, port)
    await site.start()
    await application.bot.set_webhook(url, secret_token=secret, allowed_updates=["message", "callback_query"])
    log.info("Export Saathi is running on Telegram (webhook on %s:%d%s)", listen, port, path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await application.stop()
        if application.post_stop:
            await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)
