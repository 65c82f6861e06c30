"""100,000 owners: start-up, memory and CPU per update must not grow with the number of owners.

    .venv/bin/python bench/scale.py                 # 1,000 and 100,000 owners
    .venv/bin/python bench/scale.py --owners 20000  # a smaller second database

Seeds two databases with the same kind of owners (owner *i* is the same in both): spread over
every onboarding step, the refusals, and the training modules (lessons, quizzes, attempts,
answers, passes), with their event log, handled update ids, outbox history (reminders sent,
a broadcast delivered), and leads with offers and history where the leads tables exist. The
seeding is plain SQL (executemany in large transactions), no engine calls.

Then, for each database, starts the bot as its own process against a Bot API stand-in and
measures: start-up (process spawn → the reply to an update that was waiting before it started),
peak RSS, and CPU per update while a few hundred of the seeded owners (the same ones in both)
each send a few updates. Finally every SQL statement the bot ran per update (recorded with
SQLite's trace callback, ``BENCH_SQL_TRACE``) is checked with EXPLAIN QUERY PLAN on the large
database, and any that scans a table is printed.

Targets (issue 6): start-up under 2 s; peak RSS under 150 MB and within 10% of the 1,000-owner
figure; CPU per update within 10% of it.

``--year`` (issue 14) instead grows a database of ``--owners`` by a simulated year of traffic
(``--per-day`` updates a day, quiz answers and events among them, reminders, a broadcast to every
onboarded owner each week), once without maintenance and once with the bot's daily maintenance,
and prints both sizes every 30 days; target: under 2 GB, flat once the retention windows are full.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import TOKEN, BenchStandin, BotProcess, machine  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.core.content import Content  # noqa: E402
from bot.core.session import ModuleProgress  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.storage.outbox import broadcast_ref  # noqa: E402

DAY = 86_400
NOW = int(time.time())
FIRST_OWNER = 7_000_000
NAMES = ("Sunita Devi", "रमेश कुमार", "Asha", "Mohd. Irfan", "प्रिया शर्मा", "Gurpreet Singh", "Lakshmi", "Anil")
BUSINESSES = ("Sunita Brass Crafts", "Sharma & Sons", "श्री गणेश हैंडलूम", "Irfan Leather Works", "Kaveri Spices")
DISTRICTS = ("Moradabad", "Tiruppur", "Surat", "जयपुर", "Kanpur", "Ludhiana", "Kochi")
STARTUPS = ("exportkart", "tradebridge", "shipsaathi", "globalhaat", "bharatb2b")


# ----------------------------------------------------------------- seeding
class Seeder:
    """Rows for owner *i*, the same for every database size; buffered and written in bulk."""

    def __init__(self, content: Content):
        self.content = content
        self.flow = content.onboarding
        self.steps = []
        step = self.flow.step(self.flow.first)
        while step is not None:
            self.steps.append(step)
            step = self.flow.step(step.next) if step.next else None
        self.modules = list(content.modules)
        self.rows: dict[str, list[tuple]] = {
            k: [] for k in ("users", "progress", "quiz_answers", "events", "seen", "outbox", "leads", "offers", "history")
        }
        self.update_id = 10_000_000
        self.lead_id = 0

    def owner(self, i: int) -> None:
        """Queue the rows of owner ``i``."""
        rng = random.Random(i)
        uid = i + 1
        lang = "hi" if rng.random() < 0.6 else "en"
        first_seen = NOW - rng.randrange(1, 120) * DAY
        last_seen = min(NOW - 60, first_seen + rng.randrange(0, NOW - first_seen))
        profile: dict = {}
        progress: dict[str, ModuleProgress] = {}
        consent, consent_at, onboarded_at = "", None, None
        events = [("first_message", "{}", first_seen)]
        stage = rng.random()
        seq = rng.randrange(2, 40)
        if stage < 0.03:
            flow, step = "refused", ""
            consent, consent_at = "refused", first_seen + 30
            events.append(("consent_refused", json.dumps({"version": self.flow.version, "lang": lang}), consent_at))
        else:
            consent, consent_at = "given", first_seen + 30
            events.append(("consent_given", json.dumps({"version": self.flow.version, "lang": lang}), consent_at))
            answered = [s for s in self.steps if s.kind not in ("consent", "summary") and s.id != "language"]
            if stage < 0.30:  # somewhere in onboarding
                upto = rng.randrange(0, len(answered) + 1)
                for s in answered[:upto]:
                    profile[s.field] = self._answer(s, rng)
                flow, step = "onboarding", (answered[upto].id if upto < len(answered) else "summary")
            else:
                for s in answered:
                    profile[s.field] = self._answer(s, rng)
                onboarded_at = consent_at + rng.randrange(120, 3600)
                events.append(("onboarding_confirmed", "{}", onboarded_at))
                flow, step = self._training(rng, progress, events, onboarded_at)
        seed = rng.getrandbits(31)
        state = json.dumps({"flow": flow, "step": step, "seq": seq, "draft": {}, "seed": seed}, ensure_ascii=False)
        referral = rng.choice(STARTUPS) if rng.random() < 0.1 else None
        self.rows["users"].append((
            uid, "telegram", str(FIRST_OWNER + i), lang, state, json.dumps(profile, ensure_ascii=False), consent, consent_at,
            self.flow.version if consent_at else None, lang if consent_at else None, onboarded_at, referral, first_seen, last_seen,
            int(rng.random() < 0.05),
        ))
        for module_id, p in progress.items():
            self.rows["progress"].append((
                uid, module_id, p.lesson, p.attempt, p.question, p.score, p.best, int(p.passed), int(p.in_quiz),
                onboarded_at, last_seen if p.passed else None, last_seen,
            ))
            module = self.content.module(module_id)
            for attempt in range(1, p.attempt + 1):
                questions = module.quiz if attempt < p.attempt or not p.in_quiz else module.quiz[: p.question]
                for q in questions:
                    option = rng.choice(q.options)
                    self.rows["quiz_answers"].append((uid, module_id, attempt, q.id, option.id, int(option.correct), last_seen))
        for kind, data, at in events:
            self.rows["events"].append((uid, kind, data, at))
        for _ in range(rng.randrange(10, 40)):  # every update the owner ever sent
            self.update_id += 1
            self.rows["seen"].append(("telegram", str(self.update_id), last_seen))
        if onboarded_at and rng.random() < 0.3:
            self.rows["outbox"].append(self._outbox(uid, i, "reminder", f"reminder:{uid}:{last_seen}:1", None, last_seen))
        if onboarded_at and rng.random() < 0.5:
            self.rows["outbox"].append(self._outbox(uid, i, "broadcast", f"bc:1:{uid}", 1, NOW - 10 * DAY))
        if onboarded_at and self._qualifies(profile, progress):
            self._lead(uid, rng, profile, lang, referral, last_seen)

    def _answer(self, step, rng: random.Random):
        if step.kind == "choice":
            return rng.choice(step.options).id
        if step.kind == "multi":
            return sorted(o.id for o in rng.sample(step.options[:-1], rng.randint(1, 3)))
        if step.kind == "phone":
            return f"+919{rng.randrange(10**8, 10**9)}"
        pool = {"owner_name": NAMES, "business_name": BUSINESSES, "district": DISTRICTS}.get(step.field, NAMES)
        return rng.choice(pool)

    def _training(self, rng: random.Random, progress: dict, events: list, at: int) -> tuple[str, str]:
        """Pass modules in order for a while, then stop in a lesson, a quiz or the menu."""
        for module in self.modules:
            if any(not (progress.get(r) and progress[r].passed) for r in module.requires):
                continue
            roll = rng.random()
            at += rng.randrange(600, 5 * DAY)
            events.append(("module_started", json.dumps({"module": module.id}), at))
            if roll < 0.55:  # passed (sometimes at the second attempt)
                attempts = 1 if rng.random() < 0.7 else 2
                best = rng.randint(module.pass_mark, len(module.quiz))
                progress[module.id] = ModuleProgress(len(module.lessons), attempts, len(module.quiz), best, best, True, False)
                for attempt in range(1, attempts + 1):
                    events.append(("quiz_started", json.dumps({"module": module.id, "attempt": attempt}), at))
                    events.append(("quiz_finished", json.dumps({"module": module.id, "attempt": attempt, "score": best, "passed": True}), at))
                events.append(("module_passed", json.dumps({"module": module.id, "score": best}), at))
                continue
            if roll < 0.75:
                progress[module.id] = ModuleProgress(lesson=rng.randrange(0, len(module.lessons)))
                return "lesson", module.id
            if roll < 0.9:
                question = rng.randrange(0, len(module.quiz))
                progress[module.id] = ModuleProgress(len(module.lessons), 1, question, rng.randint(0, question), None, False, True)
                events.append(("quiz_started", json.dumps({"module": module.id, "attempt": 1}), at))
                return "quiz", module.id
            break
        return "menu", ""

    def _qualifies(self, profile: dict, progress: dict) -> bool:
        rules = getattr(self.content, "qualification", None)
        if rules is None:
            return False
        try:
            from bot.core.leads import readiness

            return readiness(rules, self.content, profile, progress).qualifies
        except Exception:  # the leads feature changed shape: no leads rather than wrong ones
            return False

    def _lead(self, uid: int, rng: random.Random, profile: dict, lang: str, referral: str | None, at: int) -> None:
        self.lead_id += 1
        startup = referral or rng.choice(STARTUPS)
        status = rng.choice(("offered", "accepted", "contacted", "listed", "first_order", "lost"))
        if status == "offered":  # still within the startup's time to answer, as in a running programme
            at = NOW - rng.randrange(1, 24) * 3600
        self.rows["leads"].append((
            self.lead_id, uid, rng.randint(50, 100), "[]", profile.get("state"), profile.get("sector"), lang, referral,
            startup, status, at, at, at,
        ))
        self.rows["offers"].append((self.lead_id, startup, at, None if status == "offered" else at + 3600,
                                    None if status == "offered" else "accepted"))
        self.rows["history"] += [(self.lead_id, "created", None, "system", "", at), (self.lead_id, status, startup, "system", "", at)]

    def _outbox(self, uid: int, i: int, kind: str, dedup: str, batch: int | None, at: int) -> tuple:
        payload = json.dumps({"text": "👋 Shall we continue?", "choices": [["go:export_ready", "Continue"]], "columns": 1}, ensure_ascii=False)
        return (uid, "telegram", str(FIRST_OWNER + i), kind, payload, dedup, batch, "sent", 1, at, at, at + 5, str(i))

    def flush(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        """Write the buffered rows in one transaction."""
        r = self.rows
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO users (id, channel, user_ref, lang, state, profile, consent, consent_at, consent_version, consent_lang, "
            "onboarded_at, referral_code, first_seen_at, last_seen_at, reminders_off) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            r["users"],
        )
        conn.executemany(
            "INSERT INTO progress (user_id, module_id, lesson, attempt, question, score, best, passed, in_quiz, started_at, "
            "passed_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            r["progress"],
        )
        conn.executemany("INSERT OR IGNORE INTO quiz_answers VALUES (?,?,?,?,?,?,?)", r["quiz_answers"])
        conn.executemany("INSERT INTO events (user_id, kind, data, at) VALUES (?,?,?,?)", r["events"])
        conn.executemany("INSERT INTO seen_updates (channel, update_id, at) VALUES (?,?,?)", r["seen"])
        conn.executemany(
            "INSERT INTO outbox (user_id, channel, chat_ref, kind, payload, dedup_key, batch_id, status, attempts, not_before, "
            "created_at, sent_at, message_ref) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            r["outbox"],
        )
        if {"leads", "lead_offers", "lead_history"} <= tables:
            conn.executemany(
                "INSERT INTO leads (id, user_id, score, reasons, state, sector, lang, referral_startup_id, startup_id, status, "
                "offered_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                r["leads"],
            )
            conn.executemany("INSERT INTO lead_offers (lead_id, startup_id, offered_at, answered_at, outcome) VALUES (?,?,?,?,?)", r["offers"])
            conn.executemany("INSERT INTO lead_history (lead_id, status, startup_id, actor, note, at) VALUES (?,?,?,?,?,?)", r["history"])
        conn.execute("COMMIT")
        for rows in r.values():
            rows.clear()


def seed(path: Path, owners: int, content: Content) -> dict[str, int]:
    """A database at ``path`` (schema by the bot's own migrations) with ``owners`` owners."""
    for old in path.parent.glob(path.name + "*"):
        old.unlink()

    async def create() -> None:
        db = await Database.open(path)
        await db.close()

    asyncio.run(create())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # seeding only: a crash just means seeding again
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "startups" in tables:
        conn.executemany(
            "INSERT OR IGNORE INTO startups (id, name, referral_code, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            [(s, s.title(), s, NOW - 200 * DAY, NOW - 200 * DAY) for s in STARTUPS],
        )
    if "startup_staff" in tables:
        conn.executemany(
            "INSERT OR IGNORE INTO startup_staff (channel, chat_ref, startup_id, name, lang, linked_at) VALUES ('telegram', ?, ?, ?, 'en', ?)",
            [(str(900_000 + 10 * n + k), s, f"{s} staff {k}", NOW - 150 * DAY) for n, s in enumerate(STARTUPS) for k in range(2)],
        )
    if "broadcasts" in tables:
        try:
            conn.execute(
                "INSERT INTO broadcasts (id, kind, module_id, recipients, send_at, status, created_by, reported, created_at, finished_at) "
                "VALUES (1, 'module', 'export_ready', 0, ?, 'done', 'cli', 1, ?, ?)",
                (NOW - 10 * DAY, NOW - 10 * DAY, NOW - 9 * DAY),
            )
        except sqlite3.Error as exc:
            print(f"  (no broadcast row: {exc})")
    seeder = Seeder(content)
    for i in range(owners):
        seeder.owner(i)
        if len(seeder.rows["users"]) >= 20_000:
            seeder.flush(conn, tables)
    seeder.flush(conn, tables)  # no ANALYZE: the bot never runs it, so its plans must not depend on it
    counts = {}
    for table in ("users", "progress", "quiz_answers", "events", "seen_updates", "outbox", "leads", "lead_history"):
        if table in tables:
            counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return counts


# ----------------------------------------------------------------- running the bot on it
async def measure(path: Path, driven: int, per_owner: int, trace: Path) -> dict[str, float]:
    """Start the bot on ``path``; start-up, CPU per update and peak RSS for ``driven`` owners."""
    async with BenchStandin(TOKEN) as api:
        uids = [FIRST_OWNER + i for i in range(driven)]
        last: dict[int, float] = {}  # when each chat last got a message or an edit
        screens: dict[int, object] = {}  # the latest message each chat got

        def seen(kind, message, at):
            last[message.chat_id] = at
            if kind == "send":
                screens[message.chat_id] = message

        for uid in uids:
            api.add_user(uid, language_code="hi")
            api.watchers[uid] = seen
        api.send_text(uids[0], "/start")  # waiting before the bot even starts
        bot = BotProcess("bot", api, path, env={"BENCH_SQL_TRACE": str(trace)})
        try:
            while uids[0] not in last:
                if not bot.alive():
                    raise SystemExit(f"the bot exited with {bot.proc.returncode}")
                await asyncio.sleep(0.005)
            startup = last[uids[0]] - bot.started
            await asyncio.sleep(1.0)  # the first turn and post_init's work finish
            bot.proc.send_signal(signal.SIGUSR1)  # the SQL trace: from here on, the per-update path
            await asyncio.sleep(0.1)
            cpu_before = bot.cpu_seconds()
            rss_start = bot.memory_mb()[0]
            counts = await asyncio.gather(*(_owner(api, uid, per_owner, last, screens) for uid in uids))
            cpu = bot.cpu_seconds() - cpu_before
            rss_now, rss_peak = bot.memory_mb()
        finally:
            await bot.stop()
        updates = sum(counts)
        return {
            "startup": startup, "cpu_ms": 1000 * cpu / updates, "updates": updates, "rss_peak": rss_peak,
            "rss_start": rss_start, "rss_now": rss_now, "refusals": len(api.refusals),
        }


async def _owner(api: BenchStandin, uid: int, actions: int, last: dict, screens: dict) -> int:
    """Act on what is on screen: /start first, then tap a button or type; one update at a time."""
    rng = random.Random(uid)
    done = 0
    for n in range(actions):
        before = last.get(uid, 0.0)
        message = screens.get(uid)
        if n == 0 or message is None:
            api.send_text(uid, "/start")
        elif message.buttons:
            api.tap(uid, message.message_id, rng.choice([d for _, d in message.buttons if d]))
        elif message.keyboard:
            api.send_contact(uid, f"+919{rng.randrange(10**8, 10**9)}")
        else:
            api.send_text(uid, rng.choice(DISTRICTS))
        done += 1
        # The turn is over when its replies have stopped coming for a moment.
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and (last.get(uid, 0.0) == before or time.perf_counter() - last[uid] < 0.25):
            await asyncio.sleep(0.05)
    return done


# ----------------------------------------------------------------- query plans
def check_plans(path: Path, trace: Path) -> None:
    """EXPLAIN QUERY PLAN for every statement the bot ran per update; print the ones that scan."""
    if not trace.exists():
        print("  (no SQL trace was written)")
        return
    recorded = json.loads(trace.read_text())
    per_update = [r for r in recorded if r["phase"] == 1]
    startup = [r for r in recorded if r["phase"] == 0]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    scans = 0
    print(f"\n{len(per_update)} distinct statements on the per-update path ({sum(r['count'] for r in per_update):,} runs):")
    for record in sorted(per_update, key=lambda r: -r["count"]):
        plan = _plan(conn, record["example"])
        bad = [p for p in plan if _scans(p)]
        scans += bool(bad)
        mark = "SCAN ✗" if bad else "ok"
        print(f"  {record['count']:6,}× {mark:6} {record['template'][:150]}")
        for detail in bad:
            print(f"           {detail}")
    print(f"  → {scans} per-update statement(s) scan a table" + (" ✗" if scans else " ✓"))
    startup_scans = [(r, [p for p in _plan(conn, r["example"]) if _scans(p)]) for r in startup]
    startup_scans = [(r, bad) for r, bad in startup_scans if bad]
    if startup_scans:
        print(f"  start-up and background statements that scan ({len(startup_scans)}; they run once or on a timer, not per update):")
        for record, bad in startup_scans:
            print(f"    {record['template'][:150]}")
            for detail in bad:
                print(f"        {detail}")
    conn.close()


def _plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "REPLACE"):
        return []
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    except sqlite3.Error as exc:
        return [f"(could not explain: {exc})"]


