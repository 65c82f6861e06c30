"""Many owners at once: Export Saathi against a bare python-telegram-bot bot and a bare aiogram 3 bot, same driver, same run.

    .venv/bin/python bench/conversations.py                 # 500 owners (the issue's target)
    .venv/bin/python bench/conversations.py --quick         # 100 owners, a minute or two
    .venv/bin/python bench/conversations.py --profile       # also print each bot's cProfile top entries
    .venv/bin/python bench/conversations.py --only aiogram  # one side (bot, floor, aiogram; or a list: bot,aiogram)
    .venv/bin/python bench/conversations.py --quick --only bot --postgres  # the bot on PostgreSQL, and the server's CPU
    .venv/bin/python bench/conversations.py --webhook --only bot,aiogram   # updates POSTed to a webhook, not long-polled

A Bot API stand-in runs in this process on 127.0.0.1; the bot runs in its own process, pointed
at it. N simulated owners start at the same moment and go through onboarding and the first
training module (lessons and quiz) like people do: each reads what the bot sent to it, then taps
one of the buttons or types an answer (sometimes typing where it could tap, sharing the
contact or typing the number), and waits for the bot's next question. The plan comes from the
shipped content, so the driver follows the flow as it changes.

Printed per bot: updates handled per second; reply latency p50/p95/p99, from the update being
queued at the stand-in to the arrival of the message the owner was waiting for (the next
question); the bot process's CPU milliseconds per update and peak RSS; stalled owners (no
expected reply within ``--stall`` seconds) and refusals by the stand-in.

Then the two floors are driven by the same driver with the same owners: the PTB floor
(``bench/floor_bot.py``: one message with two buttons per update, stores nothing, PTB's default
httpx transport) and the aiogram floor (``bench/aiogram_floor.py``: the same bot on aiogram 3's
defaults, run by ``bench/.venv-aiogram``'s interpreter; the venv is created with this Python and
``aiogram==3.*`` installed from PyPI on first use, so aiogram never becomes a dependency of the
bot). A table of every side and the ratios follow: against the aiogram floor (issue 17: CPU per
update and p99 each ≤ 1.0, peak RSS under 60 MB at 500 owners) and against the PTB floor (each
≤ 0.5). The sides run one after the other, and the stand-in and the driver share the machine
with the bot, so compare the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    TOKEN,
    BenchStandin,
    BotProcess,
    machine,
    percentile,
    print_profile,
    print_py_spy,
    start_py_spy,
)
from bench.aiogram_floor import ensure_venv  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.core.content import Content, Step  # noqa: E402
from tests.botapi_standin import BotMessage  # noqa: E402

# The sides, in the order they run: the bot, then the floors (driven alike, see Owner.button).
KINDS = ("bot", "floor", "aiogram")
FLOORS = ("floor", "aiogram")
TITLES = {"bot": "Export Saathi", "floor": "floor (bare PTB, httpx)", "aiogram": "floor (bare aiogram 3)"}
SHORT = {"bot": "Export Saathi", "floor": "PTB floor", "aiogram": "aiogram floor"}

NAMES = ("Sunita Devi", "रमेश कुमार", "Asha", "Mohd. Irfan", "प्रिया शर्मा", "Gurpreet Singh", "Lakshmi", "Anil")
BUSINESSES = ("Sunita Brass Crafts", "Sharma & Sons", "श्री गणेश हैंडलूम", "Irfan Leather Works", "Kaveri Spices", "Desai <Tools>")
DISTRICTS = ("Moradabad", "Tiruppur", "Surat", "जयपुर", "Kanpur", "Ludhiana", "Kochi")


@dataclass(frozen=True)
class Action:
    """One thing an owner does, and what tells it the bot has answered.

    ``kind``: "text" (type ``value``), "tap" (tap the button the selector ``value`` picks on the
    message on screen), "contact" (share ``value`` as the own contact). ``expect``: "new" (the
    next message), "buttons" (the next message with inline buttons), "contact" (the next message
    with a reply keyboard), "edit" (the message on screen is redrawn).
    """

    kind: str
    value: str
    expect: str


def _expect_for(step: Step | None) -> str:
    if step is None:
        return "buttons"  # after the summary: the module menu
    if step.kind == "text":
        return "new"
    if step.kind == "phone":
        return "contact"
    return "buttons"


def plan(content: Content, lang: str, rng: random.Random) -> list[Action]:
    """What one owner will do: onboarding step by step, then the first module to its quiz's end."""
    flow = content.onboarding
    actions = [Action("text", "/start", "buttons")]
    step: Step | None = flow.step(flow.first)
    while step is not None:
        following = flow.step(step.next) if step.next else None
        expect = _expect_for(following)
        if step.id == "language":
            actions.append(Action("tap", lang, expect))
        elif step.kind == "consent":
            actions.append(Action("tap", "yes", expect))
        elif step.kind == "text":
            pool = {"owner_name": NAMES, "business_name": BUSINESSES, "district": DISTRICTS}.get(step.field, NAMES)
            actions.append(Action("text", rng.choice(pool), expect))
        elif step.kind == "choice":
            option = rng.choice(step.options)
            if rng.random() < 0.25:  # people type too: the option's name as they know it, or its number
                typed = str(step.options.index(option) + 1) if option.amounts else rng.choice((option.label, *option.aliases))
                actions.append(Action("text", typed, expect))
            else:
                actions.append(Action("tap", option.id, expect))
        elif step.kind == "multi":
            for option in rng.sample(step.options[:-1], rng.randint(1, 2)):
                actions.append(Action("tap", "t." + option.id, "edit"))
            actions.append(Action("tap", "done", expect))
        elif step.kind == "phone":
            number = f"9{rng.randrange(10**8, 10**9)}"
            actions.append(Action("contact", "+91" + number, expect) if rng.random() < 0.7 else Action("text", number, expect))
        elif step.kind == "summary":
            actions.append(Action("tap", "confirm", "buttons"))
        step = following
    module = next(m for m in content.modules if not m.requires)
    actions.append(Action("tap", "go:" + module.id, "buttons"))
    actions += [Action("tap", "next", "buttons") for _ in module.lessons]  # the last one starts the quiz
    actions += [Action("tap", "a.*", "buttons") for _ in module.quiz]
    return actions


