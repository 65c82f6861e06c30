"""Who gets a broadcast: a segment of owners, as plain data.

A segment is a set of conditions that combine with AND: language, state(s), sector(s),
onboarding complete or not, and per module not started (never opened) / started (opened, not
passed) / passed / not passed (either of the first two).
Several states (or sectors) in one condition mean "any of them". Storage turns a segment into
SQL (``bot/storage/broadcasts.py``); here it is validated and described to admins in their
language. Every segment also leaves out owners who have not given consent, who blocked the bot
or who sent /stop_broadcasts: that is not a condition an admin can remove.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from typing import Any

from .session import N_, Texts

LANGS = ("hi", "en")
LANG_NAMES = {"hi": "हिन्दी", "en": "English"}
MODULE_STATUSES = ("not_started", "started", "passed", "not_passed")
STATUS_LABELS = {
    "not_started": N_("not started"),
    "started": N_("started, not passed"),
    "passed": N_("passed"),
    "not_passed": N_("not passed yet"),
}


@dataclass(frozen=True)
class Problem:
    """Something wrong with admin input: a msgid and the values to fill into it."""

    msgid: str
    values: dict[str, Any] = field(default_factory=dict)

    def render(self, texts: Texts, lang: str) -> str:
        """The problem in ``lang`` (the values came from an admin: escaped for chat HTML)."""
        values = {k: html.escape(v, quote=False) if isinstance(v, str) else v for k, v in self.values.items()}
        return texts.gettext(lang, self.msgid).format(**values)


@dataclass(frozen=True)
class Vocabulary:
    """What a segment may name: state, sector and module ids with their label msgids, in order."""

    states: dict[str, str]
    sectors: dict[str, str]
    modules: dict[str, str]
    aliases: dict[str, str] = field(default_factory=dict)  # folded alias ("up", "kapda") -> id

    @classmethod
    def from_content(cls, content: Any) -> Vocabulary:
        """The ids and labels of the onboarding's state and sector questions and of the modules."""
        steps = content.onboarding.steps

        def options(step_id: str) -> dict[str, str]:
            step = steps.get(step_id)
            return {o.id: o.label for o in step.options} if step else {}

        aliases = {
            alias.casefold(): o.id for step_id in ("state", "sector") if (step := steps.get(step_id)) for o in step.options for alias in o.aliases
        }
        return cls(options("state"), options("sector"), {m.id: m.title for m in content.modules}, aliases)


