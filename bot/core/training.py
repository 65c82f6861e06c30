"""Training: the module menu, lesson paging, quizzes, progress and the related commands.

Called by the engine with a ``TurnContext``; like the engine it is pure. A quiz answer is stored
with the attempt it belongs to (``quiz_answer`` event) and every question carries the session's
``seq``, so a tap on an earlier question or an earlier attempt is never scored.
"""

from __future__ import annotations

import random

from . import leads, payloads
from .content import Module, Question, QuizOption
from .messages import Choice, Photo, Picked
from .normalize import fold, match_option, parse_number, parse_yes_no
from .router import Feature, Flow
from .session import N_, Kernel, TurnContext

# The hint names the question's own numbers: "1 to 3" for three options, "1 to 4" for four.
CORE_DONE = N_(
    "🎉 You have passed all the core modules. Your business is now export-ready on paper! "
    "Next, a partner startup for your area will help you list on Alibaba.com. You will hear about it here."
)
CORE_DONE_BELOW = N_(
    "🎉 You have passed all the core modules! Your export readiness is {score}/100. "
    "At {threshold}, a partner startup for your area helps you list on Alibaba.com. What would get you there:"
)
CORE_DONE_NO_TIPS = N_("• Your registrations and quizzes are complete; the rest comes from export experience and turnover.")
CORE_DONE_MORE = N_("Send /score to see your score item by item.")
WHAT_NEXT = N_("What next?")
CONTINUE_MODULE = N_("▶️ Continue: {short}")
START_MODULE = N_("▶️ Start: {short}")
QUIZ_HINT = N_("Please tap a number from 1 to {last}, or type the number of your answer.")
QUIZ_NO_SUCH = N_("There is no answer {number} here. Please tap a number from 1 to {last}.")

_NEXT_WORDS = {fold(w) for w in ("next", "aage", "age", "आगे", "agla", "अगला", "ok", "okay", "continue", "n")}


def _not_onboarded(engine: Kernel, t: TurnContext) -> bool:
    if t.s.onboarded:
        return False
    t.say(t._("Let's finish your profile first; the training opens right after."))
    engine.ask_current(t, again=True)
    return True


def command(engine: Kernel, t: TurnContext, name: str) -> None:
    """/learn, /progress and the reminder and broadcast switches."""
    s = t.s
    if name == "stop_reminders":
        s.reminders_off = True
        t.say(t._("Okay, no more reminders. Send /start to turn them on again."))
        engine.ask_current(t, again=True)
    elif name == "stop_broadcasts":
        s.broadcasts_off = True
        t.say(t._("Okay, you will not get announcements. Send /start_broadcasts to get them again."))
        engine.ask_current(t, again=True)
    elif name == "start_broadcasts":
        s.broadcasts_off = False
        t.say(t._("Okay, you will get announcements again."))
        engine.ask_current(t, again=True)
    elif _not_onboarded(engine, t):
        return
    elif name == "learn":
        open_menu(engine, t)
    elif name == "progress":
        t.say(progress_text(engine, t))
        engine.ask_current(t, again=True)


def status_icon(engine: Kernel, t: TurnContext, module: Module) -> str:
    """✅ passed, ▶️ started, 🔒 locked, ○ not started."""
    p = t.s.progress.get(module.id)
    if p and p.passed:
        return "✅"
    if locked_by(engine, t, module):
        return "🔒"
    return "▶️" if p and p.started else "○"


def locked_by(engine: Kernel, t: TurnContext, module: Module) -> list[Module]:
    """The modules that must be passed before ``module`` opens."""
    missing = []
    for dep in module.requires:
        p = t.s.progress.get(dep)
        dep_module = engine.content.module(dep)
        if dep_module is not None and not (p and p.passed):
            missing.append(dep_module)
    return missing


