"""The chaos drill of issue 7: SIGKILL the bot at random moments while owners onboard, learn and qualify.

Shared by the short drill in ``make test`` (tests/test_chaos.py) and the long one in bench/
(bench/chaos.py); it imports the stand-in helpers of bench/common.py, never the other way round.
The bot runs in its own process (``saathi run``'s polling path, as bench/common.py runs it)
against a Bot API stand-in served by this process; a killer SIGKILLs it after a random uptime
and starts it again, over and over. Some kills are timed to land within 80 ms of something worth
interrupting: the answer that makes an owner a lead, an admin's Confirm, a delivery in progress.
Meanwhile:

- simulated owners go through onboarding and the three core modules (lessons, quizzes) like
  people do: they read what is on screen, tap a button or type, and wait for the answer. When no
  answer comes within their patience they may tap the same button again, then send /start, read
  where the bot says they are, and go on from there: they answer that question again if it is
  the one they had answered, or move on if it is the next one. Some stop half-way through a
  module, some do not qualify;
- three partner startups (by region) link four staff chats with ``saathi startups invite`` and
  ``/start join_…``; one chat of each accepts some of the lead cards it gets;
- two broadcasts go out while the bot is being killed: one started with ``saathi broadcast
  announce … --yes`` on the bot's database (the running bot delivers it), one built by an admin
  with the /broadcast wizard, who taps Confirm again when no answer comes;
- reminders for the owners who went quiet are enqueued the way the bot's reminder job does it
  (their silence is simulated by moving ``last_seen_at`` back two days; the job itself waits a
  minute after every start, which a bot killed every few seconds never reaches).

Afterwards the database and the stand-in's record are compared with what people saw:

- every answer an owner saw acknowledged (the next question arrived, or the tapped question was
  edited to show the pick) is stored, and nothing else: no answer twice, none in the wrong field;
- ``/start`` shows every owner the step after their last answer;
- no lead twice, no offer twice, every owner who qualified has a lead, cards only to the chats of
  the startup the lead was offered to;
- one broadcast per Confirm the admin saw, one status message per broadcast;
- every outbox row (lead cards, owner notices, broadcasts, reminders) arrived exactly once,
  except rows a kill left in doubt ('unknown': never resent, since Telegram cannot tell whether
  they arrived), which are counted apart with how many of them did arrive; in doubt there may be
  at most kills × the delivery worker's in-flight limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import TOKEN, BenchStandin, BotProcess  # noqa: E402
from bot.channels.render import safe_html  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.core.content import Content  # noqa: E402
from bot.core.leads import readiness  # noqa: E402
from bot.core.reminders import india_hour  # noqa: E402
from bot.core.session import ModuleProgress, Session, TurnContext  # noqa: E402
from bot.i18n import Catalogs  # noqa: E402
from bot.services.delivery import DeliveryWorker  # noqa: E402
from bot.services.leads import INVITE_BAD  # noqa: E402
from tests.botapi_standin import BotMessage, parse_telegram_html  # noqa: E402

ADMIN = 7
FIRST_OWNER = 7_000_000
# Three partner startups by region, four staff chats: (chat, language, accepts cards).
STARTUPS = (
    ("chaos_north", "Chaos North Exports", ("uttar_pradesh", "rajasthan"), ((601, "en", True), (602, "hi", False))),
    ("chaos_south", "Chaos South Traders", ("tamil_nadu", "west_bengal"), ((603, "en", True),)),
    ("chaos_west", "Chaos West Link", ("gujarat",), ((604, "hi", True),)),
)
REGISTRY = "startups:\n" + "".join(
    f'  - {{id: {sid}, name: "{name}", states: [{", ".join(states)}], sectors: all, languages: [hi, en], weekly_capacity: 10000}}\n'
    for sid, name, states, _ in STARTUPS
)
CORE = ("export_ready", "payments", "alibaba")
NAMES = ("Sunita Devi", "रमेश कुमार", "Asha", "Mohd. Irfan", "प्रिया शर्मा", "Gurpreet Singh", "Lakshmi", "Anil")
BUSINESSES = ("Sunita Brass Crafts", "Sharma & Sons", "श्री गणेश हैंडलूम", "Irfan Leather Works", "Kaveri Spices", "Desai <Tools>")
DISTRICTS = ("Moradabad", "Tiruppur", "Surat", "जयपुर", "Kanpur", "Ludhiana", "Kochi")
STATES = (("uttar_pradesh", "UP"), ("tamil_nadu", "Tamil Nadu"), ("gujarat", "Gujarat"), ("rajasthan", "Rajasthan"), ("west_bengal", "WB"))
SECTORS = (("handicrafts", "Handicrafts"), ("textiles_apparel", "Textiles"), ("spices", "Masala"), ("leather", "Leather"))
CARD = re.compile(r"^🆕 (?:Lead|लीड) #(\d+)")


@dataclass(frozen=True)
class Drill:
    """How hard to shake the bot."""

    owners: int = 20
    kills: int = 5  # at least this many SIGKILLs
    uptime: tuple[float, float] = (0.8, 4.0)  # seconds from a start to its SIGKILL
    downtime: tuple[float, float] = (0.0, 0.4)  # seconds between a SIGKILL and the next start
    patience: float = 2.5  # seconds an owner waits for an answer before sending /start
    think: float = 0.1  # mean seconds an owner pauses before answering
    spread: float = 2.0  # owners arrive over this many seconds
    broadcasts: int = 1
    rate: float = 10.0  # BROADCAST_RATE: slow enough for a kill to land in a delivery
    dropouts: float = 0.15  # share of owners who stop half-way through a module
    non_qualifying: float = 0.2  # share of owners whose answers score too low for a lead
    seed: int = 7
    deadline: float = 300.0  # seconds before the drill gives up on stuck owners


# ----------------------------------------------------------------- what the bot shows
def shown(html: str) -> str:
    """Chat HTML as the stand-in records it: what the user reads."""
    return parse_telegram_html(safe_html(html))[0].strip()


def first_buttons(message: BotMessage) -> list[str]:
    """The callback data of the buttons ``message`` was sent with (an answer's edit removes them)."""
    markup = message.original.reply_markup or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", ()) for b in row if b.get("callback_data")]


Prompt = tuple  # ("step", id) | ("menu",) | ("lesson", module, k) | ("question", module, n) | ("result",)
MENU: Prompt = ("menu",)
RESULT: Prompt = ("result",)


def resumed(prompt: Prompt) -> Prompt:
    """What /start shows an owner who is at ``prompt``: the same question, or the menu after a quiz."""
    return MENU if prompt == RESULT else prompt


class Screens:
    """Recognises, in one language, the questions an owner answers and the bot's other messages."""

    def __init__(self, content: Content, texts: Catalogs, lang: str):
        t = TurnContext(Session(lang=lang), texts)
        self.t = t
        pairs: list[tuple[str, Prompt]] = []
        for step in content.onboarding.steps.values():
            pairs.append((shown(t._(step.text)), ("step", step.id)))
        for module in content.modules:
            lessons = len(module.lessons)
            for k in range(1, lessons + 1):
                pairs.append((shown(f"<b>{t._(module.title)}</b> · {t.num(k)}/{t.num(lessons)}"), ("lesson", module.id, k)))
            for n, question in enumerate(module.quiz, 1):
                head = t._("<b>Question {n} of {total}</b>", n=t.num(n), total=t.num(len(module.quiz)))
                pairs.append((shown(f"{head}\n{t._(question.text)}"), ("question", module.id, n)))
        self.prefixes = sorted(pairs, key=lambda pair: -len(pair[0]))
        self._seen: dict[tuple[int, int], Prompt | None] = {}  # a message as first sent never changes
        self.menu_tail = shown(t._("Tap a module to open it."))
        self.passed = shown(t._("🎉 Passed! Well done."))
        self.welcome = shown(t._("Welcome back! Let's continue where you left off."))
        # Replies that mean the bot did not understand what an owner sent: never expected here.
        self.confused = tuple(shown(t._(msgid).split("{")[0]) for msgid in (  # up to a placeholder
            "Please tap one of the buttons, or type its number.", "Please type your answer in words.",
            "Please tap a number from 1 to {last}, or type the number of your answer.",
            "There is no answer {number} here. Please tap a number from 1 to {last}.", "Please tap हिन्दी or English.",
            "Please tap Confirm, or Change an answer.", "Tap a module, or type its number.",
            "Tap the ones you want, then tap Done. You can also type numbers, like 1, 3.", "Please pick at least one, then tap Done.",
            "I can only read text and buttons. Please type your answer or tap a button.",
            "Sorry, I don't know that command. Send /help to see what I can do.",
            "Let's finish your profile first; the training opens right after.",
            "Sorry, I could not save that just now. Please send it again in a minute.",
        ))
        self.confused += (shown(t._("That doesn't look like an Indian mobile number. Please send 10 digits starting with 6, 7, 8 or 9 "
                                     "(+91 is optional), or tap the button to share your number.")),)

    def prompt(self, message: BotMessage) -> Prompt | None:
        """The question ``message`` asks as first sent (edits only mark answers), or ``None``."""
        key = (message.chat_id, message.message_id)
        if key not in self._seen:
            self._seen[key] = self._prompt(message)
        return self._seen[key]

    def _prompt(self, message: BotMessage) -> Prompt | None:
        text = message.original.text or ""
        data = first_buttons(message)
        if self.passed in text and any(d.endswith(":menu") for d in data):
            return RESULT
        if text.endswith(self.menu_tail) and any(d.startswith("go:") for d in data):
            return MENU
        for prefix, prompt in self.prefixes:
            # a question comes under the quiz's intro, the verdict on the one before, or a hint
            if text.startswith(prefix) or (prompt[0] == "question" and f"\n\n{prefix}" in text):
                return prompt
        return None

    def is_welcome(self, message: BotMessage) -> bool:
        """The first message of the answer to /start in the middle of the conversation."""
        return (message.original.text or "").startswith(self.welcome)

    def is_confused(self, message: BotMessage) -> bool:
        """A reply the owner's input should never have caused."""
        text = message.original.text or ""
        return any(text.startswith(c) for c in self.confused)


RESUME_PATIENCE = 6  # an owner who sent /start waits this many times their patience for its answer before sending another

# ----------------------------------------------------------------- what an owner does
@dataclass(frozen=True)
class Act:
    """One answer: with ``at`` on screen, tap (``value`` = payload after the seq) or type or share.

    ``then`` is what the bot shows next; ``stores`` what the database must hold once the owner
    saw it acknowledged. ``kind`` "markets" is the multi-select step: toggle each wanted option
    (or type their numbers), then Done.
    """

    at: Prompt
    kind: str  # "tap" | "text" | "contact" | "markets"
    value: Any
    then: Prompt
    stores: tuple = ()


@dataclass
class OwnerPlan:
    """Who an owner is and everything they will answer."""

    uid: int
    lang: str
    acts: list[Act]
    profile: dict[str, Any]
    quiz: dict[str, dict[str, str]]  # module -> question id -> option id
    scores: dict[str, int]
    completes: bool
    qualifies: bool


def plan_owner(uid: int, lang: str, content: Content, drill: Drill, rng: random.Random) -> OwnerPlan:
    """An owner's answers from onboarding to the third core module's quiz (or to where they stop)."""
    flow = content.onboarding
    steps = flow.steps
    good = rng.random() >= drill.non_qualifying
    state, state_typed = rng.choice(STATES)
    sector, sector_typed = rng.choice(SECTORS)
    number = f"9{uid % 10**9:09d}"
    markets = sorted(rng.sample(range(5), rng.randint(1, 2)))
    market_ids = [steps["markets"].options[i].id for i in markets]
    profile: dict[str, Any] = {
        "owner_name": f"{rng.choice(NAMES)} {uid % 1000}",
        "business_name": f"{rng.choice(BUSINESSES)} {uid % 997}",
        "state": state,
        "district": f"{rng.choice(DISTRICTS)}-{uid % 89}",
        "sector": sector,
        "udyam": "yes" if good else "no",
        "iec": "yes" if good else "no",
        "gst": "yes" if good else "no",
        "experience": rng.choice(("never", "occasionally", "regularly")) if good else "never",
        "turnover": rng.choice(("under_40_lakh", "upto_1_5_crore", "upto_10_crore", "above_10_crore")) if good else "under_40_lakh",
        "markets": market_ids,
        "phone": "+91" + number,
    }

    def choice(step_id: str, typed: str | None = None) -> tuple[str, Any]:
        option = profile[step_id]
        if rng.random() < 0.3:  # people type too: the number, or the name they know
            return "text", typed or str([o.id for o in steps[step_id].options].index(option) + 1)
        return "tap", option

    acts: list[Act] = []

    def add(at: Prompt, kind: str, value: Any, then: Prompt, *stores: tuple) -> None:
        acts.append(Act(at, kind, value, then, stores))

    order = [flow.first]
    while steps[order[-1]].next:
        order.append(steps[order[-1]].next)
    for here, nxt in zip(order, [*order[1:], None]):
        at, then = ("step", here), (("step", nxt) if nxt else MENU)
        step = steps[here]
        if here == "language":
            add(at, "tap", lang, then, ("lang", lang))
        elif step.kind == "consent":
            add(at, *(("tap", "yes") if rng.random() < 0.7 else ("text", "1")), then, ("consent",))
        elif step.kind == "text":
            add(at, "text", profile[step.field], then, ("profile", step.field))
        elif step.field == "state":
            add(at, *choice("state", state_typed if rng.random() < 0.5 else None), then, ("profile", "state"))
        elif step.field == "sector":
            add(at, *choice("sector", sector_typed if rng.random() < 0.5 else None), then, ("profile", "sector"))
        elif step.kind == "choice":
            add(at, *choice(step.field), then, ("profile", step.field))
        elif step.kind == "multi":
            typed = ", ".join(str(i + 1) for i in markets) if rng.random() < 0.4 else None
            add(at, "markets", typed or market_ids, then, ("profile", "markets"))
        elif step.kind == "phone":
            add(at, *(("contact", "+91" + number) if rng.random() < 0.6 else ("text", f"{number[:5]} {number[5:]}")), then,
                ("profile", "phone"))
        elif step.kind == "summary":
            add(at, *(("tap", "confirm") if rng.random() < 0.8 else ("text", "1")), then, ("onboarded",))
    quiz: dict[str, dict[str, str]] = {}
    scores: dict[str, int] = {}
    next_word = "आगे" if lang == "hi" else "next"
    for index, module_id in enumerate(CORE):
        module = content.module(module_id)
        lessons = len(module.lessons)
        add(MENU, "tap", "go:" + module_id, ("lesson", module_id, 1), ("started", module_id))
        for k in range(1, lessons + 1):
            then = ("lesson", module_id, k + 1) if k < lessons else ("question", module_id, 1)
            add(("lesson", module_id, k), *(("tap", "next") if rng.random() < 0.8 else ("text", next_word)), then, ("lesson", module_id, k))
        wrong = rng.randrange(len(module.quiz)) if rng.random() < 0.3 else None  # one mistake still passes (4 of 5)
        quiz[module_id] = {}
        for n, question in enumerate(module.quiz, 1):
            options = list(question.options)  # the first attempt shows them as written
            chosen = next(o for o in options if o.correct != (n - 1 == wrong))
            quiz[module_id][question.id] = chosen.id
            then = ("question", module_id, n + 1) if n < len(module.quiz) else RESULT
            how = ("tap", "a." + chosen.id) if rng.random() < 0.8 else ("text", str(options.index(chosen) + 1))
            add(("question", module_id, n), *how, then, ("quiz", module_id, question.id, chosen.id))
        scores[module_id] = len(module.quiz) - (wrong is not None)
        if index < len(CORE) - 1:
            add(RESULT, "tap", "menu", MENU)
    onboarding_acts = len(order)
    completes = rng.random() >= drill.dropouts
    if not completes:  # stop inside the first module: started, not passed (a reminder is due)
        first = content.module(CORE[0])
        acts = acts[: onboarding_acts + 1 + rng.randrange(len(first.lessons) + len(first.quiz) - 1)]
    rules = content.qualification
    progress = {m: ModuleProgress(best=s, passed=True) for m, s in scores.items()}
    qualifies = completes and rules is not None and readiness(rules, content, profile, progress).qualifies
    return OwnerPlan(uid, lang, acts, profile, quiz, scores, completes, qualifies)


# ----------------------------------------------------------------- the record
@dataclass
class Record:
    """What the drill did and saw, and what went wrong."""

    drill: Drill
    kills: int = 0
    starts: int = 0
    kill_uptimes: list[float] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)  # seconds from a spawn to its first long poll
    updates: int = 0
    acknowledged: int = 0
    stored_unacknowledged: int = 0
    answers_stored: int = 0
    resumes: int = 0
    retaps: int = 0
    hurried: int = 0  # kills timed to land in a lead's creation or a Confirm
    retried_answers: int = 0
    confused: int = 0
    owners_done: int = 0
    onboarded: int = 0
    cli_broadcasts: list[int] = field(default_factory=list)  # ids of the broadcasts started with saathi broadcast
    admin_confirmed: int = 0  # broadcasts the admin saw queued in the wizard
    reminders_enqueued: int = 0
    reminders_expected: int = 0
    accepted_acked: set[int] = field(default_factory=set)
    in_flight_limit: int = 0
    seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    bot_errors: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        """Something the bot must never do."""
        self.problems.append(text)


