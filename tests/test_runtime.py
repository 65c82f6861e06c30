"""The runtime: every worker supervised, for any mix of channels.

- A worker that fails is logged and restarted with backoff; one that keeps failing is reported
  to the admins on Telegram, and again when it works again.
- The delivery worker survives a database locked by another process: every row goes out once.
- WhatsApp alone still runs the lead sweep, so an offer past its SLA moves on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import Settings
from bot.core.messages import Say
from bot.runtime import WORKER_BACK, WORKER_FAILING, BotProcess, Supervisor
from bot.services.clock import ManualClock
from bot.storage.outbox import Outgoing
from tests.botapi_standin import BotApiStandin
from tests.test_leads_e2e import HOUR, REGISTRY, seed_owner
from tests.whatsapp_standin import WhatsAppStandin

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
ADMIN = 900


async def eventually(check, timeout: float = 10.0) -> None:
    """Wait until ``check()`` (a value or an awaitable) is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (await result if inspect.isawaitable(result := check()) else result):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_failing_worker_is_restarted_with_backoff_and_reported_once(caplog):
    runs, reports = [], []

    async def flaky(stop: asyncio.Event) -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) <= 4:
            raise sqlite3.OperationalError("database is locked")
        await stop.wait()

    async def report(name, state, failing):
        reports.append((name, failing, state.streak))

    sup = Supervisor(report=report, backoff=0.02, report_after=3, healthy_after=0.2)
    sup.forever("delivery", flaky)
    with caplog.at_level(logging.ERROR, logger="bot.runtime"):
        sup.start()
        await eventually(lambda: len(reports) == 2)
        await sup.stop()
    assert len(runs) == 5 and sup.workers["delivery"].restarts == 4
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert gaps[3] > gaps[0] * 3  # 0.02, 0.04, 0.08, 0.16 s: the waits grow
    assert reports == [("delivery", True, 3), ("delivery", False, 0)]  # told once while failing, once when back
    failures = [r.getMessage() for r in caplog.records if "worker delivery failed" in r.getMessage()]
    assert len(failures) == 4 and "OperationalError: database is locked" in failures[0]


async def test_a_worker_that_ran_steadily_before_failing_waits_the_shortest_backoff_again():
    runs, reports = [], []

    async def locked_now_and_then(stop: asyncio.Event) -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) <= 4:
            await asyncio.sleep(0.15)  # works a while, then the database is locked
            raise sqlite3.OperationalError("database is locked")
        await stop.wait()

    async def report(name, state, failing):
        reports.append((name, failing))

    sup = Supervisor(report=report, backoff=0.05, report_after=3, healthy_after=5, steady_after=0.1)
    sup.forever("delivery", locked_now_and_then)
    sup.start()
    await eventually(lambda: len(runs) == 5)
    await sup.stop()
    gaps = [b - a - 0.15 for a, b in zip(runs, runs[1:])]
    assert all(gap < 0.09 for gap in gaps), gaps  # 0.05 s each time, not 0.05, 0.1, 0.2, 0.4
    # Still failing every time it runs: the admins hear of it once, after three in a row.
    assert sup.workers["delivery"].restarts == 4 and reports == [("delivery", True)]


async def test_a_periodic_worker_that_fails_every_run_is_reported_and_retried_after_the_backoff():
    calls, reports = [], []

    async def sweep():
        calls.append(asyncio.get_running_loop().time())
        raise RuntimeError("database is locked")

    async def report(name, state, failing):
        reports.append((name, failing))

    # The interval (10 s) is far longer than the test: retries come after the backoff, not the interval.
    sup = Supervisor(report=report, backoff=0.02, report_after=3, healthy_after=0.05)
    sup.every("reminders", 10.0, sweep, first=0.1)
    sup.start()
    await eventually(lambda: len(reports) == 1)
    await sup.stop()
    assert len(calls) >= 3 and reports == [("reminders", True)]  # the wait before a run is not "working"


async def test_a_periodic_worker_runs_at_start_and_again_after_a_failure():
    calls = []

    async def sweep():
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("boom")

    sup = Supervisor(backoff=0.01)
    sup.every("lead-sweep", 0.05, sweep)
    sup.start()
    await eventually(lambda: len(calls) >= 4)
    await sup.stop()
    assert sup.workers["lead-sweep"].restarts == 1 and sup.workers["lead-sweep"].streak == 0