def _status_line(engine: Kernel, t: TurnContext, module: Module) -> str:
    p = t.s.progress.get(module.id)
    total = t.num(len(module.quiz))
    blockers = locked_by(engine, t, module)
    if p and p.passed:
        status = t._("passed, best {score}/{total}", score=t.num(p.best or 0), total=total)
    elif blockers and not (p and p.started):
        status = t._("opens after: {modules}", modules=", ".join(t._(m.title) for m in blockers))
    elif p and p.in_quiz:
        status = t._("quiz: question {n} of {total}", n=t.num(p.question + 1), total=total)
    elif p and p.best is not None:
        status = t._("best {score}/{total}, not passed yet", score=t.num(p.best), total=total)
    elif p and p.started:
        status = t._("lesson {n} of {total}", n=t.num(min(p.lesson + 1, len(module.lessons))), total=t.num(len(module.lessons)))
    else:
        status = t._("not started")
    return f"{status_icon(engine, t, module)} <b>{t._(module.title)}</b>: {status}"


def open_menu(engine: Kernel, t: TurnContext, intro: bool = False) -> None:
    """Show the module menu."""
    t.s.flow, t.s.step = "menu", ""
    t.advance()
    _show_menu(engine, t, intro)


def _show_menu(engine: Kernel, t: TurnContext, intro: bool = False) -> None:
    lines = []
    if intro:
        lines.append(t._("Now let's learn exporting, one short module at a time. Each ends with a 5-question quiz."))
        lines.append("")
    lines.append(t._("<b>Training modules</b>"))
    for index, module in enumerate(engine.content.modules, 1):
        lines.append(f"{t.num(index)}. {_status_line(engine, t, module)}")
    lines.append("")
    lines.append(t._("Tap a module to open it."))
    choices = [Choice(payloads.Module(m.id).encode(), f"{status_icon(engine, t, m)} {t._(m.short)}") for m in engine.content.modules]
    t.say("\n".join(lines), choices, columns=2)


def _next_step(engine: Kernel, t: TurnContext) -> None:
    """A short "what next": the module to continue (or start), and the menu behind one button."""
    s = t.s
    upcoming = next((m for m in engine.content.modules
                     if not (s.progress.get(m.id) and s.progress[m.id].passed) and not locked_by(engine, t, m)), None)
    choices = []
    if upcoming is not None:
        started = s.progress.get(upcoming.id) is not None
        label = t._(CONTINUE_MODULE if started else START_MODULE, short=t._(upcoming.short))
        choices.append(Choice(payloads.Module(upcoming.id).encode(), label))
    choices.append(Choice(t.payload("menu"), t._("Modules")))
    t.say(t._(WHAT_NEXT), choices, columns=1)


def progress_text(engine: Kernel, t: TurnContext) -> str:
    """Each module's status and best score, and overall completion."""
    modules = engine.content.modules
    passed = sum(1 for m in modules if (p := t.s.progress.get(m.id)) and p.passed)
    lines = [t._("<b>Your progress</b>")]
    lines += [_status_line(engine, t, m) for m in modules]
    share = t.texts.percent(t.s.lang, passed / len(modules) if modules else 0)
    lines.append("")
    lines.append(t._("Modules passed: {passed} of {total} ({share})", passed=t.num(passed), total=t.num(len(modules)), share=share))
    return "\n".join(lines)


def go(engine: Kernel, t: TurnContext, module_id: str) -> None:
    """Open a module from a menu or broadcast button (valid whatever question is on screen)."""
    if _not_onboarded(engine, t):
        return
    t.s.draft.pop("detour", None)  # navigating away drops a pending /restart or /delete_my_data question
    module = engine.content.module(module_id)
    if module is None:
        open_menu(engine, t)
        return
    blockers = locked_by(engine, t, module)
    if blockers and not t.s.progress.get(module.id, None):
        t.say(t._("This module opens after you pass: {modules}.", modules=", ".join(t._(m.title) for m in blockers)))
        _show_menu(engine, t)
        return
    if module.id not in t.s.progress:
        t.emit("module_started", module=module.id)
    p = t.s.module_progress(module.id)
    t.s.flow, t.s.step = ("quiz" if p.in_quiz else "lesson"), module.id
    t.advance()
    if p.in_quiz:
        _ask_question(engine, t, module)
    elif p.lesson < len(module.lessons):
        _show_lesson(t, module)
    elif p.passed:
        t.say(
            t._("You passed <b>{title}</b> with {score}/{total}. Read it again, or take the quiz again?",
                title=t._(module.title), score=t.num(p.best or 0), total=t.num(len(module.quiz))),
            [Choice(t.payload("read"), t._("Read again")), Choice(t.payload("retry"), t._("Quiz again")), Choice(t.payload("menu"), t._("Modules"))],
            columns=2,
        )
    else:
        _start_quiz(engine, t, module)


