"""The outbox and its delivery worker, sending through the real TelegramSender and a real PTB
``Bot`` to the Bot API stand-in: order, exactly-once, flood control, retries, blocked users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.app import App, build_app
from bot.channels.telegram import TelegramSender
from bot.config import Settings
from bot.core.messages import Choice, Inbound, Say
from bot.services.clock import ManualClock
from bot.services.delivery import DeliveryWorker
from bot.storage.outbox import RETRY_LIMIT, Outgoing
from bot.core.messages import UserKey
from tests.botapi_standin import BLOCKED, BotApiStandin

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

READ_TIMEOUT = 0.5  # the client gives up on a hung request after this (timeout_next hangs longer)


@dataclass
class Env:
    """A stand-in, the app's outbox on a real database, and a PTB bot talking to the stand-in."""

    api: BotApiStandin
    app: App
    clock: ManualClock
    bot: Bot

    def worker(self, **options: float) -> DeliveryWorker:
        """A worker sending through TelegramSender; fast per-chat pacing unless told otherwise."""
        options.setdefault("rate", 200.0)
        options.setdefault("per_chat_interval", 0.05)
        return self.app.delivery({"telegram": TelegramSender(self.bot)}, **options)

    async def user(self, uid: int, language_code: str = "hi") -> int:
        """A Telegram user who has talked to the bot (a users row) and has a chat in the stand-in."""
        self.api.add_user(uid, language_code=language_code)
        reply = await self.app.conversations.handle(UserKey("telegram", str(uid)), Inbound.say("/start"))
        return reply.user_id

    async def enqueue(self, uid: int, *texts: str, user_id: int | None = None, kind: str = "notice", **extra) -> int:
        """Queue ``texts`` for ``uid``, now; returns how many rows were new."""
        items = [Outgoing("telegram", str(uid), kind, Say(text), user_id=user_id, **extra) for text in texts]
        return await self.app.outbox.enqueue(items, int(self.clock.now()))

    async def rows(self) -> list[dict]:
        """Every outbox row, oldest first."""
        found = await self.app.db.fetchall("SELECT id, chat_ref, status, attempts, error, message_ref, payload FROM outbox WHERE kind != 'reply' ORDER BY id")
        return [dict(r) for r in found]

    def texts(self, uid: int) -> list[str]:
        """What the user received, in order."""
        return [m.text for m in self.api.messages(uid)]


@asynccontextmanager
async def environment(tmp_path: Path, **standin: object) -> AsyncIterator[Env]:
    """A fresh stand-in (``standin`` options such as rate_limit) and app."""
    clock = ManualClock()
    async with BotApiStandin(**standin) as api:
        app = await build_app(Settings(telegram_token=api.token, database_path=tmp_path / "bot.sqlite3"), clock=clock)
        request = HTTPXRequest(read_timeout=READ_TIMEOUT, connect_timeout=2.0, connection_pool_size=16)
        try:
            async with Bot(api.token, base_url=api.base_url, request=request) as bot:
                yield Env(api, app, clock, bot)
        finally:
            await app.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with environment(tmp_path) as created:
        yield created


def sends(api: BotApiStandin, uid: int) -> int:
    """How many sendMessage requests reached the stand-in for ``uid`` (accepted or not)."""
    return sum(1 for method, params in api.calls if method == "sendMessage" and str(params.get("chat_id")) == str(uid))