@dataclass(frozen=True)
class Segment:
    """Conditions on owners, combined with AND. The empty segment is every reachable owner."""

    lang: str | None = None
    states: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    onboarded: bool | None = None
    modules: tuple[tuple[str, str], ...] = ()  # (module_id, status), at most one per module

    @property
    def is_everyone(self) -> bool:
        """Whether no condition is set."""
        return self == Segment()

    def with_lang(self, lang: str | None) -> Segment:
        """Only owners who use ``lang`` (``None``: any language)."""
        return replace(self, lang=lang)

    def toggle_state(self, state: str) -> Segment:
        """Add ``state`` to the accepted states, or take it out again."""
        return replace(self, states=_toggle(self.states, state))

    def toggle_sector(self, sector: str) -> Segment:
        """Add ``sector`` to the accepted sectors, or take it out again."""
        return replace(self, sectors=_toggle(self.sectors, sector))

    def with_onboarded(self, onboarded: bool | None) -> Segment:
        """Only owners who finished (``True``) or did not finish (``False``) onboarding."""
        return replace(self, onboarded=onboarded)

    def with_module(self, module_id: str, status: str | None) -> Segment:
        """A condition on ``module_id`` (``None`` removes it)."""
        rest = tuple((m, s) for m, s in self.modules if m != module_id)
        return replace(self, modules=rest if status is None else (*rest, (module_id, status)))

    def module_status(self, module_id: str) -> str | None:
        """The condition set on ``module_id``, if any."""
        return dict(self.modules).get(module_id)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (stored with drafts and broadcasts)."""
        data: dict[str, Any] = {}
        if self.lang:
            data["lang"] = self.lang
        if self.states:
            data["states"] = list(self.states)
        if self.sectors:
            data["sectors"] = list(self.sectors)
        if self.onboarded is not None:
            data["onboarded"] = self.onboarded
        if self.modules:
            data["modules"] = [list(pair) for pair in self.modules]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Segment:
        """The segment stored by ``to_dict``."""
        data = data or {}
        return cls(
            lang=data.get("lang") or None,
            states=tuple(data.get("states", ())),
            sectors=tuple(data.get("sectors", ())),
            onboarded=data.get("onboarded"),
            modules=tuple((str(m), str(s)) for m, s in data.get("modules", ())),
        )


def _toggle(values: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(v for v in values if v != value) if value in values else (*values, value)


def validate(segment: Segment, vocab: Vocabulary) -> list[Problem]:
    """Everything in ``segment`` that does not exist (an empty list when it is usable)."""
    problems = []
    if segment.lang is not None and segment.lang not in LANGS:
        problems.append(Problem(N_("Unknown language '{value}': use hi or en."), {"value": segment.lang}))
    for state in segment.states:
        if state not in vocab.states:
            problems.append(Problem(N_("Unknown state '{value}': use an id like uttar_pradesh."), {"value": state}))
    for sector in segment.sectors:
        if sector not in vocab.sectors:
            problems.append(Problem(N_("Unknown sector '{value}': use an id like textiles_apparel."), {"value": sector}))
    seen = set()
    for module_id, status in segment.modules:
        if module_id not in vocab.modules:
            problems.append(Problem(N_("Unknown module '{value}'."), {"value": module_id}))
        if status not in MODULE_STATUSES:
            problems.append(
                Problem(N_("Unknown module status '{value}': use not_started, started, passed or not_passed."), {"value": status})
            )
        if module_id in seen:
            problems.append(Problem(N_("Module '{value}' has two conditions; keep one."), {"value": module_id}))
        seen.add(module_id)
    return problems


def lookup(value: str, known: dict[str, str], aliases: dict[str, str] | None = None) -> str | None:
    """The id in ``known`` that ``value`` names: the id, its English label or an alias, any case."""
    folded = value.strip().casefold().replace("-", "_")
    for key, label in known.items():
        if folded in (key, key.replace("_", " ")) or folded == label.casefold() or folded.replace("_", " ") == label.casefold():
            return key
    alias = (aliases or {}).get(value.strip().casefold())
    return alias if alias in known else None


def describe(segment: Segment, vocab: Vocabulary, texts: Texts, lang: str) -> str:
    """The conditions as admins read them, one per line, in ``lang``."""
    tr = lambda msgid: texts.gettext(lang, msgid)  # noqa: E731
    if segment.is_everyone:
        return tr(N_("Everyone who agreed to hear from us"))
    lines = []
    if segment.lang:
        lines.append(tr(N_("Language: {value}")).format(value=LANG_NAMES.get(segment.lang, segment.lang)))
    if segment.states:
        names = ", ".join(tr(vocab.states.get(s, s)) for s in segment.states)
        lines.append(tr(N_("State: {value}")).format(value=names))
    if segment.sectors:
        names = ", ".join(tr(vocab.sectors.get(s, s)) for s in segment.sectors)
        lines.append(tr(N_("Sector: {value}")).format(value=names))
    if segment.onboarded is not None:
        done = N_("complete") if segment.onboarded else N_("not complete")
        lines.append(tr(N_("Profile: {value}")).format(value=tr(done)))
    for module_id, status in segment.modules:
        lines.append(
            tr(N_("Module {module}: {status}")).format(
                module=tr(vocab.modules.get(module_id, module_id)), status=tr(STATUS_LABELS.get(status, status))
            )
        )
    return "\n".join(f"• {line}" for line in lines)
