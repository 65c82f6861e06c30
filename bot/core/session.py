"""A user's conversation state and the per-turn context the engine works in.

A ``Session`` is plain data: the service loads it from storage, the engine returns a changed
copy, the service saves it. Nothing here knows about a database or a chat platform.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from . import payloads
from .messages import Choice, Event, Outbound, Say

if TYPE_CHECKING:
    from .content import Content


class Kernel(Protocol):
    """What a feature (training, lead readiness) needs from the engine that runs it.

    Features take this, not the engine, so the engine imports the features and nothing imports
    the engine back.
    """

    content: Content

    def ask_current(self, t: TurnContext, again: bool = False) -> None:
        """Ask the question the owner is on (again, after a command in the middle of a flow)."""


class Texts(Protocol):
    """Translations and locale formatting (implemented with Babel in ``bot.i18n``)."""

    def gettext(self, lang: str, msgid: str) -> str:
        """``msgid`` in ``lang`` (the English msgid itself when there is no translation)."""

    def number(self, lang: str, value: float) -> str:
        """A number with the locale's grouping (Indian: 1,00,000)."""

    def percent(self, lang: str, value: float) -> str:
        """A fraction 0–1 as a percentage."""

    def money(self, lang: str, rupees: int) -> str:
        """A rupee amount the way owners say it: ₹40 lakh, ₹1.5 crore, ₹5,000."""

    def ngettext(self, lang: str, singular: str, plural: str, n: int) -> str:
        """The form of a message for the count ``n`` in ``lang`` ("1 owner", "3 owners")."""

    def datetime(self, lang: str, when: dt.datetime) -> str:
        """A date and time in India time, the way the language says it."""

    def date(self, lang: str, when: dt.datetime | dt.date) -> str:
        """A date in India time, the way the language says it."""


def N_(msgid: str) -> str:
    """Mark a string for translation without translating it yet (gettext convention)."""
    return msgid


def P_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a message whose words depend on a count ("{n} owner" / "{n} owners"); translate it
    with ``TurnContext.p_`` or ``Texts.ngettext``, which pick the language's form for the count."""
    return (singular, plural)


@dataclass
class ModuleProgress:
    """Where a user is in one training module."""

    lesson: int = 0  # index of the next lesson message to show
    attempt: int = 0  # quiz attempts started (the current one, while in_quiz)
    question: int = 0  # index of the next question in the current attempt
    score: int = 0  # correct answers so far in the current attempt
    best: int | None = None  # best score of a finished attempt
    passed: bool = False
    in_quiz: bool = False

    @property
    def started(self) -> bool:
        """Whether the owner has opened the module at all."""
        return self.lesson > 0 or self.attempt > 0


@dataclass
class Session:
    """One user's conversation state.

    ``flow``/``step`` say where the user is ("onboarding"/step id, "lesson"/module id,
    "quiz"/module id, "menu", "refused", "new"); ``seq`` numbers the question on screen, and every
    button carries it, so a tap on an older question is recognised. ``draft`` holds what is half
    done: multi-select picks, a pending confirmation, an answer being changed.
    """

    lang: str = "hi"
    flow: str = "new"
    step: str = ""
    seq: int = 0
    profile: dict = field(default_factory=dict)
    draft: dict = field(default_factory=dict)
    consent: str = ""  # "", "given" or "refused"
    onboarded: bool = False
    progress: dict[str, ModuleProgress] = field(default_factory=dict)
    seed: int = 0
    reminders_off: bool = False
    broadcasts_off: bool = False

    def module_progress(self, module_id: str) -> ModuleProgress:
        """Progress in ``module_id``, created empty on first use."""
        return self.progress.setdefault(module_id, ModuleProgress())

    def clone(self) -> Session:
        """A deep copy, several times faster than ``copy.deepcopy`` (runs once per turn).

        Profile and draft hold JSON values (they are stored as JSON), so copying dicts and lists
        is enough; anything else falls back to ``copy.deepcopy``.
        """
        return replace(
            self,
            profile=_copy_json(self.profile),
            draft=_copy_json(self.draft),
            progress={k: replace(p) for k, p in self.progress.items()},
        )


def _copy_json(value):
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):  # immutable (bool is an int)
        return value
    return copy.deepcopy(value)


@dataclass
class Turn:
    """What one inbound event produced: the new session, the outputs and the events."""

    session: Session
    outputs: list[Outbound]
    events: list[Event]


class Tr:
    """The one way to put words in front of someone: messages in their language, numbers, money,
    dates and phone numbers the Indian way. Every role (owners, staff, admins) and the services
    speak through it; ``TurnContext`` is one for the user of the turn."""

    def __init__(self, lang: str, texts: Texts):
        self._lang = lang
        self.texts = texts

    @property
    def lang(self) -> str:
        return self._lang

    def _(self, msgid: str, **values: object) -> str:
        """``msgid`` translated into the user's language, with ``values`` filled in."""
        text = self.texts.gettext(self.lang, msgid)
        return text.format(**values) if values else text

    def p_(self, forms: tuple[str, str], count: int, /, **values: object) -> str:
        """``forms`` (from ``P_``) in the user's language, in the form for ``count``."""
        return self.texts.ngettext(self.lang, forms[0], forms[1], count).format(**values)

    def esc(self, value: object) -> str:
        """User-supplied ``value`` made safe to put into a chat-HTML message."""
        return html.escape(str(value), quote=False)

    def num(self, value: float) -> str:
        """A number formatted for the user's language (Indian grouping: 1,00,000)."""
        return self.texts.number(self.lang, value)

    def money(self, rupees: int) -> str:
        """Rupees the way owners say it: ₹40 lakh, ₹1.5 crore, ₹5,000."""
        return self.texts.money(self.lang, rupees)

    def when(self, seconds: int) -> str:
        """A moment (Unix seconds) as a date and time in India time, in the user's language."""
        return self.texts.datetime(self.lang, dt.datetime.fromtimestamp(seconds, dt.timezone.utc))

    def date(self, seconds: int) -> str:
        """The day of a moment (Unix seconds) in India time: 15 March 2026 / 15 मार्च 2026."""
        return self.texts.date(self.lang, dt.datetime.fromtimestamp(seconds, dt.timezone.utc))

    @staticmethod
    def phone(value: object) -> str:
        """A stored Indian mobile number (+919876543210) as people read it: +91 98765 43210."""
        if isinstance(value, str) and len(value) == 13 and value.startswith("+91"):
            return f"{value[:3]} {value[3:8]} {value[8:]}"
        return "" if value is None else str(value)


class TurnContext(Tr):
    """Collects outputs and events while the engine handles one inbound event."""

    def __init__(self, session: Session, texts: Texts):
        self.s = session
        self.texts = texts
        self.outputs: list[Outbound] = []
        self.events: list[Event] = []

    @property
    def lang(self) -> str:  # follows the session: /language changes it in the middle of a turn
        return self.s.lang

    def say(self, text: str, choices: tuple[Choice, ...] | list[Choice] = (), columns: int = 1, ask_contact: bool = False) -> None:
        """Queue a message."""
        self.outputs.append(Say(text, tuple(choices), columns, ask_contact))

    def emit(self, kind: str, **data: object) -> None:
        """Record an event for the service to act on."""
        self.events.append(Event(kind, dict(data)))

    def payload(self, value: str) -> str:
        """A button payload bound to the question on screen."""
        return payloads.Step(self.s.seq, value).encode()

    def advance(self) -> None:
        """The user moves to a new question: older buttons stop counting."""
        self.s.seq += 1

    def result(self) -> Turn:
        """The finished turn."""
        return Turn(self.s, self.outputs, self.events)
