"""The staff dashboard, second part, in a real browser (Debian's chromium through Playwright) against the real bot:
a note per lead, a follow-up date with its reminder in chat on the day and the overdue list, the CSV export of
what the filters show, and the score and date filters. On SQLite and on PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
from pathlib import Path

import pytest

from bot.services.dashboard import india_midnight, india_today
from tests.dashboard_support import browser
from tests.test_dashboard import OWNER_A, SCREENSHOTS, STAFF_A, STAFF_B, Board, d, lead_id_of, signed_in, status_of  # noqa: F401
from tests.test_leads_e2e import PROFILE, card_for, qualify, rows

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

HINDI = {**PROFILE, "owner_name": "मीना कुमारी", "business_name": "कुमारी हथकरघा"}
FORMULA = {**PROFILE, "owner_name": "@Ravi", "business_name": '=HYPERLINK("http://evil.example","Click")'}
OWNER_HI, OWNER_F = 103, 104
REMINDER = "Follow-up today"


async def csrf_of(page) -> str:
    return await page.locator("input[name=csrf]").first.get_attribute("value")


async def accept(d: Board, page, lead_id: int) -> None:
    await page.goto(f"{d.base}/dashboard/lead/{lead_id}")
    await page.click("button[value=acc]")
    assert await status_of(d, lead_id) == "accepted"


async def delivered(d: Board) -> None:
    """Wait until the outbox has handed every message over (a chat's second message waits for its pace)."""
    for _ in range(200):
        if not await rows(d.h.app, "SELECT id FROM outbox WHERE status IN ('pending', 'claimed', 'sending')"):
            break
        await asyncio.sleep(0.05)
    await d.api.wait_idle(quiet=0.3)


def morning_of(day: dt.date) -> int:
    """09:30 in India on ``day``."""
    return india_midnight(day) + 9 * 3600 + 30 * 60


# ----------------------------------------------------------------- notes
async def test_staff_write_a_note_and_see_it_after_reload_escaped_with_who_and_when(d: Board):
    mine = await lead_id_of(d, "up_brass")
    text = "Call after Diwali <b>not bold</b> & ask about brass lamps — भाई से बात करें"
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await page.goto(f"{d.base}/dashboard/lead/{mine}")
        await page.fill("#note textarea", f"  {text}\n ")
        await page.click("#note button")
        assert await page.locator(".notice").inner_text() == "Note saved."
        await page.goto(f"{d.base}/dashboard/lead/{mine}")  # opened again (a reload would send the form again)
        assert await page.locator("#note-text").inner_text() == text  # trimmed, shown as typed
        assert "&lt;b&gt;not bold&lt;/b&gt;" in await page.content() and await page.locator("#note-text b").count() == 0
        assert (await page.locator("#note-by").inner_text()).startswith(f"Written by Telegram {STAFF_A}, ")
        assert await page.input_value("#note textarea") == text
        # Too long: refused, the old note stays.
        answer = await context.request.post(f"{d.base}/dashboard/lead/{mine}/note", form={"csrf": await csrf_of(page),
                                                                                          "note": "x" * 1001})
        assert answer.status == 200 and "The note is too long" in await answer.text()
        # Replaced, and without the form token refused.
        assert (await context.request.post(f"{d.base}/dashboard/lead/{mine}/note", form={"note": "gone"})).status == 403
        await page.fill("#note textarea", "Second call on Monday")
        await page.click("#note button")
        assert await page.locator(".notice").inner_text() == "Note saved."  # the form's answer came back
        await page.goto(f"{d.base}/dashboard/lead/{mine}")
        assert await page.locator("#note-text").inner_text() == "Second call on Monday"
    assert await rows(d.h.app, "SELECT lead_id, startup_id, note FROM lead_notes") == [
        {"lead_id": mine, "startup_id": "up_brass", "note": "Second call on Monday"}]


async def test_an_owner_who_erases_their_data_takes_the_notes_about_their_lead_along(d: Board):
    mine = await lead_id_of(d, "up_brass")
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await page.goto(f"{d.base}/dashboard/lead/{mine}")
        await page.fill("#note textarea", "Asha Devi prefers calls after 6 pm")
        await page.click("#note button")
    assert len(await rows(d.h.app, "SELECT note FROM lead_notes")) == 1
    d.api.send_text(OWNER_A, "/delete_my_data")
    await d.api.wait_for_message(OWNER_A, lambda m: (m.text or "").startswith("Delete everything"))
    d.api.send_text(OWNER_A, "yes")
    await d.api.wait_for_message(STAFF_A, lambda m: "withdrawn" in (m.text or ""))
    assert await rows(d.h.app, "SELECT note FROM lead_notes") == []


async def test_staff_of_another_startup_get_404_posting_a_note_or_follow_up_to_a_lead_not_theirs(d: Board):
    theirs = await lead_id_of(d, "up_brass")
    tomorrow = (india_today(d.h.clock.now()) + dt.timedelta(days=1)).isoformat()
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_B)
        csrf = await csrf_of(page)
        note = await context.request.post(f"{d.base}/dashboard/lead/{theirs}/note", form={"csrf": csrf, "note": "mine now"})
        assert note.status == 404 and "Asha" not in await note.text()
        follow = await context.request.post(f"{d.base}/dashboard/lead/{theirs}/follow-up", form={"csrf": csrf, "day": tomorrow})
        assert follow.status == 404
        # Their own lead: fine.
        own = await lead_id_of(d, "tn_knit")
        assert (await context.request.post(f"{d.base}/dashboard/lead/{own}/note", form={"csrf": csrf, "note": "ok"})).status == 200
    assert await rows(d.h.app, "SELECT lead_id, startup_id FROM lead_notes") == [{"lead_id": own, "startup_id": "tn_knit"}]


