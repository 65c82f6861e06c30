"""WhatsApp's 24-hour window, approved templates and status webhooks, end to end.

The real webhook app and Graph API client over HTTP against the Cloud API stand-in, which
refuses what Meta refuses (a free-form message to a user silent for 24 hours: 131047; a template
not approved: 132001), a real SQLite file, and the delivery worker. Each test plays the phones
and checks what they received (free-form or which template, in which language, with which
parameters and button), what the outbox stored (held and why, sent, delivered, read), and what
admins are shown.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from bot.channels.whatsapp import GraphClient, GraphError, WhatsAppSender
from bot.core.messages import Choice, Inbound, Say, UserKey
from bot.core.segments import Segment
from bot.services.broadcast import Plan
from bot.services.dispatch import Who
from bot.storage.db import Database
from bot.storage.outbox import Outgoing
from bot.templates import read_templates
from tests.test_leads_e2e import PROFILE, seed_owner
from tests.test_whatsapp import ADMIN_ID, Harness, wa  # noqa: F401 - the fixture
from tests.whatsapp_standin import Sent, WhatsAppStandin

pytestmark = [pytest.mark.timeout(60)]
HOUR = 3600
ADMIN = Who(UserKey("telegram", str(ADMIN_ID)), platform_user_id=ADMIN_ID)


def worker(wa: Harness):
    return wa.app.delivery({"whatsapp": WhatsAppSender(wa.client, wa.app.texts)})


async def row_of(wa: Harness, row_id: int) -> dict:
    return dict(await wa.app.db.fetchone("SELECT * FROM outbox WHERE id = ?", (row_id,)))


async def enqueue(wa: Harness, chat: str, kind: str, say: Say, user_id: int | None = None) -> int:
    await wa.app.outbox.enqueue([Outgoing("whatsapp", chat, kind, say, user_id=user_id)], int(wa.clock.now()))
    row = await wa.app.db.fetchone("SELECT MAX(id) FROM outbox WHERE kind = ?", (kind,))
    return row[0]


async def owner(wa: Harness, wa_id: str, *, lang: str, name: str, writes: bool = True) -> int:
    """An onboarded WhatsApp owner; ``writes``: they send a message now (their window opens)."""
    user_id = await seed_owner(wa.app, int(wa_id), lang=lang, channel="whatsapp", profile={**PROFILE, "owner_name": name})
    if writes:
        assert await wa.api.send_text(wa_id, "/progress") == 200
        wa.api.new_messages(wa_id)
    return user_id


def texts_of(outputs) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Say)]


async def admin(wa: Harness, inbound: Inbound) -> list[Say]:
    reply = await wa.app.dispatcher.handle(ADMIN, inbound)
    assert reply is not None
    return [o for o in reply.outputs if isinstance(o, Say)]


async def admin_tap(wa: Harness, says: list[Say], label: str) -> list[Say]:
    [choice] = [c for s in says for c in s.choices if c.label == label]
    return await admin(wa, Inbound.tap(choice.id))


# ----------------------------------------------------------------- free-form, template, or wait
async def test_inside_the_window_the_message_goes_as_it_is_outside_as_the_template_in_the_owners_language(wa: Harness):
    api, me = wa.api, "919800000101"
    user_id = await owner(wa, me, lang="hi", name="रमेश")
    wa.clock.advance(3 * HOUR)  # wrote three hours ago: free-form is fine
    first = await enqueue(wa, me, "lead_notice", Say("✅ आपकी लीड स्वीकार हो गई।"), user_id)
    await worker(wa).drain()
    [notice] = api.new_messages(me)
    assert (notice.kind, notice.text) == ("text", "✅ आपकी लीड स्वीकार हो गई।")
    assert (await row_of(wa, first))["status"] == "sent" and (await row_of(wa, first))["template"] is None

    wa.clock.advance(22 * HOUR)  # now 25 hours: only the approved template may go
    second = await enqueue(wa, me, "lead_notice", Say("📞 स्टार्टअप ने आपसे संपर्क किया।"), user_id)
    await worker(wa).drain()
    [template] = api.new_messages(me)
    assert (template.kind, template.template_name, template.template_lang) == ("template", "lead_update", "hi")
    assert template.template_params == ["रमेश"] and template.payload == "wa.open"
    assert template.text.startswith("नमस्ते रमेश, एक्सपोर्ट स्टार्टअप")
    row = await row_of(wa, second)
    assert (row["status"], row["error"], row["message_ref"]) == ("held", "template_sent:lead_update", template.id)

    await api.tap_template(me, template)  # "देखें": the window opens, the full notice follows
    await worker(wa).drain()
    [full] = api.new_messages(me)
    assert full.text == "📞 स्टार्टअप ने आपसे संपर्क किया।"
    assert (await row_of(wa, second))["status"] == "sent"

    await api.tap_template(me, template)  # tapped again, nothing waits: back where they were
    again = api.new_messages(me)
    assert again and again[0].text.startswith(wa.tr("hi", "Welcome back! Let's continue where you left off."))
    assert api.refusals == []


async def test_a_message_with_no_template_waits_with_its_reason_until_the_user_writes(wa: Harness):
    api, staff = wa.api, "919800000202"
    api.window_open(staff)
    await wa.app.windows.inbound("whatsapp", [staff])  # a staff chat that last wrote now …
    wa.clock.advance(30 * HOUR)  # … 30 hours ago
    row_id = await enqueue(wa, staff, "lead_notice", Say("Lead #7 was withdrawn: the owner erased their data."))
    await worker(wa).drain()
    assert api.new_messages(staff) == [] and api.refusals == []  # not sent to be refused
    row = await row_of(wa, row_id)
    assert (row["status"], row["error"]) == ("held", "no_template:staff_notice")
    assert (await wa.app.outbox.counts())["held"] == 1  # what `saathi broadcast … --follow`'s counts show

    [stats] = await admin(wa, Inbound.say("/stats"))
    assert "Waiting on WhatsApp</b> until the user writes again: 1" in stats.text
    assert "• no approved template for “staff_notice”: 1" in stats.text

    await api.send_text(staff, "/leads")  # the user writes again, within the window
    await worker(wa).drain()
    assert "Lead #7 was withdrawn: the owner erased their data." in [m.text for m in api.new_messages(staff)]
    assert (await row_of(wa, row_id))["status"] == "sent"
    assert api.refusals == []


async def test_a_lead_card_to_staff_outside_the_window_goes_as_the_new_lead_template_in_the_cards_language(wa: Harness):
    api, staff = wa.api, "919800000303"
    card = Say("🆕 <b>लीड #12</b>\nकारोबार: Asha Brass & Sons", (Choice("lead:12:accept", "स्वीकार करें"),
                                                                   Choice("lead:12:decline", "मना करें")))
    row_id = await enqueue(wa, staff, "lead_card", card)  # this chat has never written to the bot
    await worker(wa).drain()
    [template] = api.new_messages(staff)
    assert (template.template_name, template.template_lang, template.template_params) == ("new_lead", "hi", [])
    assert (await row_of(wa, row_id))["status"] == "held"
    await api.tap_template(staff, template)  # "लीड देखें"
    await worker(wa).drain()
    [full] = api.new_messages(staff)
    assert full.kind == "button" and full.titles == ["स्वीकार करें", "मना करें"]
    assert full.text.startswith("🆕 *लीड #12*")
    assert api.refusals == []


async def test_when_whatsapp_says_the_window_is_closed_the_template_goes_at_once(wa: Harness):
    api, me = wa.api, "919800000404"
    user_id = await owner(wa, me, lang="en", name="Asha Devi")
    api.last_inbound[me] -= 30 * HOUR  # WhatsApp's own record is older than ours
    row_id = await enqueue(wa, me, "lead_notice", Say("✅ Your lead was accepted."), user_id)
    delivery = worker(wa)
    await delivery.drain()
    assert [why for _, why in api.refusals] == ["Re-engagement message: more than 24 hours have passed since the recipient last replied"]
    [template] = api.new_messages(me)
    assert (template.template_name, template.template_lang, template.template_params) == ("lead_update", "en", ["Asha Devi"])
    assert (await row_of(wa, row_id))["status"] == "held" and delivery.stats.templates == 1
    await api.send_text(me, "ok")  # writing opens the window just as tapping does
    await delivery.drain()
    assert "✅ Your lead was accepted." in [m.text for m in api.new_messages(me)]


async def test_a_template_whatsapp_has_not_approved_waits_instead(wa: Harness):
    api, me = wa.api, "919800000505"
    user_id = await owner(wa, me, lang="en", name="Asha Devi", writes=False)
    api.approved = {k: v for k, v in api.approved.items() if k != "lead_update"}  # not (yet) approved in WhatsApp Manager
    row_id = await enqueue(wa, me, "lead_notice", Say("✅ Your lead was accepted."), user_id)
    await worker(wa).drain()
    assert api.new_messages(me) == []
    assert [why for _, why in api.refusals] == ["Template name 'lead_update' does not exist in the translation"]
    row = await row_of(wa, row_id)
    assert (row["status"], row["error"]) == ("held", "not_approved:lead_update")


# ----------------------------------------------------------------- broadcasts
async def test_a_module_broadcast_preview_counts_channels_and_templates_and_the_template_starts_the_module(wa: Harness):
    api, app = wa.api, wa.app
    recent, silent = "919800000601", "919800000602"
    await owner(wa, recent, lang="en", name="Asha Devi")
    wa.clock.advance(2 * HOUR)
    await owner(wa, silent, lang="hi", name="रमेश", writes=False)  # never wrote on WhatsApp
    await seed_owner(app, 700001, lang="en")  # a Telegram owner
    assert app.broadcasts.channels == ("whatsapp",)  # this run has no Telegram token: nobody there is counted
    app.broadcasts.channels = ("telegram", "whatsapp")  # as in a run with both (only WhatsApp is delivered below)

    says = await admin(wa, Inbound.say("/broadcast"))
    module = app.engine.content.module("shipping")
    says = await admin_tap(wa, says, "📘 " + module.short)
    says = await admin_tap(wa, says, "Next ▶️")
    preview = await admin_tap(wa, says, "Now")
    [reach] = [s.text for s in preview if s.text.startswith("By channel:")]
    assert reach == ("By channel: Telegram 1 · WhatsApp 2\n"
                     "On WhatsApp 1 have not written for 24 hours: they get the approved template “module_invitation”.")
    await admin_tap(wa, preview, "✅ Confirm")

    delivery = worker(wa)
    await delivery.drain()
    [invitation] = api.new_messages(recent)
    assert invitation.kind == "button" and invitation.options[0]["id"] == "go:shipping"
    [template] = api.new_messages(silent)
    assert (template.template_name, template.template_lang) == ("module_invitation", "hi")
    assert template.template_params == ["रमेश", wa.app.texts.gettext("hi", module.title)]
    assert template.payload == "go:shipping"
    assert api.refusals == []

    # Statuses: delivered, read, in any order, never backwards; the admin's status message counts them.
    assert await api.send_status(template, "read") == 200
    assert await api.send_status(template, "delivered") == 200  # late: stays read
    assert await api.send_status(invitation, "delivered") == 200
    board = Board()
    await app.broadcasts.update_status(board)
    [status] = board.texts
    assert "Sent: 2 of 3" in status and "WhatsApp: delivered 2 · read 1 · as a template 1" in status
    rows = {r["chat_ref"]: dict(r) for r in await app.db.fetchall("SELECT * FROM outbox WHERE kind = 'broadcast'")}
    assert (rows[silent]["delivery"], rows[silent]["template"]) == ("read", "module_invitation")
    assert (rows[recent]["delivery"], rows[recent]["template"]) == ("delivered", None)

    await api.tap_template(silent, template)  # "मॉड्यूल शुरू करें": the module opens
    [lesson] = api.new_messages(silent)
    assert wa.tr("hi", module.title) in lesson.text


async def test_an_announcement_goes_as_the_announcement_template_and_one_tap_shows_it(wa: Harness):
    api, app = wa.api, wa.app
    silent = "919800000611"
    await owner(wa, silent, lang="en", name="Asha Devi")
    wa.clock.advance(26 * HOUR)
    plan = Plan("announcement", Segment(), text_en="Export fair in Moradabad on 12 March.", text_hi="12 मार्च को मुरादाबाद में एक्सपोर्ट मेला।")
    await app.broadcasts.start(plan, created_by="test")
    await worker(wa).drain()
    [template] = api.new_messages(silent)
    assert (template.template_name, template.template_lang, template.template_params) == ("new_announcement", "en", ["Asha Devi"])
    assert template.text == "Hello Asha Devi, Export Saathi has an announcement for you. Tap Show to read it."
    await api.tap_template(silent, template)
    await worker(wa).drain()
    [full] = api.new_messages(silent)
    assert full.text.startswith("Export fair in Moradabad on 12 March.")
    [row] = await app.db.fetchall("SELECT status, template FROM outbox WHERE kind = 'broadcast'")
    assert tuple(row) == ("sent", "new_announcement")
    assert api.refusals == []


class Board:
    """Where the admin's broadcast status message goes (a Telegram chat in production)."""

    def __init__(self):
        self.texts: list[str] = []

    async def send(self, chat_ref: str, say: Say) -> str:
        self.texts.append(say.text)
        return "1"

    async def edit(self, chat_ref: str, message_ref: str, say: Say) -> None:
        self.texts.append(say.text)


