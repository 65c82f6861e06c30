"""Onboarding end to end: the real PTB Application over HTTP against the Bot API stand-in.

Each test plays one or more phone users (taps and typing), then checks what they saw (language,
edits, buttons, pop-ups), what was stored in the SQLite file, and that the stand-in refused
nothing the bot sent.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.render import plain
from bot.channels.telegram import SHARE_NUMBER
from bot.core.content import Step
from bot.services.clock import ManualClock
from tests.botapi_standin import BotApiStandin, BotMessage
from tests.e2e_support import running_bot

pytestmark = [
    pytest.mark.timeout(60),
    # PTB 22 warns about its own future timedelta fields; that noise is not ours.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

DEVANAGARI = re.compile(r"[\u0900-\u097F]")
# Four or more Latin words in a row: an English sentence left in a Hindi message. (Official names
# the Hindi keeps in Latin letters, "IEC", "Importer-Exporter Code", are shorter than that.)
ENGLISH_RUN = re.compile(r"[A-Za-z]+(?:[ ,']+[A-Za-z]+){3,}")
EARLIER = "That button is from an earlier message. Please use the latest one."
QUIET = 0.2


# ----------------------------------------------------------------- helpers shared with the training tests
def assert_hindi(text: str | None) -> None:
    """``text`` is written in Hindi: Devanagari, and no English sentence in it."""
    assert text and DEVANAGARI.search(text), text
    assert not ENGLISH_RUN.search(text), f"English left in a Hindi message: {ENGLISH_RUN.search(text).group()!r} in {text!r}"


def shown(html_text: str) -> str:
    """What a user sees for chat HTML (tags gone, entities decoded, trimmed as Telegram does)."""
    return plain(html_text).strip()


def asked(app: App, lang: str, step_id: str) -> str:
    """The visible start of the question the bot asks for ``step_id`` in ``lang``."""
    return shown(app.texts.gettext(lang, app.engine.flow.step(step_id).text))


def step(app: App, step_id: str) -> Step:
    """An onboarding step of the shipped flow."""
    return app.engine.flow.step(step_id)


async def next_message(api: BotApiStandin, uid: int) -> BotMessage:
    """The next message the bot sends to ``uid``."""
    [message] = await api.wait_for_messages(uid, 1)
    return message


async def expect_question(api: BotApiStandin, app: App, uid: int, lang: str, step_id: str) -> BotMessage:
    """The next message is the question of ``step_id`` in ``lang``."""
    message = await next_message(api, uid)
    assert message.text is not None and message.text.startswith(asked(app, lang, step_id)), (step_id, message.text)
    return message


async def expect_contact_keyboard_removed(api: BotApiStandin, app: App, uid: int, lang: str) -> BotMessage:
    """After the phone answer the bot takes the share-number keyboard away (ReplyKeyboardRemove)."""
    message = await next_message(api, uid)
    assert message.text == "✅ " + app.texts.gettext(lang, "Done"), message.text
    assert message.reply_markup == {"remove_keyboard": True}
    return message


async def profile_row(app: App, uid: int):
    """The user's stored row (profile, consent, referral, state...)."""
    row = await app.db.fetchone(
        "SELECT id, lang, state, profile, consent, consent_version, consent_lang, onboarded_at, referral_code "
        "FROM users WHERE channel = 'telegram' AND user_ref = ?",
        (str(uid),),
    )
    assert row is not None, f"user {uid} was never stored"
    return row


async def stored_profile(app: App, uid: int) -> dict:
    """The user's stored onboarding answers."""
    return json.loads((await profile_row(app, uid))["profile"])


async def assert_quiet(api: BotApiStandin, *uids: int) -> None:
    """The bot has nothing more to say to these users and refused nothing."""
    await api.wait_idle(quiet=QUIET)
    for uid in uids:
        assert api.new_messages(uid) == [], f"unexpected extra messages to {uid}"
    assert api.refusals == []


