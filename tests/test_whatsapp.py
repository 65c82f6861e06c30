"""The WhatsApp channel end to end: the real webhook app and Graph API client over HTTP against
the Cloud API stand-in, a real SQLite file, and the delivery worker for the outbox.

Each test plays phone users (signed webhook notifications: taps on reply buttons and list rows,
typing), then checks what they were sent (language, WhatsApp formatting, buttons and lists
within WhatsApp's limits), what was stored, and that the stand-in refused nothing.
"""

from __future__ import annotations

import asyncio

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.whatsapp import (
    CHOOSE,
    MORE,
    MORE_BODY,
    GraphClient,
    Renderer,
    WhatsAppSender,
    to_whatsapp,
)
from bot.config import ConfigError, Settings
from bot.runtime import BotProcess
from bot.core.messages import Choice, Say
from bot.core.reminders import SILENCE
from bot.services.clock import ManualClock
from bot.services.delivery import Blocked, Refused, RetryLater
from bot.storage.outbox import Outgoing
from bot.templates import load_templates
from tests.test_e2e_onboarding import TYPED_EN, TYPED_EN_PROFILE, assert_hindi
from tests.test_reminders import START
from tests.whatsapp_standin import Sent, WhatsAppStandin, check

pytestmark = [pytest.mark.timeout(60)]

VERIFY_TOKEN = "saathi-verify-7d1f"
EARLIER = "That button is from an earlier message. Please use the latest one."
STATE_IDS = [
    "andhra_pradesh", "arunachal_pradesh", "assam", "bihar", "chhattisgarh", "goa", "gujarat", "haryana", "himachal_pradesh",
    "jharkhand", "karnataka", "kerala", "madhya_pradesh", "maharashtra", "manipur", "meghalaya", "mizoram", "nagaland",
    "odisha", "punjab", "rajasthan", "sikkim", "tamil_nadu", "telangana", "tripura", "uttar_pradesh", "uttarakhand",
    "west_bengal", "andaman_nicobar", "chandigarh", "dnh_dd", "delhi", "jammu_kashmir", "ladakh", "lakshadweep", "puducherry",
]

# How each onboarding question reaches a phone: up to 3 short choices as reply buttons, up to 10
# as a list, more as a paged list; the phone question offers the sender's own number as a button.
LAYOUT = {
    "language": "button", "consent": "button", "state": "list", "sector": "list", "udyam": "button", "iec": "button",
    "gst": "button", "experience": "button", "turnover": "list", "markets": "list", "phone": "button",
}


@dataclass
class Harness:
    """The stand-in, the app and the running webhook of one test."""

    api: WhatsAppStandin
    app: App
    client: GraphClient
    clock: ManualClock

    def tr(self, lang: str, msgid: str, **values: object) -> str:
        """``msgid`` in ``lang`` as WhatsApp shows it."""
        text = self.app.texts.gettext(lang, msgid)
        return to_whatsapp(text.format(**values) if values else text)

    def option(self, lang: str, step_id: str, option_id: str) -> str:
        """The label of an onboarding option in ``lang`` (amounts in Indian style)."""
        option = self.app.engine.flow.step(step_id).option(option_id)
        label = self.app.texts.gettext(lang, option.label)
        return label.format(**{k: self.app.texts.money(lang, v) for k, v in option.amounts}) if option.amounts else label

    def expect(self, wa_id: str, lang: str, step_id: str) -> Sent:
        """The bot's last new message to ``wa_id`` asks ``step_id`` in ``lang``."""
        new = self.api.new_messages(wa_id)
        assert new, f"nothing sent to {wa_id} (refusals: {self.api.refusals})"
        question = new[-1]
        asked = self.tr(lang, self.app.engine.flow.step(step_id).text).strip()
        assert question.text.lstrip("*").startswith(asked.lstrip("*")[:60]), (step_id, question.text)
        return question

    async def user(self, wa_id: str) -> dict:
        row = await self.app.db.fetchone("SELECT * FROM users WHERE channel = 'whatsapp' AND user_ref = ?", (wa_id,))
        assert row is not None
        return dict(row)