# ----------------------------------------------------------------- status webhooks
async def test_failed_statuses_block_a_user_who_cannot_be_reached_or_send_the_template_again(wa: Harness):
    api, app = wa.api, wa.app
    gone, closed = "919800000701", "919800000702"
    gone_id = await owner(wa, gone, lang="en", name="Gone")
    closed_id = await owner(wa, closed, lang="en", name="Asha Devi")
    first = await enqueue(wa, gone, "lead_notice", Say("News for you"), gone_id)
    second = await enqueue(wa, closed, "lead_notice", Say("✅ Your lead was accepted."), closed_id)
    await worker(wa).drain()
    [to_gone], [to_closed] = api.new_messages(gone), api.new_messages(closed)
    waiting = await enqueue(wa, gone, "reminder", Say("Shall we continue?", (Choice("go:shipping", "Continue"),)), gone_id)
    await app.db.execute("UPDATE outbox SET not_before = not_before + 3600 WHERE id = ?", (waiting,))

    # One POST: garbage, an unknown message id, and the two real failures; each entry on its own.
    entries = ["not an entry", {"id": "wamid.unknown", "status": "delivered", "timestamp": "1"}, {"status": "read"},
               api.status_entry(to_gone, "failed", code=131026), api.status_entry(to_closed, "failed", code=131047)]
    assert await api.post_statuses(entries) == 200

    assert (await row_of(wa, first))["status"] == "blocked"
    assert (await row_of(wa, waiting))["status"] == "blocked"  # nothing more is tried for that chat
    assert (await wa.user(gone))["blocked_at"] is not None
    row = await row_of(wa, second)
    assert (row["status"], row["delivery"]) == ("pending", "failed")  # back on the queue: the window is closed
    await worker(wa).drain()
    [template] = api.new_messages(closed)
    assert (template.template_name, template.template_params) == ("lead_update", ["Asha Devi"])
    assert (await wa.user(closed))["blocked_at"] is None


