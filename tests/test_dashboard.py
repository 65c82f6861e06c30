"""The web dashboard in a real browser (Debian's chromium through Playwright) against the real bot.

The bot runs as ``saathi run`` does (polling the Bot API stand-in) with the dashboard on a port
of its own; staff link their chats with invites and owners qualify through Telegram, as in the
lead tests. Each test drives the pages as a person would and checks what they saw, what the
database holds and what the owner was told in chat.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.services.clock import ManualClock
from tests.botapi_standin import BotApiStandin
from tests.dashboard_support import PHONE, browser, free_port, init_data
from tests.test_leads_e2e import ADMIN, PROFILE, Harness, card_for, join, qualify, rows, started

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

REGISTRY = """
startups:
  - {id: up_brass, name: "Pital Nagri Export Labs", states: [uttar_pradesh], sectors: [handicrafts], languages: [hi, en], weekly_capacity: 10}
  - {id: tn_knit, name: "Knit City Trade Desk", states: [tamil_nadu], sectors: [textiles_apparel], languages: [en], weekly_capacity: 10}
"""
TN_PROFILE = {**PROFILE, "owner_name": "Kavya R", "business_name": "Kovai Knits", "state": "tamil_nadu", "district": "Tiruppur",
              "sector": "textiles_apparel"}
STAFF_A, STAFF_B, OWNER_A, OWNER_B = 501, 601, 101, 102
LINK = re.compile(r"https?://\S+/dashboard/login\?t=[\w-]+")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@dataclass
class Board:
    """The harness of the lead tests, plus the dashboard's address."""

    h: Harness
    base: str

    @property
    def api(self) -> BotApiStandin:
        return self.h.api


@pytest.fixture
async def d(tmp_path: Path, store: dict) -> AsyncIterator[Board]:
    """Two startups with a staff chat each, a qualified owner's lead offered to each, the dashboard served."""
    clock = ManualClock()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    async with BotApiStandin() as api:
        api.add_user(ADMIN, first_name="Admin", language_code="en")
        async with started(api, store["database_path"], clock, database_url=store.get("database_url", ""),
                           dashboard_port=port, dashboard_url=base, webhook_listen="127.0.0.1") as bot:
            h = Harness(api, bot, clock, store["database_path"])
            assert await bot.app.leads.import_file(registry) == (2, 0)
            await join(h, STAFF_A, "up_brass", "en")
            await join(h, STAFF_B, "tn_knit", "en")
            await qualify(h, OWNER_A)
            await card_for(api, STAFF_A)  # the lead is made after the owner's turn: wait for its card
            await qualify(h, OWNER_B, profile=TN_PROFILE)
            await card_for(api, STAFF_B)
            owned = {r["startup_id"]: r["id"] for r in await rows(bot.app, "SELECT id, startup_id, status FROM leads")}
            assert set(owned) == {"up_brass", "tn_knit"}
            yield Board(h, base)


async def sign_in_link(d: Board, uid: int) -> str:
    """``/dashboard`` in chat; the link the bot answers with."""
    d.api.send_text(uid, "/dashboard")
    message = await d.api.wait_for_message(uid, lambda m: "/dashboard/login?t=" in (m.text or ""))
    found = LINK.search(message.text)
    assert found, message.text
    return found.group(0)


async def signed_in(b, d: Board, uid: int):
    """A phone-size browser context signed in as ``uid`` by a link from the chat, and its page on the board."""
    context = await b.new_context(viewport=PHONE)
    page = await context.new_page()
    response = await page.goto(await sign_in_link(d, uid))
    assert response.status == 200 and page.url in (f"{d.base}/dashboard/", f"{d.base}/dashboard/admin")
    return context, page


async def lead_id_of(d: Board, startup_id: str) -> int:
    [row] = await rows(d.h.app, "SELECT id FROM leads WHERE startup_id = ?", startup_id)
    return row["id"]


async def status_of(d: Board, lead_id: int) -> str:
    [row] = await rows(d.h.app, "SELECT status FROM leads WHERE id = ?", lead_id)
    return row["status"]