@dataclass
class Owner:
    """One simulated owner: a chat, a plan, and the reply being waited for."""

    uid: int
    lang: str
    actions: list[Action]
    rng: random.Random
    on_screen: BotMessage | None = None
    waiting: asyncio.Future | None = None
    expect: str = "new"
    edited_id: int = 0
    done: int = 0
    stalled: str = ""

    def seen(self, kind: str, message: BotMessage, at: float) -> None:
        """The stand-in recorded a message for this chat (called synchronously)."""
        waiting = self.waiting
        if waiting is None or waiting.done():
            return
        expect = self.expect
        if kind == "edit":
            ok = expect == "edit" and message.message_id == self.edited_id
        elif expect == "buttons":
            ok = bool(message.buttons)
        elif expect == "contact":
            ok = bool(message.keyboard)
        else:
            ok = expect == "new"
        if ok:
            waiting.set_result((message, at))

    def button(self, selector: str, floor: bool) -> str | None:
        """The callback data of the button this owner taps on the message on screen."""
        buttons = [data for _, data in (self.on_screen.buttons if self.on_screen else ()) if data]
        if floor or selector == "a.*":
            choices = buttons if floor else [d for d in buttons if ":a." in d]
            return self.rng.choice(choices) if choices else None
        if selector.startswith("go:"):
            return selector if selector in buttons else None
        return next((d for d in buttons if d.endswith(":" + selector)), None)


@dataclass
class Result:
    """What one bot did under the driver."""

    name: str
    updates: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    rss_peak: float = 0.0
    rss_now: float = 0.0
    stalled: list[str] = field(default_factory=list)
    refusals: list = field(default_factory=list)
    requests: int = 0
    driver_cpu: float = 0.0
    startup: float = 0.0
    finished: str = ""

    def ms_per_update(self) -> float:
        return 1000 * self.cpu / self.updates if self.updates else float("nan")

    def p(self, share: float) -> float:
        return 1000 * percentile(self.latencies, share)