async def test_a_status_that_overtakes_its_message_id_still_counts(wa: Harness):
    """WhatsApp reports "delivered", then "read", before the send's own answer (with the message id)
    reached the bot; one status of a message no row has stays apart and harms nothing."""
    api = wa.api
    me = "919800000703"
    user_id = await owner(wa, me, lang="en", name="Asha Devi")
    row_id = await enqueue(wa, me, "lead_notice", Say("✅ Your lead was accepted."), user_id)
    answers: list[int] = []

    async def overtake(sent: Sent) -> None:
        answers.append(await api.send_status(sent, "read"))
        answers.append(await api.send_status(sent, "delivered"))
        answers.append(await api.send_status("wamid.someone.else", "delivered"))

    api.before_answer = overtake
    await worker(wa).drain()
    api.before_answer = None
    [sent] = api.new_messages(me)
    assert answers == [200, 200, 200]
    row = await row_of(wa, row_id)
    assert (row["status"], row["message_ref"], row["delivery"]) == ("sent", sent.id, "read")  # the higher one wins
    waiting = [tuple(r) for r in await wa.app.db.fetchall("SELECT message_ref, status FROM early_statuses")]
    assert waiting == [("wamid.someone.else", "delivered")]  # kept until maintenance drops it after a week


async def test_statuses_for_unknown_messages_are_ignored_silently(wa: Harness, caplog):
    api = wa.api
    before = [dict(r) for r in await wa.app.db.fetchall("SELECT * FROM outbox")]
    assert await api.send_status("wamid.never.sent", "read") == 200
    assert await api.send_status("wamid.never.sent", "failed", code=131026) == 200
    assert [dict(r) for r in await wa.app.db.fetchall("SELECT * FROM outbox")] == before
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