# ----------------------------------------------------------------- signing in
async def test_a_link_from_the_chat_signs_in_once_and_expires(d: Board):
    welcome = await sign_in_link(d, STAFF_A)
    await d.api.wait_idle()  # over http there is no menu button (Telegram would refuse it) and nothing is refused
    assert d.api.menu_button(STAFF_A) == {"type": "commands"} and d.api.refusals == []
    async with browser() as b:
        context = await b.new_context(viewport=PHONE)
        page = await context.new_page()
        response = await page.goto(welcome)
        assert response.status == 200 and page.url == f"{d.base}/dashboard/"
        assert await page.locator("h1").inner_text() == "Leads of Pital Nagri Export Labs"
        assert "Asha Brass & Sons" in await page.locator("#status-offered").inner_text()
        [cookie] = [c for c in await context.cookies() if c["name"] == "saathi_dashboard"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # http on this machine

        # The same link a second time (another browser): refused, nobody signed in.
        other = await (await b.new_context(viewport=PHONE)).new_page()
        again = await other.goto(welcome)
        assert again.status == 403 and "was used already or is older than 15 minutes" in await other.inner_text("main")
        assert (await other.goto(f"{d.base}/dashboard/")).status == 401

        # A fresh link opened 16 minutes later: refused.
        late = await sign_in_link(d, STAFF_A)
        d.h.clock.advance(16 * 60)
        assert (await other.goto(late)).status == 403
        # The session from the first link is still good (12 hours), and ends after them.
        assert (await page.goto(f"{d.base}/dashboard/")).status == 200
        d.h.clock.advance(12 * 3600)
        assert (await page.goto(f"{d.base}/dashboard/")).status == 401


async def test_staff_and_admin_chats_get_a_dashboard_menu_button_and_owners_do_not(tmp_path: Path, store: dict):
    """Over https the menu button of a staff or admin chat opens the dashboard as a Mini App; an owner's
    stays the command menu, and a chat that unlinks gets the command menu back."""
    mini_app = {"type": "web_app", "text": "Dashboard", "web_app": {"url": "https://saathi.example/dashboard/app"}}
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    async with BotApiStandin() as api:
        api.add_user(ADMIN, first_name="Admin", language_code="hi")
        async with started(api, store["database_path"], ManualClock(), database_url=store.get("database_url", ""),
                           dashboard_port=free_port(), dashboard_url="https://saathi.example",
                           webhook_listen="127.0.0.1") as bot:
            h = Harness(api, bot, bot.app.clock, store["database_path"])
            await bot.app.leads.import_file(registry)
            assert api.menu_button(ADMIN) == mini_app  # set at start; an admin's language is not known yet

            assert "now linked" in (await join(h, STAFF_A, "up_brass", "en")).text
            await api.wait_idle()
            assert api.menu_button(STAFF_A) == mini_app

            api.add_user(OWNER_A, first_name="Asha", language_code="hi")
            api.send_text(OWNER_A, "/start")
            await api.wait_for_message(OWNER_A)
            api.send_text(OWNER_A, "/dashboard")
            await api.wait_for_message(OWNER_A)
            await api.wait_idle()
            assert api.menu_button(OWNER_A) == api.menu_button() == {"type": "commands"}

            api.send_text(ADMIN, "/dashboard")  # the admin's app is in Hindi: the button is relabelled
            await api.wait_for_message(ADMIN, lambda m: "/dashboard/login?t=" in (m.text or ""))
            await api.wait_idle()
            assert api.menu_button(ADMIN) == {**mini_app, "text": "डैशबोर्ड"}

            api.send_text(STAFF_A, "/delete_my_data")
            question = await api.wait_for_message(STAFF_A, lambda m: "Unlink this chat" in (m.text or ""))
            api.tap_button(STAFF_A, question, "Yes")
            await api.wait_for_message(STAFF_A, lambda m: "no longer linked" in (m.text or ""))
            await api.wait_idle()
            assert api.menu_button(STAFF_A) == {"type": "commands"}


async def test_an_owner_gets_no_link(d: Board):
    d.api.send_text(OWNER_A, "/dashboard")
    reply = await d.api.wait_for_message(OWNER_A)
    assert "/dashboard/login" not in (reply.text or "")
    assert await rows(d.h.app, "SELECT kind FROM dashboard_tokens") == []


async def test_telegram_mini_app_init_data_signs_in_and_forged_or_old_is_refused(d: Board):
    now = int(d.h.clock.now())
    user = {"id": STAFF_A, "first_name": "Staff501", "language_code": "en"}
    good = init_data(d.api.token, user, now - 60)
    forged = re.sub(r"hash=([0-9a-f])", lambda m: "hash=" + ("0" if m.group(1) != "0" else "1"), good)
    other_bot = init_data("123:another-bots-token", user, now - 60)
    old = init_data(d.api.token, user, now - 2 * 3600)
    owner = init_data(d.api.token, {"id": OWNER_A, "first_name": "Asha"}, now)
    async with browser() as b:
        for refused in (forged, other_bot, old, owner, ""):
            context = await b.new_context(viewport=PHONE)
            answer = await context.request.post(f"{d.base}/dashboard/telegram", form={"init_data": refused})
            assert answer.status == 403
            assert [c for c in await context.cookies() if c["name"] == "saathi_dashboard"] == []
            await context.close()
        context = await b.new_context(viewport=PHONE)
        answer = await context.request.post(f"{d.base}/dashboard/telegram", form={"init_data": good})
        assert answer.status == 200 and answer.url == f"{d.base}/dashboard/"
        page = await context.new_page()
        await page.goto(f"{d.base}/dashboard/")
        assert await page.locator("h1").inner_text() == "Leads of Pital Nagri Export Labs"


async def test_the_mini_app_page_hands_telegrams_init_data_over_and_opens_the_board(d: Board):
    """Inside Telegram: telegram-web-app.js gives the page ``Telegram.WebApp.initData`` (stood in for here,
    as the script comes from telegram.org), the page posts it and lands on the board."""
    import json as _json

    signed = init_data(d.api.token, {"id": STAFF_A, "first_name": "Staff501", "language_code": "hi"}, int(d.h.clock.now()))
    async with browser() as b:
        for data, lands in ((signed, True), (signed.replace("hash=", "hash=0"), False)):
            context = await b.new_context(viewport=PHONE)
            await context.route("https://telegram.org/**", lambda route: route.fulfill(status=200, body="",
                                                                                        content_type="text/javascript"))
            await context.add_init_script(f"window.Telegram = {{WebApp: {{initData: {_json.dumps(data)}, ready() {{}}}}}};")
            page = await context.new_page()
            await page.goto(f"{d.base}/dashboard/app")
            if lands:
                await page.wait_for_url(f"{d.base}/dashboard/")
                assert await page.locator("h1").inner_text() == "Leads of Pital Nagri Export Labs"  # the staff chat's language
            else:
                await page.wait_for_function("document.getElementById('m').textContent.startsWith('Telegram could not')")
                assert page.url == f"{d.base}/dashboard/app"
            await context.close()


# ----------------------------------------------------------------- one startup's leads only
async def test_staff_of_one_startup_get_404_for_anothers_lead_by_url_and_by_post(d: Board):
    theirs = await lead_id_of(d, "up_brass")
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_B)
        board = await page.inner_text("main")
        assert "Kovai Knits" in board and "Asha Brass" not in board
        response = await page.goto(f"{d.base}/dashboard/lead/{theirs}")
        assert response.status == 404 and "Asha" not in await page.content()
        csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
        answer = await context.request.post(f"{d.base}/dashboard/lead/{theirs}", form={"csrf": csrf, "action": "acc"})
        assert answer.status == 404
        assert await status_of(d, theirs) == "offered"
        assert (await page.goto(f"{d.base}/dashboard/lead/{await lead_id_of(d, 'tn_knit')}")).status == 200