def ask_current(engine: Kernel, t: TurnContext, again: bool = False) -> None:
    """Re-show the menu, the current lesson or the current question."""
    module = engine.content.module(t.s.step)
    if t.s.flow == "menu" or module is None:
        if again:  # after /score, /progress, /profile …: one clear next step, not the whole menu again
            _next_step(engine, t)
        else:
            _show_menu(engine, t)
        return
    p = t.s.module_progress(module.id)
    if t.s.flow == "quiz" and p.in_quiz:
        _ask_question(engine, t, module)
    elif t.s.flow == "lesson" and p.lesson < len(module.lessons):
        if again:
            t.say(t._("Tap Next when you are ready."), [_next_button(t, module)])
        else:
            _show_lesson(t, module)
    else:
        go(engine, t, module.id)


def answer(engine: Kernel, t: TurnContext, value: str, tapped: bool) -> None:
    """A button value or typed text while in the menu, a lesson or a quiz."""
    s = t.s
    module = engine.content.module(s.step)
    if tapped and value == "menu":
        t.outputs.append(Picked(t._("Modules")))
        open_menu(engine, t)
    elif module is None:
        _answer_menu(engine, t, value, tapped)
    elif tapped and value == "read":
        t.outputs.append(Picked(t._("Read again")))
        s.module_progress(module.id).lesson = 0
        t.advance()
        _show_lesson(t, module)
    elif tapped and value == "retry":
        t.outputs.append(Picked(t._("Quiz again")))
        _start_quiz(engine, t, module)
    elif s.flow == "lesson":
        _answer_lesson(engine, t, module, value, tapped)
    elif s.flow == "quiz":
        _answer_question(engine, t, module, value, tapped)
    else:
        _answer_menu(engine, t, value, tapped)


def _answer_menu(engine: Kernel, t: TurnContext, value: str, tapped: bool) -> None:
    modules = engine.content.modules
    if not tapped:
        names = [[m.title, m.short, t.texts.gettext("hi", m.title), t.texts.gettext("hi", m.short)] for m in modules]
        index = match_option(value, names)
        if index is not None:
            go(engine, t, modules[index].id)
            return
    t.say(t._("Tap a module, or type its number."))
    _show_menu(engine, t)


# ----------------------------------------------------------------- lessons
def _next_button(t: TurnContext, module: Module) -> Choice:
    p = t.s.module_progress(module.id)
    last = p.lesson >= len(module.lessons) - 1
    return Choice(t.payload("next"), t._("Start the quiz") if last else t._("Next"))


def _show_lesson(t: TurnContext, module: Module) -> None:
    p = t.s.module_progress(module.id)
    lesson = module.lessons[p.lesson]
    header = f"<b>{t._(module.title)}</b> · {t.num(p.lesson + 1)}/{t.num(len(module.lessons))}"
    if lesson.diagram is not None:  # the picture first, so the lesson and its button stay at the bottom
        d = lesson.diagram
        t.outputs.append(Photo(b"", t._(d.caption), f"{d.id}.png", ref=d.id))
    t.say(f"{header}\n\n{t._(lesson.text)}", [_next_button(t, module)])


