"""Broadcast delivery at Telegram's limit: rate, exactly-once, memory, also across a SIGKILL.

    .venv/bin/python bench/broadcast.py                  # --quick: 3,000 @ 300/s and 750 @ 30/s, < 1 min
    .venv/bin/python bench/broadcast.py --full           # 1,00,000 @ 300/s and 3,000 @ 30/s
    .venv/bin/python bench/broadcast.py --owners 20000 --rate 300 [--kill]
    .venv/bin/python bench/broadcast.py --full --kill    # SIGKILL the bot halfway, start it again

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import TOKEN, BenchStandin, BotProcess, machine  # noqa: E402
from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.core.segments import Segment  # noqa: E402
from bot.services.broadcast import Plan  # noqa: E402

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


def seed(path: Path, owners: int) -> None:
    """``owners`` owners (70% Hindi) who gave consent and finished onboarding, in one transaction."""
    rng = random.Random(11)
    now = int(time.time())
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO users (channel, user_ref, lang, state, profile, consent, consent_at, onboarded_at, first_seen_at, last_seen_at) "
            "VALUES ('telegram', ?, ?, '{\"flow\": \"menu\", \"step\": \"\", \"seq\": 1}', ?, 'given', ?, ?, ?, ?)",
            (
                (
                    str(FIRST_OWNER + i), "hi" if rng.random() < 0.7 else "en",
                    json.dumps({"state": rng.choice(STATES), "sector": rng.choice(SECTORS)}), now, now, now, now,
                )
                for i in range(owners)
            ),
        )
    conn.close()


async def prepare(db_path: Path, owners: int, rate: float, result: Result) -> int:
    """Migrate and seed the database, time the preview counts, create the broadcast; its id."""
    app = await build_app(Settings(database_path=db_path, broadcast_rate=rate))
    await app.close()
    seed(db_path, owners)
    app = await build_app(Settings(database_path=db_path, broadcast_rate=rate))
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
        broadcast_id, recipients = await app.broadcasts.start(
            Plan("module", Segment(), module_id="export_ready"), created_by="bench", admin=("telegram", str(ADMIN))
        )
        result.enqueue_seconds = time.perf_counter() - started
        assert recipients == owners
        return broadcast_id
    finally:
        await app.close()


def outbox_statuses(db_path: Path, broadcast_id: int) -> dict[str, int]:
    """The broadcast's outbox rows by status (read while the bot writes: WAL allows it)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT status, COUNT(*) FROM outbox WHERE batch_id = ? AND kind = 'broadcast' GROUP BY status", (broadcast_id,)
        ).fetchall()
        return dict(rows)
    finally:
        conn.close()


