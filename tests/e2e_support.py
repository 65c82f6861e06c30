"""Running the real bot (PTB Application over HTTP) against the Bot API stand-in, for tests."""

from __future__ import annotations

import asyncio
import time
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
        await _caught_up(process)
        yield RunningBot(process.app, process.application, process.polling, process.runtime)
    finally:
        await process.stop()


CATCH_UP_JOBS = ("lead-sweep", "certificates")  # the periodic jobs whose first run is at start


async def _caught_up(process: BotProcess, timeout: float = 15.0) -> None:
    """On PostgreSQL the background work starts once this process holds the cluster-wide lock, a moment
    after start; on SQLite it starts at once. Wait for that moment and for the catch-up jobs' first run, so
    that a test acts after them on both engines (and a sweep the test calls is not raced by the first one)."""
    lead = getattr(process.runtime, "leadership", None)
    if lead is None:
        return
    await asyncio.wait_for(lead.held.wait(), timeout)
    names = [n for n in CATCH_UP_JOBS if n in process.runtime.supervisor.workers]
    deadline = time.monotonic() + timeout
    while any([await process.app.db.last_run(n) is None for n in names]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the first run of {names} did not finish in {timeout} s")
        await asyncio.sleep(0.02)
