"""The aiogram floor: the least an aiogram 3 bot can do, to compare Export Saathi against.

Like ``floor_bot.py`` for python-telegram-bot, it answers every message and every button press
with one message with two buttons, and stores nothing. It runs as a bare aiogram 3 bot does:
``Bot`` + ``Dispatcher`` defaults (aiogram's own aiohttp session, the standard ``json`` module,
the default in-memory FSM storage it never writes to), ``start_polling`` long polling with its
default 10-second poll and every update handled as its own task (aiogram's default
``handle_as_tasks=True``; PTB's floor has ``concurrent_updates(True)`` for the same load).
Callback queries are not answered, as the PTB floor does not answer them either: one Bot API
call per update on both floors.

aiogram is not a dependency of the bot. ``ensure_venv()`` (called by ``bench/conversations.py``
in the benchmark's own interpreter) creates ``bench/.venv-aiogram`` with the same Python on
first use and installs ``aiogram==3.*`` from PyPI into it; this file is then run by that
venv's interpreter::

    bench/.venv-aiogram/bin/python bench/aiogram_floor.py

with TELEGRAM_BOT_TOKEN and TELEGRAM_API_BASE_URL (the stand-in's ``.../bot``, as PTB takes it)
set (and WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_LISTEN, WEBHOOK_PORT for webhook mode, as the bot
takes them); ``BENCH_PROFILE=<file>`` records a cProfile of the whole run, as ``bench/common.py`` does
for the other bots. SIGINT stops it (aiogram's own signal handling, session closed).

Nothing here imports the project, so the process holds aiogram and what it needs only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-aiogram"
REQUIREMENT = "aiogram==3.*"


def venv_python() -> Path:
    """The aiogram venv's interpreter (it may not exist yet)."""
    return VENV / "bin" / "python"


def installed_version() -> str | None:
    """aiogram's version in the venv, or None when the venv or aiogram 3 is missing."""
    python = venv_python()
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import aiogram; print(aiogram.__version__)"],
        capture_output=True, text=True, check=False,
    )
    version = probe.stdout.strip()
    return version if probe.returncode == 0 and version.startswith("3.") else None


def ensure_venv() -> tuple[Path, str]:
    """(interpreter, aiogram version), creating the venv and installing aiogram on first use."""
    version = installed_version()
    if version is not None:
        return venv_python(), version
    print(f"installing {REQUIREMENT} into {VENV} (first use of the aiogram floor) …", file=sys.stderr, flush=True)
    if not venv_python().exists():
        # From a venv, the venv module builds on the base interpreter: the same Python.
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = subprocess.run(
        [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REQUIREMENT],
        check=False,
    )
    version = installed_version()
    if pip.returncode != 0 or version is None:
        raise SystemExit(f"could not install {REQUIREMENT} into {VENV} (pip exited with {pip.returncode})")
    return venv_python(), version


# ----------------------------------------------------------------- the bot (run by the venv's Python)
def run() -> None:
    """Long-poll until interrupted."""
    import asyncio
    import logging

    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    # Its "Received SIGINT signal" warning at every stop would clutter the benchmark's output;
    # polling errors are logged at ERROR and still show.
    logging.getLogger("aiogram.dispatcher").setLevel(max(logging.ERROR, logging.getLogger().level))
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="yes"), InlineKeyboardButton(text="No", callback_data="no")]]
    )
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def on_message(message: Message, bot: Bot) -> None:
        await bot.send_message(message.chat.id, "Got it. Next?", reply_markup=keyboard)

    @dispatcher.callback_query()
    async def on_tap(query: CallbackQuery, bot: Bot) -> None:
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        await bot.send_message(chat_id, "Got it. Next?", reply_markup=keyboard)

    session = None
    base_url = os.environ.get("TELEGRAM_API_BASE_URL")
    if base_url:
        # PTB's base_url ends in /bot (PTB appends the token); aiogram's server base is the host.
        root = base_url.rstrip("/")
        root = root[: -len("/bot")] if root.endswith("/bot") else root
        session = AiohttpSession(api=TelegramAPIServer.from_base(root))
    bot = Bot(os.environ["TELEGRAM_BOT_TOKEN"], session=session)
    url = os.environ.get("WEBHOOK_URL")
    if not url:
        asyncio.run(dispatcher.start_polling(bot, allowed_updates=["message", "callback_query"]))
        return
    # Webhook mode (``conversations.py --webhook``), aiogram's documented aiohttp setup: each
    # update is answered 200 at once and handled in the background (handle_in_background=True).
    from aiohttp import web
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application

    secret = os.environ["WEBHOOK_SECRET"]

    async def on_startup(bot: Bot) -> None:
        await bot.set_webhook(url, secret_token=secret, allowed_updates=["message", "callback_query"])

    dispatcher.startup.register(on_startup)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret).register(app, path="/telegram")
    setup_application(app, dispatcher, bot=bot)
    web.run_app(app, host=os.environ.get("WEBHOOK_LISTEN", "127.0.0.1"), port=int(os.environ["WEBHOOK_PORT"]),
                access_log=None, print=None)


def _main() -> None:
    profile_path = os.environ.get("BENCH_PROFILE")
    if not profile_path:
        run()
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
        profiler.dump_stats(profile_path)


if __name__ == "__main__":
    _main()
