"""The Bot API stand-in, exercised through the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import html
import re
import warnings
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    MenuButtonDefault,
    MenuButtonWebApp,
    ReplyKeyboardMarkup,
    Update,
    WebAppInfo,
)
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from tests.botapi_standin import (
    BUTTON_DATA_INVALID,
    CHAT_NOT_FOUND,
    NOT_MODIFIED,
    BotApiStandin,
    EntityParseError,
    parse_telegram_html,
)

TOKEN = "123456:TEST-TOKEN"
ASHA = 42

# PTB 22 itself reads RetryAfter.retry_after / Voice.duration and warns that they will become
# timedeltas; that noise is PTB's, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*will be of type `datetime.timedelta`:telegram.warnings.PTBDeprecationWarning"
)


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandin]:
    async with BotApiStandin(TOKEN) as standin:
        standin.add_user(ASHA, first_name="Asha", language_code="hi")
        yield standin


@pytest.fixture
async def bot(api: BotApiStandin) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


def _seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def _retry_after(error: RetryAfter) -> float:
    # PTB 22 warns that retry_after will become a timedelta unless PTB_TIMEDELTA is set.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _seconds(error.retry_after)


async def test_send_message_round_trip_with_inline_keyboard(api: BotApiStandin, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("हिन्दी", callback_data="lang:hi"),
                InlineKeyboardButton("English", callback_data="lang:en"),
            ]
        ]
    )
    sent = await bot.send_message(
        ASHA, "<b>Namaste</b> &amp; welcome, Asha!", parse_mode="HTML", reply_markup=keyboard
    )

    assert sent.message_id == 1
    assert sent.chat.id == ASHA
    assert sent.from_user.is_bot
    assert sent.text == "Namaste & welcome, Asha!"
    assert sent.entities[0].type == "bold"
    assert (
        sent.entities[0].offset,
        sent.entities[0].length,
    ) == (0, 7)
    assert sent.reply_markup == keyboard
    [recorded] = api.messages(ASHA)
    assert recorded.text == "Namaste & welcome, Asha!"
    assert recorded.html == "<b>Namaste</b> &amp; welcome, Asha!"
    assert recorded.buttons == [("हिन्दी", "lang:hi"), ("English", "lang:en")]
    assert api.last_message(ASHA) is recorded
    assert api.refusals == []
    assert api.stats.sent_ok == 1


async def test_message_ids_are_shared_between_user_and_bot(api: BotApiStandin, bot: Bot) -> None:
    api.send_text(ASHA, "hi")  # message 1
    sent = await bot.send_message(ASHA, "hello")
    assert sent.message_id == 2


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # 2049 emoji are 4098 UTF-16 code units: too long although len() is 2049.
        ({"text": "😀" * 2049}, "message is too long"),
        ({"text": "<b>" + "a" * 4097 + "</b>", "parse_mode": "HTML"}, "message is too long"),
        ({"text": "   "}, "message text is empty"),
        ({"text": "<b>x", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "a < b", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "AT&T", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "<div>x</div>", "parse_mode": "HTML"}, 'Unsupported start tag "div"'),
        ({"text": "<b><i>x</b></i>", "parse_mode": "HTML"}, "Unmatched end tag"),
        (
            # 22 Devanagari letters are 66 UTF-8 bytes.
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton("a", callback_data="क" * 22)]]
                ),
            },
            BUTTON_DATA_INVALID.removeprefix("Bad Request: "),
        ),
        (
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton(str(i), callback_data=str(i))] for i in range(101)]
                ),
            },
            "too many buttons",
        ),
    ],
)
async def test_refuses_what_telegram_refuses(
    api: BotApiStandin, bot: Bot, kwargs: dict, expected: str
) -> None:
    with pytest.raises(BadRequest, match=f"(?i){re.escape(expected)}"):
        await bot.send_message(ASHA, **kwargs)
    assert api.messages(ASHA) == []
    [refusal] = api.refusals
    assert refusal.method == "sendMessage"
    assert expected in refusal.description


async def test_4096_utf16_units_after_html_parsing_are_accepted(
    api: BotApiStandin, bot: Bot
) -> None:
    sent = await bot.send_message(ASHA, "<b>" + "😀" * 2048 + "</b>", parse_mode="HTML")
    assert len(sent.text) == 2048
    assert api.refusals == []


async def test_unknown_chat_is_not_found(api: BotApiStandin, bot: Bot) -> None:
    # PTB strips "Bad Request: " and applies str.capitalize(), which lowercases the rest.
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "hello")
    assert api.refusals[0].description == CHAT_NOT_FOUND


async def test_injected_429_raises_retry_after(api: BotApiStandin, bot: Bot) -> None:
    api.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ASHA, "hello")
    assert _retry_after(caught.value) == 7
    assert (await bot.send_message(ASHA, "hello")).text == "hello"  # only the next call failed
    assert api.stats.injected_failures == 1
    assert api.refusals == []


async def test_rate_limit_answers_429_beyond_the_budget() -> None:
    async with BotApiStandin(TOKEN, rate_limit=5) as api:
        api.add_user(ASHA)
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            results = await asyncio.gather(
                *(bot.send_message(ASHA, f"m{i}") for i in range(12)), return_exceptions=True
            )
    flooded = [r for r in results if isinstance(r, RetryAfter)]
    assert api.stats.sent_ok == 12 - len(flooded)
    assert api.stats.rejected_429 == len(flooded) >= 6
    assert all(_retry_after(error) >= 1 for error in flooded)


async def test_per_chat_limit_is_separate_per_chat() -> None:
    async with BotApiStandin(TOKEN, per_chat_limit=True) as api:
        api.add_user(1)
        api.add_user(2)
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            for _ in range(BotApiStandin.PER_CHAT_BURST):
                await bot.send_message(1, "burst")
            with pytest.raises(RetryAfter):
                await bot.send_message(1, "one too many")
            await bot.send_message(2, "another chat is fine")
    assert (api.stats.sent_ok, api.stats.rejected_429) == (BotApiStandin.PER_CHAT_BURST + 1, 1)


async def test_standin_can_be_restarted() -> None:
    api = BotApiStandin(TOKEN)
    for _ in range(2):
        await api.start()
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            assert (await bot.get_updates(timeout=0)) == ()
        await api.stop()


async def test_blocked_user_is_forbidden_until_unblocked(api: BotApiStandin, bot: Bot) -> None:
    api.block(ASHA)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ASHA, "hello")
    api.unblock(ASHA)
    await bot.send_message(ASHA, "hello")


async def test_server_errors_and_timeouts(api: BotApiStandin) -> None:
    api.fail_next("sendMessage", status=502)
    api.timeout_next("sendMessage", delay=2.0, deliver=True)
    request = HTTPXRequest(read_timeout=0.2)
    async with Bot(TOKEN, base_url=api.base_url, request=request) as bot:
        with pytest.raises(NetworkError):
            await bot.send_message(ASHA, "one")
        with pytest.raises(TimedOut):
            await bot.send_message(ASHA, "two")
    # The timed-out request still took effect: the response was lost, not the message.
    assert [m.text for m in api.messages(ASHA)] == ["two"]
    assert (api.stats.injected_failures, api.stats.injected_timeouts) == (1, 1)


async def test_wrong_token_and_unknown_method(api: BotApiStandin, bot: Bot) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("654321:WRONG", base_url=api.base_url):
            pass
    assert api.refusals[-1].description == "Unauthorized"
    with pytest.raises(EndPointNotFound):  # do_api_request turns the 404 into this
        await bot.do_api_request("sendTeleport", api_kwargs={"chat_id": ASHA})
    assert api.refusals[-1].description == "Not Found"


async def test_edit_message_text_and_not_modified(api: BotApiStandin, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Next", callback_data="next")]])
    sent = await bot.send_message(ASHA, "Lesson 1", reply_markup=keyboard)

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Lesson 1", ASHA, sent.message_id, reply_markup=keyboard)
    assert api.refusals[-1].description == NOT_MODIFIED

    # Omitting reply_markup removes the keyboard, so the same text is a modification.
    await bot.edit_message_text("Lesson 1", ASHA, sent.message_id)
    edited = await bot.edit_message_text("Lesson 1 ✓", ASHA, sent.message_id)
    assert edited.text == "Lesson 1 ✓"
    assert edited.edit_date is not None
    recorded = api.message(ASHA, sent.message_id)
    assert recorded.buttons == []
    assert recorded.original.text == "Lesson 1"
    assert [e.text for e in recorded.edits] == ["Lesson 1", "Lesson 1 ✓"]

    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", ASHA, 999)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(ASHA, sent.message_id, reply_markup=None)


async def test_get_updates_shapes_decode_in_ptb(api: BotApiStandin, bot: Bot) -> None:
    sent = await bot.send_message(
        ASHA,
        "Pick",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="q1:yes")]]),
    )
    api.send_text(ASHA, "/start ref_abc")
    api.tap_button(ASHA, api.last_message(ASHA), "Yes")
    api.send_contact(ASHA, "+919812345678")
    api.send_sticker(ASHA)
    api.send_voice(ASHA)

    start, tap, contact, sticker, voice = await bot.get_updates(timeout=0)

    assert start.message.text == "/start ref_abc"
    assert start.message.from_user.language_code == "hi"
    assert start.effective_chat.type == "private"
    assert start.message.parse_entities(["bot_command"]) == {start.message.entities[0]: "/start"}
    assert tap.callback_query.data == "q1:yes"
    assert tap.callback_query.message.message_id == sent.message_id
    assert tap.callback_query.message.reply_markup == sent.reply_markup
    assert contact.message.contact.user_id == ASHA
    assert contact.message.contact.phone_number == "+919812345678"
    assert sticker.message.sticker.emoji == "👍"
    assert _seconds(voice.message.voice.duration) == 3

    # Confirming an offset drops earlier updates; unconfirmed ones come again.
    assert [u.update_id for u in await bot.get_updates(offset=voice.update_id)] == [voice.update_id]
    assert await bot.get_updates(offset=voice.update_id + 1, timeout=0) == ()


async def test_tap_button_refuses_missing_button(api: BotApiStandin, bot: Bot) -> None:
    await bot.send_message(
        ASHA,
        "Pick",
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Docs", url="https://example.com")]]
        ),
    )
    with pytest.raises(LookupError, match="no button 'Yes'"):
        api.tap_button(ASHA, api.last_message(ASHA), "Yes")
    with pytest.raises(LookupError, match="no callback_data"):
        api.tap_button(ASHA, api.last_message(ASHA), 0)


async def test_answer_callback_query_once(api: BotApiStandin, bot: Bot) -> None:
    sent = await bot.send_message(
        ASHA,
        "Pick",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="y")]]),
    )
    api.tap(ASHA, sent.message_id, "y")
    [update] = await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
        await update.callback_query.answer("x" * 201)
    assert await update.callback_query.answer("Saved", show_alert=True)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await update.callback_query.answer()
    assert [(a.text, a.show_alert) for a in api.callback_answers] == [("Saved", True)]


async def test_long_poll_wakes_on_new_update(api: BotApiStandin, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    loop.call_later(0.05, api.send_text, ASHA, "hello")
    [update] = await bot.get_updates(timeout=5)
    assert update.message.text == "hello"
    assert loop.time() - started < 2


async def test_redelivery_and_duplicates(api: BotApiStandin, bot: Bot) -> None:
    first = api.send_text(ASHA, "one")
    await bot.get_updates()
    api.duplicate_next_delivery()
    second = api.send_text(ASHA, "two")
    batch1 = await bot.get_updates(offset=first + 1)
    batch2 = await bot.get_updates(offset=second + 1)  # confirmed, yet delivered again
    assert [u.update_id for u in batch1] == [second] == [u.update_id for u in batch2]
    api.redeliver(first)
    assert [u.update_id for u in await bot.get_updates(offset=second + 1)] == [first]


async def test_set_my_commands_per_language(api: BotApiStandin, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("start", "शुरू करें")], language_code="hi")
    await bot.set_my_commands([BotCommand("menu", "Menu")], scope=BotCommandScopeAllPrivateChats())

    assert api.commands == {"": [("start", "Start"), ("help", "Help")], "hi": [("start", "शुरू करें")]}
    assert api.menu(scope="all_private_chats") == [("menu", "Menu")]
    assert [c.command for c in await bot.get_my_commands(language_code="hi")] == ["start"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "Start")])
    await bot.delete_my_commands(language_code="hi")
    assert "hi" not in api.commands


async def test_menu_button_per_chat_https_only(api: BotApiStandin, bot: Bot) -> None:
    app = MenuButtonWebApp("Dashboard", WebAppInfo("https://saathi.example/dashboard/app"))
    assert await bot.set_chat_menu_button(ASHA, app)
    assert api.menu_button(ASHA) == {"type": "web_app", "text": "Dashboard",
                                     "web_app": {"url": "https://saathi.example/dashboard/app"}}
    assert api.menu_button() == {"type": "commands"}  # the other chats keep the command menu
    assert (await bot.get_chat_menu_button(ASHA)).web_app.url.endswith("/dashboard/app")

    with pytest.raises(BadRequest, match="(?i)only https links are allowed"):
        await bot.set_chat_menu_button(ASHA, MenuButtonWebApp("Dashboard", WebAppInfo("http://localhost/app")))
    with pytest.raises(BadRequest, match="(?i)text is empty"):
        await bot.set_chat_menu_button(ASHA, MenuButtonWebApp(" ", WebAppInfo("https://saathi.example/")))
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.set_chat_menu_button(999_999, app)
    with pytest.raises(BadRequest, match="(?i)must be an object"):
        await bot.do_api_request("setChatMenuButton", api_kwargs={"chat_id": ASHA, "menu_button": "[1]"})
    assert api.menu_button(ASHA)["web_app"]["url"] == "https://saathi.example/dashboard/app"  # refusals change nothing

    assert await bot.set_chat_menu_button(ASHA, MenuButtonDefault())
    assert api.menu_button(ASHA) == {"type": "commands"}


async def test_reply_keyboard_photo_document_and_delete(api: BotApiStandin, bot: Bot) -> None:
    markup = ReplyKeyboardMarkup(
        [[KeyboardButton("Share phone", request_contact=True)]], one_time_keyboard=True
    )
    asked = await bot.send_message(ASHA, "Your number?", reply_markup=markup)
    assert api.last_message(ASHA).keyboard == ["Share phone"]
    assert api.last_message(ASHA).reply_markup["keyboard"][0][0]["request_contact"] is True
    assert asked.reply_markup is None  # Telegram echoes only inline keyboards

    doc = await bot.send_document(
        ASHA,
        b"%PDF-1.4 certificate",
        filename="certificate.pdf",
        caption="Your <b>certificate</b>",
        parse_mode="HTML",
    )
    photo = await bot.send_photo(ASHA, b"\x89PNG chart")
    assert doc.document.file_name == "certificate.pdf"
    assert doc.caption == "Your certificate"
    recorded_doc, recorded_photo = api.messages(ASHA)[1:]
    assert recorded_doc.document == b"%PDF-1.4 certificate"
    assert recorded_photo.photo == b"\x89PNG chart"
    downloaded = await (await bot.get_file(doc.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == b"%PDF-1.4 certificate"

    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(ASHA, b"x", caption="c" * 1025)
    assert await bot.delete_message(ASHA, photo.message_id)
    assert recorded_photo.deleted
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(ASHA, photo.message_id)
    assert await bot.send_chat_action(ASHA, "typing")


async def test_waiting_helpers(api: BotApiStandin, bot: Bot) -> None:
    async def bot_replies() -> None:
        await asyncio.sleep(0.02)
        first = await bot.send_message(ASHA, "one")
        await bot.send_message(ASHA, "two")
        await bot.edit_message_text("one (edited)", ASHA, first.message_id)

    task = asyncio.create_task(bot_replies())
    one, two = await api.wait_for_messages(ASHA, 2, timeout=5)
    assert (one.text, two.text) == ("one", "two")
    edited = await api.wait_until(ASHA, lambda m: bool(m.edits), timeout=5)
    assert edited is one
    assert one.text == "one (edited)"
    await task
    await api.wait_idle(quiet=0.05, timeout=5)
    assert api.new_messages(ASHA) == []
    with pytest.raises(TimeoutError, match="new message"):
        await api.wait_for_messages(ASHA, 1, timeout=0.05)


async def test_real_application_echoes(api: BotApiStandin) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(
            f"<i>{html.escape(update.message.text)}</i>", parse_mode="HTML"
        )

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        api.send_text(ASHA, "namaste <3 & more")
        [reply] = await api.wait_for_messages(ASHA, 1, timeout=5)
        assert reply.text == "namaste <3 & more"
        assert reply.entities == [{"type": "italic", "offset": 0, "length": 17}]
        await api.wait_idle(quiet=0.05, timeout=5)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert api.refusals == []
    assert [name for name, _ in api.calls][:2] == ["getMe", "deleteWebhook"]


@given(st.text())
def test_escaped_text_round_trips_through_the_html_parser(text: str) -> None:
    assert parse_telegram_html(html.escape(text)) == (text, [])


def test_html_parser_entities_and_errors() -> None:
    plain, entities = parse_telegram_html(
        '👍 <a href="https://x.in/?a=1&amp;b=2">link</a> <tg-spoiler>s</tg-spoiler>'
    )
    assert plain == "👍 link s"
    assert entities == [
        {"type": "text_link", "offset": 3, "length": 4, "url": "https://x.in/?a=1&b=2"},
        {"type": "spoiler", "offset": 8, "length": 1},
    ]
    assert parse_telegram_html("&#x1F600;&#65;&lt;&gt;&quot;") == ('😀A<>"', [])
    assert parse_telegram_html("AT&T", strict_ampersand=False) == ("AT&T", [])
    for bad in ("<b>x", "x</b>", "a < b", "<span>x</span>", "<b x>y</b>", "&nbsp;"):
        with pytest.raises(EntityParseError):
            parse_telegram_html(bad)
