"""The conversation engine: (session, inbound) -> (session, outputs, events), with no I/O.

The engine knows the onboarding steps and the training modules (``Content``) and speaks through
``Texts``. It never mutates the session it is given; the caller persists the returned one.
This module runs the turn: routing input, the owner's own commands and the onboarding steps.
Everything else is a feature (training in ``training.py``, readiness in ``leads.py``) that the
engine reaches only through its ``Router`` (``router.py``): the engine imports no feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from . import payloads
from .content import Content, Option, Step
from .messages import Choice, Inbound, InKind, Picked, Toast
from .normalize import (
    clean_text,
    closest_option,
    fold,
    match_option,
    parse_indian_mobile,
    parse_number,
    parse_number_list,
    parse_yes_no,
)
from .router import Feature, Router
from .session import N_, Session, Texts, Turn, TurnContext

LANGUAGES = ("hi", "en")
DID_YOU_MEAN = N_("Did you mean <b>{name}</b>?")
NOT_MEANT = N_("All right. Please tap it below, or type its name again.")
# Steps whose answers are not part of the profile summary.
_NOT_IN_SUMMARY = {"language", "consent", "summary"}
BUTTON_LABELS = (
    N_("Yes"), N_("No"), N_("Done"), N_("Confirm"), N_("Change an answer"), N_("Next"), N_("Start the quiz"),
    N_("Read again"), N_("Quiz again"), N_("Modules"),
)
"""Button labels the code itself uses; ``saathi check`` keeps their translations short enough."""
HELP = N_(
    "I help your business start exporting.\n"
    "/start – begin or continue\n"
    "/learn – training modules\n"
    "/progress – your progress\n"
    "/score – your export readiness\n"
    "/profile – your details\n"
    "/certificate – your certificate\n"
    "/verify – check a certificate's code\n"
    "/language – हिन्दी / English\n"
    "/restart – start again\n"
    "/stop_reminders – no reminders\n"
    "/stop_broadcasts – no announcements\n"
    "/start_broadcasts – announcements again\n"
    "/my_data – what I have stored about you\n"
    "/delete_my_data – erase your data\n"
    "/cancel – cancel what you are doing"
)


PROFILE_UPDATED = N_("✅ Your details are updated.")
EDIT_CANCELLED = N_("Okay, cancelled. Your details are as they were.")
PROFILE_UPDATED_SCORE = N_("✅ Your details are updated. Your export readiness is now {score}/100 (/score shows why).")


class Engine:
    """Pure conversation logic over ``content`` and ``texts``."""

    def __init__(self, content: Content, texts: Texts, features: Sequence[Feature] = ()):
        self.content = content
        self.texts = texts
        self.flow = content.onboarding
        self.router = Router(features)

    # ----------------------------------------------------------------- entry points
    def new_session(self, lang_hint: str | None = None, seed: int = 0) -> Session:
        """A session for someone we have never seen; ``lang_hint`` is the app's language."""
        lang = "en" if (lang_hint or "").lower().startswith("en") else "hi"
        return Session(lang=lang, seed=seed)

    def handle(self, session: Session, inbound: Inbound) -> Turn:
        """Handle one inbound event and return the new state, what to say and what happened."""
        t = TurnContext(session.clone(), self.texts)
        if inbound.kind is InKind.COMMAND:
            self._command(t, inbound.data, inbound.text)
        elif t.s.flow == "new":
            self._begin(t)
        elif inbound.kind is InKind.CHOICE:
            self._tap(t, inbound.data)
        else:
            self._input(t, inbound)
        return t.result()

    # ----------------------------------------------------------------- commands
    def _command(self, t: TurnContext, name: str, args: str) -> None:
        s = t.s
        if s.draft.get("reedit") and name not in ("help", "cancel"):
            self._drop_reedit(t)  # leaving a change half made keeps the details as they were
        if name == "start":
            if args.startswith("ref_") and len(args) <= 64:
                t.emit("referral", code=args[4:])
            if s.reminders_off:
                s.reminders_off = False
                t.say(t._("Reminders are on again."))
            if s.flow == "new":
                self._begin(t)
            elif s.flow == "refused":
                s.draft.clear()
                self._goto(t, "consent")
            else:
                t.say(t._("Welcome back! Let's continue where you left off."))
                self.ask_current(t)
            return
        if s.flow == "new":
            self._begin(t)
            return
        if name == "help":
            t.say(t._(HELP))
            self.ask_current(t, again=True)
        elif name == "language":
            s.draft["detour"] = "language"
            t.advance()
            self._ask_language(t)
        elif name == "cancel" and s.draft.get("reedit"):
            self._drop_reedit(t)
            t.say(t._(EDIT_CANCELLED))
            t.advance()
            self.ask_current(t, again=True)
        elif name == "cancel":
            detour = s.draft.pop("detour", None)
            editing = s.draft.pop("editing", None) or s.draft.pop("picking_field", None)
            if detour or editing:
                t.say(t._("Okay, cancelled."))
            else:
                t.say(t._("There is nothing to cancel."))
            if editing and s.flow == "onboarding" and "summary" in self.flow.steps:
                self._goto(t, "summary")  # changing an answer was cancelled: back to the summary
            else:
                if detour:
                    t.advance()
                self.ask_current(t, again=True)
        elif name in ("restart", "delete_my_data"):
            s.draft["detour"] = name
            t.advance()
            self._ask_current_detour(t)
        elif name == "profile":
            if s.consent == "given" and s.profile and s.onboarded:  # confirmed: any answer can still be changed
                t.say(self.summary_text(t, t._("Your details:")), [Choice(payloads.ProfileEdit().encode(), t._("Change an answer"))])
            elif s.consent == "given" and s.profile:
                t.say(self.summary_text(t, t._("Your details:")))
            else:
                t.say(t._("You have not told me anything yet."))
            self.ask_current(t, again=True)
        elif (command := self.router.command(name)) is not None:
            command(self, t, name)
        else:
            t.say(t._("Sorry, I don't know that command. Send /help to see what I can do."))
            self.ask_current(t, again=True)

    def _begin(self, t: TurnContext) -> None:
        t.s.flow = "onboarding"
        self._goto(t, self.flow.first)

    # ----------------------------------------------------------------- asking
    def ask_current(self, t: TurnContext, again: bool = False) -> None:
        """(Re-)ask whatever the user is at, keeping the same buttons valid."""
        s = t.s
        if s.draft.get("detour"):
            self._ask_current_detour(t)
        elif s.flow == "onboarding":
            self._ask_step(t, self.flow.step(s.step))
        elif s.flow == "refused":
            t.say(t._("You chose not to share your details, so I have kept nothing. Send /start if you change your mind."))
        elif (flow := self.router.flow(s.flow)) is not None:
            flow.ask(self, t, again)

    def _ask_current_detour(self, t: TurnContext) -> None:
        detour = t.s.draft["detour"]
        if detour == "language":
            self._ask_language(t)
            return
        question = {
            "restart": N_("Start again from the beginning? Your answers so far will be cleared."),
            "delete_my_data": N_(
                "Delete everything you have told me: profile, answers and progress? This cannot be undone."
            ),
        }[detour]
        t.say(t._(question), self._yes_no(t), columns=2)

    def _yes_no(self, t: TurnContext) -> list[Choice]:
        return [Choice(t.payload("yes"), t._("Yes")), Choice(t.payload("no"), t._("No"))]

    def _ask_language(self, t: TurnContext) -> None:
        step = self.flow.steps.get("language")
        text = t._(step.text) if step else "भाषा चुनें / Choose your language"
        choices = []
        for code, label in (("hi", "हिन्दी"), ("en", "English")):
            mark = " ✓" if code == t.s.lang else ""
            choices.append(Choice(t.payload(code), label + mark))
        t.say(text, choices, columns=2)

    def _goto(self, t: TurnContext, step_id: str) -> None:
        t.s.flow, t.s.step = "onboarding", step_id
        t.advance()
        self._ask_step(t, self.flow.step(step_id))

    def _ask_step(self, t: TurnContext, step: Step) -> None:
        s = t.s
        s.draft.pop("maybe", None)  # a guess not confirmed is dropped when the question is asked again
        if step.id == "language":
            self._ask_language(t)
        elif step.kind in ("choice", "consent"):
            choices = [Choice(t.payload(o.id), self.option_label(t, o)) for o in step.options]
            if step.kind == "consent" and not choices:
                choices = self._yes_no(t)
            t.say(t._(step.text), choices, step.columns)
        elif step.kind == "multi":
            picked = set(s.draft.get("picks", s.profile.get(step.field) or []))
            choices = [
                Choice(t.payload("t." + o.id), ("✅ " if o.id in picked else "") + self.option_label(t, o)) for o in step.options
            ]
            choices.append(Choice(t.payload("done"), t._("Done")))
            t.say(t._(step.text) + "\n" + t._("(You can also type numbers, like 1, 3)"), choices, step.columns)
        elif step.kind == "phone":
            t.say(t._(step.text), ask_contact=True)
        elif step.kind == "summary":
            text = self.summary_text(t, t._(step.text))
            choices = [Choice(t.payload("confirm"), t._("Confirm")), Choice(t.payload("change"), t._("Change an answer"))]
            if s.draft.get("picking_field"):
                text = t._("Which answer do you want to change?")
                choices = [
                    Choice(t.payload("e." + st.id), t._(st.summary_label or st.id))
                    for st in self.flow.steps.values()
                    if st.id not in _NOT_IN_SUMMARY
                ]
                t.say(text, choices, columns=2)
                return
            t.say(text, choices, columns=2)
        else:  # text
            t.say(t._(step.text))

    def option_label(self, t: TurnContext, option: Option) -> str:
        """An option's label in the user's language, with rupee amounts in Indian style."""
        label = t._(option.label)
        if option.amounts:
            label = label.format(**{k: t.texts.money(t.s.lang, v) for k, v in option.amounts})
        return label

    def summary_text(self, t: TurnContext, title: str) -> str:
        """The profile answers as a bulleted list under ``title``."""
        lines = [f"<b>{title}</b>"]
        for step in self.flow.steps.values():
            if step.id in _NOT_IN_SUMMARY:
                continue
            label = t._(step.summary_label or step.id)
            lines.append(f"• {label}: {self.answer_label(t, step)}")
        return "\n".join(lines)

    def answer_label(self, t: TurnContext, step: Step) -> str:
        """The stored answer to ``step``, as the user should see it."""
        value = t.s.profile.get(step.field)
        if value in (None, "", []):
            return "—"
        if step.kind == "choice":
            option = step.option(value)
            return self.option_label(t, option) if option else t.esc(value)
        if step.kind == "multi":
            return ", ".join(self.option_label(t, o) for o in step.options if o.id in value)
        if step.kind == "phone" and isinstance(value, str) and len(value) == 13:
            return t.esc(t.phone(value))  # +91 98765 43210
        return t.esc(value)

    # ----------------------------------------------------------------- answers
    def _tap(self, t: TurnContext, data: str) -> None:
        tapped = payloads.decode(data)
        if (feature_tap := self.router.tap(tapped)) is not None:
            if t.s.draft.get("reedit"):
                self._drop_reedit(t)  # off to a feature in the middle of a change: the details as they were
            feature_tap(self, t, tapped)
            return
        if isinstance(tapped, payloads.ProfileEdit):
            self._edit_profile(t)
            return
        if not isinstance(tapped, payloads.Step) or not tapped.current(t.s.seq):
            t.outputs.append(Toast(t._("That button is from an earlier message. Please use the latest one.")))
            return
        self._answer(t, tapped.value, tapped=True)

    def _input(self, t: TurnContext, inbound: Inbound) -> None:
        if inbound.kind is InKind.MEDIA:
            t.say(t._("I can only read text and buttons. Please type your answer or tap a button."))
            self.ask_current(t, again=True)
            return
        if inbound.kind is InKind.CONTACT:
            step = self._current_step(t)
            if step is not None and step.kind == "phone":
                self._answer_phone(t, step, inbound.data)
            else:
                t.say(t._("Thank you, but I don't need a phone number right now."))
                self.ask_current(t, again=True)
            return
        self._answer(t, inbound.text, tapped=False)

    def _current_step(self, t: TurnContext) -> Step | None:
        if t.s.flow == "onboarding" and not t.s.draft.get("detour"):
            return self.flow.step(t.s.step)
        return None

    def _answer(self, t: TurnContext, value: str, tapped: bool) -> None:
        """``value`` is a button's value when ``tapped``, else the user's raw text."""
        s = t.s
        detour = s.draft.get("detour")
        if detour:
            self._answer_detour(t, detour, value, tapped)
        elif s.flow == "onboarding":
            self._answer_step(t, self.flow.step(s.step), value, tapped)
        elif (flow := self.router.flow(s.flow)) is not None:
            flow.answer(self, t, value, tapped)
        else:
            self.ask_current(t, again=True)

    def _answer_detour(self, t: TurnContext, detour: str, value: str, tapped: bool) -> None:
        s = t.s
        if detour == "language":
            if not self._pick_language(t, value, tapped):
                return
            s.draft.pop("detour")
            t.advance()
            t.say(t._("Okay, I will talk with you in English."))
            self.ask_current(t)
            return
        yes = (value == "yes") if tapped else parse_yes_no(value)
        if yes is None:
            t.say(t._("Please answer Yes or No."))
            self._ask_current_detour(t)
            return
        if tapped:
            t.outputs.append(Picked(t._("Yes") if yes else t._("No")))
        s.draft.pop("detour")
        t.advance()
        if not yes:
            t.say(t._("Okay, nothing has changed."))
            self.ask_current(t)
            return
        # Both start from a blank session; the language, the seed and the question counter stay, so
        # the user is still addressed in their language and older buttons stay recognisably old.
        t.emit("restarted" if detour == "restart" else "delete_my_data")
        t.s = Session(lang=s.lang, seed=s.seed, seq=s.seq)
        if detour == "restart":
            t.say(t._("Okay, let's start again."))
            self._begin(t)
        else:
            t.say(t._("Done. Everything you told me has been deleted. Send /start if you want to begin again."))

    def _pick_language(self, t: TurnContext, value: str, tapped: bool) -> bool:
        """Switch to the language tapped or typed; ask again (and return False) if it is neither."""
        lang = value if tapped else self._typed_language(value)
        if lang not in LANGUAGES:
            t.say(t._("Please tap हिन्दी or English."))
            self._ask_language(t)
            return False
        if tapped:
            t.outputs.append(Picked({"hi": "हिन्दी", "en": "English"}[lang]))
        t.s.lang = lang
        return True

    def _typed_language(self, text: str) -> str | None:
        key = fold(text)
        if key in {fold(w) for w in ("hindi", "हिन्दी", "हिंदी", "1")}:
            return "hi"
        if key in {fold(w) for w in ("english", "angrezi", "अंग्रेज़ी", "अंग्रेजी", "eng", "2")}:
            return "en"
        return None

    def _answer_step(self, t: TurnContext, step: Step, value: str, tapped: bool) -> None:
        s = t.s
        if step.id == "language":
            if self._pick_language(t, value, tapped):
                self._next(t, step)
        elif step.kind in ("choice", "consent"):
            self._answer_choice(t, step, value, tapped)
        elif step.kind == "multi":
            self._answer_multi(t, step, value, tapped)
        elif step.kind == "phone":
            if tapped:
                self.ask_current(t, again=True)
            else:
                self._answer_phone(t, step, value)
        elif step.kind == "summary":
            self._answer_summary(t, step, value, tapped)
        else:
            self._answer_text(t, step, value, tapped)

    def _answer_choice(self, t: TurnContext, step: Step, value: str, tapped: bool) -> None:
        s = t.s
        options = list(step.options) or []
        maybe = s.draft.pop("maybe", None)
        meant = self._confirms(value, tapped) if maybe is not None and step.option(maybe) else None
        if meant is False:
            t.say(t._(NOT_MEANT))
            self._ask_step(t, step)
            return
        if meant:
            option_id = maybe
        elif tapped:
            option = step.option(value) if options else None
            # a bare yes/no only answers a consent step that lists no options; elsewhere it is a forged payload
            option_id = option.id if option else (value if not options and value in ("yes", "no") else None)
        else:
            option_id = self._typed_choice(t, step, value)
            if option_id is None and options:
                guess = closest_option(value, self._option_names(t, step))
                if guess is not None:  # a misspelt name: ask before storing it
                    s.draft["maybe"] = step.options[guess].id
                    t.advance()
                    name = self.option_label(t, step.options[guess])
                    t.say(t._(DID_YOU_MEAN, name=name), [Choice(t.payload("maybe:yes"), t._("Yes")),
                                                         Choice(t.payload("maybe:no"), t._("No"))], 2)
                    return
        if option_id is None:
            t.say(t._("Please tap one of the buttons, or type its number."))
            self._ask_step(t, step)
            return
        option = step.option(option_id)
        label = self.option_label(t, option) if option else (t._("Yes") if option_id == "yes" else t._("No"))
        if tapped:
            t.outputs.append(Picked(label))
        if step.kind == "consent":
            if option_id == "yes":
                s.consent = "given"
                t.emit("consent_given", version=self.flow.version, lang=s.lang)
                self._next(t, step)
            else:
                s.consent = "refused"
                s.profile.clear()
                s.draft.clear()
                s.flow, s.step = "refused", ""
                t.advance()
                t.emit("consent_refused", version=self.flow.version, lang=s.lang)
                t.say(t._("No problem. I have not kept any of your details, only that you said no. If you change your mind, send /start."))
            return
        s.profile[step.field] = option_id
        self._next(t, step)

    @staticmethod
    def _confirms(value: str, tapped: bool) -> bool | None:
        """The answer to "Did you mean …?": a tap on Yes or No, or a typed yes or no; else ``None``."""
        if tapped:
            return {"maybe:yes": True, "maybe:no": False}.get(value)
        number = parse_number(value)  # "1" and "2" are the Yes and No buttons, typed
        if number is not None:
            return number == 1  # any other number is not a yes: the question comes again
        return parse_yes_no(value)

    def _option_names(self, t: TurnContext, step: Step) -> list[list[str]]:
        """Every way of naming each option: its label in both languages and its aliases."""
        return [[o.label, self.texts.gettext("hi", o.label), self.option_label(t, o), *o.aliases] for o in step.options]

    def _typed_choice(self, t: TurnContext, step: Step, text: str) -> str | None:
        names = self._option_names(t, step)
        if not step.options:  # a yes/no consent
            yes = parse_yes_no(text)
            return None if yes is None else ("yes" if yes else "no")
        index = match_option(text, names)
        if index is not None:
            return step.options[index].id
        yes = parse_yes_no(text)
        if yes is not None:
            wanted = "yes" if yes else "no"
            if step.option(wanted):
                return wanted
        return None

    def _answer_multi(self, t: TurnContext, step: Step, value: str, tapped: bool) -> None:
        s = t.s
        picks: list[str] = list(s.draft.get("picks", s.profile.get(step.field) or []))
        exclusive = step.options[-1].id  # the last option ("not sure yet") stands alone
        if tapped and value.startswith("t."):
            option = step.option(value[2:])
            if option is None:
                self._ask_step(t, step)
                return
            if option.id in picks:
                picks.remove(option.id)
            elif option.id == exclusive:
                picks = [exclusive]
            else:
                picks = [p for p in picks if p != exclusive] + [option.id]
            s.draft["picks"] = picks
            self._ask_step(t, step)  # the channel redraws the same question with ticks
            t.outputs[-1] = replace(t.outputs[-1], replace=True)
            return
        done_words = {fold(w) for w in ("done", "ho gaya", "hogaya", self.texts.gettext("hi", "Done"), t._("Done"))}
        if not tapped and fold(value) in done_words:
            pass  # the Done button's own label, typed: finish with what is ticked
        elif not tapped:
            numbers = parse_number_list(value)
            if numbers and all(1 <= n <= len(step.options) for n in numbers):
                picks = [step.options[n - 1].id for n in numbers]
                if exclusive in picks and len(picks) > 1:
                    picks.remove(exclusive)
            else:
                index = self._typed_choice(t, step, value)
                if index is None:
                    t.say(t._("Tap the ones you want, then tap Done. You can also type numbers, like 1, 3."))
                    self._ask_step(t, step)
                    return
                picks = [index]
        elif value != "done":
            self._ask_step(t, step)
            return
        if not picks:
            t.say(t._("Please pick at least one, then tap Done."))
            self._ask_step(t, step)
            return
        order = [o.id for o in step.options]
        s.profile[step.field] = sorted(set(picks), key=order.index)
        s.draft.pop("picks", None)
        if tapped:
            t.outputs.append(Picked(", ".join(self.option_label(t, o) for o in step.options if o.id in picks)))
        self._next(t, step)

    def _answer_phone(self, t: TurnContext, step: Step, raw: str) -> None:
        phone = parse_indian_mobile(raw)
        if phone is None:
            t.say(
                t._(
                    "That doesn't look like an Indian mobile number. Please send 10 digits starting with 6, 7, 8 or 9 "
                    "(+91 is optional), or tap the button to share your number."
                )
            )
            self._ask_step(t, step)
            return
        t.s.profile[step.field] = phone
        self._next(t, step)

    def _answer_text(self, t: TurnContext, step: Step, raw: str, tapped: bool) -> None:
        if tapped:
            self._ask_step(t, step)
            return
        text = clean_text(raw)
        if not fold(text):
            t.say(t._("Please type your answer in words."))
            self._ask_step(t, step)
            return
        if len(text) > step.max_length:
            t.say(t._("That is a bit long. Please keep it under {n} characters.", n=t.num(step.max_length)))
            self._ask_step(t, step)
            return
        t.s.profile[step.field] = text
        self._next(t, step)

    def _drop_reedit(self, t: TurnContext) -> None:
        """Give up a change of the profile not confirmed: the answers as they were before it."""
        s = t.s
        before = s.draft.get("before")
        if isinstance(before, dict):
            s.profile.clear()
            s.profile.update(before)
        for key in ("reedit", "before", "editing", "picking_field", "maybe"):
            s.draft.pop(key, None)
        if s.flow == "onboarding":
            s.flow, s.step = "menu", ""

    def _edit_profile(self, t: TurnContext) -> None:
        """/profile → "Change an answer" after the profile was confirmed: pick an answer, give it
        again, confirm; the score and the lead follow each change (``profile_changed``)."""
        s = t.s
        if not (s.onboarded and s.consent == "given"):
            t.outputs.append(Toast(t._("That button is from an earlier message. Please use the latest one.")))
            return
        s.draft.pop("detour", None)
        if not s.draft.get("reedit"):  # the details as they were, for /cancel
            s.draft["before"] = {k: list(v) if isinstance(v, list) else v for k, v in s.profile.items()}
        s.flow, s.step = "onboarding", "summary"
        s.draft.update(picking_field=True, reedit=True)
        t.advance()
        t.outputs.append(Picked(t._("Change an answer")))
        self._ask_step(t, self.flow.step("summary"))

    def _answer_summary(self, t: TurnContext, step: Step, value: str, tapped: bool) -> None:
        s = t.s
        if s.draft.get("picking_field"):
            target = None
            if tapped and value.startswith("e."):
                target = self.flow.steps.get(value[2:])
            elif not tapped:
                editable = [st for st in self.flow.steps.values() if st.id not in _NOT_IN_SUMMARY]
                index = match_option(value, [[st.summary_label, self.texts.gettext(s.lang, st.summary_label)] for st in editable])
                target = editable[index] if index is not None else None
            if target is None or target.id in _NOT_IN_SUMMARY:
                t.say(t._("Please tap one of the buttons, or type its number."))
                self._ask_step(t, step)
                return
            if tapped:
                t.outputs.append(Picked(t._(target.summary_label or target.id)))
            s.draft.pop("picking_field")
            s.draft["editing"] = True
            self._goto(t, target.id)
            return
        choice = value if tapped else None
        if not tapped:
            key = fold(value)
            yes = parse_yes_no(value)
            if yes or key in {fold(t._("Confirm")), "confirm", "1"}:
                choice = "confirm"
            elif yes is False or key in {fold(t._("Change an answer")), "change", "2"}:
                choice = "change"
        if choice == "confirm" and s.draft.get("reedit"):  # a change after the profile was confirmed
            if tapped:
                t.outputs.append(Picked(t._("Confirm")))
            before = s.draft.get("before") or {}
            for field in sorted(set(before) | set(s.profile)):  # the score, the lead and the certificate follow
                if before.get(field) != s.profile.get(field):
                    t.emit("profile_changed", field=field)
            s.draft.clear()
            s.flow, s.step = "menu", ""
            score = self.router.score(self.content, s) if self.router.score else None
            if score is not None:
                t.say(t._(PROFILE_UPDATED_SCORE, score=t.num(score)))
            else:
                t.say(t._(PROFILE_UPDATED))
            self.ask_current(t, again=True)
        elif choice == "confirm":
            if tapped:
                t.outputs.append(Picked(t._("Confirm")))
            s.onboarded = True
            s.draft.clear()
            t.emit("onboarding_confirmed")
            name = s.profile.get("owner_name", "")
            t.say(t._("Thank you, {name}! Your profile is saved.", name=t.esc(name)))
            if self.router.home is not None:
                self.router.home(self, t)
        elif choice == "change":
            if tapped:
                t.outputs.append(Picked(t._("Change an answer")))
            s.draft["picking_field"] = True
            t.advance()
            self._ask_step(t, step)
        else:
            t.say(t._("Please tap Confirm, or Change an answer."))
            self._ask_step(t, step)

    def _next(self, t: TurnContext, step: Step) -> None:
        """Move on after a valid answer (back to the summary when an answer was being changed)."""
        t.emit("answer", step=step.id, step_kind=step.kind)
        if t.s.draft.pop("editing", False):
            self._goto(t, "summary" if "summary" in self.flow.steps else step.id)
            return
        if step.next:
            self._goto(t, step.next)

