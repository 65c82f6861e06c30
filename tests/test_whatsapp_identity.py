"""Who a WhatsApp user is: business-scoped user ids, usernames that hide the number, number changes.

The real app and webhook against the Cloud API stand-in (tests/whatsapp_standin.py), which sends
``from_user_id`` and the contact's ``user_id`` as Meta does since usernames, leaves out ``from``
for a user whose username hides their number, refuses a send that names its user wrongly, and
posts the ``system`` message of a number change. What is checked is what a user notices (their
progress follows them, the bot answers them) and what is stored (no phone number as a key, and
none at all after erasure).
"""

from __future__ import annotations

import json

import pytest

from bot.channels.whatsapp import WhatsAppChannel, is_bsuid, sender_ids
from tests.test_e2e_onboarding import TYPED_EN
from tests.test_whatsapp import Harness, wa  # noqa: F401 - the fixture
from tests.whatsapp_standin import check

pytestmark = [pytest.mark.timeout(60)]

NUMBER, BSUID = "919812345678", "IN.1648738043044942"
NEW_NUMBER, NEW_BSUID = "919900011122", "IN.7730019283746610"


async def onboard(wa: Harness, address: str, *, until: str | None = None) -> None:
    """``address`` types their way through onboarding (stopping before ``until``), and confirms."""
    api = wa.api
    await api.send_text(address, "Hi")
    for step_id, text in TYPED_EN:
        if step_id == until:
            return
        wa.expect(address, "hi" if step_id == "language" else "en", step_id)
        assert await api.send_text(address, text) == 200
    wa.expect(address, "en", "summary")
    await api.send_text(address, "1")
    api.new_messages(address)


async def refs(wa: Harness) -> list[str]:
    return [r[0] for r in await wa.app.db.fetchall("SELECT user_ref FROM users WHERE channel = 'whatsapp' ORDER BY id")]


async def chat_refs(wa: Harness) -> set[str]:
    """Every ref the WhatsApp rows of the chat-keyed tables hold."""
    found: set[str] = set()
    for table, column in (("outbox", "chat_ref"), ("chat_inbound", "chat_ref"), ("inbox", "chat_ref")):
        found |= {r[0] for r in await wa.app.db.fetchall(f"SELECT {column} FROM {table} WHERE channel = 'whatsapp'")}
    return found | set(await refs(wa))


async def test_a_user_whose_username_hides_their_number_onboards_and_is_answered_by_their_id(wa: Harness):
    api = wa.api
    await onboard(wa, BSUID, until="phone")
    phone = wa.expect(BSUID, "en", "phone")
    assert phone.kind == "text"  # no "share my number" button: WhatsApp did not say the number
    await api.send_text(BSUID, "098765 43210")
    wa.expect(BSUID, "en", "summary")
    await api.send_text(BSUID, "1")
    thanks, _menu = api.new_messages(BSUID)
    assert thanks.text == wa.tr("en", "Thank you, {name}! Your profile is saved.", name="Asha Devi")
    assert await refs(wa) == [BSUID]
    user = await wa.user(BSUID)
    assert user["onboarded_at"] is not None and json.loads(user["profile"])["phone"] == "+919876543210"
    # every reply named the user by their id, as "recipient"
    assert {tuple(sorted(k for k in ("to", "recipient") if k in m.body)) for m in api.messages(BSUID)} == {("recipient",)}
    assert api.refusals == []


async def test_a_user_known_by_number_keeps_their_progress_when_their_business_scoped_id_arrives(wa: Harness):
    api = wa.api
    await onboard(wa, NUMBER, until="district")  # an older API version: numbers only
    assert await refs(wa) == [NUMBER]
    api.give_bsuid(NUMBER, BSUID)  # from now on WhatsApp also says who they are
    wa.expect(NUMBER, "en", "district")
    await api.send_text(NUMBER, "Jaipur")
    wa.expect(NUMBER, "en", "sector")  # the next question: nothing was lost, nothing started over
    assert await refs(wa) == [BSUID]
    assert json.loads((await wa.user(BSUID))["profile"])["state"] == "rajasthan"
    assert NUMBER not in await chat_refs(wa)  # no number is a key any more, in any table
    assert "recipient" in api.messages(NUMBER)[-1].body
    assert api.refusals == []


async def test_the_number_a_user_writes_from_is_offered_at_the_phone_question(wa: Harness):
    api = wa.api
    api.give_bsuid(NUMBER, BSUID)
    await onboard(wa, NUMBER, until="phone")
    phone = wa.expect(NUMBER, "en", "phone")
    assert phone.kind == "button" and phone.titles == ["📱 +91 98123 45678"]
    await api.tap(NUMBER, phone, "📱 +91 98123 45678")
    wa.expect(NUMBER, "en", "summary")
    assert json.loads((await wa.user(BSUID))["profile"])["phone"] == "+919812345678"
    assert await refs(wa) == [BSUID]


