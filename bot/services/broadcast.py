"""Broadcasts: admins send a module invitation or an announcement to a segment of owners.

``BroadcastService`` plans a broadcast (messages in both languages, recipients, delivery time),
creates it (every recipient's outbox row in one statement; the delivery worker sends them at
the configured rate) and keeps one status message per broadcast up to date in the admin's chat.

``AdminRole`` is the admins' part of the Dispatcher: ``/broadcast`` (a wizard whose state is
stored in the database, so a restart keeps it), ``/broadcast_cancel`` and ``/stats``. Admins
are the Telegram user ids in ``ADMIN_IDS``; for anyone else this role does nothing, so the owner
conversation answers those commands like any unknown command and nothing is revealed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core import broadcast as compose
from ..core.content import Content
from ..core.engine import HELP
from ..core.funnel import describe_filters, parse_filters
from ..core.messages import Choice, Inbound, InKind, Outbound, Photo, Picked, Say, Toast
from ..core.segments import LANG_NAMES, MODULE_STATUSES, STATUS_LABELS, Problem, Segment, Vocabulary, describe, validate
from ..core.session import N_, P_
from ..i18n import Catalogs
from ..storage.broadcasts import UNSENT, BroadcastRow, Draft, SqliteBroadcasts
from ..storage.db import Database
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
ADMIN_HELP = N_(
    "<b>Admin commands</b>\n"
    "/broadcast – send a module invitation or an announcement to a group of owners\n"
    "/broadcast_cancel – stop a broadcast in progress (or /broadcast_cancel 12 for #12)\n"
    "/stats – the funnel; /stats chart – as a picture; filters: state=uttar_pradesh sector=spices lang=hi"
)
OLD_BUTTON = N_("That button is from an earlier message. Please use the latest one.")
# Button labels of the wizard (kept short: they must fit a phone screen in Hindi too).
B_ANNOUNCE = N_("✍️ Announcement")
B_CANCEL = N_("✖️ Cancel")
B_LANG = N_("Language")
B_STATE = N_("State")
B_SECTOR = N_("Sector")
B_PROFILE = N_("Profile")
B_MODULE = N_("Module status")
B_CLEAR = N_("Clear all")
B_NEXT = N_("Next ▶️")
B_DONE = N_("Done")
B_BACK = N_("◀️ Back")
B_ANY_LANG = N_("Any language")
B_COMPLETE = N_("Complete")
B_INCOMPLETE = N_("Not complete")
B_EITHER = N_("Either")
B_NO_CONDITION = N_("No condition")
B_NOW = N_("Now")
B_TODAY = N_("Today 18:00")
B_TOMORROW = N_("Tomorrow 10:00")
B_CONFIRM = N_("✅ Confirm")
B_CHANGE_WHO = N_("Change who")
B_CHANGE_WHEN = N_("Change time")
BUTTONS = (
    B_ANNOUNCE, B_CANCEL, B_LANG, B_STATE, B_SECTOR, B_PROFILE, B_MODULE, B_CLEAR, B_NEXT, B_DONE, B_BACK, B_ANY_LANG,
    B_COMPLETE, B_INCOMPLETE, B_EITHER, B_NO_CONDITION, B_NOW, B_TODAY, B_TOMORROW, B_CONFIRM, B_CHANGE_WHO,
    B_CHANGE_WHEN, compose.START_MODULE, *STATUS_LABELS.values(),
)
"""Every button label of the admin screens (a test keeps them within 20 characters)."""
# Steps where the wizard expects typed text.
TEXT_STEPS = ("ann_en", "ann_hi", "when")


class StatusBoard(Protocol):
    """Posts and edits the admins' status messages (the Telegram sender does both)."""

    async def send(self, chat_ref: str, say: Say) -> str | None: ...

    async def edit(self, chat_ref: str, message_ref: str, say: Say) -> None: ...


