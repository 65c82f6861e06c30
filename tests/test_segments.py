"""Segments: the pure model, its SQL on a seeded SQLite file, and preview = enqueued = delivered."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from telegram import Bot

from bot.app import App, build_app
from bot.channels.telegram import TelegramSender
from bot.config import Settings
from bot.core import broadcast as compose
from bot.core.messages import Say
from bot.core.segments import MODULE_STATUSES, Segment, Vocabulary, describe, lookup, validate
from bot.i18n import Catalogs
from bot.services.broadcast import BUTTONS, Plan
from bot.services.clock import ManualClock
from bot.storage.db import Database
from bot.storage.outbox import Outgoing
from tests.botapi_standin import BotApiStandin

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

NOW = 1_780_000_000


@dataclass
class Owner:
    """One seeded owner, as the tests think of them."""

    uid: int
    lang: str = "hi"
    state: str | None = "uttar_pradesh"
    sector: str | None = "handicrafts"
    consent: str = "given"
    onboarded: bool = True
    blocked: bool = False
    broadcasts_off: bool = False
    channel: str = "telegram"
    modules: dict[str, str] | None = None  # module id -> "started" | "passed"

    @property
    def reachable(self) -> bool:
        return self.consent == "given" and not self.blocked and not self.broadcasts_off and self.channel == "telegram"

    def module_status(self, module_id: str) -> str:
        return (self.modules or {}).get(module_id, "not_started")


async def seed(db: Database, owners: list[Owner]) -> dict[int, int]:
    """Insert ``owners`` as the bot would have stored them; returns uid -> users.id."""
    ids = {}
    async with db.transaction() as conn:
        for o in owners:
            profile = {k: v for k, v in (("state", o.state), ("sector", o.sector)) if v is not None}
            if o.consent != "given":
                profile = {}
            state = {"flow": "menu" if o.onboarded else "onboarding", "step": "" if o.onboarded else "district", "seq": 3}
            cur = await conn.execute(
                "INSERT INTO users (channel, user_ref, lang, state, profile, consent, consent_at, onboarded_at, first_seen_at, "
                "last_seen_at, blocked_at, broadcasts_off) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    o.channel, str(o.uid), o.lang, json.dumps(state), json.dumps(profile), o.consent,
                    NOW if o.consent else None, NOW if o.onboarded and o.consent == "given" else None, NOW, NOW,
                    NOW if o.blocked else None, int(o.broadcasts_off),
                ),
            )
            ids[o.uid] = (await cur.fetchone())[0]
            for module_id, status in (o.modules or {}).items():
                await conn.execute(
                    "INSERT INTO progress (user_id, module_id, lesson, passed, best, started_at, passed_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (ids[o.uid], module_id, 2, int(status == "passed"), 5 if status == "passed" else None, NOW,
                     NOW if status == "passed" else None, NOW),
                )
    return ids


# A small population whose counts are checked by hand below.
SMALL = [
    Owner(1, "hi", "uttar_pradesh", "handicrafts", modules={"export_ready": "passed"}),
    Owner(2, "hi", "uttar_pradesh", "textiles_apparel", modules={"export_ready": "started"}),
    Owner(3, "en", "uttar_pradesh", "handicrafts"),
    Owner(4, "en", "gujarat", "textiles_apparel", modules={"export_ready": "passed", "payments": "passed"}),
    Owner(5, "hi", "gujarat", None, onboarded=False),
    Owner(6, "hi", "uttar_pradesh", "handicrafts", broadcasts_off=True),  # opted out
    Owner(7, "en", "uttar_pradesh", "handicrafts", blocked=True),  # blocked the bot
    Owner(8, "hi", "uttar_pradesh", "handicrafts", consent="refused"),
    Owner(9, "hi", "uttar_pradesh", "handicrafts", consent=""),  # erased their data
    Owner(10, "hi", "uttar_pradesh", "handicrafts", channel="console"),  # cannot be reached on Telegram
]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    """The app on a fresh database file."""
    app = await build_app(Settings(database_path=tmp_path / "bot.sqlite3"), clock=ManualClock(NOW))
    try:
        yield app
    finally:
        await app.close()


def vocab(app: App) -> Vocabulary:
    return app.broadcasts.vocab


# ---- the pure model ------------------------------------------------------------------------------


def test_conditions_combine_and_toggle(content):
    segment = Segment().with_lang("hi").toggle_state("uttar_pradesh").toggle_state("bihar").toggle_state("uttar_pradesh")
    segment = segment.with_module("export_ready", "passed").with_module("payments", "not_started").with_module("export_ready", "started")
    assert segment.lang == "hi" and segment.states == ("bihar",)
    assert segment.modules == (("payments", "not_started"), ("export_ready", "started"))
    assert Segment.from_dict(json.loads(json.dumps(segment.to_dict()))) == segment
    assert segment.with_module("payments", None).with_module("export_ready", None).modules == ()
    assert Segment().is_everyone and not segment.is_everyone


def test_validation_names_what_does_not_exist(content, catalogs):
    v = Vocabulary.from_content(content)
    assert validate(Segment(lang="hi", states=("uttar_pradesh",), sectors=("spices",), modules=(("payments", "passed"),)), v) == []
    bad = Segment(lang="fr", states=("atlantis",), sectors=("magic",), modules=(("nope", "finished"),))
    shown = [p.render(catalogs, "en") for p in validate(bad, v)]
    assert shown == [
        "Unknown language 'fr': use hi or en.",
        "Unknown state 'atlantis': use an id like uttar_pradesh.",
        "Unknown sector 'magic': use an id like textiles_apparel.",
        "Unknown module 'nope'.",
        "Unknown module status 'finished': use not_started, started, passed or not_passed.",
    ]
    # What an admin typed is escaped before it is echoed into a chat message.
    assert validate(Segment(states=("<b>x",),), v)[0].render(catalogs, "en") == "Unknown state '&lt;b&gt;x': use an id like uttar_pradesh."
    assert lookup("Uttar Pradesh", v.states) == "uttar_pradesh" and lookup("UTTAR_PRADESH", v.states) == "uttar_pradesh"
    assert lookup("Narnia", v.states) is None


def test_description_in_both_languages(content, catalogs):
    v = Vocabulary.from_content(content)
    segment = Segment(lang="hi", states=("uttar_pradesh", "gujarat"), onboarded=True, modules=(("payments", "passed"),))
    en = describe(segment, v, catalogs, "en")
    assert en.splitlines() == [
        "• Language: हिन्दी",
        "• State: Uttar Pradesh, Gujarat",
        "• Profile: complete",
        "• Module Getting paid safely: passed",
    ]
    hi = describe(segment, v, catalogs, "hi").splitlines()
    assert len(hi) == 4
    assert "उत्तर प्रदेश, गुजरात" in hi[1] and "भुगतान सुरक्षित कैसे पाएँ" in hi[3]
    assert not any(word in " ".join(hi) for word in ("State", "Profile", "complete", "passed"))
    assert catalogs.gettext("hi", "Everyone who agreed to hear from us") != "Everyone who agreed to hear from us"
    assert describe(Segment(), v, catalogs, "en") == "Everyone who agreed to hear from us"


def test_announcement_needs_both_languages(catalogs):
    assert compose.check_announcement("Webinar on Friday", "शुक्रवार को वेबिनार") == []
    missing = compose.check_announcement("Webinar on Friday", "")
    assert [p.render(catalogs, "en") for p in missing] == ["The Hindi text is missing. Both languages are needed."]
    assert compose.check_announcement("Webinar on Friday", "Webinar on Friday")  # English twice is not Hindi
    assert compose.check_announcement("", "शुक्रवार को वेबिनार")
    assert compose.check_announcement("x" * 3001, "शुक्रवार")


def test_schedule_is_india_time_and_in_the_future():
    now = 1_780_000_000  # 2026-05-28 20:26:40 UTC = 2026-05-29 01:56:40 IST
    assert compose.parse_when("2026-12-01 10", now) == 1_796_099_400  # 2026-12-01 04:30 UTC
    assert compose.parse_when("2026-12-01 10:30", now) == 1_796_099_400 + 1800
    assert compose.parse_when("2026-05-29 01", now).msgid.startswith("That time has already passed")
    assert compose.parse_when("2026-02-30 10", now).msgid.startswith("There is no such date")
    assert compose.parse_when("tomorrow", now).msgid.startswith("Please type the date")
    # The example an admin is shown is tomorrow 10:00 India time, so it can be typed as it is.
    wrong = compose.parse_when("tomorrow", now)
    assert wrong.render(Catalogs.load(), "en") == "Please type the date and hour in India time like this: 2026-05-30 10"
    assert compose.example_when(now) == "2026-05-30 10" and compose.parse_when(compose.example_when(now), now) == 1_780_115_400
    assert "2026-05-30 10" in compose.parse_when("2026-02-30 10", now).render(Catalogs.load(), "hi")
    assert compose.at_hour(now, 18) == 1_780_057_800  # 29 May 18:00 IST
    assert compose.at_hour(now, 10, days=1) == 1_780_115_400  # 30 May 10:00 IST


def test_invitation_has_a_start_button_that_opens_the_module(content, catalogs):
    module = content.module("payments")
    for lang in ("en", "hi"):
        say = compose.invitation(module, catalogs, lang)
        assert [(c.id, c.label) for c in say.choices] == [("go:payments", catalogs.gettext(lang, compose.START_MODULE))]
        assert catalogs.gettext(lang, module.title) in say.text
    assert compose.invitation(module, catalogs, "hi").text != compose.invitation(module, catalogs, "en").text


def test_admin_buttons_fit_a_phone_in_both_languages(catalogs):
    for label in BUTTONS:
        for lang in ("en", "hi"):
            assert len(catalogs.gettext(lang, label)) <= 20, (lang, label, catalogs.gettext(lang, label))


# ---- SQL on a real database ----------------------------------------------------------------------


async def test_counts_per_condition_on_a_seeded_database(app: App):
    await seed(app.db, SMALL)
    count = app.broadcasts.count

    async def total(segment: Segment) -> int:
        counts = await count(segment)
        return counts["hi"] + counts["en"]

    # Opted out, blocked, refused, erased and console owners are never counted.
    assert await count(Segment()) == {"hi": 3, "en": 2}
    assert await total(Segment(lang="en")) == 2
    assert await total(Segment(states=("uttar_pradesh",))) == 3
    assert await total(Segment(states=("uttar_pradesh", "gujarat"))) == 5
    assert await total(Segment(sectors=("textiles_apparel",))) == 2
    assert await total(Segment(onboarded=True)) == 4
    assert await total(Segment(onboarded=False)) == 1
    assert await total(Segment(modules=(("export_ready", "passed"),))) == 2
    assert await total(Segment(modules=(("export_ready", "started"),))) == 1
    assert await total(Segment(modules=(("export_ready", "not_started"),))) == 2
    assert await total(Segment(modules=(("export_ready", "not_passed"),))) == 3
    # AND between conditions.
    assert await total(Segment(lang="hi", states=("uttar_pradesh",), modules=(("export_ready", "not_passed"),))) == 1
    assert await total(Segment(states=("gujarat",), modules=(("export_ready", "passed"), ("payments", "passed")))) == 1
    assert await total(Segment(lang="en", sectors=("handicrafts",), onboarded=False)) == 0


async def test_sql_matches_a_reference_on_a_random_population(app: App):
    rng = random.Random(5)
    states, sectors = ["uttar_pradesh", "gujarat", "tamil_nadu", None], ["handicrafts", "spices", "leather", None]
    modules = ["export_ready", "payments", "alibaba"]
    owners = [
        Owner(
            1000 + i, rng.choice(["hi", "en"]), rng.choice(states), rng.choice(sectors),
            consent=rng.choice(["given"] * 8 + ["refused", ""]), onboarded=rng.random() < 0.7, blocked=rng.random() < 0.1,
            broadcasts_off=rng.random() < 0.1, modules={m: rng.choice(["started", "passed"]) for m in modules if rng.random() < 0.5},
        )
        for i in range(400)
    ]
    await seed(app.db, owners)

    def reference(s: Segment) -> int:
        return sum(
            1 for o in owners
            if o.reachable
            and (s.lang is None or o.lang == s.lang)
            and (not s.states or o.state in s.states)
            and (not s.sectors or o.sector in s.sectors)
            and (s.onboarded is None or o.onboarded == s.onboarded)
            and all(
                {"passed": o.module_status(m) == "passed", "started": o.module_status(m) == "started",
                 "not_started": o.module_status(m) == "not_started", "not_passed": o.module_status(m) != "passed"}[st]
                for m, st in s.modules
            )
        )

    segments = [Segment()]
    for _ in range(60):
        segment = Segment(
            lang=rng.choice([None, "hi", "en"]),
            states=tuple(rng.sample([s for s in states if s], rng.randint(0, 2))),
            sectors=tuple(rng.sample([s for s in sectors if s], rng.randint(0, 1))),
            onboarded=rng.choice([None, True, False]),
        )
        for m in rng.sample(modules, rng.randint(0, 2)):
            segment = segment.with_module(m, rng.choice(MODULE_STATUSES))
        segments.append(segment)
    for segment in segments:
        counts = await app.broadcasts.count(segment)
        assert counts["hi"] + counts["en"] == reference(segment), segment


async def test_preview_count_equals_rows_enqueued_and_messages_delivered(tmp_path: Path):
    clock = ManualClock(NOW)
    async with BotApiStandin() as api:
        app = await build_app(Settings(telegram_token=api.token, database_path=tmp_path / "bot.sqlite3"), clock=clock)
        try:
            await seed(app.db, SMALL)
            for owner in SMALL:
                api.add_user(owner.uid, language_code=owner.lang)
            segment = Segment(states=("uttar_pradesh", "gujarat"), modules=(("export_ready", "not_passed"),))
            preview = await app.broadcasts.count(segment)
            broadcast_id, enqueued = await app.broadcasts.start(Plan("module", segment, module_id="payments"), created_by="test")
            rows = await app.db.fetchall("SELECT chat_ref, dedup_key FROM outbox WHERE batch_id = ? ORDER BY id", (broadcast_id,))
            assert preview == {"hi": 2, "en": 1} and enqueued == 3 == len(rows)
            assert sorted(r["chat_ref"] for r in rows) == ["2", "3", "5"]
            assert {r["dedup_key"] for r in rows} == {f"bc:{broadcast_id}:{uid}" for uid in await _ids(app, ["2", "3", "5"])}
            async with Bot(api.token, base_url=api.base_url) as bot:
                worker = app.delivery({"telegram": TelegramSender(bot)}, rate=100.0)
                assert await worker.drain() == 3
            delivered = {uid: [m.text for m in api.messages(uid)] for uid in range(1, 11)}
            assert {uid for uid, texts in delivered.items() if texts} == {2, 3, 5}
            title = {lang: app.texts.gettext(lang, app.engine.content.module("payments").title) for lang in ("hi", "en")}
            assert title["hi"] in delivered[2][0] and title["en"] in delivered[3][0]
            assert (await app.broadcasts.repo.progress(broadcast_id)) == {"sent": 3}
            # The same broadcast can never reach anyone twice: its dedup key cannot be enqueued again.
            [uid2] = await _ids(app, ["2"])
            again = Outgoing("telegram", "2", "broadcast", Say("again"), user_id=uid2, dedup_key=f"bc:{broadcast_id}:{uid2}")
            assert await app.outbox.enqueue([again], NOW) == 0
        finally:
            await app.close()


async def _ids(app: App, refs: list[str]) -> list[int]:
    rows = await app.db.fetchall(f"SELECT id FROM users WHERE user_ref IN ({', '.join('?' * len(refs))})", refs)
    return [r[0] for r in rows]


async def test_preview_count_of_many_owners_uses_the_indexes(app: App):
    plan = await app.db.fetchall(  # the expression segment_where filters states with
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM users u WHERE u.profile ->> 'state' IN (?, ?)", ("a", "b")
    )
    assert any("users_by_state" in r[3] for r in plan), [tuple(r) for r in plan]
