"""Running the real bot (PTB Application over HTTP) against the Bot API stand-in, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from telegram.ext import Application

from bot.app import App, build_app
from bot.channels.telegram import build_application
from bot.channels.telegram_polling import DurablePolling
from bot.config import Settings
from bot.services.clock import Clock
from tests.botapi_standin import BotApiStandin


@dataclass
class RunningBot:
    """The app (database, services), the PTB application serving it and its polling."""

    app: App
    application: Application
    polling: DurablePolling


@asynccontextmanager
async def running_bot(
    api: BotApiStandin,
    db_path: Path,
    *,
    clock: Clock | None = None,
    background: bool = True,
    **settings: object,
) -> AsyncIterator[RunningBot]:
    """Start the bot as ``run_polling`` would (post_init included) and stop it cleanly."""
    app = await build_app(Settings(telegram_token=api.token, database_path=db_path, **settings), clock=clock)
    application = build_application(app, base_url=api.base_url, background=background)
    await application.initialize()
    if application.post_init:
        await application.post_init(application)
    await application.start()
    polling = DurablePolling(application, app.inbox, timeout=1)
    await polling.start()
    try:
        yield RunningBot(app, application, polling)
    finally:
        if polling.running:
            await polling.stop()
        await application.stop()
        if application.post_stop:
            await application.post_stop(application)
        await application.shutdown()
        await app.close()
