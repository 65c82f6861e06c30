"""Training end to end: modules, lessons and quizzes through the real PTB Application and the
Bot API stand-in, with what was stored checked in the SQLite file."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.core.content import Module, Question
from bot.services.clock import ManualClock
from tests.botapi_standin import BotApiStandin, BotMessage
from tests.e2e_support import running_bot
from tests.test_e2e_onboarding import (
    EARLIER,
    QUIET,
    TYPED_EN,
    Harness,
    assert_hindi,
    assert_quiet,
    next_message,
    onboard_by_typing,
    profile_row,
    shown,
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

# Typed answers that onboard a Hindi owner quickly.
TYPED_HI = [
    ("language", "1"), ("consent", "हाँ"), ("owner_name", "रमेश"), ("business_name", "रमेश ब्रास"),
    ("state", "UP"), ("district", "मुरादाबाद"), ("sector", "1"), ("udyam", "1"), ("iec", "2"), ("gst", "1"),
    ("experience", "1"), ("turnover", "2"), ("markets", "1, 2"), ("phone", "9876543210"),
]
_LISTED = re.compile(r"^(\d+)\. (.+)$")


@pytest.fixture
async def bot(tmp_path: Path, store: dict) -> AsyncIterator[Harness]:
    """The real bot on a fresh database (SQLite, then PostgreSQL), talking to a fresh stand-in."""
    clock = ManualClock()
    db_path = store["database_path"]
    async with BotApiStandin() as api, running_bot(api, db_path, clock=clock, database_url=store.get("database_url", "")) as running:
        yield Harness(api, running.app, clock, db_path)


def tr(app: App, lang: str, msgid: str, **values: object) -> str:
    """``msgid`` as the user sees it in ``lang`` (translated, filled in, tags removed)."""
    text = app.texts.gettext(lang, msgid)
    return shown(text.format(**values) if values else text)


def listed_options(message: BotMessage) -> list[str]:
    """The numbered options at the end of a quiz question, in the order shown."""
    lines = message.text.split("\n")
    options: list[str] = []
    while lines and (match := _LISTED.match(lines[-1])):
        options.insert(0, match.group(2))
        lines.pop()
    assert [str(i) for i in range(1, len(options) + 1)] == [label for label, _ in message.buttons], message.buttons
    return options


async def read_lessons(api: BotApiStandin, app: App, uid: int, lang: str, module: Module, first: BotMessage) -> BotMessage:
    """Page through every lesson of ``module`` with Next from ``first``; returns the first question."""
    lesson_msg, total = first, len(module.lessons)
    for index, lesson in enumerate(module.lessons):
        assert lesson_msg.text == f"{tr(app, lang, module.title)} · {index + 1}/{total}\n\n{tr(app, lang, lesson.text)}"
        label = tr(app, lang, "Start the quiz" if index == total - 1 else "Next")
        assert [text for text, _ in lesson_msg.buttons] == [label]
        api.tap_button(uid, lesson_msg, label)
        following = await next_message(api, uid)
        if index == total - 1:  # the quiz's intro and question 1: one message
            intro = tr(app, lang, "Quiz time! {total} questions; {needed} right answers pass.",
                       total=len(module.quiz), needed=module.pass_mark)
            assert following.text.startswith(intro + "\n\n" + tr(app, lang, "<b>Question {n} of {total}</b>", n=1, total=len(module.quiz)))
        answered = api.message(uid, lesson_msg.message_id)  # keeps its text, loses its button
        assert answered.buttons == [] and answered.text.endswith(f"✅ {label}")
        lesson_msg = following
    return lesson_msg


async def quiz_in_english(api: BotApiStandin, app: App, uid: int, module: Module) -> BotMessage:
    """An English owner onboarded by typing, the first module opened and its lessons read: question 1."""
    await onboard_by_typing(api, app, uid, TYPED_EN)
    api.tap_button(uid, api.last_message(uid), 0)
    return await read_lessons(api, app, uid, "en", module, await next_message(api, uid))


async def answer(
    api: BotApiStandin, app: App, uid: int, lang: str, module: Module, number: int, message: BotMessage, right: bool
) -> tuple[list[str], BotMessage, BotMessage]:
    """Answer question ``number`` (0-based) shown in ``message`` rightly or wrongly by tapping.

    Checks the feedback (verdict, the right answer, the explanation) at the top of the one message
    that follows, and the answered question; returns the options as shown, the feedback's text and
    that message (the next question, or the result).
    """
    question: Question = module.quiz[number]
    head = tr(app, lang, "<b>Question {n} of {total}</b>", n=number + 1, total=len(module.quiz))
    assert message.text.startswith(head) or f"\n\n{head}\n" in message.text  # after the intro or a verdict
    assert tr(app, lang, question.text) in message.text
    options = listed_options(message)
    assert sorted(options) == sorted(tr(app, lang, o.text) for o in question.options)
    correct = options.index(tr(app, lang, question.correct.text)) + 1
    chosen = correct if right else next(i for i in range(1, len(options) + 1) if i != correct)
    api.tap_button(uid, message, str(chosen))
    following = await next_message(api, uid)
    explanation = tr(app, lang, question.explanation)
    if right:
        feedback = tr(app, lang, "✅ Correct!") + "\n" + explanation
    else:
        right_answer = f"{correct}. {tr(app, lang, question.correct.text)}"
        feedback = tr(app, lang, "❌ Not quite. The right answer: <b>{answer}</b>", answer=right_answer) + "\n" + explanation
    assert following.text.startswith(feedback + "\n\n")
    answered = api.message(uid, message.message_id)
    assert answered.buttons == [] and answered.text.endswith(f"✅ {chosen}. {options[chosen - 1]}")
    return options, feedback, following


async def quiz_rows(app: App, uid: int, module_id: str) -> list[tuple[int, str, str, int]]:
    """Stored quiz answers: (attempt, question, option, correct)."""
    row = await profile_row(app, uid)
    rows = await app.db.fetchall(
        "SELECT attempt, question_id, option_id, correct FROM quiz_answers WHERE user_id = ? AND module_id = ?",
        (row["id"], module_id),
    )
    order = [q.id for q in app.engine.content.module(module_id).quiz]
    return sorted((tuple(r) for r in rows), key=lambda r: (r[0], order.index(r[1])))


async def progress(app: App, uid: int, module_id: str) -> dict | None:
    """The stored progress row of ``module_id``."""
    row = await profile_row(app, uid)
    found = await app.db.fetchone(
        "SELECT lesson, attempt, question, score, best, passed, in_quiz, passed_at FROM progress WHERE user_id = ? AND module_id = ?",
        (row["id"], module_id),
    )
    return dict(found) if found else None


def in_order(module: Module, rights: list[bool], attempt: int) -> list[tuple[int, str, int]]:
    """(attempt, question, correct) expected for one attempt (the chosen options are checked apart)."""
    return [(attempt, q.id, int(right)) for q, right in zip(module.quiz, rights)]


# ----------------------------------------------------------------- the tests
async def test_hindi_owner_fails_a_quiz_retries_it_passes_and_does_a_second_module(bot: Harness):
    api, app = bot.api, bot.app
    content = app.engine.content
    export_ready, documents = content.module("export_ready"), content.module("documents")
    uid = 501
    api.add_user(uid, first_name="Ramesh", language_code="hi")
    await onboard_by_typing(api, app, uid, TYPED_HI, "hi")
    menu = api.last_message(uid)

    # Only the first module is open; the others are locked behind it.
    assert menu.buttons[0] == (f"○ {tr(app, 'hi', export_ready.short)}", "go:export_ready")
    assert all(label.startswith("🔒") for label, _ in menu.buttons[1:])
    api.tap_button(uid, menu, 0)
    first_lesson = await next_message(api, uid)
    assert_hindi(first_lesson.text.split("\n")[0])
    question = await read_lessons(api, app, uid, "hi", export_ready, first_lesson)

    # Attempt 1: the first two answers wrong on purpose, the rest right: 3 of 5 does not pass.
    rights = [False, False, True, True, True]
    first_orders = []
    for number, right in enumerate(rights):
        options, feedback, question = await answer(api, app, uid, "hi", export_ready, number, question, right)
        assert_hindi(feedback.split("\n")[0])
        first_orders.append(options)
    result = question
    assert result.text.endswith("\n\n" +
        tr(app, "hi", "You got {score} of {total}.", score=3, total=5) + " "
        + tr(app, "hi", "You need {needed} to pass. Read the lessons again or try the quiz again: the options will be in a new order.", needed=4)
    )
    assert_hindi(result.text)
    assert [label for label, _ in result.buttons] == [tr(app, "hi", "Quiz again"), tr(app, "hi", "Read again"), tr(app, "hi", "Modules")]
    stored = await progress(app, uid, "export_ready")
    assert (stored["attempt"], stored["best"], stored["passed"], stored["in_quiz"], stored["passed_at"]) == (1, 3, 0, 0, None)

    # Attempt 2, options reshuffled: all right.
    api.tap_button(uid, result, tr(app, "hi", "Quiz again"))
    question = await next_message(api, uid)
    assert question.text.startswith(tr(app, "hi", "Quiz time! {total} questions; {needed} right answers pass.", total=5, needed=4))
    second_orders = []
    for number in range(5):
        options, feedback, question = await answer(api, app, uid, "hi", export_ready, number, question, True)
        second_orders.append(options)
    assert second_orders != first_orders  # a new order on the retry
    assert all(sorted(a) == sorted(b) for a, b in zip(first_orders, second_orders))
    passed = question
    assert passed.text.endswith("\n\n" + tr(app, "hi", "You got {score} of {total}.", score=5, total=5) + " " + tr(app, "hi", "🎉 Passed! Well done."))
    assert passed.buttons[0] == (tr(app, "hi", "Next: {short}", short=tr(app, "hi", documents.short)), "go:documents")

    rows = await quiz_rows(app, uid, "export_ready")
    assert [(a, q, c) for a, q, _, c in rows] == in_order(export_ready, rights, 1) + in_order(export_ready, [True] * 5, 2)
    wrong_first = {q: o for a, q, o, _ in rows if a == 1}
    assert wrong_first[export_ready.quiz[0].id] != export_ready.quiz[0].correct.id
    assert {o for a, _, o, _ in rows if a == 2} == {q.correct.id for q in export_ready.quiz}
    stored = await progress(app, uid, "export_ready")
    assert (stored["attempt"], stored["best"], stored["passed"], stored["in_quiz"]) == (2, 5, 1, 0)
    assert stored["passed_at"] == int(bot.clock.now())

    # The second module, now unlocked, straight from the "Next" button: passed first time.
    api.tap_button(uid, passed, 0)
    question = await read_lessons(api, app, uid, "hi", documents, await next_message(api, uid))
    for number in range(5):
        _, _, question = await answer(api, app, uid, "hi", documents, number, question, True)
    assert question.text.endswith(tr(app, "hi", "🎉 Passed! Well done."))
    assert [(a, q, c) for a, q, _, c in await quiz_rows(app, uid, "documents")] == in_order(documents, [True] * 5, 1)
    stored = await progress(app, uid, "documents")
    assert (stored["attempt"], stored["best"], stored["passed"]) == (1, 5, 1)

    # /progress: each module's status and the share passed, formatted for Hindi.
    api.send_text(uid, "/progress")
    report, menu_again = await api.wait_for_messages(uid, 2)
    assert_hindi(report.text)
    assert report.text.startswith(tr(app, "hi", "<b>Your progress</b>"))
    best = tr(app, "hi", "passed, best {score}/{total}", score=5, total=5)
    assert f"✅ {tr(app, 'hi', export_ready.title)}: {best}" in report.text
    assert f"✅ {tr(app, 'hi', documents.title)}: {best}" in report.text
    total = len(app.engine.content.modules)
    share = app.texts.percent("hi", 2 / total)
    assert share == "18%"
    assert report.text.endswith(tr(app, "hi", "Modules passed: {passed} of {total} ({share})", passed=2, total=total, share=share))
    # One clear next step after it, not the six-module menu again (25–30 lines on a phone).
    assert menu_again.text == tr(app, "hi", "What next?")
    incoterms = app.engine.content.module("incoterms")
    assert [label for label, _ in menu_again.buttons] == [
        tr(app, "hi", "▶️ Start: {short}", short=tr(app, "hi", incoterms.short)), tr(app, "hi", "Modules")]
    assert menu_again.buttons[0][1] == "go:incoterms"
    await assert_quiet(api, uid)
    events = [r["kind"] for r in await app.db.fetchall("SELECT kind FROM events WHERE kind LIKE 'module_%' OR kind LIKE 'quiz_%' ORDER BY id")]
    assert events == [
        "module_started", "quiz_started", "quiz_finished", "quiz_started", "quiz_finished", "module_passed",
        "module_started", "quiz_started", "quiz_finished", "module_passed",
    ]


async def test_english_owner_stops_mid_lesson_and_finds_it_after_a_restart(tmp_path: Path):
    clock = ManualClock()
    db_path = tmp_path / "bot.sqlite3"
    uid = 502
    async with BotApiStandin() as api:
        api.add_user(uid, first_name="Asha", language_code="en")
        async with running_bot(api, db_path, clock=clock) as first:
            app = first.app
            module = app.engine.content.module("export_ready")
            await onboard_by_typing(api, app, uid, TYPED_EN)
            api.send_text(uid, "1")  # the first module, typed by its number in the menu
            lesson = await next_message(api, uid)
            for _ in range(2):
                api.tap_button(uid, lesson, "Next")
                lesson = await next_message(api, uid)
            assert lesson.text.startswith(f"{module.title} · 3/6")
            await api.wait_idle(quiet=QUIET)
        async with running_bot(api, db_path, clock=clock) as second:
            app = second.app
            api.send_text(uid, "/start")
            welcome, again = await api.wait_for_messages(uid, 2)
            assert welcome.text == "Welcome back! Let's continue where you left off."
            assert again.text == lesson.text  # the same lesson, in full
            # /learn shows where they are in the menu; the module opens at the same lesson.
            api.send_text(uid, "/learn")
            menu = await next_message(api, uid)
            assert f"▶️ {module.title}: lesson 3 of 6" in menu.text
            api.tap_button(uid, menu, 0)
            reopened = await next_message(api, uid)
            assert reopened.text == lesson.text
            # The copy shown before the menu is now an earlier message; the new one moves on.
            api.tap_button(uid, lesson, "Next")
            await api.wait_idle(quiet=QUIET)
            assert api.callback_answers[-1].text == EARLIER
            api.tap_button(uid, reopened, "Next")
            fourth = await next_message(api, uid)
            assert fourth.text.startswith(f"{module.title} · 4/6")
            await assert_quiet(api, uid)
            stored = await progress(app, uid, "export_ready")
            assert (stored["lesson"], stored["attempt"], stored["in_quiz"]) == (3, 0, 0)


async def test_stale_quiz_taps_are_not_scored(bot: Harness):
    api, app = bot.api, bot.app
    module = app.engine.content.module("export_ready")
    uid = 503
    api.add_user(uid, first_name="Asha", language_code="en")
    question1 = await quiz_in_english(api, app, uid, module)
    old_buttons = list(question1.buttons)
    _, _, question2 = await answer(api, app, uid, "en", module, 0, question1, True)
    rows = await quiz_rows(app, uid, "export_ready")
    assert len(rows) == 1
    answers_before = len(api.callback_answers)

    # Question 1's buttons again (a double tap, or an old screen): every one is refused as old.
    for _, data in old_buttons:
        api.tap(uid, question1.message_id, data)
    await api.wait_idle(quiet=QUIET)
    notices = [a.text for a in api.callback_answers[answers_before:]]
    assert notices == [EARLIER] * len(old_buttons)
    assert api.new_messages(uid) == []
    assert await quiz_rows(app, uid, "export_ready") == rows

    # Question 2 answered by typing keeps its keyboard on screen; tapping it later is refused too.
    correct = listed_options(question2).index(module.quiz[1].correct.text) + 1
    api.send_text(uid, str(correct))
    question3 = await next_message(api, uid)
    assert question3.text.startswith("✅ Correct!")
    assert "\n\nQuestion 3 of 5\n" in question3.text
    answers_before = len(api.callback_answers)
    api.tap_button(uid, question2, "1")
    await api.wait_idle(quiet=QUIET)
    assert [a.text for a in api.callback_answers[answers_before:]] == [EARLIER]
    assert api.new_messages(uid) == []
    rows = await quiz_rows(app, uid, "export_ready")
    assert [(q, c) for _, q, _, c in rows] == [(module.quiz[0].id, 1), (module.quiz[1].id, 1)]
    stored = await progress(app, uid, "export_ready")
    assert (stored["question"], stored["score"], stored["in_quiz"]) == (2, 2, 1)
    await assert_quiet(api, uid)
    assert json.loads((await profile_row(app, uid))["state"])["flow"] == "quiz"


async def test_taps_from_an_earlier_attempt_or_from_before_a_restart_are_refused(tmp_path: Path):
    """Old quiz buttons stay on the owner's screen: a retry's question 1 is the same question at the
    same place as the first attempt's, and a restart forgets everything held in memory. A tap on any
    question but the one on show is refused as old, changes nothing, and the current one still counts."""
    clock = ManualClock()
    db_path = tmp_path / "bot.sqlite3"
    uid = 504
    async with BotApiStandin() as api:
        api.add_user(uid, first_name="Asha", language_code="en")
        async with running_bot(api, db_path, clock=clock) as first:
            app = first.app
            module = app.engine.content.module("export_ready")
            question = await quiz_in_english(api, app, uid, module)
            # Attempt 1 fails (the first two wrong), every question's buttons kept as they were shown.
            attempt1 = []
            for number, right in enumerate([False, False, True, True, True]):
                attempt1.append((question.message_id, list(question.buttons)))
                _, _, question = await answer(api, app, uid, "en", module, number, question, right)
            api.tap_button(uid, question, "Quiz again")
            question = await next_message(api, uid)
            assert "\n\n" + tr(app, "en", "<b>Question {n} of {total}</b>", n=1, total=5) + "\n" in question.text
            before = await quiz_rows(app, uid, "export_ready")
            assert len(before) == 5

            # Attempt 1's question 1, tapped while attempt 2's question 1 is on show: old.
            answers_before = len(api.callback_answers)
            message_id, buttons = attempt1[0]
            for _, data in buttons:
                api.tap(uid, message_id, data)
            await api.wait_idle(quiet=QUIET)
            assert [a.text for a in api.callback_answers[answers_before:]] == [EARLIER] * len(buttons)
            assert api.new_messages(uid) == []
            assert await quiz_rows(app, uid, "export_ready") == before

            retry_q1 = (question.message_id, list(question.buttons))
            _, _, question = await answer(api, app, uid, "en", module, 0, question, True)
            await api.wait_idle(quiet=QUIET)

        async with running_bot(api, db_path, clock=clock) as second:
            app = second.app
            rows = await quiz_rows(app, uid, "export_ready")
            assert rows[-1][:2] == (2, module.quiz[0].id) and len(rows) == 6
            # After the restart: the retry's question 1 (answered) and attempt 1's question 2 are old.
            answers_before = len(api.callback_answers)
            stale = [(retry_q1[0], data) for _, data in retry_q1[1]] + [(attempt1[1][0], attempt1[1][1][0][1])]
            for message_id, data in stale:
                api.tap(uid, message_id, data)
            await api.wait_idle(quiet=QUIET)
            assert [a.text for a in api.callback_answers[answers_before:]] == [EARLIER] * len(stale)
            assert api.new_messages(uid) == []
            assert await quiz_rows(app, uid, "export_ready") == rows

            # The question shown before the restart is still the current one: its tap is scored.
            _, feedback, following = await answer(api, app, uid, "en", module, 1, question, True)
            assert "\n\n" + tr(app, "en", "<b>Question {n} of {total}</b>", n=3, total=5) + "\n" in following.text
            after = await quiz_rows(app, uid, "export_ready")
            assert after[:6] == rows and [(a, q, c) for a, q, _, c in after[6:]] == [(2, module.quiz[1].id, 1)]
            stored = await progress(app, uid, "export_ready")
            assert (stored["attempt"], stored["question"], stored["score"], stored["in_quiz"]) == (2, 2, 2, 1)
            await assert_quiet(api, uid)