def approved_templates() -> dict[str, dict[str, str]]:
    """The templates of conversations/templates.yaml, as if all were approved in WhatsApp Manager."""
    return {t.name: {v.code: v.body for v in t.versions.values()} for t in load_templates().templates.values()}


ADMIN_ID = 111222333


@pytest.fixture
async def wa(tmp_path: Path) -> AsyncIterator[Harness]:
    """The real app on a fresh database, its WhatsApp webhook served on 127.0.0.1.

    The stand-in keeps WhatsApp's 24-hour window by the test's clock, and knows the project's
    templates as approved."""
    clock = ManualClock(START)
    async with WhatsAppStandin(clock=clock.now, approved=approved_templates()) as api:
        settings = Settings(
            database_path=tmp_path / "bot.sqlite3", whatsapp_token=api.token, whatsapp_phone_number_id=api.phone_number_id,
            whatsapp_app_secret=api.app_secret, whatsapp_verify_token=VERIFY_TOKEN, whatsapp_api_base_url=api.base_url,
            webhook_listen="127.0.0.1", whatsapp_port=0, admin_ids=frozenset({ADMIN_ID}),
        )
        # As ``saathi run`` starts WhatsApp alone (the runtime's replies worker; the tests drain the outbox themselves)
        process = BotProcess(settings, clock=clock, background=False)
        await process.start()
        host, port = process.whatsapp_runner.addresses[0][:2]
        api.webhook_url = f"http://{host}:{port}/whatsapp"
        try:
            yield Harness(api, process.app, process.whatsapp.client, clock)
        finally:
            await process.stop()


def assert_whatsapp_text(sent: list[Sent]) -> None:
    """No chat HTML reached WhatsApp: no tags, no entities."""
    for message in sent:
        assert not re.search(r"</?[bi]>|&(amp|lt|gt|quot|#\d+);", message.text), message.text
        for option in message.options:
            assert not re.search(r"</?[bi]>|&(amp|lt|gt);", option["title"]), option


async def page_through(wa: Harness, wa_id: str, first: Sent, lang: str) -> list[Sent]:
    """Every page of a long list, tapping "More…" from ``first`` on."""
    pages, page = [first], first
    more = wa.tr(lang, MORE)
    while more in page.titles:
        assert page.titles[-1] == more and len(page.options) == 10
        assert await wa.api.tap(wa_id, page, more) == 200
        [page] = wa.api.new_messages(wa_id)
        pages.append(page)
    return pages


