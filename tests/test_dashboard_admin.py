"""The admin side of the dashboard in a real browser (Debian's chromium): where onboarding stops,
the hardest quiz questions, leads waiting and SLA lapses per startup, and the date range, on
SQLite and PostgreSQL, in English and Hindi.

The bot and its two qualified owners (May 2026, the test clock) come from ``tests/test_dashboard.py``;
owners who stopped in onboarding, their first-try and retry answers and an SLA lapse are added
in November and December 2026, so a November range shows only what was added in November.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.dashboard_support import browser
from tests.test_dashboard import ADMIN, SCREENSHOTS, STAFF_A, Board, d, signed_in  # noqa: F401  (d: the fixture)
from tests.test_leads_e2e import rows

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
NOV_10 = int(dt.datetime(2026, 11, 10, 12, tzinfo=IST).timestamp())
NOV_30_LATE = int(dt.datetime(2026, 11, 30, 23, 30, tzinfo=IST).timestamp())  # still 30 November in India (UTC: 18:00)
DEC_2 = int(dt.datetime(2026, 12, 2, 9, tzinfo=IST).timestamp())
NOVEMBER = "from=2026-11-01&to=2026-11-30"


async def owner(d: Board, ref: str, step: str, first_seen: int) -> int:
    """An owner who started onboarding and stopped at ``step``."""
    state = '{"flow": "onboarding", "step": "%s", "seq": 3, "draft": {}, "seed": 1}' % step
    [row] = await rows(d.h.app, "INSERT INTO users (channel, user_ref, lang, state, consent, first_seen_at, last_seen_at) "
                                "VALUES ('telegram', ?, 'en', ?, 'given', ?, ?) RETURNING id", ref, state, first_seen, first_seen)
    return row["id"]


async def answer(d: Board, user_id: int, module: str, question: str, right: bool, at: int, attempt: int = 1) -> None:
    await d.h.app.db.execute(
        "INSERT INTO quiz_answers (user_id, module_id, attempt, question_id, option_id, correct, answered_at) "
        "VALUES (?, ?, ?, ?, 'x', ?, ?)", (user_id, module, attempt, question, int(right), at))


async def seed(d: Board) -> tuple:
    """Three owners stopped at "state" in November (one late on the 30th), one at "sector" and one at
    "consent" in December; their answers to the first module's first two questions; a lapse."""
    module = d.h.app.dashboard.stats.content.modules[0]
    q1, q2 = module.quiz[0], module.quiz[1]
    november = [await owner(d, f"9{i}", "state", at) for i, at in enumerate((NOV_10, NOV_10, NOV_30_LATE))]
    december = [await owner(d, "95", "sector", DEC_2), await owner(d, "96", "consent", DEC_2)]
    # q1: November 1 right of 3 on the first try (the retries, all right, do not count); December 0 of 2.
    for uid, right in zip(november, (True, False, False)):
        await answer(d, uid, module.id, q1.id, right, NOV_10)
        await answer(d, uid, module.id, q1.id, True, NOV_10 + 60, attempt=2)
        await answer(d, uid, module.id, q2.id, True, NOV_10)  # q2: 3 of 3 in November
    for uid in december:
        await answer(d, uid, module.id, q1.id, False, DEC_2)
        await answer(d, uid, module.id, q2.id, True, DEC_2)
    # Where they are in the modules (``lesson`` counts the lessons read). November: one passed the first,
    # one is in its quiz, one reads its lesson 2. December: one has just opened it (reads lesson 1) and
    # failed the second's quiz, one read every lesson of the first.
    second = d.h.app.dashboard.stats.content.modules[1]
    lessons = len(module.lessons)
    for uid, module_id, lesson, attempt, passed, in_quiz in (
            (november[0], module.id, lessons, 1, 1, 0), (november[1], module.id, lessons, 1, 0, 1),
            (november[2], module.id, 1, 0, 0, 0), (december[0], module.id, 0, 0, 0, 0),
            (december[0], second.id, len(second.lessons), 2, 0, 0), (december[1], module.id, lessons, 0, 0, 0)):
        await d.h.app.db.execute(
            "INSERT INTO progress (user_id, module_id, lesson, attempt, question, score, best, passed, in_quiz, started_at, "
            "passed_at, updated_at) VALUES (?, ?, ?, ?, 0, 0, NULL, ?, ?, ?, NULL, ?)",
            (uid, module_id, lesson, attempt, passed, in_quiz, NOV_10, NOV_10))
    [lead] = await rows(d.h.app, "SELECT id FROM leads WHERE startup_id = 'up_brass'")
    await d.h.app.db.execute("INSERT INTO lead_history (lead_id, status, startup_id, actor, note, at) "
                             "VALUES (?, 'expired', 'up_brass', 'system', 'no answer in 48 h', ?)", (lead["id"], NOV_10))
    return module, q1, q2


