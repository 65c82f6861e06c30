"""Admins and startup staff on WhatsApp, end to end: the real webhook and Graph API client against
the Cloud API stand-in, a real SQLite file, the delivery worker for the outbox; no mocks.

An admin whose number is in ``WHATSAPP_ADMIN_NUMBERS`` builds a broadcast on WhatsApp (the
36-state screen paged with "More…") and the owners of the segment receive it; lead notices to
the admins reach the WhatsApp admin in a run on WhatsApp alone; a staff member joins with the
wa.me invite's prefilled text, gets a lead card on WhatsApp and accepts it; anyone else's
``/broadcast`` is an unknown command; a malformed number stops start-up naming the setting.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import cli
from bot.app import App
from bot.channels.whatsapp import MORE, WhatsAppSender
from bot.config import ConfigError, Settings
from bot.core.wizard import ADMIN_HELP
from bot.runtime import BotProcess
from bot.services.clock import ManualClock
from bot.services.leads import ACCEPTED, ADMIN_NO_STARTUP, OWNER_ACCEPTED, STAFF_WELCOME
from tests.test_leads_e2e import REGISTRY, right_answer, seed_owner
from tests.test_reminders import START
from tests.test_segments import Owner, seed
from tests.test_whatsapp import VERIFY_TOKEN, Harness, approved_templates
from tests.whatsapp_standin import Sent, WhatsAppStandin

pytestmark = [pytest.mark.timeout(90)]

ADMIN = "919810000001"  # configured below as "+91 98100 00001": spaces and + are allowed
OTHER_ADMIN = "447700900123"
TELEGRAM_ADMIN = 111222333  # ADMIN_IDS set too, but this run has no Telegram
UNKNOWN = "Sorry, I don't know that command. Send /help to see what I can do."


class World(Harness):
    """The stand-in, the app and the webhook (``tests.test_whatsapp.Harness``), plus delivery on demand."""

    async def deliver(self) -> int:
        """Run the outbox once, as the running bot's delivery worker does."""
        worker = self.app.delivery({"whatsapp": WhatsAppSender(self.client, self.app.texts)}, per_chat_interval=0.0)
        return await worker.drain()

    async def outbox(self, sql_where: str = "1") -> list[dict]:
        return [dict(r) for r in await self.app.db.fetchall(
            f"SELECT channel, chat_ref, kind, status, dedup_key, error FROM outbox WHERE {sql_where} ORDER BY id")]


@pytest.fixture
async def w(tmp_path: Path) -> AsyncIterator[World]:
    """WhatsApp alone (no TELEGRAM_BOT_TOKEN), with two WhatsApp admins and a Telegram admin id."""
    clock = ManualClock(START)
    async with WhatsAppStandin(clock=clock.now, approved=approved_templates()) as api:
        settings = Settings.from_env({
            "DATABASE_PATH": str(tmp_path / "bot.sqlite3"), "WHATSAPP_TOKEN": api.token,
            "WHATSAPP_PHONE_NUMBER_ID": api.phone_number_id, "WHATSAPP_APP_SECRET": api.app_secret,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_API_BASE_URL": api.base_url, "WEBHOOK_LISTEN": "127.0.0.1",
            "WHATSAPP_PORT": "1", "ADMIN_IDS": str(TELEGRAM_ADMIN), "BROADCAST_RATE": "500",
            "WHATSAPP_ADMIN_NUMBERS": f"+91 98100 00001, {OTHER_ADMIN}", "WHATSAPP_DISPLAY_NUMBER": "+1 555 078 3881",
        }, env_file=None)
        from dataclasses import replace

        settings = replace(settings, whatsapp_port=0)  # any free port
        process = BotProcess(settings, clock=clock, background=False)
        await process.start()
        host, port = process.whatsapp_runner.addresses[0][:2]
        api.webhook_url = f"http://{host}:{port}/whatsapp"
        try:
            yield World(api, process.app, process.whatsapp.client, clock)
        finally:
            await process.stop()