def _answer_lesson(engine: Kernel, t: TurnContext, module: Module, value: str, tapped: bool) -> None:
    wants_next = value == "next" if tapped else (fold(value) in _NEXT_WORDS or parse_yes_no(value) is True)
    if not wants_next:
        t.say(t._("Tap Next when you are ready."), [_next_button(t, module)])
        return
    p = t.s.module_progress(module.id)
    if tapped:
        t.outputs.append(Picked(t._("Start the quiz") if p.lesson >= len(module.lessons) - 1 else t._("Next")))
    _tap_next(engine, t, module.id)


def _tap_next(engine: Kernel, t: TurnContext, module_id: str) -> None:
    module = engine.content.module(module_id)
    if module is None:
        return
    p = t.s.module_progress(module.id)
    p.lesson = min(p.lesson + 1, len(module.lessons))
    t.emit("lesson_read", module=module.id, lesson=p.lesson)
    if p.lesson < len(module.lessons):
        t.advance()
        _show_lesson(t, module)
    else:
        _start_quiz(engine, t, module)


# ----------------------------------------------------------------- quiz
def option_order(t: TurnContext, module: Module, question: Question, attempt: int) -> list[QuizOption]:
    """The options as shown in ``attempt``: as written first, reshuffled on every retry."""
    options = list(question.options)
    if attempt > 1:
        random.Random(f"{t.s.seed}:{module.id}:{attempt}:{question.id}").shuffle(options)
    return options


def _start_quiz(engine: Kernel, t: TurnContext, module: Module) -> None:
    p = t.s.module_progress(module.id)
    p.lesson = len(module.lessons)
    p.attempt += 1
    p.question = p.score = 0
    p.in_quiz = True
    t.s.flow, t.s.step = "quiz", module.id
    t.emit("quiz_started", module=module.id, attempt=p.attempt)
    t.advance()
    intro = t._("Quiz time! {total} questions; {needed} right answers pass.", total=t.num(len(module.quiz)), needed=t.num(module.pass_mark))
    _ask_question(engine, t, module, lead=intro)


JOIN_MAX = 1000
"""The longest message a verdict and the next question make together: one WhatsApp interactive body (1024) holds it."""


def _say_after(t: TurnContext, lead: str, text: str, choices: list[Choice], columns: int) -> None:
    """``text`` with its buttons, ``lead`` (a verdict, a hint, the quiz's intro) above it in the same message.

    One message instead of two: one notification on the owner's phone, one request to the
    platform. A pair too long for one message goes as two, the lead first.
    """
    if lead and len(lead) + 2 + len(text) <= JOIN_MAX:
        text = f"{lead}\n\n{text}"
    elif lead:
        t.say(lead)
    t.say(text, choices, columns=columns)


def _ask_question(engine: Kernel, t: TurnContext, module: Module, lead: str = "") -> None:
    p = t.s.module_progress(module.id)
    question = module.quiz[p.question]
    options = option_order(t, module, question, p.attempt)
    head = t._("<b>Question {n} of {total}</b>", n=t.num(p.question + 1), total=t.num(len(module.quiz)))
    listed = "\n".join(f"{i}. {t._(o.text)}" for i, o in enumerate(options, 1))
    choices = [Choice(t.payload("a." + o.id), str(i)) for i, o in enumerate(options, 1)]
    _say_after(t, lead, f"{head}\n{t._(question.text)}\n\n{listed}", choices, len(choices))