async def first_try(d: Board, module: str, question: str) -> tuple[int, int]:
    """The oracle: first-try answers and right ones for a question, counted row by row."""
    got = await rows(d.h.app, "SELECT correct FROM quiz_answers WHERE module_id = ? AND question_id = ? AND attempt = 1",
                     module, question)
    return len(got), sum(r["correct"] for r in got)


async def bars(page) -> list[str]:
    return await page.locator("#stops text").all_text_contents()


async def table(page, selector: str) -> list[list[str]]:
    return [await r.locator("td").all_inner_texts() for r in await page.locator(f"{selector} tr").all()][1:]


async def test_an_admin_sees_where_onboarding_stops_and_the_hardest_questions_and_filters_by_date(d: Board):
    module, q1, q2 = await seed(d)
    answered, right = await first_try(d, module.id, q1.id)
    assert answered >= 5  # the five added, and the qualified owners' own first tries
    async with browser() as b:
        context, page = await signed_in(b, d, ADMIN)
        await page.goto(f"{d.base}/dashboard/admin")
        # Everyone: 3 at the state question, 1 at the main product, 1 at consent, in the flow's order.
        assert await bars(page) == ["Consent", "1 (20%)", "State", "3 (60%)", "Main product", "1 (20%)"]
        hardest = await table(page, "#hardest")
        share = d.h.app.texts.percent("en", right / answered)
        assert hardest[0] == [d.h.app.texts.gettext("en", module.short), d.h.app.texts.gettext("en", q1.text), share,
                              str(answered)]
        assert len(hardest) <= 10
        startups = {r[0]: r[1:] for r in await table(page, "#startups")}
        assert startups == {"Knit City Trade Desk": ["1", "0"], "Pital Nagri Export Labs": ["1", "1"]}

        # November only, through the form: the owners who started then, their first tries, the lapse.
        await page.fill("input[name=from]", "2026-11-01")
        await page.fill("input[name=to]", "2026-11-30")
        await page.click("form.filters button")
        assert NOVEMBER in page.url
        assert await bars(page) == ["State", "3 (100%)"]  # the late one on the 30th (India time) counts
        hardest = await table(page, "#hardest")
        assert [row[2:] for row in hardest] == [["33%", "3"], ["100%", "3"]]  # q1 1 of 3, q2 3 of 3; retries left out
        assert hardest[0][1] == d.h.app.texts.gettext("en", q1.text)
        startups = {r[0]: r[1:] for r in await table(page, "#startups")}
        assert startups == {"Knit City Trade Desk": ["0", "0"], "Pital Nagri Export Labs": ["0", "1"]}
        short = d.h.app.texts.gettext("en", module.short)
        assert await table(page, "#modules") == [[short, "3", "1 (33%)", "Lesson 2: 1\nIn the quiz: 1"]]
        # The funnel counts the owners who started in the range: 3, none of them qualified.
        assert (await page.locator("svg:not(#stops) text").all_text_contents())[1] == "3 (100%)"
        # December: the other two.
        await page.goto(f"{d.base}/dashboard/admin?from=2026-12-01&to=2026-12-31")
        assert await bars(page) == ["Consent", "1 (50%)", "Main product", "1 (50%)"]
        assert [row[2:] for row in await table(page, "#hardest")] == [["0%", "2"], ["100%", "2"]]
        assert await table(page, "#modules") == [
            [short, "2", "0 (0%)", "Lesson 1: 1\nLessons read, quiz not started: 1"],
            [d.h.app.texts.gettext("en", d.h.app.dashboard.stats.content.modules[1].short), "1", "0 (0%)", "Quiz not passed yet: 1"]]
        # Everyone: the module's passes are the progress rows that say so (the qualified owners' too).
        [passes] = await rows(d.h.app, "SELECT COUNT(*) AS n FROM progress WHERE module_id = ? AND passed = 1", module.id)
        await page.goto(f"{d.base}/dashboard/admin")
        assert (await table(page, "#modules"))[0][2].startswith(f"{passes['n']} (")
        # A reversed or malformed range is no range.
        await page.goto(f"{d.base}/dashboard/admin?from=2026-12-31&to=2026-12-01")
        assert len(await bars(page)) == 6
        await page.goto(f"{d.base}/dashboard/admin?from=yesterday")
        assert len(await bars(page)) == 6 and await page.input_value("input[name=from]") == ""


