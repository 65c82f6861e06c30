"""Leads end to end: the real PTB Application over HTTP against the Bot API stand-in.

Owners qualify, startup staff link their chats with invites and answer lead cards with buttons,
admins are told what needs them. Each test checks what people saw (and in which language), what
the SQLite file holds afterwards, and that the stand-in refused nothing the bot sent.

Most owners here are stored one answer before qualifying (their profile and two passed modules
written with the real session store), then give that last quiz answer through Telegram: the lead
is created by the same hook as for an owner who did everything by hand (the first test).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import cli
from bot.app import App, build_app
from bot.channels.console import ConsoleChannel, ConsoleSender
from bot.channels.render import plain
from bot.config import Settings
from bot.core.messages import Event
from bot.core.session import ModuleProgress, Session
from bot.services.clock import ManualClock
from bot.core.messages import UserKey
from tests.botapi_standin import BotApiStandin, BotMessage
from tests.e2e_support import RunningBot, running_bot

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

DEVANAGARI = re.compile(r"[\u0900-\u097F]")
ADMIN = 900
HOUR = 3600
REGISTRY = """
startups:
  - {id: up_brass, name: "Pital Nagri Export Labs", states: [uttar_pradesh], sectors: [handicrafts], languages: [hi, en], weekly_capacity: 10}
  - {id: up_ganga, name: "Ganga Crafts Connect", states: [uttar_pradesh], sectors: [handicrafts, home_decor], languages: [hi, en], weekly_capacity: 10}
  - {id: tn_knit, name: "Knit City Trade Desk", states: [tamil_nadu], sectors: [textiles_apparel], languages: [en], weekly_capacity: 10}
"""
PROFILE = {
    "owner_name": "Asha Devi",
    "business_name": "Asha Brass & Sons",
    "state": "uttar_pradesh",
    "district": "Moradabad",
    "sector": "handicrafts",
    "udyam": "yes",
    "iec": "yes",
    "gst": "yes",
    "experience": "occasionally",
    "turnover": "upto_1_5_crore",
    "markets": ["europe"],
    "phone": "+919876543210",
}
NOT_YOURS = "This lead is not assigned to your startup."


@dataclass
class Harness:
    api: BotApiStandin
    bot: RunningBot
    clock: ManualClock
    db_path: Path

    @property
    def app(self) -> App:
        return self.bot.app


@asynccontextmanager
async def started(api: BotApiStandin, db_path: Path, clock: ManualClock, **options) -> AsyncIterator[RunningBot]:
    async with running_bot(api, db_path, clock=clock, admin_ids=frozenset({ADMIN}), **options) as bot:
        yield bot


@pytest.fixture
async def h(tmp_path: Path, store: dict) -> AsyncIterator[Harness]:
    """The bot with three startups imported, on a fresh database (SQLite, then PostgreSQL)."""
    clock = ManualClock()
    db_path = store["database_path"]
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    async with BotApiStandin() as api:
        api.add_user(ADMIN, first_name="Admin", language_code="en")
        async with started(api, db_path, clock, database_url=store.get("database_url", "")) as bot:
            assert await bot.app.leads.import_file(registry) == (3, 0)
            yield Harness(api, bot, clock, db_path)


# ----------------------------------------------------------------- helpers
def shown(html_text: str) -> str:
    return plain(html_text).strip()


async def join(h: Harness, uid: int, startup_id: str, lang: str = "en") -> BotMessage:
    """Staff ``uid`` opens a fresh invite link of ``startup_id``; returns the welcome."""
    h.api.add_user(uid, first_name=f"Staff{uid}", language_code=lang)
    _, link, _ = await h.app.leads.invite(startup_id)
    h.api.send_text(uid, "/start " + link.split("?start=", 1)[1])
    return await h.api.wait_for_message(uid)


async def seed_owner(app: App, uid: int, *, lang: str = "en", profile: dict | None = None, referral: str | None = None,
                     finished: bool = False, channel: str = "telegram") -> int:
    """An owner who has consented, confirmed the profile and passed two core modules, and is on
    the last question of the third (or has passed it too, with ``finished``)."""
    store = app.conversations.store
    now = int(app.clock.now())
    loaded = await store.load(UserKey(channel, str(uid)), new_session=Session(lang=lang), now=now)
    done = ModuleProgress(lesson=6, attempt=1, best=5, passed=True)
    last = done if finished else ModuleProgress(lesson=6, attempt=1, question=4, score=4, in_quiz=True)
    after = Session(
        lang=lang, flow="menu" if finished else "quiz", step="alibaba", seq=40, profile=dict(profile or PROFILE),
        consent="given", onboarded=True, progress={"export_ready": done, "payments": done, "alibaba": last},
    )
    events = [Event("consent_given", {"version": 1, "lang": lang}), Event("onboarding_confirmed")]
    if referral:
        events.append(Event("referral", {"code": referral}))
    await store.save_turn(loaded.user_id, loaded.session, after, events, now=now, channel=channel)
    return loaded.user_id


def right_answer(app: App, module_id: str) -> str:
    """The number to type for the right answer to ``module_id``'s last question (first attempt: options as written)."""
    last = app.engine.content.module(module_id).quiz[-1]
    return str(1 + [o.id for o in last.options].index(last.correct.id))


async def qualify(h: Harness, uid: int, **seed) -> None:
    """A stored owner gives the last right answer through Telegram and passes the core modules."""
    lang = seed.get("lang", "en")
    h.api.add_user(uid, first_name="Owner", language_code=lang)
    await seed_owner(h.app, uid, **seed)
    h.api.send_text(uid, right_answer(h.app, "alibaba"))  # the right answer to Alibaba.com's last question
    await h.api.wait_for_message(uid, lambda m: "🎉" in (m.text or "") and "Alibaba.com" in (m.text or ""))