# ----------------------------------------------------------------- onboarding
async def test_an_owner_onboards_in_hindi_by_tapping_buttons_and_list_rows(wa: Harness):
    api, hi = wa.api, "hi"
    me = "919876543210"
    assert await api.send_text(me, "नमस्ते") == 200
    language = wa.expect(me, hi, "language")
    assert language.kind == "button" and language.titles == ["हिन्दी ✓", "English"]
    await api.tap(me, language, "हिन्दी ✓")

    consent = wa.expect(me, hi, "consent")
    assert consent.kind == "button"
    assert_hindi(consent.text)
    await api.tap(me, consent, wa.option(hi, "consent", "yes"))
    wa.expect(me, hi, "owner_name")
    await api.send_text(me, "रमेश")
    wa.expect(me, hi, "business_name")
    await api.send_text(me, "रमेश ब्रास & संस")

    # 36 states: a list in pages of nine, "और देखें…" naming the states that come next.
    states = wa.expect(me, hi, "state")
    assert states.kind == "list" and states.list_button == wa.tr(hi, CHOOSE) == "चुनें"
    assert states.titles[-1] == "और देखें…"
    assert states.options[-1]["description"].startswith(wa.option(hi, "state", "jharkhand"))
    pages = await page_through(wa, me, states, hi)
    assert len(pages) == 4
    assert pages[2].text == wa.tr(hi, MORE_BODY, first=wa.app.texts.number(hi, 19), last=wa.app.texts.number(hi, 27),
                                  total=wa.app.texts.number(hi, 36))
    await api.tap(me, pages[2], wa.option(hi, "state", "uttar_pradesh"))

    wa.expect(me, hi, "district")
    await api.send_media(me, "sticker")  # not text: the bot says so and asks again
    notice, again = api.new_messages(me)
    assert notice.text == wa.tr(hi, "I can only read text and buttons. Please type your answer or tap a button.")
    assert again.text == wa.tr(hi, wa.app.engine.flow.step("district").text)
    await api.send_text(me, "मुरादाबाद")

    sectors = wa.expect(me, hi, "sector")
    assert sectors.kind == "list" and len(sectors.options) == 10  # twelve sectors: nine and "more"
    await api.tap(me, sectors, wa.option(hi, "sector", "handicrafts"))
    for step_id, option_id in (("udyam", "yes"), ("iec", "not_sure"), ("gst", "yes"), ("experience", "never")):
        question = wa.expect(me, hi, step_id)
        assert question.kind == "button", step_id
        await api.tap(me, question, wa.option(hi, step_id, option_id))
    turnover = wa.expect(me, hi, "turnover")
    assert turnover.kind == "list" and len(turnover.options) == 4
    await api.tap(me, turnover, wa.option(hi, "turnover", "upto_1_5_crore"))

    # Several markets: each tap sends the list again with ticks (WhatsApp cannot edit it).
    markets = wa.expect(me, hi, "markets")
    await api.tap(me, markets, wa.option(hi, "markets", "europe"))
    [markets] = api.new_messages(me)
    assert "✅ " + wa.option(hi, "markets", "europe") in markets.titles
    await api.tap(me, markets, wa.option(hi, "markets", "middle_east"))
    [markets] = api.new_messages(me)
    await api.tap(me, markets, wa.tr(hi, "Done"))

    # The phone question offers the number this WhatsApp account belongs to.
    phone = wa.expect(me, hi, "phone")
    assert phone.kind == "button" and phone.titles == ["📱 +91 98765 43210"]
    await api.tap(me, phone, "📱 +91 98765 43210")
    summary = wa.expect(me, hi, "summary")
    assert "रमेश ब्रास & संस" in summary.text and "+91 98765 43210" in summary.text
    assert summary.text.startswith("*")  # the bold title, in WhatsApp's own formatting
    await api.tap(me, summary, wa.tr(hi, "Confirm"))
    thanks, menu = api.new_messages(me)
    assert thanks.text.startswith(wa.tr(hi, "Thank you, {name}! Your profile is saved.", name="रमेश")[:20])
    assert menu.kind == "list" and [o["id"] for o in menu.options][0] == "go:export_ready"

    user = await wa.user(me)
    assert json.loads(user["profile"]) == {
        "owner_name": "रमेश", "business_name": "रमेश ब्रास & संस", "state": "uttar_pradesh", "district": "मुरादाबाद",
        "sector": "handicrafts", "udyam": "yes", "iec": "not_sure", "gst": "yes", "experience": "never",
        "turnover": "upto_1_5_crore", "markets": ["middle_east", "europe"], "phone": "+919876543210",
    }
    assert (user["lang"], user["consent"]) == ("hi", "given") and user["onboarded_at"] is not None
    everything = api.messages(me)
    for message in everything:
        assert_hindi(message.text)
    assert_whatsapp_text(everything)
    assert api.refusals == []


async def test_an_owner_onboards_in_english_by_typing(wa: Harness):
    api, en = wa.api, "en"
    me = "919812345678"
    await api.send_text(me, "Hi")
    for step_id, text in TYPED_EN:
        question = wa.expect(me, "hi" if step_id == "language" else en, step_id)
        assert question.kind == LAYOUT.get(step_id, "text"), step_id
        assert await api.send_text(me, text) == 200
    summary = wa.expect(me, en, "summary")
    assert "Asha Crafts & Sons" in summary.text
    await api.send_text(me, "1")
    thanks, menu = api.new_messages(me)
    assert thanks.text == wa.tr(en, "Thank you, {name}! Your profile is saved.", name="Asha Devi")
    assert menu.list_button == "Choose"
    user = await wa.user(me)
    assert json.loads(user["profile"]) == TYPED_EN_PROFILE
    assert (user["lang"], user["consent"]) == ("en", "given") and user["onboarded_at"] is not None
    assert_whatsapp_text(api.messages(me))
    assert api.refusals == []


