"""WhatsApp's 24-hour window and the approved templates that may go outside it (pure rules).

WhatsApp delivers a free-form message only within 24 hours of the user's last message to the
business (the customer-service window); outside it only a *template* approved in Meta's WhatsApp
Manager may go (error 131047 otherwise). ``conversations/templates.yaml`` names, for each kind of
message the outbox sends on its own (reminders, module invitations, announcements, lead notices,
lead cards), the template approved for it: its name, its body in Hindi and English with ``{{1}}``-
style parameters, what fills each parameter, and its one quick-reply button.

The button does one of two things when tapped:

- ``choice``: it carries the message's own first button (``go:payments`` → continue that module),
  so the tap does what the full message's button would have done;
- ``open``: the full message waits in the outbox, held; the tap (like any message from the user)
  opens the window and the full message follows at once.

A message whose kind has no template waits in the outbox ('held', with the reason) until the user
writes again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import payloads
from .messages import Say

WINDOW = 24 * 3600
LANGS = ("hi", "en")
NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")  # lowercase_with_underscores, as WhatsApp Manager takes it
NAME_MAX = 512
PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
BODY_MAX = 1024
BUTTON_MAX = 25  # a quick-reply button's text in a template
PARAM_MAX = 60  # what the bot puts in one parameter (a name, a module title), cut to this
OPEN_PAYLOAD = payloads.OpenHeld().encode()  # the quick reply of an ``open`` template: the held message follows

# The kinds a template may be named for (see ``message_kind``), and those the outbox sends to users
# who may have been silent for days: each must have a template.
KINDS = {
    "reminder": "a reminder to continue a module",
    "module_invitation": "a broadcast inviting owners to a module",
    "announcement": "a broadcast announcement",
    "lead_update": "a notice to an owner about their lead (accepted, contacted …)",
    "lead_card": "a new lead card for a startup's staff",
    "staff_notice": "a notice to a startup's staff about a lead (withdrawn …)",
}
REQUIRED_KINDS = ("reminder", "module_invitation", "announcement", "lead_update", "lead_card")
# How a parameter is filled.
SOURCES = {
    "owner_name": "the owner's name from their profile (their business name, or 'friend', if there is none)",
    "business_name": "the owner's business name",
    "module_title": "the title of the module the message's button opens, in the owner's language",
}
BUTTON_ACTIONS = ("choice", "open")


def message_kind(kind: str, say: Say, user_id: int | None) -> str:
    """The template kind of an outbox row: its kind, with broadcasts and lead notices told apart."""
    if kind == "broadcast":
        return "module_invitation" if any(isinstance(payloads.decode(c.id), payloads.Module) for c in say.choices) else "announcement"
    if kind == "lead_notice":
        return "lead_update" if user_id is not None else "staff_notice"
    return kind


def in_window(last_inbound: int | None, closed_at: int | None, now: float) -> bool:
    """Whether a free-form message may go: the user wrote within 24 hours and WhatsApp has not said otherwise."""
    if last_inbound is None:
        return False
    if closed_at is not None and closed_at >= last_inbound:
        return False
    return now - last_inbound < WINDOW


@dataclass(frozen=True)
class Version:
    """One language of a template, as approved."""

    code: str  # WhatsApp's language code ("hi", "en" or "en_US" …)
    body: str
    button: str


@dataclass(frozen=True)
class Template:
    """The approved template for one kind of message."""

    kind: str
    name: str
    params: tuple[str, ...]  # the source of {{1}}, {{2}} …
    button: str  # "choice" or "open"
    versions: dict[str, Version] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateSend:
    """A template message to send: what the channel turns into a Graph API request."""

    name: str
    lang: str  # "hi" or "en"
    code: str  # the approved version's language code
    params: tuple[str, ...]
    payload: str  # the quick-reply button's payload
    text: str  # the body as the user reads it (for logs and the stand-in; WhatsApp renders its own)
    opens: bool = False  # the full message follows when the user answers (an ``open`` template)


@dataclass(frozen=True)
class TemplateBook:
    """The templates by kind."""

    templates: dict[str, Template] = field(default_factory=dict)

    def for_kind(self, kind: str) -> Template | None:
        """The template approved for ``kind``, if any."""
        return self.templates.get(kind)


def clean_param(text: str) -> str:
    """A parameter as WhatsApp takes it: no tags, no line breaks or tabs, no runs of spaces, not too long."""
    text = re.sub(r"<[^>]*>", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= PARAM_MAX else text[: PARAM_MAX - 1].rstrip() + "…"


def fill(body: str, params: tuple[str, ...]) -> str:
    """``body`` with ``{{n}}`` replaced by the n-th parameter."""
    return PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(params) else m.group(0), body)


def compose(template: Template, lang: str, values: Mapping[str, str | None], say: Say) -> TemplateSend | str:
    """The template message for a row in ``lang``; a string says why it cannot be composed."""
    version = template.versions.get(lang) or template.versions.get("en")
    if version is None:
        return f"template {template.name} has no {lang} version"
    params = []
    for source in template.params:
        value = clean_param(values.get(source) or "")
        if not value:
            return f"template {template.name}: nothing to fill {source} with"
        params.append(value)
    payload = OPEN_PAYLOAD
    if template.button == "choice":
        payload = say.choices[0].id if say.choices else OPEN_PAYLOAD
    opens = payload == OPEN_PAYLOAD
    return TemplateSend(template.name, lang if lang in template.versions else "en", version.code, tuple(params), payload,
                        fill(version.body, tuple(params)), opens)


def placeholders(body: str) -> list[int]:
    """The numbers of the ``{{n}}`` placeholders in ``body``, in order of appearance."""
    return [int(n) for n in PLACEHOLDER.findall(body)]


def parse(data: Any, where: str = "conversations/templates.yaml") -> tuple[TemplateBook, list[str]]:
    """The book in ``data`` (parsed YAML) and every problem with it, each naming file, template and field."""
    problems: list[str] = []
    templates: dict[str, Template] = {}
    items = (data or {}).get("templates") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return TemplateBook(), [f"{where}: needs a list under 'templates'"]
    names: set[str] = set()
    for index, item in enumerate(items):
        problems += list(_parse_one(item, index, where, templates, names))
    for kind in REQUIRED_KINDS:
        if kind not in templates:
            problems.append(f"{where}: no template for kind '{kind}' ({KINDS[kind]}); it would wait until the user writes")
    return TemplateBook(templates), problems


def _parse_one(item: Any, index: int, where: str, templates: dict[str, Template], names: set[str]) -> Iterator[str]:
    if not isinstance(item, dict):
        yield f"{where}: template #{index + 1} is not a mapping"
        return
    name, kind = str(item.get("name") or ""), str(item.get("kind") or "")
    here = f"{where}: template '{name or '#' + str(index + 1)}'"
    ok = True
    if not NAME.match(name) or len(name) > NAME_MAX:
        yield f"{here}, field 'name': must be lowercase_with_underscores (letters, digits, underscores), e.g. module_reminder"
        ok = False
    elif name in names:
        yield f"{here}, field 'name': used twice"
        ok = False
    names.add(name)
    if kind not in KINDS:
        yield f"{here}, field 'kind': {kind!r} is not one of {', '.join(sorted(KINDS))}"
        ok = False
    elif kind in templates:
        yield f"{here}, field 'kind': '{kind}' already has template '{templates[kind].name}'"
        ok = False
    params = item.get("params") or []
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        yield f"{here}, field 'params': a list of sources ({', '.join(sorted(SOURCES))})"
        ok, params = False, []
    for source in params:
        if source not in SOURCES:
            yield f"{here}, field 'params': {source!r} is not one of {', '.join(sorted(SOURCES))}"
            ok = False
    button = str(item.get("button") or "")
    if button not in BUTTON_ACTIONS:
        yield f"{here}, field 'button': {button!r} must be 'choice' (the message's own button) or 'open' (show the message)"
        ok = False
    versions: dict[str, Version] = {}
    for lang in LANGS:
        version = item.get(lang)
        there = f"{here}, language '{lang}'"
        if not isinstance(version, dict):
            yield f"{there}: missing (both hi and en are needed)"
            ok = False
            continue
        body, label, code = str(version.get("body") or "").strip(), str(version.get("button") or "").strip(), str(
            version.get("code") or lang)
        if not body:
            yield f"{there}, field 'body': missing"
            ok = False
            continue
        if len(body) > BODY_MAX:
            yield f"{there}, field 'body': {len(body)} characters, the limit is {BODY_MAX}"
            ok = False
        numbers = placeholders(body)
        if sorted(set(numbers)) != list(range(1, len(params) + 1)) or len(numbers) != len(set(numbers)):
            yield (f"{there}, field 'body': placeholders {['{{%d}}' % n for n in numbers]} do not match the "
                   f"{len(params)} parameter(s) (use {{{{1}}}} … {{{{{len(params)}}}}} once each)")
            ok = False
        if "{{" in PLACEHOLDER.sub("", body) or "}}" in PLACEHOLDER.sub("", body):
            yield f"{there}, field 'body': a placeholder is malformed (write {{{{1}}}})"
            ok = False
        if not label or len(label) > BUTTON_MAX:
            yield f"{there}, field 'button': 1 to {BUTTON_MAX} characters"
            ok = False
        if not re.match(r"^[a-z]{2,3}(_[A-Z]{2})?$", code):
            yield f"{there}, field 'code': {code!r} is not a WhatsApp language code (hi, en, en_US)"
            ok = False
        versions[lang] = Version(code, body, label)
    if ok:
        templates[kind] = Template(kind, name, tuple(params), button, versions)

