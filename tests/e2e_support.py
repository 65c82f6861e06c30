"""Running the real bot (PTB Application over HTTP) against the Bot API stand-in, for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from telegram.ext import Application

from bot.app import App
from bot.channels.telegram_polling import DurablePolling
from bot.config import Settings
from bot.runtime import BotProcess, Runtime
from bot.services.clock import Clock
from tests.botapi_standin import BotApiStandin


@dataclass
class RunningBot:
    """The app (database, services), the PTB application serving it, its polling and the runtime."""

    app: App
    application: Application
    polling: DurablePolling
    runtime: Runtime


@asynccontextmanager
async def running_bot(
    api: BotApiStandin,
    db_path: Path,
    *,
    clock: Clock | None = None,
    background: bool = True,
    **settings: object,
) -> AsyncIterator[RunningBot]:
    """Start the bot as ``saathi run`` does (``BotProcess``: runtime, workers, polling) and stop it cleanly."""
    settings.setdefault("telegram_api_base_url", api.base_url)
    process = BotProcess(Settings(telegram_token=api.token, database_path=db_path, **settings), clock=clock,
                         background=background, poll_timeout=1)
    await process.start()
    try:
        yield RunningBot(process.app, process.application, process.polling, process.runtime)
    finally:
        await process.stop()
