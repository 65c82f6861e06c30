"""A broadcast while another process keeps locking the database: every row once, and the admins told.

    .venv/bin/python bench/faults.py                        # 3,000 owners @ 100/s, a 2 s lock every 10 s
    .venv/bin/python bench/faults.py --owners 20000 --rate 300 --lock 3 --every 8

The real bot runs as a separate process (``bench/common.py bot``, ``saathi run``'s path) with
DB_BUSY_TIMEOUT=0.5, so any write that waits longer than half a second for the lock fails with
"database is locked". Meanwhile this process opens the same SQLite file and holds a write lock
(``BEGIN EXCLUSIVE``) for ``--lock`` seconds every ``--every`` seconds, as a backup script, a
migration or an operator's ``sqlite3`` shell would.

Printed: the machine; the lock episodes; owners who got the broadcast once, twice or not at
all; outbox rows by status; how often the supervisor restarted a worker (from the bot's log);
what the admin was told ("keeps failing" / "works again"); how long after each lock was released
the next message went out (the restart backoff, 1 s doubling); sends a second outside the locks.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.broadcast import ADMIN, Result, outbox_statuses, owner_counter, prepare, watch  # noqa: E402
from bench.common import TOKEN, BenchStandin, BotProcess, machine  # noqa: E402
from bot.runtime import HEALTHY_AFTER  # noqa: E402


def hold_locks(db_path: Path, hold: float, every: float, stop: threading.Event, episodes: list[tuple[float, float]]) -> None:
    """Every ``every`` seconds take the write lock for ``hold`` seconds, until ``stop``."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        while not stop.wait(every - hold):
            conn.execute("BEGIN EXCLUSIVE")
            taken = time.perf_counter()
            stop.wait(hold)
            conn.execute("COMMIT")
            episodes.append((taken, time.perf_counter()))
    finally:
        conn.close()


async def run(owners: int, rate: float, hold: float, every: float, work: Path) -> None:
    db_path = work / "faults.sqlite3"
    broadcast_id = await prepare(db_path, owners, rate, Result(owners, rate, 0))
    received, stamps, on_owner = owner_counter()
    told: list[str] = []

    def on_admin(kind: str, message, at: float) -> None:
        if kind == "send" and "background task" in (message.text or ""):
            told.append(message.text)

    log_path = work / "bot.log"
    episodes: list[tuple[float, float]] = []
    stop = threading.Event()
    async with BenchStandin(TOKEN, rate_limit=rate) as api:
        watch(api, owners, on_admin, on_owner)
        env = {"BROADCAST_RATE": str(rate), "ADMIN_IDS": str(ADMIN), "DB_BUSY_TIMEOUT": "0.5"}
        started = time.perf_counter()
        bot = BotProcess("bot", api, db_path, env=env, log=log_path)
        locker = threading.Thread(target=hold_locks, args=(db_path, hold, every, stop, episodes), daemon=True)
        locker.start()
        statuses: dict[str, int] = {}
        try:
            while time.perf_counter() - started < owners / rate * 4 + 120:
                await asyncio.sleep(0.5)
                api.forget_calls()
                try:
                    statuses = await asyncio.to_thread(outbox_statuses, db_path, broadcast_id)
                except sqlite3.OperationalError:
                    continue
                if stamps and not any(statuses.get(s) for s in ("pending", "claimed", "sending")):
                    break
            else:
                print(f"  gave up waiting: {statuses}", file=sys.stderr)
            stop.set()
            locker.join()
            if any("keeps failing" in t for t in told):
                await asyncio.sleep(HEALTHY_AFTER + 3)  # the supervisor's "works again" after a quiet spell
        finally:
            stop.set()
            await bot.stop()
    log = log_path.read_text(errors="replace")
    restarts = re.findall(r"worker (\S+) failed", log)
    stamps.sort()
    resume = []
    for _, released in episodes:
        after = [s for s in stamps if s >= released]
        if after and after[0] - released < every:
            resume.append(after[0] - released)
    free = [s for s in stamps if not any(a - 0.05 <= s <= b + 5 for a, b in episodes)]
    per_second = 0.0
    if len(free) > 1:
        gaps = sum(min(b - a, 0.5) for a, b in zip(free, free[1:]))
        per_second = (len(free) - 1) / gaps if gaps else 0.0
    n = lambda v: f"{v:,}"  # noqa: E731
    print(f"\n== {n(owners)} owners at {rate:g}/s, DB_BUSY_TIMEOUT=0.5 s, the write lock held {hold:g} s every {every:g} s")
    print(f"  lock episodes:                        {len(episodes):8d}")
    print(f"  owners who got it once:               {n(sum(1 for v in received.values() if v == 1)):>8}")
    print(f"  owners who got it twice or more:      {sum(1 for v in received.values() if v > 1):8d}")
    print(f"  owners missed:                        {owners - len(received):8d}")
    print(f"  outbox rows by status:                {statuses}")
    print(f"  worker restarts (bot log):            {len(restarts):8d}  {dict((w, restarts.count(w)) for w in set(restarts))}")
    print(f"  admin told 'keeps failing':           {sum(1 for t in told if 'keeps failing' in t):8d}")
    print(f"  admin told 'works again':             {sum(1 for t in told if 'works again' in t):8d}")
    if resume:
        print(f"  lock released → next message:         {min(resume):8.2f} – {max(resume):.2f} s")
    print(f"  send rate outside the locks:          {per_second:8.1f} /s")
    print(f"  first to last message:                {(stamps[-1] - stamps[0]) if stamps else 0:8.1f} s")
    print(f"  bot log lines at ERROR:               {log.count(' ERROR '):8d}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0, help="stand-in limit and BROADCAST_RATE")
    parser.add_argument("--lock", type=float, default=2.0, help="seconds the other process holds the write lock")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between the starts of two locks")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="saathi-faults-") as tmp:
        await run(args.owners, args.rate, args.lock, args.every, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
