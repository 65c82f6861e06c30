"""The Telegram channel's raw outgoing calls (``bot/channels/telegram.py``: sends, edits and tap
answers whose answer is kept as JSON, not built into PTB objects) against the Bot API stand-in:
what reaches Telegram is what PTB's own methods sent, and Telegram's refusals still become the
worker's outcomes (429 → RetryLater, 403 → Blocked, 400 → Refused, a timeout → RetryLater)."""

from __future__ import annotations

import json

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove, KeyboardButton
from telegram.error import BadRequest, Forbidden, RetryAfter, TimedOut
from bot.channels.aiohttp_request import AiohttpRequest

from bot.channels import telegram as tg
from bot.channels.telegram import TelegramSender, markup_json
from bot.core.messages import Choice, Picked, Say, Tapped
from bot.services.delivery import Blocked, Refused, RetryLater
from bot.storage.outbox import OutboxRow
from tests.botapi_standin import BotApiStandin

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("error:Please use:telegram.warnings.PTBUserWarning"),  # not do_api_request's nag
]

ASHA = 42
CHOICES = (Choice("s:3:yes", "✅ Yes"), Choice("s:3:no", "No <thanks>"), Choice("s:3:later", "Later & more"))


def row(say: Say | None = None, *, output=None, reply_to: Tapped | None = None, attempts: int = 1,
        close_contact: bool = False) -> OutboxRow:
    say = say or Say("x")
    return OutboxRow(1, None, "telegram", str(ASHA), "reply", say, attempts, None, output or say, reply_to, close_contact, "en")


@pytest.fixture
async def env():
    async with BotApiStandin() as api:
        api.add_user(ASHA, language_code="en")
        async with Bot(api.token, base_url=api.base_url, request=AiohttpRequest(read_timeout=0.5)) as bot:
            yield api, bot


def test_the_keyboard_json_is_what_ptb_sends_for_the_same_buttons():
    buttons = [InlineKeyboardButton(c.label, callback_data=c.id) for c in CHOICES]
    ptb = InlineKeyboardMarkup([buttons[i:i + 2] for i in range(0, len(buttons), 2)]).to_dict()
    assert json.loads(markup_json(CHOICES, 2)) == ptb
    assert markup_json(CHOICES, 2) is markup_json(CHOICES, 2)  # made once
    assert markup_json((), 2) is None
    assert markup_json((Choice("x" * 65, "too long"),), 1) is None  # dropped, as before
    assert json.loads(tg.contact_markup("📱 Share")) == ReplyKeyboardMarkup(
        [[KeyboardButton("📱 Share", request_contact=True)]], one_time_keyboard=True, resize_keyboard=True).to_dict()
    assert json.loads(tg.REMOVE_KEYBOARD) == ReplyKeyboardRemove().to_dict()


async def test_a_reply_is_sent_with_html_and_its_buttons_and_its_id_comes_back(env):
    api, bot = env
    sender = TelegramSender(bot)
    ref = await sender.reply(row(Say("<b>Q1</b> Gems & jewellery?", CHOICES, columns=2)))
    [message] = api.messages(ASHA)
    assert ref == str(message.message_id)
    assert message.parse_mode == "HTML" and message.text == "Q1 Gems & jewellery?"
    assert message.reply_markup == InlineKeyboardMarkup(
        [[InlineKeyboardButton("✅ Yes", callback_data="s:3:yes"), InlineKeyboardButton("No <thanks>", callback_data="s:3:no")],
         [InlineKeyboardButton("Later & more", callback_data="s:3:later")]]).to_dict()
    # the tapped question is marked, its buttons go
    await sender.reply(row(output=Picked("✅ Yes"), reply_to=Tapped(ref, "<b>Q1</b> Gems &amp; jewellery?")))
    marked = api.message(ASHA, int(ref))
    assert marked.text == "Q1 Gems & jewellery?\n\n✅ Yes" and not marked.buttons
    assert api.refusals == []


async def test_a_redraw_and_the_share_number_keyboard(env):
    api, bot = env
    sender = TelegramSender(bot)
    ref = await sender.reply(row(Say("Pick", CHOICES)))
    await sender.reply(row(Say("Pick", CHOICES[:1], replace=True), reply_to=Tapped(ref, "Pick")))
    assert [d for _, d in api.message(ASHA, int(ref)).buttons] == ["s:3:yes"]
    asked = await sender.reply(row(Say("Your number?", ask_contact=True)))
    assert api.message(ASHA, int(asked)).keyboard
    await sender.reply(row(Say("Thanks", CHOICES), close_contact=True))
    done, thanks = api.messages(ASHA)[-2:]
    assert done.text == "✅ Done" and thanks.text == "Thanks" and thanks.buttons
    assert api.refusals == []


