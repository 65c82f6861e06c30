"""The funnel: counts and conversions on a seeded SQLite file, filters, the chart, /stats in chat."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import Settings
from bot.core.funnel import Filters, FunnelCounts, funnel_text, parse_filters, path_of, stages
from bot.core.segments import Vocabulary
from bot.services.clock import ManualClock
from bot.services.stats import StatsService
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot
from tests.test_segments import NOW, SMALL, seed

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

PNG = b"\x89PNG\r\n\x1a\n"
ADMIN = 1
# (owner uid, lead status now, statuses it went through, offered to a startup)
LEADS = [
    (1, "first_order", ["unassigned", "offered", "accepted", "contacted", "listed", "first_order"], True),
    (2, "accepted", ["offered", "accepted"], True),
    (4, "lost", ["offered", "accepted", "listed", "lost"], True),  # listed once, lost later: still counts as listed
    (3, "unassigned", ["unassigned"], False),
]


async def seed_leads(app: App, ids: dict[int, int]) -> None:
    """A startup and the leads above, with their offers and history, as the lead service stores them."""
    async with app.db.transaction() as conn:
        await conn.execute("INSERT INTO startups (id, name, created_at, updated_at) VALUES ('s1', 'Export Mitra', ?, ?)", (NOW, NOW))
        for uid, status, history, offered in LEADS:
            owner = next(o for o in SMALL if o.uid == uid)
            cur = await conn.execute(
                "INSERT INTO leads (user_id, score, state, sector, lang, startup_id, status, offered_at, created_at, updated_at) "
                "VALUES (?, 70, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (ids[uid], owner.state, owner.sector, owner.lang, "s1" if offered else None, status, NOW if offered else None, NOW, NOW),
            )
            lead_id = (await cur.fetchone())[0]
            if offered:
                await conn.execute("INSERT INTO lead_offers (lead_id, startup_id, offered_at) VALUES (?, 's1', ?)", (lead_id, NOW))
            for step, past in enumerate(history):
                await conn.execute(
                    "INSERT INTO lead_history (lead_id, status, startup_id, actor, at) VALUES (?, ?, 's1', 'system', ?)",
                    (lead_id, past, NOW + step),
                )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    """The app on a database seeded with the SMALL owners and the leads above."""
    app = await build_app(Settings(database_path=tmp_path / "bot.sqlite3"), clock=ManualClock(NOW))
    try:
        ids = await seed(app.db, SMALL)
        await seed_leads(app, ids)
        # Owner 9 erased their data, as the session store does it: profile gone, the erasure recorded.
        await app.db.execute("UPDATE users SET profile = '{}', consent = '' WHERE id = ?", (ids[9],))
        await app.db.execute("INSERT INTO events (user_id, kind, at) VALUES (?, 'data_deleted', ?)", (ids[9], NOW))
        yield app
    finally:
        await app.close()


def counts_of(funnel) -> dict[str, int]:
    return {stage.id: stage.count for stage in funnel}


PATH = ["first_message", "consent", "onboarded", "core", "qualified", "assigned", "accepted", "listed", "first_order"]


async def test_funnel_is_one_path_that_never_grows(app: App):
    stats = StatsService(app.db, app.engine.content, app.texts)
    funnel = await stats.funnel(Filters())
    path = path_of(funnel)
    assert [s.id for s in path] == PATH
    counts = counts_of(path)
    # Owner 9 erased their data: not counted. Owners 1–4 have leads although none passed all the core
    # modules now (owner 1 started the training again): a lead means they did, so they count there.
    assert [counts[s] for s in PATH] == [9, 8, 7, 4, 4, 3, 3, 2, 1]
    assert all(later.count <= earlier.count for earlier, later in zip(path, path[1:]))
    assert all(s.from_previous is None or s.from_previous <= 1 for s in path)
    by_id = {s.id: s for s in funnel}
    assert by_id["consent"].from_previous == pytest.approx(8 / 9)
    assert by_id["first_order"].from_previous == pytest.approx(0.5) and by_id["first_order"].from_first == pytest.approx(1 / 9)
    assert by_id["first_message"].from_previous is None
    # Each module beside the path, optional ones included, with no percentage.
    beside = [s for s in funnel if s.module is not None]
    assert [s.id for s in beside] == [f"module:{m.id}" for m in app.engine.content.modules]
    assert counts_of(beside)["module:export_ready"] == 2 and counts_of(beside)["module:payments"] == 1
    assert all(s.from_previous is None for s in beside)


async def test_a_lead_without_the_modules_is_no_longer_more_than_the_stage_before(app: App):
    """Regression: "Qualified (lead): 2 (200% of the stage before)" when the owners had since restarted."""
    stats = StatsService(app.db, app.engine.content, app.texts)
    text = stats.text(await stats.funnel(Filters()), "Funnel", "en")
    assert "5. Qualified (lead): <b>4</b> (100% of the stage before)" in text
    assert "4. Passed the core modules: <b>4</b>" in text
    assert all(int(share) <= 100 for share in re.findall(r"\((\d+)% of the stage before\)", text))
    assert "Each module, passed: Get export-ready 2 · Documents 0 · Incoterms 0 · Getting paid 1" in text


async def test_funnel_filters_by_state_sector_and_language(app: App):
    stats = StatsService(app.db, app.engine.content, app.texts)
    up = counts_of(await stats.funnel(Filters(state="uttar_pradesh")))
    assert (up["first_message"], up["consent"], up["onboarded"], up["core"], up["module:export_ready"]) == (6, 6, 6, 3, 1)
    assert (up["qualified"], up["assigned"], up["accepted"], up["listed"], up["first_order"]) == (3, 2, 2, 1, 1)
    textiles = counts_of(await stats.funnel(Filters(sector="textiles_apparel")))
    assert (textiles["first_message"], textiles["module:payments"], textiles["qualified"], textiles["listed"]) == (2, 1, 2, 1)
    english = counts_of(await stats.funnel(Filters(lang="en")))
    assert (english["first_message"], english["onboarded"], english["qualified"], english["accepted"]) == (3, 3, 2, 1)
    both = counts_of(await stats.funnel(Filters(state="gujarat", lang="hi")))
    assert (both["first_message"], both["onboarded"], both["qualified"]) == (1, 0, 0)


def test_text_uses_indian_grouping_in_both_languages(content, catalogs):
    modules = [(m.id, m.short) for m in content.modules]
    funnel = stages(FunnelCounts(first_message=123456, consent=100000, onboarded=61728, modules={"export_ready": 0}), modules)
    en = funnel_text(funnel, "Funnel", catalogs, "en").splitlines()
    assert en[2] == "1. First message: <b>1,23,456</b>"
    assert en[3] == "2. Consent given: <b>1,00,000</b> (81% of the stage before)"
    assert en[5] == "4. Passed the core modules: <b>0</b> (0% of the stage before)"
    assert en[6] == "5. Qualified (lead): <b>0</b>"  # nobody before: no percentage to show
    hi = funnel_text(funnel, "फ़नल", catalogs, "hi").splitlines()
    assert hi[3] == "2. सहमति दी: <b>1,00,000</b> (पिछले चरण का 81%)"
    assert hi[5] == "4. ज़रूरी मॉड्यूल पास: <b>0</b> (पिछले चरण का 0%)"


def test_stats_arguments(content, catalogs):
    vocab = Vocabulary.from_content(content)
    assert parse_filters("state=UP sector=Spices lang=hi chart", vocab) == (Filters("uttar_pradesh", "spices", "hi"), True, [])
    assert parse_filters("", vocab) == (Filters(), False, [])
    filters, chart, problems = parse_filters("state=narnia colour=blue", vocab)
    assert [p.render(catalogs, "en") for p in problems] == [
        "Unknown state 'narnia': use an id like uttar_pradesh.",
        "I did not understand 'colour=blue'. Try: /stats state=uttar_pradesh sector=spices lang=hi chart",
    ]


async def test_chart_is_a_real_png(app: App):
    stats = StatsService(app.db, app.engine.content, app.texts)
    png = stats.chart(await stats.funnel(Filters()), "all owners")
    assert png.startswith(PNG) and len(png) > 10_000
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 600 and image.height > 400
    assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 20  # bars, labels, axes: not a blank canvas


async def test_stats_in_chat_for_admins_text_and_chart(tmp_path: Path):
    async with BotApiStandin() as api:
        api.add_user(ADMIN, language_code="hi")
        async with running_bot(api, tmp_path / "bot.sqlite3", clock=ManualClock(NOW), admin_ids=frozenset({ADMIN})) as bot:
            app = bot.app
            await seed_leads(app, await seed(app.db, SMALL))
            # Admin notices about the seeded leads (e.g. a startup without a staff chat) may arrive too.
            api.send_text(ADMIN, "/stats state=uttar_pradesh")
            text = await api.wait_for_message(ADMIN, lambda m: (m.text or "").startswith("फ़नल"))
            assert text.text.splitlines()[0] == "फ़नल (राज्य: उत्तर प्रदेश)"
            assert "1. पहला मैसेज: 6" in text.text and "पहला एक्सपोर्ट ऑर्डर: 1" in text.text
            api.send_text(ADMIN, "/stats state=narnia")
            refused = await api.wait_for_message(ADMIN, lambda m: "narnia" in (m.text or ""))
            assert refused.text == "'narnia' नाम का कोई राज्य नहीं मिला: uttar_pradesh जैसा id लिखें।"
            api.send_text(ADMIN, "/stats chart")
            photo = await api.wait_for_message(ADMIN, lambda m: m.kind == "photo", timeout=20)
            assert photo.kind == "photo" and photo.photo.startswith(PNG) and len(photo.photo) > 10_000
            assert photo.caption == "फ़नल (सभी कारोबारी)"
            assert api.refusals == []


async def test_the_chart_speaks_the_admins_language_with_whole_number_ticks(app: App, monkeypatch):
    from bot import pictures
    from bot.core.funnel import describe_filters

    written: list[str] = []
    real = pictures.Canvas.text
    monkeypatch.setattr(pictures.Canvas, "text", lambda self, x, y, text, *a, **k: written.append(text) or real(self, x, y, text, *a, **k))
    stats = StatsService(app.db, app.engine.content, app.texts)
    funnel = await stats.funnel(Filters())
    scope = describe_filters(Filters(), app.broadcasts.vocab, app.texts, "hi")
    png = stats.chart(funnel, scope, "hi")
    assert png.startswith(PNG)
    assert "कारोबारी" in written  # the axis is named, in Hindi
    assert app.texts.gettext("hi", path_stage_label(funnel)) in written  # the stages too
    ticks = [w for w in written if w.isdigit()]
    assert ticks and ticks[0] == "0" and all(int(b) > int(a) for a, b in zip(ticks, ticks[1:]))  # whole owners, rising
    assert not any("." in w for w in written if w.replace(".", "").isdigit())


def path_stage_label(funnel) -> str:
    return next(s.label for s in funnel if s.module is None)