# ----------------------------------------------------------------- the stand-in and the bot
class ChaosStandin(BenchStandin):
    """The stand-in, counting long polls (a new bot process is up when it polls)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls = 0
        self.bulk = 0  # broadcast messages and reminders that arrived
        self.bulk_marks: tuple[str, ...] = ()

    async def _get_updates(self, params):
        self.polls += 1
        return await super()._get_updates(params)

    def _record(self, chat, message: BotMessage):
        if self.bulk_marks and (message.text or "").startswith(self.bulk_marks):
            self.bulk += 1
        return super()._record(chat, message)


# The bot process: ``saathi run``'s path (as bench/common.py runs it), plus SIGUSR2 → every asyncio
# task's stack in the log, so a stall can be diagnosed from outside.
LAUNCHER = """
import asyncio, logging, signal, sys
from bot.runtime import run
from bot.config import Settings

def dump(*_):
    try:
        tasks = asyncio.all_tasks(asyncio.get_event_loop())
    except RuntimeError:
        return
    print(f"--- {len(tasks)} asyncio tasks ---", file=sys.stderr)
    for task in tasks:
        print(f"{task.get_name()}:", file=sys.stderr)
        coro = task.get_coro()
        while coro is not None:  # down the chain of awaits, to where it waits
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                print(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}", file=sys.stderr)
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    sys.stderr.flush()

