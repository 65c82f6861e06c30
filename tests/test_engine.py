"""The pure conversation engine, driven the way owners use it: typing, tapping, changing their mind."""

from __future__ import annotations

import copy
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import leads as L
from bot.core import training
from bot.core.content import Content, Module
from bot.core.engine import Engine
from bot.core.messages import Event, Inbound, Outbound, Picked, Say, Toast
from bot.core.session import Session, Turn, TurnContext
from bot.i18n import Catalogs
from tests.owners import ASHA_PROFILE

DEVANAGARI = re.compile(r"[\u0900-\u097F]")
KNOWN_FLOWS = {"new", "onboarding", "refused", "menu", "lesson", "quiz"}
PHONE = "+919876543210"


# ----------------------------------------------------------------- helpers
def says(outputs: list[Outbound]) -> list[Say]:
    return [o for o in outputs if isinstance(o, Say)]


def text_of(outputs: list[Outbound]) -> str:
    """Everything the bot wrote in one turn, messages and button labels."""
    parts = []
    for say in says(outputs):
        parts.append(say.text)
        parts += [c.label for c in say.choices]
    return "\n".join(parts)


def button(outputs: list[Outbound], label: str) -> str:
    """The payload of the button labelled ``label`` (exactly, else as a unique part) in ``outputs``."""
    choices = [c for say in says(outputs) for c in say.choices]
    exact = [c for c in choices if c.label == label]
    if exact:
        return exact[-1].id
    partial = [c for c in choices if label in c.label]
    assert len(partial) == 1, f"no single button {label!r} among {[c.label for c in choices]}"
    return partial[0].id