# Typed answers that complete onboarding for an English user, and the profile they give.
TYPED_EN = [
    ("language", "2"),
    ("consent", "haan"),
    ("owner_name", "Asha Devi"),
    ("business_name", "Asha Crafts & Sons"),
    ("state", "rajasthan"),
    ("district", "Jaipur"),
    ("sector", "3"),
    ("udyam", "१"),
    ("iec", "३"),
    ("gst", "haan"),
    ("experience", "2"),
    ("turnover", "४"),
    ("markets", "1, 3"),
    ("phone", "098765 43210"),
]
TYPED_EN_PROFILE = {
    "owner_name": "Asha Devi",
    "business_name": "Asha Crafts & Sons",
    "state": "rajasthan",
    "district": "Jaipur",
    "sector": "leather",
    "udyam": "yes",
    "iec": "not_sure",
    "gst": "yes",
    "experience": "occasionally",
    "turnover": "above_10_crore",
    "markets": ["middle_east", "north_america"],
    "phone": "+919876543210",
}


async def onboard_by_typing(
    api: BotApiStandin, app: App, uid: int, answers: list[tuple[str, str]] = TYPED_EN, lang: str = "en"
) -> None:
    """Take ``uid`` through onboarding by typing only, checking each question, and confirm.

    ``answers`` start at the language step; the language chosen there must be ``lang``.
    Leaves the chat's cursor after the module menu.
    """
    api.send_text(uid, "/start")
    for step_id, text in answers:
        await expect_question(api, app, uid, lang, step_id)
        api.send_text(uid, text)
        if step_id == "phone":
            await expect_contact_keyboard_removed(api, app, uid, lang)
    await expect_question(api, app, uid, lang, "summary")
    api.send_text(uid, "1")
    thanks, menu = await api.wait_for_messages(uid, 2)
    assert "go:export_ready" in [data for _, data in menu.buttons], menu.text


@dataclass
class Harness:
    """The stand-in and the running bot of one test."""

    api: BotApiStandin
    app: App
    clock: ManualClock
    db_path: Path


@pytest.fixture
async def bot(tmp_path: Path, store: dict) -> AsyncIterator[Harness]:
    """The real bot on a fresh database (SQLite, then PostgreSQL), talking to a fresh stand-in."""
    clock = ManualClock()
    db_path = store["database_path"]
    async with BotApiStandin() as api, running_bot(api, db_path, clock=clock, database_url=store.get("database_url", "")) as running:
        yield Harness(api, running.app, clock, db_path)


