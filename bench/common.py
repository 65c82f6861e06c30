"""Shared benchmark helpers: the machine, the stand-in, the bot as a separate process.

The bot under test always runs in its own process, pointed at a Bot API stand-in served by the
benchmark process, so its CPU time and peak memory are its own: read from ``/proc/<pid>/stat``
(user + system time of every thread, including aiosqlite's) and ``/proc/<pid>/status``
(``VmHWM``, the peak resident set).

Run as a script, this module *is* the bot process (``python bench/common.py bot``): the real
``saathi run`` path, plus ``BENCH_PROFILE=<file>`` to record a cProfile of the whole run for
the benchmark to print. ``python bench/common.py floor`` does the same for ``floor_bot.py``.
The aiogram floor (``bench/aiogram_floor.py``) runs under its own venv's interpreter instead
(``BotProcess(..., argv=...)``) and records its own profile the same way.
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from tests.botapi_standin import BotApiStandin, BotMessage, _TokenBucket  # noqa: E402
from tests.whatsapp_standin import Sent, WhatsAppStandin  # noqa: E402

TOKEN = "123456:BENCH-TOKEN"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Watcher = Callable[[str, BotMessage, float], None]


# ----------------------------------------------------------------- the machine
def machine() -> str:
    """One line naming the hardware and the software versions the numbers were taken on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlite3

    import aiohttp
    import telegram

    return (
        f"{os.cpu_count()} CPU ({model}), Python {platform.python_version()}, "
        f"python-telegram-bot {telegram.__version__}, aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}"
    )


