"""The admins' /broadcast wizard, pure: (draft, input) → (draft, outputs, what to look up or do).

An admin builds a broadcast over several screens — what (a module invitation or an
announcement in both languages), who (conditions on language, state, sector, profile, modules),
when — then sees a preview and confirms. The draft is stored between turns, so a restart keeps
it; every button carries the draft's ``seq``, so a tap on an older screen is recognised.

A screen that shows numbers (who gets it, the preview) or a step that changes the world
(confirm, /broadcast_cancel, /stats) is not finished here: the turn ends with a ``Need`` naming
it. The service (``services/broadcast.AdminRole``) looks the facts up for the draft as it now
is — recipient counts, the reach per channel — or does the deed, and calls the matching
``show_…`` / ``confirmed`` / ``cancelled`` here to finish the screen. No I/O happens in this
module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import broadcast as compose
from . import payloads
from .content import Content
from .messages import Choice, Outbound, Picked, Say, Toast
from .segments import LANG_NAMES, MODULE_STATUSES, STATUS_LABELS, Problem, Segment, Vocabulary, describe, validate
from .session import N_, P_, Texts, Tr

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
TEXT_STEPS = ("ann_en", "ann_hi", "when")
"""Steps where the wizard expects typed text."""
CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "console": "Terminal"}


@dataclass
class Draft:
    """One admin chat's /broadcast wizard: the screen on show (``seq``), the step, what is chosen."""

    channel: str
    chat_ref: str
    seq: int = 0
    step: str = "done"
    data: dict[str, Any] = field(default_factory=dict)
    lang: str = "en"


@dataclass(frozen=True)
class Plan:
    """A broadcast before it is created: what, to whom, when (``send_at`` 0 = now)."""

    kind: str  # module | announcement
    segment: Segment
    module_id: str | None = None
    text_en: str | None = None  # chat HTML (escaped admin text)
    text_hi: str | None = None
    send_at: int = 0


@dataclass(frozen=True)
class Need:
    """What the service must look up or do to finish the turn.

    ``who`` / ``preview``: the recipient counts (and reach) for the draft's segment, then
    ``show_who`` / ``show_preview``. ``confirm``: the counts, then create the broadcast and call
    ``confirmed`` (or ``nobody``). ``cancel``: cancel broadcast ``arg`` (``None``: every active one),
    then ``cancelled``. ``stats``: the funnel for the filters in ``arg``.
    """

    kind: str
    arg: Any = None


@dataclass(frozen=True)
class Reach:
    """Where the recipients are: per channel, and on WhatsApp outside the 24-hour window."""

    by_channel: Mapping[str, int]
    outside_window: int = 0
    template: str | None = None  # the approved template those outside get; None: their message waits


def problems(plan: Plan, content: Content, vocab: Vocabulary) -> list[Problem]:
    """Why ``plan`` cannot be sent (empty when it can)."""
    found = validate(plan.segment, vocab)
    if plan.kind == "module":
        if content.module(plan.module_id or "") is None:
            found.append(Problem(N_("Unknown module '{value}'."), {"value": plan.module_id or ""}))
    elif plan.kind == "announcement":
        found += compose.check_announcement(plan.text_en, plan.text_hi)
    else:
        found.append(Problem(N_("Unknown kind of broadcast '{value}'."), {"value": plan.kind}))
    return found


def messages(plan: Plan, content: Content, texts: Texts) -> dict[str, Say]:
    """What each language's owners receive."""
    if plan.kind == "module":
        module = content.module(plan.module_id or "")
        return {lang: compose.invitation(module, texts, lang) for lang in ("en", "hi")}
    return {"en": compose.announcement(plan.text_en or "", texts, "en"), "hi": compose.announcement(plan.text_hi or "", texts, "hi")}


def when_text(t: Tr, send_at: int, now: int) -> str:
    """The word "now", or the date and time in India time."""
    return t._(N_("now")) if send_at <= now else t.when(send_at)


