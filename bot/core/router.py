"""How features plug into the conversation kernel.

The engine (``engine.py``) runs the turn — onboarding, consent, /start, /help, /language,
/cancel, /restart, /delete_my_data, /profile — and knows no feature. A feature (training,
export readiness, …) is a ``Feature``: the commands it answers, the flows it runs (the session's
``flow`` while the owner is inside it), the buttons it owns (by payload type, see
``payloads.py``), where a newly onboarded owner goes, and the readiness score shown after a
change of profile. The composition root passes the features to the engine
(``features.standard()``); the engine asks the ``Router`` who handles what.

Features are pure like the engine: they read and change the ``TurnContext`` (session, outputs,
events) and do no I/O. They call back into the kernel only through ``Kernel`` (``content`` and
``ask_current``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .content import Content
    from .session import Kernel, Session, TurnContext

Command = Callable[["Kernel", "TurnContext", str], None]
"""``(kernel, turn, command name)``: answer the command."""
Tap = Callable[["Kernel", "TurnContext", Any], None]
"""``(kernel, turn, decoded payload)``: answer a button the feature drew."""


@dataclass(frozen=True)
class Flow:
    """A part of the conversation a feature runs while ``session.flow`` names it."""

    ask: Callable[[Kernel, TurnContext, bool], None]
    """Ask (again, with ``True``) what the owner is at."""
    answer: Callable[[Kernel, TurnContext, str, bool], None]
    """Take a typed text or a tapped value (``True``) for the question on screen."""


@dataclass(frozen=True)
class Feature:
    """What one feature adds to the conversation."""

    name: str
    commands: Mapping[str, Command] = field(default_factory=dict)
    flows: Mapping[str, Flow] = field(default_factory=dict)
    taps: Mapping[type, Tap] = field(default_factory=dict)
    home: Callable[[Kernel, TurnContext], None] | None = None
    """Where an owner goes once the profile is confirmed (one feature may say)."""
    score: Callable[[Content, Session], int | None] | None = None
    """The readiness score to tell after the profile changed (one feature may say)."""


class Router:
    """Who handles which command, flow and button; a name claimed twice is a mistake, said at start-up."""

    def __init__(self, features: Sequence[Feature] = ()):
        self.features = tuple(features)
        self._commands: dict[str, Command] = {}
        self._flows: dict[str, Flow] = {}
        self._taps: dict[type, Tap] = {}
        self.home: Callable[[Kernel, TurnContext], None] | None = None
        self.score: Callable[[Content, Session], int | None] | None = None
        for feature in self.features:
            for table, items, what in ((self._commands, feature.commands, "command"), (self._flows, feature.flows, "flow"),
                                       (self._taps, feature.taps, "button type")):
                for key, value in items.items():
                    if key in table:
                        raise ValueError(f"{what} {getattr(key, '__name__', key)!r} is claimed by two features")
                    table[key] = value
            for hook in ("home", "score"):
                if getattr(feature, hook) is not None:
                    if getattr(self, hook) is not None:
                        raise ValueError(f"two features say the {hook}")
                    setattr(self, hook, getattr(feature, hook))

    def command(self, name: str) -> Command | None:
        return self._commands.get(name)

    def flow(self, name: str) -> Flow | None:
        return self._flows.get(name)

    def tap(self, payload: object) -> Tap | None:
        return self._taps.get(type(payload))

    @property
    def commands(self) -> tuple[str, ...]:
        """Every command the features answer."""
        return tuple(self._commands)
