"""The ``saathi`` command: run the bot, chat in the terminal, check content, manage data."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .config import ConfigError, Settings
from .core.content import ContentError
from .core.errors import StorageError

log = logging.getLogger("saathi")


def _settings() -> Settings:
    return Settings.from_env()


def cmd_run(args: argparse.Namespace) -> int:
    """Telegram and/or WhatsApp when their tokens are set (both: one process), else the terminal chat."""
    from .config import env_file_warning
    from .runtime import run

    warning = env_file_warning()
    if warning:
        print(f"saathi: {warning}", file=sys.stderr)
    settings = _settings()
    if not (settings.telegram_token or settings.whatsapp_token):
        run(settings)
        return 0
    from .logs import setup_logging

    setup_logging(settings.log_level, settings.secrets())
    try:
        run(settings)
    except Exception as exc:  # noqa: BLE001 - through the redacting log, never a raw traceback with the token in it
        from telegram.error import InvalidToken

        if isinstance(exc, InvalidToken):
            log.error("Telegram refused TELEGRAM_BOT_TOKEN (revoked or mistyped?): check it with @BotFather")
            return 2
        log.critical("the bot stopped: %s", exc, exc_info=True)
        return 1
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A chat in the terminal."""
    from .runtime import chat

    asyncio.run(chat(_settings(), args.user))
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


def _without_password(url: str) -> tuple[str, str]:
    """``url`` with its password taken out, and the password."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url, ""
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}")), unquote(parts.password)


def _pg_dump(settings: Settings, target: Path) -> int:
    """``pg_dump`` of the PostgreSQL database to ``target`` (custom format: ``pg_restore`` reads it); 0600."""
    import os
    import shutil
    import subprocess

    from .storage.db import create_private

    tool = shutil.which("pg_dump")
    if tool is None:
        print("saathi: pg_dump is not installed (Debian: apt-get install postgresql-client); nothing was backed up.",
              file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    create_private(str(target))
    os.chmod(target, 0o600)
    url, password = _without_password(settings.database_url)
    env = {**os.environ}
    if password:  # in the environment, not on the command line, where other users could read it
        env["PGPASSWORD"] = password
    done = subprocess.run([tool, "--format=custom", "--no-owner", f"--file={target}", f"--dbname={url}"],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        for secret in settings.secrets():
            reason = reason.replace(secret, "***")
        print(f"saathi: pg_dump failed: {reason}", file=sys.stderr)
        return 1
    print(f"Backup written to {target} (pg_dump custom format; restore with pg_restore --dbname=URL {target})")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Online backup of the database."""
    from .storage.db import Database

    target = Path(args.file)
    settings = _settings()
    if settings.database_url:
        return _pg_dump(settings, target)
    source = settings.database_path

    async def backup() -> None:
        db = await Database.open(source)
        try:
            await db.backup(target)
        finally:
            await db.close()

    if target.resolve() == Path(source).resolve():
        print("saathi: the backup must go to another file than the database itself", file=sys.stderr)
        return 2
    if not Path(source).is_file():  # opening it would create an empty database and "back it up"
        print(f"saathi: there is no database at {source} (DATABASE_PATH); nothing was backed up. "
              "Run the backup from the bot's folder or set DATABASE_PATH.", file=sys.stderr)
        return 1
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # "backups/…" on a fresh clone
        asyncio.run(backup())
    except OSError as exc:
        print(f"saathi: could not write the backup to {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Backup written to {target}")
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    """What the running bot does daily, now: prune, integrity check, optimise, truncate the WAL."""
    from .app import build_app

    source = _settings().database_path
    if not Path(source).is_file():
        print(f"saathi: there is no database at {source} (DATABASE_PATH)", file=sys.stderr)
        return 1

    async def work() -> int:
        app = await build_app(_settings())
        try:
            report = await app.maintenance.run_once()
        finally:
            await app.close()
        for line in report.lines():
            print(line)
        return 0 if report.healthy else 1

    return asyncio.run(work())


async def _with_leads(work) -> int:
    from .app import build_app

    app = await build_app(_settings())
    try:
        return await work(app.leads)
    finally:
        await app.close()


def cmd_startups(args: argparse.Namespace) -> int:
    """The partner-startup registry: import, list, staff invites, referral links."""
    from .services.leads import iso_india, write_qr

    async def work(leads) -> int:
        if args.action == "import":
            added, updated = await leads.import_file(args.file)
            print(f"{args.file}: {added} startup(s) added, {updated} updated.")
        elif args.action == "list":
            for s in await leads.repo.startups():
                staff = await leads.repo.staff_count(s.id)
                print(f"{s.id}  {s.name}  {'active' if s.active else 'inactive'}  capacity {s.weekly_capacity}/week  "
                      f"staff chats {staff}  referral {s.referral_code or '-'}")
        elif args.action == "invite":
            startup, links, expires = await leads.invite_links(args.id)
            print(f"Staff invite for {startup.name} ({startup.id}): single use, valid until {iso_india(expires)}")
            print(links["telegram"])
            if "whatsapp" in links:
                print("On WhatsApp (the same invite: the link opens a chat with the prefilled text join_…, to be sent as it is):")
                print(links["whatsapp"])
        else:
            startup, link = await leads.referral(args.id)
            out = args.output or Path(f"referral-{startup.id}.png")
            write_qr(link, out)
            print(f"Referral link of {startup.name} ({startup.id}); QR code written to {out}")
            print(link)
        return 0

    return asyncio.run(_with_leads(work))