async def test_each_message_is_marked_read_with_the_typing_indicator_while_its_turn_runs(wa: Harness):
    api = wa.api
    me = "919812345679"
    assert await api.send_text(me, "Hi", message_id="wamid.in.hi-1") == 200
    assert await api.send_text(me, "2", message_id="wamid.in.lang-1") == 200  # English
    for _ in range(50):
        if len(api.read_marks) == 2:
            break
        await asyncio.sleep(0.02)
    assert api.read_marks == [("wamid.in.hi-1", True), ("wamid.in.lang-1", True)]  # blue ticks, "typing…"
    assert [m.kind for m in api.messages(me)] and api.refusals == []  # a read mark is not a message: no window, no reply
    assert await api.send_text(me, "2", message_id="wamid.in.lang-1") == 200  # delivered again: handled once …
    await asyncio.sleep(0.1)
    assert len(api.read_marks) == 2  # … and not marked again


async def test_the_36_state_question_shows_every_state_once_and_old_pages_are_recognised(wa: Harness):
    api, en = wa.api, "en"
    me = "917700112233"
    await api.send_text(me, "Hi")
    for text in ("2", "yes", "Asha", "Asha Crafts"):
        await api.send_text(me, text)
    first = wa.expect(me, en, "state")
    assert first.list_button == "Choose" and first.titles[-1] == "More…"
    assert first.options[-1]["description"] == "Jharkhand, Karnataka, Kerala, Madhya Pradesh, Maharashtra, Manipur…"
    pages = await page_through(wa, me, first, en)
    assert [p.text for p in pages[1:]] == ["More choices: 10–18 of 36", "More choices: 19–27 of 36", "More choices: 28–36 of 36"]
    rows = [o for p in pages for o in p.options if not o["id"].startswith("wa.more:")]
    assert [o["id"].split(":", 1)[1] for o in rows] == STATE_IDS  # every state once, in order
    assert all(len(o["title"]) <= 24 for o in rows)
    cut = pages[3].option("Dadra NH & Daman Diu")  # fits; a longer label would continue in the description
    assert cut["title"] == "Dadra NH & Daman Diu"

    await api.tap(me, pages[3], "Puducherry")  # a state on the last page answers the question
    wa.expect(me, en, "district")
    await api.tap(me, first, "More…")  # paging an answered question
    await api.tap(me, pages[1], "Kerala")  # a row of an old page
    assert [m.text for m in api.new_messages(me)] == [EARLIER, EARLIER]
    assert json.loads((await wa.user(me))["profile"])["state"] == "puducherry"
    assert api.refusals == []


# ----------------------------------------------------------------- the webhook's defences
async def test_a_forged_or_missing_signature_is_refused_and_nothing_is_stored(wa: Harness):
    api = wa.api
    note = api.notification("919811122233", {"id": "wamid.forged", "type": "text", "text": {"body": "Hi"}})
    body = json.dumps(note).encode()
    assert await api.post(body, signature=None) == 403
    assert await api.post(body, signature=api.sign(body, secret="not-the-app-secret")) == 403
    assert await api.post(body, signature=api.sign(body + b" ")) == 403  # signed, then changed
    assert await api.post(body, signature="sha1=" + api.sign(body)[7:]) == 403
    assert await api.post(b"{not json", signature=api.sign(b"{not json")) == 400
    assert (await wa.app.db.fetchone("SELECT COUNT(*) FROM users"))[0] == 0
    assert (await wa.app.db.fetchone("SELECT COUNT(*) FROM seen_updates"))[0] == 0
    assert api.sent == []

    assert await api.post(body) == 200  # the same notification, signed by Meta
    assert (await wa.app.db.fetchone("SELECT COUNT(*) FROM users"))[0] == 1
    assert len(api.sent) == 1


async def test_the_verification_handshake_needs_the_verify_token(wa: Harness):
    assert await wa.api.verify(token=VERIFY_TOKEN, challenge="84213") == (200, "84213")
    assert (await wa.api.verify(token="guess", challenge="84213"))[0] == 403
    assert (await wa.api.verify(mode="unsubscribe", token=VERIFY_TOKEN))[0] == 403


