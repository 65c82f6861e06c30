"""Several bot processes on one PostgreSQL database, in Telegram webhook mode, one of them SIGKILLed every few seconds.

    .venv/bin/python bench/cluster.py                      # 200 owners, 2 workers, a SIGKILL every 4 s
    .venv/bin/python bench/cluster.py --owners 1000 --workers 3 --kill-every 3

A throwaway PostgreSQL server (``tests/pg_server.py``) holds the one database. N workers run the
real ``saathi run`` path (``bench/common.py bot``) in webhook mode, each on its own port. The Bot
API stand-in plays Telegram: each update an owner sends goes to a random live worker (POST with
the secret token, as Telegram does), a share of them (``--twice``) to a second worker as well,
and an update a worker did not take (it was down) is sent again to another. Updates of one chat
are delivered one at a time, in order, as Telegram does. Owners go through onboarding and the
first module's lessons and quiz (the driver of ``bench/conversations.py``); every ``--kill-every``
seconds a random worker is SIGKILLed and started again a second later.

Printed: the machine; updates sent (distinct, and deliveries in all); turns the database saved
(``users.turns`` summed: each update must be exactly one turn, so any difference is a lost or
a doubled turn); owners who finished, and stalled ones; quiz answers stored (five per owner);
reply latency p50/p99; workers' CPU per update (all processes, the killed ones included) and the
PostgreSQL server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench.common import TOKEN, BenchStandin, BotProcess, machine, percentile  # noqa: E402
from bench.conversations import NAMES, Owner, Result, _run_owner, plan  # noqa: E402
from bot.content import load_content  # noqa: E402
from tests.pg_server import PgServer  # noqa: E402

SECRET = "bench-cluster-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ClusterStandin(BenchStandin):
    """The stand-in as Telegram in webhook mode: updates are POSTed to the workers, not polled."""

    def __init__(self, *args: Any, twice: float = 0.05, seed: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ports: dict[int, bool] = {}  # worker port -> believed up
        self.twice = twice
        self.rng = random.Random(seed)
        self.deliveries = 0
        self.redeliveries = 0
        self.sent_updates: set[int] = set()
        self.per_chat: dict[int, int] = defaultdict(int)  # updates sent per chat
        self._queues: dict[int, asyncio.Queue] = {}
        self._tasks: list[asyncio.Task] = []
        self._http: aiohttp.ClientSession | None = None

    def _enqueue(self, update: dict[str, Any]) -> int:
        update_id = update.get("update_id")
        if update_id is None:
            update_id = update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self.sent_updates.add(update_id)
        chat = (update.get("message") or update.get("callback_query", {}).get("message") or {}).get("chat", {}).get("id", 0)
        self.per_chat[chat] += 1
        queue = self._queues.get(chat)
        if queue is None:
            queue = self._queues[chat] = asyncio.Queue()
            self._tasks.append(asyncio.create_task(self._deliver_chat(queue)))
        queue.put_nowait(update)
        return update_id

    async def _deliver_chat(self, queue: asyncio.Queue) -> None:
        while True:
            update = await queue.get()
            body = json.dumps(update).encode()
            first = await self._post_somewhere(body, avoid=None)
            if self.rng.random() < self.twice:  # Telegram sends some updates again
                self.redeliveries += 1
                await self._post_somewhere(body, avoid=first)

    async def _post_somewhere(self, body: bytes, avoid: int | None) -> int:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        while True:
            ports = [p for p in self.ports if p != avoid] or list(self.ports)
            port = self.rng.choice(ports)
            try:
                async with self._http.post(f"http://127.0.0.1:{port}/telegram", data=body,
                                           headers={"Content-Type": "application/json",
                                                    "X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                    answer = await response.read()
                    self.deliveries += 1
                    if response.status == 200:
                        await self._webhook_method(answer)  # a tap's answer comes in the 200, as Telegram takes it
                        return port
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
            await asyncio.sleep(0.05)  # that worker is down: Telegram tries again (here: another one)

    async def close_delivery(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._http is not None:
            await self._http.close()


async def wait_listening(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return True
        except OSError:
            await asyncio.sleep(0.05)
    return False


async def run(owners_count: int, workers: int, kill_every: float, twice: float, stall: float, seed: int, work: Path) -> None:
    server = PgServer().start()
    try:
        url = server.new_database()
        content = load_content()
        result = Result("cluster")
        async with ClusterStandin(TOKEN, twice=twice, seed=seed) as api:
            rng = random.Random(seed)
            owners = []
            for index in range(owners_count):
                uid = 6_000_000 + index
                lang = rng.choice(("hi", "en"))
                api.add_user(uid, first_name=rng.choice(NAMES).split()[0], language_code=lang)
                owner_rng = random.Random(f"{seed}:{uid}")
                owners.append(Owner(uid, lang, plan(content, lang, owner_rng), owner_rng))
                api.watchers[uid] = owners[-1].seen
            ports = [free_port() for _ in range(workers)]

            def env(port: int) -> dict[str, str]:
                return {"DATABASE_URL": url, "WEBHOOK_URL": "https://bench.example/telegram", "WEBHOOK_SECRET": SECRET,
                        "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_PORT": str(port), "LOG_LEVEL": "WARNING"}

            procs: dict[int, BotProcess] = {}
            cpu_done = 0.0
            for n, port in enumerate(ports):
                procs[port] = BotProcess("bot", api, work / "unused.sqlite3", env=env(port), log=work / f"worker-{n}.log")
                if n == 0:  # the first one migrates; the others start on the migrated schema (any order works)
                    assert await wait_listening(port, time.monotonic() + 60), "worker did not start"
            for port in ports:
                assert await wait_listening(port, time.monotonic() + 60), "worker did not start"
                api.ports[port] = True
            server_before = server.cpu_seconds()
            kills = 0
            stop = asyncio.Event()

            async def killer() -> None:
                nonlocal kills, cpu_done
                krng = random.Random(seed + 1)
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), kill_every)
                        return
                    except asyncio.TimeoutError:
                        pass
                    port = krng.choice(ports)
                    proc = procs[port]
                    cpu_done += proc.cpu_seconds()
                    proc.proc.kill()  # SIGKILL: no cleanup of any kind
                    proc.proc.wait()
                    kills += 1
                    await asyncio.sleep(1.0)
                    procs[port] = BotProcess("bot", api, work / "unused.sqlite3", env=env(port), log=work / "restarts.log")

            started = time.perf_counter()
            kill_task = asyncio.create_task(killer())
            try:
                await asyncio.gather(*(_run_owner(api, owner, result, floor=False, stall=stall, think=0.0) for owner in owners))
                stop.set()
                await kill_task
                result.seconds = time.perf_counter() - started
                await asyncio.sleep(2.0)  # the last replies' rows are deleted, the last turns committed
            finally:
                stop.set()
                kill_task.cancel()
                for proc in procs.values():
                    if proc.alive():
                        cpu_done += proc.cpu_seconds()
                    await proc.stop()
                await api.close_delivery()
            server_cpu = server.cpu_seconds() - server_before

        import psycopg

        with psycopg.connect(url) as conn:
            turns = conn.execute("SELECT COALESCE(SUM(turns), 0) FROM users").fetchone()[0]
            finished = conn.execute("SELECT COUNT(DISTINCT user_id) FROM events WHERE kind = 'quiz_finished'").fetchone()[0]
            answers = conn.execute("SELECT COUNT(*) FROM quiz_answers").fetchone()[0]
            per_owner = conn.execute("SELECT user_id, COUNT(*) FROM quiz_answers GROUP BY 1").fetchall()
            seen = conn.execute("SELECT COUNT(*) FROM seen_updates").fetchone()[0]
            left = conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY 1").fetchall()
            turns_of = dict(conn.execute("SELECT user_ref, turns FROM users").fetchall())
        stalled = [o for o in owners if o.stalled]
        updates = len(api.sent_updates)
        lat = sorted(result.latencies)
        print(f"\n== {owners_count} owners, {workers} workers on PostgreSQL, webhook mode, "
              f"a SIGKILL every {kill_every:g} s ({kills} in all)")
        print(f"  updates sent:                       {updates:,} ({api.deliveries:,} deliveries, "
              f"{api.redeliveries:,} sent twice on purpose)")
        print(f"  turns saved:                        {turns:,}  (lost or doubled: {updates - turns:+,})")
        print(f"  update ids recorded as handled:     {seen:,}")
        print(f"  owners who finished the quiz:       {finished:,} of {owners_count:,}; stalled: {len(stalled)}")
        odd = [n for _, n in per_owner if n != 5]
        print(f"  quiz answers stored:                {answers:,} ({len(odd)} owner(s) with other than 5)")
        print(f"  reply latency:                      p50 {1000 * percentile(lat, 0.5):,.0f} ms, "
              f"p99 {1000 * percentile(lat, 0.99):,.0f} ms, over {result.seconds:.1f} s")
        print(f"  workers' CPU:                       {1000 * cpu_done / max(updates, 1):.2f} ms/update (all processes)")
        print(f"  PostgreSQL server CPU:              {1000 * server_cpu / max(updates, 1):.2f} ms/update")
        print(f"  outbox left:                        {dict(left) or 'empty'}")
        differ = {ref: (n, api.per_chat.get(int(ref), 0)) for ref, n in turns_of.items() if n != api.per_chat.get(int(ref), 0)}
        print(f"  owners whose turns differ from their updates: {len(differ)} {dict(list(differ.items())[:5])}")
        for owner in stalled[:5]:
            print(f"    stalled: owner {owner.uid} after {owner.done} updates: {owner.stalled}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between SIGKILLs of a random worker")
    parser.add_argument("--twice", type=float, default=0.05, help="share of updates delivered to a second worker too")
    parser.add_argument("--stall", type=float, default=60.0, help="seconds without the expected reply before an owner counts as stalled")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="saathi-cluster-") as tmp:
        asyncio.run(run(args.owners, args.workers, args.kill_every, args.twice, args.stall, args.seed, Path(tmp)))


if __name__ == "__main__":
    main()
