"""Database trouble: a locked database loses no answer, a full one gives a polite "try again", never a half-written answer;
migrations upgrade a database from every earlier version with its data intact; backups restore."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.storage.db import Database, schema_version
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot

TRY_AGAIN = "Sorry, I could not save that just now. Please send it again in a minute."


async def _to_name_question(api, uid, *, hindi=False):
    api.send_text(uid, "/start")
    [lang] = await api.wait_for_messages(uid, 1)
    api.tap_button(uid, lang, 0 if hindi else 1)  # हिन्दी | English
    [consent] = await api.wait_for_messages(uid, 1)
    api.tap_button(uid, consent, 0)
    [name_q] = await api.wait_for_messages(uid, 1)
    assert "name" in name_q.text or "नाम" in name_q.text


async def _profile(bot, uid) -> str:
    row = await bot.app.db.fetchone("SELECT profile, state FROM users WHERE user_ref = ?", (str(uid),))
    return row["profile"] + row["state"]


async def test_a_locked_database_loses_no_answer_and_keeps_nothing_half_written(tmp_path):
    """The update cannot be stored while another process holds the lock: Telegram is not told it
    arrived, nothing is half-written, and once the lock is gone the answer is taken as sent."""
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api, running_bot(api, db_path) as bot:
        api.add_user(31, language_code="en")
        await _to_name_question(api, 31)
        before = await _profile(bot, 31)
        await bot.app.db.conn.execute("PRAGMA busy_timeout = 50")
        blocker = sqlite3.connect(db_path)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            api.send_text(31, "Kavita")
            await asyncio.sleep(1.0)
            assert api.new_messages(31) == []
        finally:
            blocker.rollback()
            blocker.close()
        assert await _profile(bot, 31) == before  # nothing of the answer was written while locked
        [next_q] = await api.wait_for_messages(31, 1, timeout=20)  # no need to send it again
        assert "business" in next_q.text
        assert "Kavita" in await _profile(bot, 31)
        assert api.refusals == []


async def test_full_disk_asks_to_try_again_in_hindi(tmp_path):
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api, running_bot(api, db_path) as bot:
        api.add_user(32, language_code="hi")
        await _to_name_question(api, 32, hindi=True)
        # Rollback journal instead of WAL, so the size cap below applies to every write at once.
        await api.wait_idle(quiet=0.1)
        await bot.app.replies.settle()  # no reply is being marked sent while the journal mode changes
        await (await bot.app.db.conn.execute("PRAGMA journal_mode = DELETE")).close()
        async with bot.app.db.transaction():  # waits for any write of the bot in progress, then lets go
            pass
        await bot.app.db.conn.execute("VACUUM")  # no free pages left over from sent replies and handled updates
        pages = (await bot.app.db.fetchone("PRAGMA page_count"))[0]
        # The database may not grow any more: the first write that needs a new page fails (SQLITE_FULL).
        await bot.app.db.conn.execute(f"PRAGMA max_page_count = {pages}")
        sorry_hi = bot.app.texts.gettext("hi", TRY_AGAIN)
        assert sorry_hi != TRY_AGAIN
        replies = []
        for attempt in range(200):  # every update adds a row (its id is remembered), so pages run out
            api.send_text(32, "/help")
            replies += [m.text for m in await api.wait_for_messages(32, 1)]
            await api.wait_idle(quiet=0.05)
            replies += [m.text for m in api.new_messages(32)]
            if sorry_hi in replies:
                break
        assert sorry_hi in replies, replies[-3:]
        await bot.app.db.conn.execute("PRAGMA max_page_count = 1000000")
        api.send_text(32, "Kavita")
        [ok] = await api.wait_for_messages(32, 1)
        assert ok.text != sorry_hi
        assert "Kavita" in await _profile(bot, 32)


async def test_every_earlier_schema_version_upgrades_with_its_data(tmp_path):
    latest = schema_version()
    assert latest >= 3
    for version in range(1, latest):
        path = tmp_path / f"v{version}.sqlite3"
        db = await Database.open(path, migrate=False)
        assert await db.migrate(target=version) == version
        await db.execute(
            "INSERT INTO users (channel, user_ref, lang, profile, consent, first_seen_at, last_seen_at) "
            "VALUES ('telegram', '7', 'hi', '{\"owner_name\": \"Ravi\"}', 'given', 1, 2)"
        )
        await db.execute("INSERT INTO events (user_id, kind, at) VALUES (1, 'consent_given', 3)")
        await db.close()
        db = await Database.open(path)  # upgrades on open
        try:
            assert await db.version() == latest
            row = await db.fetchone("SELECT lang, profile, consent FROM users WHERE user_ref = '7'")
            assert tuple(row) == ("hi", '{"owner_name": "Ravi"}', "given")
            assert (await db.fetchone("SELECT COUNT(*) FROM events"))[0] == 1
        finally:
            await db.close()


async def test_online_backup_restores_every_row(tmp_path):
    db = await Database.open(tmp_path / "live.sqlite3")
    try:
        for i in range(200):
            await db.execute(
                "INSERT INTO users (channel, user_ref, first_seen_at, last_seen_at) VALUES ('telegram', ?, 1, 1)", (str(i),)
            )
        await db.backup(tmp_path / "copy.sqlite3")
    finally:
        await db.close()
    restored = await Database.open(tmp_path / "copy.sqlite3")
    try:
        assert (await restored.fetchone("SELECT COUNT(*) FROM users"))[0] == 200
        assert await restored.version() == schema_version()
    finally:
        await restored.close()


def test_saathi_backup_as_the_readme_writes_it_creates_the_folder(tmp_path):
    """`saathi backup backups/saathi-<date>.sqlite3` on a fresh clone, where backups/ does not exist yet."""
    import os
    import subprocess
    import sys

    conn = sqlite3.connect(tmp_path / "bot.sqlite3")
    conn.execute("CREATE TABLE kept (n INTEGER)")
    conn.execute("INSERT INTO kept VALUES (42)")
    conn.commit()
    conn.close()
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "bot.sqlite3"), "TELEGRAM_BOT_TOKEN": ""}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "backup", "backups/saathi-2026-12-03.sqlite3"], env=env,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "Backup written to backups/saathi-2026-12-03.sqlite3" in done.stdout
    copy = sqlite3.connect(tmp_path / "backups" / "saathi-2026-12-03.sqlite3")
    assert copy.execute("SELECT n FROM kept").fetchall() == [(42,)]
    copy.close()
    same = subprocess.run([sys.executable, "-m", "bot.cli", "backup", "bot.sqlite3"], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert same.returncode == 2 and "another file than the database" in same.stderr