async def tap(w: World, wa_id: str, sent: Sent, label: str) -> list[Sent]:
    """Tap ``label`` on ``sent`` (paging with "More…" until it shows); what the bot sent back."""
    more = w.tr("en", MORE)
    while label not in sent.titles and not any(o.get("description") == label for o in sent.options):
        assert more in sent.titles, (label, sent.titles)
        assert await w.api.tap(wa_id, sent, more) == 200
        [sent] = w.api.new_messages(wa_id)
    assert await w.api.tap(wa_id, sent, label) == 200
    return w.api.new_messages(wa_id)


# ----------------------------------------------------------------- admins
async def test_an_admin_on_whatsapp_broadcasts_an_announcement_to_a_segment_and_the_owners_get_it(w: World):
    api, app = w.api, w.app
    up_hi, up_en, gujarat = "919800000011", "919800000012", "919800000013"
    await seed(app.db, [Owner(int(up_hi), "hi", channel="whatsapp"), Owner(int(up_en), "en", channel="whatsapp"),
                        Owner(int(gujarat), "en", "gujarat", channel="whatsapp")])
    for owner in (up_hi, up_en, gujarat):  # they wrote today: inside WhatsApp's window, the text itself goes
        assert await api.send_text(owner, "/progress") == 200
        assert api.new_messages(owner)

    assert await api.send_text(ADMIN, "/broadcast") == 200
    [what] = api.new_messages(ADMIN)
    assert what.text.startswith("*New broadcast*") and what.kind == "list"  # modules + 2 buttons: more than 3
    [prompt] = await tap(w, ADMIN, what, "✍️ Announcement")
    assert prompt.text.startswith("Send the announcement in *English*")
    await api.send_text(ADMIN, "Free export webinar on Friday at 4 pm.")
    [prompt] = api.new_messages(ADMIN)
    assert "*Hindi*" in prompt.text
    await api.send_text(ADMIN, "शुक्रवार शाम 4 बजे मुफ़्त एक्सपोर्ट वेबिनार।")
    [who] = api.new_messages(ADMIN)
    assert "Recipients now: *3* (हिन्दी 1 · English 2)" in who.text, who.text

    # 36 states and Done: a list in pages of nine; "More…" pages the admin's screen, not an owner question
    [states] = await tap(w, ADMIN, who, "State")
    assert states.kind == "list" and states.titles[-1] == w.tr("en", MORE)
    [states] = await tap(w, ADMIN, states, "Uttar Pradesh")  # on the third page
    assert states.titles[0] == "Andhra Pradesh" and states.titles[-1] == w.tr("en", MORE)  # redrawn as a new list
    [who] = await tap(w, ADMIN, states, "Done")  # on the last page
    assert "• State: Uttar Pradesh" in who.text and "Recipients now: *2* (हिन्दी 1 · English 1)" in who.text, who.text
    [when] = await tap(w, ADMIN, who, "Next ▶️")
    assert when.text.startswith("*When should it go out?*")
    summary, channels, english, hindi = await tap(w, ADMIN, when, "Now")
    assert summary.text.startswith("*Preview*") and "WhatsApp 2" in channels.text
    assert "Telegram" not in channels.text, channels.text  # this run reaches nobody on Telegram
    assert english.text.startswith("*— English —*") and "Free export webinar" in english.text
    assert hindi.kind == "list" and len(hindi.options) == 4  # four buttons: a list
    [done] = await tap(w, ADMIN, hindi, "✅ Confirm")
    assert done.text.startswith("✅ Broadcast #1 is queued for 2 owners"), done.text
    assert "/stats shows what went out" in done.text and "status message" not in done.text  # nothing is edited in place on WhatsApp

    await w.deliver()
    [got_hi] = api.new_messages(up_hi)
    [got_en] = api.new_messages(up_en)
    assert "शुक्रवार शाम 4 बजे मुफ़्त एक्सपोर्ट वेबिनार।" in got_hi.text
    assert "Free export webinar on Friday at 4 pm." in got_en.text
    assert api.new_messages(gujarat) == []
    row = await app.db.fetchone("SELECT created_by, admin_channel, admin_chat FROM broadcasts")
    assert tuple(row) == (f"whatsapp:{ADMIN}", None, None)  # no status message: WhatsApp cannot edit one
    assert api.refusals == []


