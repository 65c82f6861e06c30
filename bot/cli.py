"""The ``saathi`` command: run the bot, chat in the terminal, check content, manage data."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .config import ConfigError, Settings
from .core.content import ContentError

log = logging.getLogger("saathi")


def _settings() -> Settings:
    return Settings.from_env()


async def _chat(settings: Settings, user: str) -> None:
    from .app import build_app
    from .channels.console import ConsoleChannel

    app = await build_app(settings)
    try:
        await ConsoleChannel(app.dispatcher, sys.stdin, sys.stdout, user_ref=user).run()
    finally:
        await app.close()


def cmd_run(args: argparse.Namespace) -> int:
    """Telegram when TELEGRAM_BOT_TOKEN is set, else the terminal chat."""
    settings = _settings()
    if not settings.telegram_token:
        print("TELEGRAM_BOT_TOKEN is not set: starting the terminal chat (data in %s)." % settings.database_path)
        asyncio.run(_chat(settings, "local"))
        return 0
    from .channels.telegram import run_polling

    from .logs import setup_logging

    setup_logging(settings.log_level, [settings.telegram_token])
    run_polling(settings)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A chat in the terminal."""
    asyncio.run(_chat(_settings(), args.user))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate content and catalogs."""
    from .checks import check_all

    problems = check_all()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) found.")
        return 1
    print("Content and translations: OK")
    return 0


def cmd_i18n(args: argparse.Namespace) -> int:
    """Extract strings and update the catalogs."""
    from .catalogs import update

    for line in update():
        print(line)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Online backup of the database."""
    from .storage.db import Database

    async def backup() -> None:
        db = await Database.open(_settings().database_path)
        try:
            await db.backup(args.file)
        finally:
            await db.close()

    asyncio.run(backup())
    print(f"Backup written to {args.file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saathi", description="Export Saathi: export training chatbot for MSMEs.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (Telegram if TELEGRAM_BOT_TOKEN is set, else the terminal chat)").set_defaults(func=cmd_run)
    chat = sub.add_parser("chat", help="chat with the bot in the terminal")
    chat.add_argument("--user", default="local", help="which local user to be (default: local)")
    chat.set_defaults(func=cmd_chat)
    sub.add_parser("check", help="validate content and translations").set_defaults(func=cmd_check)
    sub.add_parser("i18n", help="extract strings and update locales/*.po").set_defaults(func=cmd_i18n)
    backup = sub.add_parser("backup", help="online backup of the database to FILE")
    backup.add_argument("file", type=Path)
    backup.set_defaults(func=cmd_backup)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``saathi`` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ContentError) as exc:
        print(f"saathi: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
