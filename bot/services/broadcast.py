"""Broadcasts: admins send a module invitation or an announcement to a segment of owners.

``BroadcastService`` plans a broadcast (messages in both languages, recipients, delivery time),
creates it (every recipient's outbox row in one statement; the delivery worker sends them at
the configured rate) and keeps one status message per broadcast up to date in the admin's chat.

``AdminRole`` is the admins' part of the Dispatcher: ``/broadcast`` (the pure wizard of
``core/wizard.py``, whose draft is stored in the database so a restart keeps it; this role
loads the counts its screens need and does what it decides), ``/broadcast_cancel`` and ``/stats``. Admins
are the Telegram user ids in ``ADMIN_IDS``; for anyone else this role does nothing, so the owner
conversation answers those commands like any unknown command and nothing is revealed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ..core import payloads
from ..core import wizard as wizard_rules
from ..core.content import Content
from ..core.engine import HELP
from ..core.funnel import describe_filters, parse_filters
from ..core.messages import Inbound, InKind, Photo, Say
from ..core.segments import Problem, Segment, Vocabulary
from ..core.session import N_, Tr
from ..core.wizard import ADMIN_HELP, BUTTONS, OLD_BUTTON, TEXT_STEPS, Draft, Need, Plan, Reach, Wizard  # noqa: F401 - re-exported
from ..i18n import Catalogs
from ..storage.broadcasts import UNSENT, BroadcastRow, SqliteBroadcasts
from ..storage.db import Database
from ..storage.leads import SqliteLeads
from ..storage.outbox import dump_say
from .clock import Clock, SystemClock
from .conversation import Reply
from .delivery import Blocked, Refused, RetryLater
from .dispatch import Who
from .locks import KeyedLocks
from .stats import StatsService

log = logging.getLogger(__name__)

CHANNELS = ("telegram",)
STATUS_INTERVAL = 3.0
POSTING = ""  # status_ref of a status message whose posting a crash interrupted: in doubt, never posted again
ADMIN_COMMANDS = ("broadcast", "broadcast_cancel", "stats", "help")
class StatusBoard(Protocol):
    """Posts and edits the admins' status messages (the Telegram sender does both)."""

    async def send(self, chat_ref: str, say: Say) -> str | None: ...

    async def edit(self, chat_ref: str, message_ref: str, say: Say) -> None: ...


