"""Growth: handled update ids are kept only for the platform's redelivery window, and the daily
maintenance (the runtime's worker, ``saathi maintain``) prunes, checks, optimises and truncates the WAL.

Real SQLite files, the real bot against the Bot API and WhatsApp stand-ins.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from bot import cli
from bot.app import build_app
from bot.config import Settings
from bot.runtime import BotProcess
from bot.services.clock import ManualClock
from tests.botapi_standin import BotApiStandin
from tests.e2e_support import running_bot

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

DAY = 24 * 3600
NOW = 1_780_000_000


async def test_an_old_telegram_update_id_never_blocks_a_new_update(tmp_path):
    clock = ManualClock(NOW)
    async with BotApiStandin() as api, running_bot(api, tmp_path / "b.sqlite3", clock=clock) as bot:
        api.add_user(301, first_name="Asha", language_code="en")
        first = api.send_text(301, "/start")
        [welcome] = await api.wait_for_messages(301, 1)
        assert "Choose your language" in welcome.text
        # Telegram starts its ids anywhere after a week without updates: the next id was used long ago.
        await bot.app.db.execute("INSERT INTO seen_updates (channel, update_id, at) VALUES ('telegram', ?, ?)",
                                 (str(first + 1), NOW - 2 * DAY))
        assert api.send_text(301, "2") == first + 1
        [consent] = await api.wait_for_messages(301, 1)
        assert "Before we start" in consent.text  # answered: the old id did not make it a "repeat"
        # while an id handled within the day still is a repeat (a redelivery is not answered twice)
        await bot.app.db.execute("INSERT INTO seen_updates (channel, update_id, at) VALUES ('telegram', ?, ?)",
                                 (str(first + 2), NOW - 3600))
        api.send_text(301, "yes")
        await api.wait_idle(quiet=0.3)
        assert api.new_messages(301) == []
        row = await bot.app.db.fetchone("SELECT at FROM seen_updates WHERE update_id = ?", (str(first + 1),))
        assert row["at"] == NOW  # the id now stands for the new update


async def test_an_old_whatsapp_message_id_is_forgotten_after_a_week(tmp_path):
    from tests.whatsapp_standin import WhatsAppStandin

    clock = ManualClock(NOW)
    async with WhatsAppStandin() as api:
        settings = Settings(
            database_path=tmp_path / "wa.sqlite3", whatsapp_token=api.token, whatsapp_phone_number_id=api.phone_number_id,
            whatsapp_app_secret=api.app_secret, whatsapp_verify_token="v-1234567", whatsapp_api_base_url=api.base_url,
            webhook_listen="127.0.0.1", whatsapp_port=0,
        )
        process = BotProcess(settings, clock=clock, background=False)
        await process.start()
        try:
            host, port = process.whatsapp_runner.addresses[0][:2]
            api.webhook_url = f"http://{host}:{port}/whatsapp"
            db = process.app.db
            await db.execute("INSERT INTO seen_updates (channel, update_id, at) VALUES ('whatsapp', 'wamid.OLD', ?)", (NOW - 8 * DAY,))
            await db.execute("INSERT INTO seen_updates (channel, update_id, at) VALUES ('whatsapp', 'wamid.RECENT', ?)",
                             (NOW - 2 * DAY,))
            assert await api.send_text("919811100001", "Hi", message_id="wamid.OLD") == 200
            assert len(api.new_messages("919811100001")) == 1  # answered
            assert await api.send_text("919811100002", "Hi", message_id="wamid.RECENT") == 200
            assert api.new_messages("919811100002") == []  # within Meta's week of retries: a repeat
        finally:
            await process.stop()


def seed_history(db_path: Path) -> dict[str, int]:
    """A database a year of traffic left: ids, delivery records, reminders of a silent owner."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("INSERT INTO users (id, channel, user_ref, first_seen_at, last_seen_at) VALUES (1, 'telegram', '1', ?, ?)",
                     (NOW - 60 * DAY, NOW - 50 * DAY))  # silent for 50 days: its three reminders still count
        conn.execute("INSERT INTO users (id, channel, user_ref, first_seen_at, last_seen_at) VALUES (2, 'telegram', '2', ?, ?)",
                     (NOW - 60 * DAY, NOW - DAY))
        seen = [("telegram", f"t{i}", NOW - 2 * DAY) for i in range(11_999)] + [("telegram", "fresh", NOW - 3600)]
        seen += [("whatsapp", "w-old", NOW - 8 * DAY), ("whatsapp", "w-recent", NOW - 3 * DAY), ("whatsapp", "w-inbox", NOW - 8 * DAY)]
        conn.executemany("INSERT INTO seen_updates (channel, update_id, at) VALUES (?, ?, ?)", seen)
        conn.execute("INSERT INTO inbox (channel, update_id, chat_ref, payload, received_at) VALUES ('whatsapp', 'w-inbox', '1', "
                     "'{}', ?)", (NOW - 8 * DAY,))  # stored, not yet deleted: its id is kept for a replay
        conn.executemany("INSERT INTO events (user_id, kind, data, at) VALUES (?, ?, '{}', ?)", [
            (2, "consent_given", NOW - 100 * DAY), (2, "module_started", NOW - 100 * DAY), (2, "quiz_finished", NOW - 95 * DAY),
            (1, "data_deleted", NOW - 99 * DAY), (2, "module_passed", NOW - 10 * DAY),
        ])  # in time order, as the bot writes them
        conn.executemany("INSERT INTO quiz_answers VALUES (2, 'payments', ?, 'q1', 'a', 1, ?)",
                         [(1, NOW - 200 * DAY), (2, NOW - 190 * DAY), (3, NOW - 10 * DAY)])
        rows = [(1, "reminder", "sent", NOW - 48 * DAY + k * 3 * DAY, NOW - 48 * DAY + k * 3 * DAY, f"reminder:1:{k}")
                for k in range(3)]
        rows += [(2, "reminder", "sent", NOW - 45 * DAY, NOW - 45 * DAY, "reminder:2:1"),
                 (2, "broadcast", "pending", NOW - 40 * DAY, None, "bc:3:2"),
                 (2, "lead_notice", "failed", NOW - 40 * DAY, None, "lead:1:owner:x")]
        rows += [(2, "reminder", "held", NOW - 8 * DAY, None, "held-old"), (2, "reminder", "held", NOW - 2 * DAY, None, "held-new")]
        rows += [(2, "broadcast", "sent", NOW - 40 * DAY, NOW - 40 * DAY, f"bc:1:{n}") for n in range(6000)]
        rows += [(2, "broadcast", "sent", NOW - 10 * DAY, NOW - 10 * DAY, f"bc:2:{n}") for n in range(6000)]
        rows.sort(key=lambda r: r[3])  # the outbox is written in time order
        conn.executemany("INSERT INTO outbox (user_id, channel, chat_ref, kind, payload, status, not_before, created_at, sent_at, "
                         "dedup_key) VALUES (?, 'telegram', '2', ?, '{\"text\": \"x\"}', ?, ?, ?, ?, ?)",
                         [(u, k, s, c, c, sent, key) for u, k, s, c, sent, key in rows])
    conn.close()
    return {"outbox": len(rows), "seen": len(seen)}