async def test_a_message_delivered_twice_is_handled_once(wa: Harness):
    api = wa.api
    me = "919800000001"
    await api.send_text(me, "Hi", message_id="wamid.first")
    wa.expect(me, "hi", "language")
    assert await api.send_text(me, "Hi", message_id="wamid.first") == 200
    assert api.new_messages(me) == []
    await api.send_text(me, "2", message_id="wamid.second")
    wa.expect(me, "en", "consent")
    await api.send_text(me, "2", message_id="wamid.second")  # Meta retries the same message
    assert api.new_messages(me) == []
    seen = await wa.app.db.fetchall("SELECT update_id FROM seen_updates WHERE channel = 'whatsapp' ORDER BY update_id")
    assert [r[0] for r in seen] == ["wamid.first", "wamid.second"]
    assert (await wa.user(me))["lang"] == "en"


async def test_one_bad_message_in_a_batch_does_not_cost_the_others_their_answers(wa: Harness):
    api = wa.api
    first, odd, last = "919800000011", "919800000012", "919800000013"
    payload = api.notification(first, {"id": "wamid.b1", "type": "text", "text": {"body": "Hi"}})
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] += [
        # a list reply whose id is not one of ours, and a message of a shape nobody expected
        {"from": odd, "id": "wamid.b2", "timestamp": "1", "type": "interactive",
         "interactive": {"type": "list_reply", "list_reply": {"id": "9" * 300, "title": "?"}}},
        {"from": odd, "id": "wamid.b3", "timestamp": "1", "type": "text", "text": ["not", "an", "object"]},
        {"from": last, "id": "wamid.b4", "timestamp": "1", "type": "text", "text": {"body": "Hello"}},
    ]
    assert await api.post(payload) == 200
    wa.expect(first, "hi", "language")
    wa.expect(last, "hi", "language")
    await wa.app.inbox.flush()
    assert await wa.app.inbox.count() == 0  # handled messages, the odd ones included, leave the inbox
    assert api.refusals == []
    # Meta delivers the same batch again (it saw a timeout): nobody is answered twice
    assert await api.post(payload) == 200
    assert api.new_messages(first) == [] and api.new_messages(last) == []


async def test_a_batch_the_database_cannot_store_gets_503_so_meta_delivers_it_again(wa: Harness):
    api = wa.api
    me = "919800000021"
    await wa.app.db.conn.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(wa.app.settings.database_path)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert await api.send_text(me, "Hi", message_id="wamid.locked") == 503
        assert api.new_messages(me) == []
    finally:
        blocker.rollback()
        blocker.close()
    assert await api.send_text(me, "Hi", message_id="wamid.locked") == 200  # Meta's retry
    wa.expect(me, "hi", "language")


# ----------------------------------------------------------------- the outbox
async def test_a_reminder_in_the_outbox_reaches_a_whatsapp_owner(wa: Harness):
    api, app = wa.api, wa.app
    me = "919811111111"
    await api.send_text(me, "Hi")
    for _, text in TYPED_EN:
        await api.send_text(me, text)
    await api.send_text(me, "1")
    menu = api.new_messages(me)[-1]
    module = app.engine.content.module("export_ready")
    await api.tap(me, menu, next(o["title"] for o in menu.options if o["id"] == "go:export_ready"))
    lesson = api.new_messages(me)[-1]
    assert lesson.text.startswith(f"*{module.title}")

    # 48 hours of silence: past WhatsApp's 24-hour window, so the reminder goes as its approved template
    wa.clock.advance(SILENCE)
    assert await app.reminders.run_once() == 1
    worker = app.delivery({"whatsapp": WhatsAppSender(wa.client, app.texts)})
    api.fail_next(status=400, code=130429, message="Rate limit hit")  # WhatsApp's throughput limit first
    assert await worker.drain() == 1
    assert worker.stats.flood_waits == 1 and api.new_messages(me) == []
    row = await app.db.fetchone("SELECT status, attempts FROM outbox WHERE kind = 'reminder'")
    assert row["status"] == "pending"
    wa.clock.advance(5)
    assert await worker.drain() == 1
    [reminder] = api.new_messages(me)
    assert (reminder.kind, reminder.template_name, reminder.template_lang) == ("template", "module_reminder", "en")
    assert reminder.template_params == ["Asha Devi", module.title] and reminder.payload == "go:export_ready"
    assert reminder.text.startswith(f"Hello Asha Devi, you were learning “{module.title}”")
    row = await app.db.fetchone("SELECT status, message_ref, template FROM outbox WHERE kind = 'reminder'")
    assert (row["status"], row["message_ref"], row["template"]) == ("sent", reminder.id, "module_reminder")

    await api.tap_template(me, reminder)  # the template's "Continue" button
    [reopened] = api.new_messages(me)
    assert reopened.text == lesson.text  # the lesson they stopped at
    assert api.refusals == []