def unknown_chats(db_path: Path, broadcast_id: int) -> list[int]:
    """Chats whose row a crash left in doubt."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT chat_ref FROM outbox WHERE batch_id = ? AND kind = 'broadcast' AND status = 'unknown'", (broadcast_id,)
        ).fetchall()
        return [int(r[0]) for r in rows]
    finally:
        conn.close()


async def run(owners: int, rate: float, kills: int, work: Path) -> Result:
    """One run: seed, enqueue, deliver through the bot process (SIGKILLed ``kills`` times)."""
    result = Result(owners, rate, kills)
    db_path = work / f"bench-{owners}-{int(rate)}.sqlite3"
    broadcast_id = await prepare(db_path, owners, rate, result)
    received, stamps, on_owner = owner_counter()

    def on_admin(kind: str, message, at: float) -> None:
        if kind == "edit":
            result.status_edits += 1

    async with BenchStandin(TOKEN, rate_limit=rate) as api:
        watch(api, owners, on_admin, on_owner)
        env = {"BROADCAST_RATE": str(rate), "ADMIN_IDS": str(ADMIN)}
        started = time.perf_counter()
        bot = BotProcess("bot", api, db_path, env=env)
        kill_points = [owners * (i + 1) / (kills + 1) for i in range(kills)]
        try:
            while True:
                await asyncio.sleep(0.25)
                api.forget_calls()
                if bot.alive():
                    result.peak_rss_mb[-1:] = [bot.memory_mb()[1]] if result.peak_rss_mb else [bot.memory_mb()[1]]
                if kill_points and len(stamps) >= kill_points[0]:
                    kill_points.pop(0)
                    result.killed_at.append(len(stamps))
                    result.cpu_seconds += bot.cpu_seconds()
                    bot.proc.kill()  # SIGKILL: no cleanup of any kind
                    bot.proc.wait()
                    await asyncio.sleep(1.0)  # requests that were on the wire land
                    result.peak_rss_mb.append(0.0)
                    bot = BotProcess("bot", api, db_path, env=env)
                    continue
                statuses = await asyncio.to_thread(outbox_statuses, db_path, broadcast_id)
                if not any(statuses.get(s) for s in ("pending", "claimed", "sending")) and bot.alive() and stamps:
                    result.statuses = statuses
                    break
                if time.perf_counter() - started > owners / rate * 3 + 120:
                    result.statuses = statuses
                    print(f"  gave up waiting: {statuses}", file=sys.stderr)
                    break
            await asyncio.sleep(3.5)  # one more status edit
        finally:
            if bot.alive():
                result.cpu_seconds += bot.cpu_seconds()
            await bot.stop()
        result.wall = (stamps[-1] - stamps[0]) if stamps else 0.0
        result.rejected_429 = api.stats.rejected_429
    result.delivered = len(stamps)
    result.duplicates = sum(1 for n in received.values() if n > 1)
    result.missed = owners - len(received)
    result.sustained = sustained_rate(stamps, kills)
    doubt = unknown_chats(db_path, broadcast_id)
    result.in_doubt = len(doubt)
    result.in_doubt_reached = sum(1 for chat in doubt if received.get(chat))
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
    print(f"\n== {n(r.owners)} owners at {r.rate:g}/s (stand-in limit {r.rate:g}/s, bot BROADCAST_RATE={r.rate:g})"
          + (" — SIGKILL at " + ", ".join(f"{k:,}" for k in r.killed_at) + " delivered, restarted each time" if r.kills else ""))
    print(f"  preview count, all {n(r.owners)} owners:   {r.count_seconds * 1000:8.1f} ms")
    print(f"  preview count, 3-condition segment:   {r.segment_count_seconds * 1000:8.1f} ms")
    print(f"  enqueue (one INSERT … SELECT):        {r.enqueue_seconds * 1000:8.1f} ms")
    print(f"  sustained send rate:                  {r.sustained:8.1f} /s = {r.sustained / r.rate:.1%} of the limit")
    print(f"  bot CPU per message:                  {r.cpu_seconds / max(1, r.delivered) * 1000:8.2f} ms  "
          f"({r.cpu_seconds:.1f} s in all, start-up and idle included)")
    print(f"  first to last message:                {r.wall:8.1f} s")
    print(f"  429 answers from the stand-in:        {r.rejected_429:8d}")
    print(f"  messages delivered:                   {n(r.delivered):>8}")
    print(f"  duplicates (same owner twice):        {r.duplicates:8d}")
    print(f"  missed owners:                        {r.missed:8d}")
    if r.kills:
        print(f"  rows in doubt after {r.kills} SIGKILL(s):          {r.in_doubt:8d}  (reached the stand-in: {r.in_doubt_reached}, "
              f"did not: {r.in_doubt - r.in_doubt_reached})")
    print(f"  outbox rows by status:                {r.statuses}")
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
    args = parser.parse_args()
    if args.owners:
        runs = [(args.owners, args.rate)]
    elif args.full:
        runs = [(100_000, 300.0), (3_000, 30.0)]
    else:
        runs = [(3_000, 300.0), (750, 30.0)]
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="saathi-bench-") as tmp:
        for owners, rate in runs:
            report(await run(owners, rate, args.kills or int(args.kill), Path(tmp)))


if __name__ == "__main__":
    asyncio.run(main())