async def test_the_admin_tables_in_hindi_and_staff_get_404(d: Board):
    module, q1, _ = await seed(d)
    async with browser() as b:
        context, page = await signed_in(b, d, ADMIN)
        await page.click("form[action='/dashboard/lang'] button")
        await page.goto(f"{d.base}/dashboard/admin?{NOVEMBER}")
        assert await page.get_attribute("html", "lang") == "hi"
        texts = d.h.app.texts
        state_title = texts.gettext("hi", "State")
        assert state_title != "State"
        assert await bars(page) == [state_title, "3 (100%)"]
        hardest = await table(page, "#hardest")
        assert hardest[0][:2] == [texts.gettext("hi", module.short), texts.gettext("hi", q1.text)]
        assert hardest[0][1] != q1.text  # the question in Hindi
        heads = await page.locator("#hardest th").all_inner_texts()
        assert heads == [texts.gettext("hi", h) for h in ("Module", "Question", "Right first time", "Answered")]
        assert all(h != e for h, e in zip(heads, ("Module", "Question", "Right first time", "Answered")))
        assert await page.locator("label:has(input[name=from])").inner_text() == texts.gettext("hi", "From")
        [[title, opened, passed, where]] = await table(page, "#modules")
        assert (title, opened, passed) == (texts.gettext("hi", module.short), "3", "1 (33%)")
        assert where == f'{texts.gettext("hi", "Lesson {n}").format(n=2)}: 1\n{texts.gettext("hi", "In the quiz")}: 1'
        assert where.startswith("पाठ 2: 1\n")

        staff_context, staff_page = await signed_in(b, d, STAFF_A)
        assert (await staff_page.goto(f"{d.base}/dashboard/admin?{NOVEMBER}")).status == 404
        assert "Pital" not in await staff_page.inner_text("main")


async def test_screenshots_of_the_admin_page_in_both_languages(d: Board, tmp_path: Path):
    """docs/screenshots/dashboard-admin-{en,hi}.png with SAVE_SCREENSHOTS=1."""
    folder = SCREENSHOTS if os.environ.get("SAVE_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    await seed(d)
    async with browser() as b:
        context, page = await signed_in(b, d, ADMIN)
        for lang in ("en", "hi"):
            if await page.get_attribute("html", "lang") != lang:
                await page.click("form[action='/dashboard/lang'] button")
            await page.goto(f"{d.base}/dashboard/admin")
            assert await page.get_attribute("html", "lang") == lang
            await page.evaluate("Promise.all(Array.from(document.fonts).map(f => f.load())).then(() => true)")
            await page.screenshot(path=str(folder / f"dashboard-admin-{lang}.png"), full_page=True)