@dataclass(frozen=True)
class Plan:
    """A broadcast before it is created: what, to whom, when (``send_at`` 0 = now)."""

    kind: str  # module | announcement
    segment: Segment
    module_id: str | None = None
    text_en: str | None = None  # chat HTML (escaped admin text)
    text_hi: str | None = None
    send_at: int = 0


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
        text = self.texts.gettext(lang, msgid)
        return text.format(**values) if values else text

    # ---- planning --------------------------------------------------------------------------

    def problems(self, plan: Plan) -> list[Problem]:
        """Why ``plan`` cannot be sent (empty when it can)."""
        problems = validate(plan.segment, self.vocab)
        if plan.kind == "module":
            if self.content.module(plan.module_id or "") is None:
                problems.append(Problem(N_("Unknown module '{value}'."), {"value": plan.module_id or ""}))
        elif plan.kind == "announcement":
            problems += compose.check_announcement(plan.text_en, plan.text_hi)
        else:
            problems.append(Problem(N_("Unknown kind of broadcast '{value}'."), {"value": plan.kind}))
        return problems

    def messages(self, plan: Plan) -> dict[str, Say]:
        """What each language's owners receive."""
        if plan.kind == "module":
            module = self.content.module(plan.module_id or "")
            return {lang: compose.invitation(module, self.texts, lang) for lang in ("en", "hi")}
        return {"en": compose.announcement(plan.text_en or "", self.texts, "en"), "hi": compose.announcement(plan.text_hi or "", self.texts, "hi")}

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
        if send_at <= self.now():
            return self.tr(lang, N_("now"))
        return self.texts.datetime(lang, dt.datetime.fromtimestamp(send_at, dt.timezone.utc))

    # ---- the status message ------------------------------------------------------------------

    def status_text(self, b: BroadcastRow, counts: dict[str, int], state: str) -> str:
        """The status of broadcast ``b`` in its admin's language."""
        lang, num = b.admin_lang, (lambda n: self.texts.number(b.admin_lang, n))
        remaining = sum(counts.get(s, 0) for s in UNSENT)
        if state == "sending":
            finish = self.texts.datetime(lang, dt.datetime.fromtimestamp(self.now() + self.eta(remaining), dt.timezone.utc))
            state_text = self.tr(lang, N_("sending…"))
            when = self.tr(lang, N_("Estimated finish: {finish}"), finish=finish)
        else:
            finish = self.texts.datetime(lang, dt.datetime.fromtimestamp(b.finished_at or self.now(), dt.timezone.utc))
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


def admin_lang(who: Who) -> str:
    """Admins read Hindi when their Telegram app is in Hindi, else English."""
    return "hi" if (who.lang_hint or "").lower().startswith("hi") else "en"


class AdminRole:
    """The admins' commands and the /broadcast wizard (a Dispatcher role)."""

    def __init__(self, broadcasts: BroadcastService, stats: StatsService, admin_ids: frozenset[int]):
        self.bc = broadcasts
        self.stats = stats
        self.admin_ids = admin_ids
        self.repo = broadcasts.repo
        self.texts = broadcasts.texts
        self.content = broadcasts.content
        self.locks = KeyedLocks()

    def is_admin(self, who: Who) -> bool:
        """Whether the sender is one of the configured admins."""
        return who.platform_user_id is not None and who.platform_user_id in self.admin_ids

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        """A reply when ``inbound`` is an admin's command, wizard button or wizard text; else ``None``."""
        if not self.is_admin(who):
            return None
        kind, data = inbound.kind, inbound.data
        mine = (kind is InKind.COMMAND and data in ADMIN_COMMANDS) or (kind is InKind.CHOICE and data.startswith("bc:"))
        if not mine and (kind is InKind.TEXT or (kind is InKind.COMMAND and data == "cancel")):
            draft = await self.repo.load_draft(who.key.channel, who.key.user_ref)
            mine = draft is not None and (draft.step in TEXT_STEPS if kind is InKind.TEXT else draft.step != "done")
        if not mine:
            return None
        async with self.locks.hold(who.key):
            if who.update_id is not None and not await self.repo.first_time(who.key.channel, who.update_id, self.bc.now()):
                return None
            draft = await self.repo.load_draft(who.key.channel, who.key.user_ref) or Draft(who.key.channel, who.key.user_ref)
            lang = admin_lang(who) if kind is InKind.COMMAND or draft.step == "done" else draft.lang
            screen = Screen(self, draft, lang)
            if kind is InKind.COMMAND:
                await screen.command(data, inbound.text)
            elif kind is InKind.CHOICE:
                await screen.tap(data)
            else:
                await screen.typed(inbound.text)
            if screen.changed:
                await self.repo.save_draft(draft, self.bc.now())
        return Reply(screen.outputs, screen.lang, 0, [])