# ----------------------------------------------------------------- the tests
async def test_rows_are_delivered_once_each_in_order_per_chat(env: Env):
    api = env.api
    uids = [11, 12, 13]
    for uid in uids:
        api.add_user(uid)
    # Interleaved, as a broadcast and notices would queue them.
    for n in (1, 2, 3):
        for uid in uids:
            await env.enqueue(uid, f"Message {n} for {uid}")
    button = Say("Tea & spices: <b>new lesson</b>", (Choice("go:export_ready", "Continue"),))
    await env.app.outbox.enqueue([Outgoing("telegram", "11", "notice", button)], int(env.clock.now()))

    worker = env.worker()
    assert await worker.drain() == 10
    assert await worker.drain() == 0  # nothing is sent twice

    for uid in uids:
        expected = [f"Message {n} for {uid}" for n in (1, 2, 3)]
        assert env.texts(uid) == expected + (["Tea & spices: new lesson"] if uid == 11 else [])
    last = api.last_message(11)
    assert last.buttons == [("Continue", "go:export_ready")]
    assert last.entities[0]["type"] == "bold"
    rows = await env.rows()
    assert [(r["status"], r["attempts"]) for r in rows] == [("sent", 1)] * 10
    sent_ids = {(int(r["chat_ref"]), int(r["message_ref"])) for r in rows}
    assert sent_ids == {(uid, m.message_id) for uid in uids for m in api.messages(uid)}
    assert worker.stats.sent == 10 and api.stats.sent_ok == 10
    assert api.refusals == []


async def test_flood_control_waits_and_does_not_use_up_an_attempt(env: Env):
    api = env.api
    api.add_user(21)
    await env.enqueue(21, "After the flood")
    api.fail_next("sendMessage", 1, status=429, retry_after=1)
    worker = env.worker()

    assert await worker.drain() == 1  # the 429
    [row] = await env.rows()
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert env.texts(21) == []
    assert worker.stats.flood_waits == 1
    assert await worker.drain() == 0  # not due before retry_after has passed

    env.clock.advance(1)
    assert await worker.drain() == 1
    [row] = await env.rows()
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert env.texts(21) == ["After the flood"]
    assert sends(api, 21) == 2 and api.stats.injected_failures == 1
    assert api.refusals == []


@pytest.mark.parametrize("fault", ["500", "502", "timeout"])
async def test_server_errors_and_timeouts_are_retried_with_backoff(env: Env, fault: str):
    api = env.api
    api.add_user(31)
    await env.enqueue(31, "Your lead card")
    if fault == "timeout":
        api.timeout_next("sendMessage", 2, delay=READ_TIMEOUT * 4)
    else:
        api.fail_next("sendMessage", 2, status=int(fault))
    worker = env.worker()

    waits = []
    for attempt in (1, 2):
        assert await worker.drain() == 1
        [row] = await env.rows()
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        due = (await env.app.db.fetchone("SELECT not_before FROM outbox WHERE kind != 'reply'"))[0]
        waits.append(due - int(env.clock.now()))
        assert await worker.drain() == 0  # waiting for its backoff
        env.clock.advance(waits[-1])
    assert waits[0] > 0 and waits[1] > waits[0]  # exponential backoff
    assert env.texts(31) == []

    assert await worker.drain() == 1
    [row] = await env.rows()
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert env.texts(31) == ["Your lead card"]  # once, although it was tried three times
    assert worker.stats.retried == 2 and worker.stats.sent == 1
    assert api.refusals == []


async def test_a_row_fails_after_the_retry_limit(env: Env):
    api = env.api
    api.add_user(41)
    await env.enqueue(41, "Never arrives")
    api.fail_next("sendMessage", RETRY_LIMIT + 5, status=500)
    worker = env.worker()
    for _ in range(RETRY_LIMIT):
        assert await worker.drain() == 1
        env.clock.advance(3600)
    assert await worker.drain() == 0
    [row] = await env.rows()
    assert (row["status"], row["attempts"]) == ("failed", RETRY_LIMIT)
    assert row["error"]
    assert sends(api, 41) == RETRY_LIMIT  # never tried again after failing
    assert env.texts(41) == []
    assert worker.stats.failed == 1


async def test_a_blocked_user_is_marked_and_their_other_rows_are_not_sent(env: Env):
    api = env.api
    blocked_id = await env.user(51)
    other_id = await env.user(52)
    await env.enqueue(51, "One", "Two", "Three", user_id=blocked_id)
    await env.enqueue(52, "Hello", user_id=other_id)
    api.block(51)
    env.clock.advance(60)

    # Per-chat pacing spaces the user's rows, so the first 403 is known before the next is due.
    worker = env.worker(per_chat_interval=0.5)
    await worker.drain()
    rows = await env.rows()
    assert [(r["chat_ref"], r["status"]) for r in rows] == [("51", "blocked")] * 3 + [("52", "sent")]
    assert sends(api, 51) == 1  # the first 403 cancelled the rest
    assert env.texts(52) == ["Hello"]
    users = {r["user_ref"]: r["blocked_at"] for r in await env.app.db.fetchall("SELECT user_ref, blocked_at FROM users")}
    assert users == {"51": int(env.clock.now()), "52": None}
    assert worker.stats.blocked == 1
    assert [r.description for r in api.refusals] == [BLOCKED]