# ----------------------------------------------------------------- the stand-in keeps Meta's rules
async def test_the_standin_refuses_what_meta_refuses_outside_the_window():
    now = [1_780_000_000.0]
    async with WhatsAppStandin(clock=lambda: now[0], approved={"module_reminder": {"en": "Hello {{1}}, {{2}}?"}}) as api:
        client = GraphClient(api.token, api.phone_number_id, api.base_url)
        try:
            api.window_open("919800000801")
            text = {"type": "text", "text": {"body": "Hello"}}
            assert await client.send("919800000801", text)
            now[0] += 24 * HOUR
            with pytest.raises(GraphError) as caught:
                await client.send("919800000801", text)
            assert caught.value.code == 131047
            with pytest.raises(GraphError) as caught:
                await client.send("919800000802", text)  # never wrote
            assert caught.value.code == 131047

            def template(name: str, *params: str) -> dict:
                return {"type": "template", "template": {"name": name, "language": {"code": "en"}, "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "go:x"}]},
                ]}}

            assert await client.send("919800000801", template("module_reminder", "Asha", "Shipping"))
            assert api.sent[-1].text == "Hello Asha, Shipping?"
            for name, params, code in (("not_approved", ("Asha", "x"), 132001), ("module_reminder", ("Asha",), 132000),
                                       ("module_reminder", ("Asha\nDevi", "x"), 132018)):
                with pytest.raises(GraphError) as caught:
                    await client.send("919800000801", template(name, *params))
                assert caught.value.code == code, name
        finally:
            await client.close()