async def drive(
    kind: str,
    owners_count: int,
    *,
    seed: int,
    stall: float,
    think: float,
    workdir: Path,
    profile: Path | None,
    env: dict[str, str] | None = None,
    py_spy: Path | None = None,
    py_spy_seconds: float = 20,
    argv: list[str] | None = None,
    webhook: bool = False,
) -> Result:
    """Start the stand-in and the bot ``kind`` (``argv``: its command, when not bench/common.py),
    run every owner to the end, measure. ``webhook``: updates are POSTed to the bot's webhook
    server (as Telegram does once a webhook is set) instead of long-polled."""
    content = load_content()
    floor = kind in FLOORS
    result = Result(TITLES[kind])
    async with BenchStandin(TOKEN) as api:
        rng = random.Random(seed)
        owners = []
        for index in range(owners_count):
            uid = 5_000_000 + index
            lang = rng.choice(("hi", "en"))
            api.add_user(uid, first_name=rng.choice(NAMES).split()[0], language_code=lang)
            owner_rng = random.Random(f"{seed}:{uid}")
            owners.append(Owner(uid, lang, plan(content, lang, owner_rng), owner_rng))
            api.watchers[uid] = owners[-1].seen
        database = workdir / f"{kind}.sqlite3"
        hook = ""
        if webhook:
            port = free_port()
            hook = f"127.0.0.1:{port}/telegram"
            # https in the setting (Telegram calls nothing else; TLS ends at a proxy in front), plain HTTP here
            env = {**(env or {}), "WEBHOOK_URL": f"https://{hook}", "WEBHOOK_SECRET": WEBHOOK_SECRET,
                   "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_PORT": str(port)}
        bot = BotProcess(kind, api, database, profile=profile, env=env, argv=argv)
        try:
            # the bot is up: polling, or its webhook set
            while not (api.webhook_url if webhook else any(name == "getUpdates" for name, _ in api.calls)):
                if not bot.alive():
                    raise SystemExit(f"the {kind} process exited with {bot.proc.returncode}")
                await asyncio.sleep(0.02)
            if webhook:
                api.deliver_by_webhook(f"http://{hook}", WEBHOOK_SECRET)
            result.startup = time.perf_counter() - bot.started
            await asyncio.sleep(0.3)  # let start-up work (command menu …) finish before measuring
            api.forget_calls()
            spy = start_py_spy(bot.pid, py_spy, py_spy_seconds) if py_spy else None
            requests_before = api.stats.requests
            cpu_before, driver_before = bot.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(_run_owner(api, owner, result, floor=floor, stall=stall, think=think) for owner in owners))
            result.seconds = time.perf_counter() - started
            result.cpu = bot.cpu_seconds() - cpu_before
            result.driver_cpu = time.process_time() - driver_before
            result.rss_now, result.rss_peak = bot.memory_mb()
            result.requests = api.stats.requests - requests_before - sum(1 for name, _ in api.calls if name == "getUpdates")
            result.refusals = list(api.refusals)
            if spy is not None:
                spy.wait()
        finally:
            await bot.stop()
    if not floor:
        result.finished = _finished(database, (env or {}).get("DATABASE_URL", ""))
    result.stalled = [f"owner {o.uid} ({o.lang}) after {o.done} updates: {o.stalled}" for o in owners if o.stalled]
    result.latencies.sort()
    return result


WEBHOOK_SECRET = "bench-webhook-secret"


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on just now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _finished(database: Path, url: str = "") -> str:
    """What the bot stored: owners onboarded and quizzes finished (the driver was not confused)."""
    import sqlite3

    if url:
        import psycopg

        connect = lambda: psycopg.connect(url)  # noqa: E731
    else:
        connect = lambda: sqlite3.connect(database)  # noqa: E731
    with connect() as conn:
        onboarded = conn.execute("SELECT COUNT(*) FROM users WHERE onboarded_at IS NOT NULL").fetchone()[0]
        quizzes = conn.execute("SELECT COUNT(DISTINCT user_id) FROM events WHERE kind = 'quiz_finished'").fetchone()[0]
        answers = conn.execute("SELECT COUNT(*) FROM quiz_answers").fetchone()[0]
    return f"{onboarded:,} owners onboarded, {quizzes:,} finished the quiz, {answers:,} quiz answers stored"