async def card_for(api: BotApiStandin, uid: int) -> BotMessage:
    return await api.wait_for_message(uid, lambda m: bool(re.match(r"🆕 (Lead|लीड) #\d+", m.text or "")))


async def rows(app: App, sql: str, *params) -> list[dict]:
    return [dict(r) for r in await app.db.fetchall(sql, params)]


async def snapshot(app: App) -> tuple:
    """Everything a staff action could change."""
    return (
        await rows(app, "SELECT * FROM leads ORDER BY id"),
        await rows(app, "SELECT * FROM lead_offers ORDER BY lead_id, offered_at"),
        await rows(app, "SELECT * FROM lead_history ORDER BY id"),
        await rows(app, "SELECT id, dedup_key FROM outbox WHERE kind != 'reply' ORDER BY id"),  # replies come and go
    )


async def answers_to(api: BotApiStandin, count: int) -> list[str | None]:
    """The pop-up texts of the last ``count`` button taps, once the bot has answered them all."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while api._open_queries and loop.time() < deadline:  # a busy machine answers late, not never
        await asyncio.sleep(0.02)
    await api.wait_idle(quiet=0.15)
    return [a.text for a in api.callback_answers[-count:]]


# ----------------------------------------------------------------- the whole way, by hand
async def test_owner_qualifies_by_hand_staff_accept_and_the_owner_is_told(h: Harness):
    api, app = h.api, h.app
    staff_en = await join(h, 501, "up_brass", "en")
    assert shown(staff_en.html).startswith("✅ This chat is now linked to Pital Nagri Export Labs.")
    staff_hi = await join(h, 502, "up_brass", "hi")
    assert staff_hi.text.startswith("✅ यह चैट अब Pital Nagri Export Labs से जुड़ गई है।")

    owner = 101
    api.add_user(owner, first_name="Asha", language_code="en")
    en = lambda msgid: app.texts.gettext("en", msgid)  # noqa: E731

    async def answer(step_id: str, text: str) -> None:
        question = shown(en(app.engine.flow.step(step_id).text))
        await api.wait_for_message(owner, lambda m: (m.text or "").startswith(question))
        api.send_text(owner, text)

    api.send_text(owner, "/start")
    for step_id, text in [
        ("language", "2"), ("consent", "yes"), ("owner_name", "Asha Devi"), ("business_name", "Asha Brass & Sons"),
        ("state", "UP"), ("district", "Moradabad"), ("sector", "1"), ("udyam", "1"), ("iec", "1"), ("gst", "1"),
        ("experience", "2"), ("turnover", "2"), ("markets", "2"), ("phone", "98765 43210"), ("summary", "1"),
    ]:
        await answer(step_id, text)
    await api.wait_for_message(owner, lambda m: "Tap a module to open it." in (m.text or ""))
    for module_id in ("export_ready", "payments", "alibaba"):
        module = app.engine.content.module(module_id)
        title, lessons = en(module.title), len(module.lessons)
        api.send_text(owner, title)
        await api.wait_for_message(owner, lambda m: (m.text or "").startswith(f"{title} · 1/{lessons}"))
        for k in range(2, lessons + 1):
            api.send_text(owner, "next")
            await api.wait_for_message(owner, lambda m: (m.text or "").startswith(f"{title} · {k}/{lessons}"))
        api.send_text(owner, "next")
        for n, question in enumerate(module.quiz, 1):
            # under the quiz's intro, or the verdict on the question before
            await api.wait_for_message(owner, lambda m: f"\n\nQuestion {n} of 5\n" in (m.text or ""))
            api.send_text(owner, str([o.id for o in question.options].index(question.correct.id) + 1))
        await api.wait_for_message(owner, lambda m: "Passed!" in (m.text or ""))

    # Both staff chats of the startup get the card, each in its own language.
    card = await card_for(api, 501)
    text = card.text
    for piece in (
        "🆕 Lead #1 · New: waiting for your answer", "🏭 Asha Brass & Sons", "👤 Asha Devi", "📍 Moradabad, Uttar Pradesh",
        "📦 Handicrafts", "🧾 IEC: Yes · GST: Yes · Udyam registration: Yes", "📞 +91 98765 43210", "⭐ Readiness 76/100:",
        "✅ IEC: Yes · 15/15", "🔸 Export experience: Sometimes · 10/20", "🔸 Quiz scores · 21/30",
        "📚 Modules passed: Get export-ready, Getting paid safely, Winning on Alibaba.com", "within 48 hours",
    ):
        assert piece in text, piece
    assert [label for label, _ in card.buttons] == ["Accept", "Decline"]
    card_hi = await card_for(api, 502)
    assert card_hi.text.startswith("🆕 लीड #1") and [label for label, _ in card_hi.buttons] == ["स्वीकार करें", "मना करें"]
    [lead] = await rows(app, "SELECT * FROM leads")
    assert (lead["status"], lead["startup_id"], lead["score"], lead["state"], lead["sector"], lead["lang"]) == (
        "offered", "up_brass", 76, "uttar_pradesh", "handicrafts", "en")
    assert [r["key"] for r in json.loads(lead["reasons"])][:5] == ["iec", "gst", "udyam", "experience", "turnover"]

    # The owner can see the score and what would raise it.
    api.send_text(owner, "/score")
    score = await api.wait_for_message(owner, lambda m: "export readiness" in (m.text or ""))
    assert score.text.startswith("Your export readiness: 76/100") and "You have reached 50" in score.text

    # Accept: the card is marked, the next steps are offered, the owner is told in English.
    h.clock.advance(3 * HOUR)
    api.tap_button(501, card, "Accept")
    reply = await api.wait_for_message(501, lambda m: "is yours" in (m.text or ""))
    assert reply.text.startswith("✅ Lead #1 is yours.") and "please call Asha Devi soon" in reply.text
    assert [label for label, _ in reply.buttons] == ["Contacted", "Listed on Alibaba", "First export order", "Lost"]
    marked = await api.wait_until(501, lambda m: m.message_id == card.message_id and m.edits)
    assert marked.buttons == [] and marked.text.endswith("✅ Accept")
    told = await api.wait_for_message(owner, lambda m: "Good news" in (m.text or ""))
    assert shown(told.html) == (
        "🤝 Good news! Pital Nagri Export Labs, a partner startup of the program, will contact you soon on "
        "+91 98765 43210 to help you list on Alibaba.com."
    )

    # The colleague's card is now stale: refused politely, in Hindi, and nothing changes.
    before = await snapshot(app)
    api.tap_button(502, card_hi, "स्वीकार करें")
    [refused] = await answers_to(api, 1)
    assert refused == "यह अभी नहीं हो सकता: लीड #1 “स्वीकार की गई” पर है।"
    assert await snapshot(app) == before

    # The startup moves the lead along; every step is timestamped.
    for label, step in (("Contacted", "Contacted"), ("Listed on Alibaba", "Listed on Alibaba.com")):
        h.clock.advance(HOUR)
        api.tap_button(501, reply, label)
        reply = await api.wait_for_message(501, lambda m: (m.text or "").startswith(f"✅ Lead #1: {step}."))
        assert [label for label, _ in reply.buttons][-1] == "↩️ Undo"
    await api.wait_idle(quiet=0.1)
    assert not [m for m in api.messages(owner) if "🌐" in (m.text or "")]  # held back while the step can be undone
    h.clock.advance(11 * 60)
    h.bot.runtime.delivery.wake()
    listed = await api.wait_for_message(owner, lambda m: "🌐" in (m.text or ""))
    assert shown(listed.html).startswith(
        "🌐 Your business is now listed on Alibaba.com, with the help of Pital Nagri Export Labs. Buyers from abroad")
    h.clock.advance(HOUR)
    api.tap_button(501, reply, "First export order")
    await api.wait_for_message(501, lambda m: "first export order! Congratulations" in (m.text or ""))
    h.clock.advance(11 * 60)
    h.bot.runtime.delivery.wake()
    ordered = await api.wait_for_message(owner, lambda m: "Congratulations" in (m.text or ""))
    assert "Pital Nagri Export Labs has recorded your first export order" in shown(ordered.html)
    api.send_text(owner, "/my_data")
    mine = await api.wait_for_message(owner, lambda m: "Everything I have stored" in (m.text or ""))
    assert "with a partner startup of the program: Pital Nagri Export Labs. Now: your first export order has come in." in mine.text
    assert "first_order" not in mine.text
    history = await rows(app, "SELECT status, startup_id, actor, at FROM lead_history ORDER BY id")
    start = history[0]["at"]
    assert [(r["status"], r["at"] - start) for r in history] == [
        ("created", 0), ("offered", 0), ("accepted", 3 * HOUR), ("contacted", 4 * HOUR), ("listed", 5 * HOUR),
        ("first_order", 6 * HOUR + 11 * 60),
    ]
    assert history[2]["actor"] == "staff:telegram:501"
    [stats] = [s for s in await app.leads.stats() if s.startup.id == "up_brass"]
    assert (stats.assigned, stats.accepted, stats.declined, stats.listed, stats.first_order) == (1, 1, 0, 1, 1)
    assert stats.median_accept_hours == 3.0
    await api.wait_idle(quiet=0.15)
    assert api.refusals == []


# ----------------------------------------------------------------- decline, SLA, unassigned
async def test_decline_moves_the_lead_on_and_never_back(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    await join(h, 601, "up_ganga", "hi")
    await qualify(h, 101, lang="hi", profile={**PROFILE, "owner_name": "रमेश"})
    first = await card_for(api, 501)  # a tie on load: never offered before, then the smaller id
    api.tap_button(501, first, "Decline")
    why = await api.wait_for_message(501, lambda m: (m.text or "").startswith("Why are you declining lead #1?"))
    assert [label for label, _ in why.buttons] == ["Not our area", "Not our sector", "No capacity now", "Not ready to export", "Other reason"]
    assert (await rows(app, "SELECT status, startup_id FROM leads")) == [{"status": "offered", "startup_id": "up_brass"}]
    api.tap_button(501, why, "No capacity now")
    await api.wait_for_message(501, lambda m: "is declined and goes to another startup" in (m.text or ""))
    second = await card_for(api, 601)
    assert second.text.startswith("🆕 लीड #1") and "रमेश" in second.text
    offers = await rows(app, "SELECT startup_id, outcome, reason FROM lead_offers ORDER BY offered_at, startup_id")
    assert offers == [{"startup_id": "up_brass", "outcome": "declined", "reason": "busy"},
                      {"startup_id": "up_ganga", "outcome": None, "reason": None}]

    # The first startup's old card no longer works for it.
    before = await snapshot(app)
    api.tap_button(501, first, "Accept")
    assert await answers_to(api, 1) == [NOT_YOURS]
    assert await snapshot(app) == before

    # The second declines too: nobody else serves it, so it waits and the admin is told.
    api.tap_button(601, second, "मना करें")
    why = await api.wait_for_message(601, lambda m: (m.text or "").startswith("आप लीड #1 को मना क्यों कर रहे हैं?"))
    api.tap_button(601, why, "हमारा इलाक़ा नहीं")
    await api.wait_for_message(601, lambda m: (m.text or "").startswith("लीड #1 मना कर दी गई"))
    notice = await api.wait_for_message(ADMIN, lambda m: "no eligible startup" in (m.text or ""))
    assert notice.text.startswith("⚠️ Lead #1 (Asha Brass & Sons; Moradabad, Uttar Pradesh; Handicrafts; score 76) has no eligible startup.")
    assert (await rows(app, "SELECT status, startup_id FROM leads")) == [{"status": "unassigned", "startup_id": None}]
    # Sweeping again offers it to nobody twice and does not repeat the notice.
    assert await app.leads.sweep() == {}
    await api.wait_idle(quiet=0.15)
    assert api.new_messages(501) == [] and api.new_messages(601) == [] and api.new_messages(ADMIN) == []
    assert len(await rows(app, "SELECT * FROM lead_offers")) == 2
    assert api.refusals == []


async def test_sla_lapse_reassigns_and_tells_the_admin(h: Harness):
    api, app, clock = h.api, h.app, h.clock
    await join(h, 501, "up_brass")
    await join(h, 601, "up_ganga")
    await qualify(h, 101)
    late = await card_for(api, 501)
    clock.advance(47 * HOUR)
    assert await app.leads.sweep() == {}
    clock.advance(HOUR)
    assert await app.leads.sweep() == {"expired": 1}
    card = await card_for(api, 601)
    assert card.text.startswith("🆕 Lead #1")
    gone = await api.wait_for_message(501, lambda m: "⏰" in (m.text or ""))
    assert gone.text == "⏰ Lead #1 (Asha Brass & Sons) was not answered within 48 hours, so it went to another startup."
    notice = await api.wait_for_message(ADMIN, lambda m: "⏰" in (m.text or ""))
    assert notice.text == (
        "⏰ Pital Nagri Export Labs did not answer lead #1 (Asha Brass & Sons) within 48 hours. It is now offered to Ganga Crafts Connect."
    )
    offers = await rows(app, "SELECT startup_id, outcome FROM lead_offers ORDER BY offered_at")
    assert offers == [{"startup_id": "up_brass", "outcome": "expired"}, {"startup_id": "up_ganga", "outcome": None}]
    api.tap_button(501, late, "Accept")
    assert await answers_to(api, 1) == [NOT_YOURS]
    # The second startup lapses too: nobody is left, the lead waits and the admin hears it once.
    clock.advance(48 * HOUR)
    assert await app.leads.sweep() == {"expired": 1}
    notice = await api.wait_for_message(ADMIN, lambda m: "⏰" in (m.text or ""))
    assert notice.text.endswith("No other startup can take it: it waits in the unassigned queue.")
    assert (await rows(app, "SELECT status FROM leads")) == [{"status": "unassigned"}]
    await api.wait_idle(quiet=0.15)
    assert api.new_messages(ADMIN) == [] and api.refusals == []


# ----------------------------------------------------------------- who sees what
async def test_staff_of_another_startup_cannot_see_or_act_on_a_lead(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    other = await join(h, 701, "tn_knit")
    await qualify(h, 101)
    await card_for(api, 501)
    api.send_text(701, "/leads")
    page = await api.wait_for_message(701, lambda m: "your leads" in (m.text or ""))
    assert "No leads here yet." in page.text and "Asha" not in page.text
    assert not any((data or "").startswith("ld:") for _, data in page.buttons)

    before = await snapshot(app)
    for forged in ("ld:1:view", "ld:1:acc", "ld:1:dec", "ld:1:dec.area", "ld:1:con", "ld:1:lost.other"):
        api.tap(701, other.message_id, forged)
    assert await answers_to(api, 6) == [NOT_YOURS] * 6
    assert api.new_messages(701) == []
    assert await snapshot(app) == before

    # Someone who is not staff at all gets nothing startup-related.
    api.add_user(102, language_code="en")
    api.send_text(102, "/leads")
    [reply, *_] = await api.wait_for_messages(102, 1)
    assert "Lead" not in (reply.text or "") and "startup" not in (reply.text or "").lower()
    api.tap(102, reply.message_id, "ld:1:acc")
    [popup] = await answers_to(api, 1)
    assert popup != NOT_YOURS and "lead" not in (popup or "").lower()
    assert await snapshot(app) == before
    assert api.refusals == []


async def test_referral_goes_first_and_the_startup_sees_who_it_brought(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    await join(h, 701, "tn_knit")
    tn, link = await app.leads.referral("tn_knit")
    code = link.split("start=ref_", 1)[1]
    # Tamil Nadu textiles startup, Uttar Pradesh handicrafts owner: the referral still comes first.
    await qualify(h, 101, referral=code.upper())
    card = await card_for(api, 701)
    assert "🔗 This owner came through your referral link." in card.text
    assert (await rows(app, "SELECT startup_id, referral_startup_id FROM leads")) == [{"startup_id": "tn_knit", "referral_startup_id": "tn_knit"}]
    await seed_owner(app, 102, referral=code)  # brought, but not through the modules yet
    api.send_text(701, "/leads")
    page = await api.wait_for_message(701, lambda m: "your leads" in (m.text or ""))
    assert "Owners who came through your referral link: 2; profile done: 2; core modules passed: 1; leads: 1." in page.text
    assert "#1 Asha Brass & Sons" in page.text
    # Declined by the referrer, the lead follows the ordinary rules; an unknown code is ignored.
    api.tap_button(701, card, "Decline")
    why = await api.wait_for_message(701, lambda m: "Why are you declining" in (m.text or ""))
    api.tap_button(701, why, "Not our area")
    assert (await card_for(api, 501)).text.startswith("🆕 Lead #1")
    await qualify(h, 103, referral="nosuchcode")
    # Lowest load this week: Ganga Crafts Connect (none yet), which has no linked chat: the admin is told.
    notice = await api.wait_for_message(ADMIN, lambda m: "no staff chat" in (m.text or ""))
    assert notice.text == ("⚠️ Lead #2 was offered to Ganga Crafts Connect, but no staff chat of theirs is linked. "
                           "Send them an invite: saathi startups invite up_ganga")
    leads = await rows(app, "SELECT id, startup_id, referral_startup_id FROM leads ORDER BY id")
    assert leads[1] == {"id": 2, "startup_id": "up_ganga", "referral_startup_id": None}
    stats = {s.startup.id: s for s in await app.leads.stats()}
    assert (stats["tn_knit"].referrals.brought, stats["tn_knit"].referrals.leads, stats["tn_knit"].declined) == (2, 1, 1)


async def test_invites_are_single_use_and_expire_after_seven_days(h: Harness):
    api, app, clock = h.api, h.app, h.clock
    _, link, expires = await app.leads.invite("up_brass")
    assert expires == int(clock.now()) + 7 * 24 * HOUR
    start = "/start " + link.split("?start=", 1)[1]
    bad = "This invite link does not work: it has expired or was already used. Please ask the program team for a new one."
    for uid, lang in ((501, "hi"), (502, "en")):
        api.add_user(uid, language_code=lang)
        api.send_text(uid, start)
    assert (await api.wait_for_message(501)).text.startswith("✅ यह चैट अब Pital Nagri Export Labs से जुड़ गई है।")
    assert (await api.wait_for_message(502)).text == bad
    api.send_text(501, start)  # the same chat again (a repeated update, a second tap)
    assert (await api.wait_for_message(501)).text.startswith("यह चैट पहले से Pital Nagri Export Labs से जुड़ी है।")
    _, old_link, _ = await app.leads.invite("up_ganga")
    _, fresh_link, _ = await app.leads.invite("up_ganga")
    clock.advance(7 * 24 * HOUR - 1)
    api.add_user(503, language_code="en")
    api.send_text(503, "/start " + fresh_link.split("?start=", 1)[1])
    assert (await api.wait_for_message(503)).text.startswith("✅ This chat is now linked to Ganga Crafts Connect.")
    clock.advance(1)
    api.add_user(504, language_code="en")
    api.send_text(504, "/start " + old_link.split("?start=", 1)[1])
    assert (await api.wait_for_message(504)).text == bad
    api.send_text(504, "/start join_nosuchcode")
    assert (await api.wait_for_message(504)).text == bad
    staff = await rows(app, "SELECT chat_ref, startup_id, lang FROM startup_staff ORDER BY chat_ref")
    assert staff == [{"chat_ref": "501", "startup_id": "up_brass", "lang": "hi"}, {"chat_ref": "503", "startup_id": "up_ganga", "lang": "en"}]
    assert api.refusals == []


async def test_leads_pages_newest_first_and_filters_by_status(h: Harness, tmp_path: Path):
    api, app, clock = h.api, h.app, h.clock
    update = tmp_path / "update.csv"
    update.write_text("id,name,states,sectors,languages,weekly_capacity,active\n"
                      "up_ganga,Ganga Crafts Connect,uttar_pradesh,handicrafts,hi;en,10,no\n", encoding="utf-8")
    assert await app.leads.import_file(update) == (0, 1)  # only one UP startup is active now
    for uid in range(101, 108):
        user_id = await seed_owner(app, uid, profile={**PROFILE, "business_name": f"Firm {uid}"}, finished=True)
        assert await app.leads.evaluate(user_id) == uid - 100
        clock.advance(60)
    await join(h, 501, "up_brass")  # linked after the leads were offered: no cards, the list has them all
    for uid in (102, 105):
        api.add_user(uid, language_code="en")  # these two will be told their lead was accepted
    api.send_text(501, "/leads")
    page = await api.wait_for_message(501, lambda m: "your leads" in (m.text or ""))
    assert page.text.startswith("Pital Nagri Export Labs: your leads · All · page 1 of 2")
    listed = re.findall(r"^#(\d+) ", page.text, re.M)
    assert listed == ["7", "6", "5", "4", "3"]
    assert [label for label, _ in page.buttons][:6] == ["#7 Firm 107", "#6 Firm 106", "#5 Firm 105", "#4 Firm 104", "#3 Firm 103", "▶"]
    api.tap_button(501, page, "▶")
    page2 = await api.wait_for_message(501, lambda m: "page 2 of 2" in (m.text or ""))
    assert re.findall(r"^#(\d+) ", page2.text, re.M) == ["2", "1"]
    assert "◀" in [label for label, _ in page2.buttons] and "▶" not in [label for label, _ in page2.buttons]
    # Open two leads from the list and accept them; the Accepted filter then shows just those.
    for listing, label in ((page2, "#2 Firm 102"), (page, "#5 Firm 105")):
        api.tap_button(501, listing, label)
        card = await card_for(api, 501)
        assert card.text.startswith(f"🆕 Lead {label.split()[0]} · New: waiting for your answer")
        api.tap_button(501, card, "Accept")
        await api.wait_for_message(501, lambda m: "is yours" in (m.text or ""))
    api.tap_button(501, page2, "Accepted")
    accepted = await api.wait_for_message(501, lambda m: "your leads · Accepted" in (m.text or ""))
    assert re.findall(r"^#(\d+) ", accepted.text, re.M) == ["5", "2"] and "page 1 of 1" in accepted.text
    api.tap_button(501, accepted, "Lost")
    lost = await api.wait_for_message(501, lambda m: "your leads · Lost" in (m.text or ""))
    assert "No leads here yet." in lost.text
    assert api.refusals == []


# ----------------------------------------------------------------- delivery that cannot lose or repeat
async def test_a_crash_before_delivery_delivers_the_card_exactly_once(tmp_path: Path):
    clock, db_path = ManualClock(), tmp_path / "bot.sqlite3"
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    async with BotApiStandin() as api:
        api.add_user(ADMIN, language_code="en")
        # First run: no delivery worker (as if the process died right after the owner's turn).
        async with started(api, db_path, clock, background=False) as bot:
            h = Harness(api, bot, clock, db_path)
            await bot.app.leads.import_file(registry)
            await join(h, 501, "up_brass")
            await qualify(h, 101)
            await api.wait_idle(quiet=0.15)
        assert api.new_messages(501) == []
        assert (await rows_of(db_path, "SELECT kind, status FROM outbox WHERE kind != 'reply'")) == [("lead_card", "pending")]
        # Second run: the worker delivers it; a third run sends nothing again. (A restart takes a moment:
        # a reply the first run's stop cut off, such as the certificate drawn just then, is due again.)
        for _ in range(2):
            clock.advance(5)
            async with started(api, db_path, clock) as bot:
                await api.wait_idle(quiet=0.3)
        cards = [m for m in api.messages(501) if (m.text or "").startswith("🆕 Lead #1")]
        assert len(cards) == 1
        assert (await rows_of(db_path, "SELECT kind, status FROM outbox")) == [("lead_card", "sent")]
        assert api.refusals == []


async def test_a_crash_before_the_lead_was_created_is_caught_up_at_start(tmp_path: Path):
    clock, db_path = ManualClock(), tmp_path / "bot.sqlite3"
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    async with BotApiStandin() as api:
        api.add_user(ADMIN, language_code="en")
        async with started(api, db_path, clock) as bot:
            h = Harness(api, bot, clock, db_path)
            await bot.app.leads.import_file(registry)
            await join(h, 501, "up_brass")
            bot.app.conversations.hooks.clear()  # the process dies between the owner's turn and the lead
            await qualify(h, 101)
            await api.wait_idle(quiet=0.15)
            assert await rows(bot.app, "SELECT * FROM leads") == []
        clock.advance(HOUR)
        async with started(api, db_path, clock) as bot:
            card = await card_for(api, 501)
            assert card.text.startswith("🆕 Lead #1")
            await api.wait_idle(quiet=0.2)
        assert [m.text[:12] for m in api.messages(501) if (m.text or "").startswith("🆕")] == ["🆕 Lead #1 · "]
        assert api.refusals == []


async def rows_of(db_path: Path, sql: str) -> list[tuple]:
    import aiosqlite

    async with aiosqlite.connect(db_path) as conn:
        return [tuple(r) for r in await (await conn.execute(sql)).fetchall()]


async def test_a_staff_chat_that_blocked_the_bot_is_reported_to_the_admins(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    api.block(501)
    await qualify(h, 101)
    await api.wait_idle(quiet=0.2)
    assert (await rows(app, "SELECT status FROM outbox WHERE kind = 'lead_card'")) == [{"status": "blocked"}]
    assert await app.leads.sweep() == {"blocked": 1}
    notice = await api.wait_for_message(ADMIN, lambda m: "🚫" in (m.text or ""))
    assert notice.text == "🚫 A staff chat of Pital Nagri Export Labs (chat 501) has blocked the bot; lead cards no longer reach it."
    assert await app.leads.sweep() == {}  # told once
    assert [r.description for r in api.refusals] == ["Forbidden: bot was blocked by the user"]


async def test_an_owner_who_erases_their_data_withdraws_the_lead(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    await qualify(h, 101)
    card = await card_for(api, 501)
    api.send_text(101, "/delete_my_data")
    await api.wait_for_message(101, lambda m: (m.text or "").startswith("Delete everything"))
    api.send_text(101, "yes")
    notice = await api.wait_for_message(501, lambda m: "withdrawn" in (m.text or ""))
    assert notice.text.startswith("Lead #1 is withdrawn: the owner asked us to erase their data.")
    assert (await rows(app, "SELECT user_id, status FROM leads")) == [{"user_id": None, "status": "withdrawn"}]
    api.tap_button(501, card, "Accept")
    assert await answers_to(api, 1) == ["That can't be done now: lead #1 is at “Withdrawn by the owner”."]
    assert api.refusals == []
    # DPDP: no row anywhere still holds the owner's name or phone number, sent lead cards included.
    digits = PROFILE["phone"][-10:]
    for table in await app.db.tables():
        for row in await app.db.fetchall(f"SELECT * FROM {table}"):
            flat = " ".join(str(v) for v in tuple(row))
            assert PROFILE["owner_name"] not in flat, (table, flat[:300])
            assert digits not in flat.replace(" ", ""), table


async def test_a_failure_after_the_erasure_cannot_leave_the_lead_live(h: Harness, monkeypatch):
    """The withdrawal is committed with the erasure; only the staff notice waits, and the sweep sends it."""
    api, app, clock = h.api, h.app, h.clock
    await join(h, 501, "up_brass")
    await join(h, 601, "up_ganga")
    await qualify(h, 101)
    card = await card_for(api, 501)
    real = app.leads.tell_withdrawn

    async def database_gone() -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(app.leads, "tell_withdrawn", database_gone)
    api.send_text(101, "/delete_my_data")
    await api.wait_for_message(101, lambda m: (m.text or "").startswith("Delete everything"))
    api.send_text(101, "yes")
    await api.wait_for_message(101)  # the owner hears their data is gone
    assert (await rows(app, "SELECT user_id, status, notice_owed FROM leads")) == [
        {"user_id": None, "status": "withdrawn", "notice_owed": 1}]
    assert (await rows(app, "SELECT startup_id, outcome FROM lead_offers")) == [{"startup_id": "up_brass", "outcome": "withdrawn"}]
    # The SLA passes: the lead is not reassigned to the next startup with the owner's card.
    monkeypatch.setattr(app.leads, "tell_withdrawn", real)
    clock.advance(49 * HOUR)
    assert await app.leads.sweep() == {"withdrawn": 1}
    notice = await api.wait_for_message(501, lambda m: "withdrawn" in (m.text or ""))
    assert notice.text.startswith("Lead #1 is withdrawn")
    api.tap_button(501, card, "Accept")
    assert await answers_to(api, 1) == ["That can't be done now: lead #1 is at “Withdrawn by the owner”."]
    await api.wait_idle(quiet=0.15)
    assert api.new_messages(601) == [] and api.new_messages(101) == []  # nobody else got the lead; no "good news"
    assert await app.leads.sweep() == {}  # told once


# ----------------------------------------------------------------- the terminal and the CLI
async def test_terminal_demo_prints_the_card_and_staff_can_accept_there(tmp_path: Path):
    clock = ManualClock()
    app = await build_app(Settings(database_path=tmp_path / "demo.sqlite3"), clock=clock)
    try:
        assert await app.leads.load_demo_if_empty() == 5
        assert await app.leads.load_demo_if_empty() == 0  # only into an empty registry
        out = io.StringIO()
        printer = ConsoleSender(out)
        worker = app.delivery({"console": printer, "telegram": printer}, per_chat_interval=0.0)
        await seed_owner(app, "asha", channel="console")
        await ConsoleChannel(app.dispatcher, io.StringIO("1\n"), out, user_ref="asha").run()
        await worker.drain()
        printed = out.getvalue()
        # UP handicrafts: the Moradabad startup and the all-India one tie (no load, never offered); the specialist wins.
        [lead] = await rows(app, "SELECT startup_id FROM leads")
        assert lead["startup_id"] == "demo_moradabad_brass"
        chat = "staff-demo_moradabad_brass"
        assert f"📨 ── message for chat {chat} ──\n🆕 लीड #1 · नई: आपके जवाब का इंतज़ार" in printed  # its staff speak Hindi first
        assert "[स्वीकार करें]  [मना करें]" in printed and f"saathi chat --user {chat}" in printed
        staff = io.StringIO()
        await ConsoleChannel(app.dispatcher, io.StringIO("/leads\n1\n1\n"), staff, user_ref=chat).run()
        assert "आप Pital Nagri Export Labs (demo) की पार्टनर टीम में हैं।" in staff.getvalue()
        assert "✅ लीड #1 अब आपकी है।" in staff.getvalue()
        await worker.drain()
        assert "message for chat asha ──\n🤝 Good news! Pital Nagri Export Labs (demo)" in out.getvalue()
    finally:
        await app.close()


def test_cli_startups_and_leads_commands(tmp_path: Path, monkeypatch, capsys):
    db_path = tmp_path / "cli.sqlite3"
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DATABASE_PATH", str(db_path))
    monkeypatch.setenv("BOT_USERNAME", "SaathiTestBot")
    (tmp_path / "startups.csv").write_text(
        "id,name,states,sectors,languages,weekly_capacity,active,referral_code\n"
        "up_brass,Pital Nagri Export Labs,uttar_pradesh,handicrafts,hi;en,10,yes,PITAL2026\n", encoding="utf-8")
    assert cli.main(["startups", "import", "startups.csv"]) == 0
    assert "1 startup(s) added, 0 updated." in capsys.readouterr().out
    assert cli.main(["startups", "invite", "up_brass"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^https://t\.me/SaathiTestBot\?start=join_[a-z0-9]{16}$", out, re.M), out
    assert cli.main(["startups", "referral", "up_brass", "--output", "qr.png"]) == 0
    out = capsys.readouterr().out
    assert "https://t.me/SaathiTestBot?start=ref_PITAL2026" in out
    assert (tmp_path / "qr.png").read_bytes().startswith(b"\x89PNG")
    assert cli.main(["startups", "invite", "nobody"]) == 2
    assert "'nobody': is not in the registry (known: up_brass)" in capsys.readouterr().err

    async def one_accepted_lead() -> None:
        clock = ManualClock(1_780_000_000)
        app = await build_app(Settings(database_path=db_path), clock=clock)
        try:
            user_id = await seed_owner(app, 101, finished=True, referral="pital2026")
            assert await app.leads.evaluate(user_id) == 1
            await app.leads.repo.link_staff("telegram", "501", "up_brass", "en", int(clock.now()))
            staff = await app.leads.repo.staff("telegram", "501")
            clock.advance(90 * 60)
            await app.leads.act(staff, 1, "acc")
        finally:
            await app.close()

    asyncio.run(one_accepted_lead())
    assert cli.main(["leads", "stats"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["startup", "active", "assigned", "accepted"]
    assert table[1].split()[:10] == ["up_brass", "yes", "1", "1", "0", "0", "0", "0", "1.5", "h"]
    assert cli.main(["leads", "export", "--format", "csv", "--output", "leads.csv"]) == 0
    [row] = list(csv.DictReader(io.StringIO((tmp_path / "leads.csv").read_text(encoding="utf-8"))))
    assert (row["lead_id"], row["status"], row["startup_id"], row["business"], row["phone"]) == (
        "1", "accepted", "up_brass", "Asha Brass & Sons", "+919876543210")
    assert row["referral_startup_id"] == "up_brass"
    assert row["created_at"].endswith("+05:30") and row["accepted_at"].endswith("+05:30")
    assert row["created_at"][11:19] == "01:56:40"  # 1 780 000 000 s is 20:26:40 UTC, 01:56:40 in India


async def test_language_in_a_staff_chat_switches_the_staff_language_not_the_owner_onboarding(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass", "en")
    api.send_text(501, "/language")
    [reply] = await api.wait_for_messages(501, 1)
    assert "Before we start" not in reply.text and "/leads" in reply.text
    assert DEVANAGARI.search(reply.text)  # the staff help, now in Hindi
    api.send_text(501, "/leads")
    page = await api.wait_for_message(501, lambda m: "/leads" not in (m.text or "") or "Lead" in (m.text or ""))
    assert DEVANAGARI.search(page.text)  # and the list follows
    rows_now = await rows(app, "SELECT lang FROM startup_staff WHERE chat_ref = '501'")
    assert rows_now == [{"lang": "hi"}]
    assert await rows(app, "SELECT COUNT(*) AS n FROM users WHERE user_ref = '501' AND consent = 'given'") == [{"n": 0}]
    api.send_text(501, "/language en")
    [back] = await api.wait_for_messages(501, 1)
    assert "/leads – your leads" in back.text and not DEVANAGARI.search(back.text.replace("हिन्दी", ""))


async def test_an_owner_who_records_an_iec_after_confirming_qualifies_and_the_lead_follows(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    weak = {**PROFILE, "iec": "no", "gst": "no", "udyam": "no", "experience": "occasionally", "turnover": "upto_1_5_crore"}
    await qualify(h, 120, profile=weak)  # the core modules passed, but the score stays under 50
    assert await rows(app, "SELECT * FROM leads") == []
    api.send_text(120, "/profile")
    details = await api.wait_for_message(120, lambda m: "Your details:" in (m.text or ""))
    api.tap_button(120, details, "Change an answer")
    which = await api.wait_for_message(120, lambda m: "Which answer do you want to change?" in (m.text or ""))
    api.tap_button(120, which, "IEC")
    await api.wait_for_message(120, lambda m: "IEC" in (m.text or "") and "?" in (m.text or ""))
    api.send_text(120, "yes")
    summary = await api.wait_for_message(120, lambda m: "IEC: Yes" in (m.text or ""))
    api.tap_button(120, summary, "Confirm")
    done = await api.wait_for_message(120, lambda m: "Your details are updated" in (m.text or ""))
    assert "Your export readiness is now 56/100" in done.text
    card = await card_for(api, 501)  # the lead follows the change
    assert "⭐ Readiness 56/100:" in card.text and "🧾 IEC: Yes" in card.text
    [lead] = await rows(app, "SELECT status, score FROM leads")
    assert lead == {"status": "offered", "score": 56}


async def test_the_last_step_can_be_undone_for_ten_minutes_and_the_owner_never_hears_of_it(h: Harness):
    api, app = h.api, h.app
    await join(h, 501, "up_brass")
    await qualify(h, 101, lang="hi", profile={**PROFILE, "markets": ["europe", "middle_east"]})
    card = await card_for(api, 501)
    assert "🗣 Speaks: हिन्दी" in card.text and "🌍 Markets: Europe, Middle East" in card.text
    api.tap_button(501, card, "Accept")
    reply = await api.wait_for_message(501, lambda m: "is yours" in (m.text or ""))
    assert "↩️ Undo" not in [label for label, _ in reply.buttons]  # the owner is told at once: no taking it back
    h.clock.advance(HOUR)
    api.tap_button(501, reply, "Contacted")
    contacted = await api.wait_for_message(501, lambda m: (m.text or "").startswith("✅ Lead #1: Contacted."))
    old_undo = dict(contacted.buttons)["↩️ Undo"]
    h.clock.advance(60)
    api.tap_button(501, contacted, "Listed on Alibaba")  # a slip: not listed yet
    listed = await api.wait_for_message(501, lambda m: (m.text or "").startswith("✅ Lead #1: Listed on Alibaba.com."))
    listed_undo = dict(listed.buttons)["↩️ Undo"]
    h.clock.advance(5 * 60)
    api.tap_button(501, listed, "↩️ Undo")
    undone = await api.wait_for_message(501, lambda m: (m.text or "").startswith("↩️ Undone"))
    assert undone.text.startswith("↩️ Undone: lead #1 is back at “Contacted”.")
    assert [label for label, _ in undone.buttons] == ["Listed on Alibaba", "First export order", "Lost"]
    assert (await rows(app, "SELECT status FROM leads")) == [{"status": "contacted"}]
    statuses = [r["status"] for r in await rows(app, "SELECT status FROM lead_history ORDER BY id")]
    assert statuses == ["created", "offered", "accepted", "contacted", "undone"]  # the funnel and commissions never count it
    [stats] = [s for s in await app.leads.stats() if s.startup.id == "up_brass"]
    assert stats.listed == 0
    # The owner's notice was held back and is gone: they never hear "listed".
    h.clock.advance(HOUR)
    h.bot.runtime.delivery.wake()
    await api.wait_idle(quiet=0.2)
    assert not [m for m in api.messages(101) if "🌐" in (m.text or "")]
    # The same Undo again, or an Undo under an older step, is refused and changes nothing.
    before = await snapshot(app)
    api.tap(501, listed.message_id, listed_undo)  # a client that still shows the keyboard
    api.tap(501, contacted.message_id, old_undo)
    assert await answers_to(api, 2) == [
        "That step can no longer be undone: only the last step, within 10 minutes. Send /leads to see the lead."] * 2
    assert await snapshot(app) == before
    # Listed for real: after ten minutes it cannot be undone, and the owner hears of it once, in Hindi.
    api.tap_button(501, undone, "Listed on Alibaba")
    listed = await api.wait_for_message(501, lambda m: (m.text or "").startswith("✅ Lead #1: Listed on Alibaba.com."))
    h.clock.advance(10 * 60 + 1)
    api.tap_button(501, listed, "↩️ Undo")
    assert await answers_to(api, 1) == [
        "That step can no longer be undone: only the last step, within 10 minutes. Send /leads to see the lead."]
    h.clock.advance(60)
    h.bot.runtime.delivery.wake()
    told = await api.wait_for_message(101, lambda m: "🌐" in (m.text or ""))
    assert "Alibaba.com" in told.text and "Pital Nagri Export Labs" in told.text and "आपका" in told.text
    await api.wait_idle(quiet=0.2)
    assert len([m for m in api.messages(101) if "🌐" in (m.text or "")]) == 1
    # The card, opened from /leads, shows where the lead is and how it got there, without 🆕.
    api.send_text(501, "/leads")
    page = await api.wait_for_message(501, lambda m: "your leads" in (m.text or ""))
    api.tap_button(501, page, next(label for label, _ in page.buttons if label.startswith("#1")))
    opened = await api.wait_for_message(501, lambda m: (m.text or "").startswith("📋 Lead #1 · Listed on Alibaba.com"))
    timeline = opened.text.split("🕑 So far:\n")[1].splitlines()
    assert [line.split(": ", 1)[1] for line in timeline[:4]] == ["Offered to you", "Accepted", "Contacted", "Listed on Alibaba.com"]
    assert re.fullmatch(r"• \d{1,2} [A-Z][a-z]+ 20\d\d, \d{1,2}:\d\d [AP]M: Offered to you", timeline[0]), timeline[0]
    assert not opened.text.startswith("🆕")