def _answer_question(engine: Kernel, t: TurnContext, module: Module, value: str, tapped: bool) -> None:
    s = t.s
    p = s.module_progress(module.id)
    question = module.quiz[p.question]
    options = option_order(t, module, question, p.attempt)
    chosen: QuizOption | None = None
    if tapped and value.startswith("a."):
        chosen = next((o for o in options if o.id == value[2:]), None)
    elif not tapped:
        index = match_option(value, [[o.text, t.texts.gettext("hi", o.text)] for o in options])
        chosen = options[index] if index is not None else None
    if chosen is None:
        last = t.num(len(options))
        typed = parse_number(value) if not tapped else None
        if typed is not None and not 1 <= typed <= len(options):
            hint = t._(QUIZ_NO_SUCH, number=t.num(typed), last=last)
        else:
            hint = t._(QUIZ_HINT, last=last)
        _ask_question(engine, t, module, lead=hint)
        return
    number = options.index(chosen) + 1
    if tapped:
        t.outputs.append(Picked(f"{number}. {t._(chosen.text)}"))
    t.emit("quiz_answer", module=module.id, attempt=p.attempt, question=question.id, option=chosen.id, correct=chosen.correct)
    if chosen.correct:
        p.score += 1
        verdict = t._("✅ Correct!") + "\n" + t._(question.explanation)
    else:
        right = question.correct
        shown = str(options.index(right) + 1) + ". " + t._(right.text)
        verdict = t._("❌ Not quite. The right answer: <b>{answer}</b>", answer=shown) + "\n" + t._(question.explanation)
    p.question += 1
    t.advance()
    if p.question < len(module.quiz):
        _ask_question(engine, t, module, lead=verdict)
    else:
        _finish_quiz(engine, t, module, lead=verdict)


def _finish_quiz(engine: Kernel, t: TurnContext, module: Module, lead: str = "") -> None:
    s = t.s
    p = s.module_progress(module.id)
    p.in_quiz = False
    passed = p.score >= module.pass_mark
    was_passed = p.passed
    p.best = max(p.best or 0, p.score)
    t.emit("quiz_finished", module=module.id, attempt=p.attempt, score=p.score, passed=passed)
    s.flow, s.step = "menu", module.id
    score = t._("You got {score} of {total}.", score=t.num(p.score), total=t.num(len(module.quiz)))
    if not passed:
        _say_after(
            t, lead,
            score + " " + t._("You need {needed} to pass. Read the lessons again or try the quiz again: the options will be in a new order.",
                              needed=t.num(module.pass_mark)),
            [Choice(t.payload("retry"), t._("Quiz again")), Choice(t.payload("read"), t._("Read again")), Choice(t.payload("menu"), t._("Modules"))],
            2,
        )
        return
    p.passed = True
    if not was_passed:
        t.emit("module_passed", module=module.id, score=p.score)
    choices = []
    upcoming = next(
        (m for m in engine.content.modules if not (s.progress.get(m.id) and s.progress[m.id].passed) and not locked_by(engine, t, m)),
        None,
    )
    if upcoming is not None:
        choices.append(Choice(payloads.Module(upcoming.id).encode(), t._("Next: {short}", short=t._(upcoming.short))))
    choices.append(Choice(t.payload("menu"), t._("Modules")))
    _say_after(t, lead, score + " " + t._("🎉 Passed! Well done."), choices, 1)
    required = engine.content.required_modules
    if not was_passed and module.id in required and all(s.progress.get(r) and s.progress[r].passed for r in required):
        t.emit("required_modules_passed")
        _core_modules_passed(engine, t)


def _core_modules_passed(engine: Kernel, t: TurnContext) -> None:
    """The promise of a startup only when the score gets there; otherwise what is still missing."""
    rules = engine.content.qualification
    result = leads.readiness(rules, engine.content, t.s.profile, t.s.progress) if rules is not None else None
    if result is None or result.qualifies:
        t.say(t._(CORE_DONE))
        return
    lines = [t._(CORE_DONE_BELOW, score=t.num(result.score), threshold=t.num(result.threshold))]
    tips = leads.raise_tips(t, engine.content, result, t.s.progress, limit=3)
    lines += [f"• {tip}" for tip in tips] if tips else [t._(CORE_DONE_NO_TIPS)]
    lines.append(t._(CORE_DONE_MORE))
    t.say("\n".join(lines))



FEATURE = Feature(
    "training",
    commands={name: command for name in ("learn", "progress", "stop_reminders", "stop_broadcasts", "start_broadcasts")},
    flows={name: Flow(ask_current, answer) for name in ("menu", "lesson", "quiz")},
    taps={payloads.Module: lambda engine, t, tapped: go(engine, t, tapped.module_id)},
    home=lambda engine, t: open_menu(engine, t, intro=True),
)
"""Training in the conversation: the module menu, lessons and quizzes, and the reminder switches."""