# ----------------------------------------------------------------- the tests
async def test_hindi_owner_onboards_with_buttons_and_typing(bot: Harness):
    api, app = bot.api, bot.app
    hi = lambda msgid: app.texts.gettext("hi", msgid)  # noqa: E731
    uid = 101
    api.add_user(uid, first_name="Ramesh", language_code="hi")
    taps = 0

    async def tap(message: BotMessage, label: str, next_step: str, picked: str | None = None) -> BotMessage:
        """Tap ``label``; the question then shows ``picked`` (the label) without buttons; the next
        question comes."""
        nonlocal taps
        api.tap_button(uid, message, label)
        taps += 1
        following = await expect_question(api, app, uid, "hi", next_step)
        answered = api.message(uid, message.message_id)
        assert answered.edits, f"{message.text!r} was not marked answered"
        assert answered.buttons == []
        assert answered.text.endswith(f"✅ {picked or label.removesuffix(' ✓')}"), answered.text
        return following

    api.send_text(uid, "/start")
    language = await expect_question(api, app, uid, "hi", "language")
    assert language.buttons == [("हिन्दी ✓", language.buttons[0][1]), ("English", language.buttons[1][1])]
    consent = await tap(language, "हिन्दी ✓", "consent")
    assert_hindi(consent.text)
    name_q = await tap(consent, hi("Yes, I agree"), "owner_name")
    assert_hindi(name_q.text)
    assert name_q.reply_markup is None  # a text question has no buttons

    api.send_text(uid, "रमेश कुमार")
    assert_hindi((await expect_question(api, app, uid, "hi", "business_name")).text)
    api.send_text(uid, "कुमार ब्रास & संस")
    state_q = await expect_question(api, app, uid, "hi", "state")
    assert_hindi(state_q.text)
    assert len(state_q.buttons) == 36 and ("उत्तर प्रदेश", state_q.buttons[25][1]) == state_q.buttons[25]
    api.send_text(uid, "UP")  # typed, as many owners do
    assert_hindi((await expect_question(api, app, uid, "hi", "district")).text)
    api.send_text(uid, "मुरादाबाद")
    sector_q = await expect_question(api, app, uid, "hi", "sector")
    assert_hindi(sector_q.text)

    udyam_q = await tap(sector_q, hi("Handicrafts"), "udyam")
    iec_q = await tap(udyam_q, hi("Yes"), "iec")
    gst_q = await tap(iec_q, hi("Not sure"), "gst")
    experience_q = await tap(gst_q, hi("Yes"), "experience")
    turnover_q = await tap(experience_q, hi("Never"), "turnover")
    for question in (udyam_q, iec_q, gst_q, experience_q, turnover_q):
        assert_hindi(question.text)
        assert all(DEVANAGARI.search(label) for label, _ in question.buttons), question.buttons
    # Amounts in lakh and crore, in Hindi.
    assert [label for label, _ in turnover_q.buttons] == [
        "₹40 लाख से कम", "₹40 लाख–₹1.5 करोड़", "₹1.5 करोड़–₹10 करोड़", "₹10 करोड़ से ज़्यादा"
    ]
    markets_q = await tap(turnover_q, "₹40 लाख–₹1.5 करोड़", "markets")
    assert_hindi(markets_q.text)

    # Markets: each tap redraws the same message's keyboard with ticks; Done moves on.
    middle_east, europe = hi("Middle East"), hi("Europe")
    for label, ticked in ((middle_east, [middle_east]), (europe, [middle_east, europe])):
        before = len(api.message(uid, markets_q.message_id).edits)
        api.tap_button(uid, api.message(uid, markets_q.message_id), label)
        taps += 1
        redrawn = await api.wait_until(uid, lambda m: m.message_id == markets_q.message_id and len(m.edits) > before)
        assert [text[2:] for text, _ in redrawn.buttons if text.startswith("✅ ")] == ticked
        assert redrawn.buttons[-1][0] == hi("Done")
    assert api.new_messages(uid) == []  # toggling sends nothing new
    phone_q = await tap(api.message(uid, markets_q.message_id), hi("Done"), "phone", f"{middle_east}, {europe}")

    # Phone: the share-contact keyboard is offered; sharing it answers and the keyboard goes away.
    assert_hindi(phone_q.text)
    assert phone_q.keyboard == [hi(SHARE_NUMBER)]
    assert phone_q.reply_markup["keyboard"][0][0]["request_contact"] is True
    api.send_contact(uid, "+91 98765 43210")
    await expect_contact_keyboard_removed(api, app, uid, "hi")
    summary_q = await expect_question(api, app, uid, "hi", "summary")

    # The summary lists every answer, in Hindi.
    assert_hindi(summary_q.text)
    for line in (
        f"{hi('Your name')}: रमेश कुमार",
        f"{hi('Business')}: कुमार ब्रास & संस",
        f"{hi('State')}: उत्तर प्रदेश",
        f"{hi('District or town')}: मुरादाबाद",
        f"{hi('Main product')}: {hi('Handicrafts')}",
        f"{hi('Udyam registration')}: {hi('Yes')}",
        f"{hi('IEC')}: {hi('Not sure')}",
        f"{hi('Export experience')}: {hi('Never')}",
        f"{hi('Yearly turnover')}: ₹40 लाख–₹1.5 करोड़",
        f"{hi('Markets')}: {middle_east}, {europe}",
    ):
        assert line in summary_q.text, (line, summary_q.text)
    assert "98765" in summary_q.text and "43210" in summary_q.text

    api.tap_button(uid, summary_q, hi("Confirm"))
    taps += 1
    thanks, menu = await api.wait_for_messages(uid, 2)
    assert api.message(uid, summary_q.message_id).buttons == []
    assert thanks.text == hi("Thank you, {name}! Your profile is saved.").format(name="रमेश कुमार")
    assert_hindi(menu.text)
    assert shown(hi("<b>Training modules</b>")) in menu.text
    assert [data for _, data in menu.buttons] == [f"go:{m.id}" for m in app.engine.content.modules]

    await assert_quiet(api, uid)
    assert len(api.callback_answers) == taps == 12
    assert all(answer.text is None for answer in api.callback_answers)
    row = await profile_row(app, uid)
    assert json.loads(row["profile"]) == {
        "owner_name": "रमेश कुमार",
        "business_name": "कुमार ब्रास & संस",
        "state": "uttar_pradesh",
        "district": "मुरादाबाद",
        "sector": "handicrafts",
        "udyam": "yes",
        "iec": "not_sure",
        "gst": "yes",
        "experience": "never",
        "turnover": "upto_1_5_crore",
        "markets": ["middle_east", "europe"],
        "phone": "+919876543210",
    }
    assert (row["lang"], row["consent"], row["consent_version"], row["consent_lang"]) == ("hi", "given", 1, "hi")
    assert row["onboarded_at"] == int(bot.clock.now())