async def test_a_post_without_the_form_token_or_from_another_site_is_refused(d: Board):
    mine = await lead_id_of(d, "up_brass")
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await page.goto(f"{d.base}/dashboard/lead/{mine}")
        csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
        url = f"{d.base}/dashboard/lead/{mine}"
        assert (await context.request.post(url, form={"action": "acc"})).status == 403
        assert (await context.request.post(url, form={"action": "acc", "csrf": ("y" if csrf[0] == "x" else "x") + csrf[1:]})).status == 403
        assert (await context.request.post(url, form={"action": "acc", "csrf": csrf},
                                           headers={"Origin": "https://evil.example"})).status == 403
        assert await status_of(d, mine) == "offered"
        assert (await context.request.post(url, form={"action": "acc", "csrf": csrf})).status == 200
        assert await status_of(d, mine) == "accepted"


# ----------------------------------------------------------------- moves are the chat's moves
async def test_staff_accept_on_the_page_and_the_owner_is_told_in_chat(d: Board):
    mine = await lead_id_of(d, "up_brass")
    async with browser() as b:
        context, page = await signed_in(b, d, STAFF_A)
        await page.click(f"a[href='/dashboard/lead/{mine}']")
        assert "Asha Brass & Sons" in await page.locator(".card").inner_text()
        await page.click("button[value=acc]")
        notice = await page.locator(".notice").inner_text()
        assert notice.startswith(f"✅ Lead #{mine} is yours.") and "please call Asha Devi soon" in notice
        told = await d.api.wait_for_message(OWNER_A, lambda m: "Good news" in (m.text or ""))
        assert told.text == ("🤝 Good news! Pital Nagri Export Labs, a partner startup of the program, will contact you soon on "
                             "+91 98765 43210 to help you list on Alibaba.com.")
        assert await status_of(d, mine) == "accepted"
        # The page now offers what the chat offers next; the timeline has both steps.
        labels = [await x.inner_text() for x in await page.locator("main > .moves button").all()]
        assert labels == ["Contacted", "Listed on Alibaba", "First export order"]
        assert [s.split(": ", 1)[1] for s in await page.locator("ol.timeline li").all_inner_texts()] == ["Offered to you", "Accepted"]
        # Contacted, then taken back with the chat's own ↩️ Undo (offered for ten minutes, as in chat).
        await page.click("button[value=con]")
        undo = page.locator("button[value^='undo.']")
        assert await status_of(d, mine) == "contacted" and await undo.inner_text() == "↩️ Undo"
        await undo.click()
        assert (await page.locator(".notice").inner_text()).startswith(f"↩️ Undone: lead #{mine} is back at “Accepted”.")
        assert await status_of(d, mine) == "accepted" and await undo.count() == 0
        assert [s.split(": ", 1)[1] for s in await page.locator("ol.timeline li").all_inner_texts()] == ["Offered to you", "Accepted"]
        # Contacted again; eleven minutes later the step stands (no undo) and the owner has heard nothing of it.
        await page.click("button[value=con]")
        d.h.clock.advance(11 * 60)
        await page.goto(f"{d.base}/dashboard/lead/{mine}")
        assert await undo.count() == 0 and await status_of(d, mine) == "contacted"
        await page.goto(f"{d.base}/dashboard/?status=contacted")
        assert "Asha Brass & Sons" in await page.locator("#status-contacted").inner_text()
        await page.goto(f"{d.base}/dashboard/?status=offered")
        assert await page.locator("#status-contacted").count() == 0