async def test_a_dedup_key_is_enqueued_once(env: Env):
    env.api.add_user(61)
    assert await env.enqueue(61, "Reminder", dedup_key="reminder:61:1") == 1
    assert await env.enqueue(61, "Reminder again", dedup_key="reminder:61:1") == 0
    rows = await env.rows()
    assert len(rows) == 1
    assert await env.worker().drain() == 1
    assert env.texts(61) == ["Reminder"]


async def test_rows_left_sending_by_a_crash_become_unknown_and_are_never_sent(env: Env):
    api = env.api
    api.add_user(71)
    await env.enqueue(71, "Was being sent", "Still waiting")
    # A process claims the first row and dies before it knows whether Telegram got it.
    [claimed] = await env.app.outbox.claim(int(env.clock.now()), limit=1)
    assert claimed.say.text == "Was being sent"

    worker = env.worker()
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop, poll=0.05))
    try:
        await api.wait_for_messages(71, 1, timeout=5)
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
    rows = await env.rows()
    assert [(r["status"], r["error"]) for r in rows] == [("unknown", "interrupted while sending"), ("sent", None)]
    assert await worker.drain() == 0
    assert env.texts(71) == ["Still waiting"]


async def test_pacing_keeps_under_the_flood_limit(tmp_path: Path):
    # 35 messages: more than the stand-in's burst of 25, so an unpaced worker would meet 429s.
    async with environment(tmp_path, rate_limit=25) as env:
        uids = list(range(1000, 1035))
        for uid in uids:
            env.api.add_user(uid)
            await env.enqueue(uid, f"Announcement for {uid}")
        worker = env.worker(rate=20)
        assert await worker.drain() == 35
        assert env.api.stats.rejected_429 == 0
        assert worker.stats.flood_waits == 0
        assert env.api.stats.sent_ok == 35
        assert all(env.texts(uid) == [f"Announcement for {uid}"] for uid in uids)
        assert env.api.refusals == []


async def test_a_worker_with_a_single_request_slot_still_drains(env: Env):
    # Regression: rows whose time slots fall in one tick were grouped beyond the number of
    # request slots, and the worker waited forever for a slot it was itself holding.
    for uid in (81, 82, 83):
        env.api.add_user(uid)
        await env.enqueue(uid, f"Hello {uid}")
    worker = env.worker(concurrency=1, rate=200)
    assert await asyncio.wait_for(worker.drain(), 5) == 3
    assert [env.texts(uid) for uid in (81, 82, 83)] == [["Hello 81"], ["Hello 82"], ["Hello 83"]]


async def test_a_lead_card_sent_again_after_a_timeout_says_it_is_a_second_copy(env: Env):
    api = env.api
    api.add_user(32)
    again = "🔁 Sent again, as the connection broke while it was being sent. If you already have this card, either copy works."
    await env.enqueue(32, "🆕 Lead #4", kind="lead_card")
    card = Outgoing("telegram", "32", "lead_card", Say("🆕 Lead #5", again=again))
    await env.app.outbox.enqueue([card], int(env.clock.now()))
    api.timeout_next("sendMessage", 2, delay=READ_TIMEOUT * 4, deliver=True)  # both arrive, but the bot never hears so
    worker = env.worker()
    assert await worker.drain() == 2
    env.clock.advance(600)
    assert await worker.drain() == 2
    assert env.texts(32) == ["🆕 Lead #4", "🆕 Lead #5", "🆕 Lead #4", f"{again}\n🆕 Lead #5"]
    assert [r["status"] for r in await env.rows()] == ["sent", "sent"]