@pytest.mark.parametrize(
    ("status", "code", "outcome", "flood"),
    [
        (429, 4, RetryLater, True),  # app-level rate limit
        (400, 130429, RetryLater, True),  # throughput
        (400, 131056, RetryLater, False),  # too many messages to this user: only this row waits
        (503, 131016, RetryLater, False),
        (400, 131047, Refused, None),  # 24 hours since the user last wrote: only templates may go
        (400, 131026, Blocked, None),  # not deliverable (e.g. the user blocked the business)
        (400, 131009, Refused, None),
    ],
)
async def test_graph_api_errors_become_the_delivery_workers_outcomes(wa: Harness, status, code, outcome, flood):
    sender = WhatsAppSender(wa.client, wa.app.texts)
    wa.api.window_open("919822222222")  # the user wrote a moment ago
    wa.api.fail_next(status=status, code=code, retry_after=7 if status == 429 else None)
    with pytest.raises(outcome) as caught:
        await sender.send("919822222222", Say("Hello"))
    if flood is not None:
        assert caught.value.flood is flood
    if status == 429:
        assert caught.value.seconds == 7
    assert await sender.send("919822222222", Say("Hello")) is not None  # the next one goes through
    assert [m.text for m in wa.api.sent] == ["Hello"]


async def test_a_user_who_cannot_be_reached_is_marked_blocked(wa: Harness):
    api, app = wa.api, wa.app
    me = "919833333333"
    await api.send_text(me, "Hi")
    user = await wa.user(me)
    await app.outbox.enqueue([Outgoing("whatsapp", me, "notice", Say("News"), user_id=user["id"])], int(wa.clock.now()))
    api.fail_next(code=131026, message="Message undeliverable")
    await app.delivery({"whatsapp": WhatsAppSender(wa.client)}).drain()
    assert (await app.db.fetchone("SELECT status FROM outbox"))[0] == "blocked"
    assert (await wa.user(me))["blocked_at"] is not None


# ----------------------------------------------------------------- rendering
def test_chat_html_becomes_whatsapp_formatting():
    assert to_whatsapp("<b>Your details </b>\n• Business: A &amp; B &lt;3") == "*Your details* \n• Business: A & B <3"
    assert to_whatsapp("<b>Two\nlines</b> and <i>this</i>") == "*Two*\n*lines* and _this_"
    assert to_whatsapp("<b><i>both</i></b>") == "*_both_*"


def test_what_does_not_fit_is_laid_out_within_whatsapps_limits(catalogs):
    render = Renderer(catalogs, "en").messages
    long_text = "\n".join(f"Line {i}: " + "x" * 90 for i in range(60))  # ~6000 characters
    pieces = render(Say(long_text))
    assert [m["type"] for m in pieces] == ["text", "text"]
    assert "".join(m["text"]["body"] for m in pieces).replace("\n", "") == long_text.replace("\n", "")

    yes_no = (Choice("1:yes", "Yes"), Choice("1:no", "No"))
    asked = render(Say("Q" * 1500, yes_no))
    assert [m["type"] for m in asked] == ["text", "interactive"]
    assert asked[1]["interactive"]["type"] == "button" and len(asked[1]["interactive"]["body"]["text"]) <= 1024
    assert len(asked[0]["text"]["body"]) + len(asked[1]["interactive"]["body"]["text"]) == 1500

    wordy = (Choice("1:a", "A label far too long for a button"), Choice("1:b", "Short"))
    assert render(Say("Pick", wordy))[0]["interactive"]["type"] == "list"
    twins = (Choice("1:a", "Same"), Choice("1:b", "Same"))
    assert render(Say("Pick", twins))[0]["interactive"]["type"] == "list"
    long_row = render(Say("Pick", (Choice("1:c", "An option with a label of forty characters"), *wordy)))
    row = long_row[0]["interactive"]["action"]["sections"][0]["rows"][0]
    assert row["title"] == "An option with a label…" and row["description"] == "An option with a label of forty characters"
    for message in [*pieces, *asked, *long_row]:
        assert check({"messaging_product": "whatsapp", "to": "1", **message}) is None