signal.signal(signal.SIGUSR2, dump)
settings = Settings.from_env(env_file=None)
logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
run(settings)
"""


class ChaosBot(BotProcess):
    """The bot in its own process, its log kept in a file (a SIGKILL leaves no other trace)."""

    def __init__(self, api: ChaosStandin, database: Path, env: dict[str, str], log: Path):  # noqa: D107
        self.kind = "bot"
        self.log = log
        environ = {
            **os.environ, "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_BASE_URL": api.base_url, "DATABASE_PATH": str(database),
            "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), **env,
        }
        self.started = time.perf_counter()
        self.polls_before = 0
        self.up_after: float | None = None  # seconds from the spawn to its first long poll
        with open(log, "ab") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER], env=environ, cwd=str(database.parent),
                stdout=handle, stderr=handle,
            )

    def dump_tasks(self) -> None:
        """Every asyncio task's stack, into the log."""
        if self.alive():
            self.proc.send_signal(signal.SIGUSR2)

    def sigkill(self) -> None:
        """No cleanup of any kind."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def cli(work: Path, *args: str) -> str:
    """``saathi …`` on the bot's database, as an operator types it; its output."""
    env = {**os.environ, "DATABASE_PATH": str(work / "bot.sqlite3"), "TELEGRAM_BOT_TOKEN": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, cwd=str(work), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"saathi {' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


def read_db(path: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    """A read-only query (WAL: the bot keeps writing meanwhile)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# ----------------------------------------------------------------- a chat seen from the user's side
class Chat:
    """One user's view of their chat with the bot: a wake-up on every message or edit."""

    def __init__(self, api: ChaosStandin, uid: int, record: Record):
        self.api, self.uid, self.record = api, uid, record
        self.changed = asyncio.Event()
        api.watchers[uid] = lambda kind, message, at: self.changed.set()

    def messages(self) -> list[BotMessage]:
        """Everything the bot has sent here, in order."""
        return self.api.messages(self.uid)

    async def until(self, check, timeout: float):
        """``check()``'s first truthy value within ``timeout`` seconds, else ``None``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.changed.clear()
            found = check()
            if found:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def text(self, value: str) -> None:
        """The user types ``value``."""
        self.record.updates += 1
        self.api.send_text(self.uid, value)

    def tap(self, message: BotMessage, data: str) -> None:
        """The user taps the button with ``data`` on ``message``."""
        self.record.updates += 1
        self.api.tap(self.uid, message.message_id, data)

    def contact(self, phone: str) -> None:
        """The user shares their own number."""
        self.record.updates += 1
        self.api.send_contact(self.uid, phone)


# ----------------------------------------------------------------- an owner
class Owner:
    """Follows an ``OwnerPlan`` like a person: answer, wait, and after silence ask where they are."""

    def __init__(self, plan: OwnerPlan, api: ChaosStandin, screens: Screens, drill: Drill, record: Record, rng: random.Random,
                 hurry=lambda: None):
        self.plan, self.screens, self.drill, self.record, self.rng = plan, screens, drill, record, rng
        self.hurry = hurry  # asks the killer for a SIGKILL within a few tens of milliseconds
        self.chat = Chat(api, plan.uid, record)
        self.acked: set[int] = set()
        self.stored: set[int] = set()  # answers /start showed were stored though no reply had come
        self.position = 0  # index of the next act
        self.screen: BotMessage | None = None
        self.done = False
        self.failed = ""
        self._confused: set[int] = set()
        self.tapped_data = ""
        self.starts = 0  # /start messages sent

    def prompts(self, start: int) -> list[tuple[BotMessage, Prompt, bool]]:
        """Questions sent from message ``start`` on, each flagged when it answers a /start."""
        out, after_welcome = [], False
        for message in self.chat.messages()[start:]:
            if self.screens.is_confused(message):
                if message.message_id not in self._confused:
                    self._confused.add(message.message_id)
                    self.record.confused += 1
                    self.record.problem(f"owner {self.plan.uid}: the bot did not understand: {message.original.text[:80]!r}")
            if self.screens.is_welcome(message):
                after_welcome = True
                continue
            prompt = self.screens.prompt(message)
            if prompt is not None:
                out.append((message, prompt, after_welcome))
                after_welcome = False
        return out

    def restart(self) -> None:
        """Send /start (counted: every /start but the first is answered with a welcome back)."""
        self.starts += 1
        self.chat.text("/start")

    def resumed_at(self, since: int) -> tuple[BotMessage, Prompt] | None:
        """The question the answer to the latest /start shows, once that answer has arrived.

        Every /start after the first one is answered "Welcome back" and the current question, in
        the order sent. A slow bot may still be answering an earlier /start when the owner sends
        the next: the welcome that counts is the last one expected, not the first one seen (that
        one can show a question answered since).
        """
        self.prompts(since)  # notes replies that mean the bot did not understand
        messages = self.chat.messages()
        welcomes = [i for i, m in enumerate(messages) if self.screens.is_welcome(m)]
        if len(welcomes) < self.starts - 1 or not welcomes or welcomes[-1] < since:
            return None
        for message in messages[welcomes[-1] + 1:]:
            prompt = self.screens.prompt(message)
            if prompt is not None:
                return message, prompt
        return None

    async def run(self) -> None:
        """The whole plan, then done."""
        acts = self.plan.acts
        await asyncio.sleep(self.rng.uniform(0, self.drill.spread))
        self.screen = await self.begin()
        while self.position < len(acts):
            await asyncio.sleep(self.rng.expovariate(1 / self.drill.think) if self.drill.think else 0)
            act, before = acts[self.position], self.position
            if act.at == RESULT and self.screens.prompt(self.screen) == MENU:
                self.position += 1  # /start showed the menu already: no need to tap "Modules"
                continue
            ok = await (self.markets(act) if act.kind == "markets" and not isinstance(act.value, str) else self.answer(act))
            if not ok:
                return
            if self.position > before and act.at == ("step", "summary"):
                self.record.onboarded += 1
        self.done = True
        self.record.owners_done += 1

    async def begin(self) -> BotMessage:
        """/start until the language question is on screen."""
        language = ("step", "language")
        start = len(self.chat.messages())
        while True:
            self.restart()
            found = await self.chat.until(
                lambda: next((m for m, p, _ in self.prompts(start) if p == language), None), self.drill.patience
            )
            if found:
                return found
            self.record.resumes += 1

    def send(self, act: Act) -> BotMessage | None:
        """Do ``act`` on the message on screen; the tapped message (for taps)."""
        if act.kind in ("text", "markets"):  # markets here: numbers typed
            self.chat.text(act.value)
            return None
        if act.kind == "contact":
            self.chat.contact(act.value)
            return None
        data = self.button(act.value)
        if data is None:
            raise LookupError(f"no button {act.value!r} on {self.screen.original.text[:80]!r}: {self.screen.buttons}")
        self.chat.tap(self.screen, data)
        self.tapped_data = data
        return self.screen

    def button(self, value: str) -> str | None:
        """The callback data of the button for ``value`` on the message on screen."""
        buttons = [d for _, d in self.screen.buttons if d]
        if value.startswith("go:"):
            return value if value in buttons else None
        return next((d for d in buttons if d.split(":", 1)[-1] == value and not d.startswith("go:")), None)

    async def answer(self, act: Act) -> bool:
        """Do ``act`` and see it acknowledged, or find out where the bot is; False if lost."""
        index = self.position
        start = len(self.chat.messages())
        tapped = self.send(act)
        if index == len(self.plan.acts) - 1 and self.plan.qualifies and self.rng.random() < 0.5:
            self.hurry()  # the answer that makes a lead: kill while the lead is being created
        edits = len(tapped.edits) if tapped is not None else 0

        def picked() -> bool:  # the tapped question now shows the answer
            return tapped is not None and len(tapped.edits) > edits and "✅" in (tapped.text or "")

        def reply():
            return next((m for m, p, resume in self.prompts(start) if p == act.then and not resume), None)

        found = await self.chat.until(reply, self.drill.patience)
        if found is None and not picked() and tapped is not None and self.rng.random() < 0.5:
            # Nothing happened: tap the same button again, as people do (at most one of the two may count).
            self.record.retaps += 1
            self.chat.tap(tapped, self.tapped_data)
            found = await self.chat.until(reply, self.drill.patience)
        if found is not None or picked():
            self.acknowledge(index)
        if found is not None:
            self.screen, self.position = found, index + 1
            return True
        return await self.where_am_i(act, index, start)

    def acknowledge(self, index: int) -> None:
        """The owner saw a reply to answer ``index``."""
        if index not in self.acked:
            self.acked.add(index)
            self.record.acknowledged += 1

    async def where_am_i(self, act: Act, index: int, start: int) -> bool:
        """No answer came: /start (again, after more silence) and continue from what it shows."""
        acts = self.plan.acts
        here, following = resumed(act.at), resumed(act.then)
        since = len(self.chat.messages())

        while True:  # the answer to this /start will come (nothing sent is lost): wait for it, not for the first welcome
            self.record.resumes += 1
            self.restart()
            found = await self.chat.until(lambda: self.resumed_at(since), RESUME_PATIENCE * self.drill.patience)
            if found is not None:
                break
        message, prompt = found
        # A late reply to the answer counts too: it reached the user.
        late = any(p == act.then and not resume for _, p, resume in self.prompts(start))
        if late:
            self.acknowledge(index)
        if prompt == following:  # stored (its reply was lost, or came late)
            if index not in self.acked:
                self.stored.add(index)
                self.record.stored_unacknowledged += 1
            self.screen, self.position = message, index + 1
            return True
        if prompt == here:
            if index in self.acked:
                self.fail(f"answer {index} ({act.at} → {act.value!r}) was acknowledged, but /start shows {prompt} again")
                return False
            self.record.retried_answers += 1
            self.screen = message  # not stored: answer again
            return True
        nxt = resumed(acts[index + 1].then) if index + 1 < len(acts) else None
        self.fail(f"after answer {index} ({act.at} → {act.value!r}) /start shows {prompt}, expected {here} or {following}"
                  + (" (a step was skipped)" if prompt == nxt else ""))
        return False

    async def markets(self, act: Act) -> bool:
        """The multi-select: toggle each wanted option (each toggle redraws the question), then Done."""
        index = self.position
        wanted = set(act.value)
        for _ in range(50):
            ticked = {d.split(":t.", 1)[1] for label, d in self.screen.buttons if d and ":t." in d and label.startswith("✅")}
            if ticked - wanted:
                self.fail(f"markets shows {sorted(ticked)} ticked, the owner picked only {sorted(wanted)}")
                return False
            missing = sorted(wanted - ticked)
            if not missing:
                done = Act(act.at, "tap", "done", act.then)
                self.position = index
                if not await self.answer(done):
                    return False
                if self.position == index + 1:
                    return True
                continue  # /start showed the question again: look at its ticks
            screen = self.screen
            edits = len(screen.edits)
            self.chat.tap(screen, self.button("t." + missing[0]))
            redrawn = await self.chat.until(
                lambda: len(screen.edits) > edits and any(
                    label.startswith("✅") and d.endswith("t." + missing[0]) for label, d in screen.buttons if d),
                self.drill.patience,
            )
            if redrawn:
                continue
            since = len(self.chat.messages())
            while True:  # no redraw: where are we?
                self.record.resumes += 1
                self.restart()
                found = await self.chat.until(lambda: self.resumed_at(since), RESUME_PATIENCE * self.drill.patience)
                if found:
                    break
            message, prompt = found
            if prompt != act.at:
                self.fail(f"toggling markets, /start shows {prompt}")
                return False
            self.screen = message
        self.fail("markets: too many rounds")
        return False

    def fail(self, text: str) -> None:
        """The owner cannot go on: a problem."""
        self.failed = text
        self.record.problem(f"owner {self.plan.uid} ({self.plan.lang}): {text}")


# ----------------------------------------------------------------- staff
class StaffMember:
    """A startup's staff chat: joins with an invite link, gets lead cards, accepts some of them."""

    def __init__(self, api: ChaosStandin, uid: int, lang: str, startup: tuple[str, str], accepts: bool, drill: Drill,
                 record: Record, rng: random.Random):
        self.api, self.uid, self.lang, self.accepts, self.drill, self.record, self.rng = api, uid, lang, accepts, drill, record, rng
        self.startup_id, self.startup_name = startup
        api.add_user(uid, first_name=f"Staff{uid}", language_code=lang)
        self.chat = Chat(api, uid, record)
        self.handled: set[int] = set()

    async def join(self, link: str) -> None:
        """``/start join_…`` until the chat is linked (a second try after a lost reply says so)."""
        code = link.split("?start=", 1)[1]
        start = len(self.chat.messages())
        refused = shown(Catalogs.load().gettext(self.lang, INVITE_BAD))
        while True:
            self.chat.text("/start " + code)
            found = await self.chat.until(
                lambda: next((m for m in self.chat.messages()[start:] if self.startup_name in (m.text or "")), None),
                self.drill.patience,
            )
            if found:
                return
            if any((m.text or "") == refused for m in self.chat.messages()[start:]):
                self.record.problem(f"staff {self.uid}: the invite was refused after a lost reply")
                return

    async def work(self, stop: asyncio.Event) -> None:
        """Accept about half of the new cards, a little after they arrive."""
        while not stop.is_set():
            await self.chat.until(lambda: stop.is_set() or self.fresh(), 1.0)
            for message, lead_id in self.fresh():
                if stop.is_set():
                    return
                self.handled.add(lead_id)
                if self.accepts and self.rng.random() < 0.5:
                    await asyncio.sleep(self.rng.uniform(0.1, 1.0))
                    await self.accept(message, lead_id)

    def fresh(self) -> list[tuple[BotMessage, int]]:
        """Lead cards not looked at yet, with their lead ids."""
        out = []
        for message in self.chat.messages():
            match = CARD.match(message.original.text or "")
            if match and int(match.group(1)) not in self.handled:
                out.append((message, int(match.group(1))))
        return out

    async def accept(self, card: BotMessage, lead_id: int) -> None:
        """Tap Accept; after silence, once more (a second tap on a lead already accepted is refused)."""
        data = f"ld:{lead_id}:acc"
        if data not in [d for _, d in card.buttons]:
            return
        for _ in range(2):
            start, edits = len(self.chat.messages()), len(card.edits)
            self.chat.tap(card, data)
            ok = await self.chat.until(
                lambda: len(card.edits) > edits or any(f"#{lead_id}" in (m.text or "") for m in self.chat.messages()[start:]),
                self.drill.patience,
            )
            if ok:
                self.record.accepted_acked.add(lead_id)
                return


# ----------------------------------------------------------------- the admin
class AdminPerson:
    """An admin who builds an announcement with the /broadcast wizard and confirms it.

    Before Confirm nothing has happened, so after silence the admin simply starts the wizard
    again. After Confirm the admin waits for "queued" or for the status message; without either,
    taps Confirm once more (a second broadcast must not come of it) and waits again.
    """

    def __init__(self, api: ChaosStandin, texts: Catalogs, drill: Drill, record: Record):
        self.chat = Chat(api, ADMIN, record)
        self.drill, self.record = drill, record
        self.ask_en = shown(texts.gettext("en", "Send the announcement in <b>English</b>, as owners should read it. (/cancel to stop)"))
        self.ask_hi = shown(texts.gettext("en", "Now send the same announcement in <b>Hindi</b>. Both languages are needed. (/cancel to stop)"))
        self.confirmed = 0  # broadcasts the admin saw queued

    async def wait(self, start: int, check, patience: float | None = None) -> BotMessage | None:
        """The first message from ``start`` on that passes ``check``, within the patience."""
        return await self.chat.until(
            lambda: next((m for m in self.chat.messages()[start:] if check(m)), None), patience or self.drill.patience
        )

    @staticmethod
    def has(action: str):
        """Whether a message came with the wizard button for ``action``."""
        return lambda m: any(d.endswith(":" + action) for d in first_buttons(m))

    async def broadcast(self, en: str, hi: str, confirming) -> None:
        """One announcement to everyone; ``confirming()`` is called at the moment of the Confirm tap."""
        for _ in range(20):
            outcome = await self.wizard(en, hi, confirming)
            if outcome:
                self.confirmed += 1
                return
        self.record.problem("admin: the broadcast wizard never got through")

    async def wizard(self, en: str, hi: str, confirming) -> bool:
        chat, start = self.chat, len(self.chat.messages())
        chat.text("/broadcast")
        screen = await self.wait(start, self.has("ann"))
        steps = (("ann", lambda m: (m.text or "").startswith(self.ask_en)), (en, lambda m: (m.text or "").startswith(self.ask_hi)),
                 (hi, self.has("next")), ("next", self.has("now")), ("now", self.has("ok")))
        for action, then in steps:
            if screen is None:
                return False
            start = len(chat.messages())
            if action in ("ann", "next", "now"):
                chat.tap(screen, next(d for d in first_buttons(screen) if d.endswith(":" + action)))
            else:
                chat.text(action)
            screen = await self.wait(start, then)
        if screen is None:
            return False
        ok = next(d for d in first_buttons(screen) if d.endswith(":ok"))
        start = len(chat.messages())
        chat.tap(screen, ok)
        confirming()

        def queued(m: BotMessage) -> bool:
            return (m.text or "").startswith(("✅ Broadcast #", "📣 Broadcast #"))

        if await self.wait(start, queued):
            return True
        chat.tap(screen, ok)  # nothing came back: once more, as people do
        return await self.wait(start, queued, 4 * self.drill.patience) is not None


# ----------------------------------------------------------------- the drill
def daytime_before(now: float) -> int:
    """A moment before ``now`` in India's daytime (reminders are never sent at night)."""
    t = int(now) - 60
    while not 10 <= india_hour(t) < 20:
        t -= 1800
    return t


async def enqueue_reminders(db_path: Path, quiet: list[int]) -> int:
    """Owners in ``quiet`` went silent two days ago: enqueue their nudges as the reminder job does (twice)."""
    from bot.app import build_app
    from bot.config import Settings
    from bot.services.clock import ManualClock

    when = daytime_before(time.time())
    conn = sqlite3.connect(db_path, timeout=30)
    with conn:
        conn.executemany(
            "UPDATE users SET last_seen_at = ? WHERE channel = 'telegram' AND user_ref = ?", [(when - 49 * 3600, str(u)) for u in quiet]
        )
    conn.close()
    app = await build_app(Settings(database_path=db_path), clock=ManualClock(when))
    try:
        first = await app.reminders.run_once()
        second = await app.reminders.run_once()  # a second run (or one after a restart) adds nothing
        return first + second
    finally:
        await app.close()


async def run_drill(drill: Drill, work: Path, *, log=print) -> Record:
    """The whole drill in ``work``: set up, shake, settle, check. Returns the record."""
    record = Record(drill)
    record.in_flight_limit = DeliveryWorker(None, {}, rate=drill.rate).concurrency  # type: ignore[arg-type]
    rng = random.Random(drill.seed)
    content = load_content()
    texts = Catalogs.load()
    screens = {lang: Screens(content, texts, lang) for lang in ("hi", "en")}
    db_path = work / "bot.sqlite3"
    (work / "startups.yaml").write_text(REGISTRY, encoding="utf-8")
    cli(work, "startups", "import", str(work / "startups.yaml"))
    links = {
        uid: next(line for line in cli(work, "startups", "invite", sid).splitlines() if "?start=join_" in line)
        for sid, _, _, chats in STARTUPS for uid, _, _ in chats
    }
    env = {"ADMIN_IDS": str(ADMIN), "BROADCAST_RATE": str(drill.rate)}
    started = time.perf_counter()
    async with ChaosStandin(TOKEN) as api:
        api.add_user(ADMIN, first_name="Admin", language_code="en")
        plans, owners = [], []
        for i in range(drill.owners):
            uid = FIRST_OWNER + i
            lang = "hi" if rng.random() < 0.6 else "en"
            api.add_user(uid, first_name="Owner", language_code=lang)
            plan = plan_owner(uid, lang, content, drill, random.Random(rng.getrandbits(64)))
            plans.append(plan)
            owners.append(Owner(plan, api, screens[lang], drill, record, random.Random(rng.getrandbits(64)), lambda: hurry()))
        staff = [
            StaffMember(api, uid, lang, (sid, name), accepts, drill, record, random.Random(rng.getrandbits(64)))
            for sid, name, _, chats in STARTUPS for uid, lang, accepts in chats
        ]
        bot_box: list[ChaosBot] = []
        calm = asyncio.Event()  # set: no more kills
        enqueued = asyncio.Event()  # the broadcasts and reminders are all in the outbox
        kills_at_enqueue = [0]
        armed = [-1]  # bulk-message count after which the next kill comes soon (a delivery is under way)
        kill_by = [float("inf")]  # a kill at this moment (the admin has just tapped Confirm, …)
        hurry_rng = random.Random(drill.seed * 17)
        admin_person = AdminPerson(api, texts, drill, record)
        api.bulk_marks = ("Chaos drill notice", "अभ्यास सूचना", "👋")

        def spawn() -> ChaosBot:
            record.starts += 1
            kill_by[0] = float("inf")  # a hurried kill belonged to the process before
            bot = ChaosBot(api, db_path, env, work / "bot.log")
            bot.polls_before = api.polls
            bot_box[:] = [bot]
            return bot

        def settled() -> bool:
            """Enough kills, the owners through, and a kill after the last broadcast or reminders were queued."""
            owners_busy = any(not o.done and not o.failed for o in owners)
            return (record.kills >= drill.kills and enqueued.is_set() and not owners_busy
                    and (drill.kills == 0 or record.kills > kills_at_enqueue[0]))

        async def killer() -> None:
            bot = spawn()
            kill_rng = random.Random(drill.seed * 31)
            while True:
                uptime = kill_rng.uniform(*drill.uptime)
                while time.perf_counter() - bot.started < uptime or (drill.kills == 0 and not settled()):
                    if armed[0] >= 0 and api.bulk > armed[0]:  # messages of a delivery are arriving: kill in its midst
                        armed[0] = -1
                        uptime = min(uptime, time.perf_counter() - bot.started + kill_rng.uniform(0.05, 0.8))
                    if time.perf_counter() >= kill_by[0]:
                        kill_by[0] = float("inf")
                        break
                    if bot.up_after is None and api.polls > bot.polls_before:
                        bot.up_after = time.perf_counter() - bot.started
                        record.startups.append(bot.up_after)
                    if not bot.alive():
                        record.problem(f"the bot process exited by itself with {bot.proc.returncode} (see {bot.log})")
                        bot = spawn()
                    await asyncio.sleep(0.02)
                if settled():
                    calm.set()
                    return
                record.kill_uptimes.append(time.perf_counter() - bot.started)
                bot.sigkill()
                record.kills += 1
                await asyncio.sleep(kill_rng.uniform(*drill.downtime))
                bot = spawn()

        def hurry() -> None:
            """A SIGKILL within the next few tens of milliseconds (something worth interrupting has begun);
            at most about as many of these as kills after a random uptime."""
            bot = bot_box[0] if bot_box else None
            random_kills = record.kills - record.hurried
            if bot is not None and bot.up_after is not None and kill_by[0] == float("inf") and record.hurried <= random_kills:
                kill_by[0] = time.perf_counter() + hurry_rng.uniform(0.0, 0.08)
                record.hurried += 1

        async def admin() -> None:
            """Broadcasts when a share of the owners is onboarded (by the CLI, then by the wizard, in turn);
            reminders once the quiet owners stopped."""
            for n in range(drill.broadcasts):
                share = (n + 1) / (drill.broadcasts + 1)
                while record.onboarded < share * drill.owners * 0.8 and not all(o.done or o.failed for o in owners):
                    await asyncio.sleep(0.1)
                en, hi = f"Chaos drill notice {n + 1}: webinar on Friday", f"अभ्यास सूचना {n + 1}: शुक्रवार को वेबिनार"
                if n % 2:
                    await admin_person.broadcast(en, hi, hurry)
                    how = "the /broadcast wizard"
                else:
                    out = await asyncio.to_thread(cli, work, "broadcast", "announce", "--en", en, "--hi", hi, "--yes", "--no-follow")
                    match = re.search(r"Broadcast #(\d+) queued", out)
                    record.cli_broadcasts.append(int(match.group(1)))
                    how = "saathi broadcast"
                log(f"  broadcast {n + 1} queued with {how} (after {record.kills} kills)")
                kills_at_enqueue[0], armed[0] = record.kills, api.bulk
            quitters = [o for o in owners if not o.plan.completes]
            while not all(o.done or o.failed for o in quitters):
                await asyncio.sleep(0.1)
            quiet = [o.plan.uid for o in quitters if o.done]
            record.reminders_expected = len(quiet)
            if quiet:
                record.reminders_enqueued = await asyncio.to_thread(asyncio.run, enqueue_reminders(db_path, quiet))
                log(f"  {record.reminders_enqueued} reminders queued (after {record.kills} kills)")
                kills_at_enqueue[0], armed[0] = record.kills, api.bulk
            enqueued.set()

        async def owner_task(owner: Owner) -> None:
            try:
                await owner.run()
            except Exception as exc:  # noqa: BLE001 - a driver error is a finding too, with the owner's id
                owner.fail(f"driver error: {exc!r}")

        async def forget() -> None:  # the stand-in's request log is never read here
            while True:
                await asyncio.sleep(1.0)
                api.forget_calls()

        stop_staff = asyncio.Event()
        kill_task = asyncio.create_task(killer())
        forget_task = asyncio.create_task(forget())
        try:
            await asyncio.gather(*(member.join(links[member.uid]) for member in staff))
            staff_tasks = [asyncio.create_task(member.work(stop_staff)) for member in staff]
            admin_task = asyncio.create_task(admin())
            try:
                await asyncio.wait_for(asyncio.gather(*(owner_task(o) for o in owners)), drill.deadline)
            except asyncio.TimeoutError:
                for o in owners:
                    if not o.done and not o.failed:
                        o.fail(f"stuck at act {o.position} of {len(o.plan.acts)} after {drill.deadline:g} s")
            await asyncio.wait_for(admin_task, drill.deadline)
            await asyncio.wait_for(kill_task, drill.deadline)
            log(f"  calm after {record.kills} kills; letting the last bot process deliver what is queued")
            await settle(db_path, bot_box[0], drill, record)
            await asyncio.sleep(1.5)  # cards for leads created at the very end: the staff may still accept
            stop_staff.set()
            await asyncio.gather(*staff_tasks)
            await settle(db_path, bot_box[0], drill, record)
            await final_check(owners, drill, record)
        finally:
            kill_task.cancel()
            forget_task.cancel()
            calm.set()
            for bot in bot_box:
                code = await bot.stop()
                if code not in (0, -signal.SIGINT, 130):
                    record.problem(f"the last bot process ended with {code}")
        record.seconds = time.perf_counter() - started
        record.admin_confirmed = admin_person.confirmed
        verify(db_path, api, plans, owners, staff, content, texts, record)
    record.bot_errors = [line for line in (work / "bot.log").read_text(errors="replace").splitlines()
                         if " ERROR " in line or line.startswith("Traceback")]
    return record


async def settle(db_path: Path, bot: ChaosBot, drill: Drill, record: Record, stall: float = 20.0) -> None:
    """Wait until nothing is left to send (a row waiting for a retry counts as left).

    Lead cards go to two staff chats at one message a second each (Telegram's per-chat limit), so
    a burst of leads takes a while: only ``stall`` seconds without any progress is a problem.
    """
    left, since = None, time.perf_counter()
    while time.perf_counter() - since < stall:
        rows = await asyncio.to_thread(
            read_db, db_path, "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'claimed', 'sending')"
        )
        if rows[0][0] == 0:
            await asyncio.sleep(0.3)  # the last requests land
            return
        if left is None or rows[0][0] < left:
            left, since = rows[0][0], time.perf_counter()
        if not bot.alive():
            record.problem("the bot process died while settling")
            return
        await asyncio.sleep(0.2)
    bot.dump_tasks()
    rows = await asyncio.to_thread(
        read_db, db_path, "SELECT id, kind, status, attempts, not_before, error FROM outbox "
        "WHERE status IN ('pending', 'claimed', 'sending') ORDER BY id LIMIT 5"
    )
    now = int(time.time())
    record.problem(f"outbox stalled: nothing sent for {stall:g} s (asyncio tasks of the bot in its log): "
                   + "; ".join(f"row {r['id']} {r['kind']} {r['status']} attempts {r['attempts']} due in "
                               f"{r['not_before'] - now} s ({r['error']})" for r in rows))


async def final_check(owners: list[Owner], drill: Drill, record: Record) -> None:
    """Every owner sends /start once more: the bot must show the step after their last answer."""

    async def one(owner: Owner) -> None:
        if owner.failed:
            return
        acts = owner.plan.acts
        expected = resumed(acts[-1].then) if owner.position == len(acts) else resumed(acts[owner.position].at)
        since = len(owner.chat.messages())
        owner.restart()
        found = await owner.chat.until(lambda: owner.resumed_at(since), 10.0)
        if found is None:
            record.problem(f"owner {owner.plan.uid}: no answer to the final /start")
        elif found[1] != expected:
            record.problem(f"owner {owner.plan.uid}: the final /start shows {found[1]}, expected {expected}")

    await asyncio.gather(*(one(o) for o in owners))


# ----------------------------------------------------------------- the checks
def verify(db_path: Path, api: ChaosStandin, plans: list[OwnerPlan], owners: list[Owner], staff: list[StaffMember],
           content: Content, texts: Catalogs, record: Record) -> None:
    """Compare the database and the stand-in's record with what everyone saw."""
    verify_owners(db_path, owners, content, record)
    verify_leads(db_path, api, plans, staff, record)
    verify_outbox(db_path, api, record)
    for refusal in api.refusals:
        if refusal.method == "editMessageText" and "not modified" in refusal.description and str(refusal.params.get("chat_id")) == str(ADMIN):
            # After a restart the status board no longer knows what it last showed: it edits the
            # status message to the same text once, and ignores Telegram's "not modified".
            record.counts["status edits refused as unchanged"] += 1
            continue
        if refusal.method == "answerCallbackQuery" and "query is too old" in refusal.description:
            # A tap handled just before a kill, delivered again after it (its update was not yet
            # confirmed): the repeat is ignored, and answering it again is refused. Harmless.
            record.counts["tap answers refused as too old"] += 1
            continue
        record.problem(f"the stand-in refused {refusal.method}: {refusal.description}")


def verify_owners(db_path: Path, owners: list[Owner], content: Content, record: Record) -> None:
    """What each owner saw acknowledged is stored; nothing they did not give; nothing twice."""
    users = {r["user_ref"]: r for r in read_db(db_path, "SELECT * FROM users WHERE channel = 'telegram'")}
    progress: dict[tuple[int, str], sqlite3.Row] = {(r["user_id"], r["module_id"]): r for r in read_db(db_path, "SELECT * FROM progress")}
    answers: dict[tuple[int, str, str], list[sqlite3.Row]] = {}
    for r in read_db(db_path, "SELECT * FROM quiz_answers"):
        answers.setdefault((r["user_id"], r["module_id"], r["question_id"]), []).append(r)
    events = Counter((r["user_id"], r["kind"], json.loads(r["data"] or "{}").get("module")) for r in read_db(db_path, "SELECT * FROM events"))
    for owner in owners:
        plan, uid = owner.plan, owner.plan.uid
        row = users.get(str(uid))
        if row is None:
            record.problem(f"owner {uid}: no user row")
            continue
        user_id, profile = row["id"], json.loads(row["profile"])

        def stored(store: tuple) -> bool:
            kind = store[0]
            if kind == "lang":
                return row["lang"] == store[1]
            if kind == "consent":
                return row["consent"] == "given" and row["consent_at"] is not None
            if kind == "profile":
                return profile.get(store[1]) == plan.profile[store[1]]
            if kind == "onboarded":
                return row["onboarded_at"] is not None
            p = progress.get((user_id, store[1]))
            if kind == "started":
                return p is not None
            if kind == "lesson":
                return p is not None and p["lesson"] >= store[2]
            if kind == "quiz":
                got = answers.get((user_id, store[1], store[2]), [])
                return len(got) == 1 and got[0]["option_id"] == store[3] and got[0]["attempt"] == 1
            raise ValueError(kind)

        for index in sorted(owner.acked | owner.stored):
            act = plan.acts[index]
            missing = [store for store in act.stores if not stored(store)]
            what = "acknowledged" if index in owner.acked else "shown as stored by /start"
            for store in missing:
                record.problem(f"owner {uid}: answer {index} ({act.at} → {act.value!r}) was {what} but is not stored as {store}")
            record.answers_stored += index in owner.acked and not missing
        # Nothing stored that the owner did not give, nothing twice.
        for key, value in profile.items():
            if plan.profile.get(key) != value:
                record.problem(f"owner {uid}: profile {key} = {value!r}, the owner gave {plan.profile.get(key)!r}")
        for (u, module_id, question_id), got in answers.items():
            if u != user_id:
                continue
            if len(got) != 1 or got[0]["option_id"] != plan.quiz.get(module_id, {}).get(question_id) or got[0]["attempt"] != 1:
                record.problem(f"owner {uid}: quiz answers for {module_id}/{question_id}: {[dict(g) for g in got]}")
        for module_id in CORE:
            p = progress.get((user_id, module_id))
            if p is not None and (p["attempt"] > 1 or (p["passed"] and p["best"] != plan.scores[module_id])):
                record.problem(f"owner {uid}: {module_id} progress attempt {p['attempt']} best {p['best']} (planned {plan.scores[module_id]})")
        for (u, kind, module_id), n in events.items():
            if u == user_id and n > 1 and kind not in ("first_message",):
                record.problem(f"owner {uid}: event {kind} {module_id or ''} logged {n} times")
        if plan.completes and owner.done:
            if not all((p := progress.get((user_id, m))) is not None and p["passed"] for m in CORE):
                record.problem(f"owner {uid}: finished every quiz, but the core modules are not all passed")


def verify_leads(db_path: Path, api: ChaosStandin, plans: list[OwnerPlan], staff: list[StaffMember], record: Record) -> None:
    """One lead per qualified owner, one offer, one card per staff chat of its startup."""
    leads = read_db(db_path, "SELECT l.*, u.user_ref FROM leads l JOIN users u ON u.id = l.user_id")
    record.counts["leads"] = len(leads)
    record.counts["leads duplicated"] = len(leads) - len({r["user_id"] for r in leads})
    by_owner = {int(r["user_ref"]): r for r in leads}
    for plan in plans:
        if plan.qualifies and plan.uid not in by_owner:
            record.problem(f"owner {plan.uid} qualified, but has no lead")
        if not plan.qualifies and plan.uid in by_owner:
            record.problem(f"owner {plan.uid} has a lead without qualifying")
    record.counts["leads expected"] = sum(p.qualifies for p in plans)
    offers = read_db(db_path, "SELECT lead_id, startup_id, COUNT(*) AS n FROM lead_offers GROUP BY lead_id, startup_id")
    record.counts["offers duplicated"] = sum(r["n"] - 1 for r in offers)
    created = read_db(db_path, "SELECT lead_id, COUNT(*) AS n FROM lead_history WHERE status = 'created' GROUP BY lead_id")
    record.counts["lead history 'created' twice"] = sum(r["n"] > 1 for r in created)
    for name in ("leads duplicated", "offers duplicated", "lead history 'created' twice"):
        if record.counts[name]:
            record.problem(f"{name}: {record.counts[name]}")
    cards_rows = read_db(db_path, "SELECT dedup_key, chat_ref, status FROM outbox WHERE kind = 'lead_card'")
    for member in staff:
        seen = Counter(int(m.group(1)) for m in (CARD.match(msg.original.text or "") for msg in api.messages(member.uid)) if m)
        rows = {int(r["dedup_key"].split(":")[1]): r["status"] for r in cards_rows if r["chat_ref"] == str(member.uid)}
        for lead in leads:
            status, n = rows.get(lead["id"]), seen.get(lead["id"], 0)
            if lead["startup_id"] != member.startup_id:
                if status is not None or n:
                    record.problem(f"lead {lead['id']} of {lead['startup_id']}: a card for staff chat {member.uid} of {member.startup_id}")
            elif status is None:
                record.problem(f"lead {lead['id']}: no card queued for staff chat {member.uid}")
            elif n > 1:
                record.problem(f"lead {lead['id']}: {n} cards in staff chat {member.uid}")
            elif n == 0 and status != "unknown":
                record.problem(f"lead {lead['id']}: no card arrived in staff chat {member.uid} (row {status})")
    status = {r["id"]: r["status"] for r in leads}
    for lead_id in record.accepted_acked:
        if status.get(lead_id) != "accepted":
            record.problem(f"lead {lead_id}: staff saw the accept acknowledged, but it is {status.get(lead_id)}")
    record.counts["leads accepted"] = sum(s == "accepted" for s in status.values())


def verify_outbox(db_path: Path, api: ChaosStandin, record: Record) -> None:
    """Every outbox row arrived once; 'unknown' rows at most once; nothing left unsent."""
    rows = read_db(
        db_path,
        "SELECT o.id, o.kind, o.chat_ref, o.status, o.batch_id, CASE o.payload WHEN '{\"broadcast\": \"en\"}' THEN b.payload_en "
        "WHEN '{\"broadcast\": \"hi\"}' THEN b.payload_hi ELSE o.payload END AS payload "
        "FROM outbox o LEFT JOIN broadcasts b ON o.kind = 'broadcast' AND b.id = o.batch_id",
    )
    arrived: dict[int, Counter] = {}
    groups: dict[tuple[str, str], list[sqlite3.Row]] = {}
    for r in rows:
        text = shown(json.loads(r["payload"])["text"])
        groups.setdefault((r["chat_ref"], text), []).append(r)
    for (chat_ref, text), group in groups.items():
        chat = int(chat_ref)
        if chat not in arrived:
            arrived[chat] = Counter((m.original.text or "") for m in api.messages(chat))
        got = arrived[chat][text]
        sent = sum(r["status"] == "sent" for r in group)
        doubt = sum(r["status"] == "unknown" for r in group)
        kind = group[0]["kind"]
        record.counts[f"{kind} queued"] += len(group)
        record.counts[f"{kind} delivered"] += min(got, sent + doubt)
        record.counts[f"{kind} in doubt"] += doubt
        record.counts[f"{kind} in doubt, arrived"] += max(0, min(doubt, got - sent))
        if got > sent + doubt:
            record.counts[f"{kind} duplicated"] += got - (sent + doubt)
            record.problem(f"{kind} to chat {chat}: arrived {got} times, {sent} sent + {doubt} in doubt: {text[:60]!r}")
        if got < sent:
            record.counts[f"{kind} missing"] += sent - got
            record.problem(f"{kind} to chat {chat}: marked sent {sent} times, arrived {got}: {text[:60]!r}")
        for r in group:
            if r["status"] not in ("sent", "unknown"):
                record.counts[f"{kind} {r['status']}"] += 1
                record.problem(f"{kind} row {r['id']} to chat {chat} ended '{r['status']}'")
    in_doubt = sum(r["status"] == "unknown" for r in rows)
    record.counts["in doubt"] = in_doubt
    if in_doubt > record.kills * record.in_flight_limit:
        record.problem(f"{in_doubt} rows in doubt after {record.kills} kills: more than kills × in-flight limit {record.in_flight_limit}")
    broadcasts = read_db(db_path, "SELECT id, recipients, created_by FROM broadcasts")
    for b in broadcasts:
        n = sum(r["batch_id"] == b["id"] and r["kind"] == "broadcast" for r in rows)
        if n != b["recipients"]:
            record.problem(f"broadcast #{b['id']}: {n} outbox rows for {b['recipients']} recipients")
    by_admin = sum(b["created_by"] == f"telegram:{ADMIN}" for b in broadcasts)
    record.counts["broadcasts"] = len(broadcasts)
    if by_admin != record.admin_confirmed or len(broadcasts) != by_admin + len(record.cli_broadcasts):
        record.problem(f"{len(broadcasts)} broadcasts created: {by_admin} by the admin, who confirmed {record.admin_confirmed}, "
                       f"and {len(record.cli_broadcasts)} with saathi broadcast")
    status = Counter(int(m.group(1)) for m in (re.match(r"📣 Broadcast #(\d+)", msg.original.text or "") for msg in api.messages(ADMIN)) if m)
    record.counts["status messages duplicated"] = sum(n - 1 for n in status.values() if n > 1)
    if record.counts["status messages duplicated"]:
        record.problem(f"broadcast status messages posted more than once: {dict(status)}")
    reminders = sum(r["kind"] == "reminder" for r in rows)
    if reminders != record.reminders_expected:
        record.problem(f"{reminders} reminders queued for {record.reminders_expected} owners who went quiet")


# ----------------------------------------------------------------- the report
def report(record: Record) -> list[str]:
    """The drill's numbers, one per line."""
    c = record.counts
    d = record.drill

    def delivery(kind: str, label: str) -> str:
        return (f"  {label:<22} {c[kind + ' queued']:>6} queued, {c[kind + ' delivered']:>6} delivered, "
                f"{c[kind + ' duplicated']} duplicated, {c[kind + ' missing']} missing, "
                f"{c[kind + ' in doubt']} in doubt ({c[kind + ' in doubt, arrived']} of them arrived)")

    uptimes = sorted(record.kill_uptimes)
    return [
        f"  owners {d.owners} ({record.owners_done} finished their plan), startups {len(STARTUPS)} with "
        f"{sum(len(chats) for *_, chats in STARTUPS)} staff chats, broadcast rate {d.rate:g}/s",
        f"  SIGKILLs survived:     {record.kills:>6}  (bot started {record.starts} times, polling after "
        f"{sum(record.startups) / max(1, len(record.startups)):.1f} s on average; uptime before a kill "
        f"{uptimes[0] if uptimes else 0:.1f}–{uptimes[-1] if uptimes else 0:.1f} s; {record.hurried} timed to land "
        "within 80 ms of a lead-making answer or a Confirm)",
        f"  updates sent:          {record.updates:>6}  (/start after silence: {record.resumes}; same button tapped again: {record.retaps}; "
        f"answers given again after /start: {record.retried_answers})",
        f"  answers acknowledged:  {record.acknowledged:>6}",
        f"  answers stored:        {record.answers_stored:>6}  of the acknowledged (+ {record.stored_unacknowledged} stored whose reply "
        f"a kill lost, found by /start)",
        f"  leads created:         {c['leads']:>6}  (expected {c['leads expected']}; duplicated {c['leads duplicated']}, "
        f"offers duplicated {c['offers duplicated']}; accepted {c['leads accepted']})",
        delivery("lead_card", "lead cards:"),
        delivery("lead_notice", "owner notices:"),
        f"  broadcasts:            {c['broadcasts']:>6}  ({len(record.cli_broadcasts)} with saathi broadcast, "
        f"{record.admin_confirmed} with the /broadcast wizard; status messages duplicated {c['status messages duplicated']}, "
        f"status edits refused as unchanged {c['status edits refused as unchanged']})",
        f"  repeated updates:      {c['tap answers refused as too old']:>6}  taps delivered again after a kill and answered again "
        "(refused as too old, nothing else happened)",
        delivery("broadcast", "broadcast messages:"),
        delivery("reminder", "reminders:"),
        f"  rows in doubt:         {c['in doubt']:>6}  (limit: {record.kills} kills × {record.in_flight_limit} in flight)",
        f"  time:                  {record.seconds:>6.1f} s",
        f"  bot log errors:        {len(record.bot_errors):>6}",
        f"  problems:              {len(record.problems):>6}",
    ]
