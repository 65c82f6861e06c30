"""PostgreSQL operations against a real throwaway server: migrating under the advisory lock, moving
an SQLite database over with ``saathi migrate-to``, ``saathi backup`` as a pg_dump, the daily
maintenance, and what a conflicting transaction does. (The repositories' own contract runs on both
engines in test_storage.py and the e2e tests, through the ``store`` fixture.)"""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
import time
import subprocess
from pathlib import Path

import pytest

from bot import cli
from bot.app import build_app
from bot.config import Settings
from bot.services.clock import ManualClock
from bot.storage import pg
from bot.storage.db import Database
from bot.storage.pg import PgDatabase
from tests.test_storage import FIRST_STEPS, OWNER_NAME, PHONE_DIGITS, REST_STEPS, Owner

pytestmark = [pytest.mark.timeout(120)]


async def test_two_workers_starting_together_migrate_once(pg_server):
    url = pg_server.new_database()
    first, second, third = await asyncio.gather(PgDatabase.open(url), PgDatabase.open(url), PgDatabase.open(url))
    try:
        rows = [tuple(r) for r in await first.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")]
        assert rows == [(n, name) for n, name, _ in pg.migrations()]
        assert await first.version() == await second.version() == await third.version() == pg.schema_version()
        assert "users" in await second.tables() and "schema_migrations" not in await second.tables()
    finally:
        for db in (first, second, third):
            await db.close()


async def test_a_conflicting_transaction_is_run_again_not_lost(pg_server):
    """Two processes' transactions that read and write the same row: PostgreSQL aborts one, and it runs again."""
    url = pg_server.new_database()
    a, b = await PgDatabase.open(url), await PgDatabase.open(url)  # two pools: as two bot processes
    try:
        await a.execute("INSERT INTO startups (id, name, created_at, updated_at) VALUES ('s1', 'Counter', 0, 0)")
        runs = {"n": 0}

        def bump(conn) -> None:
            runs["n"] += 1
            value = conn.execute("SELECT weekly_capacity FROM startups WHERE id = 's1'").fetchone()[0]
            conn.execute("SELECT pg_sleep(0.05)")  # both read before either writes
            conn.execute("UPDATE startups SET weekly_capacity = ? WHERE id = 's1'", (value + 1,))

        await asyncio.gather(*(db.run_transaction(bump) for db in (a, b) for _ in range(5)))
        assert (await a.fetchone("SELECT weekly_capacity FROM startups WHERE id = 's1'"))[0] == 10 + 10  # no update lost
        assert runs["n"] > 10  # some were run again after PostgreSQL aborted them
    finally:
        await a.close()
        await b.close()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch) -> Path:
    """The CLI run from a folder without a .env, on an SQLite file there."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    db_path = tmp_path / "saathi.sqlite3"
    monkeypatch.setenv("DATABASE_PATH", str(db_path))
    return db_path


async def test_migrate_to_copies_every_row_and_the_owner_carries_on(pg_server, cli_env: Path, capsys):
    app = await build_app(Settings(database_path=cli_env), clock=ManualClock())
    owner, other = Owner(app, "owner-1"), Owner(app, "owner-2")
    for text in FIRST_STEPS + REST_STEPS + ["1"]:
        await owner.say(text)
    for text in FIRST_STEPS:  # halfway through onboarding
        await other.say(text)
    counts = {t: (await app.db.fetchone(f"SELECT COUNT(*) FROM {t}"))[0] for t in await app.db.tables()}
    await app.close()
    assert counts["users"] == 2 and counts["events"] > 0

    url = pg_server.new_database()
    assert await asyncio.to_thread(cli.main, ["migrate-to", url]) == 0
    out = capsys.readouterr().out
    assert "every table's count matches on PostgreSQL" in out and url not in out
    moved = await build_app(Settings(database_url=url), clock=ManualClock(start=1_780_003_600))
    try:
        assert {t: (await moved.db.fetchone(f"SELECT COUNT(*) FROM {t}"))[0] for t in counts} == counts
        other = Owner(moved, "owner-2")
        await other.say("/start")  # the half-onboarded owner is asked the question they stopped at
        assert "Welcome back" in other.text or "business" in other.text.lower(), other.text
        newcomer = Owner(moved, "owner-3")
        await newcomer.say("/start")  # a new row gets a new id: the sequences moved past the copied ones
        ids = [r[0] for r in await moved.db.fetchall("SELECT id FROM users ORDER BY id")]
        assert len(ids) == len(set(ids)) == 3
        profile = (await moved.db.fetchone("SELECT profile FROM users WHERE user_ref = 'owner-1'"))[0]
        assert OWNER_NAME in profile and PHONE_DIGITS in profile
    finally:
        await moved.close()

    assert await asyncio.to_thread(cli.main, ["migrate-to", url]) == 1  # twice: refused, nothing mixed
    assert "not empty" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
async def test_backup_on_postgres_is_a_pg_dump_that_restores(pg_server, cli_env: Path, monkeypatch, capsys):
    url = pg_server.new_database()
    app = await build_app(Settings(database_url=url), clock=ManualClock())
    owner = Owner(app)
    for text in FIRST_STEPS:
        await owner.say(text)
    await app.close()

    monkeypatch.setenv("DATABASE_URL", url)
    target = cli_env.parent / "backups" / "saathi.dump"
    assert await asyncio.to_thread(cli.main, ["backup", str(target)]) == 0
    assert "pg_restore" in capsys.readouterr().out
    assert target.read_bytes().startswith(b"PGDMP")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds owners' names and numbers

    restored = pg_server.new_database()
    done = subprocess.run(["pg_restore", "--no-owner", f"--dbname={restored}", str(target)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    db = await PgDatabase.open(restored)
    try:
        row = await db.fetchone("SELECT profile FROM users WHERE user_ref = 'owner-1'")
        assert OWNER_NAME in row[0]
        assert await db.version() == pg.schema_version()  # the restored copy needs no migration
    finally:
        await db.close()


async def test_the_daily_maintenance_runs_on_postgres(pg_server):
    url = pg_server.new_database()
    app = await build_app(Settings(database_url=url), clock=ManualClock())
    try:
        owner = Owner(app)
        for text in FIRST_STEPS:
            await owner.say(text)
        report = await app.maintenance.run_once()
        assert report.healthy and report.bytes_before > 0 and report.rows["events"] > 0
    finally:
        await app.close()


def test_the_database_password_is_a_secret_and_not_shown(tmp_path: Path):
    settings = Settings.from_env({"DATABASE_URL": "postgresql://saathi:s3cr%40t@db.internal:5432/saathi"}, env_file=None)
    assert "s3cr@t" in settings.secrets() and settings.database_url in settings.secrets()
    assert "s3cr" not in repr(settings)
    assert cli._without_password(settings.database_url) == ("postgresql://saathi@db.internal:5432/saathi", "s3cr@t")


async def test_sqlite_stays_the_default_without_a_url(tmp_path: Path):
    settings = Settings.from_env({"DATABASE_PATH": str(tmp_path / "x.sqlite3")}, env_file=None)
    app = await build_app(settings)
    try:
        assert isinstance(app.db, Database) and app.db.engine == "sqlite" and (tmp_path / "x.sqlite3").exists()
    finally:
        await app.close()
    with pytest.raises(Exception, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": "mysql://x"}, env_file=None)


def test_the_ci_run_fails_rather_than_skips_without_a_server():
    """Under CI a PostgreSQL server that cannot start is a failure (conftest.pg_server), so .ci/run sets CI."""
    script = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "export CI=true" in script and "apt-get install -y -q postgresql" in script


# ----------------------------------------------------------------- several workers on one database
class Recorder:
    """A sender that records what it was asked to send (the platform side of the delivery worker)."""

    def __init__(self, name: str, sent: list[tuple[str, str]]):
        self.name, self.sent = name, sent

    async def send(self, chat_ref: str, say) -> str:
        self.sent.append((self.name, chat_ref))
        await asyncio.sleep(0.01)
        return f"{self.name}-{len(self.sent)}"

    async def reply(self, row) -> str:
        return await self.send(row.chat_ref, row.output)


async def test_two_workers_share_the_outbox_one_sends_and_the_standby_takes_over(pg_server, monkeypatch):
    """Two bot processes on one PostgreSQL database: only the holder of the cluster-wide lock delivers;
    when it stops, the other takes over the queue. Every message goes out once, none twice."""
    from bot import runtime as runtime_module
    from bot.core.messages import Say
    from bot.runtime import Runtime
    from bot.storage.outbox import Outgoing

    monkeypatch.setattr(runtime_module, "LEADER_RETRY", 0.2)
    url = pg_server.new_database()
    settings = Settings(database_url=url, telegram_token="123:abc", broadcast_rate=10.0)  # slow: the sender stops mid-queue
    apps = [await build_app(settings), await build_app(settings)]
    sent: list[tuple[str, str]] = []
    runtimes = []
    for name, app in zip(("A", "B"), apps):
        runtime = Runtime(app)
        runtime.attach("telegram", Recorder(name, sent))
        runtime.start()
        runtimes.append(runtime)
    try:
        for _ in range(50):
            if any(getattr(r, "leadership", None) and r.leadership.held.is_set() for r in runtimes):
                break
            await asyncio.sleep(0.05)
        leaders = [r for r in runtimes if r.leadership.held.is_set()]
        assert len(leaders) == 1
        leader, standby = leaders[0], next(r for r in runtimes if r is not leaders[0])
        first = "A" if leader is runtimes[0] else "B"
        items = [Outgoing("telegram", str(9000 + i), "notice", Say(f"Notice {i}"), dedup_key=f"n:{i}") for i in range(40)]
        await apps[0].outbox.enqueue(items, int(time.time()))
        leader.delivery.wake()
        for _ in range(100):
            if len(sent) >= 10:
                break
            await asyncio.sleep(0.05)
        assert {who for who, _ in sent} == {first}  # the standby sends nothing while the other holds the lock
        await leader.stop()  # the sender goes away mid-queue
        await (apps[0] if leader is runtimes[0] else apps[1]).close()
        for _ in range(300):
            if len({chat for _, chat in sent}) == 40:
                break
            await asyncio.sleep(0.05)
        assert standby.leadership.held.is_set()
        chats = [chat for _, chat in sent]
        assert sorted(set(chats)) == sorted(str(9000 + i) for i in range(40))  # nobody missed
        assert len(chats) == len(set(chats))  # nobody twice
        assert {who for who, _ in sent} == {first, "B" if first == "A" else "A"}  # both sent: one after the other
        db = (apps[1] if leader is runtimes[0] else apps[0]).db
        for _ in range(100):  # the last sends' rows are marked in the sender's next batch
            statuses = dict(tuple(r) for r in await db.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
            if statuses == {"sent": 40}:
                break
            await asyncio.sleep(0.05)
        assert statuses == {"sent": 40}
    finally:
        for runtime in runtimes:
            await runtime.stop()
        for app in apps:
            await app.close()


async def test_two_workers_handling_one_owner_at_once_lose_no_answer(pg_server):
    """Two bot processes get two of one owner's messages at the same moment (WhatsApp does not order its
    deliveries): both answers are kept, one after the other, instead of the second overwriting the first."""
    url = pg_server.new_database()
    apps = [await build_app(Settings(database_url=url)), await build_app(Settings(database_url=url))]
    try:
        first = Owner(apps[0])
        for text in FIRST_STEPS[:3]:  # /start, language, consent: now asked for the owner's name
            await first.say(text)
        answers = ("Asha Devi", "Asha Handicrafts")
        await asyncio.gather(*(Owner(app).say(text, update_id=f"u-{n}") for n, (app, text) in enumerate(zip(apps, answers))))
        profile = json.loads((await apps[0].db.fetchone("SELECT profile FROM users WHERE user_ref = 'owner-1'"))[0])
        assert sorted(profile.values()) == sorted(answers), profile  # both stored: as the name and as the business
        turns = (await apps[1].db.fetchone("SELECT turns FROM users WHERE user_ref = 'owner-1'"))[0]
        assert turns == 5
        seen = (await apps[1].db.fetchone("SELECT COUNT(*) FROM seen_updates WHERE update_id IN ('u-0', 'u-1')"))[0]
        assert seen == 2
        # the same update delivered to both workers at once is handled once
        replies = await asyncio.gather(*(Owner(app).say("Moradabad", update_id="u-9") for app in apps))
        assert sorted(r is None for r in replies) == [False, True]
    finally:
        for app in apps:
            await app.close()


@pytest.mark.parametrize("start", range(1, pg.schema_version()))
async def test_an_upgrade_from_every_earlier_postgres_version(pg_server, start: int):
    url = pg_server.new_database()
    db = await PgDatabase.open(url, migrate=False)
    try:
        assert await db.migrate(target=start) == start
        await db.execute("INSERT INTO startups (id, name, created_at, updated_at) VALUES ('s1', 'Kept', 0, 0)")
    finally:
        await db.close()
    db = await PgDatabase.open(url)  # the bot starting on the new version
    try:
        assert await db.version() == pg.schema_version()
        assert (await db.fetchone("SELECT name FROM startups WHERE id = 's1'"))[0] == "Kept"
    finally:
        await db.close()


async def test_a_dead_workers_replies_are_sent_by_another_after_their_lease_and_a_live_ones_are_not(pg_server):
    """Replies 'sending' in one process: the others leave them alone while the lease runs (that process may
    be sending them now) and send them once it is over (it died)."""
    from bot.app import REPLY_LEASE
    from bot.core.messages import Say

    url = pg_server.new_database()
    clock = ManualClock(start=1_780_000_000)
    alive = await build_app(Settings(database_url=url), clock=clock)  # took replies and keeps sending them
    other = await build_app(Settings(database_url=url), clock=clock)
    sent: list[tuple[str, str]] = []
    try:
        assert other.replies.lease == REPLY_LEASE
        await alive.outbox.enqueue_replies(user_id=None, channel="telegram", chat_ref="7001", outputs=[Say("Question 4")],
                                           reply_to=None, now=int(clock.now()))
        clock.advance(REPLY_LEASE - 5)
        await alive.outbox.enqueue_replies(user_id=None, channel="telegram", chat_ref="7002", outputs=[Say("Question 2")],
                                           reply_to=None, now=int(clock.now()))
        other.replies.attach("telegram", Recorder("other", sent))
        assert await other.replies.recover() == 0  # both are within their lease: another process is on them
        clock.advance(10)  # the first one's process has been silent past the lease: it died
        assert await other.replies.recover() == 1
        await other.replies.retry_due()
        await other.replies.settle()
        assert sent == [("other", "7001")]
        left = [tuple(r) for r in await other.db.fetchall("SELECT chat_ref, status FROM outbox WHERE kind = 'reply'")]
        assert left == [("7002", "sending")]  # still the live process's
    finally:
        await alive.close()
        await other.close()


async def test_a_dead_workers_reply_the_owner_has_since_answered_past_is_dropped_not_sent_late(pg_server):
    from bot.app import REPLY_LEASE
    from bot.core.messages import Say

    url = pg_server.new_database()
    clock = ManualClock(start=1_780_000_000)
    app = await build_app(Settings(database_url=url), clock=clock)
    sent: list[tuple[str, str]] = []
    try:
        owner = Owner(app, "7101")
        await owner.say("/start")  # a users row for chat 7101
        await app.outbox.enqueue_replies(user_id=None, channel="telegram", chat_ref="7101", outputs=[Say("Old question")],
                                         reply_to=None, now=int(clock.now()))
        clock.advance(5)
        await owner.say("2")  # the owner wrote again (another worker answered them)
        clock.advance(REPLY_LEASE)
        texts: list[str] = []

        class Reading(Recorder):
            async def reply(self, row) -> str:
                texts.append(getattr(row.output, "text", ""))
                return await super().reply(row)

        app.replies.attach("telegram", Reading("late", sent))
        assert await app.replies.recover() >= 0
        await app.replies.retry_due()
        await app.replies.settle()
        assert "Old question" not in texts  # dropped: a question from before their last answer would only confuse
        assert await app.db.fetchall("SELECT id FROM outbox WHERE kind = 'reply' AND status = 'sending'") == []
    finally:
        await app.close()


async def test_whatsapp_messages_of_one_owner_at_two_workers_are_handled_once_each_in_the_order_sent(pg_server, monkeypatch):
    """Meta does not order its deliveries and the load balancer spreads them: an owner's later message
    reaches worker B before the earlier one reaches worker A, while a third worker is mid-turn for
    that owner (it holds their lock) and then dies. Both webhooks are answered once the messages are
    stored; the sweep hands the owner's queue to a live worker, which answers them once each, in the
    order the owner sent them (the name first, then the business)."""
    from bot.channels import whatsapp as wa_module
    from bot.runtime import BotProcess
    from tests.test_whatsapp import approved_templates
    from tests.whatsapp_standin import WhatsAppStandin

    monkeypatch.setattr(wa_module, "INBOX_SWEEP", 0.2)
    monkeypatch.setattr(wa_module, "INBOX_STALE", 0.5)
    url = pg_server.new_database()
    owner = "919812345678"
    async with WhatsAppStandin(approved=approved_templates()) as api:
        settings = Settings(database_url=url, whatsapp_token=api.token, whatsapp_phone_number_id=api.phone_number_id,
                            whatsapp_app_secret=api.app_secret, whatsapp_verify_token="verify-1", whatsapp_api_base_url=api.base_url,
                            webhook_listen="127.0.0.1", whatsapp_port=0)
        workers = [BotProcess(settings, background=False), BotProcess(settings, background=False)]
        for worker in workers:
            await worker.start()
        urls = ["http://%s:%d/whatsapp" % worker.whatsapp_runner.addresses[0][:2] for worker in workers]

        async def says(n: int, text: str, sent_at: int, message_id: str) -> int:
            api.webhook_url = urls[n]
            body = api.notification(owner, {"id": message_id, "type": "text", "text": {"body": text}, "timestamp": str(sent_at)})
            return await api.post(body)

        async def messages(count: int) -> list:
            for _ in range(200):
                if len(api.messages(owner)) >= count:
                    break
                await asyncio.sleep(0.05)
            return api.messages(owner)

        try:
            now = int(time.time())
            for n, text in enumerate(FIRST_STEPS[:3]):  # /start, English, consent: now asked for their name
                assert await says(0, text, now - 60 + n, f"wamid.{n}") == 200
                await messages(n + 1)
            asked = len(api.messages(owner))
            third = pg.UserLocks(url)  # a worker in the middle of a turn for this owner
            assert await third.try_lock(f"whatsapp-user:{owner}")
            assert await says(1, "Asha Handicrafts", now, "wamid.late") == 200  # sent second, arrives first
            assert await says(0, "Asha Devi", now - 1, "wamid.early") == 200
            stored = await workers[0].app.db.fetchall("SELECT update_id FROM inbox WHERE chat_ref = ? ORDER BY id", (owner,))
            assert [r[0] for r in stored] == ["wamid.late", "wamid.early"]  # durable, and nobody answered yet
            await asyncio.sleep(0.8)
            assert len(api.messages(owner)) == asked
            await third.close()  # that worker dies: its lock goes with its connection
            sent = await messages(asked + 2)
            await asyncio.sleep(0.6)  # a second answer to either would arrive by now
            assert len(api.messages(owner)) == asked + 2, [m.text for m in sent[asked:]]
            row = await workers[1].app.db.fetchone("SELECT profile, turns FROM users WHERE user_ref = ?", (owner,))
            profile = json.loads(row[0])
            assert (profile["owner_name"], profile["business_name"]) == ("Asha Devi", "Asha Handicrafts")
            assert row[1] == 5  # one turn per message, none twice
            assert await workers[0].app.db.fetchall("SELECT update_id FROM inbox WHERE chat_ref = ?", (owner,)) == []
            assert api.refusals == []
        finally:
            for worker in workers:
                await worker.stop()
