"""``saathi broadcast …`` and ``saathi stats``: what admins do in Telegram, from the terminal.

    saathi broadcast module payments --lang hi --state uttar_pradesh --module-status export_ready:passed
    saathi broadcast announce --en "Webinar on Friday" --hi "शुक्रवार को वेबिनार" --at "2027-01-15 10" --yes
    saathi stats --state uttar_pradesh --chart funnel.png

A broadcast prints the recipients, both messages and the delivery time, asks for confirmation
(unless --yes), and enqueues. With TELEGRAM_BOT_TOKEN set and no --at, it then delivers here at
BROADCAST_RATE with a progress bar on stderr (Ctrl-C leaves the rest queued for the running
bot); otherwise the running bot delivers it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from .config import Settings

STATUS_HELP = "MODULE:STATUS, STATUS one of not_started, started, passed, not_passed (repeatable)"


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``broadcast`` and ``stats`` to the ``saathi`` command."""
    broadcast = sub.add_parser("broadcast", help="send a module invitation or an announcement to a segment of owners")
    kinds = broadcast.add_subparsers(dest="kind", required=True)
    module = kinds.add_parser("module", help="invite owners to a training module (each in their language)")
    module.add_argument("module_id")
    announce = kinds.add_parser("announce", help="an announcement; both languages are required")
    announce.add_argument("--en", help="the English text")
    announce.add_argument("--hi", help="the Hindi text")
    for parser in (module, announce):
        parser.add_argument("--lang", choices=["hi", "en"], help="only owners who use this language")
        parser.add_argument("--state", action="append", default=[], help="state id or name (repeat for several)")
        parser.add_argument("--sector", action="append", default=[], help="sector id or name (repeat for several)")
        parser.add_argument("--onboarded", choices=["yes", "no"], help="profile complete or not")
        parser.add_argument("--module-status", action="append", default=[], metavar="MODULE:STATUS", help=STATUS_HELP)
        parser.add_argument("--at", help='when, in India time: "YYYY-MM-DD HH" (default: now)')
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--no-follow", action="store_true", help="queue it and return; do not wait to watch it go out")
        parser.set_defaults(func=cmd_broadcast)
    stats = sub.add_parser("stats", help="the funnel: counts and conversion between stages")
    stats.add_argument("--state", help="state id or name")
    stats.add_argument("--sector", help="sector id or name")
    stats.add_argument("--lang", choices=["hi", "en"])
    stats.add_argument("--chart", type=Path, metavar="FILE", help="also write the funnel chart as a PNG")
    stats.add_argument("--chart-lang", choices=("en", "hi"), default="en", help="the chart's language (default en)")
    stats.set_defaults(func=cmd_stats)


def cmd_broadcast(args: argparse.Namespace) -> int:
    """``saathi broadcast module|announce``."""
    return asyncio.run(_broadcast(Settings.from_env(), args))


def cmd_stats(args: argparse.Namespace) -> int:
    """``saathi stats``."""
    return asyncio.run(_stats(Settings.from_env(), args))


async def _broadcast(settings: Settings, args: argparse.Namespace) -> int:
    from .app import build_app
    from .channels.render import plain
    from .core import broadcast as compose
    from .core.segments import Problem, Segment, describe, lookup
    from .services.broadcast import Plan

    app = await build_app(settings)
    try:
        service, texts = app.broadcasts, app.texts
        problems: list[Problem] = []
        segment = Segment(lang=args.lang, onboarded=None if args.onboarded is None else args.onboarded == "yes")
        for value in args.state:
            found = lookup(value, service.vocab.states, service.vocab.aliases)
            segment = segment.toggle_state(found) if found else segment
            problems += [] if found else [Problem("Unknown state '{value}': use an id like uttar_pradesh.", {"value": value})]
        for value in args.sector:
            found = lookup(value, service.vocab.sectors, service.vocab.aliases)
            segment = segment.toggle_sector(found) if found else segment
            problems += [] if found else [Problem("Unknown sector '{value}': use an id like textiles_apparel.", {"value": value})]
        for value in args.module_status:
            module_id, _, status = value.partition(":")
            segment = segment.with_module(module_id.strip(), status.strip())
        send_at = 0
        if args.at:
            when = compose.parse_when(args.at, service.now())
            if isinstance(when, Problem):
                problems.append(when)
            else:
                send_at = when
        if args.kind == "module":
            plan = Plan("module", segment, module_id=args.module_id, send_at=send_at)
        else:
            en = compose.escape_admin_text(args.en) if args.en else None
            hi = compose.escape_admin_text(args.hi) if args.hi else None
            plan = Plan("announcement", segment, text_en=en, text_hi=hi, send_at=send_at)
        problems += service.problems(plan)
        if problems:
            for problem in problems:
                print(f"saathi: {problem.render(texts, 'en')}", file=sys.stderr)
            return 2
        counts = await service.count(segment)
        total = counts["hi"] + counts["en"]
        num = lambda n: texts.number("en", n)  # noqa: E731
        print(f"Who:\n{describe(segment, service.vocab, texts, 'en')}")
        print(f"Recipients: {num(total)} (Hindi {num(counts['hi'])}, English {num(counts['en'])})")
        print(f"When: {service.when_text(send_at, 'en')}")
        print(f"Estimated delivery time: {compose.duration(service.eta(total), texts, 'en')} at {num(service.rate)} messages a second")
        for lang, say in service.messages(plan).items():
            buttons = "  ".join(f"[{c.label}]" for c in say.choices)
            print(f"\n--- {'English' if lang == 'en' else 'Hindi'} ---\n{plain(say.text)}" + (f"\n{buttons}" if buttons else ""))
        print()
        if total == 0:
            print("No owner matches these conditions. Nothing was sent.")
            return 1
        if not args.yes:
            try:
                answer = input(f"Send to {num(total)} owners? [y/N] ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing was sent.")
                return 1
        broadcast_id, recipients = await service.start(plan, created_by="cli")
        print(f"Broadcast #{broadcast_id} queued: {num(recipients)} messages.")
        if send_at > service.now():
            print(f"It goes out at {service.when_text(send_at, 'en')} (India time), delivered by the running bot.")
            return 0
        if args.no_follow:
            print("The running bot delivers it; /stats and the admin's status message show progress.")
            return 0
        return await _follow(app, broadcast_id, recipients)
    finally:
        await app.close()