async def _run_owner(api: BenchStandin, owner: Owner, result: Result, *, floor: bool, stall: float, think: float) -> None:
    loop = asyncio.get_running_loop()
    for action in owner.actions:
        owner.expect = "new" if floor else action.expect
        owner.waiting = loop.create_future()
        queued = time.perf_counter()
        if action.kind == "text":
            api.send_text(owner.uid, action.value)
        elif action.kind == "contact":
            api.send_contact(owner.uid, action.value)
        else:
            data = owner.button(action.value, floor)
            if data is None:
                shown = owner.on_screen.text if owner.on_screen else None
                owner.stalled = f"no button for {action.value!r} on {shown!r}"
                return
            owner.edited_id = owner.on_screen.message_id
            api.tap(owner.uid, owner.on_screen.message_id, data)
        try:
            message, arrived = await asyncio.wait_for(owner.waiting, stall)
        except asyncio.TimeoutError:
            owner.stalled = f"no reply to {action.kind} {action.value!r} within {stall:g}s"
            return
        finally:
            owner.waiting = None
        result.latencies.append(arrived - queued)
        result.updates += 1
        owner.done += 1
        owner.on_screen = message
        if think:
            await asyncio.sleep(owner.rng.uniform(0, 2 * think))


def report(result: Result) -> None:
    """Print one bot's numbers."""
    print(f"\n{result.name}")
    print(f"  started (spawn → first getUpdates): {result.startup:.2f} s")
    print(f"  {result.updates:,} updates in {result.seconds:.1f} s → {result.updates / result.seconds:,.0f} updates/s"
          f" ({result.requests / max(result.updates, 1):.2f} Bot API requests per update)")
    print(f"  reply latency: p50 {result.p(0.50):,.0f} ms, p95 {result.p(0.95):,.0f} ms, p99 {result.p(0.99):,.0f} ms")
    print(f"  bot CPU: {result.ms_per_update():.2f} ms/update ({result.cpu:.2f} s in all);"
          f" driver+stand-in CPU: {1000 * result.driver_cpu / max(result.updates, 1):.2f} ms/update")
    print(f"  bot memory: peak RSS {result.rss_peak:.1f} MB (now {result.rss_now:.1f} MB)")
    if result.finished:
        print(f"  in the database: {result.finished}")
    print(f"  stalled owners: {len(result.stalled)}; refusals: {len(result.refusals)}")
    for line in result.stalled[:5]:
        print(f"    stalled: {line}")
    for refusal in result.refusals[:5]:
        print(f"    refused: {refusal.method}: {refusal.description}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, default=500, help="simulated owners at once (default 500)")
    parser.add_argument("--quick", action="store_true", help="100 owners: a run of under a minute")
    parser.add_argument("--think", type=float, default=0.0, help="mean seconds an owner pauses before answering (default 0: at once)")
    parser.add_argument("--stall", type=float, default=60.0, help="seconds without the expected reply before an owner counts as stalled")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--only", type=_sides, default=KINDS, metavar="SIDES",
                        help="run these sides only: bot, floor (PTB), aiogram, or a comma-separated list (default: all three)")
    parser.add_argument("--transport", choices=("aiohttp", "httpx"), default="aiohttp", help="Export Saathi's HTTP transport")
    parser.add_argument("--profile", action="store_true", help="record a cProfile of each bot process and print its top entries")
    parser.add_argument("--py-spy", type=float, metavar="SECONDS", help="sample each bot with py-spy for SECONDS of the drive and print where its CPU goes")
    parser.add_argument("--keep", type=Path, help="keep the databases (and profiles) in this folder")
    parser.add_argument("--webhook", action="store_true",
                        help="updates POSTed to each bot's webhook, as Telegram does once one is set (bot and aiogram only)")
    parser.add_argument("--postgres", action="store_true",
                        help="the bot on PostgreSQL (a throwaway server, tests/pg_server.py); also prints the server's CPU")
    args = parser.parse_args()
    owners = 100 if args.quick and args.owners == 500 else args.owners
    if args.webhook and "floor" in args.only:
        args.only = tuple(side for side in args.only if side != "floor")  # the PTB floor long-polls only
        print("--webhook: the PTB floor has no webhook mode and is left out")

    aiogram = ensure_venv() if "aiogram" in args.only else None
    extra = f", aiogram {aiogram[1]} ({aiogram[0].parent.parent.name})" if aiogram else ""
    print(f"machine: {machine()}{extra}")
    print(f"{owners} owners at once, onboarding + the first module's lessons and quiz each; think time {args.think:g} s; "
          f"updates by {'webhook' if args.webhook else 'long polling'}")
    results: dict[str, Result] = {}
    server = None
    if args.postgres:
        from tests.pg_server import PgServer

        server = PgServer().start()
    with tempfile.TemporaryDirectory(prefix="saathi-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for old in workdir.glob("*.sqlite3*"):
            old.unlink()
        for kind in KINDS:
            if kind not in args.only:
                continue
            profile = workdir / f"{kind}.prof" if args.profile else None
            env = {"TELEGRAM_HTTP": args.transport} if kind == "bot" else None
            if server is not None and kind == "bot":
                env["DATABASE_URL"] = server.new_database()
                server_before = server.cpu_seconds()
            spy = workdir / f"{kind}.py-spy.txt" if args.py_spy else None
            argv = [str(aiogram[0]), str(Path(__file__).resolve().with_name("aiogram_floor.py"))] if kind == "aiogram" else None
            results[kind] = asyncio.run(
                drive(kind, owners, seed=args.seed, stall=args.stall, think=args.think, workdir=workdir, profile=profile, env=env,
                      py_spy=spy, py_spy_seconds=args.py_spy or 0, argv=argv, webhook=args.webhook)
            )
            report(results[kind])
            if server is not None and kind == "bot":  # the backends have exited: their CPU is in the postmaster's children
                used = server.cpu_seconds() - server_before
                print(f"  PostgreSQL server CPU: {1000 * used / max(results[kind].updates, 1):.2f} ms/update "
                      f"(bot + server: {1000 * (results[kind].cpu + used) / max(results[kind].updates, 1):.2f} ms/update)")
            if spy is not None:
                print(f"\n  py-spy of the {kind} process (GIL-holding samples, {args.py_spy:g} s of the drive):")
                print_py_spy(spy)
            if profile is not None:
                print(f"\n  cProfile of the {kind} process (own time, then cumulative):")
                print_profile(profile)
    if server is not None:
        server.stop()
    if len(results) > 1:
        table(results)
    bot = results.get("bot")
    if bot is not None and "aiogram" in results:
        ratios(bot, results["aiogram"], "the aiogram floor", 1.0, rss_limit=60.0 if owners >= 500 else None)
    if bot is not None and "floor" in results:
        ratios(bot, results["floor"], "the PTB floor", 0.5)


def _sides(value: str) -> tuple[str, ...]:
    sides = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [side for side in sides if side not in KINDS]
    if unknown or not sides:
        raise argparse.ArgumentTypeError(f"unknown side(s) {', '.join(unknown) or value!r}: choose from {', '.join(KINDS)}")
    return sides


def table(results: dict[str, Result]) -> None:
    """Every side's numbers side by side."""
    print(f"\n{'':<15}{'CPU ms/upd':>11}{'p50 ms':>9}{'p99 ms':>9}{'peak RSS MB':>13}{'req/upd':>9}{'updates':>9}{'stalls':>8}{'refusals':>10}")
    for kind, r in results.items():
        print(f"{SHORT[kind]:<15}{r.ms_per_update():>11.2f}{r.p(0.50):>9,.0f}{r.p(0.99):>9,.0f}{r.rss_peak:>13.1f}"
              f"{r.requests / max(r.updates, 1):>9.2f}{r.updates:>9,}{len(r.stalled):>8}{len(r.refusals):>10}")


def ratios(bot: Result, floor: Result, against: str, target: float, *, rss_limit: float | None = None) -> None:
    """The bot's CPU per update and p99 divided by a floor's, against ``target``."""
    cpu_ratio = bot.ms_per_update() / floor.ms_per_update()
    p99_ratio = bot.p(0.99) / floor.p(0.99)
    print(f"\nExport Saathi ÷ {against} (targets ≤ {target:g}):")
    print(f"  CPU per update: {bot.ms_per_update():.2f} / {floor.ms_per_update():.2f} = {cpu_ratio:.2f} {'✓' if cpu_ratio <= target else '✗'}")
    print(f"  p99 latency:    {bot.p(0.99):,.0f} / {floor.p(0.99):,.0f} ms = {p99_ratio:.2f} {'✓' if p99_ratio <= target else '✗'}")
    ok = not bot.stalled and not bot.refusals
    print(f"  stalled owners: {len(bot.stalled)}, refusals: {len(bot.refusals)} {'✓' if ok else '✗'}")
    if rss_limit is not None:
        print(f"  peak RSS:       {bot.rss_peak:.1f} MB (floor {floor.rss_peak:.1f} MB; target < {rss_limit:g} MB)"
              f" {'✓' if bot.rss_peak < rss_limit else '✗'}")


if __name__ == "__main__":
    main()