async def test_delivery_survives_a_locked_database_and_sends_every_row_once(tmp_path: Path, caplog):
    db_path = tmp_path / "bot.sqlite3"
    async with BotApiStandin() as api:
        api.add_user(ADMIN, language_code="en")
        users = list(range(7001, 7031))
        for uid in users:
            api.add_user(uid, language_code="en")
        settings = Settings(telegram_token=api.token, telegram_api_base_url=api.base_url, database_path=db_path,
                            admin_ids=frozenset({ADMIN}), db_busy_timeout=0.05, broadcast_rate=50.0)
        process = BotProcess(settings, poll_timeout=1, backoff=0.05, max_backoff=0.2, report_after=2, healthy_after=0.5)
        await process.start()
        try:
            app, runtime = process.app, process.runtime
            items = [Outgoing("telegram", str(uid), "notice", Say(f"Notice for {uid}")) for uid in users]
            await app.outbox.enqueue(items, int(app.clock.now()))
            other = sqlite3.connect(db_path, isolation_level=None)
            with caplog.at_level(logging.ERROR, logger="bot.runtime"):
                other.execute("BEGIN EXCLUSIVE")  # another process holds the database for a second
                runtime.delivery.wake()
                await asyncio.sleep(1.0)
                other.execute("COMMIT")
                other.close()
                failing = await api.wait_for_message(ADMIN, lambda m: "keeps failing" in (m.text or ""))
                for uid in users:
                    await api.wait_for_message(uid, lambda m: (m.text or "").startswith("Notice"))
                back = await api.wait_for_message(ADMIN, lambda m: "works again" in (m.text or ""))
            await api.wait_idle(quiet=0.3)
            assert runtime.supervisor.workers["delivery"].restarts >= 2
            assert any("worker delivery failed" in r.getMessage() for r in caplog.records)
            assert "delivery" in failing.text and app.texts.gettext("hi", WORKER_FAILING) != WORKER_FAILING
            assert back.text.startswith(WORKER_BACK.format(name="delivery").split("“")[0])
            for uid in users:  # each exactly once
                assert [m.text for m in api.messages(uid)] == [f"Notice for {uid}"]
            statuses = await app.db.fetchall("SELECT status, COUNT(*) AS n FROM outbox WHERE kind = 'notice' GROUP BY status")
            assert {r["status"]: r["n"] for r in statuses} == {"sent": len(users)}
        finally:
            await process.stop()


async def test_whatsapp_alone_runs_the_lead_sweep(tmp_path: Path):
    """No Telegram: the runtime still sweeps, so an offer past its SLA moves to the next startup."""
    clock = ManualClock()
    registry = tmp_path / "startups.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    async with WhatsAppStandin() as wa:
        settings = Settings(
            database_path=tmp_path / "bot.sqlite3", whatsapp_token=wa.token, whatsapp_phone_number_id=wa.phone_number_id,
            whatsapp_app_secret=wa.app_secret, whatsapp_verify_token="verify", whatsapp_api_base_url=wa.base_url,
            webhook_listen="127.0.0.1", whatsapp_port=0,
        )
        app = await build_app(settings, clock=clock)
        assert await app.leads.import_file(registry) == (3, 0)
        owner = await seed_owner(app, 919876543210, finished=True, channel="whatsapp")
        assert await app.leads.evaluate(owner) is not None
        [offer] = await app.db.fetchall("SELECT startup_id FROM lead_offers")
        assert offer["startup_id"] == "up_brass"
        await app.close()

        clock.advance(49 * HOUR)
        process = BotProcess(settings, clock=clock)
        await process.start()
        try:
            async def moved_on() -> bool:
                found = await process.app.db.fetchall("SELECT startup_id, outcome FROM lead_offers ORDER BY offered_at, startup_id")
                return len(found) == 2

            await eventually(moved_on)
            offers = [dict(r) for r in await process.app.db.fetchall("SELECT startup_id, outcome FROM lead_offers ORDER BY offered_at, startup_id")]
            assert offers == [{"startup_id": "up_brass", "outcome": "expired"}, {"startup_id": "up_ganga", "outcome": None}]
            assert set(process.runtime.supervisor.workers) >= {"replies", "delivery", "lead-sweep", "reminders"}
        finally:
            await process.stop()


async def test_each_platform_has_its_own_delivery_worker_and_a_telegram_pause_does_not_hold_up_whatsapp(tmp_path: Path):
    """Telegram's flood control asks the bot to wait 30 s: WhatsApp's messages go out meanwhile."""
    async with BotApiStandin() as api, WhatsAppStandin() as wa:
        settings = Settings(
            telegram_token=api.token, telegram_api_base_url=api.base_url, database_path=tmp_path / "bot.sqlite3",
            whatsapp_token=wa.token, whatsapp_phone_number_id=wa.phone_number_id, whatsapp_app_secret=wa.app_secret,
            whatsapp_verify_token="verify", whatsapp_api_base_url=wa.base_url, webhook_listen="127.0.0.1", whatsapp_port=0,
            broadcast_rate=50.0, whatsapp_rate=10.0,
        )
        process = BotProcess(settings, poll_timeout=1)
        await process.start()
        try:
            host, wa_port = process.whatsapp_runner.addresses[0][:2]
            wa.webhook_url = f"http://{host}:{wa_port}/whatsapp"
            workers = process.runtime.supervisor.workers
            assert {"delivery", "delivery-whatsapp"} <= set(workers)
            lanes = {tuple(w.senders): w.rate for w in process.runtime.delivery}
            assert lanes == {("telegram",): 50.0, ("whatsapp",): 10.0}  # each platform at its own pace
            api.add_user(501, language_code="en")
            wa_id = "919811111111"
            await wa.send_text(wa_id, "hi")  # the WhatsApp owner writes: the 24-hour window is open
            await eventually(lambda: wa.messages(wa_id))
            api.fail_next("sendMessage", 1, status=429, retry_after=30)
            now = int(process.app.clock.now())
            await process.app.outbox.enqueue([
                Outgoing("telegram", "501", "notice", Say("Telegram notice")),
                Outgoing("whatsapp", wa_id, "notice", Say("WhatsApp notice")),
            ], now)
            process.runtime.delivery.wake()
            await eventually(lambda: any(m.text == "WhatsApp notice" for m in wa.messages(wa_id)), timeout=8)
            assert [m.text for m in api.messages(501)] == []  # Telegram waits out its 30 seconds
            row = await process.app.db.fetchone("SELECT status, not_before FROM outbox WHERE channel = 'telegram' AND kind = 'notice'")
            assert row["status"] == "pending" and row["not_before"] >= now + 29  # queued for after the pause, not lost
        finally:
            await process.stop()