async def test_an_admins_language_on_whatsapp_is_that_of_their_owner_conversation_else_english(w: World):
    api, app = w.api, w.app
    await seed(app.db, [Owner(int(OTHER_ADMIN), "hi", channel="whatsapp")])  # this admin uses the bot in Hindi
    assert await api.send_text(OTHER_ADMIN, "/help") == 200
    [hindi] = api.new_messages(OTHER_ADMIN)
    assert w.tr("hi", ADMIN_HELP) in hindi.text and w.tr("hi", ADMIN_HELP) != w.tr("en", ADMIN_HELP)
    assert await api.send_text(ADMIN, "/help") == 200  # never talked to the bot as an owner
    [english] = api.new_messages(ADMIN)
    assert w.tr("en", ADMIN_HELP) in english.text
    assert await api.send_text(ADMIN, "/stats") == 200
    [stats] = api.new_messages(ADMIN)
    assert stats.text.startswith("*Funnel*")
    assert api.refusals == []


async def test_a_number_not_in_the_list_gets_the_owner_conversation_for_admin_commands(w: World):
    api, app = w.api, w.app
    owner = "919800000021"
    await seed(app.db, [Owner(int(owner), "en", channel="whatsapp")])
    replies = {}
    for command in ("/nonsense", "/broadcast", "/stats", "/broadcast_cancel"):
        assert await api.send_text(owner, command) == 200
        replies[command] = [m.text for m in api.new_messages(owner)]
    assert replies["/nonsense"][0] == UNKNOWN
    assert all(texts == replies["/nonsense"] for texts in replies.values()), replies
    assert await app.db.fetchall("SELECT * FROM broadcast_drafts") == []
    assert await app.db.fetchall("SELECT * FROM broadcasts") == []


async def test_an_admin_notice_in_a_whatsapp_only_run_reaches_the_whatsapp_admins(w: World):
    api, app = w.api, w.app
    for admin in (ADMIN, OTHER_ADMIN):  # they wrote today
        await api.send_text(admin, "/help")
        api.new_messages(admin)
    user_id = await seed_owner(app, 919800000031, channel="whatsapp", finished=True)
    assert await app.leads.evaluate(user_id) == 1  # the registry is empty: no startup can take it
    await w.deliver()
    notice = w.tr("en", ADMIN_NO_STARTUP, id=1, business="Asha Brass &amp; Sons", place="Moradabad, Uttar Pradesh",
                  sector="Handicrafts", score=app.texts.number("en", (await app.leads.repo.get_lead(1)).score))
    for admin in (ADMIN, OTHER_ADMIN):
        [got] = api.new_messages(admin)
        assert got.text == notice
    rows = await w.outbox("kind = 'admin_notice'")
    assert [(r["channel"], r["chat_ref"], r["status"]) for r in rows] == [
        ("whatsapp", OTHER_ADMIN, "sent"), ("whatsapp", ADMIN, "sent")]  # none for Telegram, which does not run
    assert len({r["dedup_key"] for r in rows}) == 2
    assert await w.outbox("status = 'failed'") == []
    assert api.refusals == []