# ----------------------------------------------------------------- the stand-in, watched per chat
class BenchStandin(BotApiStandin):
    """The test stand-in, telling one watcher per chat about every message sent or edited.

    The stand-in's own waiters wake every waiting coroutine on every change, which costs
    O(owners) per request at benchmark scale; a per-chat callback costs O(1).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watchers: dict[int, Watcher] = {}

    def _record(self, chat, message: BotMessage) -> dict[str, Any]:
        result = super()._record(chat, message)
        self._tell("send", message)
        return result

    def _apply_edit(self, message: BotMessage, method: str) -> dict[str, Any]:
        result = super()._apply_edit(message, method)
        self._tell("edit", message)
        return result

    def _tell(self, kind: str, message: BotMessage) -> None:
        watcher = self.watchers.get(message.chat_id)
        if watcher is not None:
            watcher(kind, message, time.perf_counter())

    def forget_calls(self) -> None:
        """Drop the request log (it keeps every request's parameters; the driver never reads it)."""
        self.calls.clear()


# ----------------------------------------------------------------- the Graph API stand-in, rate-limited
class BenchWhatsApp(WhatsAppStandin):
    """The test's Graph API stand-in with the Cloud API's throughput limit, at benchmark scale.

    Past ``rate_limit`` messages a second (a token bucket of one second's worth) a send is refused
    with code 130429 ("Rate limit hit"), as Meta does. Every message accepted is told to
    ``watcher(to, sent, at)`` and then forgotten, not kept (a run sends 1,00,000). With
    ``statuses``, a "delivered" status for each goes back to the webhook as Meta sends it (one
    notification each, a moment later); one the bot did not take (it was down) is posted again.
    """

    def __init__(self, *, rate_limit: float, watcher: Callable[[str, Sent, float], None], statuses: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket = _TokenBucket(rate_limit, max(1.0, rate_limit))
        self.watcher = watcher
        self.rejected_rate = 0
        self.statuses_posted = 0
        self.status_retries = 0
        self._statuses: asyncio.Queue[Sent] | None = asyncio.Queue() if statuses else None
        self._poster: asyncio.Task | None = None

    async def __aenter__(self) -> BenchWhatsApp:
        await super().__aenter__()
        if self._statuses is not None:
            self._poster = asyncio.create_task(self._post_statuses())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._poster is not None:
            self._poster.cancel()
        await super().__aexit__(*exc)

    def statuses_pending(self) -> int:
        """Statuses not yet taken by the bot's webhook."""
        return self._statuses.qsize() if self._statuses is not None else 0

    async def _messages(self, request: web.Request) -> web.Response:
        if self.bucket.take(time.monotonic()):
            self.rejected_rate += 1
            return self._error(400, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.")
        response = await super()._messages(request)
        if response.status == 200:
            sent = self.sent.pop()  # appended just now, with no await in between
            self.watcher(self.person(sent.to), sent, time.perf_counter())
            if self._statuses is not None:
                self._statuses.put_nowait(sent)
        return response

    async def _post_statuses(self) -> None:
        """One "delivered" notification per message, a few at a time; again later if the bot was down."""
        assert self._statuses is not None

        async def one(sent: Sent) -> None:
            try:
                answer = await self.post_statuses([self.status_entry(sent, "delivered")])
            except aiohttp.ClientError:
                answer = 0
            self.status_posts.clear()
            if answer == 200:
                self.statuses_posted += 1
            else:  # Meta retries a webhook it could not deliver
                self.status_retries += 1
                await asyncio.sleep(1.0)
                self._statuses.put_nowait(sent)

        while True:
            batch = [await self._statuses.get()]
            while not self._statuses.empty() and len(batch) < 8:
                batch.append(self._statuses.get_nowait())
            await asyncio.gather(*(one(sent) for sent in batch))


# ----------------------------------------------------------------- the bot process
class BotProcess:
    """A bot (``kind`` "bot" or "floor") running in its own process against ``api``.

    ``argv`` runs another program instead of ``python bench/common.py KIND`` (the aiogram floor:
    its own venv's interpreter and ``bench/aiogram_floor.py``), with the same environment.
    """

    _log = None  # where its stderr goes, when asked for

    def __init__(self, kind: str, api: BotApiStandin, database: Path, *, profile: Path | None = None,
                 env: dict[str, str] | None = None, log: Path | None = None, argv: list[str] | None = None):
        self.kind = kind
        environ = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "DATABASE_PATH": str(database),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        if profile is not None:
            environ["BENCH_PROFILE"] = str(profile)
        self.started = time.perf_counter()
        # cwd: a folder without a .env, so only the settings above apply.
        self._log = open(log, "ab") if log is not None else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv or [sys.executable, str(Path(__file__).resolve()), kind], env=environ, cwd=str(database.parent), stderr=self._log
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far, all threads."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)

    async def stop(self, timeout: float = 20.0) -> int:
        """Stop it the way an operator would (SIGINT: PTB shuts down cleanly)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None


# ----------------------------------------------------------------- numbers
def percentile(sorted_values: list[float], share: float) -> float:
    """The ``share`` (0–1) percentile of already sorted values (nearest rank)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def print_profile(path: Path, top: int = 25) -> None:
    """The top entries of a cProfile dump, by own time and by cumulative time."""
    import pstats

    if not path.exists():
        print(f"  (no profile written to {path})")
        return
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def start_py_spy(pid: int, output: Path, seconds: float) -> subprocess.Popen | None:
    """Sample the bot with py-spy (only threads holding the GIL: Python CPU) for ``seconds``."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("  (py-spy is not installed: pip install py-spy)")
        return None
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250", "--gil",
         "--format", "raw", "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def print_py_spy(path: Path, top: int = 25) -> None:
    """Own time by area and by function, and inclusive time by function, from py-spy's raw output."""
    import collections
    import re

    if not path.exists():
        print(f"  (no py-spy samples in {path})")
        return
    own, inclusive, areas = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        own[frames[-1]] += n
        for frame in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            inclusive[frame] += n
        where = re.search(r"\(([^)]*?)(?::\d+)?\)$", frames[-1])
        file = where.group(1) if where else frames[-1]
        areas[file.split("/")[0] if "/" in file else file] += n
    if not total:
        print("  (no samples)")
        return
    print(f"  {total} samples; own time by package:")
    for name, n in areas.most_common(12):
        print(f"    {100 * n / total:5.1f}%  {name}")
    print("  own time by line:")
    for name, n in own.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {name}")
    print("  inclusive time by function:")
    for name, n in inclusive.most_common(top + 10)[10:]:  # the first ten are the event loop's frames
        print(f"    {100 * n / total:5.1f}%  {name}")


# ----------------------------------------------------------------- the bot side (run as a script)
def _trace_sql(path: str) -> None:
    """Record every distinct SQL statement the bot runs (SQLite's trace callback), written at exit.

    Statements are grouped by template (literals replaced by ?), with a count and one example
    with its values (for EXPLAIN QUERY PLAN). SIGUSR1 starts phase 1: the benchmark sends it
    when start-up is over, so phase 1 is the per-update path.
    """
    import atexit
    import json
    import re

    from bot.storage.db import Database

    literal = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
    seen: dict[tuple[int, str], dict] = {}
    phase = [0]

    def record(sql: str) -> None:
        template = " ".join(literal.sub("?", sql).split())
        entry = seen.get((phase[0], template))
        if entry is None:
            seen[(phase[0], template)] = {"phase": phase[0], "template": template, "example": sql, "count": 1}
        else:
            entry["count"] += 1

    signal.signal(signal.SIGUSR1, lambda *_: phase.__setitem__(0, 1))
    opened = Database.open.__func__

    async def open_traced(cls, *args, **kwargs):
        db = await opened(cls, *args, **kwargs)
        # On aiosqlite's thread, where the connection lives (its own way to run a call there).
        await db.conn._execute(lambda: db.conn._conn.set_trace_callback(record))
        return db

    Database.open = classmethod(open_traced)
    atexit.register(lambda: Path(path).write_text(json.dumps(list(seen.values()), ensure_ascii=False)))


def _run(kind: str) -> None:
    if os.environ.get("BENCH_SQL_TRACE"):
        _trace_sql(os.environ["BENCH_SQL_TRACE"])
    profile_path = os.environ.get("BENCH_PROFILE")
    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        if kind == "floor":
            from bench.floor_bot import run

            run()
        else:
            import logging

            from bot.runtime import run as run_bot
            from bot.config import Settings

            settings = Settings.from_env(env_file=None)
            logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            run_bot(settings)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)


if __name__ == "__main__":
    _run(sys.argv[1] if len(sys.argv) > 1 else "bot")