async def announce(d: Board) -> int:
    """An announcement to every owner, sent by the delivery worker; its id once both owners have it."""
    from bot.core.segments import Segment
    from bot.core.wizard import Plan

    plan = Plan("announcement", Segment(), text_en="Mela in Delhi on 12 December", text_hi="12 दिसंबर को दिल्ली में मेला")
    broadcast_id, recipients = await d.h.app.broadcasts.start(plan, created_by=f"telegram:{ADMIN}")
    assert recipients == 2
    for owner in (OWNER_A, OWNER_B):
        await d.api.wait_for_message(owner, lambda m: "Mela in Delhi" in (m.text or ""))
    return broadcast_id


async def test_an_admin_filters_the_funnel_and_sees_the_broadcasts(d: Board):
    broadcast_id = await announce(d)
    async with browser() as b:
        context, page = await signed_in(b, d, ADMIN)
        assert page.url == f"{d.base}/dashboard/admin"  # an admin who is not staff lands on the funnel

        async def first_bar() -> str:
            return (await page.locator("svg text").all_text_contents())[1]

        assert await page.locator("#scope").inner_text() == "all owners"
        assert await first_bar() == "2 (100%)"
        await page.select_option("select[name=state]", "tamil_nadu")
        await page.click("form.filters button")
        assert page.url.endswith("state=tamil_nadu&sector=&lang=")
        assert await page.locator("#scope").inner_text() == "State: Tamil Nadu"
        assert await first_bar() == "1 (100%)"
        # The broadcast with its counts: 2 recipients, both sent (Telegram reports no delivered/read).
        cells = await page.locator("table tr").nth(1).locator("td").all_inner_texts()
        assert cells[0].startswith(f"#{broadcast_id} Mela in Delhi on 12 December")
        assert cells[1:] == ["2", "2", "0", "0", "0", "0"]
        # Staff are not admins: their session has no funnel.
        staff_context, staff_page = await signed_in(b, d, STAFF_A)
        assert (await staff_page.goto(f"{d.base}/dashboard/admin")).status == 404