# ----------------------------------------------------------------- staff
async def test_staff_join_with_the_wa_me_text_get_the_lead_card_on_whatsapp_and_accept_it(w: World, tmp_path: Path):
    api, app = w.api, w.app
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    await app.leads.import_file(registry)
    _, links, _ = await app.leads.invite_links("up_brass")
    wa_link = urllib.parse.urlsplit(links["whatsapp"])
    assert (wa_link.netloc, wa_link.path) == ("wa.me", "/15550783881")
    [text] = urllib.parse.parse_qs(wa_link.query)["text"]
    assert links["telegram"].endswith("?start=" + text)  # one invite, two links

    staff = "919700000001"
    assert await api.send_text(staff, f" {text} \n") == 200  # the prefilled text, as it arrives
    [welcome] = api.new_messages(staff)
    assert welcome.text == w.tr("en", STAFF_WELCOME, startup="Pital Nagri Export Labs", hours=48)
    assert await api.send_text("919700000002", text) == 200  # single use: nobody else can link with it
    [refused] = api.new_messages("919700000002")
    assert refused.text.startswith("This invite link does not work")

    owner = "919800000041"
    await seed_owner(app, int(owner), channel="whatsapp")
    assert await api.send_text(owner, right_answer(app, "alibaba")) == 200  # passes the last core module: qualifies
    api.new_messages(owner)
    await w.deliver()
    [card] = api.new_messages(staff)
    assert card.text.startswith("🆕 *Lead #1*") and "Asha Brass & Sons" in card.text
    assert card.titles == ["Accept", "Decline"]
    [answer] = await tap(w, staff, card, "Accept")
    assert answer.text.startswith(w.tr("en", ACCEPTED, id=1, startup="Pital Nagri Export Labs", owner="Asha Devi"))
    await w.deliver()
    [told] = [m for m in api.new_messages(owner) if "Pital Nagri Export Labs" in m.text]
    assert told.text == w.tr("en", OWNER_ACCEPTED, startup="Pital Nagri Export Labs", phone="+91 98765 43210")
    lead = await app.db.fetchone("SELECT status, startup_id FROM leads")
    assert tuple(lead) == ("accepted", "up_brass")
    assert api.refusals == []


def test_the_invite_command_prints_the_wa_me_link_when_whatsapp_is_configured(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "cli.sqlite3"))
    monkeypatch.setenv("BOT_USERNAME", "SaathiTestBot")
    (tmp_path / "startups.yaml").write_text(REGISTRY, encoding="utf-8")
    assert cli.main(["startups", "import", "startups.yaml"]) == 0
    assert cli.main(["startups", "invite", "up_brass"]) == 0
    assert "wa.me" not in capsys.readouterr().out  # WhatsApp not configured: the t.me link only
    for name, value in {"WHATSAPP_TOKEN": "EAAG-token", "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
                        "WHATSAPP_APP_SECRET": "app-secret", "WHATSAPP_VERIFY_TOKEN": "verify",
                        "WHATSAPP_DISPLAY_NUMBER": "+91 98765 00000"}.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["startups", "invite", "up_brass"]) == 0
    out = capsys.readouterr().out
    [code] = re.findall(r"^https://t\.me/SaathiTestBot\?start=join_([a-z0-9]{16})$", out, re.M)
    assert re.search(rf"^https://wa\.me/919876500000\?text=join_{code}$", out, re.M), out


# ----------------------------------------------------------------- settings
def test_a_malformed_whatsapp_admin_number_stops_start_up_naming_the_setting(tmp_path: Path, monkeypatch, capsys):
    settings = Settings.from_env({"WHATSAPP_ADMIN_NUMBERS": " +91 98765 43210 ,447700900123,"}, env_file=None)
    assert settings.whatsapp_admin_numbers == {"919876543210", "447700900123"}
    for bad in ("919876543210, 98765-abc", "919876543210,09876543210", "919876543210,+91", "12345678901234567"):
        with pytest.raises(ConfigError, match=r"^WHATSAPP_ADMIN_NUMBERS: entry \d is not a phone number"):
            Settings.from_env({"WHATSAPP_ADMIN_NUMBERS": bad}, env_file=None)
    with pytest.raises(ConfigError, match="^WHATSAPP_DISPLAY_NUMBER"):
        Settings.from_env({"WHATSAPP_DISPLAY_NUMBER": "98765 43210x"}, env_file=None)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "never.sqlite3"))
    monkeypatch.setenv("WHATSAPP_ADMIN_NUMBERS", "919876543210,0919876543211")
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("saathi: WHATSAPP_ADMIN_NUMBERS: entry 2 is not a phone number") and "0919876543211" not in err
    assert not (tmp_path / "never.sqlite3").exists()  # refused before anything started
