"""The floor: the least a python-telegram-bot bot can do, to compare Export Saathi against.

It answers every message and every button press with one message with two buttons, and stores
nothing. It runs exactly as a bare PTB bot does: ``ApplicationBuilder`` defaults, so PTB's
default ``HTTPXRequest`` transport, long polling. Like Export Saathi it handles updates
concurrently (``concurrent_updates(True)``), so both bots face the same load the same way.

Run it through ``python bench/common.py floor`` with TELEGRAM_BOT_TOKEN and
TELEGRAM_API_BASE_URL set (``bench/conversations.py`` does).
"""

from __future__ import annotations

import logging
import os

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationBuilder, ContextTypes, TypeHandler

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes"), InlineKeyboardButton("No", callback_data="no")]])


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One message with two buttons for every message or button press."""
    chat = update.effective_chat
    if chat is not None and (update.message is not None or update.callback_query is not None):
        await context.bot.send_message(chat.id, "Got it. Next?", reply_markup=KEYBOARD)


def run() -> None:
    """Long-poll until interrupted."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    builder = ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"]).concurrent_updates(True)
    base_url = os.environ.get("TELEGRAM_API_BASE_URL")
    if base_url:
        builder = builder.base_url(base_url)
    application = builder.build()
    application.add_handler(TypeHandler(Update, answer))
    application.run_polling(allowed_updates=["message", "callback_query"])


if __name__ == "__main__":
    run()
