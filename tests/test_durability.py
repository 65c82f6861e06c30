"""Nothing lost between the platform and the database, and nobody left in silence.

The real PTB bot against the Bot API stand-in, on a real SQLite file: updates are stored before
Telegram is told they arrived, replies are stored with their turn and sent again after a
failure or a crash, and a failed reply never lets the owner's next answer land on the wrong
question.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import pytest

from bot.app import build_app
from bot.config import Settings
from bot.core.messages import InboxItem, Say
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot
from tests.test_failures import _to_name_question

pytestmark = pytest.mark.timeout(60)


async def _profile(db_path, uid: int) -> dict:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT profile FROM users WHERE user_ref = ?", (str(uid),)).fetchone()
    return json.loads(row[0])


async def test_a_reply_lost_to_a_5xx_is_sent_again_and_the_next_answer_lands_on_its_question(tmp_path):
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api, running_bot(api, db_path):
        api.add_user(61, language_code="en")
        await _to_name_question(api, 61)
        api.fail_next("sendMessage", 1, status=502)  # the business-name question is lost once
        api.send_text(61, "Sunita")
        [question] = await api.wait_for_messages(61, 1, timeout=15)  # it comes again after a short backoff
        assert "business" in question.text.lower(), question.text
        api.send_text(61, "Sunita Brass Crafts")
        await api.wait_for_messages(61, 1)
        profile = await _profile(db_path, 61)
        assert profile["owner_name"] == "Sunita"
        assert profile["business_name"] == "Sunita Brass Crafts"
        assert api.refusals == []


async def test_a_newer_turn_never_overtakes_a_reply_waiting_for_its_retry(tmp_path):
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api, running_bot(api, db_path):
        api.add_user(62, language_code="en")
        await _to_name_question(api, 62)
        api.fail_next("sendMessage", 1, status=500)
        api.send_text(62, "Kavita")  # the business question fails, waits for its retry
        await asyncio.sleep(0.3)
        api.send_text(62, "/help")  # the owner writes again before the retry is due
        messages = await api.wait_for_messages(62, 3, timeout=15)
        texts = [m.text for m in messages]
        assert "business" in texts[0].lower(), texts  # first what was owed, then the help, then the question again
        assert "/learn" in texts[1], texts


async def test_replies_committed_before_a_crash_are_sent_after_the_restart(tmp_path):
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api:
        api.add_user(63, language_code="en")
        # A turn committed its replies and the process died before sending them: they are 'sending'.
        app = await build_app(Settings(telegram_token=api.token, database_path=db_path))
        await app.outbox.enqueue_replies(user_id=None, channel="telegram", chat_ref="63",
                                         outputs=[Say("What is the name of your business?")], reply_to=None,
                                         now=int(time.time()))
        await app.close()
        async with running_bot(api, db_path) as bot:
            [owed] = await api.wait_for_messages(63, 1)
            assert owed.text == "What is the name of your business?"
            await bot.app.replies.settle()
            left = await bot.app.db.fetchone("SELECT COUNT(*) FROM outbox WHERE kind = 'reply'")
            assert left[0] == 0  # sent replies are not kept


async def test_an_update_stored_but_not_handled_before_a_crash_is_handled_after_the_restart(tmp_path):
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api:
        api.add_user(64, language_code="en")
        user = api.user(64)
        raw = {"update_id": 7001, "message": {"message_id": 5, "date": int(time.time()), "chat": user.as_chat(),
                                               "from": user.as_user(), "text": "/start",
                                               "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
        app = await build_app(Settings(telegram_token=api.token, database_path=db_path))
        await app.inbox.put("telegram", [InboxItem("7001", json.dumps(raw))], int(time.time()))
        await app.close()  # Telegram was told (the next getUpdates), the bot died before handling it
        async with running_bot(api, db_path) as bot:
            [welcome] = await api.wait_for_messages(64, 1)
            assert "Choose your language" in welcome.text
            await api.wait_idle(quiet=0.2)
            await bot.app.inbox.flush()
            assert await bot.app.inbox.count() == 0
        async with running_bot(api, db_path):  # and a second restart does not handle it again
            await api.wait_idle(quiet=0.5)
            assert len(api.messages(64)) == 1


async def test_no_update_is_confirmed_to_telegram_while_the_database_cannot_store_it(tmp_path):
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api, running_bot(api, db_path):
        api.add_user(65, language_code="en")
        api.send_text(65, "/start")
        await api.wait_for_messages(65, 1)
        held, release = threading.Event(), threading.Event()

        def lock_database() -> None:  # another process holds the write lock for a while
            conn = sqlite3.connect(db_path, timeout=5)
            conn.execute("BEGIN EXCLUSIVE")
            held.set()
            release.wait(10)
            conn.rollback()
            conn.close()

        locker = threading.Thread(target=lock_database)
        locker.start()
        held.wait(5)
        polls_before = sum(1 for name, _ in api.calls if name == "getUpdates")
        update_id = api.send_text(65, "/help")
        await asyncio.sleep(1.5)
        polls = [p for name, p in api.calls if name == "getUpdates"][polls_before:]
        release.set()
        await asyncio.to_thread(locker.join)
        [help_text] = await api.wait_for_messages(65, 1, timeout=15)
        assert "/learn" in help_text.text
        # While the update could not be stored, no getUpdates told Telegram to forget it.
        assert all(int(p.get("offset") or 0) <= update_id for p in polls), polls
        await api.wait_idle(quiet=0.3)
        assert len([m for m in api.messages(65) if "/learn" in m.text]) == 1