class Chat:
    """One owner talking to the engine; keeps the session between turns as the service would."""

    def __init__(self, engine: Engine, lang: str | None = "en", seed: int = 7):
        self.engine = engine
        self.session = engine.new_session(lang, seed=seed)
        self.last: Turn | None = None
        self.events: list[Event] = []

    def send(self, inbound: Inbound) -> Turn:
        before = copy.deepcopy(self.session)
        turn = self.engine.handle(self.session, inbound)
        assert self.session == before, "the engine must not mutate the session it was given"
        self.session, self.last = turn.session, turn
        self.events += turn.events
        return turn

    def say(self, text: str) -> Turn:
        return self.send(Inbound.say(text))

    def tap(self, label: str) -> Turn:
        return self.send(Inbound.tap(button(self.last.outputs, label)))

    @property
    def text(self) -> str:
        return text_of(self.last.outputs)

    def kinds(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    @property
    def profile(self) -> dict:
        return self.session.profile


def start(engine: Engine, lang_label: str = "English") -> Chat:
    chat = Chat(engine, lang="en" if lang_label == "English" else "hi")
    chat.say("/start")
    chat.tap(lang_label)
    return chat


def fill_profile(chat: Chat) -> None:
    """From the consent question to the summary, tapping where there are buttons."""
    chat.tap("Yes, I agree")
    chat.say("Asha Devi")
    chat.say("Asha Brass Works")
    chat.tap("Uttar Pradesh")
    chat.say("Moradabad")
    chat.tap("Handicrafts")
    chat.tap("Yes")  # Udyam
    chat.tap("No")  # IEC
    chat.tap("Yes")  # GST
    chat.tap("Never")
    chat.tap("Under ₹40 lakh")
    chat.tap("Middle East")
    chat.tap("Europe")
    chat.tap("Done")
    chat.say("98765 43210")


def at_the_state_question(engine: Engine) -> Chat:
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("Asha Devi")
    chat.say("Asha Brass Works")
    assert chat.session.step == "state"
    return chat


def test_a_misspelt_state_is_confirmed_before_it_is_stored(engine: Engine):
    chat = at_the_state_question(engine)
    chat.say("uttar pardesh")
    assert "Did you mean <b>Uttar Pradesh</b>?" in chat.text
    assert "state" not in chat.session.profile and chat.session.step == "state"
    chat.tap("Yes")
    assert chat.session.profile["state"] == "uttar_pradesh" and chat.session.step != "state"


def test_typing_the_number_of_yes_confirms_the_guess_and_not_an_option_of_the_list(engine: Engine):
    chat = at_the_state_question(engine)
    chat.say("uttar pardesh")
    chat.say("1")  # the Yes button, typed (on WhatsApp and Telegram numbers are typed too)
    assert chat.session.profile["state"] == "uttar_pradesh"  # not the first state of the list
    chat = at_the_state_question(engine)
    chat.say("utter pradesh")
    chat.say("2")  # No
    assert "state" not in chat.session.profile and "All right." in chat.text


def test_a_guess_the_owner_refuses_is_not_stored_and_the_question_comes_again(engine: Engine):
    chat = at_the_state_question(engine)
    chat.say("utter pradesh")
    assert "Did you mean <b>Uttar Pradesh</b>?" in chat.text
    chat.tap("No")
    assert "All right. Please tap it below, or type its name again." in chat.text
    assert "state" not in chat.session.profile and chat.session.step == "state"
    chat.say("Gujrat")  # an alias: no question needed
    assert chat.session.profile["state"] == "gujarat"


def test_misspelt_devanagari_state_nahi_and_typed_done_in_hindi(engine: Engine, catalogs: Catalogs):
    chat = start(engine, "हिन्दी")
    assert chat.session.lang == "hi"
    chat.tap(catalogs.gettext("hi", "Yes, I agree"))
    chat.say("आशा देवी")
    chat.say("आशा ब्रास वर्क्स")
    chat.say("उत्तर पर्देश")  # र्दे for प्रदे
    assert "क्या आपका मतलब <b>उत्तर प्रदेश</b> है?" in chat.text
    chat.say("हाँ")
    assert chat.session.profile["state"] == "uttar_pradesh"
    chat.say("मुरादाबाद")
    chat.tap(catalogs.gettext("hi", "Handicrafts"))
    chat.tap(catalogs.gettext("hi", "Yes"))  # Udyam
    chat.tap(catalogs.gettext("hi", "No"))  # IEC
    chat.tap(catalogs.gettext("hi", "Yes"))  # GST
    chat.say("kabhi nahi")  # "Have you exported before?"
    assert chat.session.profile["experience"] == "never"
    chat.tap("₹40 लाख से कम")
    chat.tap(catalogs.gettext("hi", "Middle East"))
    chat.say("हो गया")  # the Done button's label, typed
    assert chat.session.profile["markets"] == ["middle_east"] and chat.session.step == "phone"


def onboarded(engine: Engine) -> Chat:
    chat = start(engine)
    fill_profile(chat)
    chat.tap("Confirm")
    assert chat.session.onboarded and chat.session.flow == "menu"
    return chat


def question_now(chat: Chat, content: Content) -> tuple[Module, int]:
    module = content.module(chat.session.step)
    assert chat.session.flow == "quiz", chat.session
    return module, chat.session.progress[module.id].question


def answer_quiz(chat: Chat, content: Content, catalogs: Catalogs, correct: bool, typed: bool = False) -> Turn:
    """Answer the question on screen rightly or wrongly, finding the right option in the content."""
    module, index = question_now(chat, content)
    question = content.module(module.id).quiz[index]
    wanted = question.correct if correct else next(o for o in question.options if not o.correct)
    if typed:
        attempt = chat.session.progress[module.id].attempt
        order = training.option_order(TurnContext(chat.session, catalogs), module, question, attempt)
        return chat.say(str(order.index(wanted) + 1))
    payloads = [c.id for say in says(chat.last.outputs) for c in say.choices if c.id.endswith(":a." + wanted.id)]
    assert len(payloads) == 1
    return chat.send(Inbound.tap(payloads[0]))


def read_lessons(chat: Chat, content: Content, module_id: str) -> None:
    """Open ``module_id`` and tap Next through its lessons to the first quiz question."""
    chat.send(Inbound.tap(f"go:{module_id}"))
    module = content.module(module_id)
    while chat.session.flow == "lesson":
        label = "Start the quiz" if chat.session.progress[module_id].lesson == len(module.lessons) - 1 else "Next"
        chat.tap(label)
    assert chat.session.flow == "quiz"


def take_quiz(chat: Chat, content: Content, catalogs: Catalogs, right: int) -> None:
    """Answer the current attempt with ``right`` correct answers, the rest wrong."""
    module = content.module(chat.session.step)
    for index in range(len(module.quiz)):
        answer_quiz(chat, content, catalogs, correct=index < right)
    assert chat.session.flow == "menu"


def pass_module(chat: Chat, content: Content, catalogs: Catalogs, module_id: str) -> None:
    read_lessons(chat, content, module_id)
    take_quiz(chat, content, catalogs, right=len(content.module(module_id).quiz))
    assert chat.session.progress[module_id].passed


@pytest.fixture
def chat(engine: Engine) -> Chat:
    return onboarded(engine)


# ----------------------------------------------------------------- onboarding
EXPECTED_PROFILE = ASHA_PROFILE


def test_full_onboarding_in_english_by_tapping(engine: Engine, content: Content):
    chat = start(engine)
    assert chat.session.lang == "en"
    assert "Before we start" in chat.text
    fill_profile(chat)
    assert chat.session.step == "summary"
    for line in ("Your name: Asha Devi", "State: Uttar Pradesh", "Markets: Middle East, Europe",
                 "Yearly turnover: Under ₹40 lakh"):
        assert line in chat.text
    assert re.search(r"Mobile: \+91 ?98765 ?43210", chat.text)
    chat.tap("Confirm")
    assert chat.profile == EXPECTED_PROFILE
    assert chat.session.onboarded and chat.session.consent == "given"
    assert "Thank you, Asha Devi! Your profile is saved." in chat.text
    assert "Training modules" in chat.text
    assert [e.data for e in chat.kinds("consent_given")] == [{"version": content.onboarding.version, "lang": "en"}]
    assert len(chat.kinds("onboarding_confirmed")) == 1
    assert Picked("Confirm") in chat.last.outputs


def test_full_onboarding_by_typing(engine: Engine):
    chat = Chat(engine, lang=None)
    chat.say("hello")  # anything first starts the conversation
    assert chat.session.step == "language"
    for typed in ("english", "haan ji", "  Ravi   Kumar ", "Ravi Leather", "TN", "Ambur", "leather", "ha", "nahi",
                  "yes", "2", "3", "1, 3", "+91 98765 43210"):
        chat.say(typed)
    assert chat.session.step == "summary"
    chat.say("confirm")
    assert chat.profile == {
        "owner_name": "Ravi Kumar",
        "business_name": "Ravi Leather",
        "state": "tamil_nadu",
        "district": "Ambur",
        "sector": "leather",
        "udyam": "yes",
        "iec": "no",
        "gst": "yes",
        "experience": "occasionally",
        "turnover": "upto_10_crore",
        "markets": ["middle_east", "north_america"],
        "phone": PHONE,
    }
    assert chat.session.onboarded


def test_typed_devanagari_numbers_and_hindi_names_pick_options(engine: Engine, catalogs: Catalogs):
    chat = start(engine, "हिन्दी")
    assert chat.session.lang == "hi"
    chat.say("हाँ")
    chat.say("आशा")
    chat.say("आशा हस्तशिल्प")
    hindi_bihar = catalogs.gettext("hi", "Bihar")
    chat.say(hindi_bihar)
    assert chat.profile["state"] == "bihar"
    chat.say("पटना")
    chat.say("७")  # the seventh sector: spices
    assert chat.profile["sector"] == "spices"
    chat.say("जी")
    assert chat.profile["udyam"] == "yes"
    chat.say("नहीं")
    assert chat.profile["iec"] == "no"


def test_markets_multi_select_by_tapping_toggles_ticks(engine: Engine):
    chat = start(engine)
    fill_profile(chat)
    chat.tap("Change an answer")
    chat.tap("Markets")
    assert "✅ Middle East" in chat.text and "✅ Europe" in chat.text
    chat.tap("✅ Europe")  # untick
    last = says(chat.last.outputs)[-1]
    assert last.replace is True
    assert "✅ Europe" not in chat.text
    chat.tap("Not sure yet")  # stands alone: clears the others
    assert "✅ Not sure yet" in chat.text and "✅ Middle East" not in chat.text
    chat.tap("Done")
    assert chat.profile["markets"] == ["not_sure"]
    assert chat.session.step == "summary"


def test_done_with_nothing_picked_is_refused(engine: Engine):
    chat = start(engine)
    chat.tap("Yes, I agree")
    for typed in ("Asha", "Biz", "UP", "Agra", "1", "1", "1", "1", "1", "1"):
        chat.say(typed)
    assert chat.session.step == "markets"
    chat.tap("Done")
    assert "Please pick at least one" in chat.text
    assert chat.session.step == "markets" and "markets" not in chat.profile


def test_referral_from_start_link(engine: Engine):
    chat = Chat(engine)
    chat.say("/start ref_abc")
    assert [e.data for e in chat.kinds("referral")] == [{"code": "abc"}]
    assert chat.session.step == "language"


def test_consent_refused_keeps_nothing(engine: Engine, content: Content):
    chat = start(engine)
    chat.tap("No")
    assert chat.session.flow == "refused"
    assert chat.session.consent == "refused"
    assert chat.profile == {}
    assert "I have not kept any of your details" in chat.text
    assert [e.data for e in chat.kinds("consent_refused")] == [{"version": content.onboarding.version, "lang": "en"}]
    assert not chat.kinds("consent_given")
    # Whatever they type now, nothing is stored and they are told how to come back.
    chat.say("Asha Devi")
    assert chat.profile == {} and chat.session.flow == "refused"
    assert "/start" in chat.text
    chat.say("/start")
    assert chat.session.flow == "onboarding" and chat.session.step == "consent"


def test_consent_typed_no_in_hindi(engine: Engine):
    chat = start(engine, "हिन्दी")
    chat.say("नहीं")
    assert chat.session.flow == "refused" and chat.profile == {}


def test_language_switch_mid_flow_re_asks_the_same_step(engine: Engine, content: Content, catalogs: Catalogs):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("Asha Devi")
    assert chat.session.step == "business_name"
    chat.say("/language")
    assert "English ✓" in chat.text
    chat.tap("हिन्दी")
    assert chat.session.lang == "hi"
    assert chat.session.step == "business_name"
    question = catalogs.gettext("hi", content.onboarding.step("business_name").text)
    assert DEVANAGARI.search(question)
    texts = [say.text for say in says(chat.last.outputs)]
    assert texts == [catalogs.gettext("hi", "Okay, I will talk with you in English."), question]
    # The answer still goes into the same field.
    chat.say("आशा ब्रास")
    assert chat.profile["business_name"] == "आशा ब्रास"
    assert chat.session.step == "state"
    # And back to English by typing.
    chat.say("/language")
    chat.say("English")
    assert chat.session.lang == "en" and chat.session.step == "state"
    assert content.onboarding.step("state").text in chat.text


def test_stale_tap_gets_a_toast_and_changes_nothing(engine: Engine):
    chat = Chat(engine)
    chat.say("/start")
    old_english = button(chat.last.outputs, "English")
    chat.tap("English")
    chat.tap("Yes, I agree")
    before = copy.deepcopy(chat.session)
    turn = chat.send(Inbound.tap(old_english))
    assert turn.session == before
    assert turn.events == []
    assert len(turn.outputs) == 1 and isinstance(turn.outputs[0], Toast)
    assert "earlier message" in turn.outputs[0].text


@pytest.mark.parametrize("payload", ["", ":", "999:yes", "x:y", "2", "go:"])
def test_forged_taps_change_no_answer(engine: Engine, payload: str):
    chat = start(engine)
    turn = chat.send(Inbound.tap(payload))
    assert turn.outputs
    assert chat.profile == {} and chat.session.consent == ""
    assert chat.session.step == "consent"


@pytest.mark.parametrize("what", ["sticker", "voice", "photo"])
def test_stickers_and_voice_notes_get_a_hint_and_the_question_again(engine: Engine, content: Content, what: str):
    chat = start(engine)
    chat.tap("Yes, I agree")
    seq = chat.session.seq
    chat.send(Inbound.media(what))
    assert "I can only read text and buttons" in chat.text
    assert content.onboarding.step("owner_name").text in chat.text
    assert chat.session.step == "owner_name" and chat.session.seq == seq
    assert chat.profile == {}


def test_a_4000_character_name_is_refused_with_the_limit(engine: Engine):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("A" * 4000)
    assert "Please keep it under 80 characters." in chat.text
    assert "owner_name" not in chat.profile
    assert chat.session.step == "owner_name"
    chat.say("A" * 80)
    assert chat.profile["owner_name"] == "A" * 80


def test_name_with_only_emoji_or_punctuation_is_refused(engine: Engine):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("🙏🙏 ...")
    assert "Please type your answer in words." in chat.text
    assert "owner_name" not in chat.profile


def test_html_in_a_name_is_escaped_in_the_summary(engine: Engine):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("<b>Asha</b> & Co")
    assert chat.profile["owner_name"] == "<b>Asha</b> & Co"
    chat.say("/profile")
    assert "&lt;b&gt;Asha&lt;/b&gt; &amp; Co" in chat.text
    assert "<b>Asha</b>" not in chat.text


def test_invalid_mobile_is_refused_with_the_rule(engine: Engine):
    chat = start(engine)
    fill_profile(chat)
    chat.tap("Change an answer")
    chat.tap("Mobile")
    for bad in ("5876543210", "98765", "my number"):
        chat.say(bad)
        assert "10 digits starting with 6, 7, 8 or 9" in chat.text
        assert chat.profile["phone"] == PHONE
    chat.send(Inbound.contact("+91 70123 45678"))
    assert chat.profile["phone"] == "+917012345678"
    assert chat.session.step == "summary"


def test_shared_contact_answers_the_phone_step(engine: Engine):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.send(Inbound.contact("+919876543210"))
    assert "I don't need a phone number right now" in chat.text
    assert "phone" not in chat.profile


def test_change_an_answer_then_back_to_the_summary(engine: Engine):
    chat = start(engine)
    fill_profile(chat)
    chat.tap("Change an answer")
    assert "Which answer do you want to change?" in chat.text
    chat.tap("District or town")
    assert chat.session.step == "district"
    chat.say("Agra")
    assert chat.session.step == "summary"
    assert "District or town: Agra" in chat.text
    assert "Moradabad" not in chat.text
    assert chat.profile == {**EXPECTED_PROFILE, "district": "Agra"}
    # The same by typing: "change", then the field's name.
    chat.say("change")
    chat.say("state")
    chat.say("Bihar")
    assert chat.session.step == "summary" and "State: Bihar" in chat.text
    chat.tap("Confirm")
    assert chat.profile["state"] == "bihar" and chat.profile["district"] == "Agra"


def test_cancel_while_changing_an_answer_returns_to_the_summary(engine: Engine):
    """Regression: /cancel used to leave the owner at the step, and the next answer walked every later step again."""
    chat = start(engine)
    fill_profile(chat)
    chat.tap("Change an answer")
    chat.tap("District or town")
    chat.say("/cancel")
    assert "Okay, cancelled." in chat.text
    assert chat.session.step == "summary"
    assert "District or town: Moradabad" in chat.text
    assert chat.profile == EXPECTED_PROFILE
    # Cancelling while choosing which answer to change also goes back to the summary.
    chat.tap("Change an answer")
    chat.say("/cancel")
    assert chat.session.step == "summary" and "Please check your details" in chat.text
    chat.tap("Confirm")
    assert chat.session.onboarded and chat.profile == EXPECTED_PROFILE


def test_restart_asks_first_and_no_keeps_everything(engine: Engine, content: Content, catalogs: Catalogs):
    chat = onboarded(engine)
    pass_module(chat, content, catalogs, "export_ready")
    before = copy.deepcopy(chat.session)
    chat.say("/restart")
    assert "Start again from the beginning?" in chat.text
    chat.tap("No")
    assert "Okay, nothing has changed." in chat.text
    assert chat.profile == before.profile and chat.session.progress == before.progress
    assert chat.session.flow == before.flow and chat.session.onboarded
    assert not chat.kinds("restarted")


def test_restart_yes_clears_profile_and_progress(engine: Engine, content: Content, catalogs: Catalogs):
    chat = onboarded(engine)
    pass_module(chat, content, catalogs, "export_ready")
    chat.say("/restart")
    chat.say("haan")
    assert len(chat.kinds("restarted")) == 1
    assert chat.profile == {} and chat.session.progress == {}
    assert not chat.session.onboarded and chat.session.consent == ""
    assert chat.session.flow == "onboarding" and chat.session.step == "language"
    assert "Okay, let's start again." in chat.text


def test_delete_my_data_no_keeps_everything(chat: Chat):
    before = copy.deepcopy(chat.session)
    chat.say("/delete_my_data")
    assert "This cannot be undone." in chat.text
    chat.say("no")
    assert chat.profile == before.profile == EXPECTED_PROFILE
    assert chat.session.onboarded and chat.session.flow == "menu"
    assert not chat.kinds("delete_my_data")


def test_delete_my_data_yes_erases_everything(engine: Engine, content: Content, catalogs: Catalogs):
    chat = onboarded(engine)
    pass_module(chat, content, catalogs, "export_ready")
    chat.say("/delete_my_data")
    chat.tap("Yes")
    assert len(chat.kinds("delete_my_data")) == 1
    assert chat.profile == {} and chat.session.progress == {}
    assert not chat.session.onboarded and chat.session.consent == ""
    assert chat.session.flow == "new"
    assert "Everything you told me has been deleted" in chat.text
    chat.say("/profile")  # the next message starts afresh, with nothing remembered
    assert chat.session.flow == "onboarding" and chat.session.step == "language"
    assert chat.profile == {}


def test_module_button_during_a_delete_confirmation_does_not_delete_on_yes(chat: Chat):
    """Regression: the pending /delete_my_data question survived opening a module, so 'yes' (read on) erased everything."""
    chat.say("/delete_my_data")
    chat.send(Inbound.tap("go:export_ready"))  # the button of the menu shown earlier
    assert chat.session.flow == "lesson"
    chat.say("yes")  # "yes" moves a lesson on
    assert not chat.kinds("delete_my_data")
    assert chat.session.progress["export_ready"].lesson == 1
    assert chat.profile == EXPECTED_PROFILE


def test_locked_module_button_during_a_delete_confirmation_does_not_delete_on_yes(chat: Chat):
    chat.say("/delete_my_data")
    chat.send(Inbound.tap("go:payments"))  # locked: the menu is shown again
    assert "This cannot be undone." not in chat.text
    chat.say("yes")
    assert not chat.kinds("delete_my_data")
    assert chat.profile == EXPECTED_PROFILE


def test_cancel(engine: Engine, content: Content):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("/cancel")
    assert "There is nothing to cancel." in chat.text
    assert content.onboarding.step("owner_name").text in chat.text
    chat.say("/restart")
    chat.say("/cancel")
    assert "Okay, cancelled." in chat.text
    assert chat.session.step == "owner_name" and chat.session.draft == {}
    chat.say("yes")  # no longer a confirmation: it is the answer to "What is your name?"
    assert not chat.kinds("restarted")
    assert chat.profile["owner_name"] == "yes"


def test_unknown_command_keeps_the_step(engine: Engine, content: Content):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("Asha")
    seq = chat.session.seq
    chat.say("/foo bar")
    assert "I don't know that command" in chat.text
    assert content.onboarding.step("business_name").text in chat.text
    assert chat.session.step == "business_name" and chat.session.seq == seq


@pytest.mark.parametrize("command", ["/help", "/profile", "/progress", "/learn", "/stop_reminders", "/start"])
def test_commands_mid_flow_keep_the_step_and_its_buttons(engine: Engine, command: str):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("Asha")
    chat.say("Brass")
    assert chat.session.step == "state"
    state_button = button(chat.last.outputs, "Gujarat")
    chat.say(command)
    assert chat.session.step == "state" and chat.session.flow == "onboarding"
    assert "Which state" in chat.text
    chat.send(Inbound.tap(state_button))  # the question's buttons still count
    assert chat.profile["state"] == "gujarat"


def test_training_commands_before_onboarding_say_profile_first(engine: Engine):
    chat = start(engine)
    chat.tap("Yes, I agree")
    chat.say("/learn")
    assert "Let's finish your profile first" in chat.text
    assert chat.session.flow == "onboarding"
    chat.send(Inbound.tap("go:export_ready"))
    assert "Let's finish your profile first" in chat.text
    assert chat.session.progress == {}


def test_first_message_in_hindi_by_default(engine: Engine, content: Content, catalogs: Catalogs):
    chat = Chat(engine, lang=None)
    chat.say("namaste")
    chat.tap("हिन्दी")
    consent = catalogs.gettext("hi", content.onboarding.step("consent").text)
    assert DEVANAGARI.search(consent)
    assert consent in chat.text
    assert catalogs.gettext("hi", "Yes, I agree") in chat.text


# ----------------------------------------------------------------- training
def test_menu_shows_every_module_with_the_later_ones_locked(chat: Chat, content: Content):
    menu = says(chat.last.outputs)[-1]
    labels = [c.label for c in menu.choices]
    assert len(labels) == len(content.modules) == 11
    assert not labels[0].startswith("🔒")
    assert all(label.startswith("🔒") for label in labels[1:])
    assert [c.id for c in menu.choices] == [f"go:{m.id}" for m in content.modules]
    assert "opens after: Get export-ready" in menu.text


def test_a_locked_module_refuses_to_open(chat: Chat):
    chat.send(Inbound.tap("go:payments"))
    assert "This module opens after you pass: Get export-ready." in chat.text
    assert chat.session.flow == "menu" and "payments" not in chat.session.progress
    chat.say("4")  # typed number of the locked module
    assert "This module opens after you pass" in chat.text
    assert chat.session.flow == "menu"


def test_a_locked_module_names_the_module_to_pass_first_in_hindi(chat: Chat, catalogs: Catalogs):
    chat.session.lang = "hi"
    chat.send(Inbound.tap("go:payments"))
    first = catalogs.gettext("hi", "Get export-ready")
    locked = catalogs.gettext("hi", "Getting paid safely")
    assert first != "Get export-ready" and f"पहले यह पास करें: {first}।" in chat.text
    assert "इसे पास" not in chat.text  # not "when you pass this one"
    assert chat.session.flow == "menu" and "payments" not in chat.session.progress
    refusal = says(chat.last.outputs)[0].text
    assert locked != "Getting paid safely" and f"पास करें: {locked}" not in refusal  # not the locked module itself


def test_passing_export_ready_unlocks_the_rest(chat: Chat, content: Content, catalogs: Catalogs):
    pass_module(chat, content, catalogs, "export_ready")
    chat.say("/learn")
    menu = says(chat.last.outputs)[-1].choices
    assert menu[0].label.startswith("✅")
    # Every module that needs only export_ready opens; the ones that build on another wait for it.
    for choice in menu[1:]:
        module = content.module(choice.id.removeprefix("go:"))
        assert choice.label.startswith("🔒") == (module.requires != ("export_ready",)), (module.id, choice.label)
    assert [m.id for m in content.modules if m.requires != ("export_ready",) and m.id != "export_ready"] == ["pricing", "buyer_safety"]
    chat.send(Inbound.tap("go:payments"))
    assert chat.session.flow == "lesson" and chat.session.step == "payments"


def test_lesson_paging_resumes_at_the_stored_lesson(chat: Chat, content: Content):
    module = content.module("export_ready")
    chat.send(Inbound.tap("go:export_ready"))
    assert f"· 1/{len(module.lessons)}" in chat.text and module.lessons[0].text in chat.text
    assert len(chat.kinds("module_started")) == 1
    chat.tap("Next")
    chat.say("aage")  # typed "next" in Hinglish
    assert f"· 3/{len(module.lessons)}" in chat.text and module.lessons[2].text in chat.text
    assert chat.session.progress["export_ready"].lesson == 2
    chat.say("/learn")
    assert chat.session.flow == "menu"
    assert f"lesson 3 of {len(module.lessons)}" in chat.text
    assert "▶️ Get export-ready" in chat.text
    chat.tap("Get export-ready")
    assert chat.session.flow == "lesson"
    assert f"· 3/{len(module.lessons)}" in chat.text and module.lessons[2].text in chat.text


def test_lesson_asks_for_next_when_the_owner_types_something_else(chat: Chat):
    chat.send(Inbound.tap("go:export_ready"))
    chat.say("what is IEC?")
    assert "Tap Next when you are ready." in chat.text
    assert chat.session.progress["export_ready"].lesson == 0


def test_lessons_in_hindi(engine: Engine, content: Content, catalogs: Catalogs):
    chat = onboarded(engine)
    chat.say("/language")
    chat.tap("हिन्दी")
    chat.send(Inbound.tap("go:export_ready"))
    lesson = catalogs.gettext("hi", content.module("export_ready").lessons[0].text)
    assert DEVANAGARI.search(lesson) and lesson in chat.text


def test_quiz_feedback_says_right_or_wrong_with_the_answer_and_explanation(chat: Chat, content: Content, catalogs: Catalogs):
    read_lessons(chat, content, "export_ready")
    module = content.module("export_ready")
    assert "Quiz time! 5 questions; 4 right answers pass." in chat.text
    assert module.quiz[0].text in chat.text
    answer_quiz(chat, content, catalogs, correct=True)
    assert "✅ Correct!" in chat.text and module.quiz[0].explanation in chat.text
    assert module.quiz[1].text in chat.text  # the next question follows
    answer_quiz(chat, content, catalogs, correct=False)
    q = module.quiz[1]
    number = list(q.options).index(q.correct) + 1  # attempt 1 shows the options as written
    assert f"❌ Not quite. The right answer: <b>{number}. {q.correct.text}</b>" in chat.text
    assert q.explanation in chat.text
    answers = chat.kinds("quiz_answer")
    assert [(e.data["question"], e.data["correct"], e.data["attempt"]) for e in answers] == [
        (module.quiz[0].id, True, 1), (module.quiz[1].id, False, 1)]


def test_quiz_answers_can_be_typed_as_numbers(chat: Chat, content: Content, catalogs: Catalogs):
    read_lessons(chat, content, "export_ready")
    answer_quiz(chat, content, catalogs, correct=True, typed=True)
    assert "✅ Correct!" in chat.text
    chat.say("7")
    assert "There is no answer 7 here. Please tap a number from 1 to 4." in chat.text
    assert chat.session.progress["export_ready"].question == 1


def test_the_quiz_hint_names_the_questions_own_numbers_in_both_languages(chat: Chat, content: Content, catalogs: Catalogs):
    read_lessons(chat, content, "export_ready")
    assert len(content.module("export_ready").quiz[0].options) == 3
    chat.say("4")
    assert "There is no answer 4 here. Please tap a number from 1 to 3." in chat.text
    assert "1, 2, 3 or 4" not in chat.text
    chat.say("maybe")
    assert "Please tap a number from 1 to 3, or type the number of your answer." in chat.text
    chat.session.lang = "hi"
    chat.say("४")  # Devanagari digit four
    assert "यहाँ 4 नंबर का कोई जवाब नहीं है। कृपया 1 से 3 तक का कोई नंबर दबाएँ।" in chat.text
    chat.say("पता नहीं")
    assert "कृपया 1 से 3 तक का कोई नंबर दबाएँ, या अपने जवाब का नंबर लिखें।" in chat.text
    assert chat.session.progress["export_ready"].question == 0 and not chat.kinds("quiz_answer")


def shown_options(chat: Chat, content: Content) -> list[str]:
    """The option ids of the question on screen, in the order shown."""
    return [c.id.rsplit(".", 1)[1] for c in says(chat.last.outputs)[-1].choices]


def test_failed_quiz_retry_reshuffles_keeps_best_and_passes_once(chat: Chat, content: Content, catalogs: Catalogs):
    module = content.module("export_ready")
    read_lessons(chat, content, "export_ready")
    attempt1 = []
    for index in range(len(module.quiz)):
        attempt1.append(shown_options(chat, content))
        answer_quiz(chat, content, catalogs, correct=index < 3)
    p = chat.session.progress["export_ready"]
    assert (p.best, p.passed, p.attempt) == (3, False, 1)
    assert "You got 3 of 5." in chat.text and "You need 4 to pass" in chat.text
    assert [e.data["passed"] for e in chat.kinds("quiz_finished")] == [False]
    assert not chat.kinds("module_passed")

    chat.tap("Quiz again")
    attempt2 = []
    for index in range(len(module.quiz)):
        shown = shown_options(chat, content)
        attempt2.append(shown)
        ctx = TurnContext(chat.session, catalogs)
        assert shown == [o.id for o in training.option_order(ctx, module, module.quiz[index], 2)]
        answer_quiz(chat, content, catalogs, correct=True)
    assert attempt1 == [[o.id for o in q.options] for q in module.quiz]
    assert any(a != b for a, b in zip(attempt1, attempt2)), "the retry shows at least one question's options in a new order"
    p = chat.session.progress["export_ready"]
    assert (p.best, p.passed, p.attempt) == (5, True, 2)
    assert "🎉 Passed!" in chat.text
    assert [e.data for e in chat.kinds("module_passed")] == [{"module": "export_ready", "score": 5}]

    chat.send(Inbound.tap("go:export_ready"))
    assert "You passed" in chat.text
    chat.tap("Quiz again")
    take_quiz(chat, content, catalogs, right=1)
    p = chat.session.progress["export_ready"]
    assert (p.best, p.passed, p.attempt) == (5, True, 3)
    assert len(chat.kinds("module_passed")) == 1
    assert [e.data["attempt"] for e in chat.kinds("quiz_started")] == [1, 2, 3]


def test_taps_on_an_earlier_question_or_attempt_are_never_scored(chat: Chat, content: Content, catalogs: Catalogs):
    module = content.module("export_ready")
    read_lessons(chat, content, "export_ready")
    q1_right = button(chat.last.outputs, str(list(module.quiz[0].options).index(module.quiz[0].correct) + 1))
    answer_quiz(chat, content, catalogs, correct=False)
    before = copy.deepcopy(chat.session)
    answered = len(chat.kinds("quiz_answer"))
    turn = chat.send(Inbound.tap(q1_right))  # question 1's right answer, tapped while question 2 is on screen
    assert isinstance(turn.outputs[0], Toast) and len(turn.outputs) == 1
    assert turn.session == before and len(chat.kinds("quiz_answer")) == answered
    for _ in range(len(module.quiz) - 1):
        answer_quiz(chat, content, catalogs, correct=False, typed=True)
    chat.tap("Quiz again")
    attempt1_payloads = [q1_right]
    before = copy.deepcopy(chat.session)
    answered = len(chat.kinds("quiz_answer"))
    for payload in attempt1_payloads:
        turn = chat.send(Inbound.tap(payload))
        assert [type(o) for o in turn.outputs] == [Toast]
    assert chat.session == before and len(chat.kinds("quiz_answer")) == answered
    assert chat.session.progress["export_ready"].score == 0


def test_passing_the_required_modules_emits_the_event_once(chat: Chat, content: Content, catalogs: Catalogs):
    pass_module(chat, content, catalogs, "export_ready")
    pass_module(chat, content, catalogs, "payments")
    assert not chat.kinds("required_modules_passed")
    pass_module(chat, content, catalogs, "alibaba")
    assert len(chat.kinds("required_modules_passed")) == 1
    assert "You have passed all the core modules" in chat.text
    pass_module(chat, content, catalogs, "documents")
    chat.send(Inbound.tap("go:alibaba"))
    chat.tap("Quiz again")
    take_quiz(chat, content, catalogs, right=5)
    assert len(chat.kinds("required_modules_passed")) == 1
    assert len(chat.kinds("module_passed")) == 4


def test_passing_the_core_modules_promises_a_startup_only_when_the_score_gets_there(chat: Chat, content: Content,
                                                                                     catalogs: Catalogs):
    from bot.core.leads import readiness

    chat.session.profile.update(iec="no", gst="no", udyam="no", experience="never", turnover="under_40_lakh")
    for module_id in ("export_ready", "payments", "alibaba"):
        pass_module(chat, content, catalogs, module_id)
    result = readiness(content.qualification, content, chat.session.profile, chat.session.progress)
    assert not result.qualifies and not result.missing_modules  # every module passed, the score is short
    assert "export-ready on paper" not in chat.text and "will help you list" not in chat.text
    assert f"Your export readiness is {result.score}/100. At {result.threshold}, a partner startup" in chat.text
    assert "• Get an IEC on dgft.gov.in: ₹500 fee, valid for life (+15)" in chat.text
    assert "Send /score to see your score item by item." in chat.text


def test_progress_shows_the_percentage(chat: Chat, content: Content, catalogs: Catalogs):
    chat.say("/progress")
    assert "Modules passed: 0 of 11 (0%)" in chat.text
    pass_module(chat, content, catalogs, "export_ready")
    chat.say("/progress")
    share = catalogs.percent("en", 1 / 11)
    assert share == "9%"
    assert f"Modules passed: 1 of 11 ({share})" in chat.text
    assert "✅ <b>Get export-ready</b>: passed, best 5/5" in chat.text
    assert chat.session.flow == "menu"


def test_progress_in_hindi_uses_hindi_text(chat: Chat, catalogs: Catalogs):
    chat.say("/language")
    chat.tap("हिन्दी")
    chat.say("/progress")
    heading = catalogs.gettext("hi", "<b>Your progress</b>")
    assert DEVANAGARI.search(heading) and heading in chat.text


def test_lesson_resumes_after_a_quiz_question_is_interrupted_by_a_command(chat: Chat, content: Content, catalogs: Catalogs):
    read_lessons(chat, content, "export_ready")
    answer_quiz(chat, content, catalogs, correct=True)
    chat.say("/help")
    assert content.module("export_ready").quiz[1].text in chat.text
    answer_quiz(chat, content, catalogs, correct=True)
    assert chat.session.progress["export_ready"].score == 2


def test_module_started_is_emitted_once(chat: Chat):
    """Regression: showing lesson 1 again (/start, reopening it) logged the module as started again."""
    chat.send(Inbound.tap("go:export_ready"))
    chat.say("/start")
    chat.say("/learn")
    chat.send(Inbound.tap("go:export_ready"))
    assert len(chat.kinds("module_started")) == 1


# ----------------------------------------------------------------- property: no input breaks the engine
COMMANDS = ["/start", "/start ref_x", "/help", "/language", "/cancel", "/restart", "/delete_my_data", "/learn",
            "/progress", "/profile", "/stop_reminders", "/stop_broadcasts", "/start_broadcasts", "/nonsense"]
WORDS = ["1", "2", "3", "4", "७", "yes", "haan", "no", "नहीं", "Asha", "UP", "Done", "next", "aage", "confirm", "change",
         "9876543210", "1, 3", "english", "हिन्दी", "state", "", " ", "\x00", "🙏", "x" * 5000]
FORGED = ["", ":", "0:", "999:yes", "go:", "go:nowhere", "go:export_ready", "go:alibaba", "1:t.europe", "3:e.summary",
          "5:a.nope", "abc", "-1:yes"]

actions = st.one_of(
    st.tuples(st.just("say"), st.one_of(st.sampled_from(WORDS), st.text(max_size=50))),
    st.tuples(st.just("command"), st.sampled_from(COMMANDS)),
    st.tuples(st.just("seen"), st.integers(min_value=0, max_value=10_000)),
    st.tuples(st.just("forged"), st.one_of(st.sampled_from(FORGED), st.text(max_size=20))),
    st.tuples(st.just("media"), st.sampled_from(["sticker", "voice", "photo", "video", ""])),
    st.tuples(st.just("contact"), st.sampled_from(["+919876543210", "12345", ""])),
)


def starting_point(engine: Engine, content: Content, where: str) -> tuple[Session, list[str]]:
    """A session at ``where`` and the button payloads the owner has seen so far."""
    if where == "new":
        return engine.new_session(None, seed=3), []
    chat = Chat(engine)
    seen: list[str] = []
    chat.say("/start")
    for step in (lambda: chat.tap("English"), lambda: fill_profile(chat), lambda: chat.tap("Confirm")):
        step()
        seen += [c.id for say in says(chat.last.outputs) for c in say.choices]
        if where == "onboarding":
            return chat.session, seen
    if where == "lesson":
        chat.send(Inbound.tap("go:export_ready"))
    elif where == "quiz":
        read_lessons(chat, content, "export_ready")
    seen += [c.id for say in says(chat.last.outputs) for c in say.choices]
    return chat.session, seen


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["new", "onboarding", "menu", "lesson", "quiz"]), st.lists(actions, min_size=1, max_size=40))
def test_no_sequence_of_events_breaks_the_engine(engine: Engine, content: Content, where, script):
    session, seen = starting_point(engine, content, where)
    for kind, value in script:
        if kind == "say":
            inbound = Inbound.say(value)
        elif kind == "command":
            inbound = Inbound.say(value)
        elif kind == "seen":
            inbound = Inbound.tap(seen[value % len(seen)]) if seen else Inbound.say("hi")
        elif kind == "forged":
            inbound = Inbound.tap(value)
        elif kind == "media":
            inbound = Inbound.media(value)
        else:
            inbound = Inbound.contact(value)
        before = copy.deepcopy(session)
        turn = engine.handle(session, inbound)
        assert session == before
        assert turn.outputs, (inbound, session)
        new = turn.session
        assert new.flow in KNOWN_FLOWS
        assert new.lang in ("hi", "en")
        assert new.seq >= session.seq
        if new.flow == "onboarding":
            assert new.step in content.onboarding.steps
        if new.flow in ("lesson", "quiz"):
            assert content.module(new.step) is not None
        if new.flow == "refused":
            assert new.profile == {}
        assert set(new.profile) <= {s.field for s in content.onboarding.steps.values()}
        for module_id, p in new.progress.items():
            module = content.module(module_id)
            assert module is not None
            assert 0 <= p.lesson <= len(module.lessons)
            assert 0 <= p.question <= len(module.quiz) and 0 <= p.score <= len(module.quiz)
        seen += [c.id for say in says(turn.outputs) for c in say.choices]
        session = new


