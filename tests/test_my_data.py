"""/my_data tells everything stored, and staff chats get their own answers to /my_data and
/delete_my_data: the real bot over HTTP against the Bot API stand-in, a real SQLite file.
"""

from __future__ import annotations

import re

import pytest

from bot.core.messages import UserKey
from tests.test_leads_e2e import DEVANAGARI, Harness, answers_to, card_for, h, join, qualify, rows  # noqa: F401 (h: fixture)

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

CODE = re.compile(r"\b([0-9A-Z]{5}-[0-9A-Z]{5})\b")


async def ask(h: Harness, uid: int, text: str, expect: str):
    h.api.send_text(uid, text)
    return await h.api.wait_for_message(uid, lambda m: expect in (m.text or m.caption or ""))


async def test_my_data_names_the_startup_and_lists_answers_messages_opt_outs_and_the_certificate(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    await qualify(h, 101)
    photo = await api.wait_for_message(101, lambda m: m.kind == "photo")
    [certificate] = await rows(app, "SELECT code FROM certificates")
    assert certificate["code"] in photo.caption
    card = await card_for(api, 501)
    api.tap_button(501, card, "Accept")
    await api.wait_for_message(101, lambda m: "Good news" in (m.text or ""))
    await ask(h, 101, "/stop_reminders", "reminder")
    await ask(h, 101, "/stop_broadcasts", "announcement")

    text = (await ask(h, 101, "/my_data", "Everything I have stored about you")).text
    assert "Asha Devi" in text and "Consent: given on" in text
    assert "Pital Nagri Export Labs" in text  # who received the profile (DPDP s.11(1)(b))
    # quiz answers per module: the seeded modules have none stored, the answer given here is stored
    assert "Winning on Alibaba.com: 1 quiz attempt(s), best 5/5; 1 answer(s) stored" in text
    assert "Get export-ready: 1 quiz attempt(s), best 5/5; 0 answer(s) stored" in text
    sent = await rows(app, "SELECT COUNT(*) AS n FROM outbox o JOIN users u ON u.id = o.user_id "
                           "WHERE u.user_ref = '101' AND o.kind != 'reply' AND o.status = 'sent'")
    assert sent[0]["n"] >= 1
    assert re.search(rf"Messages I sent you \(reminders, notices, announcements\): {sent[0]['n']}, the last on \d+ \w+ \d{{4}}\.", text)
    assert "Reminders: off, as you asked." in text and "Announcements: off, as you asked." in text
    assert f"Your certificate: code {certificate['code']}, issued on" in text

    await ask(h, 101, "/language", "Choose your language")
    api.send_text(101, "हिन्दी")
    await api.wait_for_message(101, lambda m: bool(DEVANAGARI.search(m.text or "")))
    hindi = (await ask(h, 101, "/my_data", "Asha Devi")).text
    for english in ("Messages I sent you", "Reminders: off", "Announcements: off", "Your certificate", "answer(s) stored"):
        assert english not in hindi, english
    assert "Pital Nagri Export Labs" in hindi and certificate["code"] in hindi
    assert api.refusals == []


async def test_my_data_of_a_stranger_and_an_unknown_referral_code_claim_nothing(h: Harness):
    api, app = h.api, h.app
    api.add_user(120, first_name="Kiran", language_code="en")
    await ask(h, 120, "/my_data", "I have nothing stored about you.")
    api.send_text(120, "/start ref_NOSUCHCODE")
    await api.wait_for_message(120, lambda m: "Choose your language" in (m.text or ""))
    [user] = await rows(app, "SELECT referral_code FROM users WHERE user_ref = '120'")
    assert user["referral_code"] is None
    assert await rows(app, "SELECT * FROM events WHERE kind = 'referral'") == []
    text = (await ask(h, 120, "/my_data", "Everything I have stored")).text
    assert "partner's link" not in text

    # a real startup's code is kept, in any case, and /my_data says so
    _, link = await app.leads.referral("up_ganga")
    code = link.split("start=ref_", 1)[1]
    api.add_user(121, first_name="Ravi", language_code="en")
    api.send_text(121, f"/start ref_{code.upper()}")
    await api.wait_for_message(121, lambda m: "Choose your language" in (m.text or ""))
    [user] = await rows(app, "SELECT referral_code FROM users WHERE user_ref = '121'")
    assert user["referral_code"].lower() == code.lower()
    assert "You came through a partner's link" in (await ask(h, 121, "/my_data", "Everything I have stored")).text


async def test_a_staff_chat_is_told_what_is_stored_about_it_and_can_unlink_itself(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    text = (await ask(h, 501, "/my_data", "this chat")).text
    assert "I have nothing stored about you" not in text
    assert re.search(r"This chat is linked to the partner startup Pital Nagri Export Labs since \d+ \w+ \d{4}, in English\.", text)
    assert "/delete_my_data" in text

    question = await ask(h, 501, "/delete_my_data", "Unlink this chat")
    assert "Pital Nagri Export Labs" in question.text and [label for label, _ in question.buttons] == ["Yes", "No"]
    api.tap_button(501, question, "No")
    await api.wait_for_message(501, lambda m: "nothing has changed" in (m.text or ""))
    assert len(await rows(app, "SELECT * FROM startup_staff WHERE chat_ref = '501'")) == 1

    question = await ask(h, 501, "/delete_my_data", "Unlink this chat")
    api.tap_button(501, question, "Yes")
    await api.wait_for_message(501, lambda m: "no longer linked" in (m.text or ""))
    assert await rows(app, "SELECT * FROM startup_staff") == []
    assert await rows(app, "SELECT * FROM invites WHERE used_by LIKE '%501'") == []
    # no owner onboarding was started for the staff chat, and nothing is stored about it any more
    assert not any("Choose your language" in (m.text or "") for m in api.messages(501))
    assert await rows(app, "SELECT * FROM users WHERE user_ref = '501'") == []
    await ask(h, 501, "/my_data", "I have nothing stored about you.")
    assert question.buttons == []  # the confirmation cannot be tapped twice

    # a lead for the startup no longer reaches the unlinked chat
    await qualify(h, 102)
    await api.wait_for_message(900, lambda m: "no staff chat" in (m.text or ""))
    assert not any((m.text or "").startswith("🆕") for m in api.messages(501))
    assert api.refusals == []


async def test_staff_in_hindi_get_the_link_and_the_unlink_question_in_hindi(h: Harness):
    api = h.api
    await join(h, 502, "up_brass", "hi")
    text = (await ask(h, 502, "/my_data", "Pital Nagri Export Labs")).text
    assert DEVANAGARI.search(text) and "This chat" not in text
    question = await ask(h, 502, "/delete_my_data", "Pital Nagri Export Labs")
    assert DEVANAGARI.search(question.text) and "Unlink" not in question.text
    assert [label for label, _ in question.buttons] == ["हाँ", "नहीं"]