# ----------------------------------------------------------------- screenshots
async def test_screenshots_of_every_page_in_both_languages(d: Board, tmp_path: Path):
    """Phone-size screenshots of the board, a lead and the admin page in English and Hindi
    (saved to docs/screenshots/ with SAVE_SCREENSHOTS=1)."""
    folder = SCREENSHOTS if os.environ.get("SAVE_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    mine = await lead_id_of(d, "up_brass")
    await announce(d)
    async with browser() as b:
        for uid, pages in ((STAFF_A, [("board", "/dashboard/"), ("lead", f"/dashboard/lead/{mine}")]),
                           (ADMIN, [("admin", "/dashboard/admin")])):
            context, page = await signed_in(b, d, uid)
            for lang in ("en", "hi"):
                await page.goto(f"{d.base}/dashboard/")
                if await page.get_attribute("html", "lang") != lang:
                    await page.click("form[action='/dashboard/lang'] button")
                assert await page.get_attribute("html", "lang") == lang
                for name, path in pages:
                    await page.goto(d.base + path)
                    text = await page.inner_text("body")
                    assert bool(re.search(r"[\u0900-\u097F]", text.replace("हिन्दी", ""))) == (lang == "hi"), (name, lang)
                    # The Devanagari faces load on first use: wait for both before the picture.
                    await page.evaluate("Promise.all(Array.from(document.fonts).map(f => f.load())).then(() => true)")
                    await page.screenshot(path=str(folder / f"dashboard-{name}-{lang}.png"), full_page=True)
            await context.close()
    assert len(list(folder.glob("dashboard-*.png"))) >= 6


# ----------------------------------------------------------------- serving, settings, the init data check
async def test_with_webhooks_the_dashboard_is_on_the_telegram_webhook_server_and_links_use_its_host(tmp_path: Path):
    import aiohttp

    from bot.channels.webhook import SECRET_HEADER
    from bot.config import Settings
    from bot.runtime import BotProcess
    from tests.test_hardening import tg_update
    from tests.whatsapp_standin import WhatsAppStandin

    secret = "tg-Webhook_Secret-4417"
    async with BotApiStandin() as tg, WhatsAppStandin() as wa:
        settings = Settings(
            telegram_token=tg.token, telegram_api_base_url=tg.base_url, database_path=tmp_path / "b.sqlite3",
            webhook_url="https://bot.example.org/telegram", webhook_secret=secret, webhook_listen="127.0.0.1", webhook_port=0,
            whatsapp_token=wa.token, whatsapp_phone_number_id=wa.phone_number_id, whatsapp_app_secret=wa.app_secret,
            whatsapp_verify_token="wa-verify-Token-9931", whatsapp_api_base_url=wa.base_url, whatsapp_port=0,
            admin_ids=frozenset({ADMIN}),
        )
        process = BotProcess(settings, clock=ManualClock())
        await process.start()
        try:
            port = process.webhook_runner.addresses[0][1]
            wa_port = process.whatsapp_runner.addresses[0][1]
            assert process.dashboard_runner is None  # no server of its own: it shares the webhook's
            tg.add_user(ADMIN, first_name="Admin", language_code="en")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/dashboard/") as resp:
                    assert resp.status == 401 and "/dashboard" in await resp.text()
                async with http.get(f"http://127.0.0.1:{port}/dashboard", allow_redirects=False) as resp:
                    assert resp.status == 303 and resp.headers["Location"] == "/dashboard/"
                async with http.get(f"http://127.0.0.1:{wa_port}/dashboard/") as resp:
                    assert resp.status == 404  # mounted once, on Telegram's server
                async with http.post(f"http://127.0.0.1:{port}/telegram", json=tg_update(901, ADMIN, "/dashboard"),
                                     headers={SECRET_HEADER: secret}) as resp:
                    assert resp.status == 200
                message = await tg.wait_for_message(ADMIN, lambda m: "/dashboard/login" in (m.text or ""))
                assert message.text.startswith("Your dashboard: open this link to sign in. It works once, for 15 minutes.\n")
                link = LINK.search(message.text).group(0)
                assert link.startswith("https://bot.example.org/dashboard/login?t=")
                path = link.split("bot.example.org", 1)[1]
                async with http.get(f"http://127.0.0.1:{port}{path}", allow_redirects=False) as resp:
                    assert resp.status == 303 and resp.headers["Location"] == "/dashboard/"
                    cookie = resp.cookies["saathi_dashboard"]
                    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/dashboard"
                    assert resp.headers["Referrer-Policy"] == "same-origin" and resp.headers["Cache-Control"] == "no-store"
        finally:
            await process.stop()


@pytest.mark.parametrize(("env", "name"), [
    ({"DASHBOARD_PORT": "http"}, "DASHBOARD_PORT"),
    ({"DASHBOARD_PORT": "70000"}, "DASHBOARD_PORT"),
    ({"DASHBOARD_URL": "saathi.example.org"}, "DASHBOARD_URL"),
    ({"DASHBOARD_URL": "https://saathi.example.org/?x=1"}, "DASHBOARD_URL"),
])
def test_a_malformed_dashboard_setting_stops_start_up_naming_it(env, name):
    from bot.config import ConfigError, Settings

    with pytest.raises(ConfigError) as err:
        Settings.from_env(env, env_file=None)
    assert str(err.value).startswith(name + ":")


def test_dashboard_settings_are_read():
    from bot.config import Settings

    s = Settings.from_env({"DASHBOARD_PORT": "8090", "DASHBOARD_URL": "https://saathi.example.org/"}, env_file=None)
    assert (s.dashboard_port, s.dashboard_url, s.dashboard_enabled) == (8090, "https://saathi.example.org", True)
    assert not Settings.from_env({}, env_file=None).dashboard_enabled  # polling without a port: no dashboard


def test_init_data_is_checked_as_telegram_says():
    from bot.services.dashboard import check_init_data

    token, now, user = "123456:AAbotToken", 1_780_000_000, {"id": 42, "first_name": "Ravi"}
    good = init_data(token, user, now - 10)
    assert check_init_data(good, token, now) == user
    assert check_init_data(good, "123456:AAother", now) is None
    assert check_init_data(good + "&auth_date=1", token, now) is None  # a field given twice
    assert check_init_data(good.replace("Ravi", "Ravu"), token, now) is None  # changed after signing
    assert check_init_data(init_data(token, user, now - 3601), token, now) is None  # older than an hour
    assert check_init_data(init_data(token, user, now + 3600), token, now) is None  # from the future
    assert check_init_data(init_data(token, {"first_name": "no id"}, now), token, now) is None
    assert check_init_data("", token, now) is None and check_init_data("hash=&user=x", token, now) is None