def test_whatsapp_settings_are_checked_and_secrets_kept_out_of_repr():
    env = {
        "WHATSAPP_TOKEN": "EAAG-secret-token", "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_APP_SECRET": "app-secret-123", "WHATSAPP_VERIFY_TOKEN": "verify-456",
    }
    settings = Settings.from_env(env, env_file=None)
    assert (settings.whatsapp_phone_number_id, settings.whatsapp_api_base_url) == ("106540352242922", "https://graph.facebook.com/v21.0")
    assert not any(secret in repr(settings) for secret in ("EAAG-secret-token", "app-secret-123", "verify-456"))
    with pytest.raises(ConfigError, match="WHATSAPP_APP_SECRET"):
        Settings.from_env({**env, "WHATSAPP_APP_SECRET": ""}, env_file=None)
    with pytest.raises(ConfigError, match="WHATSAPP_PHONE_NUMBER_ID"):
        Settings.from_env({**env, "WHATSAPP_PHONE_NUMBER_ID": "+91 98765"}, env_file=None)


async def test_the_certificate_reaches_a_whatsapp_owner_as_an_uploaded_image(wa: Harness):
    from tests.test_leads_e2e import right_answer, seed_owner

    me = "919822222222"
    await seed_owner(wa.app, int(me), lang="hi", channel="whatsapp")  # on the last question of the third core module
    await wa.api.send_text(me, right_answer(wa.app, "alibaba"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    images: list[Sent] = []
    while not images and loop.time() < deadline:
        await asyncio.sleep(0.05)
        images = [m for m in wa.api.messages(me) if m.kind == "image"]
    [image] = images
    assert "आपका सर्टिफ़िकेट" in image.text and "/verify " in image.text
    mime, data = wa.api.media[image.body["image"]["id"]]
    assert mime == "image/png" and data.startswith(b"\x89PNG")
    assert wa.api.refusals == []


def test_a_startups_leads_page_pages_on_whatsapp_and_more_finds_it(catalogs):
    """/leads shows five leads, ◀ ▶ and six filters: 13 rows, more than a WhatsApp list holds."""
    from bot.channels.whatsapp import LongLists, digest
    from bot.core import payloads

    leads = [Choice(payloads.LeadAction(n, "view").encode(), f"#{n} Lead {n}") for n in range(41, 46)]
    paging = [Choice(payloads.LeadPage("all", 0).encode(), "◀"), Choice(payloads.LeadPage("all", 2).encode(), "▶")]
    filters = [Choice(payloads.LeadPage(name, 0).encode(), name.title()) for name in
               ("offered", "accepted", "contacted", "listed", "first_order", "lost")]
    page = Say("<b>Leads</b>", tuple(leads + paging + filters))
    lists, renderer = LongLists(), Renderer(catalogs, "en")
    lists.remember("IN.1648738043044942", page, "en")
    first = renderer.messages(page)[-1]["interactive"]["action"]["sections"][0]["rows"]
    assert len(first) == 10 and first[-1]["title"] == "More…"
    found = lists.find("IN.1648738043044942", digest(page.choices))
    assert found is not None, "More… on a /leads page must find the page"
    rest = renderer.messages(found[0], page=1)[-1]["interactive"]["action"]["sections"][0]["rows"]
    assert [r["title"] for r in rest] == ["Contacted", "Listed", "First_Order", "Lost"]  # rows 10-13
    # the owner conversation's own long lists are the conversation's to find, not kept here
    states = Say("State?", tuple(Choice(payloads.Step(3, f"s{n}").encode(), f"State {n}") for n in range(36)))
    lists.remember("IN.1648738043044942", states, "en")
    assert lists.find("IN.1648738043044942", digest(states.choices)) is None