async def test_after_a_number_change_the_owner_carries_on_where_they_were(wa: Harness):
    api = wa.api
    api.give_bsuid(NUMBER, BSUID)
    await onboard(wa, NUMBER)
    assert await api.change_number(NUMBER, NEW_NUMBER, new_bsuid=NEW_BSUID) == 200
    assert api.new_messages(NUMBER) == []  # a system message needs no answer
    await api.send_text(NEW_NUMBER, "/start")
    welcome, menu = api.new_messages(NEW_NUMBER)
    assert welcome.text == wa.tr("en", "Welcome back! Let's continue where you left off.")
    assert menu.list_button == "Choose"  # the module menu: onboarded, not asked their language again
    assert await refs(wa) == [NEW_BSUID]
    assert (await wa.user(NEW_BSUID))["onboarded_at"] is not None
    assert api.refusals == []


async def test_a_fresh_record_from_the_new_number_gives_way_to_the_owners_own(wa: Harness):
    """WhatsApp may deliver the user's first message from the new number before the system message."""
    api = wa.api
    api.give_bsuid(NUMBER, BSUID)
    await onboard(wa, NUMBER)
    api.give_bsuid(NEW_NUMBER, NEW_BSUID)
    await api.send_text(NEW_NUMBER, "Hi")
    wa.expect(NEW_NUMBER, "hi", "language")  # a stranger, as far as the bot can tell
    assert await refs(wa) == [BSUID, NEW_BSUID]
    await api.change_number(NUMBER, NEW_NUMBER, new_bsuid=NEW_BSUID)
    assert await refs(wa) == [NEW_BSUID]
    user = await wa.user(NEW_BSUID)
    assert user["onboarded_at"] is not None and json.loads(user["profile"])["owner_name"] == "Asha Devi"
    await api.send_text(NEW_NUMBER, "/start")
    welcome, _menu = api.new_messages(NEW_NUMBER)
    assert welcome.text == wa.tr("en", "Welcome back! Let's continue where you left off.")


async def test_after_erasure_no_phone_number_is_left_in_any_table(wa: Harness):
    api = wa.api
    api.give_bsuid(NUMBER, BSUID)
    await onboard(wa, NUMBER)
    await api.send_text(NUMBER, "/delete_my_data")
    await api.send_text(NUMBER, "yes")
    assert any("deleted" in m.text for m in api.new_messages(NUMBER))
    await wa.app.inbox.flush()
    tables = await wa.app.db.tables()
    for table in tables:
        for row in await wa.app.db.fetchall(f"SELECT * FROM {table}"):  # noqa: S608
            flat = " ".join(str(v) for v in tuple(row))
            for number in ("9812345678", "9876543210"):  # the number they wrote from, the one they gave
                assert number not in flat, (table, flat[:200])


def test_webhook_ids_are_read_as_meta_sends_them():
    contacts = [{"profile": {"name": "A"}, "wa_id": NUMBER, "user_id": BSUID}]
    assert sender_ids({"from": NUMBER, "from_user_id": BSUID}, contacts) == (NUMBER, BSUID)
    assert sender_ids({"from": NUMBER}, contacts) == (NUMBER, BSUID)  # the contact's user_id
    assert sender_ids({"from_user_id": BSUID}) == (None, BSUID)  # a username hides the number
    assert sender_ids({"from": NUMBER}) == (NUMBER, None)  # an older API version
    assert sender_ids({"from": "IN.ENT.11815799212886844830"}) == (None, "IN.ENT.11815799212886844830")
    assert sender_ids({"from": "+91 98"}, []) == (None, None)  # neither: the message is skipped
    assert sender_ids({"from_user_id": "in.123; DROP"}) == (None, None)
    assert is_bsuid(BSUID) and not is_bsuid(NUMBER) and not is_bsuid("IN.") and not is_bsuid("IND.123")


def test_admins_stay_known_by_the_number_their_settings_name():
    channel = WhatsAppChannel.__new__(WhatsAppChannel)
    channel.admin_numbers = frozenset({NUMBER})
    assert channel.ref_for(NUMBER, BSUID) == NUMBER
    assert channel.ref_for(NEW_NUMBER, NEW_BSUID) == NEW_BSUID
    assert channel.ref_for(NEW_NUMBER, None) == NEW_NUMBER


def test_the_stand_in_refuses_a_send_that_names_its_user_wrongly():
    text = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}
    assert check({**text, "to": BSUID}) == "to must be a phone number"
    assert check({**text, "recipient": NUMBER}) == "recipient must be a business-scoped user id"
    assert check(text) == "to or recipient is required"
    assert check({**text, "recipient": BSUID}) is None and check({**text, "to": NUMBER}) is None