def _scans(detail: str) -> bool:
    """A full pass over a table (not a search through an index, not a one-row constant)."""
    return detail.startswith("SCAN ") and "CONSTANT ROW" not in detail and " USING " not in detail


# ----------------------------------------------------------------- a year of traffic
def _invitation_payload(content: Content) -> str:
    """A module invitation as the outbox stores it, in Hindi: stored once on the broadcast."""
    from bot.core.broadcast import invitation
    from bot.i18n import Catalogs
    from bot.storage.outbox import dump_say

    return dump_say(invitation(content.module("payments"), Catalogs.load(), "hi"))


def _table_bytes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes on disk per table, its indexes included (SQLite's dbstat)."""
    indexes = {r[0]: r[1] for r in conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")}
    out: dict[str, int] = {}
    for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        table = indexes.get(name, name)
        out[table] = out.get(table, 0) + size
    return out


def _file_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


async def year(workdir: Path, owners: int, days: int, per_day: int, content: Content) -> None:
    """Grow a database of ``owners`` by ``days`` of traffic, twice: without maintenance, and with the bot's
    daily maintenance (``SqliteMaintenance``: the same code the ``maintenance`` worker runs; its integrity check
    and optimize once at the end, timed). Prints the size every 30 days."""
    from bot.storage.maintenance import SqliteMaintenance

    base = workdir / f"year-{owners}.sqlite3"
    started = time.perf_counter()
    counts = await asyncio.to_thread(seed, base, owners, content)  # seed runs its own event loop
    print(f"\nseeded {owners:,} owners in {time.perf_counter() - started:.0f} s ({_file_mb(base):,.0f} MB): "
          + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    plain, kept = workdir / "year-plain.sqlite3", workdir / "year-maintained.sqlite3"
    for copy in (plain, kept):
        for old in copy.parent.glob(copy.name + "*"):
            old.unlink()
        copy.write_bytes(base.read_bytes())
    onboarded = [r[0] for r in sqlite3.connect(base).execute("SELECT id FROM users WHERE onboarded_at IS NOT NULL")]
    invitation = _invitation_payload(content)
    reminder = json.dumps({"text": "👋 नमस्ते! आपका मॉड्यूल अधूरा है। आगे बढ़ें?", "choices": [["go:payments", "आगे बढ़ें"]],
                           "columns": 1}, ensure_ascii=False)
    conns = {name: sqlite3.connect(path, isolation_level=None) for name, path in (("plain", plain), ("kept", kept))}
    for conn in conns.values():
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # the bench's own writes; the bot's maintenance uses its own connection
    db = await Database.open(kept)
    maintenance = SqliteMaintenance(db)
    rng = random.Random(14)
    update_id, attempt, dedup = 50_000_000, 0, 0
    start = NOW
    print(f"\na simulated year: {per_day:,} updates a day ({per_day / DAY:.2f}/s), a fifth of them quiz answers, a third logged"
          f" as events; {per_day // 50:,} reminders a day; a broadcast to {len(onboarded):,} owners every week")
    print(f"{'day':>5} {'no maintenance':>16} {'daily maintenance':>18}   seen_updates (plain / kept)   outbox (plain / kept)")
    for day in range(1, days + 1):
        today = start + day * DAY
        seen, answers, events, outbox = [], [], [], []
        active: dict[int, int] = {}  # owner → when they last wrote today
        for _ in range(per_day):
            update_id += 1
            uid = rng.choice(onboarded)
            at = today - rng.randrange(DAY)
            active[uid] = max(at, active.get(uid, 0))
            seen.append(("telegram", str(update_id), at))
            roll = rng.random()
            if roll < 0.2:
                attempt += 1
                answers.append((uid, "payments", attempt, "q1", "a", 1, at))
            if roll < 0.33:
                events.append((uid, "quiz_finished", '{"module": "payments", "attempt": 1, "score": 4, "passed": true}', at))
        for _ in range(per_day // 50):
            dedup += 1
            uid = rng.choice(onboarded)
            outbox.append((uid, "telegram", str(FIRST_OWNER + uid), "reminder", reminder, f"year:r:{dedup}", None, "sent", 1,
                           today, today, today + 5, "1"))
        if day % 7 == 0:  # the message is stored once on the broadcast; each row names only its language
            outbox += [(uid, "telegram", str(FIRST_OWNER + uid), "broadcast", broadcast_ref("hi"), f"year:bc:{day}:{uid}", 1000 + day,
                        "sent", 1, today, today, today + 60, "1") for uid in onboarded]
        for conn in conns.values():
            conn.execute("BEGIN")
            if day % 7 == 0:
                conn.execute("INSERT INTO broadcasts (id, kind, module_id, payload_hi, segment, send_at, created_by, created_at, "
                             "recipients, status) VALUES (?, 'module', 'payments', ?, '{}', ?, 'cli', ?, ?, 'done')",
                             (1000 + day, invitation, today, today, len(onboarded)))
            conn.executemany("INSERT INTO seen_updates (channel, update_id, at) VALUES (?,?,?)", seen)
            conn.executemany("INSERT OR IGNORE INTO quiz_answers VALUES (?,?,?,?,?,?,?)", answers)
            conn.executemany("INSERT INTO events (user_id, kind, data, at) VALUES (?,?,?,?)", events)
            conn.executemany(
                "INSERT INTO outbox (user_id, channel, chat_ref, kind, payload, dedup_key, batch_id, status, attempts, not_before, "
                "created_at, sent_at, message_ref) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", outbox)
            conn.executemany("UPDATE users SET last_seen_at = ? WHERE id = ?", [(at, uid) for uid, at in active.items()])
            conn.execute("COMMIT")
        conns["plain"].execute("PRAGMA wal_checkpoint(PASSIVE)")  # without maintenance nobody truncates the WAL; it is reused
        await maintenance.prune_seen(today)
        await maintenance.prune_outbox(today)
        await maintenance.prune_events(today)
        await maintenance.prune_answers(today)
        await maintenance.checkpoint()
        if day % 30 == 0 or day == days:
            rows = {name: (c.execute("SELECT COUNT(*) FROM seen_updates").fetchone()[0],
                           c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]) for name, c in conns.items()}
            print(f"{day:>5} {_file_mb(plain):>13,.0f} MB {_file_mb(kept):>15,.0f} MB   "
                  f"{rows['plain'][0]:>12,} / {rows['kept'][0]:<12,} {rows['plain'][1]:>10,} / {rows['kept'][1]:,}", flush=True)
    began = time.perf_counter()
    check = await maintenance.quick_check()
    took_check = time.perf_counter() - began
    began = time.perf_counter()
    await maintenance.optimize()
    took_optimize = time.perf_counter() - began
    await db.close()
    rows_plain = conns["plain"].execute("SELECT COUNT(*) FROM seen_updates").fetchone()[0]
    seen_row = _table_bytes(conns["plain"]).get("seen_updates", 0) / max(1, rows_plain)  # densely filled pages
    for name, conn in conns.items():
        sizes = _table_bytes(conn)
        conn.close()
        top = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
        print(f"  {name:6} by table: " + ", ".join(f"{t} {b / 1e6:,.0f} MB" for t, b in top))
    print(f"  quick_check on the maintained database: {check[0]} in {took_check:.1f} s (on a reader of its own: turns go on);"
          f" PRAGMA optimize {took_optimize:.1f} s")
    full = 100 * DAY  # the "a year at 100 updates a second"
    print(f"  at 100 updates/s ({full:,} a day) handled ids alone, at {seen_row:.0f} bytes each with their indexes: "
          f"{full * 365 * seen_row / 1e9:,.0f} GB a year kept forever, {full * seen_row / 1e9:,.1f} GB with the one-day window")


# ----------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, default=100_000, help="owners in the large database (default 100,000)")
    parser.add_argument("--small", type=int, default=1_000, help="owners in the small database (default 1,000)")
    parser.add_argument("--driven", type=int, default=300, help="seeded owners who write during the measurement (default 300)")
    parser.add_argument("--updates", type=int, default=3, help="updates each of them sends (default 3)")
    parser.add_argument("--keep", type=Path, help="keep the databases in this folder")
    parser.add_argument("--year", action="store_true",
                        help="instead: grow a database of --owners by a simulated year, with and without the daily maintenance")
    parser.add_argument("--days", type=int, default=365, help="with --year: days to simulate (default 365)")
    parser.add_argument("--per-day", type=int, default=100_000, help="with --year: updates a day (default 1,00,000)")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    content = load_content()
    if args.year:
        with tempfile.TemporaryDirectory(prefix="saathi-year-") as tmp:
            workdir = args.keep or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            asyncio.run(year(workdir, args.owners, args.days, args.per_day, content))
        return
    results = {}
    with tempfile.TemporaryDirectory(prefix="saathi-scale-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for owners in (args.small, args.owners):
            path = workdir / f"owners-{owners}.sqlite3"
            started = time.perf_counter()
            counts = seed(path, owners, content)
            took = time.perf_counter() - started
            size = sum(p.stat().st_size for p in workdir.glob(path.name + "*")) / 2**20
            print(f"\nseeded {owners:,} owners in {took:.1f} s ({size:.0f} MB): " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
            trace = workdir / f"trace-{owners}.json"
            results[owners] = asyncio.run(measure(path, min(args.driven, owners), args.updates, trace))
            r = results[owners]
            print(f"  start-up → first answered update {r['startup']:.2f} s; {r['updates']:,} updates at {r['cpu_ms']:.2f} ms CPU each;"
                  f" RSS {r['rss_start']:.1f} MB before them, peak {r['rss_peak']:.1f} MB; refusals {r['refusals']}")
        small, large = results[args.small], results[args.owners]
        cpu_ratio = large["cpu_ms"] / small["cpu_ms"]
        rss_ratio = large["rss_peak"] / small["rss_peak"]
        print(f"\n{'':28}{args.small:>12,}{args.owners:>12,}   target")
        print(f"{'start-up → first reply':28}{small['startup']:>11.2f}s{large['startup']:>11.2f}s   < 2 s "
              f"{'✓' if large['startup'] < 2 else '✗'}")
        print(f"{'peak RSS':28}{small['rss_peak']:>10.1f}MB{large['rss_peak']:>10.1f}MB   < 150 MB and within 10%: "
              f"{rss_ratio:.2f}× {'✓' if large['rss_peak'] < 150 and rss_ratio <= 1.10 else '✗'}")
        print(f"{'CPU per update':28}{small['cpu_ms']:>10.2f}ms{large['cpu_ms']:>10.2f}ms   within 10%: "
              f"{cpu_ratio:.2f}× {'✓' if cpu_ratio <= 1.10 else '✗'}")
        check_plans(workdir / f"owners-{args.owners}.sqlite3", workdir / f"trace-{args.owners}.json")


if __name__ == "__main__":
    main()
