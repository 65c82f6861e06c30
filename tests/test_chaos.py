"""Crash tests (issue 7): the bot SIGKILLed at random moments loses nothing and repeats nothing.

The short drill runs the real bot as a separate process against the Bot API stand-in, kills it
at least five times while twenty owners onboard, learn and qualify, and then checks what people
saw against what was stored and delivered (tests/chaos_support.py; bench/chaos.py is the long
drill). The other tests pin down, one each and deterministically, the windows the drill showed up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from telegram import Bot

from bot.app import build_app
from bot.channels.telegram import TelegramSender
from bot.config import Settings
from bot.core.messages import Say
from bot.core.segments import Segment
from bot.services.broadcast import Plan
from bot.core.errors import StorageError
from bot.storage.outbox import Outgoing
from tests.botapi_standin import BotApiStandin
from tests.chaos_support import Drill, report, run_drill
from tests.test_broadcast_e2e import ADMIN, EARLIER, build_module_broadcast, world
from tests.test_segments import Owner, seed

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.mark.timeout(180)
async def test_twenty_owners_and_five_sigkills_lose_and_repeat_nothing(tmp_path: Path):
    drill = Drill(owners=20, kills=5, uptime=(0.8, 4.0), patience=2.5, think=0.1, spread=2.0, broadcasts=2, rate=10.0, seed=7,
                  deadline=120.0)
    record = await run_drill(drill, tmp_path, log=lambda line: None)
    numbers = "\n".join(report(record))
    assert record.problems == [], numbers + "\n" + "\n".join(record.problems[:20])
    assert record.bot_errors == [], "\n".join(record.bot_errors[:20])
    # The drill did what it says: it shook the bot, and there was something to lose each time.
    assert record.kills >= 5 and record.owners_done == drill.owners, numbers
    assert record.acknowledged > 500 and record.answers_stored == record.acknowledged, numbers
    c = record.counts
    assert c["leads"] == c["leads expected"] > 0 and c["lead_card queued"] >= c["leads"], numbers
    assert c["broadcasts"] == 2 and record.admin_confirmed == 1, numbers
    assert c["reminder queued"] == record.reminders_expected > 0, numbers
    for kind in ("lead_card", "broadcast", "reminder"):  # each arrived, except what a kill left in doubt and did not
        lost = c[f"{kind} in doubt"] - c[f"{kind} in doubt, arrived"]
        assert c[f"{kind} queued"] > 0 and c[f"{kind} delivered"] + lost == c[f"{kind} queued"], numbers


async def test_confirm_tapped_again_after_a_failed_write_sends_the_broadcast_once(tmp_path: Path):
    """The broadcast is created, then the wizard's own write fails (as if the bot died right there):
    the admin is asked to try again and taps Confirm again. Everyone must still get it once."""
    async with world(tmp_path) as w:
        api, app = w.api, w.app
        preview = await build_module_broadcast(w, "📘 Get export-ready", None)
        repo = app.broadcasts.repo
        save_draft, failed = repo.save_draft, []

        async def disk_full_once(draft, now):
            if draft.step == "done" and not failed:
                failed.append(draft.seq)
                raise StorageError("database or disk is full")
            await save_draft(draft, now)

        repo.save_draft = disk_full_once
        api.tap_button(ADMIN, preview, "✅ Confirm")
        sorry = await api.wait_for_message(ADMIN, lambda m: m.text.startswith("Sorry, I could not save that"))
        assert failed and sorry.text == "Sorry, I could not save that just now. Please send it again in a minute."
        api.tap_button(ADMIN, preview, "✅ Confirm")
        await api.wait_idle()
        assert api.callback_answers[-1].text == EARLIER
        assert [tuple(r) for r in await app.db.fetchall("SELECT id, recipients FROM broadcasts")] == [(1, 5)]
        await w.wait_delivered([11, 12, 13, 14, 15])
        await api.wait_until(ADMIN, lambda m: (m.text or "").startswith("📣 Broadcast #1") and "finished" in m.text)
        assert [len(w.received(uid)) for uid in (11, 12, 13, 14, 15)] == [1] * 5
        assert api.refusals == []


async def test_a_crash_right_after_the_status_message_was_posted_does_not_post_a_second(tmp_path: Path):
    """The status message reached the admin, then the bot died before storing its id. After the
    restart it is in doubt: the admin must not get a second status message (one of them stale)."""
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api, Bot(api.token, base_url=api.base_url) as bot:
        api.add_user(ADMIN, first_name="Neha", language_code="en")
        board = TelegramSender(bot)
        app = await build_app(Settings(database_path=db_path))
        try:
            await seed(app.db, [Owner(11, "hi"), Owner(12, "en")])
            await app.broadcasts.start(Plan("module", Segment(), module_id="payments"), created_by="test", admin=("telegram", str(ADMIN)))
            store_ref = app.broadcasts.repo.set_status_ref

            async def die_after_posting(broadcast_id, ref):
                if ref:  # the message id came back: the process dies before it is stored
                    raise asyncio.CancelledError
                await store_ref(broadcast_id, ref)

            app.broadcasts.repo.set_status_ref = die_after_posting
            with pytest.raises(asyncio.CancelledError):
                await app.broadcasts.update_status(board)
        finally:
            await app.close()
        assert [m.text.split("\n")[0] for m in api.messages(ADMIN)] == ["📣 Broadcast #1: sending…"]
        app = await build_app(Settings(database_path=db_path))  # the restart
        try:
            await app.broadcasts.update_status(board)
            await app.broadcasts.update_status(board)
        finally:
            await app.close()
        assert len(api.messages(ADMIN)) == 1
        assert api.refusals == []


async def test_a_delivered_row_is_marked_sent_while_the_worker_waits_for_the_chats_next_slot(tmp_path: Path):
    """Two lead cards for one staff chat go out a chat interval apart. While the worker waits for
    the second one's slot, the first, already delivered, must be marked sent: a crash in that wait
    would otherwise leave it in doubt ('unknown', never resent) though it arrived long before."""
    async with BotApiStandin() as api, Bot(api.token, base_url=api.base_url) as bot:
        api.add_user(601, language_code="en")
        app = await build_app(Settings(database_path=tmp_path / "bot.sqlite3"))
        try:
            cards = [Outgoing("telegram", "601", "lead_card", Say(f"🆕 Lead #{i}"), dedup_key=f"lead:{i}:card") for i in (1, 2)]
            await app.outbox.enqueue(cards, 0)
            worker = app.delivery({"telegram": TelegramSender(bot)}, per_chat_interval=30.0)
            task = asyncio.create_task(worker.run(asyncio.Event()))
            [first] = await api.wait_for_messages(601, 1)
            assert first.text == "🆕 Lead #1"

            async def statuses() -> list[str]:
                return [r[0] for r in await app.db.fetchall("SELECT status FROM outbox ORDER BY id")]

            for _ in range(100):
                if (await statuses())[0] == "sent":
                    break
                await asyncio.sleep(0.05)
            assert await statuses() == ["sent", "claimed"]
            task.cancel()  # the bot stops in the middle of the wait
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await app.outbox.recover(0) == 0  # after a restart: nothing in doubt
            assert await statuses() == ["sent", "pending"]
            assert len(api.messages(601)) == 1
        finally:
            await app.close()