# ----------------------------------------------------------------- follow-ups
async def test_a_follow_up_is_reminded_in_chat_once_on_its_day_and_is_overdue_the_day_after(d: Board):
    mine = await lead_id_of(d, "up_brass")
    today = india_today(d.h.clock.now())
    day = today + dt.timedelta(days=1)
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await accept(d, page, mine)
        # A past day is refused; tomorrow is kept.
        answer = await context.request.post(f"{d.base}/dashboard/lead/{mine}/follow-up",
                                            form={"csrf": await csrf_of(page), "day": (today - dt.timedelta(days=1)).isoformat()})
        assert "Please choose a date from today" in await answer.text()
        await page.goto(f"{d.base}/dashboard/lead/{mine}")
        await page.fill("#follow-up input[type=date]", day.isoformat())
        await page.click("#follow-up button.act:not(.alt)")
        assert await page.locator(".notice").inner_text() == "Follow-up date saved."
        assert await page.locator("#follow-up-day").inner_text() == f"📅 Follow-up: {day.day} {day.strftime('%B')} {day.year}"
        await context.close()

    job = d.h.app.dashboard.remind_follow_ups
    assert await job() == 0  # not its day yet
    d.h.clock.t = morning_of(day) - 3 * 3600  # 06:30 on the day: still quiet hours
    assert await job() == 0
    d.h.clock.t = morning_of(day)
    await job()
    await job()  # the job running twice (or the runtime's own run besides): one message all the same
    reminder = await d.api.wait_for_message(STAFF_A, lambda m: REMINDER in (m.text or ""))
    assert reminder.text.startswith(f"⏰ Follow-up today: lead #{mine}, Asha Brass & Sons.")
    assert f"/dashboard/lead/{mine}" in reminder.text
    await delivered(d)
    assert len([m for m in d.api.messages(STAFF_A) if REMINDER in (m.text or "")]) == 1
    assert [m for m in d.api.messages(STAFF_B) if REMINDER in (m.text or "")] == []
    assert len(await rows(d.h.app, "SELECT id FROM outbox WHERE dedup_key LIKE ?", f"lead:{mine}:followup:%")) == 1

    d.h.clock.t = morning_of(day + dt.timedelta(days=1))
    await job()
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        overdue = await page.locator("#overdue").inner_text()
        assert "Asha Brass & Sons" in overdue and f"Follow-up was due {day.day} {day.strftime('%B')} {day.year}" in overdue
        # Staff of B have no overdue list; a lead moved on (lost) leaves A's.
        context_b, page_b = await signed_in(b, d, STAFF_B)
        assert await page_b.locator("#overdue").count() == 0
    await delivered(d)
    assert len([m for m in d.api.messages(STAFF_A) if REMINDER in (m.text or "")]) == 1  # the next day brings no second one


# ----------------------------------------------------------------- export and filters
async def three_leads(d: Board) -> dict[str, int]:
    """Startup A with three leads: Asha's (accepted), a Hindi-named owner's and one whose names look like formulas."""
    await qualify(d.h, OWNER_HI, profile=HINDI)
    await card_for(d.api, STAFF_A)
    await qualify(d.h, OWNER_F, profile=FORMULA)
    await card_for(d.api, STAFF_A)
    ordered = [r["id"] for r in await rows(d.h.app, "SELECT id FROM leads WHERE startup_id = ? ORDER BY id", "up_brass")]
    assert len(ordered) == 3
    return dict(zip(("asha", "hindi", "formula"), ordered))


