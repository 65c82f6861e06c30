"""The terminal chat: a piped script through onboarding to the module menu, in-process and as `saathi chat`."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.content import load_content

from bot.app import App, build_app
from bot.channels.console import ConsoleChannel
from bot.config import Settings
from tests.owners import ASHA_PROFILE

SAATHI = Path(sys.executable).parent / "saathi"

# Numbers press the buttons of the last question; everything else is typed.
SCRIPT = [
    "2",  # English
    "1",  # Yes, I agree
    "Asha Devi",
    "Asha Brass Works",
    "Uttar Pradesh",
    "Moradabad",
    "1",  # Handicrafts
    "1",  # Udyam: Yes
    "2",  # IEC: No
    "1",  # GST: Yes
    "1",  # Never exported
    "1",  # Under ₹40 lakh
    "1",  # tick Middle East
    "2",  # tick Europe
    "7",  # Done
    "",  # blank lines are skipped
    "98765 43210",
    "1",  # Confirm
]
EXPECTED_PROFILE = ASHA_PROFILE
BYE = "Bye! Your answers are saved; run the chat again to continue.\n"


def chat_target(app: App):
    """What the console channel talks to (the dispatcher where the app has one)."""
    return getattr(app, "dispatcher", None) or app.conversations


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    app = await build_app(Settings(database_path=tmp_path / "console.sqlite3"))
    yield app
    await app.close()


async def run_console(app: App, lines: list[str], user: str = "local") -> str:
    out = io.StringIO()
    channel = ConsoleChannel(chat_target(app), io.StringIO("\n".join(lines) + "\n"), out, user_ref=user)
    await channel.run()
    return out.getvalue()


def assert_in_order(transcript: str, *pieces: str) -> None:
    position = 0
    for piece in pieces:
        found = transcript.find(piece, position)
        assert found >= 0, f"{piece!r} not found after position {position} in:\n{transcript}"
        position = found + len(piece)


def check_onboarding_transcript(transcript: str) -> None:
    assert_in_order(
        transcript,
        "Export Saathi: terminal chat.",
        "Choose your language",
        "[1] हिन्दी",
        "[2] English",
        "✓ English",
        "Do you agree?",
        "[1] Yes, I agree",
        "✓ Yes, I agree",
        "What is your name?",
        "What is the name of your business?",
        "Which state or union territory",
        "Which district or town?",
        "What do you mainly make or sell?",
        "✓ Handicrafts",
        "Udyam registration",
        "IEC",
        "registered for GST?",
        "Have you exported before?",
        "✓ Never",
        "yearly turnover",
        "✓ Under ₹40 lakh",
        "Which markets interest you?",
        "[1] ✅ Middle East",
        "[2] ✅ Europe",
        "✓ Middle East, Europe",
        "mobile number",
        "(type your 10-digit mobile number)",
        "Please check your details",
        "• Your name: Asha Devi",
        "• Business: Asha Brass Works",
        "• State: Uttar Pradesh",
        "• District or town: Moradabad",
        "• Markets: Middle East, Europe",
        "✓ Confirm",
        "Thank you, Asha Devi! Your profile is saved.",
        "Training modules",
        "Get export-ready",
        "Tap a module to open it.",
    )
    assert "98765" in transcript.split("Please check your details", 1)[1]
    assert transcript.endswith(BYE)
    # Chat HTML is rendered as plain text in the terminal.
    assert "<b>" not in transcript and "&amp;" not in transcript


async def test_piped_script_through_onboarding_to_the_menu(app: App):
    transcript = await run_console(app, SCRIPT)
    check_onboarding_transcript(transcript)
    row = await app.db.fetchone("SELECT profile, onboarded_at FROM users WHERE channel = 'console' AND user_ref = 'local'")
    assert json.loads(row["profile"]) == EXPECTED_PROFILE
    assert row["onboarded_at"] is not None


async def test_console_continues_where_the_last_chat_stopped(app: App):
    await run_console(app, SCRIPT[:4])
    transcript = await run_console(app, ["Uttar Pradesh", "/quit", "Moradabad"])
    assert_in_order(transcript, "Welcome back", "Which state", "Which district or town?", BYE.strip())
    row = await app.db.fetchone("SELECT profile FROM users WHERE user_ref = 'local'")
    profile = json.loads(row["profile"])
    assert profile == {"owner_name": "Asha Devi", "business_name": "Asha Brass Works", "state": "uttar_pradesh"}


async def test_a_number_with_no_buttons_on_screen_is_typed_text(app: App):
    transcript = await run_console(app, ["2", "1", "42"])
    row = await app.db.fetchone("SELECT profile FROM users WHERE user_ref = 'local'")
    assert json.loads(row["profile"]) == {"owner_name": "42"}
    assert "What is the name of your business?" in transcript


async def test_menu_buttons_open_a_module(app: App):
    transcript = await run_console(app, SCRIPT + ["1"])
    after_menu = transcript.split("Tap a module to open it.", 1)[1]
    assert "Get export-ready · 1/" in after_menu
    assert "[1] Next" in after_menu


def test_saathi_chat_command(tmp_path: Path):
    assert SAATHI.exists(), SAATHI
    database = tmp_path / "data" / "chat.sqlite3"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_PATH": str(database),
        "PYTHONIOENCODING": "utf-8",
        "LANG": "C.UTF-8",
    }
    result = subprocess.run(
        [str(SAATHI), "chat"],
        input="\n".join(SCRIPT) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=tmp_path,  # no .env file here
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    check_onboarding_transcript(result.stdout)
    assert "Traceback" not in result.stderr
    assert database.is_file()
    conn = sqlite3.connect(database)
    try:
        (profile,) = conn.execute("SELECT profile FROM users WHERE channel = 'console' AND user_ref = 'local'").fetchone()
    finally:
        conn.close()
    assert json.loads(profile) == EXPECTED_PROFILE


ADMIN_SCRIPT = [
    "/broadcast",
    str(len(load_content().modules) + 1),  # ✍️ Announcement, after one button per module
    "Webinar on Friday at 4 pm",
    "शुक्रवार शाम 4 बजे वेबिनार",
    "6",  # Next ▶️ (everyone)
    "1",  # Now
    "1",  # ✅ Confirm
]


def test_the_terminal_demo_admin_broadcasts_to_the_terminal_owner(tmp_path: Path):
    """Every role in the terminal: an owner onboards, then `saathi chat --user admin` broadcasts to them."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONIOENCODING": "utf-8",
           "LANG": "C.UTF-8", "DATABASE_PATH": str(tmp_path / "demo.sqlite3")}

    def saathi(*args: str, lines: list[str]) -> str:
        done = subprocess.run([str(SAATHI), "chat", *args], input="\n".join(lines) + "\n", capture_output=True, text=True,
                              encoding="utf-8", env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done.stdout

    saathi(lines=SCRIPT)  # the owner, user "local"
    out = saathi("--user", "admin", lines=ADMIN_SCRIPT)
    assert "Recipients now: 1 (हिन्दी 0 · English 1)" in out  # the terminal owner is a recipient
    assert "Broadcast #1 is queued" in out
    assert "like this: 2026-12-01 10" not in out  # the example date is tomorrow's, never a past one
    assert "📨 ── message for chat local ──\nWebinar on Friday at 4 pm" in out  # delivered to the owner's chat
    owner = saathi("--user", "someone-else", lines=["/broadcast"])  # not the admin: just an unknown command
    assert "New broadcast" not in owner


async def test_the_terminal_chat_on_a_live_bots_database_leaves_telegram_messages_for_that_bot(tmp_path: Path):
    """`make run` without the token on the production database must not 'deliver' owners' messages to the screen."""
    from bot.core.messages import Say
    from bot.runtime import chat
    from bot.storage.outbox import Outgoing

    settings = Settings(database_path=tmp_path / "live.sqlite3")
    app = await build_app(settings)
    try:
        await app.db.execute("INSERT INTO users (channel, user_ref, first_seen_at, last_seen_at) VALUES ('telegram', '555', 1, 1)")
        await app.outbox.enqueue([Outgoing("telegram", "555", "notice", Say("Your lead was accepted"))], 1)
    finally:
        await app.close()
    out = io.StringIO()
    await chat(settings, stdin=io.StringIO("/quit\n"), stdout=out)
    assert "Your lead was accepted" not in out.getvalue()
    conn = sqlite3.connect(tmp_path / "live.sqlite3")
    try:
        assert conn.execute("SELECT status FROM outbox WHERE chat_ref = '555'").fetchall() == [("pending",)]
    finally:
        conn.close()
