"""The dashboard's numbers: server time, SQL queries and page weight per page, and first paint in chromium.

    .venv/bin/python bench/dashboard.py [--postgres] [--requests 20]

Seeds a fresh database (SQLite in a temporary folder; with ``--postgres`` also a throwaway
PostgreSQL server from tests/pg_server.py) with one startup holding 1,000 leads (owners with
profiles, in every board status, each with its offer and history), two more startups, and
3,000 more owners for the funnel (1,000 of them stopped somewhere in onboarding; first-try and
retry quiz answers). It then serves the dashboard (``bot.web.app.serve``, the real app built by
``bot.app.build_app``), opens a staff and an admin session the way the service does (a one-time
link, then ``open_link``), and prints per page (the 1,000-lead board, a lead, the admin page):

- server time: median and p95 of N GET requests timed on localhost (aiohttp client, same
  process: the handler, the SQL and the HTML, plus a localhost round trip);
- SQL statements per page: SQLite's trace callback on the connection (BEGIN/COMMIT left out),
  or every statement PostgreSQL is sent (``bot.storage.pg.translate`` counted), for this run only;
- page weight: the HTML, plus what the browser actually loaded with it (the Devanagari fonts
  load only on a page with Hindi on it);
- first paint and first contentful paint in Debian's chromium at 390×844, headless, through
  Playwright (``performance.getEntriesByType('paint')``), median of 5 loads.

Nothing is asserted; numbers are printed with the machine they were taken on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.common import machine  # noqa: E402
from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.services.clock import ManualClock  # noqa: E402
from bot.storage.dashboard import Grant  # noqa: E402
from bot.web.app import COOKIE, serve  # noqa: E402
from tests.dashboard_support import PHONE, chromium_path, free_port  # noqa: E402

ADMIN = 9001
STAFF = "7001"
NOW = 1_796_000_000  # 2026-12-03 (the clock the bot runs on here)
DAY = 86400
STATUSES = [("offered", 300), ("accepted", 200), ("contacted", 200), ("listed", 150), ("first_order", 50), ("lost", 100)]
STATES = ["uttar_pradesh", "tamil_nadu", "gujarat", "maharashtra", "rajasthan"]
SECTORS = ["handicrafts", "textiles_apparel", "spices", "leather", "engineering_goods"]
STEPS = ["language", "consent", "owner_name", "business_name", "state", "district", "sector", "udyam", "gst", "phone", "summary"]


def seed(conn, content) -> dict[str, int]:
    """Everything, in one transaction on a ``sqlite3``-like connection (SQLite's or pg.SyncConn)."""
    rnd = random.Random(16)
    conn.execute("INSERT INTO startups (id, name, states, sectors, created_at, updated_at) VALUES "
                 "('bench_co', 'Bench Exports', '\"*\"', '\"*\"', ?, ?), ('other_a', 'Agra Crafts Desk', '\"*\"', '\"*\"', ?, ?), "
                 "('other_b', 'Surat Trade Lab', '\"*\"', '\"*\"', ?, ?)", (NOW - 90 * DAY,) * 6)
    conn.execute("INSERT INTO startup_staff (channel, chat_ref, startup_id, name, lang, linked_at) "
                 "VALUES ('telegram', ?, 'bench_co', 'Bench staff', 'en', ?)", (STAFF, NOW - 60 * DAY))
    users, leads, offers, history, progress, answers = [], [], [], [], [], []
    status_of = [s for s, n in STATUSES for _ in range(n)]
    modules = list(content.modules)
    required = [m.id for m in modules if m.required]
    for uid in range(1, 4001):
        seen = NOW - rnd.randrange(1, 80) * DAY - rnd.randrange(DAY)
        state, sector = rnd.choice(STATES), rnd.choice(SECTORS)
        profile = {"owner_name": f"Owner {uid}", "business_name": f"Business {uid} & Sons", "state": state,
                   "district": f"District {uid % 37}", "sector": sector, "phone": f"+9198{uid:08d}",
                   "experience": "none", "turnover": "10l_1cr"}
        if uid <= 3000:  # onboarded
            users.append((uid, f"{100000 + uid}", rnd.choice(["hi", "en"]), json.dumps({"flow": "menu", "step": "", "seq": 9}),
                          json.dumps(profile, ensure_ascii=False), "given", seen + 600, seen, seen + 3600))
            for m in modules[:2] if uid > 1000 else modules:
                for q in m.quiz:
                    answers.append((uid, m.id, 1, q.id, "a", int(rnd.random() < 0.75), seen + 900))
                    answers.append((uid, m.id, 2, q.id, "a", 1, seen + 1900))
            if uid <= 1000:
                progress += [(uid, m, len(content.module(m).lessons), 1, 1, 0, 5, seen + 1000, seen + 2000, seen + 2000)
                             for m in required]
            else:  # the first module passed, somewhere in the second (the admin page's module drop-off)
                first, second = modules[0], modules[1]
                progress.append((uid, first.id, len(first.lessons), 1, 1, 0, 5, seen + 1000, seen + 2000, seen + 2000))
                lesson = rnd.randrange(1, len(second.lessons) + 1)
                attempt = int(lesson == len(second.lessons) and rnd.random() < 0.6)
                progress.append((uid, second.id, lesson, attempt, 0, int(attempt and rnd.random() < 0.5), 0, seen + 1000, None,
                                 seen + 2000))
        else:  # stopped in onboarding
            step = rnd.choice(STEPS)
            partial = {k: v for k, v in profile.items() if rnd.random() < 0.5}
            users.append((uid, f"{100000 + uid}", rnd.choice(["hi", "en"]),
                          json.dumps({"flow": "onboarding", "step": step, "seq": 3, "draft": {}, "seed": uid}),
                          json.dumps(partial, ensure_ascii=False), "given" if step not in ("language", "consent") else "",
                          None, seen, seen + 600))
    for uid in range(1, 1001):
        status = status_of[uid - 1]
        offered = NOW - rnd.randrange(1, 60) * DAY
        _, _, lang, _, raw, *_ = users[uid - 1]
        p = json.loads(raw)
        leads.append((uid, uid, rnd.randrange(60, 100), p["state"], p["sector"], lang, "bench_co", status, offered, offered - 60,
                      offered + 3600))
        offers.append((uid, "bench_co", offered, None if status == "offered" else offered + 3600,
                       None if status == "offered" else ("declined" if status == "lost" else "accepted")))
        history.append((uid, "offered", "bench_co", "system", None, offered))
        if status != "offered":
            history.append((uid, status, "bench_co", f"staff:telegram:{STAFF}", None, offered + 3600))
    for uid in range(1001, 1041):  # SLA lapses of the other startups
        history.append((1, "expired", "other_a" if uid % 2 else "other_b", "system", "no answer in 48 h", NOW - (uid - 1000) * DAY))
    conn.executemany("INSERT INTO users (id, channel, user_ref, lang, state, profile, consent, onboarded_at, first_seen_at, "
                     "last_seen_at) VALUES (?, 'telegram', ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(u[0], *u[1:]) for u in users])
    conn.executemany("INSERT INTO leads (id, user_id, score, state, sector, lang, startup_id, status, offered_at, created_at, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", leads)
    conn.executemany("INSERT INTO lead_offers (lead_id, startup_id, offered_at, answered_at, outcome) VALUES (?, ?, ?, ?, ?)", offers)
    conn.executemany("INSERT INTO lead_history (lead_id, status, startup_id, actor, note, at) VALUES (?, ?, ?, ?, ?, ?)", history)
    conn.executemany("INSERT INTO progress (user_id, module_id, lesson, attempt, passed, in_quiz, score, started_at, passed_at, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     progress)
    conn.executemany("INSERT INTO quiz_answers (user_id, module_id, attempt, question_id, option_id, correct, answered_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", answers)
    return {"owners": len(users), "leads": len(leads), "lead_history": len(history), "quiz_answers": len(answers)}


class Counter:
    """SQL statements sent while ``on``: SQLite's trace callback, or PostgreSQL's ``translate`` hook."""

    def __init__(self, app, postgres: bool):
        self.n, self.on = 0, False
        self.install = None
        if postgres:
            import bot.storage.pg as pg

            original = pg.translate

            def counted(sql: str) -> str:
                if self.on:
                    self.n += 1
                return original(sql)

            pg.translate = counted
        else:
            def trace(sql: str) -> None:
                if self.on and not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                    self.n += 1

            self.install = lambda: app.db.run(lambda conn: conn.set_trace_callback(trace))  # on aiosqlite's thread


async def session(app, grant: Grant, lang: str) -> str:
    """A session as a person gets one: a sign-in link from the service, then opening it."""
    link = await app.dashboard.issue_link(Grant(grant.channel, grant.chat_ref, grant.platform_user_id, lang))
    token = await app.dashboard.open_link(link.split("?t=", 1)[1])
    assert token, "the sign-in link did not open a session"
    return token


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms, p95 {p95 * 1000:7.1f} ms"


async def server_numbers(base: str, token: str, path: str, counter: Counter, n: int) -> tuple[list[float], int, int, int]:
    async with aiohttp.ClientSession(cookies={COOKIE: token}) as http:
        async with http.get(base + path) as r:  # warm-up
            assert r.status == 200, (path, r.status)
            await r.read()
        counter.n, counter.on = 0, True
        async with http.get(base + path) as r:
            body = await r.read()
        counter.on = False
        queries = counter.n
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            async with http.get(base + path) as r:
                await r.read()
            times.append(time.perf_counter() - t0)
    return times, queries, len(body), body.count(b"<li>") + body.count(b"<tr>")


async def browser_numbers(base: str, token: str, path: str, loads: int = 5) -> tuple[float, float, int, list[str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            fp, fcp, weight, extra = [], [], 0, []
            for i in range(loads):
                context = await b.new_context(viewport=PHONE)
                host = base.split("//", 1)[1].split(":")[0]
                await context.add_cookies([{"name": COOKIE, "value": token, "domain": host, "path": "/dashboard"}])
                page = await context.new_page()
                sizes: dict[str, int] = {}

                async def got(response) -> None:
                    try:
                        sizes[response.url] = len(await response.body())
                    except Exception:  # a redirect has no body
                        pass

                page.on("response", lambda r: asyncio.ensure_future(got(r)))
                await page.goto(base + path, wait_until="load")
                await page.evaluate("document.fonts.ready.then(() => true)")
                await asyncio.sleep(0.2)
                paints = {e["name"]: e["startTime"] for e in await page.evaluate(
                    "performance.getEntriesByType('paint').map(e => ({name: e.name, startTime: e.startTime}))")}
                fp.append(paints.get("first-paint", float("nan")))
                fcp.append(paints.get("first-contentful-paint", float("nan")))
                if i == 0:
                    weight = sum(sizes.values())
                    extra = [f"{u.rsplit('/', 1)[1]} {n:,} B" for u, n in sizes.items() if u != base + path]
                await context.close()
        finally:
            await b.close()
    return statistics.median(fp), statistics.median(fcp), weight, extra


async def run(engine: str, url: str, path: Path, n: int) -> None:
    port = free_port()
    settings = Settings(database_path=path, database_url=url, admin_ids=frozenset({ADMIN}), dashboard_port=port,
                        dashboard_url=f"http://127.0.0.1:{port}", telegram_token="123456:BENCH-TOKEN")
    app = await build_app(settings, clock=ManualClock(NOW))
    t0 = time.perf_counter()
    seeded = await app.db.run_transaction(lambda conn: seed(conn, app.dashboard.stats.content))
    await app.db.run(lambda conn: conn.execute("ANALYZE"))  # statistics, as the daily maintenance and migrate-to leave them
    print(f"\n== {engine}: seeded {', '.join(f'{v:,} {k}' for k, v in seeded.items())} in {time.perf_counter() - t0:.1f} s"
          " (then ANALYZE)")
    counter = Counter(app, engine == "PostgreSQL")
    if counter.install:
        await counter.install()
    runner = await serve(app.dashboard, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        staff_en = await session(app, Grant("telegram", STAFF, int(STAFF), "en"), "en")
        staff_hi = await session(app, Grant("telegram", STAFF, int(STAFF), "hi"), "hi")
        admin_en = await session(app, Grant("telegram", str(ADMIN), ADMIN, "en"), "en")
        admin_hi = await session(app, Grant("telegram", str(ADMIN), ADMIN, "hi"), "hi")
        pages = [("board, 1,000 leads", "/dashboard/", staff_en, staff_hi), ("a lead", "/dashboard/lead/1", staff_en, staff_hi),
                 ("admin page", "/dashboard/admin", admin_en, admin_hi),
                 ("admin, 30-day range", "/dashboard/admin?from=2026-11-03&to=2026-12-03", admin_en, admin_hi)]
        for name, page, en, hi in pages:
            times, queries, size, items = await server_numbers(base, en, page, counter, n)
            print(f"{name:22} server {ms(times)} ({n} requests) · {queries} SQL statements · HTML {size:,} B ({items} rows)")
            for lang, token in (("en", en), ("hi", hi)):
                fp, fcp, weight, extra = await browser_numbers(base, token, page)
                print(f"{'':22}   {lang}: first paint {fp:6.0f} ms, first contentful paint {fcp:6.0f} ms, "
                      f"page weight {weight:,} B" + (f" (with {', '.join(extra)})" if extra else ""))
    finally:
        await runner.cleanup()
        await app.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL server")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    print("machine:", machine())
    import subprocess

    version = subprocess.run([chromium_path() or "chromium", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"browser: {version or 'no chromium'}, headless, viewport {PHONE['width']}x{PHONE['height']}")
    with tempfile.TemporaryDirectory() as tmp:
        await run("SQLite", "", Path(tmp) / "bench.sqlite3", args.requests)
        if args.postgres:
            from tests.pg_server import PgServer

            server = PgServer().start()
            try:
                await run("PostgreSQL", server.new_database(), Path(tmp) / "unused.sqlite3", args.requests)
            finally:
                server.stop()


if __name__ == "__main__":
    asyncio.run(main())