class Screen:
    """One admin turn: reads and changes the draft, collects what to show."""

    def __init__(self, role: AdminRole, draft: Draft, lang: str):
        self.role, self.d, self.lang = role, draft, lang
        self.bc = role.bc
        self.outputs: list[Outbound] = []
        self.changed = False

    # ---- helpers -----------------------------------------------------------------------------
    def _(self, msgid: str, **values: Any) -> str:
        return self.bc.tr(self.lang, msgid, **values)

    def num(self, n: int) -> str:
        return self.role.texts.number(self.lang, n)

    def p_(self, forms: tuple[str, str], count: int, /, **values: Any) -> str:
        """``forms`` (from ``P_``) in the admin's language, in the form for ``count``."""
        return self.role.texts.ngettext(self.lang, forms[0], forms[1], count).format(**values)

    def say(self, text: str, choices: list[Choice] | tuple[Choice, ...] = (), columns: int = 1, replace: bool = False) -> None:
        self.outputs.append(Say(text, tuple(choices), columns, replace=replace))

    def button(self, action: str, label: str) -> Choice:
        return Choice(f"bc:{self.d.seq}:{action}", label)

    def goto(self, step: str) -> None:
        """A new screen: buttons of older screens stop counting."""
        self.d.step = step
        self.d.seq += 1
        self.changed = True

    @property
    def segment(self) -> Segment:
        return Segment.from_dict(self.d.data.get("segment"))

    @segment.setter
    def segment(self, value: Segment) -> None:
        self.d.data["segment"] = value.to_dict()
        self.changed = True

    def plan(self) -> Plan:
        data = self.d.data
        return Plan(data.get("what", ""), self.segment, data.get("module"), data.get("en"), data.get("hi"), data.get("send_at", 0))

    # ---- entry points ------------------------------------------------------------------------
    async def command(self, name: str, args: str) -> None:
        if name == "broadcast":
            self.d.lang, self.d.data = self.lang, {}
            self.goto("what")
            self.show_what()
        elif name == "broadcast_cancel":
            await self.cancel_command(args)
        elif name == "stats":
            await self.stats_command(args)
        elif name == "help":  # an admin is an owner too: the owners' commands, then the admins'
            self.say(self._(HELP) + "\n\n" + self._(ADMIN_HELP))
        elif name == "cancel":
            self.close()

    async def tap(self, payload: str) -> None:
        _, seq, action = (payload.split(":", 2) + ["", ""])[:3]
        if self.d.step == "done" or seq != str(self.d.seq):
            self.outputs.append(Toast(self._(OLD_BUTTON)))
            return
        if action == "x":
            self.outputs.append(Picked(self._(B_CANCEL)))
            self.close()
            return
        handler = getattr(self, f"tap_{self.d.step}", None)
        if handler is None:
            self.outputs.append(Toast(self._(OLD_BUTTON)))
            return
        await handler(action)

    async def typed(self, text: str) -> None:
        if self.d.step == "when":
            await self.typed_when(text)
            return
        lang = "en" if self.d.step == "ann_en" else "hi"
        problems = compose.check_text(text, lang)
        if lang == "hi" and not problems and text.strip() == (self.d.data.get("raw_en") or "").strip():
            problems = [Problem(N_("The Hindi text is the same as the English one. Please send the Hindi text."))]
        if problems:
            self.say("\n".join(p.render(self.role.texts, self.lang) for p in problems))
            self.show_text_prompt(lang)
            return
        self.d.data[lang] = compose.escape_admin_text(text)
        if lang == "en":
            self.d.data["raw_en"] = text.strip()
            self.goto("ann_hi")
            self.show_text_prompt("hi")
        else:
            self.d.data.pop("raw_en", None)
            await self.show_who()

    def close(self) -> None:
        self.d.step, self.d.data = "done", {}
        self.d.seq += 1
        self.changed = True
        self.say(self._(N_("Okay, the new broadcast is cancelled. Nothing was sent.")))

    # ---- what --------------------------------------------------------------------------------
    def show_what(self) -> None:
        choices = [self.button(f"m.{m.id}", "📘 " + self._(m.short)) for m in self.role.content.modules]
        choices += [self.button("ann", self._(B_ANNOUNCE)), self.button("x", self._(B_CANCEL))]
        self.say(
            self._(N_("<b>New broadcast</b>\nWhat do you want to send? An invitation to a training module, or your own announcement.")),
            choices, columns=2,
        )

    async def tap_what(self, action: str) -> None:
        if action.startswith("m.") and self.role.content.module(action[2:]):
            module = self.role.content.module(action[2:])
            self.outputs.append(Picked("📘 " + self._(module.short)))
            self.d.data.update(what="module", module=module.id)
            await self.show_who()
        elif action == "ann":
            self.outputs.append(Picked(self._(B_ANNOUNCE)))
            self.d.data.update(what="announcement")
            self.goto("ann_en")
            self.show_text_prompt("en")
        else:
            self.outputs.append(Toast(self._(OLD_BUTTON)))

    def show_text_prompt(self, lang: str) -> None:
        if lang == "en":
            self.say(self._(N_("Send the announcement in <b>English</b>, as owners should read it. (/cancel to stop)")))
        else:
            self.say(self._(N_("Now send the same announcement in <b>Hindi</b>. Both languages are needed. (/cancel to stop)")))

    # ---- who ---------------------------------------------------------------------------------
    async def show_who(self) -> None:
        self.goto("who")
        segment = self.segment
        counts = await self.bc.count(segment)
        total = counts["hi"] + counts["en"]
        text = self._(
            N_("<b>Who gets it?</b> All conditions must hold.\n{conditions}\n\nRecipients now: <b>{count}</b> (हिन्दी {hi} · English {en})"),
            conditions=describe(segment, self.bc.vocab, self.role.texts, self.lang), count=self.num(total),
            hi=self.num(counts["hi"]), en=self.num(counts["en"]),
        )
        choices = [
            self.button("lang", self._(B_LANG)), self.button("state", self._(B_STATE)), self.button("sector", self._(B_SECTOR)),
            self.button("onb", self._(B_PROFILE)), self.button("mod", self._(B_MODULE)),
        ]
        if not segment.is_everyone:
            choices.append(self.button("clear", self._(B_CLEAR)))
        choices += [self.button("next", self._(B_NEXT)), self.button("x", self._(B_CANCEL))]
        self.say(text, choices, columns=2)

    async def tap_who(self, action: str) -> None:
        labels = {"lang": B_LANG, "state": B_STATE, "sector": B_SECTOR, "onb": B_PROFILE, "mod": B_MODULE, "clear": B_CLEAR, "next": B_NEXT}
        if action not in labels:
            self.outputs.append(Toast(self._(OLD_BUTTON)))
            return
        self.outputs.append(Picked(self._(labels[action])))
        if action == "clear":
            self.segment = Segment()
            await self.show_who()
        elif action == "next":
            self.goto("when")
            self.show_when()
        elif action == "lang":
            self.goto("lang")
            self.say(
                self._(N_("Owners who use which language?")),
                [self.button("hi", LANG_NAMES["hi"]), self.button("en", LANG_NAMES["en"]), self.button("any", self._(B_ANY_LANG))],
                columns=2,
            )
        elif action in ("state", "sector"):
            self.goto(action)
            self.show_pick(action)
        elif action == "onb":
            self.goto("onb")
            self.say(
                self._(N_("Owners whose profile is…")),
                [self.button("yes", self._(B_COMPLETE)), self.button("no", self._(B_INCOMPLETE)), self.button("any", self._(B_EITHER))],
                columns=2,
            )
        else:
            self.goto("mod")
            choices = [self.button(m.id, self._(m.short)) for m in self.role.content.modules]
            self.say(self._(N_("A condition on which module?")), [*choices, self.button("back", self._(B_BACK))], columns=2)

    async def tap_lang(self, action: str) -> None:
        if action not in ("hi", "en", "any"):
            return
        self.outputs.append(Picked(LANG_NAMES.get(action) or self._(B_ANY_LANG)))
        self.segment = self.segment.with_lang(None if action == "any" else action)
        await self.show_who()

    def show_pick(self, field: str, replace: bool = False) -> None:
        options = self.bc.vocab.states if field == "state" else self.bc.vocab.sectors
        chosen = self.segment.states if field == "state" else self.segment.sectors
        choices = [self.button(f"t.{oid}", ("✅ " if oid in chosen else "") + self._(label)) for oid, label in options.items()]
        choices.append(self.button("done", self._(B_DONE)))
        prompt = N_("Tap the states to include (tap again to remove), then Done.") if field == "state" else N_(
            "Tap the sectors to include (tap again to remove), then Done."
        )
        self.say(self._(prompt), choices, columns=3 if field == "state" else 2, replace=replace)

    async def _tap_pick(self, field: str, action: str) -> None:
        options = self.bc.vocab.states if field == "state" else self.bc.vocab.sectors
        if action == "done":
            self.outputs.append(Picked(self._(B_DONE)))
            await self.show_who()
        elif action.startswith("t.") and action[2:] in options:
            oid = action[2:]
            self.segment = self.segment.toggle_state(oid) if field == "state" else self.segment.toggle_sector(oid)
            self.show_pick(field, replace=True)

    async def tap_state(self, action: str) -> None:
        await self._tap_pick("state", action)

    async def tap_sector(self, action: str) -> None:
        await self._tap_pick("sector", action)

    async def tap_onb(self, action: str) -> None:
        values = {"yes": (True, B_COMPLETE), "no": (False, B_INCOMPLETE), "any": (None, B_EITHER)}
        if action in values:
            value, label = values[action]
            self.outputs.append(Picked(self._(label)))
            self.segment = self.segment.with_onboarded(value)
            await self.show_who()

    async def tap_mod(self, action: str) -> None:
        if action == "back":
            self.outputs.append(Picked(self._(B_BACK)))
            await self.show_who()
            return
        module = self.role.content.module(action)
        if module is None:
            return
        self.outputs.append(Picked(self._(module.short)))
        self.d.data["pick_module"] = module.id
        self.goto("mod_status")
        choices = [self.button(status, self._(STATUS_LABELS[status])) for status in MODULE_STATUSES]
        choices.append(self.button("none", self._(B_NO_CONDITION)))
        self.say(self._(N_("<b>{module}</b>: which owners?"), module=self._(module.title)), choices, columns=2)

    async def tap_mod_status(self, action: str) -> None:
        module_id = self.d.data.get("pick_module", "")
        if action not in (*MODULE_STATUSES, "none") or self.role.content.module(module_id) is None:
            return
        label = STATUS_LABELS.get(action, B_NO_CONDITION)
        self.outputs.append(Picked(self._(label)))
        self.segment = self.segment.with_module(module_id, None if action == "none" else action)
        self.d.data.pop("pick_module", None)
        await self.show_who()

    # ---- when --------------------------------------------------------------------------------
    def show_when(self) -> None:
        now = self.bc.now()
        choices = [self.button("now", self._(B_NOW))]
        if compose.at_hour(now, 18) > now + 60:
            choices.append(self.button("t18", self._(B_TODAY)))
        choices += [self.button("tm10", self._(B_TOMORROW)), self.button("x", self._(B_CANCEL))]
        self.say(
            self._(N_("<b>When should it go out?</b> Tap a time, or type a date and hour in India time like this: {example}"),
                   example=compose.example_when(now)),
            choices, columns=2,
        )

    async def tap_when(self, action: str) -> None:
        now = self.bc.now()
        times = {"now": (0, B_NOW), "t18": (compose.at_hour(now, 18), B_TODAY), "tm10": (compose.at_hour(now, 10, days=1), B_TOMORROW)}
        if action not in times:
            return
        at, label = times[action]
        self.outputs.append(Picked(self._(label)))
        self.d.data["send_at"] = at
        await self.show_preview()

    async def typed_when(self, text: str) -> None:
        result = compose.parse_when(text, self.bc.now())
        if isinstance(result, Problem):
            self.say(result.render(self.role.texts, self.lang))
            self.show_when()
            return
        self.d.data["send_at"] = result
        await self.show_preview()

    # ---- preview and confirm -----------------------------------------------------------------
    async def show_preview(self) -> None:
        self.goto("preview")
        plan = self.plan()
        problems = self.bc.problems(plan)
        if problems:  # e.g. a module removed from the content since the wizard began
            self.say("\n".join(p.render(self.role.texts, self.lang) for p in problems))
            self.close()
            return
        counts = await self.bc.count(plan.segment)
        total = counts["hi"] + counts["en"]
        who = describe(plan.segment, self.bc.vocab, self.role.texts, self.lang)
        if total == 0:
            self.say(
                self._(N_("No owner matches these conditions:\n{conditions}\nChange who gets it, or cancel."), conditions=who),
                [self.button("who", self._(B_CHANGE_WHO)), self.button("x", self._(B_CANCEL))], columns=2,
            )
            return
        if plan.kind == "module":
            what = self._(N_("invitation to the module “{title}”"), title=self._(self.role.content.module(plan.module_id).title))
        else:
            what = self._(N_("announcement"))
        self.say(
            self._(
                N_(
                    "<b>Preview</b>\nWhat: {what}\nWho:\n{conditions}\nRecipients: <b>{count}</b> (हिन्दी {hi} · English {en})\n"
                    "When: {when}\nEstimated delivery time: {eta} at {rate} messages a second\n\n"
                    "Nothing is sent until you tap Confirm."
                ),
                what=what, conditions=who, count=self.num(total), hi=self.num(counts["hi"]), en=self.num(counts["en"]),
                when=self.bc.when_text(plan.send_at, self.lang), eta=compose.duration(self.bc.eta(total), self.role.texts, self.lang),
                rate=self.role.texts.number(self.lang, self.bc.rate),
            )
        )
        if plan.kind == "module":
            module = self.role.content.module(plan.module_id)
            locked = [m for m in (self.role.content.module(r) for r in module.requires) if m is not None]
            needed = [m for m in locked if plan.segment.module_status(m.id) != "passed"]
            if needed:
                self.say(
                    self._(
                        N_("Note: this module opens after {modules}. Owners who have not passed that will be asked to do it first."),
                        modules=", ".join(self._(m.title) for m in needed),
                    )
                )
        messages = self.bc.messages(plan)
        for index, (lang, heading) in enumerate((("en", "English"), ("hi", "हिन्दी"))):
            say = messages[lang]
            body = f"<b>— {heading} —</b>\n\n{say.text}"
            if say.choices:
                body += "\n\n" + "  ".join(f"[{c.label}]" for c in say.choices)
            last = index == 1
            choices = (
                [self.button("ok", self._(B_CONFIRM)), self.button("who", self._(B_CHANGE_WHO)),
                 self.button("when", self._(B_CHANGE_WHEN)), self.button("x", self._(B_CANCEL))]
                if last else []
            )
            self.say(body, choices, columns=2)

    async def tap_preview(self, action: str) -> None:
        if action == "who":
            self.outputs.append(Picked(self._(B_CHANGE_WHO)))
            await self.show_who()
        elif action == "when":
            self.outputs.append(Picked(self._(B_CHANGE_WHEN)))
            self.goto("when")
            self.show_when()
        elif action == "ok":
            self.outputs.append(Picked(self._(B_CONFIRM)))
            await self.confirm()

    async def confirm(self) -> None:
        plan = self.plan()
        counts = await self.bc.count(plan.segment)
        if counts["hi"] + counts["en"] == 0:
            self.say(self._(N_("No owner matches these conditions any more. Nothing was sent.")))
            self.close()
            return
        # The wizard is closed in the broadcast's own transaction: if the bot died (or a write failed)
        # right after the broadcast was created, a second tap on Confirm would send it all again.
        self.d.step, self.d.data = "done", {}
        self.d.seq += 1
        self.changed = True
        broadcast_id, recipients = await self.bc.start(
            plan, created_by=f"{self.d.channel}:{self.d.chat_ref}", admin=(self.d.channel, self.d.chat_ref), admin_lang=self.lang,
            draft=self.d,
        )
        self.say(
            self.p_(
                P_(
                    "✅ Broadcast #{id} is queued for {count} owner, starting {when}. A status message here will show its progress. /broadcast_cancel stops it.",
                    "✅ Broadcast #{id} is queued for {count} owners, starting {when}. A status message here will show its progress. /broadcast_cancel stops it.",
                ),
                recipients, id=broadcast_id, count=self.num(recipients), when=self.bc.when_text(plan.send_at, self.lang),
            )
        )

    # ---- /broadcast_cancel and /stats ----------------------------------------------------------
    async def cancel_command(self, args: str) -> None:
        if self.d.step != "done":
            self.close()
            return
        target = None
        number = args.strip().lstrip("#")
        if number.isascii() and number.isdigit() and len(number) <= 18:  # "²" is a digit but no number
            target = int(number)
        results = await self.bc.cancel(target)
        if not results:
            self.say(self._(N_("There is no broadcast in progress.")))
            return
        for broadcast_id, cancelled in results:
            self.say(
                self.p_(P_("⏹ Broadcast #{id} cancelled: {n} message will not be sent.", "⏹ Broadcast #{id} cancelled: {n} messages will not be sent."),
                        cancelled, id=broadcast_id, n=self.num(cancelled))
            )

    async def stats_command(self, args: str) -> None:
        filters, chart, problems = parse_filters(args, self.bc.vocab)
        if problems:
            self.say("\n".join(p.render(self.role.texts, self.lang) for p in problems))
            return
        funnel = await self.role.stats.funnel(filters)
        scope = describe_filters(filters, self.bc.vocab, self.role.texts, self.lang)
        heading = self._(N_("<b>Funnel</b> ({scope})"), scope=scope)
        if chart:
            png = await asyncio.to_thread(self.role.stats.chart, funnel, scope, self.lang)
            self.outputs.append(Photo(png, heading, "funnel.png"))
        else:
            self.say(self.role.stats.text(funnel, heading, self.lang))
