"""Broadcast delivery at Telegram's limit: rate, exactly-once, memory, also across a SIGKILL.

    .venv/bin/python bench/broadcast.py                  # --quick: 3,000 @ 300/s and 750 @ 30/s, < 1 min
    .venv/bin/python bench/broadcast.py --full           # 1,00,000 @ 300/s and 3,000 @ 30/s
    .venv/bin/python bench/broadcast.py --owners 20000 --rate 300 [--kill]
    .venv/bin/python bench/broadcast.py --full --kill    # SIGKILL the bot halfway, start it again
    .venv/bin/python bench/broadcast.py --whatsapp --quick --kill   # WhatsApp: 3,000 @ 80/s, < 1 min
    .venv/bin/python bench/broadcast.py --whatsapp --full --kill    # WhatsApp: 1,00,000 @ 80/s, ~22 min
    .venv/bin/python bench/broadcast.py --postgres --quick --kill   # 2 workers on PostgreSQL, the sender SIGKILLed
    .venv/bin/python bench/broadcast.py --postgres --full --kill    # the same with 1,00,000 @ 300/s, ~6 min

A Bot API stand-in runs in this process and answers 429 past ``--rate`` messages a second (its
flood control: a token bucket of one second's worth). A database is seeded with ``--owners``
owners who agreed to hear from us; this process counts the segment (the admin's preview) and
creates a module-invitation broadcast to all of them (one INSERT … SELECT). Then the real bot
runs as a separate process (``saathi run``'s path, ``bench/common.py bot``) with
BROADCAST_RATE = ``--rate``, pointed at the stand-in, and delivers it.

Printed per run: the machine; preview-count and enqueue times; the sustained send rate (the
middle 90% of the messages) and its share of the limit; 429s; duplicates (an owner who got the
broadcast twice) and missed owners; peak RSS of the bot process (VmHWM); with ``--kill``, how
many rows were in doubt after the SIGKILL ('sending' → 'unknown', never resent) and whether each
had in fact reached the stand-in.

With ``--whatsapp`` the same on WhatsApp alone (no Telegram token): the Graph API stand-in
refuses with 130429 past ``--rate`` (default 80, the Cloud API's default throughput, and the
bot's WHATSAPP_RATE), posts a "delivered" status back to the bot's webhook for every message (as
Meta does: the bot stores each one while it sends), and enforces the 24-hour window. The owners
are WhatsApp owners; ``--outside`` of them (default 20%) last wrote more than 24 hours ago, so
theirs goes as the approved ``module_invitation`` template instead of the text.

With ``--postgres`` (Telegram) the database is a throwaway PostgreSQL server (``tests/pg_server.py``;
the owners are seeded into SQLite and moved with ``saathi migrate-to``'s copy) and ``--workers``
bot processes (default 2) share it in webhook mode. One of them holds the cluster-wide lock and
sends; ``--kill`` SIGKILLs *that one* halfway (found by its PostgreSQL session, which holds the
advisory lock) and starts it again a second later as a standby. Printed besides: the takeover
gap (from the SIGKILL to the next message, sent by the standby) and the sustained rate without it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import TOKEN, BenchStandin, BenchWhatsApp, BotProcess, machine  # noqa: E402
from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.segments import Segment  # noqa: E402
from bot.services.broadcast import Plan  # noqa: E402
from bot.templates import load_templates  # noqa: E402

ADMIN = 7
FIRST_OWNER = 1_000_000
STATES = ("uttar_pradesh", "tamil_nadu", "gujarat", "rajasthan", "maharashtra", "punjab", "west_bengal", "karnataka")
SECTORS = ("handicrafts", "textiles_apparel", "leather", "spices", "engineering", "agri_food")


@dataclass
class Result:
    """What one run measured."""

    owners: int
    rate: float
    kills: int
    count_seconds: float = 0.0
    segment_count_seconds: float = 0.0
    enqueue_seconds: float = 0.0
    delivered: int = 0
    duplicates: int = 0
    missed: int = 0
    rejected_429: int = 0
    sustained: float = 0.0
    wall: float = 0.0
    peak_rss_mb: list[float] = field(default_factory=list)
    in_doubt: int = 0
    in_doubt_reached: int = 0
    killed_at: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    status_edits: int = 0
    cpu_seconds: float = 0.0
    channel: str = "telegram"
    templates: int = 0
    statuses_posted: int = 0
    status_retries: int = 0
    delivered_rows: int = 0
    workers: int = 1
    engine: str = "SQLite"
    takeover: list[float] = field(default_factory=list)  # seconds from each SIGKILL to the next message


class Store:
    """The bench's database, read while the bot writes: a SQLite file (read-only; WAL allows it) or,
    with ``url``, a PostgreSQL database (the file is then only the bot process's working folder)."""

    def __init__(self, path: Path, url: str = ""):
        self.path, self.url = path, url

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """The rows of one SELECT (``?`` placeholders)."""
        if self.url:
            import psycopg

            with psycopg.connect(self.url) as conn:
                return [tuple(r) for r in conn.execute(sql.replace("?", "%s"), params).fetchall()]
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def settings(self, rate: float) -> Settings:
        """The settings that open this database."""
        return Settings(database_path=self.path, database_url=self.url, broadcast_rate=rate)

    def sender(self) -> str | None:
        """PostgreSQL: the ``PGAPPNAME`` of the worker holding the cluster-wide lock (the one sending)."""
        rows = self.query("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                          "WHERE l.locktype = 'advisory' AND l.granted AND starts_with(a.application_name, 'worker-')")
        return rows[0][0] if rows else None


def owner_counter() -> tuple[dict[int, int], list[float], Callable[[str, Any, float], None]]:
    """Messages sent per owner chat and when, and the stand-in watcher that records them."""
    received: dict[int, int] = {}
    stamps: list[float] = []

    def on_owner(kind: str, message, at: float) -> None:
        if kind == "send":
            received[message.chat_id] = received.get(message.chat_id, 0) + 1
            stamps.append(at)

    return received, stamps, on_owner


def watch(api: BenchStandin, owners: int, on_admin: Callable, on_owner: Callable) -> None:
    """The admin and ``owners`` owners on the stand-in, each chat watched."""
    api.add_user(ADMIN, language_code="en")
    api.watchers[ADMIN] = on_admin
    for i in range(owners):
        api.add_user(FIRST_OWNER + i, language_code="hi")
        api.watchers[FIRST_OWNER + i] = on_owner


def whatsapp_number(i: int) -> str:
    """The ``i``-th WhatsApp owner's number (India, 91 + ten digits)."""
    return str(919_000_000_000 + i)


def in_window(i: int, outside: float) -> bool:
    """Whether owner ``i`` wrote within the last 24 hours (the same answer for the bot and the stand-in)."""
    return random.Random(i).random() >= outside


USER_INSERT = (
    "INSERT INTO users (channel, user_ref, lang, state, profile, consent, consent_at, onboarded_at, first_seen_at, last_seen_at) "
    "VALUES (?, ?, ?, '{\"flow\": \"menu\", \"step\": \"\", \"seq\": 1}', ?, 'given', ?, ?, ?, ?)"
)


def owner_rows(owners: int, channel: str, now: int) -> list[tuple]:
    """``owners`` owners (70% Hindi) who gave consent and finished onboarding: rows for ``USER_INSERT``."""
    rng = random.Random(11)
    ref = whatsapp_number if channel == "whatsapp" else (lambda i: str(FIRST_OWNER + i))
    return [
        (channel, ref(i), "hi" if rng.random() < 0.7 else "en",
         json.dumps({"state": rng.choice(STATES), "sector": rng.choice(SECTORS)}), now, now, now, now)
        for i in range(owners)
    ]


def seed(path: Path, owners: int, channel: str = "telegram", outside: float = 0.0) -> None:
    """The owners (``owner_rows``) in one transaction.

    On WhatsApp each also has their last inbound message: just now, or two days ago for the
    ``outside`` share (the window the bot keeps; the stand-in is told the same).
    """
    now = int(time.time())
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(USER_INSERT, owner_rows(owners, channel, now))
        if channel == "whatsapp":
            conn.executemany(
                "INSERT OR REPLACE INTO chat_inbound (channel, chat_ref, last_at) VALUES ('whatsapp', ?, ?)",
                ((whatsapp_number(i), now if in_window(i, outside) else now - 2 * 86400) for i in range(owners)),
            )
    conn.close()


async def seed_postgres(url: str, owners: int) -> None:
    """The same Telegram owners in a PostgreSQL database, through the bot's own driver (migrated first)."""
    from bot.storage.pg import PgDatabase

    rows = owner_rows(owners, "telegram", int(time.time()))
    db = await PgDatabase.open(url)
    try:
        await db.run_transaction(lambda conn: [conn.executemany(USER_INSERT, rows[i:i + 5000]) for i in range(0, len(rows), 5000)])
    finally:
        await db.close()


async def prepare(store: Store, owners: int, rate: float, result: Result, channel: str = "telegram",
                  outside: float = 0.0) -> int:
    """Migrate and seed the database, time the preview counts, create the broadcast; its id."""
    if store.url:
        await seed_postgres(store.url, owners)
    else:
        app = await build_app(Settings(database_path=store.path, broadcast_rate=rate))
        await app.close()
        seed(store.path, owners, channel, outside)
    app = await build_app(store.settings(rate))
    app.broadcasts.channels = (channel,)
    try:
        started = time.perf_counter()
        counts = await app.broadcasts.count(Segment())
        result.count_seconds = time.perf_counter() - started
        assert counts["hi"] + counts["en"] == owners, counts
        segment = Segment(states=("uttar_pradesh", "gujarat"), sectors=("handicrafts",), modules=(("export_ready", "not_passed"),))
        started = time.perf_counter()
        await app.broadcasts.count(segment)
        result.segment_count_seconds = time.perf_counter() - started
        started = time.perf_counter()
        broadcast_id, recipients = await app.broadcasts.start(  # a WhatsApp admin gets no status message to edit
            Plan("module", Segment(), module_id="export_ready"), created_by="bench",
            admin=("telegram", str(ADMIN)) if channel == "telegram" else None,
        )
        result.enqueue_seconds = time.perf_counter() - started
        assert recipients == owners
        return broadcast_id
    finally:
        await app.close()


def outbox_statuses(store: Store, broadcast_id: int) -> dict[str, int]:
    """The broadcast's outbox rows by status."""
    return dict(store.query(
        "SELECT status, COUNT(*) FROM outbox WHERE batch_id = ? AND kind = 'broadcast' GROUP BY status", (broadcast_id,)))


def unknown_chats(store: Store, broadcast_id: int) -> list[str]:
    """Chats whose row a crash left in doubt."""
    rows = store.query("SELECT chat_ref FROM outbox WHERE batch_id = ? AND kind = 'broadcast' AND status = 'unknown'",
                       (broadcast_id,))
    return [str(r[0]) for r in rows]


def whatsapp_rows(store: Store, broadcast_id: int) -> tuple[int, int]:
    """(rows that went as a template, rows whose "delivered" status the bot stored)."""
    return store.query("SELECT COUNT(template), COUNT(*) FILTER (WHERE delivery = 'delivered') FROM outbox "
                       "WHERE batch_id = ? AND kind = 'broadcast'", (broadcast_id,))[0]


async def deliver(api: Any, store: Store, broadcast_id: int, envs: list[dict[str, str]], result: Result,
                  stamps: list[float], settle: Callable[[], Awaitable[None]], tick: Callable[[], None] = lambda: None) -> None:
    """Run one bot process per ``envs`` until the broadcast has no row left to send, SIGKILLing the
    sender ``result.kills`` times evenly spaced (and starting it again); ``settle`` runs before they stop.

    Several processes share a PostgreSQL database: the first is started alone and holds the
    cluster-wide lock before the others start, so they are its standbys; the one SIGKILLed is the
    one that holds the lock then."""
    owners, rate = result.owners, result.rate
    started = time.perf_counter()
    bots: list[BotProcess] = []
    kill_points = [owners * (i + 1) / (result.kills + 1) for i in range(result.kills)]
    result.peak_rss_mb = [0.0] * len(envs)
    peak = list(range(len(envs)))  # the slot of result.peak_rss_mb each process reports to
    killed: float | None = None
    try:
        for n, env in enumerate(envs):
            bots.append(BotProcess("bot", api, store.path, env=env))
            while n == 0 and len(envs) > 1 and await asyncio.to_thread(store.sender) is None:
                await asyncio.sleep(0.1)
        while True:
            await asyncio.sleep(0.25)
            tick()
            for n, bot in enumerate(bots):
                if bot.alive():
                    result.peak_rss_mb[peak[n]] = max(result.peak_rss_mb[peak[n]], bot.memory_mb()[1])
            if killed is not None and stamps and stamps[-1] > killed:
                result.takeover.append(min(s for s in stamps[-2000:] if s > killed) - killed)
                killed = None
            if kill_points and len(stamps) >= kill_points[0]:
                kill_points.pop(0)
                sender = await asyncio.to_thread(store.sender) if len(bots) > 1 else None
                n = next((i for i, env in enumerate(envs) if env.get("PGAPPNAME") == sender), 0)
                result.killed_at.append(len(stamps))
                result.cpu_seconds += bots[n].cpu_seconds()
                bots[n].proc.kill()  # SIGKILL: no cleanup of any kind
                killed = time.perf_counter()  # the clock of the stand-in's stamps
                bots[n].proc.wait()
                await asyncio.sleep(1.0)  # requests that were on the wire land
                result.peak_rss_mb.append(0.0)
                peak[n] = len(result.peak_rss_mb) - 1
                bots[n] = BotProcess("bot", api, store.path, env=envs[n])
                continue
            statuses = await asyncio.to_thread(outbox_statuses, store, broadcast_id)
            if not any(statuses.get(s) for s in ("pending", "claimed", "sending")) and all(b.alive() for b in bots) and stamps:
                result.statuses = statuses
                break
            if time.perf_counter() - started > owners / rate * 3 + 120:
                result.statuses = statuses
                print(f"  gave up waiting: {statuses}", file=sys.stderr)
                break
        await settle()
    finally:
        for bot in bots:
            if bot.alive():
                result.cpu_seconds += bot.cpu_seconds()
            await bot.stop()
    result.wall = (stamps[-1] - stamps[0]) if stamps else 0.0


def tally(result: Result, received: dict[Any, int], stamps: list[float], store: Store, broadcast_id: int,
          key: Callable[[str], Any]) -> None:
    """Delivered, duplicates, missed, the sustained rate, and which rows in doubt had arrived (``key``: chat ref → owner)."""
    result.delivered = len(stamps)
    result.duplicates = sum(1 for n in received.values() if n > 1)
    result.missed = result.owners - len(received)
    result.sustained = sustained_rate(stamps, result.kills)
    doubt = unknown_chats(store, broadcast_id)
    result.in_doubt = len(doubt)
    result.in_doubt_reached = sum(1 for chat in doubt if received.get(key(chat)))


async def run(owners: int, rate: float, kills: int, work: Path, url: str = "", workers: int = 1) -> Result:
    """One run: seed, enqueue, deliver through the bot process(es) (the sender SIGKILLed ``kills`` times);
    with ``url`` on that PostgreSQL database, ``workers`` processes in webhook mode."""
    result = Result(owners, rate, kills, workers=workers, engine="PostgreSQL" if url else "SQLite")
    store = Store(work / f"bench-{owners}-{int(rate)}.sqlite3", url)
    broadcast_id = await prepare(store, owners, rate, result)
    received, stamps, on_owner = owner_counter()

    def on_admin(kind: str, message, at: float) -> None:
        if kind == "edit":
            result.status_edits += 1

    async with BenchStandin(TOKEN, rate_limit=rate) as api:
        watch(api, owners, on_admin, on_owner)
        env = {"BROADCAST_RATE": str(rate), "ADMIN_IDS": str(ADMIN)}
        envs = [env]
        if url:  # webhook mode (no two processes poll one token), each on its own port, as behind a load balancer
            envs = [{**env, "DATABASE_URL": url, "PGAPPNAME": f"worker-{n}", "WEBHOOK_URL": "https://bench.example/telegram",
                     "WEBHOOK_SECRET": "bench-broadcast-secret", "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_PORT": str(free_port())}
                    for n in range(workers)]
        await deliver(api, store, broadcast_id, envs, result, stamps, lambda: asyncio.sleep(3.5),  # one more status edit
                      tick=api.forget_calls)
        result.rejected_429 = api.stats.rejected_429
    tally(result, received, stamps, store, broadcast_id, int)
    return result


def free_port() -> int:
    """A TCP port nothing listens on now (the bot's WhatsApp webhook binds it, again after a restart)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run_whatsapp(owners: int, rate: float, kills: int, work: Path, outside: float, statuses: bool) -> Result:
    """One WhatsApp run: seed WhatsApp owners, enqueue, deliver through a WhatsApp-only bot process."""
    result = Result(owners, rate, kills, channel="whatsapp")
    store = Store(work / f"bench-wa-{owners}-{int(rate)}.sqlite3")
    broadcast_id = await prepare(store, owners, rate, result, "whatsapp", outside)
    received: dict[str, int] = {}
    stamps: list[float] = []

    def on_message(to: str, sent, at: float) -> None:
        received[to] = received.get(to, 0) + 1
        stamps.append(at)
        if sent.kind == "template":
            result.templates += 1

    approved = {t.name: {v.code: v.body for v in t.versions.values()} for t in load_templates().templates.values()}
    async with BenchWhatsApp(rate_limit=rate, watcher=on_message, statuses=statuses, approved=approved) as api:
        for i in range(owners):
            if in_window(i, outside):
                api.window_open(whatsapp_number(i))
        port = free_port()
        api.webhook_url = f"http://127.0.0.1:{port}/whatsapp"
        env = {
            "TELEGRAM_BOT_TOKEN": "", "WHATSAPP_TOKEN": api.token, "WHATSAPP_PHONE_NUMBER_ID": api.phone_number_id,
            "WHATSAPP_APP_SECRET": api.app_secret, "WHATSAPP_VERIFY_TOKEN": "bench-verify", "WHATSAPP_API_BASE_URL": api.base_url,
            "WHATSAPP_PORT": str(port), "WEBHOOK_LISTEN": "127.0.0.1", "WHATSAPP_RATE": str(rate),
        }

        async def last_statuses_land() -> None:
            for _ in range(40 if statuses else 0):
                if api.statuses_pending() == 0:
                    break
                await asyncio.sleep(0.25)
            await asyncio.sleep(1.0)

        await deliver(api, store, broadcast_id, [env], result, stamps, last_statuses_land)
        result.rejected_429 = api.rejected_rate
        result.statuses_posted, result.status_retries = api.statuses_posted, api.status_retries
    tally(result, received, stamps, store, broadcast_id, str)
    _, result.delivered_rows = whatsapp_rows(store, broadcast_id)
    return result


def sustained_rate(stamps: list[float], kills: int) -> float:
    """Messages a second over the middle 90% of the run; the restart gaps are not counted."""
    if len(stamps) < 20:
        return 0.0
    stamps = sorted(stamps)
    low, high = int(len(stamps) * 0.05), int(len(stamps) * 0.95)
    window = stamps[low:high]
    span = window[-1] - window[0]
    if kills:  # leave out the downtime: the gaps much longer than any other
        gaps = sorted(b - a for a, b in zip(window, window[1:]))
        span -= sum(gaps[-kills:])
    return (len(window) - 1) / span if span > 0 else 0.0


def report(r: Result) -> None:
    """Print one run's numbers."""
    n = lambda v: f"{v:,}"  # noqa: E731
    setting = "BROADCAST_RATE" if r.channel == "telegram" else "WHATSAPP_RATE"
    where = f", {r.workers} worker{'s' if r.workers > 1 else ''} on PostgreSQL" if r.engine == "PostgreSQL" else ""
    print(f"\n== {r.channel}{where}: {n(r.owners)} owners at {r.rate:g}/s (stand-in limit {r.rate:g}/s, bot {setting}={r.rate:g})"
          + (" — SIGKILL at " + ", ".join(f"{k:,}" for k in r.killed_at) + " delivered, restarted each time"
             + (" (the sender, each time)" if r.workers > 1 else "") if r.kills else ""))
    print(f"  preview count, all {n(r.owners)} owners:   {r.count_seconds * 1000:8.1f} ms")
    print(f"  preview count, 3-condition segment:   {r.segment_count_seconds * 1000:8.1f} ms")
    print(f"  enqueue (one INSERT … SELECT):        {r.enqueue_seconds * 1000:8.1f} ms")
    print(f"  sustained send rate:                  {r.sustained:8.1f} /s = {r.sustained / r.rate:.1%} of the limit")
    if r.takeover:
        print(f"  SIGKILL to the next message:          " + ", ".join(f"{t:.1f} s" for t in r.takeover)
              + ("  (sent by the standby)" if r.workers > 1 else "  (the restarted process)"))
    print(f"  bot CPU per message:                  {r.cpu_seconds / max(1, r.delivered) * 1000:8.2f} ms  "
          f"({r.cpu_seconds:.1f} s in all, start-up and idle included)")
    print(f"  first to last message:                {r.wall:8.1f} s")
    print(f"  {'429' if r.channel == 'telegram' else '130429'} answers from the stand-in:     {r.rejected_429:8d}")
    if r.channel == "whatsapp":
        print(f"  sent as the template (outside 24 h):  {n(r.templates):>8}")
        print(f"  'delivered' statuses posted / stored: {n(r.statuses_posted):>8} / {n(r.delivered_rows)}"
              f"  (posted again after a refusal: {r.status_retries})")
    print(f"  messages delivered:                   {n(r.delivered):>8}")
    print(f"  duplicates (same owner twice):        {r.duplicates:8d}")
    print(f"  missed owners:                        {r.missed:8d}")
    if r.kills:
        print(f"  rows in doubt after {r.kills} SIGKILL(s):          {r.in_doubt:8d}  (reached the stand-in: {r.in_doubt_reached}, "
              f"did not: {r.in_doubt - r.in_doubt_reached})")
    print(f"  outbox rows by status:                {r.statuses}")
    if r.channel == "telegram":
        print(f"  status message edits:                 {r.status_edits:8d}")
    print("  peak RSS of the bot process:          " + " / ".join(f"{m:.0f} MB" for m in r.peak_rss_mb if m) +
          ("  (each process)" if r.kills else ""))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, help="recipients of one run")
    parser.add_argument("--rate", type=float, default=300.0, help="stand-in limit and BROADCAST_RATE (messages a second)")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the bot halfway and start it again")
    parser.add_argument("--kills", type=int, default=0, help="SIGKILL the bot this many times, evenly spaced")
    parser.add_argument("--full", action="store_true", help="1,00,000 @ 300/s and 3,000 @ 30/s")
    parser.add_argument("--quick", action="store_true", help="3,000 @ 300/s and 750 @ 30/s (the default)")
    parser.add_argument("--whatsapp", action="store_true", help="on WhatsApp alone: 3,000 @ 80/s (--full: 1,00,000)")
    parser.add_argument("--outside", type=float, default=0.2, help="WhatsApp: share of owners outside the 24-hour window")
    parser.add_argument("--no-statuses", action="store_true", help="WhatsApp: post no delivery statuses back")
    parser.add_argument("--postgres", action="store_true", help="Telegram on a throwaway PostgreSQL server, several workers")
    parser.add_argument("--workers", type=int, default=2, help="--postgres: bot processes sharing the database")
    args = parser.parse_args()
    kills = args.kills or int(args.kill)
    if args.whatsapp:
        rate = args.rate if args.rate != parser.get_default("rate") else 80.0
        runs = [(args.owners or (100_000 if args.full else 3_000), rate)]
    elif args.owners:
        runs = [(args.owners, args.rate)]
    elif args.full:
        runs = [(100_000, 300.0), (3_000, 30.0)]
    else:
        runs = [(3_000, 300.0), (750, 30.0)]
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="saathi-bench-") as tmp:
        for owners, rate in runs:
            if args.whatsapp:
                report(await run_whatsapp(owners, rate, kills, Path(tmp), args.outside, not args.no_statuses))
            elif args.postgres:
                from tests.pg_server import PgServer

                server = PgServer().start()
                try:
                    report(await run(owners, rate, kills, Path(tmp), server.new_database(), args.workers))
                finally:
                    server.stop()
            else:
                report(await run(owners, rate, kills, Path(tmp)))


if __name__ == "__main__":
    asyncio.run(main())