def test_saathi_maintain_prunes_what_is_past_its_window_and_prints_what_it_did(tmp_path, monkeypatch, capsys):
    db_path = tmp_path / "data" / "saathi.sqlite3"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(db_path))

    async def create() -> None:
        app = await build_app(Settings(database_path=db_path), clock=ManualClock(NOW))
        await app.close()

    asyncio.run(create())
    seed_history(db_path)
    monkeypatch.setattr("bot.services.clock.SystemClock.now", lambda self: float(NOW))
    assert cli.main(["maintain"]) == 0
    out = capsys.readouterr().out
    assert "pruned 12,000 handled update id(s) past their window" in out
    assert "gave up 1 WhatsApp message(s) held over 7 days for a user who did not write" in out
    assert "pruned 6,002 delivery record(s) older than 30 days" in out  # broadcast 1, one reminder, one failed notice
    assert "pruned 2 logged event(s) older than 90 days (consents and erasures stay)" in out
    assert "pruned 2 single quiz answer(s) older than 180 days (scores and passes stay)" in out
    assert "integrity (quick_check): ok" in out and "WAL truncated" in out and "PRAGMA optimize" in out
    conn = sqlite3.connect(db_path)
    try:
        seen = {r[0] for r in conn.execute("SELECT update_id FROM seen_updates")}
        assert seen == {"fresh", "w-recent", "w-inbox"}
        held = dict(conn.execute("SELECT dedup_key, status FROM outbox WHERE dedup_key LIKE 'held-%'").fetchall())
        assert held == {"held-old": "cancelled", "held-new": "held"}  # a week-old reminder is given up, a fresh one waits
        keys = {r[0] for r in conn.execute("SELECT dedup_key FROM outbox")}
        assert {"reminder:1:0", "reminder:1:1", "reminder:1:2"} <= keys  # still counting: owner 1 has not written since
        assert "reminder:2:1" not in keys and "bc:3:2" in keys  # an old reminder of an active owner goes; pending stays
        assert not any(k.startswith("bc:1:") for k in keys) and sum(k.startswith("bc:2:") for k in keys) == 6000
        kinds = [r[0] for r in conn.execute("SELECT kind FROM events ORDER BY id")]
        assert kinds == ["consent_given", "data_deleted", "module_passed"]
        assert [r[0] for r in conn.execute("SELECT attempt FROM quiz_answers")] == [3]
    finally:
        conn.close()

    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "nowhere.sqlite3"))
    assert cli.main(["maintain"]) == 1
    assert "no database" in capsys.readouterr().err


async def test_the_runtime_runs_the_maintenance_and_logs_what_it_did(tmp_path, caplog):
    db_path = tmp_path / "b.sqlite3"
    clock = ManualClock(NOW)
    app = await build_app(Settings(database_path=db_path), clock=clock)
    await app.close()
    seed_history(db_path)
    caplog.set_level(logging.INFO, logger="bot.services.maintenance")
    async with BotApiStandin() as api:
        process = BotProcess(Settings(telegram_token=api.token, telegram_api_base_url=api.base_url, database_path=db_path),
                             clock=clock, poll_timeout=1, maintenance_first=0.05)
        await process.start()
        try:
            for _ in range(200):
                if any("maintenance: took" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.05)
        finally:
            await process.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.services.maintenance"]
    assert "maintenance: pruned 12,000 handled update id(s) past their window (Telegram 1 day, WhatsApp 7 days)" in lines
    # 6,002 as above, and the old pending broadcast row the delivery worker has just skipped (no consent)
    assert any(line.startswith(("maintenance: pruned 6,002 delivery", "maintenance: pruned 6,003 delivery")) for line in lines)
    assert "maintenance: integrity (quick_check): ok" in lines
    assert process.runtime.supervisor.workers["maintenance"].restarts == 0