def cmd_leads(args: argparse.Namespace) -> int:
    """Leads for admins: CSV export and per-startup stats."""
    from .services.leads import format_stats

    async def work(leads) -> int:
        if args.action == "stats":
            print(format_stats(await leads.stats()))
        elif args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as handle:
                count = await leads.export_csv(handle)
            print(f"{count} lead(s) written to {args.output}")
        else:
            await leads.export_csv(sys.stdout)
        return 0

    return asyncio.run(_with_leads(work))


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a certificate's code: whose it is and what it covers (exit 1 if not valid)."""
    from .app import build_app
    from .services.certificates import normalise_code

    async def work() -> int:
        app = await build_app(_settings())
        try:
            print(await app.certificates.verify(args.code, "en"))
            found = await app.certificates.repo.find(normalise_code(args.code))
            return 0 if found is not None and found.revoked_at is None else 1
        finally:
            await app.close()

    return asyncio.run(work())


def cmd_migrate_to(args: argparse.Namespace) -> int:
    """Copy the SQLite database (DATABASE_PATH) into an empty PostgreSQL database, verified by counts."""
    from .config import database_password
    from .storage.db import Database
    from .storage.pg import PgDatabase, is_postgres_url
    from .storage.transfer import TransferError, copy_to_postgres

    url = args.url
    if not is_postgres_url(url):
        print("saathi: migrate-to needs a postgresql:// URL", file=sys.stderr)
        return 2
    source_path = _settings().database_path
    if not Path(source_path).is_file():
        print(f"saathi: there is no database at {source_path} (DATABASE_PATH); nothing to copy.", file=sys.stderr)
        return 1

    async def work() -> dict[str, int]:
        source = await Database.open(source_path)  # brought to the latest schema, as the bot would
        try:
            target = await PgDatabase.open(url)
            try:
                return await copy_to_postgres(source, target)
            finally:
                await target.close()
        finally:
            await source.close()

    try:
        counts = asyncio.run(work())
    except (TransferError, StorageError) as exc:
        message = str(exc).replace(url, "***")
        password = database_password(url)
        print(f"saathi: {message.replace(password, '***') if password else message}", file=sys.stderr)
        return 1
    width = max(len(t) for t in counts)
    for table, n in counts.items():
        print(f"  {table:<{width}}  {n:>9,}")
    print(f"Copied {sum(counts.values()):,} rows from {source_path}; every table's count matches on PostgreSQL. "
          "Set DATABASE_URL to it and start the bot.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saathi", description="Export Saathi: export training chatbot for MSMEs.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (Telegram and/or WhatsApp when their tokens are set, else the terminal chat)").set_defaults(func=cmd_run)
    chat = sub.add_parser("chat", help="chat with the bot in the terminal")
    chat.add_argument("--user", default="local", help="which local user to be (default: local)")
    chat.set_defaults(func=cmd_chat)
    sub.add_parser("check", help="validate content and translations").set_defaults(func=cmd_check)
    verify = sub.add_parser("verify", help="check a certificate's verification code")
    verify.add_argument("code")
    verify.set_defaults(func=cmd_verify)
    sub.add_parser("i18n", help="extract strings and update locales/*.po").set_defaults(func=cmd_i18n)
    backup = sub.add_parser("backup", help="online backup of the database to FILE")
    backup.add_argument("file", type=Path)
    backup.set_defaults(func=cmd_backup)
    move = sub.add_parser("migrate-to", help="copy the SQLite database (DATABASE_PATH) into an empty PostgreSQL database")
    move.add_argument("url", help="postgresql://user:password@host/database")
    move.set_defaults(func=cmd_migrate_to)
    sub.add_parser("maintain", help="prune old records, check integrity, optimise and truncate the WAL (the bot does it daily)"
                   ).set_defaults(func=cmd_maintain)
    startups = sub.add_parser("startups", help="partner startups: import, list, invite, referral").add_subparsers(dest="action", required=True)
    imp = startups.add_parser("import", help="add or update startups from a YAML or CSV file")
    imp.add_argument("file", type=Path)
    startups.add_parser("list", help="the registry")
    invite = startups.add_parser("invite", help="a single-use, 7-day t.me link (and wa.me link, with WhatsApp) that links a staff chat to the startup")
    invite.add_argument("id")
    referral = startups.add_parser("referral", help="the startup's referral link, and its QR code as a PNG")
    referral.add_argument("id")
    referral.add_argument("--output", type=Path, help="where to write the QR code (default: referral-<id>.png)")
    for name in ("import", "list", "invite", "referral"):
        startups.choices[name].set_defaults(func=cmd_startups)
    leads = sub.add_parser("leads", help="leads for admins: export, stats").add_subparsers(dest="action", required=True)
    export = leads.add_parser("export", help="every lead as CSV (times in India time)")
    export.add_argument("--format", choices=["csv"], default="csv")
    export.add_argument("--output", type=Path, help="write to FILE instead of the screen")
    leads.add_parser("stats", help="per startup: assigned, accepted, declined, listed, first order, median time to accept")
    for name in ("export", "stats"):
        leads.choices[name].set_defaults(func=cmd_leads)
    from .admin_cli import add_commands  # saathi broadcast …, saathi stats

    add_commands(sub)
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