async def test_english_owner_onboards_by_typing_only(bot: Harness):
    api, app = bot.api, bot.app
    uid = 102
    api.add_user(uid, first_name="Asha", language_code="en")
    await onboard_by_typing(api, app, uid)
    await assert_quiet(api, uid)
    assert api.callback_answers == []
    row = await profile_row(app, uid)
    assert json.loads(row["profile"]) == TYPED_EN_PROFILE
    assert (row["lang"], row["consent"], row["consent_version"]) == ("en", "given", 1)
    assert row["onboarded_at"] is not None
    # The summary escaped the typed "&" and showed it back as the owner wrote it.
    summary = next(m for m in api.messages(uid) if m.text and m.text.startswith(asked(app, "en", "summary")))
    assert "Business: Asha Crafts & Sons" in summary.text
    assert "&amp;" in summary.html


async def test_switching_language_midway_reasks_the_same_step(bot: Harness):
    api, app = bot.api, bot.app
    uid = 103
    api.add_user(uid, first_name="Sunita", language_code="hi")
    api.send_text(uid, "/start")
    await expect_question(api, app, uid, "hi", "language")
    api.send_text(uid, "1")
    await expect_question(api, app, uid, "hi", "consent")
    api.send_text(uid, "हाँ")
    await expect_question(api, app, uid, "hi", "owner_name")
    api.send_text(uid, "सुनीता")
    await expect_question(api, app, uid, "hi", "business_name")

    api.send_text(uid, "/language")
    chooser = await next_message(api, uid)
    assert [label for label, _ in chooser.buttons] == ["हिन्दी ✓", "English"]
    api.tap_button(uid, chooser, "English")
    ack = await next_message(api, uid)
    assert ack.text == app.texts.gettext("en", "Okay, I will talk with you in English.")
    await expect_question(api, app, uid, "en", "business_name")  # the same step, now in English
    assert api.message(uid, chooser.message_id).text.endswith("✅ English")

    api.send_text(uid, "Sunita Textiles")
    state_q = await expect_question(api, app, uid, "en", "state")
    assert ("Uttar Pradesh", state_q.buttons[25][1]) == state_q.buttons[25]  # labels in English too
    api.send_text(uid, "Gujarat")
    district_q = await expect_question(api, app, uid, "en", "district")
    assert not DEVANAGARI.search(district_q.text)

    await assert_quiet(api, uid)
    row = await profile_row(app, uid)
    assert row["lang"] == "en"
    assert json.loads(row["profile"]) == {"owner_name": "सुनीता", "business_name": "Sunita Textiles", "state": "gujarat"}
    assert row["consent_lang"] == "hi"  # consent was given while reading the Hindi text


async def test_stickers_voice_notes_and_very_long_messages_get_a_hint(bot: Harness):
    api, app = bot.api, bot.app
    hi = lambda msgid: app.texts.gettext("hi", msgid)  # noqa: E731
    uid = 104
    api.add_user(uid, first_name="Kamla", language_code="hi")
    api.send_text(uid, "/start")
    await expect_question(api, app, uid, "hi", "language")
    api.send_text(uid, "हिंदी")
    await expect_question(api, app, uid, "hi", "consent")
    api.send_text(uid, "जी हाँ")
    await expect_question(api, app, uid, "hi", "owner_name")
    before = await profile_row(app, uid)

    media_hint = hi("I can only read text and buttons. Please type your answer or tap a button.")
    too_long = hi("That is a bit long. Please keep it under {n} characters.").format(n=step(app, "owner_name").max_length)
    for send, hint in (
        (lambda: api.send_sticker(uid), media_hint),
        (lambda: api.send_voice(uid), media_hint),
        (lambda: api.send_text(uid, "क" * 4000), too_long),
    ):
        send()
        said, again = await api.wait_for_messages(uid, 2)
        assert said.text == hint
        assert_hindi(said.text)
        assert again.text == asked(app, "hi", "owner_name")

    await assert_quiet(api, uid)
    after = await profile_row(app, uid)
    assert json.loads(after["profile"]) == {}
    assert json.loads(after["state"])["step"] == "owner_name"
    assert json.loads(after["state"])["seq"] == json.loads(before["state"])["seq"]
    # And the real answer is still taken afterwards.
    api.send_text(uid, "कमला")
    await expect_question(api, app, uid, "hi", "business_name")
    assert await stored_profile(app, uid) == {"owner_name": "कमला"}
    await assert_quiet(api, uid)


