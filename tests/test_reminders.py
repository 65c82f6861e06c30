"""Reminders: the pure rules at their edges, the service on a real database with a hand-set
clock, and one reminder delivered through the stand-in and tapped."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import Settings
from bot.core.messages import Inbound
from bot.core.reminders import MAX_NUDGES, SILENCE, SPACING, ReminderFacts, india_hour, quiet_hours, should_nudge
from bot.services.clock import ManualClock
from bot.services.reminders import CONTINUE, REMINDER, REMINDER_FOOTER
from bot.storage.outbox import load_say
from bot.core.messages import UserKey
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot
from tests.test_e2e_onboarding import TYPED_EN, assert_hindi, assert_quiet, next_message, onboard_by_typing
from tests.test_e2e_training import TYPED_HI

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
HOUR = 3600


def ist(day: int, hour: int, minute: int = 0, second: int = 0) -> int:
    """A timestamp in June 2026, India time."""
    return int(dt.datetime(2026, 6, day, hour, minute, second, tzinfo=IST).timestamp())


# ----------------------------------------------------------------- the rules
NOON = ist(10, 12)
DUE = ReminderFacts(
    last_active=NOON - SILENCE, nudges_since_active=0, last_nudge=None, opted_out=False, blocked=False,
    module_in_progress="export_ready",
)


@pytest.mark.parametrize(
    ("when", "quiet"),
    [
        (ist(10, 20, 59, 59), False),
        (ist(10, 21), True),
        (ist(10, 23, 30), True),
        (ist(11, 0), True),
        (ist(11, 8, 59, 59), True),
        (ist(11, 9), False),
        (ist(11, 12), False),
    ],
)
def test_quiet_hours_are_21_to_9_india_time(when: int, quiet: bool):
    assert quiet_hours(when) is quiet
    assert should_nudge(replace(DUE, last_active=when - SILENCE), when) is not quiet


def test_india_hour_is_utc_plus_five_thirty():
    assert india_hour(int(dt.datetime(2026, 6, 10, 3, 30, tzinfo=dt.timezone.utc).timestamp())) == 9
    assert india_hour(int(dt.datetime(2026, 6, 10, 3, 29, tzinfo=dt.timezone.utc).timestamp())) == 8


def test_a_nudge_is_due_after_48_silent_hours_and_not_a_second_earlier():
    assert should_nudge(DUE, NOON)
    assert not should_nudge(replace(DUE, last_active=NOON - SILENCE + 1), NOON)
    assert SILENCE == 48 * HOUR


def test_nudges_are_72_hours_apart_and_three_at_most():
    assert SPACING == 72 * HOUR and MAX_NUDGES == 3
    assert not should_nudge(replace(DUE, nudges_since_active=1, last_nudge=NOON - SPACING + 1), NOON)
    assert should_nudge(replace(DUE, nudges_since_active=1, last_nudge=NOON - SPACING), NOON)
    assert should_nudge(replace(DUE, nudges_since_active=2, last_nudge=NOON - SPACING), NOON)
    assert not should_nudge(replace(DUE, nudges_since_active=3, last_nudge=NOON - 10 * SPACING), NOON)


@pytest.mark.parametrize(
    "change", [{"opted_out": True}, {"blocked": True}, {"module_in_progress": None}], ids=["opted_out", "blocked", "no_module"]
)
def test_no_nudge_for_those_who_opted_out_blocked_or_have_nothing_in_progress(change: dict):
    assert not should_nudge(replace(DUE, **change), NOON)


# ----------------------------------------------------------------- the service
START = ist(1, 10)  # owners are active at 10:00 on 1 June; 48 hours later it is 10:00 again


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    built = await build_app(Settings(telegram_token="1:x", database_path=tmp_path / "bot.sqlite3"), clock=ManualClock(START))
    yield built
    await built.close()


async def onboard(app: App, ref: str, lang: str = "en", module: str | None = "export_ready", nexts: int = 0) -> int:
    """An owner onboarded through the conversation service; opens ``module`` and reads ``nexts`` lessons."""
    key = UserKey("telegram", ref)
    handle = app.conversations.handle
    reply = await handle(key, Inbound.say("/start"), lang_hint=lang)
    for _, text in TYPED_HI if lang == "hi" else TYPED_EN:
        await handle(key, Inbound.say(text))
    await handle(key, Inbound.say("1"))  # confirm the summary
    if module is not None:
        await handle(key, Inbound.tap(f"go:{module}"))
        for _ in range(nexts):
            await handle(key, Inbound.say("next"))
    assert (await app.db.fetchone("SELECT onboarded_at FROM users WHERE id = ?", (reply.user_id,)))[0] is not None
    return reply.user_id


async def reminders(app: App) -> list[dict]:
    """Every reminder row in the outbox."""
    rows = await app.db.fetchall("SELECT user_id, chat_ref, kind, payload, dedup_key, created_at FROM outbox WHERE kind = 'reminder' ORDER BY id")
    return [dict(r) for r in rows]


async def test_a_silent_owner_gets_one_reminder_then_one_every_72_hours_three_at_most(app: App):
    clock: ManualClock = app.clock
    user_id = await onboard(app, "801", lang="hi")
    assert await app.reminders.run_once() == 0  # just active

    clock.advance(SILENCE - HOUR)
    assert await app.reminders.run_once() == 0  # 47 hours
    clock.advance(HOUR)
    assert await app.reminders.run_once() == 1  # 48 hours
    [row] = await reminders(app)
    say = load_say(row["payload"])
    hi = lambda msgid: app.texts.gettext("hi", msgid)  # noqa: E731
    assert say.text == hi(REMINDER).format(name="रमेश", module=hi("Get export-ready")) + "\n" + hi(REMINDER_FOOTER)
    assert_hindi(say.text)
    assert [(c.id, c.label) for c in say.choices] == [("go:export_ready", hi(CONTINUE))]
    assert (row["user_id"], row["chat_ref"], row["created_at"]) == (user_id, "801", int(clock.now()))

    assert await app.reminders.run_once() == 0  # run again at once: nothing new
    clock.advance(SPACING - HOUR)
    assert await app.reminders.run_once() == 0  # 71 hours after the first
    clock.advance(HOUR)
    assert await app.reminders.run_once() == 1
    clock.advance(SPACING)
    assert await app.reminders.run_once() == 1
    for _ in range(3):
        clock.advance(SPACING)
        assert await app.reminders.run_once() == 0  # three in all
    assert len(await reminders(app)) == 3

    # Talking again starts the count afresh.
    await app.conversations.handle(UserKey("telegram", "801"), Inbound.say("/progress"))
    clock.advance(SILENCE)
    assert await app.reminders.run_once() == 1


async def test_who_gets_no_reminder(app: App):
    clock: ManualClock = app.clock
    due = await onboard(app, "811")
    await onboard(app, "812")
    await app.conversations.handle(UserKey("telegram", "812"), Inbound.say("/stop_reminders"))
    blocked = await onboard(app, "813")
    await app.db.execute("UPDATE users SET blocked_at = ? WHERE id = ?", (int(clock.now()), blocked))
    await onboard(app, "814", module=None)  # onboarded, never opened a module
    passed = await onboard(app, "816", nexts=len(app.engine.content.module("export_ready").lessons))
    for question in app.engine.content.module("export_ready").quiz:  # first attempt: options as written
        await app.conversations.handle(UserKey("telegram", "816"), Inbound.say(str(question.options.index(question.correct) + 1)))
    assert (await app.db.fetchone("SELECT passed FROM progress WHERE user_id = ?", (passed,)))[0] == 1
    # Started onboarding only.
    await app.conversations.handle(UserKey("telegram", "815"), Inbound.say("/start"), lang_hint="en")

    clock.advance(SILENCE)
    assert await app.reminders.run_once() == 1
    assert [r["user_id"] for r in await reminders(app)] == [due]
    row = await app.db.fetchone("SELECT reminders_off FROM users WHERE user_ref = '812'")
    assert row[0] == 1


async def test_nothing_is_sent_in_quiet_hours(app: App):
    clock: ManualClock = app.clock
    await onboard(app, "821")
    clock.t = START + SILENCE + 11 * HOUR  # 21:00 India time, two days later
    assert india_hour(clock.now()) == 21
    assert await app.reminders.run_once() == 0
    clock.t = START + SILENCE + 22 * HOUR + 59 * 60  # 08:59 the next morning
    assert await app.reminders.run_once() == 0
    clock.t = START + SILENCE + 23 * HOUR  # 09:00
    assert await app.reminders.run_once() == 1


async def test_the_reminder_reaches_the_owner_and_continue_opens_the_lesson(tmp_path: Path):
    clock = ManualClock(START)
    uid = 831
    async with BotApiStandin() as api, running_bot(api, tmp_path / "bot.sqlite3", clock=clock) as bot:
        app = bot.app
        module = app.engine.content.module("export_ready")
        api.add_user(uid, first_name="Asha", language_code="en")
        await onboard_by_typing(api, app, uid, TYPED_EN)
        api.tap_button(uid, api.last_message(uid), 0)
        lesson = await next_message(api, uid)
        for _ in range(2):
            api.tap_button(uid, lesson, "Next")
            lesson = await next_message(api, uid)
        assert lesson.text.startswith(f"{module.title} · 3/6")
        await assert_quiet(api, uid)

        clock.advance(SILENCE)
        assert await app.reminders.run_once() == 1
        bot.runtime.delivery.wake()
        reminder = await next_message(api, uid)
        assert reminder.text == REMINDER.format(name="Asha Devi", module=module.title) + "\n" + REMINDER_FOOTER
        assert reminder.buttons == [("Continue", "go:export_ready")]

        api.tap_button(uid, reminder, "Continue")
        reopened = await next_message(api, uid)
        assert reopened.text == lesson.text  # the lesson they stopped at
        assert [label for label, _ in reopened.buttons] == ["Next"]
        await assert_quiet(api, uid)
        status = await app.db.fetchone("SELECT status, attempts FROM outbox WHERE kind = 'reminder'")
        assert tuple(status) == ("sent", 1)
        assert len(api.callback_answers) == 4
        state = json.loads((await app.db.fetchone("SELECT state FROM users WHERE user_ref = ?", (str(uid),)))[0])
        assert (state["flow"], state["step"]) == ("lesson", "export_ready")
        assert await app.reminders.run_once() == 0  # they are active again


async def test_candidates_are_read_in_pages_and_none_is_missed(app: App):
    app.reminders.page_size = 2  # five quiet owners over three pages
    ids = [await onboard(app, str(900 + i)) for i in range(5)]
    app.clock.advance(SILENCE)
    assert await app.reminders.run_once() == 5
    assert sorted(r["user_id"] for r in await reminders(app)) == sorted(ids)