# ----------------------------------------------------------------- the templates file
def test_the_templates_file_is_checked(tmp_path: Path):
    root = tmp_path / "conversations"
    root.mkdir()
    source = yaml.safe_load((Path(__file__).resolve().parent.parent / "conversations" / "templates.yaml").read_text("utf-8"))
    assert read_templates(Path(__file__).resolve().parent.parent / "conversations")[1] == []
    items = {t["kind"]: t for t in source["templates"]}
    items["reminder"]["name"] = "Module-Reminder"
    del items["module_invitation"]["hi"]
    items["announcement"]["en"]["body"] = "Hello {{1}}, {{2}} is new."  # two placeholders, one parameter
    items["lead_update"]["hi"]["body"] = "क" * 1030 + " {{1}}"
    source["templates"].remove(items["lead_card"])
    (root / "templates.yaml").write_text(yaml.safe_dump(source, allow_unicode=True), encoding="utf-8")
    _book, problems = read_templates(root)
    assert any("template 'Module-Reminder', field 'name': must be lowercase_with_underscores" in p for p in problems)
    assert any("template 'module_invitation', language 'hi': missing" in p for p in problems)
    assert any("template 'new_announcement', language 'en', field 'body': placeholders ['{{1}}', '{{2}}'] do not match the 1 "
               "parameter(s)" in p for p in problems)
    assert any("template 'lead_update', language 'hi', field 'body': 1036 characters, the limit is 1024" in p for p in problems)
    assert any("no template for kind 'lead_card'" in p for p in problems)
    assert all(p.startswith("conversations/templates.yaml") for p in problems)


# ----------------------------------------------------------------- the migration
async def test_the_upgrade_keeps_every_whatsapp_users_window(tmp_path: Path):
    db = await Database.open(tmp_path / "old.sqlite3", migrate=False)
    try:
        await db.migrate(target=10)
        await db.execute("INSERT INTO users (channel, user_ref, first_seen_at, last_seen_at) VALUES ('whatsapp', '9198', 5, 70)")
        await db.execute("INSERT INTO users (channel, user_ref, first_seen_at, last_seen_at) VALUES ('telegram', '42', 5, 80)")
        await db.migrate()
        rows = [tuple(r) for r in await db.fetchall("SELECT channel, chat_ref, last_at, closed_at FROM chat_inbound")]
        assert rows == [("whatsapp", "9198", 70, None)]
    finally:
        await db.close()


def test_the_readme_lists_every_template_exactly_as_the_file_has_it():
    """What an operator pastes into WhatsApp Manager must be what the bot sends: the README's list is the file."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    from bot.templates import load_templates

    book = load_templates()
    assert book.templates
    for template in book.templates.values():
        assert f"**`{template.name}`**" in readme, template.name
        for label, code in (("English (`en`)", "en"), ("Hindi (`hi`)", "hi")):
            version = template.versions[code]
            assert f"{label}: {version.body} — button: *{version.button}*" in readme, (template.name, code)
