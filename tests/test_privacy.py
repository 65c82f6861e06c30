"""Owners' data rights: /my_data shows what is stored; /delete_my_data leaves nothing behind."""

from __future__ import annotations

import re

from bot.app import build_app
from bot.config import Settings
from bot.core.messages import Inbound, Say
from bot.services.clock import ManualClock
from bot.services.dispatch import Who
from bot.core.messages import UserKey

ONBOARDING = ["/start", "English", "Yes", "Meena Devi", "Meena Handlooms", "Haryana", "Panipat", "2",
              "yes", "no", "yes", "1", "2", "2", "9812345678", "Confirm"]


async def _say(app, who: Who, text: str) -> str:
    reply = await app.dispatcher.handle(who, Inbound.say(text))
    return "\n".join(o.text for o in reply.outputs if isinstance(o, Say))


async def _onboard(app, who: Who) -> None:
    for text in ONBOARDING:
        await _say(app, who, text)


async def test_my_data_lists_what_is_stored_in_the_owners_language(tmp_path):
    app = await build_app(Settings(database_path=tmp_path / "p.sqlite3"), clock=ManualClock())
    try:
        who = Who(UserKey("telegram", "501"), platform_user_id=501, lang_hint="en")
        await _onboard(app, who)
        text = await _say(app, who, "/my_data")
        assert "Meena Devi" in text and "Panipat" in text and "+91 98123 45678" in text
        assert "Consent: given on" in text and "(version 1)" in text
        assert "/delete_my_data" in text
        await _say(app, who, "/language")
        await _say(app, who, "हिन्दी")
        hindi = await _say(app, who, "/my_data")
        assert "सहमति" in hindi and "Meena Devi" in hindi
        stranger = await _say(app, Who(UserKey("telegram", "999"), lang_hint="en"), "/my_data")
        assert stranger == "I have nothing stored about you."
    finally:
        await app.close()


async def test_delete_my_data_leaves_no_row_with_the_name_or_phone(tmp_path):
    app = await build_app(Settings(database_path=tmp_path / "p.sqlite3"), clock=ManualClock())
    try:
        who = Who(UserKey("telegram", "502"), platform_user_id=502, lang_hint="en")
        await _onboard(app, who)
        await _say(app, who, "/delete_my_data")
        done = await _say(app, who, "yes")
        assert "deleted" in done
        tables = await app.db.tables()
        for table in tables:
            for row in await app.db.fetchall(f"SELECT * FROM {table}"):
                flat = " ".join(str(v) for v in tuple(row))
                assert "Meena" not in flat, table
                assert not re.search(r"9812345678|98123 45678", flat), table
        after = await _say(app, who, "/my_data")
        assert "Meena" not in after and "Consent: not given" in after
    finally:
        await app.close()