STALL = 30.0  # seconds without any progress before the CLI says the bot may not be running


async def _follow(app, broadcast_id: int, recipients: int, stall: float = STALL) -> int:
    """Watch the running bot deliver the broadcast, with a progress bar on stderr.

    The CLI never sends itself: one sender (the bot's delivery worker) keeps BROADCAST_RATE and
    the never-twice rule, whatever else is going out at the same time.
    """
    from .storage.broadcasts import UNSENT

    started = last_change = time.monotonic()
    last: dict[str, int] | None = None
    ahead: int | None = None  # messages queued before this broadcast, when it last looked
    try:
        while True:
            progress = await app.broadcasts.repo.progress(broadcast_id)
            _progress_bar(app, progress, recipients, time.monotonic() - started)
            if not any(progress.get(s) for s in UNSENT):
                break
            if progress != last:
                last, last_change = progress, time.monotonic()
            elif time.monotonic() - last_change > stall:
                now_ahead = await app.broadcasts.repo.queued_ahead(broadcast_id)
                if now_ahead and (ahead is None or now_ahead < ahead):  # the bot is sending what came first
                    print(f"\nWaiting behind {app.texts.number('en', now_ahead)} message(s) queued earlier; "
                          "the bot is sending them first.", file=sys.stderr)
                    ahead, last_change = now_ahead, time.monotonic()
                else:
                    print(f"\nNothing has gone out for {stall:.0f} s: is the bot running (make run)? "
                          "The broadcast stays queued and goes out when it runs.", file=sys.stderr)
                    return 0
            await asyncio.sleep(0.5)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nStopped watching. The running bot keeps sending (/broadcast_cancel stops it).", file=sys.stderr)
        return 130
    print(file=sys.stderr)
    print(f"Done: {progress}")
    return 0


def _progress_bar(app, progress: dict[str, int], total: int, elapsed: float, width: int = 30) -> None:
    from .storage.broadcasts import UNSENT

    num = lambda n: app.texts.number("en", n)  # noqa: E731
    remaining = sum(progress.get(s, 0) for s in UNSENT)
    done = total - remaining
    filled = int(width * done / total) if total else width
    eta = remaining / app.broadcasts.rate
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {num(progress.get('sent', 0))}/{num(total)} sent · "
        f"{num(progress.get('failed', 0))} failed · {num(progress.get('blocked', 0))} blocked · "
        f"{elapsed:4.0f} s, about {eta:.0f} s left ",
        end="", file=sys.stderr, flush=True,
    )


async def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from .app import build_app
    from .channels.render import plain
    from .core.funnel import Filters, describe_filters
    from .core.segments import lookup
    from .services.stats import StatsService

    app = await build_app(settings)
    try:
        vocab = app.broadcasts.vocab
        state = lookup(args.state, vocab.states, vocab.aliases) if args.state else None
        sector = lookup(args.sector, vocab.sectors, vocab.aliases) if args.sector else None
        if (args.state and not state) or (args.sector and not sector):
            print(f"saathi: unknown {'state' if args.state and not state else 'sector'}; use ids like uttar_pradesh or spices", file=sys.stderr)
            return 2
        filters = Filters(state, sector, args.lang)
        stats = StatsService(app.db, app.engine.content, app.texts)
        funnel = await stats.funnel(filters)
        scope = describe_filters(filters, vocab, app.texts, "en")
        print(plain(stats.text(funnel, f"<b>Funnel</b> ({scope})", "en")))
        if args.chart:
            chart_lang = args.chart_lang
            chart_scope = scope if chart_lang == "en" else describe_filters(filters, vocab, app.texts, chart_lang)
            args.chart.write_bytes(await asyncio.to_thread(stats.chart, funnel, chart_scope, chart_lang))
            print(f"\nChart written to {args.chart}")
        return 0
    finally:
        await app.close()
