"""Broadcasts end to end: the real PTB Application against the Bot API stand-in, on a SQLite file.

Admins build a broadcast with /broadcast (what, who, when, preview, Confirm); owners receive it
in their own language; the delivery worker copes with 429, 5xx and 403; /broadcast_cancel stops
the rest; a restart continues without duplicates or gaps; opted-out owners are skipped; the
status message in the admin's chat is edited with the counts. Non-admins see none of it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App
from bot.core.segments import Segment
from bot.services.broadcast import Plan
from bot.services.clock import ManualClock
from tests.botapi_standin import BLOCKED, BotApiStandin, BotMessage
from tests.e2e_support import RunningBot, running_bot
from tests.test_segments import NOW, Owner, seed

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

ADMIN = 1
UNKNOWN = "Sorry, I don't know that command. Send /help to see what I can do."
EARLIER = "That button is from an earlier message. Please use the latest one."
OWNERS = [
    Owner(11, "hi", "uttar_pradesh", "handicrafts"),
    Owner(12, "en", "uttar_pradesh", "textiles_apparel"),
    Owner(13, "hi", "uttar_pradesh", "handicrafts", modules={"payments": "passed"}),
    Owner(14, "en", "gujarat", "handicrafts"),
    Owner(15, "hi", "bihar", "spices", onboarded=False),
]


@dataclass
class World:
    """The stand-in, the running bot and its clock."""

    api: BotApiStandin
    bot: RunningBot
    clock: ManualClock

    @property
    def app(self) -> App:
        return self.bot.app

    def tr(self, lang: str, msgid: str, **values: object) -> str:
        text = self.app.texts.gettext(lang, msgid)
        return text.format(**values) if values else text

    def wake(self) -> None:
        self.bot.runtime.delivery.wake()

    async def next(self, uid: int, count: int = 1) -> list[BotMessage]:
        return await self.api.wait_for_messages(uid, count, timeout=10)

    def received(self, uid: int) -> list[BotMessage]:
        return self.api.messages(uid)

    async def wait_delivered(self, uids: list[int], timeout: float = 20) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(self.received(uid) for uid in uids):
            assert loop.time() < deadline, {uid: len(self.received(uid)) for uid in uids}
            await asyncio.sleep(0.02)


@asynccontextmanager
async def world(tmp_path: Path, owners: list[Owner] = OWNERS, *, api: BotApiStandin | None = None, store: dict | None = None,
                **settings) -> AsyncIterator[World]:
    """A stand-in with the admin and ``owners`` (seeded in the database) and the bot running (on ``store``'s engine)."""
    clock = ManualClock(NOW)
    settings.setdefault("admin_ids", frozenset({ADMIN}))
    settings.setdefault("broadcast_rate", 200.0)
    async with (api or BotApiStandin()) as stand_in:
        stand_in.add_user(ADMIN, first_name="Neha", language_code="en")
        for owner in owners:
            stand_in.add_user(owner.uid, language_code=owner.lang)
        store = store or {"database_path": tmp_path / "bot.sqlite3"}
        async with running_bot(stand_in, store["database_path"], clock=clock, database_url=store.get("database_url", ""),
                               **settings) as running:
            running.app.broadcasts.status_interval = 0.2
            await seed(running.app.db, owners)
            yield World(stand_in, running, clock)


def button_labels(message: BotMessage) -> list[str]:
    return [label for label, _ in message.buttons]


async def build_module_broadcast(w: World, module_label: str, state_label: str | None) -> BotMessage:
    """Admin: /broadcast → module → (state) → Next → Now; returns the preview's last message."""
    api = w.api
    api.send_text(ADMIN, "/broadcast")
    [what] = await w.next(ADMIN)
    assert what.text.startswith("New broadcast")
    api.tap_button(ADMIN, what, module_label)
    [who] = await w.next(ADMIN)
    assert "Recipients now: 5 (हिन्दी 3 · English 2)" in who.text, who.text
    assert "Everyone who agreed to hear from us" in who.text
    if state_label:
        api.tap_button(ADMIN, who, "State")
        [states] = await w.next(ADMIN)
        api.tap_button(ADMIN, states, state_label)
        await api.wait_until(ADMIN, lambda m: m.message_id == states.message_id and f"✅ {state_label}" in button_labels(m))
        api.tap_button(ADMIN, api.message(ADMIN, states.message_id), "Done")
        [who] = await w.next(ADMIN)
        assert f"• State: {state_label}" in who.text
    api.tap_button(ADMIN, who, "Next ▶️")
    [when] = await w.next(ADMIN)
    assert when.text.startswith("When should it go out?")
    api.tap_button(ADMIN, when, "Now")
    summary, english, hindi = await w.next(ADMIN, 3)
    assert summary.text.startswith("Preview")
    assert english.text.startswith("— English —") and hindi.text.startswith("— हिन्दी —")
    assert button_labels(hindi) == ["✅ Confirm", "Change who", "Change time", "✖️ Cancel"]
    return hindi


async def test_only_admins_get_admin_commands(tmp_path: Path, store: dict):
    async with world(tmp_path, store=store) as w:
        api = w.api
        # An owner in the middle of the bot: admin commands are just unknown commands.
        replies = {}
        for command in ("/nonsense", "/broadcast", "/stats", "/stats chart", "/broadcast_cancel"):
            api.send_text(11, command)
            [reply, *rest] = await w.next(11, 2)
            replies[command] = [reply.text, *(m.text for m in rest)]
        assert replies["/nonsense"][0] == w.tr("hi", UNKNOWN)
        assert all(texts == replies["/nonsense"] for texts in replies.values()), replies
        # A forged wizard button from a non-admin is treated as an old button, nothing more.
        menu = api.last_message(11)
        api.tap(11, menu.message_id, "bc:1:ok")
        await api.wait_idle()
        assert api.callback_answers[-1].text == w.tr("hi", EARLIER)
        assert await w.app.db.fetchall("SELECT * FROM broadcasts") == []
        assert await w.app.db.fetchall("SELECT * FROM broadcast_drafts") == []
        assert api.refusals == []
        # The public menu never lists admin commands; the admin's own chat does.
        assert "broadcast" not in [name for name, _ in api.menu("")]
        assert {"broadcast", "broadcast_cancel", "stats"} <= {name for name, _ in api.menu("", scope=f"chat:{ADMIN}")}


async def test_help_lists_the_announcement_commands_and_for_admins_the_admin_commands(tmp_path: Path):
    async with world(tmp_path) as w:
        api = w.api
        api.send_text(11, "/help")  # a Hindi owner
        [owner_help, *_] = await w.next(11, 2)
        assert "/stop_broadcasts – सूचनाएँ बंद करें" in owner_help.text
        assert "/start_broadcasts – सूचनाएँ फिर से चालू करें" in owner_help.text
        assert "/broadcast_cancel" not in owner_help.text and "/stats" not in owner_help.text
        api.send_text(ADMIN, "/help")
        [admin_help] = await w.next(ADMIN)
        assert "/learn – training modules" in admin_help.text and "/stop_broadcasts – no announcements" in admin_help.text
        assert "<b>Admin commands</b>" not in admin_help.text and "Admin commands" in admin_help.text  # bold, as HTML
        assert "/broadcast – send a module invitation" in admin_help.text and "/stats chart – as a picture" in admin_help.text
        assert api.refusals == []


async def test_module_invitation_to_a_segment_reaches_each_owner_in_their_language(tmp_path: Path, store: dict):
    async with world(tmp_path, store=store) as w:
        api, app = w.api, w.app
        module = app.engine.content.module("export_ready")
        preview = await build_module_broadcast(w, "📘 Get export-ready", "Uttar Pradesh")
        summary = api.messages(ADMIN)[-3].text
        assert "Recipients: 3 (हिन्दी 2 · English 1)" in summary
        assert "Estimated delivery time: under a minute at 200 messages a second" in summary
        assert w.tr("hi", module.title) in preview.text and "[▶️ " in preview.text
        await api.wait_idle()
        assert [m for uid in (11, 12, 13) for m in w.received(uid)] == []  # nothing goes out before Confirm
        confirm = dict(preview.buttons)["✅ Confirm"]
        api.tap_button(ADMIN, preview, "✅ Confirm")
        queued = await api.wait_for_message(ADMIN, lambda m: m.text.startswith("✅ Broadcast #"))
        assert "queued for 3 owners, starting now" in queued.text
        await api.wait_until(ADMIN, lambda m: m.message_id == preview.message_id and "Confirm" in (m.text or "").splitlines()[-1])
        assert api.message(ADMIN, preview.message_id).text.splitlines()[-1] == "✅ Confirm"  # one tick, not "✅ ✅ Confirm"
        await w.wait_delivered([11, 12, 13])
        for uid, lang in ((11, "hi"), (12, "en"), (13, "hi")):
            [invitation] = w.received(uid)
            assert w.tr(lang, module.title) in invitation.text
            assert invitation.buttons == [(w.tr(lang, "▶️ Start module"), "go:export_ready")]
        assert w.received(14) == [] and w.received(15) == []
        # The message is stored once per language on the broadcast; each row names only its language.
        [stored] = await app.db.fetchall("SELECT payload_en, payload_hi FROM broadcasts")
        assert w.tr("en", module.title) in stored["payload_en"] and w.tr("hi", module.title) in stored["payload_hi"]
        rows = await app.db.fetchall("SELECT chat_ref, payload FROM outbox WHERE kind = 'broadcast' ORDER BY chat_ref")
        assert [(r["chat_ref"], r["payload"]) for r in rows] == [
            ("11", '{"broadcast": "hi"}'), ("12", '{"broadcast": "en"}'), ("13", '{"broadcast": "hi"}')]
        # The status message is edited to the final counts.
        status = await api.wait_until(ADMIN, lambda m: m.text.startswith("📣 Broadcast #") and "finished" in m.text, timeout=10)
        assert "Sent: 3 of 3" in status.text and "Remaining: 0" in status.text
        assert "Estimated finish" not in status.text and "Finished: " in status.text  # done, not an estimate
        # "Start module" opens the module for the owner, in their language.
        api.tap_button(12, w.received(12)[0], w.tr("en", "▶️ Start module"))
        lesson = await api.wait_for_message(12, lambda m: (m.text or "").startswith(f"{module.title} · 1/"))
        assert lesson.text.startswith(f"{module.title} · 1/{len(module.lessons)}")
        # A second tap on Confirm (a double tap, or a keyboard the client still shows) is old.
        api.tap(ADMIN, preview.message_id, confirm)
        await api.wait_idle()
        assert api.callback_answers[-1].text == EARLIER
        assert len(await app.db.fetchall("SELECT * FROM broadcasts")) == 1
        assert api.refusals == []


async def test_an_announcement_needs_both_languages(tmp_path: Path, store: dict):
    async with world(tmp_path, store=store) as w:
        api = w.api
        api.add_user(ADMIN, first_name="Neha", language_code="hi")  # this admin reads Hindi
        api.send_text(ADMIN, "/broadcast")
        [what] = await w.next(ADMIN)
        api.tap_button(ADMIN, what, w.tr("hi", "✍️ Announcement"))
        [ask_en] = await w.next(ADMIN)
        assert ask_en.text == w.tr("hi", "Send the announcement in <b>English</b>, as owners should read it. (/cancel to stop)").replace("<b>", "").replace("</b>", "")
        api.send_text(ADMIN, "Webinar on export payments, Friday 4 pm")
        [ask_hi] = await w.next(ADMIN)
        # The English text again where the Hindi one belongs: refused, asked again.
        api.send_text(ADMIN, "Webinar on export payments, Friday 4 pm")
        refused, again = await w.next(ADMIN, 2)
        assert refused.text == w.tr("hi", "That does not look like Hindi: there is no Devanagari in it. Please send the Hindi text.")
        assert again.text == ask_hi.text
        api.send_text(ADMIN, "शुक्रवार शाम 4 बजे एक्सपोर्ट पेमेंट पर वेबिनार <देखें>")
        [who] = await w.next(ADMIN)
        assert "5" in who.text
        api.tap_button(ADMIN, who, w.tr("hi", "Next ▶️"))
        [when] = await w.next(ADMIN)
        api.tap_button(ADMIN, when, w.tr("hi", "Now"))
        summary, english, hindi = await w.next(ADMIN, 3)
        assert "Webinar on export payments, Friday 4 pm" in english.text
        assert "शुक्रवार शाम 4 बजे एक्सपोर्ट पेमेंट पर वेबिनार <देखें>" in hindi.text  # shown exactly as typed
        api.send_text(ADMIN, "/cancel")
        [cancelled] = await w.next(ADMIN)
        assert cancelled.text == w.tr("hi", "Okay, the new broadcast is cancelled. Nothing was sent.")
        await api.wait_idle()
        assert await w.app.db.fetchall("SELECT * FROM broadcasts") == []
        assert all(w.received(o.uid) == [] for o in OWNERS)
        # Confirm on the cancelled preview does nothing.
        api.tap_button(ADMIN, hindi, w.tr("hi", "✅ Confirm"))
        await api.wait_idle()
        assert await w.app.db.fetchall("SELECT * FROM broadcasts") == []
        assert api.refusals == []


async def test_429_5xx_and_403_are_handled(tmp_path: Path, store: dict):
    owners = [Owner(100 + i, "hi" if i % 2 else "en") for i in range(12)]
    async with world(tmp_path, owners, store=store) as w:
        api, app = w.api, w.app
        api.block(105)
        api.fail_next("sendMessage", 1, status=429, retry_after=1)
        api.fail_next("sendMessage", 2, status=502)
        broadcast_id, recipients = await app.broadcasts.start(
            Plan("module", Segment(), module_id="export_ready"), created_by="test", admin=("telegram", str(ADMIN))
        )
        assert recipients == 12
        await asyncio.sleep(1.5)  # the 429's retry_after
        for _ in range(6):  # backoff of the 502s is counted on the bot's clock
            w.clock.advance(10)
            w.wake()
            await asyncio.sleep(0.3)
        await w.wait_delivered([o.uid for o in owners if o.uid != 105])
        assert Counter(len(w.received(o.uid)) for o in owners) == {1: 11, 0: 1}
        assert await app.broadcasts.repo.progress(broadcast_id) == {"sent": 11, "blocked": 1}
        [blocked] = await app.db.fetchall("SELECT blocked_at FROM users WHERE user_ref = '105'")
        assert blocked["blocked_at"] is not None
        assert api.stats.injected_failures == 3
        assert [r.description for r in api.refusals] == [BLOCKED]
        status = await api.wait_until(ADMIN, lambda m: "Sent: 11 of 12" in (m.text or "") and "finished" in m.text, timeout=10)
        assert "Blocked: 1" in status.text
        # A later broadcast leaves the blocked owner out.
        assert (await app.broadcasts.count(Segment()))["en"] + (await app.broadcasts.count(Segment()))["hi"] == 11


async def test_cancel_stops_what_has_not_been_sent(tmp_path: Path, store: dict):
    owners = [Owner(200 + i) for i in range(40)]
    async with world(tmp_path, owners, broadcast_rate=8.0, store=store) as w:
        api, app = w.api, w.app
        broadcast_id, _ = await app.broadcasts.start(
            Plan("module", Segment(), module_id="payments"), created_by="test", admin=("telegram", str(ADMIN))
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while sum(len(w.received(o.uid)) for o in owners) < 3:
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        api.send_text(ADMIN, "/broadcast_cancel")
        reply = await api.wait_for_message(ADMIN, lambda m: m.text.startswith("⏹"))
        await asyncio.sleep(1.0)
        await api.wait_idle()
        delivered = sum(len(w.received(o.uid)) for o in owners)
        progress = await app.broadcasts.repo.progress(broadcast_id)
        assert progress.get("sent", 0) == delivered and 3 <= delivered < 40
        assert progress["cancelled"] == 40 - delivered
        assert f"{progress['cancelled']} messages will not be sent" in reply.text
        status = await api.wait_until(ADMIN, lambda m: (m.text or "").startswith("📣") and "cancelled" in m.text, timeout=10)
        assert f"Cancelled, not sent: {progress['cancelled']}" in status.text
        api.send_text(ADMIN, "/broadcast_cancel")
        nothing = await api.wait_for_message(ADMIN, lambda m: m.text.startswith("There is no broadcast"))
        assert nothing is not None


async def test_a_restart_mid_broadcast_sends_everyone_exactly_once(tmp_path: Path):
    owners = [Owner(300 + i, "en" if i % 3 else "hi") for i in range(30)]
    db_path = tmp_path / "bot.sqlite3"
    clock = ManualClock(NOW)
    async with BotApiStandin() as api:
        for owner in owners:
            api.add_user(owner.uid)
        api.add_user(ADMIN, language_code="en")
        settings = dict(clock=clock, admin_ids=frozenset({ADMIN}), broadcast_rate=12.0)
        async with running_bot(api, db_path, **settings) as first:
            await seed(first.app.db, owners)
            broadcast_id, _ = await first.app.broadcasts.start(
                Plan("module", Segment(), module_id="alibaba"), created_by="test", admin=("telegram", str(ADMIN))
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while sum(len(api.messages(o.uid)) for o in owners) < 8:
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
        before = {o.uid: len(api.messages(o.uid)) for o in owners}
        assert 8 <= sum(before.values()) < 30
        # As a crash would leave it: a row taken off the queue but never handed to Telegram.
        with sqlite3.connect(db_path) as conn:
            conn.execute("UPDATE outbox SET status = 'claimed' WHERE id = (SELECT MAX(id) FROM outbox WHERE status = 'pending')")
        async with running_bot(api, db_path, **settings) as second:
            deadline = loop.time() + 15
            while not all(api.messages(o.uid) for o in owners):
                assert loop.time() < deadline, sum(len(api.messages(o.uid)) for o in owners)
                await asyncio.sleep(0.05)
            await api.wait_idle()
            progress = await second.app.broadcasts.repo.progress(broadcast_id)
        assert Counter(len(api.messages(o.uid)) for o in owners) == {1: 30}  # no duplicates, no gaps
        assert progress == {"sent": 30}


async def test_opted_out_owners_are_skipped_even_after_scheduling(tmp_path: Path, store: dict):
    owners = [Owner(400 + i, "hi") for i in range(4)]
    async with world(tmp_path, owners, store=store) as w:
        api, app = w.api, w.app
        # 400 opts out before the broadcast is planned, 401 after it was scheduled.
        api.send_text(400, "/stop_broadcasts")
        await w.next(400, 2)
        assert await app.broadcasts.count(Segment()) == {"hi": 3, "en": 0}
        await build_module_broadcast_scheduled(w)
        api.send_text(401, "/stop_broadcasts")
        await w.next(401, 2)
        await api.wait_idle()
        assert [m for o in owners for m in w.received(o.uid) if "Training module" in (m.text or "")] == []
        w.clock.advance(3 * 86400)  # past the scheduled hour
        w.wake()
        await w.wait_delivered([402, 403])
        await api.wait_idle()
        assert [len(w.received(uid)) for uid in (400, 401)] == [2, 2]  # only the replies to /stop_broadcasts
        [row] = await app.db.fetchall("SELECT MAX(id) AS id FROM broadcasts")
        assert await app.broadcasts.repo.progress(row["id"]) == {"sent": 2, "skipped": 1}
        api.send_text(401, "/start_broadcasts")
        await w.next(401, 2)
        assert await app.broadcasts.count(Segment()) == {"hi": 3, "en": 0}


async def build_module_broadcast_scheduled(w: World) -> None:
    """Admin: a Payments invitation to everyone, scheduled by typing a date and hour."""
    api = w.api
    api.send_text(ADMIN, "/broadcast")
    [what] = await w.next(ADMIN)
    api.tap_button(ADMIN, what, "📘 Getting paid")
    [who] = await w.next(ADMIN)
    assert "Recipients now: 3" in who.text
    api.tap_button(ADMIN, who, "Next ▶️")
    [when] = await w.next(ADMIN)
    api.send_text(ADMIN, "2026-05-30 10")  # NOW is 29 May 2026, 01:56 India time
    summary, note, _, hindi = await w.next(ADMIN, 4)
    assert "When: 30 May 2026, 10:00 AM" in summary.text
    assert note.text.startswith("Note: this module opens after Get export-ready.")
    api.tap_button(ADMIN, hindi, "✅ Confirm")
    [queued] = await w.next(ADMIN)
    assert "queued for 3 owners, starting 30 May 2026, 10:00 AM" in queued.text


async def test_the_cli_queues_and_the_running_bot_alone_sends(tmp_path: Path):
    """`saathi broadcast … --yes` with the bot running: it follows the bot's progress, it never sends itself."""
    import os
    import subprocess
    import sys

    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api:
        for owner in OWNERS:
            api.add_user(owner.uid, language_code=owner.lang)
        async with running_bot(api, db_path, broadcast_rate=5.0) as running:
            await seed(running.app.db, OWNERS)
            env = {**os.environ, "DATABASE_PATH": str(db_path), "TELEGRAM_BOT_TOKEN": api.token,
                   # Were the CLI to send, it would fail here: nothing listens on port 9.
                   "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot", "BROADCAST_RATE": "5"}
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "bot.cli", "broadcast", "announce", "--en", "Webinar on Friday",
                                 "--hi", "शुक्रवार को वेबिनार", "--yes"],
                env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=60,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "Broadcast #1 queued: 5 messages." in done.stdout and "Done: {'sent': 5}" in done.stdout
            assert "5/5 sent" in done.stderr  # the progress bar, drawn while the bot sent
            for owner in OWNERS:
                texts = [m.text for m in api.messages(owner.uid)]
                wanted = "शुक्रवार को वेबिनार" if owner.lang == "hi" else "Webinar on Friday"
                assert sum(wanted in (t or "") for t in texts) == 1, (owner.uid, texts)
            assert api.refusals == []


async def test_a_broadcast_row_queued_before_the_upgrade_keeps_its_own_copy_and_is_sent(tmp_path: Path):
    async with world(tmp_path) as w:
        api, app = w.api, w.app
        [[broadcast_id]] = await app.db.fetchall(
            "INSERT INTO broadcasts (kind, text_en, text_hi, segment, send_at, created_by, created_at, recipients) "
            "VALUES ('announcement', 'Old news', 'पुरानी सूचना', '{}', ?, 'cli', ?, 1) RETURNING id", (NOW, NOW))
        await app.db.execute(
            "INSERT INTO outbox (user_id, channel, chat_ref, kind, payload, dedup_key, batch_id, not_before, created_at) "
            "SELECT id, 'telegram', '11', 'broadcast', ?, 'bc:old', ?, ?, ? FROM users WHERE user_ref = '11'",
            ('{"text": "पुरानी सूचना", "choices": [], "columns": 1}', broadcast_id, NOW, NOW))
        w.wake()
        await w.wait_delivered([11])
        assert [m.text for m in w.received(11)] == ["पुरानी सूचना"]


async def test_the_cli_follow_says_it_waits_behind_an_earlier_broadcast_not_that_the_bot_is_down(tmp_path: Path, capsys):
    from bot.admin_cli import _follow
    from bot.storage.outbox import dump_say
    from bot.core.messages import Say

    async with world(tmp_path, broadcast_rate=2.0) as w:
        app = w.app
        now = int(w.clock.now())

        async def announce(text: str) -> tuple[int, int]:
            return await app.broadcasts.repo.create(
                kind="announcement", segment=Segment(), channels=("telegram",), send_at=now, now=now, created_by="cli",
                payloads={"en": dump_say(Say(text)), "hi": dump_say(Say(text))}, text_en=text, text_hi=text)

        await announce("First news")
        second, recipients = await announce("Second news")
        assert await app.broadcasts.repo.queued_ahead(second) >= recipients - 1  # everything of the first comes before it
        w.wake()
        assert await _follow(app, second, recipients, stall=0.6) == 0
        err = capsys.readouterr().err
        assert "Waiting behind" in err and "queued earlier; the bot is sending them first." in err
        assert "is the bot running" not in err
        for owner in (o for o in OWNERS if o.onboarded):
            assert [m.text for m in w.received(owner.uid)] == ["First news", "Second news"]
        assert await app.broadcasts.repo.queued_ahead(second) == 0


async def test_the_cli_follow_says_when_nothing_is_sending(tmp_path: Path, capsys):
    from bot.admin_cli import _follow
    from bot.app import build_app
    from bot.config import Settings
    from bot.storage.outbox import dump_say
    from bot.core.messages import Say

    app = await build_app(Settings(database_path=tmp_path / "bot.sqlite3"), clock=ManualClock(NOW))
    try:
        await seed(app.db, OWNERS)
        broadcast_id, recipients = await app.broadcasts.repo.create(
            kind="announcement", segment=Segment(), channels=("telegram",), send_at=NOW, now=NOW, created_by="cli",
            payloads={"en": dump_say(Say("News")), "hi": dump_say(Say("खबर"))}, text_en="News", text_hi="खबर")
        assert await _follow(app, broadcast_id, recipients, stall=0.3) == 0
        err = capsys.readouterr().err
        assert "is the bot running (make run)?" in err and "Waiting behind" not in err
    finally:
        await app.close()
