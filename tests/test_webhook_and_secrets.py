"""Webhook secret checking, secrets and phone numbers kept out of logs, config errors."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web

from bot.channels.webhook import SECRET_HEADER, webhook_app
from bot.config import ConfigError, Settings
from bot.logs import RedactingFilter
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot

SECRET = "s3cret-Token_1"


def _update(update_id: int, user_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_780_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Asha"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Asha", "language_code": "en"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}] if text.startswith("/") else [],
        },
    }


async def test_webhook_refuses_wrong_secret_and_handles_the_right_one(tmp_path):
    async with BotApiStandin() as api, running_bot(api, tmp_path / "b.sqlite3") as bot:
        api.add_user(77, language_code="en")
        await bot.polling.stop()  # updates now arrive only through the webhook
        runner = web.AppRunner(webhook_app(bot.application, SECRET, "/telegram", bot.app.inbox))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/telegram"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(url, json=_update(900, 77, "/start")) as resp:
                    assert resp.status == 403
                async with http.post(url, json=_update(901, 77, "/start"), headers={SECRET_HEADER: "wrong"}) as resp:
                    assert resp.status == 403
                async with http.post(url, data=b"not json", headers={SECRET_HEADER: SECRET}) as resp:
                    assert resp.status == 400
                await api.wait_idle(quiet=0.2)
                assert api.messages(77) == []  # nothing got through
                async with http.post(url, json=_update(902, 77, "/start"), headers={SECRET_HEADER: SECRET}) as resp:
                    assert resp.status == 200
            [welcome] = await api.wait_for_messages(77, 1)
            assert "Choose your language" in welcome.text
        finally:
            await runner.cleanup()


async def _serve_webhook(bot, answer_wait: float | None = None) -> tuple[web.AppRunner, str]:
    """The bot's webhook server on a free port (polling stopped): the runner and the URL."""
    await bot.polling.stop()  # updates now arrive only through the webhook
    extra = {} if answer_wait is None else {"answer_wait": answer_wait}
    runner = web.AppRunner(webhook_app(bot.application, SECRET, "/telegram", bot.app.inbox, **extra))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/telegram"


async def test_taps_are_answered_in_the_webhook_response_with_no_request_of_their_own(tmp_path):
    """Telegram POSTs each update and carries out the method the 200 names: a tap's answer
    (and its pop-up) comes back that way, so a tap costs one request fewer."""
    async with BotApiStandin() as api, running_bot(api, tmp_path / "b.sqlite3") as bot:
        api.add_user(77, language_code="en")
        runner, url = await _serve_webhook(bot)
        try:
            api.deliver_by_webhook(url, SECRET)
            api.send_text(77, "/start")
            [welcome] = await api.wait_for_messages(77, 1)
            hindi = welcome.buttons[0][1]
            api.tap_button(77, welcome, "English ✓")
            [consent] = await api.wait_for_messages(77, 1)
            assert consent.text.startswith("Before we start")
            api.tap(77, welcome.message_id, hindi)  # the language question again: an earlier message
            await api.wait_idle(quiet=0.2)
            assert api.new_messages(77) == []
            assert [(a.text, a.show_alert) for a in api.callback_answers] == [
                (None, False), ("That button is from an earlier message. Please use the latest one.", False)]
            assert [name for name, _ in api.webhook_calls] == ["answerCallbackQuery"] * 2
            assert "answerCallbackQuery" not in [name for name, _ in api.calls]
            assert api.refusals == []
        finally:
            await runner.cleanup()


async def test_a_tap_whose_answer_is_not_ready_in_time_is_answered_by_a_request(tmp_path):
    async with BotApiStandin() as api, running_bot(api, tmp_path / "b.sqlite3") as bot:
        api.add_user(78, language_code="en")
        runner, url = await _serve_webhook(bot, answer_wait=0)
        try:
            api.deliver_by_webhook(url, SECRET)
            api.send_text(78, "/start")
            [welcome] = await api.wait_for_messages(78, 1)
            api.tap_button(78, welcome, "English ✓")
            [consent] = await api.wait_for_messages(78, 1)
            assert consent.text.startswith("Before we start")
            await api.wait_idle(quiet=0.2)
            assert api.webhook_calls == []
            assert [name for name, _ in api.calls].count("answerCallbackQuery") == 1
            assert [a.text for a in api.callback_answers] == [None]
        finally:
            await runner.cleanup()


def test_logs_never_show_the_token_or_a_whole_phone_number(caplog):
    token = "123456:AAHsecretTOKENvalue"
    log = logging.getLogger("test.redaction")
    handler_filter = RedactingFilter([token])
    caplog.handler.addFilter(handler_filter)
    try:
        log.warning("POST https://api.telegram.org/bot%s/sendMessage failed for %s", token, "+919876543221")
        try:
            raise RuntimeError(f"chat 9876543221 token {token}")
        except RuntimeError:
            log.exception("boom")
    finally:
        caplog.handler.removeFilter(handler_filter)
    text = caplog.text
    assert token not in text and "AAHsecret" not in text
    assert "9876543221" not in text
    assert "+91 98xxxxxx21" in text


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN"),
        ({"ADMIN_IDS": "12,abc"}, "ADMIN_IDS"),
        ({"BROADCAST_RATE": "-3"}, "BROADCAST_RATE"),
        ({"WEBHOOK_URL": "http://example.org/hook", "WEBHOOK_SECRET": "x"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "https://example.org/hook"}, "WEBHOOK_SECRET"),
    ],
)
def test_a_malformed_setting_stops_start_up_with_one_line_naming_it(env, names):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env, env_file=None)
    message = str(err.value)
    assert message.startswith(names) and "\n" not in message
    assert "not-a-token" not in message  # secrets are not echoed


def test_settings_repr_hides_secrets():
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": "123:ABCDEF", "ADMIN_IDS": "1, 2"}, env_file=None)
    assert settings.admin_ids == frozenset({1, 2})
    assert "ABCDEF" not in repr(settings)


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nexport ADMIN_IDS=5\nLOG_LEVEL='debug'\n", encoding="utf-8")
    settings = Settings.from_env({"ADMIN_IDS": "6"}, env_file=env_file)
    assert settings.admin_ids == frozenset({6}) and settings.log_level == "DEBUG"