def test_after_confirming_the_profile_an_answer_can_be_changed_and_the_score_follows(chat: Chat, content: Content):
    assert chat.profile["iec"] == "no"
    before = L.readiness(content.qualification, content, chat.profile, chat.session.progress).score
    chat.say("/profile")
    details = says(chat.last.outputs)[0]
    assert "Your details:" in details.text and [c.label for c in details.choices] == ["Change an answer"]
    chat.send(Inbound.tap(details.choices[0].id))
    assert "Which answer do you want to change?" in chat.text
    chat.tap("IEC")
    assert chat.session.flow == "onboarding" and chat.session.step == "iec"
    chat.say("yes")
    assert chat.session.step == "summary" and "IEC: Yes" in chat.text
    assert chat.kinds("profile_changed") == []  # nothing follows until the owner confirms
    chat.tap("Confirm")
    assert [e.data for e in chat.kinds("profile_changed")] == [{"field": "iec"}]
    assert chat.profile["iec"] == "yes" and chat.session.onboarded and chat.session.flow == "menu"
    assert f"Your export readiness is now {before + 15}/100" in chat.text
    assert len(chat.kinds("onboarding_confirmed")) == 1  # confirmed once, long ago: nothing starts over


def test_a_change_not_confirmed_leaves_the_details_as_they_were(chat: Chat):
    chat.say("/profile")
    edit = says(chat.last.outputs)[0].choices[0].id
    chat.send(Inbound.tap(edit))
    chat.tap("Your name")
    chat.say("Typo Namee")
    assert chat.session.step == "summary" and "Typo Namee" in chat.text
    chat.say("/cancel")
    assert "Okay, cancelled. Your details are as they were." in chat.text
    assert chat.profile["owner_name"] == "Asha Devi" and chat.session.flow == "menu" and not chat.session.draft
    # Leaving for the training in the middle of a change does the same.
    chat.send(Inbound.tap(edit))
    chat.tap("Your name")
    chat.say("Someone Else")
    chat.say("/learn")
    assert chat.profile["owner_name"] == "Asha Devi" and not chat.session.draft.get("reedit")
    assert chat.kinds("profile_changed") == []
    fresh = chat.engine.new_session("en")
    turn = chat.engine.handle(fresh, Inbound.tap(edit))  # someone not onboarded taps it
    assert not any("Which answer" in o.text for o in says(turn.outputs))
    assert not [e for e in turn.events if e.kind == "profile_changed"] and not turn.session.draft.get("reedit")


