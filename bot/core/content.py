"""The content model: onboarding steps and training modules, built from plain data.

Content lives in YAML under ``conversations/``; ``bot.content`` reads the files and passes the
parsed data here. Everything is validated while it is built and every problem is reported as a
``ContentError`` naming the file, the step and the field, so an admin who edits a YAML file learns
exactly what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
LESSON_MAX = 600
QUESTION_MAX = 300
OPTION_MAX = 80
EXPLANATION_MAX = 300
BUTTON_MAX = 20  # WhatsApp's reply-button limit; Telegram buttons look best this short too
STEP_KINDS = ("choice", "consent", "text", "multi", "phone", "summary")
TRANSLATABLE_KEYS = ("text", "label", "title", "short", "summary", "explanation", "hint", "summary_label",
                     "caption", "note", "who", "detail", "total")
"""Keys whose string values are user-visible and go through the gettext catalogs."""


@dataclass(frozen=True)
class Qualification:
    """The rules in ``conversations/qualification.yaml``.

    ``registrations`` maps a yes/no profile field (iec, gst, udyam) to the points a "yes" earns;
    ``experience`` and ``turnover`` map each answer to its points; ``quizzes`` maps a module to
    the points a perfect best score earns (a partial best earns its share). The maxima add up
    to 100.
    """

    threshold: int
    required_modules: tuple[str, ...]
    registrations: tuple[tuple[str, int], ...]
    experience: tuple[tuple[str, int], ...]
    turnover: tuple[tuple[str, int], ...]
    quizzes: tuple[tuple[str, int], ...]


class ContentError(ValueError):
    """A content file is wrong; the message names the file, the place and the field."""

    def __init__(self, source: str, where: str, problem: str):
        self.source, self.where, self.problem = source, where, problem
        super().__init__(f"{source}: {where}: {problem}")


@dataclass(frozen=True)
class Option:
    """One answer a step offers. ``aliases`` are extra ways to type it (e.g. "UP")."""

    id: str
    label: str
    aliases: tuple[str, ...] = ()
    amounts: tuple[tuple[str, int], ...] = ()  # rupee amounts for {placeholders} in the label


@dataclass(frozen=True)
class Step:
    """One question of a flow.

    ``field`` is the profile field the answer is stored in; ``next`` the following step's id
    (``None`` after the last step).
    """

    id: str
    kind: str
    text: str
    field: str
    options: tuple[Option, ...] = ()
    columns: int = 1
    hint: str = ""
    next: str | None = None
    max_length: int = 100
    summary_label: str = ""

    def option(self, option_id: str) -> Option | None:
        """The option with ``option_id``, if this step has one."""
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True)
class Flow:
    """An ordered set of steps, e.g. onboarding."""

    id: str
    steps: dict[str, Step]
    first: str
    version: int = 1

    def step(self, step_id: str) -> Step:
        """The step with ``step_id`` (``KeyError`` if the flow has none)."""
        return self.steps[step_id]


@dataclass(frozen=True)
class QuizOption:
    """An answer to a quiz question."""

    id: str
    text: str
    correct: bool = False


@dataclass(frozen=True)
class Question:
    """A quiz question with exactly one correct option and an explanation."""

    id: str
    text: str
    options: tuple[QuizOption, ...]
    explanation: str

    @property
    def correct(self) -> QuizOption:
        """The one correct option."""
        return next(o for o in self.options if o.correct)


DIAGRAM_LABEL_MAX = 28
DIAGRAM_KINDS = ("flow", "stack")


@dataclass(frozen=True)
class DiagramItem:
    """One box of a diagram: a step of a flow (``who`` does it) or a layer of a price build-up
    (``total`` names the price it completes, e.g. "FOB")."""

    label: str
    who: str = ""
    detail: str = ""
    total: str = ""


@dataclass(frozen=True)
class Diagram:
    """A picture that teaches better than words, drawn from the module file (bot/diagrams.py).

    ``flow``: steps left to right, each with who does it; ``stack``: a price built up from the
    bottom, with the price each layer completes on the right.
    """

    id: str
    kind: str
    title: str
    caption: str
    items: tuple[DiagramItem, ...]
    note: str = ""


@dataclass(frozen=True)
class Lesson:
    """One lesson message, optionally with a diagram sent just before it."""

    id: str
    text: str
    diagram: Diagram | None = None


@dataclass(frozen=True)
class Module:
    """A training module: lessons, then a quiz."""

    id: str
    order: int
    title: str
    short: str
    summary: str
    lessons: tuple[Lesson, ...]
    quiz: tuple[Question, ...]
    requires: tuple[str, ...] = ()
    required: bool = False
    pass_mark: int = 4


@dataclass(frozen=True)
class Content:
    """Everything the engine serves: the onboarding flow and the modules, in menu order."""

    onboarding: Flow
    modules: tuple[Module, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    qualification: Qualification | None = None  # conversations/qualification.yaml (leads)

    def module(self, module_id: str) -> Module | None:
        """The module with ``module_id``, if any."""
        return next((m for m in self.modules if m.id == module_id), None)

    @property
    def required_modules(self) -> tuple[str, ...]:
        """Ids of the modules an owner must pass to count as export-ready."""
        return tuple(m.id for m in self.modules if m.required)


class _Reader:
    """Typed access to one mapping of a content file, with errors that say where."""

    def __init__(self, source: str, where: str, data: Any):
        if not isinstance(data, dict):
            raise ContentError(source, where, "expected a mapping of fields")
        self.source, self.where, self.data = source, where, data

    def fail(self, field_name: str, problem: str) -> ContentError:
        return ContentError(self.source, f"{self.where}, field '{field_name}'", problem)

    def text(self, name: str, *, limit: int | None = None, required: bool = True) -> str:
        value = self.data.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "must be a non-empty string")
        value = value.strip()
        if limit is not None and len(value) > limit:
            raise self.fail(name, f"is {len(value)} characters; the limit is {limit}")
        return value

    def ident(self, name: str = "id") -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not ID_RE.match(value):
            raise self.fail(name, f"{value!r} is not a snake_case id (a-z, 0-9, _; ≤ 40 characters)")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.data.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(name, f"must be a whole number from {low} to {high}")
        return value

    def items(self, name: str, *, required: bool = True) -> list:
        value = self.data.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list) or (required and not value):
            raise self.fail(name, "must be a non-empty list")
        return value

    def unknown(self, allowed: set[str]) -> None:
        extra = set(self.data) - allowed
        if extra:
            raise self.fail(sorted(extra)[0], f"is not a known field (known: {', '.join(sorted(allowed))})")


def _diagram(source: str, where: str, raw: Any, ident: str) -> Diagram:
    r = _Reader(source, where, raw)
    r.unknown({"kind", "title", "caption", "items", "note"})
    kind = r.text("kind")
    if kind not in DIAGRAM_KINDS:
        raise r.fail("kind", f"must be one of {', '.join(DIAGRAM_KINDS)}")
    items = []
    for index, item in enumerate(r.items("items")):
        ir = _Reader(source, f"{where}, item #{index + 1}", item)
        ir.unknown({"label", "who", "detail", "total"})
        items.append(DiagramItem(*(ir.text(f, limit=DIAGRAM_LABEL_MAX, required=f == "label") for f in ("label", "who", "detail", "total"))))
    most = 6 if kind == "flow" else 8  # more does not fit a phone screen
    if not 2 <= len(items) <= most:
        raise r.fail("items", f"a {kind} diagram shows 2 to {most} boxes")
    return Diagram(ident, kind, r.text("title", limit=60), r.text("caption", limit=OPTION_MAX * 4), tuple(items),
                   r.text("note", limit=DIAGRAM_LABEL_MAX, required=False))


def _unique(source: str, where: str, ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ContentError(source, where, f"{what} id '{ident}' is used twice")
        seen.add(ident)


def build_flow(data: Any, source: str) -> Flow:
    """Build and validate a flow (``conversations/onboarding.yaml``)."""
    top = _Reader(source, "flow", data)
    top.unknown({"id", "version", "steps"})
    flow_id = top.ident()
    version = top.integer("version", 1, 1, 10_000)
    raw_steps = top.items("steps")
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        r = _Reader(source, f"step #{index + 1}", raw)
        step_id = r.ident()
        r = _Reader(source, f"step '{step_id}'", raw)
        r.unknown({"id", "kind", "text", "field", "options", "columns", "hint", "next", "max_length", "summary_label"})
        kind = raw.get("kind")
        if kind not in STEP_KINDS:
            raise r.fail("kind", f"must be one of {', '.join(STEP_KINDS)}")
        options: list[Option] = []
        for o_index, o_raw in enumerate(r.items("options", required=kind in ("choice", "multi"))):
            o = _Reader(source, f"step '{step_id}', option #{o_index + 1}", o_raw)
            o.unknown({"id", "label", "aliases", "amounts"})
            aliases = o_raw.get("aliases", [])
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise o.fail("aliases", "must be a list of strings")
            amounts = o_raw.get("amounts", {})
            if not isinstance(amounts, dict) or not all(isinstance(v, int) and v >= 0 for v in amounts.values()):
                raise o.fail("amounts", "must map placeholder names to whole rupee amounts")
            label = o.text("label", limit=BUTTON_MAX)
            try:
                label.format(**{k: "" for k in amounts})
            except (KeyError, IndexError, ValueError) as exc:
                raise o.fail("label", f"has a placeholder without an amount: {exc}") from None
            options.append(Option(o.ident(), label, tuple(aliases), tuple(sorted(amounts.items()))))
        _unique(source, f"step '{step_id}'", [o.id for o in options], "option")
        nxt = raw.get("next")
        steps.append(
            Step(
                id=step_id,
                kind=kind,
                text=r.text("text", limit=LESSON_MAX * 2),
                field=raw.get("field", step_id),
                options=tuple(options),
                columns=r.integer("columns", 1, 1, 4),
                hint=r.text("hint", required=False, limit=300),
                next=nxt,
                max_length=r.integer("max_length", 100, 1, 1000),
                summary_label=r.text("summary_label", required=False, limit=40),
            )
        )
    _unique(source, "flow", [s.id for s in steps], "step")
    linked: dict[str, Step] = {}
    for index, step in enumerate(steps):
        nxt = step.next
        if nxt is None and index + 1 < len(steps) and step.kind != "summary":
            nxt = steps[index + 1].id
        if nxt is not None and nxt not in {s.id for s in steps}:
            raise ContentError(source, f"step '{step.id}', field 'next'", f"names step '{nxt}', which does not exist")
        linked[step.id] = Step(**{**step.__dict__, "next": nxt})
    return Flow(id=flow_id, steps=linked, first=steps[0].id, version=version)


def build_module(data: Any, source: str) -> Module:
    """Build and validate one training module (``conversations/modules/*.yaml``)."""
    top = _Reader(source, "module", data)
    top.unknown({"id", "order", "title", "short", "summary", "requires", "required", "pass_mark", "lessons", "quiz"})
    module_id = top.ident()
    top = _Reader(source, f"module '{module_id}'", data)
    lessons = []
    for index, raw in enumerate(top.items("lessons")):
        r = _Reader(source, f"module '{module_id}', lesson #{index + 1}", raw)
        r.unknown({"id", "text", "diagram"})
        lesson_id, text = r.ident(), r.text("text", limit=LESSON_MAX)
        diagram = None
        if r.data.get("diagram") is not None:
            diagram = _diagram(source, f"module '{module_id}', lesson '{lesson_id}', diagram", r.data["diagram"], f"{module_id}.{lesson_id}")
        lessons.append(Lesson(lesson_id, text, diagram))
    _unique(source, f"module '{module_id}'", [lesson.id for lesson in lessons], "lesson")
    questions = []
    for index, raw in enumerate(top.items("quiz")):
        r = _Reader(source, f"module '{module_id}', question #{index + 1}", raw)
        q_id = r.ident()
        r = _Reader(source, f"module '{module_id}', question '{q_id}'", raw)
        r.unknown({"id", "text", "options", "explanation"})
        options = []
        for o_index, o_raw in enumerate(r.items("options")):
            o = _Reader(source, f"module '{module_id}', question '{q_id}', option #{o_index + 1}", o_raw)
            o.unknown({"id", "text", "correct"})
            correct = o_raw.get("correct", False)
            if not isinstance(correct, bool):
                raise o.fail("correct", "must be true or false")
            options.append(QuizOption(o.ident(), o.text("text", limit=OPTION_MAX), correct))
        if not 3 <= len(options) <= 4:
            raise r.fail("options", f"has {len(options)} options; a question needs 3 or 4")
        if sum(o.correct for o in options) != 1:
            raise r.fail("options", "must have exactly one option with 'correct: true'")
        _unique(source, f"module '{module_id}', question '{q_id}'", [o.id for o in options], "option")
        questions.append(
            Question(q_id, r.text("text", limit=QUESTION_MAX), tuple(options), r.text("explanation", limit=EXPLANATION_MAX))
        )
    _unique(source, f"module '{module_id}'", [q.id for q in questions], "question")
    requires = top.data.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(x, str) for x in requires):
        raise top.fail("requires", "must be a list of module ids")
    required = top.data.get("required", False)
    if not isinstance(required, bool):
        raise top.fail("required", "must be true or false")
    return Module(
        id=module_id,
        order=top.integer("order", 100, 0, 10_000),
        title=top.text("title", limit=40),
        short=top.text("short", limit=BUTTON_MAX),
        summary=top.text("summary", limit=OPTION_MAX),
        lessons=tuple(lessons),
        quiz=tuple(questions),
        requires=tuple(requires),
        required=required,
        pass_mark=top.integer("pass_mark", 4, 1, len(questions)),
    )


def build_content(onboarding: Flow, modules: list[Module], source: str = "conversations/modules") -> Content:
    """Put the pieces together and check what spans files (module ids, ``requires``)."""
    _unique(source, "modules", [m.id for m in modules], "module")
    ids = {m.id for m in modules}
    for module in modules:
        for dep in module.requires:
            if dep not in ids:
                raise ContentError(f"{source}/{module.id}.yaml", f"module '{module.id}', field 'requires'", f"names module '{dep}', which does not exist")
            if dep == module.id:
                raise ContentError(f"{source}/{module.id}.yaml", f"module '{module.id}', field 'requires'", "a module cannot require itself")
    ordered = sorted(modules, key=lambda m: (m.order, m.id))
    return Content(onboarding=onboarding, modules=tuple(ordered))