@pytest.mark.parametrize(("status", "outcome"), [(429, RetryLater), (403, Blocked), (400, Refused), (502, RetryLater)])
async def test_refusals_through_the_raw_calls_still_map_to_the_workers_outcomes(env, status, outcome):
    api, bot = env
    sender = TelegramSender(bot)
    api.fail_next("sendMessage", status=status, retry_after=3 if status == 429 else None)
    with pytest.raises(outcome) as caught:
        await sender.reply(row(Say("hello", CHOICES)))
    if status == 429:
        assert caught.value.flood and caught.value.seconds == 3
    api.fail_next("sendMessage", status=status)
    with pytest.raises(outcome):
        await sender.send(str(ASHA), Say("hello"))
    assert api.messages(ASHA) == []


async def test_ptb_errors_come_from_the_raw_calls_unchanged(env):
    api, bot = env
    api.fail_next("sendMessage", status=429, retry_after=2)
    with pytest.raises(RetryAfter):
        await tg.send_text(bot, ASHA, "hi")
    api.block(ASHA)
    with pytest.raises(Forbidden):
        await tg.send_text(bot, ASHA, "hi")
    api.unblock(ASHA)
    with pytest.raises(BadRequest):
        await tg.send_text(bot, ASHA, "<b>broken")
    with pytest.raises(BadRequest):
        await tg.answer_tap(bot, "no-such-query")
    api.timeout_next("sendMessage", delay=2.0)
    with pytest.raises(TimedOut):
        await tg.send_text(bot, ASHA, "hi")
    sent = await tg.send_text(bot, ASHA, "fine")
    assert isinstance(sent, dict) and sent["text"] == "fine"


async def test_a_timed_out_send_is_retried_later_and_an_old_edit_is_only_logged(env):
    api, bot = env
    sender = TelegramSender(bot)
    api.timeout_next("sendMessage", delay=2.0)
    with pytest.raises(RetryLater):
        await sender.reply(row(Say("hello")))
    # marking an answer on a message that is gone: cosmetic, never an error
    assert await sender.reply(row(output=Picked("Yes"), reply_to=Tapped("999", "Q"))) is None
    # the broadcast status edit: "not modified" is fine, a blocked admin is Blocked
    ref = await sender.send(str(ASHA), Say("📣 status"))
    await sender.edit(str(ASHA), ref, Say("📣 status"))
    api.block(ASHA)
    with pytest.raises(Blocked):
        await sender.edit(str(ASHA), ref, Say("📣 status 2"))


def test_a_polled_batch_keeps_each_updates_json_and_an_odd_update_becomes_a_bare_one():
    from bot.channels.telegram_polling import inbox_item, parse_batch

    bot = Bot("1:x")
    tap = {"update_id": 7, "callback_query": {"id": "9", "from": {"id": ASHA, "is_bot": False, "first_name": "Asha"},
                                               "chat_instance": "1", "data": "s:3:yes",
                                               "message": {"message_id": 3, "date": 1, "chat": {"id": ASHA, "type": "private"},
                                                           "text": "About someone else", "reply_markup": {"inline_keyboard": []}}}}
    odd = {"update_id": 8, "message": {"message_id": 4, "date": 1, "chat": "not a chat"}}
    assert parse_batch(bot, True) == [] and parse_batch(bot, []) == []
    [(first, raw), (second, none)] = parse_batch(bot, [tap, odd, {"no": "id"}])
    assert first.callback_query.data == "s:3:yes" and raw is tap
    assert second.update_id == 8 and second.message is None and none is None
    stored = json.loads(inbox_item(first, raw).payload)
    assert stored == json.loads(inbox_item(first).payload)  # the same as from PTB's objects, without building them
    assert "text" not in stored["callback_query"]["message"]
    assert json.loads(inbox_item(second, none).payload) == {"update_id": 8}


async def test_the_channel_renders_a_tap_directly_through_the_raw_calls(env):
    """Without a reply queue the channel renders a turn itself: answer the tap (with its toast),
    mark the tapped question, send the next one."""
    from types import SimpleNamespace

    from bot.channels.telegram import TelegramChannel
    from bot.core.messages import Toast
    from bot.services.conversation import Reply

    api, bot = env
    asked = await tg.send_text(bot, ASHA, "<b>Q1</b>", markup_json(CHOICES, 1))
    api.tap(ASHA, asked["message_id"], "s:3:yes")
    [update] = await bot.get_updates(timeout=1)
    query = update.callback_query
    channel = TelegramChannel(SimpleNamespace(inbox=None, texts=SimpleNamespace(gettext=lambda lang, text: text)))
    reply = Reply([Toast("Saved"), Picked("✅ Yes"), Say("<b>Q2</b>", CHOICES[1:], columns=2)], "en", 1, [])
    await channel.render(bot, ASHA, reply, query.message, query)
    assert api.callback_answers[-1].text == "Saved"
    assert api.message(ASHA, asked["message_id"]).text == "Q1\n\n✅ Yes"
    q2 = api.last_message(ASHA)
    assert q2.text == "Q2" and [d for _, d in q2.buttons] == ["s:3:no", "s:3:later"]
    assert api.refusals == []