# ----------------------------------------------------------------- features plug in through the router
def test_a_feature_plugs_in_without_touching_the_engine(content: Content, catalogs: Catalogs):
    from bot.core import features
    from bot.core.router import Feature

    def hello(kernel, t: TurnContext, name: str) -> None:
        t.say(f"Hello from {name}, {t.s.profile.get('owner_name', 'friend')}!")
        kernel.ask_current(t, again=True)

    engine = Engine(content, catalogs, [*features.standard(), Feature("hello", commands={"hello": hello})])
    chat = start(engine)
    fill_profile(chat)
    chat.tap("Confirm")
    assert "Tap a module to open it." in chat.text  # training's home, reached through the router
    chat.say("/hello")
    assert chat.text.startswith("Hello from hello, Asha Devi!")
    # Without the training feature the same engine runs onboarding, and /learn is just unknown.
    bare = Chat(Engine(content, catalogs))
    bare.say("/start")
    bare.say("/learn")
    assert "Sorry, I don't know that command." in bare.text


def test_two_features_cannot_claim_the_same_command(content: Content, catalogs: Catalogs):
    from bot.core import features
    from bot.core.router import Feature

    with pytest.raises(ValueError, match="command 'score' is claimed by two features"):
        Engine(content, catalogs, [*features.standard(), Feature("other", commands={"score": lambda k, t, n: None})])