async def test_tapping_an_old_button_changes_nothing(bot: Harness):
    api, app = bot.api, bot.app
    uid = 105
    api.add_user(uid, first_name="Asha", language_code="en")
    api.send_text(uid, "/start")
    await expect_question(api, app, uid, "en", "language")
    for step_id, text in (("consent", "2"), ("owner_name", "yes"), ("business_name", "Asha"), ("state", "Asha Crafts")):
        api.send_text(uid, text)
        question = await expect_question(api, app, uid, "en", step_id)
    state_q = question
    api.send_text(uid, "UP")
    await expect_question(api, app, uid, "en", "district")
    state_before = (await profile_row(app, uid))["state"]

    # The state question was answered by typing, so its keyboard is still on screen: tap it.
    api.tap_button(uid, state_q, "Bihar")
    await api.wait_idle(quiet=QUIET)
    assert [a.text for a in api.callback_answers] == [app.texts.gettext("en", EARLIER)]
    assert api.new_messages(uid) == []
    assert api.message(uid, state_q.message_id).edits == []  # the old question is left as it was
    row = await profile_row(app, uid)
    assert json.loads(row["profile"])["state"] == "uttar_pradesh"
    assert row["state"] == state_before
    await assert_quiet(api, uid)


async def test_start_with_a_referral_code_and_the_command_menu_in_both_languages(bot: Harness, tmp_path: Path):
    api, app = bot.api, bot.app
    registry = tmp_path / "startups.yaml"
    registry.write_text("startups:\n  - {id: partner, name: Partner Labs, referral_code: abc123}\n", encoding="utf-8")
    await app.leads.import_file(registry)
    uid = 106
    api.add_user(uid, language_code="hi")
    api.send_text(uid, "/start ref_abc123")
    await expect_question(api, app, uid, "hi", "language")
    await assert_quiet(api, uid)
    assert (await profile_row(app, uid))["referral_code"] == "abc123"
    events = await app.db.fetchall("SELECT kind, data FROM events WHERE kind = 'referral'")
    assert [(e["kind"], json.loads(e["data"])) for e in events] == [("referral", {"code": "abc123"})]
    # a code no startup has is neither kept nor logged
    api.add_user(107, language_code="hi")
    api.send_text(107, "/start ref_zzz999")
    await expect_question(api, app, 107, "hi", "language")
    assert (await profile_row(app, 107))["referral_code"] is None
    assert len(await app.db.fetchall("SELECT 1 FROM events WHERE kind = 'referral'")) == 1

    menus = api.commands
    assert set(menus) == {"", "hi"}
    english, hindi = dict(menus[""]), dict(menus["hi"])
    assert set(english) == set(hindi) >= {"start", "learn", "progress", "language", "help", "stop_reminders"}
    assert english["start"] == "Begin or continue"
    for name, description in hindi.items():
        if name != "language":  # "हिन्दी / English" is the same in both
            assert DEVANAGARI.search(description) and description != english[name], (name, description)


async def test_a_repeated_update_is_handled_once(bot: Harness):
    api, app = bot.api, bot.app
    uid = 107
    api.add_user(uid, language_code="en")
    api.send_text(uid, "/start")
    await expect_question(api, app, uid, "en", "language")
    api.send_text(uid, "English")
    await expect_question(api, app, uid, "en", "consent")
    api.send_text(uid, "yes")
    await expect_question(api, app, uid, "en", "owner_name")

    # The confirmation of a batch is lost: Telegram sends the same update again.
    api.duplicate_next_delivery()
    api.send_text(uid, "Ramesh")
    await expect_question(api, app, uid, "en", "business_name")
    await assert_quiet(api, uid)
    assert await stored_profile(app, uid) == {"owner_name": "Ramesh"}

    # An update delivered once more, long after it was confirmed. The next answer is handled
    # after it (one user's updates run in order), so by its reply the copy has been dropped.
    update_id = api.send_text(uid, "Ramesh Brass")
    await expect_question(api, app, uid, "en", "state")
    api.redeliver(update_id)
    api.send_text(uid, "UP")
    await expect_question(api, app, uid, "en", "district")
    await assert_quiet(api, uid)
    assert await stored_profile(app, uid) == {"owner_name": "Ramesh", "business_name": "Ramesh Brass", "state": "uttar_pradesh"}
    assert tuple(await app.db.fetchone("SELECT COUNT(*) FROM seen_updates WHERE update_id = ?", (str(update_id),))) == (1,)