class Wizard:
    """One admin turn over ``draft`` (changed in place): collects what to show and what is needed."""

    def __init__(self, content: Content, vocab: Vocabulary, texts: Texts, draft: Draft, lang: str, *, now: int, rate: float):
        self.content, self.vocab, self.texts = content, vocab, texts
        self.d, self.lang, self.now, self.rate = draft, lang, now, rate
        self.t = Tr(lang, texts)
        self._, self.num, self.p_ = self.t._, self.t.num, self.t.p_
        self.outputs: list[Outbound] = []
        self.changed = False
        self.need: Need | None = None

    # ---- helpers -----------------------------------------------------------------------------
    def say(self, text: str, choices: Sequence[Choice] = (), columns: int = 1, replace: bool = False) -> None:
        self.outputs.append(Say(text, tuple(choices), columns, replace=replace))

    def button(self, action: str, label: str) -> Choice:
        return Choice(payloads.Wizard(self.d.seq, action).encode(), label)

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

    # ---- input -------------------------------------------------------------------------------
    def command(self, name: str, args: str, owner_help: str) -> None:
        if name == "broadcast":
            self.d.lang, self.d.data = self.lang, {}
            self.goto("what")
            self.show_what()
        elif name == "broadcast_cancel":
            self.cancel_command(args)
        elif name == "stats":
            self.need = Need("stats", args)
        elif name == "help":  # an admin is an owner too: the owners' commands, then the admins'
            self.say(self._(owner_help) + "\n\n" + self._(ADMIN_HELP))
        elif name == "cancel":
            self.close()

    def tap(self, data: str) -> None:
        tapped = payloads.decode(data)
        if self.d.step == "done" or not isinstance(tapped, payloads.Wizard) or not tapped.current(self.d.seq):
            self.outputs.append(Toast(self._(OLD_BUTTON)))
            return
        if tapped.action == "x":
            self.outputs.append(Picked(self._(B_CANCEL)))
            self.close()
            return
        handler = getattr(self, f"tap_{self.d.step}", None)
        if handler is None:
            self.outputs.append(Toast(self._(OLD_BUTTON)))
            return
        handler(tapped.action)

    def typed(self, text: str) -> None:
        if self.d.step == "when":
            self.typed_when(text)
            return
        lang = "en" if self.d.step == "ann_en" else "hi"
        problems = compose.check_text(text, lang)
        if lang == "hi" and not problems and text.strip() == (self.d.data.get("raw_en") or "").strip():
            problems = [Problem(N_("The Hindi text is the same as the English one. Please send the Hindi text."))]
        if problems:
            self.say("\n".join(p.render(self.texts, self.lang) for p in problems))
            self.show_text_prompt(lang)
            return
        self.d.data[lang] = compose.escape_admin_text(text)
        if lang == "en":
            self.d.data["raw_en"] = text.strip()
            self.goto("ann_hi")
            self.show_text_prompt("hi")
        else:
            self.d.data.pop("raw_en", None)
            self.who()

    def close(self) -> None:
        self.d.step, self.d.data = "done", {}
        self.d.seq += 1
        self.changed = True
        self.say(self._(N_("Okay, the new broadcast is cancelled. Nothing was sent.")))

    # ---- what --------------------------------------------------------------------------------
    def show_what(self) -> None:
        choices = [self.button(f"m.{m.id}", "📘 " + self._(m.short)) for m in self.content.modules]
        choices += [self.button("ann", self._(B_ANNOUNCE)), self.button("x", self._(B_CANCEL))]
        self.say(
            self._(N_("<b>New broadcast</b>\nWhat do you want to send? An invitation to a training module, or your own announcement.")),
            choices, columns=2,
        )

    def tap_what(self, action: str) -> None:
        if action.startswith("m.") and self.content.module(action[2:]):
            module = self.content.module(action[2:])
            self.outputs.append(Picked("📘 " + self._(module.short)))
            self.d.data.update(what="module", module=module.id)
            self.who()
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
    def who(self) -> None:
        """Go to the "who gets it" screen; it is shown once the counts are known."""
        self.goto("who")
        self.need = Need("who")

    def show_who(self, counts: Mapping[str, int]) -> None:
        segment = self.segment
        total = counts["hi"] + counts["en"]
        text = self._(
            N_("<b>Who gets it?</b> All conditions must hold.\n{conditions}\n\nRecipients now: <b>{count}</b> (हिन्दी {hi} · English {en})"),
            conditions=describe(segment, self.vocab, self.texts, self.lang), count=self.num(total),
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

    def tap_who(self, action: str) -> None:
        labels = {"lang": B_LANG, "state": B_STATE, "sector": B_SECTOR, "onb": B_PROFILE, "mod": B_MODULE, "clear": B_CLEAR, "next": B_NEXT}
        if action not in labels:
            self.outputs.append(Toast(self._(OLD_BUTTON)))
            return
        self.outputs.append(Picked(self._(labels[action])))
        if action == "clear":
            self.segment = Segment()
            self.who()
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
            choices = [self.button(m.id, self._(m.short)) for m in self.content.modules]
            self.say(self._(N_("A condition on which module?")), [*choices, self.button("back", self._(B_BACK))], columns=2)

    def tap_lang(self, action: str) -> None:
        if action not in ("hi", "en", "any"):
            return
        self.outputs.append(Picked(LANG_NAMES.get(action) or self._(B_ANY_LANG)))
        self.segment = self.segment.with_lang(None if action == "any" else action)
        self.who()

    def show_pick(self, field: str, replace: bool = False) -> None:
        options = self.vocab.states if field == "state" else self.vocab.sectors
        chosen = self.segment.states if field == "state" else self.segment.sectors
        choices = [self.button(f"t.{oid}", ("✅ " if oid in chosen else "") + self._(label)) for oid, label in options.items()]
        choices.append(self.button("done", self._(B_DONE)))
        prompt = N_("Tap the states to include (tap again to remove), then Done.") if field == "state" else N_(
            "Tap the sectors to include (tap again to remove), then Done."
        )
        self.say(self._(prompt), choices, columns=3 if field == "state" else 2, replace=replace)

    def _tap_pick(self, field: str, action: str) -> None:
        options = self.vocab.states if field == "state" else self.vocab.sectors
        if action == "done":
            self.outputs.append(Picked(self._(B_DONE)))
            self.who()
        elif action.startswith("t.") and action[2:] in options:
            oid = action[2:]
            self.segment = self.segment.toggle_state(oid) if field == "state" else self.segment.toggle_sector(oid)
            self.show_pick(field, replace=True)

    def tap_state(self, action: str) -> None:
        self._tap_pick("state", action)

    def tap_sector(self, action: str) -> None:
        self._tap_pick("sector", action)

    def tap_onb(self, action: str) -> None:
        values = {"yes": (True, B_COMPLETE), "no": (False, B_INCOMPLETE), "any": (None, B_EITHER)}
        if action in values:
            value, label = values[action]
            self.outputs.append(Picked(self._(label)))
            self.segment = self.segment.with_onboarded(value)
            self.who()

    def tap_mod(self, action: str) -> None:
        if action == "back":
            self.outputs.append(Picked(self._(B_BACK)))
            self.who()
            return
        module = self.content.module(action)
        if module is None:
            return
        self.outputs.append(Picked(self._(module.short)))
        self.d.data["pick_module"] = module.id
        self.goto("mod_status")
        choices = [self.button(status, self._(STATUS_LABELS[status])) for status in MODULE_STATUSES]
        choices.append(self.button("none", self._(B_NO_CONDITION)))
        self.say(self._(N_("<b>{module}</b>: which owners?"), module=self._(module.title)), choices, columns=2)

    def tap_mod_status(self, action: str) -> None:
        module_id = self.d.data.get("pick_module", "")
        if action not in (*MODULE_STATUSES, "none") or self.content.module(module_id) is None:
            return
        label = STATUS_LABELS.get(action, B_NO_CONDITION)
        self.outputs.append(Picked(self._(label)))
        self.segment = self.segment.with_module(module_id, None if action == "none" else action)
        self.d.data.pop("pick_module", None)
        self.who()

    # ---- when --------------------------------------------------------------------------------
    def show_when(self) -> None:
        now = self.now
        choices = [self.button("now", self._(B_NOW))]
        if compose.at_hour(now, 18) > now + 60:
            choices.append(self.button("t18", self._(B_TODAY)))
        choices += [self.button("tm10", self._(B_TOMORROW)), self.button("x", self._(B_CANCEL))]
        self.say(
            self._(N_("<b>When should it go out?</b> Tap a time, or type a date and hour in India time like this: {example}"),
                   example=compose.example_when(now)),
            choices, columns=2,
        )

    def tap_when(self, action: str) -> None:
        now = self.now
        times = {"now": (0, B_NOW), "t18": (compose.at_hour(now, 18), B_TODAY), "tm10": (compose.at_hour(now, 10, days=1), B_TOMORROW)}
        if action not in times:
            return
        at, label = times[action]
        self.outputs.append(Picked(self._(label)))
        self.d.data["send_at"] = at
        self.preview()

    def typed_when(self, text: str) -> None:
        result = compose.parse_when(text, self.now)
        if isinstance(result, Problem):
            self.say(result.render(self.texts, self.lang))
            self.show_when()
            return
        self.d.data["send_at"] = result
        self.preview()

    # ---- preview and confirm -----------------------------------------------------------------
    def preview(self) -> None:
        """Go to the preview; it is shown once the counts (and the reach) are known."""
        self.goto("preview")
        found = problems(self.plan(), self.content, self.vocab)
        if found:  # e.g. a module removed from the content since the wizard began
            self.say("\n".join(p.render(self.texts, self.lang) for p in found))
            self.close()
            return
        self.need = Need("preview")

    def show_preview(self, counts: Mapping[str, int], reach: Reach | None = None) -> None:
        plan = self.plan()
        total = counts["hi"] + counts["en"]
        who = describe(plan.segment, self.vocab, self.texts, self.lang)
        if total == 0:
            self.say(
                self._(N_("No owner matches these conditions:\n{conditions}\nChange who gets it, or cancel."), conditions=who),
                [self.button("who", self._(B_CHANGE_WHO)), self.button("x", self._(B_CANCEL))], columns=2,
            )
            return
        if plan.kind == "module":
            what = self._(N_("invitation to the module “{title}”"), title=self._(self.content.module(plan.module_id).title))
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
                when=when_text(self.t, plan.send_at, self.now), eta=compose.duration(total / self.rate, self.texts, self.lang),
                rate=self.num(self.rate),
            )
        )
        if reach is not None:
            self.show_reach(reach)
        if plan.kind == "module":
            module = self.content.module(plan.module_id)
            locked = [m for m in (self.content.module(r) for r in module.requires) if m is not None]
            needed = [m for m in locked if plan.segment.module_status(m.id) != "passed"]
            if needed:
                self.say(
                    self._(
                        N_("Note: this module opens after {modules}. Owners who have not passed that will be asked to do it first."),
                        modules=", ".join(self._(m.title) for m in needed),
                    )
                )
        shown = messages(plan, self.content, self.texts)
        for index, (lang, heading) in enumerate((("en", "English"), ("hi", "हिन्दी"))):
            say = shown[lang]
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

    def show_reach(self, reach: Reach) -> None:
        """Recipients per channel, and who on WhatsApp gets the approved template (or waits)."""
        lines = [self._(N_("By channel: {channels}"),
                        channels=" · ".join(f"{CHANNEL_NAMES.get(c, c)} {self.num(n)}" for c, n in reach.by_channel.items()))]
        if reach.outside_window and reach.template is not None:
            lines.append(self._(N_("On WhatsApp {n} have not written for 24 hours: they get the approved template “{template}”."),
                                n=self.num(reach.outside_window), template=reach.template))
        elif reach.outside_window:
            lines.append(self._(N_("On WhatsApp {n} have not written for 24 hours and there is no approved template for this: "
                                   "their message waits until they write."), n=self.num(reach.outside_window)))
        self.say("\n".join(lines))

    def tap_preview(self, action: str) -> None:
        if action == "who":
            self.outputs.append(Picked(self._(B_CHANGE_WHO)))
            self.who()
        elif action == "when":
            self.outputs.append(Picked(self._(B_CHANGE_WHEN)))
            self.goto("when")
            self.show_when()
        elif action == "ok":
            self.outputs.append(Picked(self._(B_CONFIRM)))
            self.need = Need("confirm")

    def nobody(self) -> None:
        """Confirm, but nobody matches any more."""
        self.say(self._(N_("No owner matches these conditions any more. Nothing was sent.")))
        self.close()

    def closing(self) -> Plan:
        """Confirm: the wizard closes in the broadcast's own transaction (a second tap must not send it
        all again), so the draft is closed here and stored with the broadcast. Returns the plan."""
        plan = self.plan()
        self.d.step, self.d.data = "done", {}
        self.d.seq += 1
        self.changed = True
        return plan

    def confirmed(self, plan: Plan, broadcast_id: int, recipients: int, *, status_here: bool = True) -> None:
        """The broadcast is queued; ``status_here``: a status message in this chat will follow its progress."""
        if not status_here:  # WhatsApp: no message is edited in place there; /stats shows what went out
            self.say(self.p_(
                P_("✅ Broadcast #{id} is queued for {count} owner, starting {when}. /stats shows what went out; "
                   "/broadcast_cancel stops it.",
                   "✅ Broadcast #{id} is queued for {count} owners, starting {when}. /stats shows what went out; "
                   "/broadcast_cancel stops it."),
                recipients, id=broadcast_id, count=self.num(recipients), when=when_text(self.t, plan.send_at, self.now)))
            return
        self.say(
            self.p_(
                P_(
                    "✅ Broadcast #{id} is queued for {count} owner, starting {when}. A status message here will show its progress. /broadcast_cancel stops it.",
                    "✅ Broadcast #{id} is queued for {count} owners, starting {when}. A status message here will show its progress. /broadcast_cancel stops it.",
                ),
                recipients, id=broadcast_id, count=self.num(recipients), when=when_text(self.t, plan.send_at, self.now),
            )
        )

    # ---- /broadcast_cancel -------------------------------------------------------------------
    def cancel_command(self, args: str) -> None:
        if self.d.step != "done":
            self.close()
            return
        number = args.strip().lstrip("#")
        self.need = Need("cancel", payloads.whole(number, payloads.MAX_ID_DIGITS))  # "²" is a digit but no number

    def cancelled(self, results: Sequence[tuple[int, int]]) -> None:
        if not results:
            self.say(self._(N_("There is no broadcast in progress.")))
            return
        for broadcast_id, cancelled in results:
            self.say(
                self.p_(P_("⏹ Broadcast #{id} cancelled: {n} message will not be sent.", "⏹ Broadcast #{id} cancelled: {n} messages will not be sent."),
                        cancelled, id=broadcast_id, n=self.num(cancelled))
            )
