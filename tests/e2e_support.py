"""Running the real bot (PTB Application over HTTP) against the Bot API stand-in, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from telegram.ext import Application

from bot.app import App, build_app
from bot.channels.telegram import build_application
from bot.config import Settings
from bot.services.clock import Clock
from tests.botapi_standin import BotApiStandin


@dataclass
class RunningBot:
    """The app (database, services) and the PTB application serving it."""

    app: App
    application: Application


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
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield RunningBot(app, application)
    finally:
        if application.updater.running:
            await application.updater.stop()
        await application.stop()
        if application.post_stop:
            await application.post_stop(application)
        await application.shutdown()
        await app.close()