def parse(body: bytes) -> list[dict]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_the_csv_export_holds_exactly_the_filtered_leads_hindi_intact_formulas_neutralised(d: Board):
    ids = await three_leads(d)
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await accept(d, page, ids["asha"])
        await page.goto(f"{d.base}/dashboard/lead/{ids['hindi']}")
        await page.fill("#note textarea", "=cmd|' /C calc'!A0 पहली बात")
        await page.click("#note button")
        await page.goto(f"{d.base}/dashboard/?status=offered")
        href = await page.get_attribute("#export", "href")
        assert href == "/dashboard/export.csv?status=offered"
        answer = await context.request.get(d.base + href)
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        got = parse(await answer.body())
        assert sorted(int(r["lead_id"]) for r in got) == sorted([ids["hindi"], ids["formula"]])
        assert list(got[0]) == ["lead_id", "business", "owner", "state", "sector", "language", "score", "status", "offered_at",
                                "accepted_at", "follow_up", "note"]
        by_id = {int(r["lead_id"]): r for r in got}
        assert by_id[ids["hindi"]]["business"] == "कुमारी हथकरघा" and by_id[ids["hindi"]]["owner"] == "मीना कुमारी"
        assert by_id[ids["hindi"]]["note"] == "'=cmd|' /C calc'!A0 पहली बात"
        assert by_id[ids["formula"]]["business"] == "'" + FORMULA["business_name"]
        assert by_id[ids["formula"]]["owner"] == "'@Ravi"
        assert {r["status"] for r in got} == {"offered"} and all(r["offered_at"] for r in got)
        # Everything: the accepted lead carries its accepted date.
        every = {int(r["lead_id"]): r for r in parse(await (await context.request.get(f"{d.base}/dashboard/export.csv")).body())}
        assert set(every) == set(ids.values()) and every[ids["asha"]]["accepted_at"]
        # B's staff: their own lead only, whatever the filters say.
        context_b, page_b = await signed_in(b, d, STAFF_B)
        theirs = parse(await (await context_b.request.get(f"{d.base}/dashboard/export.csv?state=uttar_pradesh")).body())
        assert theirs == []
        mine_b = parse(await (await context_b.request.get(f"{d.base}/dashboard/export.csv")).body())
        assert [int(r["lead_id"]) for r in mine_b] == [await lead_id_of(d, "tn_knit")]
        # Signed out: nothing.
        stranger = await b.new_context()
        assert (await stranger.request.get(f"{d.base}/dashboard/export.csv")).status == 401


async def test_score_and_date_filters_narrow_the_board_and_stay_in_the_export_link(d: Board):
    ids = await three_leads(d)
    score = {r["id"]: r["score"] for r in await rows(d.h.app, "SELECT id, score FROM leads")}
    await d.h.app.db.execute("UPDATE leads SET score = ? WHERE id = ?", (score[ids["hindi"]] + 5, ids["hindi"]))
    day = india_today(d.h.clock.now())
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await page.fill("input[name=score]", str(score[ids["hindi"]] + 5))
        await page.click("form.filters button")
        board = await page.inner_text("main")
        assert "कुमारी हथकरघा" in board and "Asha Brass" not in board and "HYPERLINK" not in board
        href = await page.get_attribute("#export", "href")
        assert f"score={score[ids['hindi']] + 5}" in href
        assert [int(r["lead_id"]) for r in parse(await (await context.request.get(d.base + href)).body())] == [ids["hindi"]]
        # Offered today: all three; from tomorrow: none; until yesterday: none.
        for query, count in ((f"from={day}&to={day}", 3), (f"from={day + dt.timedelta(days=1)}", 0),
                             (f"to={day - dt.timedelta(days=1)}", 0)):
            await page.goto(f"{d.base}/dashboard/?{query}")
            assert await page.locator("ul.leads li").count() == count, query
            got = parse(await (await context.request.get(d.base + await page.get_attribute("#export", "href"))).body())
            assert len(got) == count, query
        await page.goto(f"{d.base}/dashboard/?score=abc&from=2026-13-45")  # malformed: ignored, not an error
        assert await page.locator("ul.leads li").count() == 3


# ----------------------------------------------------------------- screenshots
async def test_screenshots_of_the_board_with_overdue_and_the_lead_with_note_and_follow_up(d: Board, tmp_path: Path):
    """Phone-size screenshots (saved to docs/screenshots/ with SAVE_SCREENSHOTS=1), both languages."""
    folder = SCREENSHOTS if os.environ.get("SAVE_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    mine = await lead_id_of(d, "up_brass")
    day = india_today(d.h.clock.now()) + dt.timedelta(days=1)
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await accept(d, page, mine)
        await page.fill("#note textarea", "Wants help with the Alibaba.com listing photos. बेटे से भी बात करें।")
        await page.click("#note button")
        await page.fill("#follow-up input[type=date]", day.isoformat())
        await page.click("#follow-up button.act:not(.alt)")
        await context.close()
    d.h.clock.t = morning_of(day + dt.timedelta(days=1))
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        for lang in ("en", "hi"):
            await page.goto(f"{d.base}/dashboard/")
            if await page.get_attribute("html", "lang") != lang:
                await page.click("form[action='/dashboard/lang'] button")
            for name, path in (("board-overdue", "/dashboard/"), ("lead-note", f"/dashboard/lead/{mine}")):
                await page.goto(d.base + path)
                assert await page.get_attribute("html", "lang") == lang
                await page.evaluate("Promise.all(Array.from(document.fonts).map(f => f.load())).then(() => true)")
                await page.screenshot(path=str(folder / f"dashboard-{name}-{lang}.png"), full_page=True)
        assert await page.locator("#note-text").count() == 1
