"""The runtime: starts the channels the settings name and supervises every background worker.

One process serves any mix: Telegram (long polling or webhook), WhatsApp, both, or — with
neither configured — a chat in the terminal. Whatever the mix, the same workers run:

=================  ==========================================================================
replies            a turn's replies, sent right after its commit, again after a failure
delivery           the outbox: lead cards, notices, reminders, broadcasts (paced, never twice)
lead-sweep         at start (catch-up after a restart) and every 5 min: offers past the SLA,
                   the unassigned queue, answers owed
certificates       with the lead sweep: owners who passed the required modules but whose
                   certificate a crash left unissued
reminders          every 15 min: owners who have gone quiet get one nudge
maintenance        10 min after start, then daily: prune what is kept only for a while (handled update
                   ids, old delivery records), integrity check, PRAGMA optimize, WAL truncated
broadcast-status   (Telegram) keeps each broadcast's status message in the admin's chat current
=================  ==========================================================================

A worker that raises is logged and started again after a backoff (1 s, 2 s, 4 s … 15 s; back to
1 s when it had run ``STEADY_AFTER`` seconds before failing). After ``REPORT_AFTER`` failures in a
row the admins are told once, on Telegram and straight through
the platform (the database may be what is failing), and told again when it works again.

Order at start: senders are attached and workers started before any channel receives, so
updates a crash left stored are answered as soon as they are replayed. At stop: channels stop
receiving first, then the workers finish what is in flight, then the database closes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

from .app import App, build_app
from .config import Settings
from .core.messages import Say
from .core.session import N_
from .services.clock import Clock
from .services.delivery import Lanes, Sender

log = logging.getLogger(__name__)

REMINDER_INTERVAL = 15 * 60
LEAD_SWEEP_INTERVAL = 5 * 60
LEADER_RETRY = 2.0  # seconds between a standby's tries for the cluster-wide lock (PostgreSQL)
MAINTENANCE_INTERVAL = 24 * 3600
MAINTENANCE_FIRST = 10 * 60  # not at start: a restart answers its backlog first
REPORT_AFTER = 3  # failures in a row before the admins hear of it
HEALTHY_AFTER = 30.0  # seconds a restarted worker must run to count as working again
MAX_BACKOFF = 15.0  # the longest wait between restarts: a lock that lifts is noticed within seconds
STEADY_AFTER = 5.0  # a worker that ran this long before failing starts its backoff at the beginning again

WORKER_FAILING = N_("⚠️ Export Saathi: the background task “{name}” keeps failing ({error}). "
                    "Owners still get answers; messages from the outbox wait until it recovers.")
WORKER_BACK = N_("✅ Export Saathi: the background task “{name}” works again.")


@dataclass
class WorkerState:
    """What the supervisor knows about one worker."""

    name: str
    restarts: int = 0
    streak: int = 0  # failures in a row: what the admins are told about
    step: int = 0  # where the backoff is: back to the start after a steady run
    reported: bool = False
    last_error: str = ""


class Supervisor:
    """Runs named workers until stopped; restarts one that fails, with backoff, and reports streaks."""

    def __init__(
        self,
        *,
        report: Callable[[str, WorkerState, bool], Awaitable[None]] | None = None,
        backoff: float = 1.0,
        max_backoff: float = MAX_BACKOFF,
        report_after: int = REPORT_AFTER,
        healthy_after: float = HEALTHY_AFTER,
        steady_after: float = STEADY_AFTER,
    ):
        self.report = report
        self.backoff, self.max_backoff, self.report_after = backoff, max_backoff, report_after
        self.healthy_after, self.steady_after = healthy_after, steady_after
        self.stop_event = asyncio.Event()
        self.workers: dict[str, WorkerState] = {}
        self._runs: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {}
        self._periodic: set[str] = set()  # workers that say themselves when a run worked
        self._tasks: list[asyncio.Task] = []

    def forever(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """``run(stop)`` works until ``stop`` is set; if it raises (or returns early) it is started again."""
        self.workers[name] = WorkerState(name)
        self._runs[name] = run

    def every(self, name: str, interval: float, once: Callable[[], Awaitable[Any]], *, first: float = 0.0) -> None:
        """``once()`` at ``first`` seconds and then every ``interval``; a failure is retried after the backoff."""
        state = self.workers[name] = WorkerState(name)
        delay = [first]

        async def run(stop: asyncio.Event) -> None:
            while not await _wait(stop, delay[0]):
                delay[0] = 0.0  # a failure below is tried again after the backoff, not a whole interval
                await once()
                delay[0] = interval
                await self._recovered(state)

        self._runs[name] = run
        self._periodic.add(name)

    def start(self) -> None:
        """Start every worker added so far."""
        for name, run in self._runs.items():
            self._tasks.append(asyncio.create_task(self._supervise(self.workers[name], run), name=f"worker-{name}"))

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask every worker to finish; cancel those still running after ``timeout``."""
        self.stop_event.set()
        if not self._tasks:
            return
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            log.warning("worker %s did not stop in time; cancelled", task.get_name())
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _supervise(self, state: WorkerState, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        stop = self.stop_event
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            task = asyncio.ensure_future(run(stop))
            began = loop.time()
            try:
                # Still running after ``healthy_after``: it works again (and a new failure starts a new
                # streak). A periodic worker mostly waits, so it says so itself after each run that worked.
                if state.name not in self._periodic:
                    done, _ = await asyncio.wait({task}, timeout=self.healthy_after)
                    if not done:
                        await self._recovered(state)
                await task
                if stop.is_set():
                    return
                error = "stopped by itself"
            except asyncio.CancelledError:
                task.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - a worker must never take the others down
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            if loop.time() - began >= self.steady_after:
                # It worked for a while (a database locked now and then): wait a second, not the whole
                # backoff of earlier failures. The streak the admins hear about goes on until healthy_after.
                state.step = 0
            state.step += 1
            state.streak += 1
            state.restarts += 1
            state.last_error = error
            wait = min(self.max_backoff, self.backoff * 2 ** (state.step - 1))
            log.error("worker %s failed (%s); restart %d in %.0f s", state.name, error, state.restarts, wait)
            if state.streak >= self.report_after and not state.reported:
                state.reported = True
                await self._report(state, failing=True)
            await _wait(stop, wait)

    async def _recovered(self, state: WorkerState) -> None:
        state.streak = state.step = 0
        if state.reported:
            state.reported = False
            log.warning("worker %s works again", state.name)
            await self._report(state, failing=False)

    async def _report(self, state: WorkerState, *, failing: bool) -> None:
        if self.report is None:
            return
        try:
            await self.report(state.name, state, failing)
        except Exception:  # noqa: BLE001 - telling the admins is best effort; the log has it
            log.warning("could not tell the admins about worker %s", state.name, exc_info=True)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; returns whether it is set."""
    if seconds > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass
    return stop.is_set()


class Runtime:
    """The background workers of one app, for the channels attached to it."""

    def __init__(
        self,
        app: App,
        *,
        reminder_interval: float = REMINDER_INTERVAL,
        sweep_interval: float = LEAD_SWEEP_INTERVAL,
        maintenance_interval: float = MAINTENANCE_INTERVAL,
        maintenance_first: float = MAINTENANCE_FIRST,
        **supervisor: float,
    ):
        self.app = app
        self.reminder_interval, self.sweep_interval = reminder_interval, sweep_interval
        self.maintenance_interval, self.maintenance_first = maintenance_interval, maintenance_first
        self.supervisor = Supervisor(report=self._tell_admins, **supervisor)
        self.senders: dict[str, Sender] = {}
        self.board: Any = None
        self.admin_sender: Sender | None = None  # Telegram's: the admins in ADMIN_IDS
        self.whatsapp_admin_sender: Sender | None = None  # WhatsApp's: the admins in WHATSAPP_ADMIN_NUMBERS
        self.delivery: Lanes | None = None

    def attach(self, channel: str, sender: Any, *, replies: bool = True, board: Any = None, admins: bool = False) -> None:
        """Rows for ``channel`` go out through ``sender`` (its ``send`` for the outbox, its
        ``reply`` for a turn's replies); ``board`` keeps broadcast status messages, ``admins``:
        this channel reaches the admins."""
        self.senders[channel] = sender
        if replies and self.app.replies is not None:
            self.app.replies.attach(channel, sender)
        if board is not None:
            self.board = board
        if admins:
            if channel == "whatsapp":
                self.whatsapp_admin_sender = sender
            else:
                self.admin_sender = sender

    def start(self, *, background: bool = True, **delivery: float) -> None:
        """Start the workers: replies always (a user must hear back); the rest when ``background``."""
        app, sup = self.app, self.supervisor
        if app.replies is not None:
            sup.forever("replies", app.replies.run)
        if background:
            sup = self._one_per_cluster(sup)
            # One worker per platform: each keeps its own pace, and a pause one platform asks for
            # (Telegram's flood control, WhatsApp's throughput limit) does not hold up the other.
            groups = [{c: s for c, s in self.senders.items() if c != "whatsapp"}]
            if "whatsapp" in self.senders:
                groups.append({"whatsapp": self.senders["whatsapp"]})
            workers = [app.delivery(group, **delivery) for group in [g for g in groups if g] or [{}]]
            for n, one in enumerate(workers):
                sup.forever("delivery" if n == 0 else "delivery-whatsapp", one.run)
            self.delivery = worker = Lanes(workers)
            if app.windows is not None:
                app.windows.wake = worker.wake  # held messages released by a user's message go out now
            if app.leads is not None:
                app.leads.wake = worker.wake
                sup.every("lead-sweep", self.sweep_interval, app.leads.sweep)  # first run now: catch up after a restart
                if app.dashboard is not None:  # a follow-up's day: its staff chats are reminded (once: dedup keys)
                    sup.every("follow-ups", self.sweep_interval, app.dashboard.remind_follow_ups)
            if app.certificates is not None:
                sup.every("certificates", self.sweep_interval, app.certificates.catch_up)  # now, then with the lead sweep
            sup.every("reminders", self.reminder_interval, self._remind, first=min(60.0, self.reminder_interval))
            if app.maintenance is not None:
                sup.every("maintenance", self.maintenance_interval, app.maintenance.run_once, first=self.maintenance_first)
            if app.broadcasts is not None:
                app.broadcasts.on_enqueue(worker.wake)
                if self.board is not None:
                    board = self.board
                    sup.forever("broadcast-status", lambda stop: app.broadcasts.run_status(board, stop))
        self.supervisor.start()

    def _one_per_cluster(self, sup: Supervisor) -> Any:
        """On PostgreSQL, several bot processes may share the database: the background work (delivery, whose
        rate is per bot token, and the periodic jobs) runs in the one process holding the cluster-wide lock,
        and a standby takes over when it dies. On SQLite (one process) it simply runs."""
        db = self.app.db
        if getattr(db, "engine", "sqlite") != "postgresql":
            return sup
        settings = self.app.settings
        self.leadership = lead = db.leadership(
            f"background:{settings.telegram_token.split(':')[0]}:{settings.whatsapp_phone_number_id}", retry=LEADER_RETRY)
        sup.forever("leadership", lead.run)
        return _Gated(sup, lead, db)

    async def stop(self) -> None:
        """Let every worker finish what is in flight, then send the replies still owed."""
        await self.supervisor.stop()
        if self.app.replies is not None:
            await self.app.replies.settle()

    async def _remind(self) -> None:
        if await self.app.reminders.run_once() and self.delivery is not None:
            self.delivery.wake()

    async def _tell_admins(self, name: str, state: WorkerState, failing: bool) -> None:
        settings = self.app.settings
        chats = [(self.admin_sender, str(a)) for a in sorted(settings.admin_ids) if self.admin_sender is not None]
        chats += [(self.whatsapp_admin_sender, n) for n in sorted(settings.whatsapp_admin_numbers)
                  if self.whatsapp_admin_sender is not None]
        if not chats:
            return
        texts = self.app.texts
        template = WORKER_FAILING if failing else WORKER_BACK
        text = "\n\n".join(texts.gettext(lang, template).format(name=name, error=state.last_error) for lang in ("en", "hi"))
        for sender, ref in chats:
            try:  # one admin who never started the bot must not keep the others from hearing it
                await sender.send(ref, Say(text))
            except Exception as exc:  # noqa: BLE001 - best effort, and the log has the failure itself
                log.warning("could not tell an admin about worker %s: %s", name, type(exc).__name__)


class _Gated:
    """A supervisor whose workers run only while ``lead.held`` (``Runtime._one_per_cluster``)."""

    def __init__(self, sup: Supervisor, lead: Any, db: Any):
        self.sup, self.lead, self.db = sup, lead, db

    def forever(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        lead = self.lead

        async def gated(stop: asyncio.Event) -> None:
            while not stop.is_set():
                if not lead.held.is_set():
                    await _wait(stop, 0.2)
                    continue
                inner = asyncio.Event()  # set when this process stops, or loses the lock
                task = asyncio.create_task(run(inner), name=f"{name}-leader")
                while lead.held.is_set() and not stop.is_set() and not task.done():
                    await asyncio.wait([task], timeout=0.2)
                inner.set()
                await task

        self.sup.forever(name, gated)

    def every(self, name: str, interval: float, once: Callable[[], Awaitable[Any]], *, first: float = 0.0) -> None:
        """``once`` every ``interval`` in the process holding the lock. A process that takes the lock over
        runs a job at once if its last run anywhere (``job_runs``) is ``interval`` old, else when it is due."""
        lead, db = self.lead, self.db  # times below are real seconds, as the supervisor's intervals are

        async def gated(stop: asyncio.Event) -> None:
            first_due = time.time() + first  # a job that never ran anywhere: as on one process
            while not stop.is_set():
                if not lead.held.is_set():
                    await _wait(stop, 0.2)
                    continue
                last = await db.last_run(name)
                due = (last + interval) if last is not None else first_due
                wait = due - time.time()
                if wait > 0:
                    await _wait(stop, min(wait, 1.0))  # look again each second: the lock may go meanwhile
                    continue
                await once()
                await db.record_run(name, int(time.time()))

        self.sup.forever(name, gated)


# ------------------------------------------------------------------ running the bot
class BotProcess:
    """The channels the settings name, their workers and the database, started and stopped in order."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, background: bool = True,
                 poll_timeout: int = 10, **runtime: float):
        self.settings, self.clock, self.background = settings, clock, background
        self.poll_timeout = poll_timeout
        self.runtime_options = runtime
        self.app: App | None = None
        self.runtime: Runtime | None = None
        self.application: Any = None  # PTB Application (Telegram)
        self.polling: Any = None  # DurablePolling (Telegram without a webhook)
        self.whatsapp: Any = None  # WhatsAppChannel
        self.whatsapp_runner: Any = None  # its aiohttp server
        self.webhook_runner: Any = None  # the Telegram webhook's aiohttp server (webhook mode)
        self.dashboard_runner: Any = None  # the dashboard's own server (no webhook server runs)
        self._dashboard_mounted = False  # the dashboard is served by one server only
        self._closers: list[Callable[[], Awaitable[Any]]] = []  # run in reverse order at the end

    async def start(self) -> None:
        """Build, attach every sender, start the workers, then start receiving."""
        settings = self.settings
        self.app = app = await build_app(settings, clock=self.clock)
        self.runtime = runtime = Runtime(app, **self.runtime_options)
        try:
            receivers = []
            if settings.telegram_token:
                receivers.append(await self._telegram())
            if settings.whatsapp_token:
                receivers.append(self._whatsapp())
            if app.broadcasts is not None and not settings.telegram_token:
                # A WhatsApp-only run reaches nobody on Telegram: the preview must not count them, nor queue them.
                app.broadcasts.channels = tuple(c for c in app.broadcasts.channels if c != "telegram")
            runtime.start(background=self.background)
            self._closers.append(runtime.stop)
            for receive in receivers:
                await receive()
            if settings.dashboard_port and not self._dashboard_mounted:  # polling or the terminal: a server of its own
                from .web import serve as serve_dashboard

                self.dashboard_runner = await serve_dashboard(app.dashboard, settings.webhook_listen, settings.dashboard_port)
                self._closers.append(self.dashboard_runner.cleanup)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Receivers first (nothing new comes in), then the workers, then the database."""
        while self._closers:
            close = self._closers.pop()
            try:
                await close()
            except Exception:  # noqa: BLE001 - the rest must still close
                log.exception("error while stopping")
        if self.app is not None:
            await self.app.close()
            self.app = None

    async def _telegram(self) -> Callable[[], Awaitable[None]]:
        from .channels.telegram import TelegramSender, build_application, set_menus
        from .channels.telegram_polling import DurablePolling
        from .channels.webhook import start_webhook

        app, settings = self.app, self.settings
        self.application = application = build_application(app.hub, settings.telegram_token,
                                                           base_url=settings.telegram_api_base_url)
        await application.initialize()
        await application.start()

        async def shutdown() -> None:
            await application.stop()
            await application.shutdown()

        self._closers.append(shutdown)
        menu_url = f"{app.dashboard.base_url}/dashboard/app" if app.dashboard is not None and settings.dashboard_enabled else ""
        await set_menus(application.bot, app.hub, menu_url)
        self.runtime.attach("telegram", TelegramSender(application.bot, app.texts, menu_url), board=TelegramSender(application.bot),
                            admins=True)

        async def receive() -> None:
            if settings.webhook_url:
                runner = await start_webhook(application, url=settings.webhook_url, secret=settings.webhook_secret,
                                             listen=settings.webhook_listen, port=settings.webhook_port, inbox=app.inbox,
                                             extra=self._dashboard_routes())
                self.webhook_runner = runner
                self._closers.append(runner.cleanup)
                return
            self.polling = DurablePolling(application, app.inbox, timeout=self.poll_timeout)
            await self.polling.start()
            self._closers.append(self._stop_polling)
            log.info("Export Saathi is running on Telegram (long polling)")

        return receive

    def _dashboard_routes(self) -> Callable[[Any], None] | None:
        """Mounts the dashboard on the first webhook server that starts (Telegram's, else WhatsApp's)."""
        if self._dashboard_mounted or self.app is None or self.app.dashboard is None:
            return None
        from .web import mount

        self._dashboard_mounted = True
        service = self.app.dashboard
        return lambda root: mount(root, service)

    async def _stop_polling(self) -> None:
        if self.polling.running:
            await self.polling.stop()

    def _whatsapp(self) -> Callable[[], Awaitable[None]]:
        from .channels.whatsapp import GraphClient, LongLists, Phones, WhatsAppChannel, WhatsAppSender
        from .storage.identities import SqliteIdentities

        app, s = self.app, self.settings
        client = GraphClient(s.whatsapp_token, s.whatsapp_phone_number_id, s.whatsapp_api_base_url)
        self._closers.append(client.close)
        lists = LongLists()  # "More…" of a long list the sender sent (an admin's wizard screen) finds it here
        phones = Phones()  # the number each user last wrote from, for the "share my number" button the sender draws
        self.runtime.attach("whatsapp", WhatsAppSender(client, app.texts, lists=lists, phones=phones),
                            admins=bool(s.whatsapp_admin_numbers))
        if app.broadcasts is not None and "whatsapp" not in app.broadcasts.channels:
            app.broadcasts.channels = (*app.broadcasts.channels, "whatsapp")  # WhatsApp owners get broadcasts too
        self.whatsapp = WhatsAppChannel(app.hub, client, app_secret=s.whatsapp_app_secret,
                                        verify_token=s.whatsapp_verify_token, phone_number_id=s.whatsapp_phone_number_id,
                                        lists=lists, phones=phones, identities=SqliteIdentities(app.db),
                                        admin_numbers=s.whatsapp_admin_numbers)

        if getattr(app.db, "engine", "sqlite") == "postgresql":  # maybe several workers: one queue per user
            self.whatsapp.locks = app.db.user_locks()

        async def receive() -> None:
            self._closers.append(self.whatsapp.close)  # after the server below has stopped taking messages
            self.whatsapp_runner = await self.whatsapp.start(s.webhook_listen, s.whatsapp_port, extra=self._dashboard_routes())
            self._closers.append(self.whatsapp_runner.cleanup)

        return receive


async def serve(settings: Settings) -> None:
    """Telegram and/or WhatsApp, as configured, until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    process = BotProcess(settings)
    await process.start()
    try:
        await stop.wait()
    finally:
        await process.stop()


CONSOLE_ADMIN_USER = "admin"  # `saathi chat --user admin`: the demo admin of the terminal chat
CONSOLE_ADMIN_ID = -1  # stands for its Telegram id; real Telegram user ids are positive


async def chat(settings: Settings, user: str = "local", stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """A chat in the terminal on the same services and workers.

    Without Telegram the outbox (lead cards, notices, reminders, broadcasts) is printed right here
    and demo startups fill an empty registry, so every role can be tried locally: owners as any
    user, startup staff as ``staff-<startup id>``, the admin as ``admin`` (``/broadcast`` reaches
    the terminal owners). With Telegram set, the running bot delivers the outbox instead.
    """
    from dataclasses import replace

    from .channels.console import ConsoleChannel, ConsoleSender

    standalone = not settings.telegram_token and not settings.whatsapp_token
    if standalone:
        settings = replace(settings, admin_ids=settings.admin_ids | {CONSOLE_ADMIN_ID})
    app = await build_app(settings)
    runtime = Runtime(app)
    printer = ConsoleSender(stdout, Path(settings.database_path).parent / "images")
    closers: list[Callable[[], Awaitable[Any]]] = []
    try:
        runtime.attach("console", printer)
        # On a database a live bot has used, its Telegram messages are left queued for that bot:
        # printing them here would mark real owners' messages sent.
        live = standalone and await app.conversations.store.has_users_on("telegram")
        if standalone and not live:
            runtime.attach("telegram", printer, replies=False)
        if standalone:
            app.broadcasts.channels = ("console",) if live else ("telegram", "console")  # terminal owners hear them too
            if app.leads is not None:
                added = await app.leads.load_demo_if_empty()
                if added:
                    print(f"Loaded {added} demo partner startups (conversations/startups.demo.yaml).", file=stdout)
        runtime.start(background=standalone, per_chat_interval=0.0)
        if settings.dashboard_port and app.dashboard is not None:  # the dashboard beside the terminal chat
            from .web import serve as serve_dashboard

            dashboard = await serve_dashboard(app.dashboard, settings.webhook_listen, settings.dashboard_port)
            closers.append(dashboard.cleanup)
        admin = standalone and user == CONSOLE_ADMIN_USER
        await ConsoleChannel(app.hub.dispatcher, stdin, stdout, user_ref=user,
                             platform_user_id=CONSOLE_ADMIN_ID if admin else None).run()
    finally:
        for close in closers:
            await close()
        await runtime.stop()
        await app.close()


def run(settings: Settings) -> None:
    """``saathi run``: the configured channels, or the terminal chat when none is."""
    if not settings.telegram_token and not settings.whatsapp_token:
        print("TELEGRAM_BOT_TOKEN is not set: starting the terminal chat (data in %s)." % settings.database_path)
        asyncio.run(chat(settings))
        return
    asyncio.run(serve(settings))