class BroadcastService:
    """Plans, creates, cancels and reports broadcasts."""

    def __init__(
        self,
        db: Database,
        content: Content,
        texts: Catalogs,
        clock: Clock | None = None,
        *,
        rate: float = 25.0,
        channels: tuple[str, ...] = CHANNELS,
    ):
        self.repo = SqliteBroadcasts(db)
        self.content = content
        self.texts = texts
        self.clock = clock or SystemClock()
        self.rate = rate
        self.channels = channels
        self.vocab = Vocabulary.from_content(content)
        self._wakers: list[Callable[[], None]] = []
        self._shown: dict[int, str] = {}  # broadcast id -> status text last shown
        self.status_interval = STATUS_INTERVAL
        self._poke = asyncio.Event()

    def on_enqueue(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` after a broadcast is enqueued (the delivery worker's ``wake``)."""
        self._wakers.append(wake)

    def now(self) -> int:
        """The current time in whole seconds."""
        return int(self.clock.now())

    def tr(self, lang: str, msgid: str, **values: Any) -> str:
        """``msgid`` in ``lang`` with ``values`` filled in."""
        return Tr(lang, self.texts)._(msgid, **values)

    # ---- planning --------------------------------------------------------------------------

    def problems(self, plan: Plan) -> list[Problem]:
        """Why ``plan`` cannot be sent (empty when it can)."""
        return wizard_rules.problems(plan, self.content, self.vocab)

    def messages(self, plan: Plan) -> dict[str, Say]:
        """What each language's owners receive."""
        return wizard_rules.messages(plan, self.content, self.texts)

    async def count(self, segment: Segment) -> dict[str, int]:
        """Owners the segment reaches now, by language."""
        return await self.repo.count(segment, self.channels)

    def eta(self, recipients: int) -> float:
        """Seconds to deliver ``recipients`` messages at the configured rate."""
        return recipients / self.rate

    async def start(
        self, plan: Plan, *, created_by: str, admin: tuple[str, str] | None = None, admin_lang: str = "en",
        draft: Draft | None = None,
    ) -> tuple[int, int]:
        """Create the broadcast and enqueue every recipient's message; returns (id, recipients).

        ``draft`` (the admin's closed wizard) is stored in the same transaction.
        """
        problems = self.problems(plan)
        if problems:
            raise ValueError("; ".join(p.render(self.texts, "en") for p in problems))
        payloads = {lang: dump_say(say) for lang, say in self.messages(plan).items()}
        now = self.now()
        result = await self.repo.create(
            kind=plan.kind, segment=plan.segment, channels=self.channels, payloads=payloads, send_at=max(plan.send_at, now),
            now=now, created_by=created_by, module_id=plan.module_id, text_en=plan.text_en, text_hi=plan.text_hi,
            admin=admin, admin_lang=admin_lang, draft=draft,
        )
        log.info("broadcast %s created by %s: %s recipients", result[0], created_by, result[1])
        for wake in self._wakers:
            wake()
        self._poke.set()  # show the status message now, not at the next round
        return result

    async def cancel(self, broadcast_id: int | None = None) -> list[tuple[int, int]]:
        """Stop what has not been sent of one active broadcast (or all); (id, rows cancelled)."""
        result = await self.repo.cancel(broadcast_id, self.now())
        self._poke.set()
        return result

    def when_text(self, send_at: int, lang: str) -> str:
        """The word "now", or the date and time in India time."""
        return wizard_rules.when_text(Tr(lang, self.texts), send_at, self.now())

    # ---- the status message ------------------------------------------------------------------

    def status_text(self, b: BroadcastRow, counts: dict[str, int], state: str) -> str:
        """The status of broadcast ``b`` in its admin's language."""
        lang, num = b.admin_lang, (lambda n: self.texts.number(b.admin_lang, n))
        remaining = sum(counts.get(s, 0) for s in UNSENT)
        if state == "sending":
            finish = Tr(lang, self.texts).when(int(self.now() + self.eta(remaining)))
            state_text = self.tr(lang, N_("sending…"))
            when = self.tr(lang, N_("Estimated finish: {finish}"), finish=finish)
        else:
            finish = Tr(lang, self.texts).when(b.finished_at or self.now())
            state_text = self.tr(lang, N_("finished") if state == "done" else N_("cancelled"))
            when = self.tr(lang, N_("Finished: {finish}"), finish=finish) if state == "done" else ""
        text = self.tr(
            lang,
            N_(
                "📣 <b>Broadcast #{id}</b>: {state}\nSent: {sent} of {total}\nFailed: {failed} · Blocked: {blocked} · "
                "Opted out: {skipped}\nRemaining: {remaining}"
            ),
            id=b.id, state=state_text, sent=num(counts.get("sent", 0)), total=num(b.recipients), failed=num(counts.get("failed", 0)),
            blocked=num(counts.get("blocked", 0)), skipped=num(counts.get("skipped", 0)), remaining=num(remaining),
        )
        if "delivered" in counts:  # WhatsApp reports what reached the phones and was read
            text += "\n" + self.tr(lang, N_("WhatsApp: delivered {delivered} · read {read} · as a template {templates}"),
                                    delivered=num(counts["delivered"]), read=num(counts["read"]), templates=num(counts["templates"]))
        if counts.get("held"):
            text += "\n" + self.tr(lang, N_("Waiting on WhatsApp until the owner writes: {n}"), n=num(counts["held"]))
        if when:  # a finished broadcast says when it finished, not an estimate
            text += "\n" + when
        if counts.get("cancelled"):
            text += "\n" + self.tr(lang, N_("Cancelled, not sent: {n}"), n=num(counts["cancelled"]))
        if counts.get("unknown"):
            text += "\n" + self.tr(lang, N_("Interrupted while sending (not sent again): {n}"), n=num(counts["unknown"]))
        return text

    async def update_status(self, board: StatusBoard) -> None:
        """Post or edit the status message of every broadcast in progress; close finished ones."""
        now = self.now()
        for b in await self.repo.to_report():
            counts = await self.repo.progress(b.id)
            windows = getattr(self, "windows", None)
            if windows is not None and "whatsapp" in self.channels:
                counts.update(await windows.repo.delivery_counts(b.id))
            if b.status == "active":
                if sum(counts.get(s, 0) for s in UNSENT) == 0:
                    await self.repo.finish(b.id, now)
                    b = await self.repo.get(b.id)
                elif b.send_at > now and b.status_ref is None:
                    continue  # scheduled: the status message appears when sending starts
            state = "sending" if b.status == "active" else b.status
            if b.admin_chat is None:
                if state != "sending":
                    await self.repo.mark_reported(b.id)
                continue
            text = self.status_text(b, counts, state)
            if self._shown.get(b.id) != text:
                try:
                    if b.status_ref is None:
                        # Marked before it is posted: if the bot dies before the message id is stored, the
                        # message may be in the chat already, and a second one must not follow (as in the outbox).
                        await self.repo.set_status_ref(b.id, POSTING)
                        try:
                            ref = await board.send(b.admin_chat, Say(text))
                        except RetryLater:
                            await self.repo.set_status_ref(b.id, None)  # refused for now: post it at the next update
                            raise
                        if ref is not None:
                            await self.repo.set_status_ref(b.id, ref)
                    elif b.status_ref != POSTING:
                        await board.edit(b.admin_chat, b.status_ref, Say(text))
                except RetryLater as exc:  # try again at the next update
                    log.info("status of broadcast %s not shown yet: %s", b.id, exc)
                    continue
                except (Refused, Blocked) as exc:  # the admin's chat is gone: stop trying at the end
                    log.warning("status of broadcast %s not shown: %s", b.id, exc)
                self._shown[b.id] = text
            if state != "sending":
                await self.repo.mark_reported(b.id)
                self._shown.pop(b.id, None)

    async def run_status(self, board: StatusBoard, stop: asyncio.Event) -> None:
        """Keep the status messages up to date every ``status_interval`` seconds until ``stop``."""
        while not stop.is_set():
            self._poke.clear()
            try:
                await self.update_status(board)
            except Exception:  # a status message must never take the bot down
                log.exception("broadcast status update failed")
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._poke.wait())}
            await asyncio.wait(waiters, timeout=self.status_interval, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()


def admin_lang(who: Who, own: str | None = None) -> str:
    """Admins read Hindi when their Telegram app is in Hindi, else English. Where the channel gives no
    hint (WhatsApp), the language of the admin's own owner conversation (``own``), else English."""
    if who.lang_hint:
        return "hi" if who.lang_hint.lower().startswith("hi") else "en"
    return own if own in ("hi", "en") else "en"


class AdminRole:
    """The admins' commands and the /broadcast wizard (a Dispatcher role)."""

    def __init__(self, broadcasts: BroadcastService, stats: StatsService, admin_ids: frozenset[int],
                 whatsapp_numbers: frozenset[str] = frozenset()):
        self.bc = broadcasts
        self.stats = stats
        self.admin_ids = admin_ids
        self.whatsapp_numbers = whatsapp_numbers  # WHATSAPP_ADMIN_NUMBERS: a WhatsApp id is the phone number
        self.repo = broadcasts.repo
        self.texts = broadcasts.texts
        self.content = broadcasts.content
        self.locks = KeyedLocks()

    def is_admin(self, who: Who) -> bool:
        """Whether the sender is one of the configured admins: a Telegram user id in ``ADMIN_IDS``, or on
        WhatsApp (whose sender id is the phone number, given by WhatsApp, not typed) a number in
        ``WHATSAPP_ADMIN_NUMBERS``."""
        if who.key.channel == "whatsapp":
            return who.key.user_ref in self.whatsapp_numbers
        return who.platform_user_id is not None and who.platform_user_id in self.admin_ids

    async def admin_lang(self, who: Who) -> str:
        """The admin's language: the app's on Telegram; on WhatsApp their own owner session's, else English."""
        own = None
        if who.key.channel == "whatsapp" and not who.lang_hint:
            async with self.repo.db.transaction() as conn:
                own = (await SqliteLeads.admin_langs(conn, who.key.channel, [who.key.user_ref])).get(who.key.user_ref)
        return admin_lang(who, own)

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        """A reply when ``inbound`` is an admin's command, wizard button or wizard text; else ``None``."""
        if not self.is_admin(who):
            return None
        kind, data = inbound.kind, inbound.data
        mine = (kind is InKind.COMMAND and data in ADMIN_COMMANDS) or (
            kind is InKind.CHOICE and isinstance(payloads.decode(data), payloads.Wizard))
        if not mine and (kind is InKind.TEXT or (kind is InKind.COMMAND and data == "cancel")):
            draft = await self.repo.load_draft(who.key.channel, who.key.user_ref)
            mine = draft is not None and (draft.step in TEXT_STEPS if kind is InKind.TEXT else draft.step != "done")
        if not mine:
            return None
        async with self.locks.hold(who.key):
            if who.update_id is not None and not await self.repo.first_time(who.key.channel, who.update_id, self.bc.now()):
                return None
            draft = await self.repo.load_draft(who.key.channel, who.key.user_ref) or Draft(who.key.channel, who.key.user_ref)
            lang = await self.admin_lang(who) if kind is InKind.COMMAND or draft.step == "done" else draft.lang
            wizard = Wizard(self.content, self.bc.vocab, self.texts, draft, lang, now=self.bc.now(), rate=self.bc.rate)
            if kind is InKind.COMMAND:
                wizard.command(data, inbound.text, HELP)
            elif kind is InKind.CHOICE:
                wizard.tap(data)
            else:
                wizard.typed(inbound.text)
            if wizard.need is not None:
                await self._finish(wizard, wizard.need)
            if wizard.changed:
                await self.repo.save_draft(draft, self.bc.now())
        return Reply(wizard.outputs, wizard.lang, 0, [])

    async def _finish(self, wizard: Wizard, need: Need) -> None:
        """Look up what the wizard's screen needs, or do what it decided, and let it finish the screen."""
        if need.kind == "who":
            wizard.show_who(await self.bc.count(wizard.segment))
        elif need.kind == "preview":
            plan = wizard.plan()
            wizard.show_preview(await self.bc.count(plan.segment), await self._reach(plan))
        elif need.kind == "confirm":
            counts = await self.bc.count(wizard.segment)
            if counts["hi"] + counts["en"] == 0:
                wizard.nobody()
                return
            plan, d = wizard.closing(), wizard.d
            broadcast_id, recipients = await self.bc.start(
                # The status message is kept by editing it (Telegram); WhatsApp cannot edit a message, so a
                # WhatsApp admin's broadcast has none (the board must never get a WhatsApp number as a chat).
                plan, created_by=f"{d.channel}:{d.chat_ref}", admin=None if d.channel == "whatsapp" else (d.channel, d.chat_ref),
                admin_lang=wizard.lang, draft=d)
            wizard.confirmed(plan, broadcast_id, recipients, status_here=d.channel != "whatsapp")
        elif need.kind == "cancel":
            wizard.cancelled(await self.bc.cancel(need.arg))
        elif need.kind == "stats":
            await self._stats(wizard, need.arg)

    async def _reach(self, plan: Plan) -> Reach | None:
        """With WhatsApp among the channels: recipients per channel, and who gets which template."""
        windows = getattr(self.bc, "windows", None)
        if windows is None or "whatsapp" not in self.bc.channels:
            return None
        reach = await windows.reach(plan.segment, self.bc.channels)
        template = windows.book.for_kind("module_invitation" if plan.kind == "module" else "announcement")
        return Reach({c: reach.get(c, 0) for c in self.bc.channels}, reach.get("outside_window", 0),
                     template.name if template is not None else None)

    async def _stats(self, wizard: Wizard, args: str) -> None:
        """/stats: the funnel as text (with what waits on WhatsApp) or as a chart."""
        filters, chart, problems = parse_filters(args, self.bc.vocab)
        if problems:
            wizard.say("\n".join(p.render(self.texts, wizard.lang) for p in problems))
            return
        funnel = await self.stats.funnel(filters)
        scope = describe_filters(filters, self.bc.vocab, self.texts, wizard.lang)
        heading = wizard._(N_("<b>Funnel</b> ({scope})"), scope=scope)
        if chart:
            png = await asyncio.to_thread(self.stats.chart, funnel, scope, wizard.lang)
            wizard.outputs.append(Photo(png, heading, "funnel.png"))
        else:
            text = self.stats.text(funnel, heading, wizard.lang)
            windows = getattr(self.stats, "windows", None)
            waiting = await windows.waiting_text(wizard.lang) if windows is not None else ""
            wizard.say(f"{text}\n\n{waiting}" if waiting else text)
