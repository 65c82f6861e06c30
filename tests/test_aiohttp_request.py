"""The aiohttp transport, through the real python-telegram-bot ``Bot`` against the stand-in.

Whatever the transport, PTB's error semantics must hold: Telegram's status codes become
``RetryAfter``/``Forbidden``/``BadRequest``, a hung request becomes ``TimedOut``, a dead server
``NetworkError``; uploads arrive byte for byte; and the whole bot runs over it.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels.aiohttp_request import AiohttpRequest
from bot.services.clock import ManualClock
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot

TOKEN = "123456:TEST-TOKEN"
ASHA = 42

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandin]:
    async with BotApiStandin(TOKEN) as standin:
        standin.add_user(ASHA, first_name="Asha", language_code="hi")
        yield standin


def _bot(api: BotApiStandin, **timeouts: float) -> Bot:
    request = AiohttpRequest(**timeouts)
    return Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, request=request, get_updates_request=request)


@pytest.fixture
async def bot(api: BotApiStandin) -> AsyncIterator[Bot]:
    async with _bot(api) as client:
        yield client


def _seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def test_send_edit_and_answer_a_tap(api: BotApiStandin, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("हिन्दी", callback_data="1:hi"), InlineKeyboardButton("English", callback_data="1:en")]])
    sent = await bot.send_message(ASHA, "<b>नमस्ते</b> &amp; welcome", parse_mode="HTML", reply_markup=keyboard)
    assert (sent.chat.id, sent.text, sent.entities[0].type) == (ASHA, "नमस्ते & welcome", "bold")
    assert api.last_message(ASHA).buttons == [("हिन्दी", "1:hi"), ("English", "1:en")]

    api.tap_button(ASHA, sent.message_id, "English")
    [update] = await bot.get_updates(timeout=1)
    assert update.callback_query.data == "1:en"
    assert await update.callback_query.answer(text="✓ English") is True
    assert api.callback_answers[-1].text == "✓ English"

    edited = await bot.edit_message_text("नमस्ते\n\n✅ <b>English</b>", ASHA, sent.message_id, parse_mode="HTML")
    assert edited.text == "नमस्ते\n\n✅ English"
    shown = api.message(ASHA, sent.message_id)
    assert (shown.text, shown.reply_markup) == ("नमस्ते\n\n✅ English", None)
    assert api.refusals == []


async def test_flood_control_raises_retry_after_with_telegrams_wait(api: BotApiStandin, bot: Bot) -> None:
    api.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ASHA, "hello")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _seconds(caught.value.retry_after) == 7
    assert api.messages(ASHA) == []


async def test_blocked_user_raises_forbidden(api: BotApiStandin, bot: Bot) -> None:
    api.block(ASHA)
    with pytest.raises(Forbidden) as caught:
        await bot.send_message(ASHA, "hello")
    assert "blocked" in caught.value.message
    assert api.messages(ASHA) == []


async def test_refusal_raises_bad_request_with_telegrams_message(api: BotApiStandin, bot: Bot) -> None:
    with pytest.raises(BadRequest) as unknown:
        await bot.send_message(777, "hello")
    assert unknown.value.message == "Chat not found"
    with pytest.raises(BadRequest) as too_long:
        await bot.send_message(ASHA, "क" * 4097)
    assert too_long.value.message == "Message is too long"
    assert [r.description for r in api.refusals] == ["Bad Request: chat not found", "Bad Request: message is too long"]


async def test_hung_request_raises_timed_out_and_server_errors_network_error(api: BotApiStandin) -> None:
    api.timeout_next("sendMessage", delay=3.0, deliver=True)
    api.fail_next("sendMessage", status=502)
    async with _bot(api, read_timeout=0.3) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(ASHA, "one")
        with pytest.raises(NetworkError) as bad_gateway:
            await bot.send_message(ASHA, "two")
        assert not isinstance(bad_gateway.value, TimedOut)
        await bot.send_message(ASHA, "three")
    # The timed-out request took effect (its answer was lost); the 502 did not.
    assert [m.text for m in api.messages(ASHA)] == ["one", "three"]


async def test_long_poll_outlasts_the_read_timeout(api: BotApiStandin) -> None:
    async with _bot(api, read_timeout=0.2) as bot:
        # The owner writes well after the read timeout; the poll (PTB adds its timeout) is still open.
        asyncio.get_running_loop().call_later(0.6, api.send_text, ASHA, "namaste")
        [update] = await bot.get_updates(timeout=3)
    assert update.message.text == "namaste"


async def test_unreachable_server_raises_network_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AiohttpRequest(connect_timeout=1.0) as request:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    assert not isinstance(caught.value, TimedOut)
    assert "aiohttp.ClientConnectorError" in caught.value.message


async def test_photo_upload_arrives_with_its_bytes(api: BotApiStandin, bot: Bot) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    sent = await bot.send_photo(ASHA, data, caption="<b>प्रमाणपत्र</b> 🎉", parse_mode="HTML", filename="certificate.png")
    assert sent.caption == "प्रमाणपत्र 🎉"
    shown = api.last_message(ASHA)
    assert (shown.kind, shown.photo, shown.caption) == ("photo", data, "प्रमाणपत्र 🎉")
    assert api.refusals == []


async def test_the_whole_bot_runs_over_it(api: BotApiStandin, tmp_path: Path) -> None:
    api.add_user(ASHA, first_name="Asha", language_code="en")
    async with running_bot(api, tmp_path / "bot.sqlite3", clock=ManualClock(1_760_000_000)) as running:
        assert isinstance(running.application.bot.request, AiohttpRequest)
        api.send_text(ASHA, "/start")
        [language] = await api.wait_for_messages(ASHA, 1)
        assert [label for label, _ in language.buttons] == ["हिन्दी", "English ✓"]
        api.tap_button(ASHA, language, "English ✓")
        [consent] = await api.wait_for_messages(ASHA, 1)
        assert consent.text.startswith("Before we start, please read this")
        await api.wait_until(ASHA, lambda m: m.message_id == language.message_id and m.text.endswith("✅ English"))
        assert len(api.callback_answers) == 1
        await api.wait_idle(0.2)
        row = await running.app.db.fetchone("SELECT lang FROM users WHERE user_ref = ?", (str(ASHA),))
        # Memory stays flat: nothing per user is kept in the process once a turn is over.
        assert (len(running.application.user_data), len(running.application.chat_data)) == (0, 0)
        assert len(running.app.conversations.locks) == 0
    assert row["lang"] == "en"
    assert api.refusals == []
