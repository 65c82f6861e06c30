"""Erased means gone from the disk: after /delete_my_data neither the database file, nor its
write-ahead log, nor a backup taken right after holds the owner's name or phone number.

The bot runs as it does in production (a real SQLite file in WAL mode, the conversation through
the dispatcher); the files are then read byte by byte, as someone who copies them would.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path

from bot import cli
from bot.app import build_app
from bot.config import Settings
from bot.core.messages import Inbound, Say, UserKey
from bot.services.clock import ManualClock
from bot.services.dispatch import Who

HINDI_NAME = "मीना कुमारी"
HINDI_BUSINESS = "कुमारी हथकरघा"


def onboarding(name: str, business: str, phone: str) -> list[str]:
    return ["/start", "English", "Yes", name, business, "Haryana", "Panipat", "2", "yes", "no", "yes", "1", "2", "2",
            phone, "Confirm"]


async def _say(app, who: Who, text: str) -> str:
    reply = await app.dispatcher.handle(who, Inbound.say(text))
    return "\n".join(o.text for o in reply.outputs if isinstance(o, Say))


def on_disk(path: Path) -> bytes:
    """The raw bytes of the database file and of its -wal and -journal files, as they are now."""
    data = b""
    for suffix in ("", "-wal", "-journal"):
        part = Path(str(path) + suffix)
        if part.exists():
            data += part.read_bytes()
    return data


def traces(data: bytes, *needles: str) -> dict[str, int]:
    """How often each needle (UTF-8), or its digits grouped as people type them, occurs in ``data``."""
    found = {}
    for needle in needles:
        if needle.isdigit():  # a phone number: "9812345678", "98123 45678", "+919812345678"
            count = len(re.findall(rf"{needle[:5]}[ -]?{needle[5:]}".encode(), data))
        else:
            count = data.count(needle.encode("utf-8"))
        if count:
            found[needle] = count
    return found


async def test_an_erased_owner_leaves_no_bytes_in_the_database_its_wal_or_a_fresh_backup(tmp_path, monkeypatch):
    db_path = tmp_path / "data" / "saathi.sqlite3"
    app = await build_app(Settings(database_path=db_path), clock=ManualClock())
    try:
        meena = Who(UserKey("telegram", "601"), platform_user_id=601, lang_hint="en")
        hindi = Who(UserKey("telegram", "602"), platform_user_id=602, lang_hint="en")
        bystander = Who(UserKey("telegram", "603"), platform_user_id=603, lang_hint="en")
        for who, answers in ((meena, onboarding("Meena Devi", "Meena Handlooms", "9812345678")),
                             (hindi, onboarding(HINDI_NAME, HINDI_BUSINESS, "9876501234")),
                             (bystander, onboarding("Rakesh Verma", "Verma Brass", "9911223344"))):
            for text in answers:
                await _say(app, who, text)
        erased = ("Meena Devi", "Meena Handlooms", HINDI_NAME, HINDI_BUSINESS, "9812345678", "9876501234")
        assert traces(on_disk(db_path), *erased)  # the search sees them while they are stored

        for who in (meena, hindi):
            await _say(app, who, "/delete_my_data")
            assert "deleted" in await _say(app, who, "yes")

        # The bot is still running: its database and WAL as any copy of the folder would take them.
        live = on_disk(db_path)
        assert traces(live, *erased) == {}
        assert traces(live, "Rakesh Verma", "9911223344")  # not erased: still there (the search works)

        monkeypatch.chdir(tmp_path)  # no .env of the project is read
        monkeypatch.setenv("DATABASE_PATH", str(db_path))
        backup = tmp_path / "backups" / "after.sqlite3"
        assert await asyncio.to_thread(cli.main, ["backup", str(backup)]) == 0  # `saathi backup` beside the bot
        copy = on_disk(backup)
        assert traces(copy, *erased) == {}
        assert traces(copy, "Rakesh Verma")
        rows = await app.db.fetchall("PRAGMA secure_delete")
        assert rows[0][0] == 1
    finally:
        await app.close()
    assert traces(on_disk(db_path), *erased) == {}  # and after a clean stop


def test_the_database_its_wal_and_backups_are_readable_by_the_owner_only(tmp_path, monkeypatch):
    db_path = tmp_path / "data" / "saathi.sqlite3"

    async def use() -> None:
        app = await build_app(Settings(database_path=db_path), clock=ManualClock())
        try:
            await _say(app, Who(UserKey("telegram", "700"), lang_hint="en"), "/start")
            for suffix in ("", "-wal", "-shm"):
                mode = stat.S_IMODE(os.stat(str(db_path) + suffix).st_mode)
                assert mode == 0o600, (suffix, oct(mode))
        finally:
            await app.close()

    asyncio.run(use())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(db_path))
    backup = tmp_path / "backups" / "b.sqlite3"
    assert cli.main(["backup", str(backup)]) == 0
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600


def test_backup_refuses_when_the_database_does_not_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "saathi.sqlite3"))
    assert cli.main(["backup", str(tmp_path / "b.sqlite3")]) == 1
    err = capsys.readouterr().err
    assert "no database" in err and "saathi.sqlite3" in err
    assert not (tmp_path / "data" / "saathi.sqlite3").exists() and not (tmp_path / "b.sqlite3").exists()