async def test_twenty_owners_onboard_at_once_and_one_types_fast(bot: Harness):
    api, app = bot.api, bot.app
    states = ["uttar_pradesh", "gujarat", "tamil_nadu", "punjab", "kerala"]
    state_names = {"uttar_pradesh": "UP", "gujarat": "Gujarat", "tamil_nadu": "TN", "punjab": "Punjab", "kerala": "kerala"}

    def answers(i: int) -> list[tuple[str, str]]:
        typed = dict(TYPED_EN)
        typed.update(
            owner_name=f"Owner {i}", business_name=f"Firm {i}", state=state_names[states[i % 5]],
            sector=str(i % 12 + 1), phone=f"98765{i:05d}",
        )
        return list(typed.items())

    uids = [200 + i for i in range(20)]
    for uid in uids:
        api.add_user(uid, language_code="en")
    await asyncio.gather(*(onboard_by_typing(api, app, uid, answers(i)) for i, uid in enumerate(uids)))
    await assert_quiet(api, *uids)
    sectors = [o.id for o in step(app, "sector").options]
    for i, uid in enumerate(uids):
        profile = await stored_profile(app, uid)
        assert profile == {
            **TYPED_EN_PROFILE,
            "owner_name": f"Owner {i}", "business_name": f"Firm {i}", "state": states[i % 5],
            "sector": sectors[i % 12], "phone": f"+9198765{i:05d}",
        }, uid

    # One owner sends four answers without waiting for the questions: they are taken in order.
    fast = 300
    api.add_user(fast, language_code="en")
    api.send_text(fast, "/start")
    await expect_question(api, app, fast, "en", "language")
    api.send_text(fast, "2")
    await expect_question(api, app, fast, "en", "consent")
    for text in ("yes", "Meena", "Meena Spices", "Kerala", "Kochi"):
        api.send_text(fast, text)
    replies = await api.wait_for_messages(fast, 5)
    expected = ["owner_name", "business_name", "state", "district", "sector"]
    assert [m.text.startswith(asked(app, "en", s)) for m, s in zip(replies, expected)] == [True] * 5
    await assert_quiet(api, fast)
    assert await stored_profile(app, fast) == {
        "owner_name": "Meena", "business_name": "Meena Spices", "state": "kerala", "district": "Kochi"
    }


async def test_restart_midway_resumes_at_the_same_step(tmp_path: Path):
    clock = ManualClock()
    db_path = tmp_path / "bot.sqlite3"
    uid = 108
    async with BotApiStandin() as api:
        api.add_user(uid, first_name="Gita", language_code="hi")
        async with running_bot(api, db_path, clock=clock) as first:
            app = first.app
            api.send_text(uid, "/start")
            await expect_question(api, app, uid, "hi", "language")
            for step_id, text in (
                ("consent", "1"), ("owner_name", "हाँ"), ("business_name", "गीता"),
                ("state", "गीता हैंडलूम"), ("district", "बिहार"), ("sector", "पटना"),
            ):
                api.send_text(uid, text)
                sector_q = await expect_question(api, app, uid, "hi", step_id)
            await api.wait_idle(quiet=QUIET)
        # The first bot is gone; a new process opens the same database.
        async with running_bot(api, db_path, clock=clock) as second:
            app = second.app
            api.send_text(uid, "/start")
            welcome, again = await api.wait_for_messages(uid, 2)
            assert welcome.text == app.texts.gettext("hi", "Welcome back! Let's continue where you left off.")
            assert again.text == sector_q.text and again.buttons == sector_q.buttons
            assert await stored_profile(app, uid) == {
                "owner_name": "गीता", "business_name": "गीता हैंडलूम", "state": "bihar", "district": "पटना"
            }
            # The question shown before the restart still works.
            api.tap_button(uid, sector_q, app.texts.gettext("hi", "Textiles & apparel"))
            await expect_question(api, app, uid, "hi", "udyam")
            await assert_quiet(api, uid)
            assert (await stored_profile(app, uid))["sector"] == "textiles_apparel"
