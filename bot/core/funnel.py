"""The program funnel: where owners drop out, from first message to first export order.

One path, in order: first message, consent, profile confirmed, the core modules passed,
qualified (a lead was created), assigned to a startup, accepted by it, listed on Alibaba.com,
first export order. An owner counts at a stage when they reached it or any stage after it (an
owner whose lead was listed was accepted, even if they started the training again since), so
no stage holds more owners than the one before. Owners who erased their data are not counted.
Each module's passes are shown beside the path, not in it. Counts come from storage
(``bot/storage/stats.py``); here they become stages with the conversion from the stage before
and from the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .segments import LANGS, Problem, Vocabulary, lookup
from .session import N_, Texts

STAGE_LABELS = {
    "first_message": N_("First message"),
    "consent": N_("Consent given"),
    "onboarded": N_("Profile confirmed"),
    "core": N_("Passed the core modules"),
    "module": N_("Passed: {module}"),
    "qualified": N_("Qualified (lead)"),
    "assigned": N_("Assigned to a startup"),
    "accepted": N_("Accepted by the startup"),
    "listed": N_("Listed on Alibaba.com"),
    "first_order": N_("First export order"),
}


@dataclass(frozen=True)
class FunnelCounts:
    """How many owners reached each stage."""

    first_message: int = 0
    consent: int = 0
    onboarded: int = 0
    core: int = 0  # passed every required module
    modules: dict[str, int] = field(default_factory=dict)  # module id -> owners who passed it (beside the path)
    qualified: int = 0
    assigned: int = 0
    accepted: int = 0
    listed: int = 0
    first_order: int = 0


@dataclass(frozen=True)
class Filters:
    """Which owners the funnel counts (``None``: all)."""

    state: str | None = None
    sector: str | None = None
    lang: str | None = None
    since: int | None = None  # first message at or after (epoch seconds; the dashboard's date range)
    until: int | None = None  # first message before

    @property
    def any(self) -> bool:
        """Whether any filter is set."""
        return any((self.state, self.sector, self.lang))


@dataclass(frozen=True)
class Stage:
    """One funnel stage: its id, label msgid (``module`` fills ``{module}``), count and conversions."""

    id: str
    label: str
    count: int
    module: str | None = None  # the module's short-name msgid, for "Passed: {module}"; such stages are beside the path
    from_previous: float | None = None
    from_first: float | None = None

    def title(self, texts: Texts, lang: str) -> str:
        """The stage's name in ``lang``."""
        text = texts.gettext(lang, self.label)
        return text.format(module=texts.gettext(lang, self.module)) if self.module else text


def stages(counts: FunnelCounts, modules: list[tuple[str, str]]) -> list[Stage]:
    """The funnel for ``counts``; ``modules`` are (id, short-name msgid) in menu order."""
    raw: list[tuple[str, int, str | None]] = [
        ("first_message", counts.first_message, None),
        ("consent", counts.consent, None),
        ("onboarded", counts.onboarded, None),
        ("core", counts.core, None),
        ("qualified", counts.qualified, None),
        ("assigned", counts.assigned, None),
        ("accepted", counts.accepted, None),
        ("listed", counts.listed, None),
        ("first_order", counts.first_order, None),
    ]
    first = raw[0][1]
    result, previous = [], None
    for stage_id, count, module in raw:
        label = STAGE_LABELS["module" if module else stage_id]
        result.append(
            Stage(
                stage_id, label, count, module,
                from_previous=count / previous if previous else None,  # None: first stage, or nobody before
                from_first=count / first if previous is not None and first else None,
            )
        )
        previous = count
    # Beside the path: how many owners passed each module (optional ones included).
    result += [Stage(f"module:{module_id}", STAGE_LABELS["module"], counts.modules.get(module_id, 0), short)
               for module_id, short in modules]
    return result


def path_of(funnel: list[Stage]) -> list[Stage]:
    """The stages on the path, without the per-module counts beside it."""
    return [stage for stage in funnel if stage.module is None]


def parse_filters(args: str, vocab: Vocabulary) -> tuple[Filters, bool, list[Problem]]:
    """``state=uttar_pradesh sector=spices lang=hi chart`` → filters, whether a chart is wanted, problems."""
    state = sector = lang = None
    chart = False
    problems = []
    for word in args.split():
        key, sep, value = word.partition("=")
        key = key.strip().lower()
        if not sep and key == "chart":
            chart = True
        elif key == "state" and value:
            state = lookup(value, vocab.states, vocab.aliases)
            if state is None:
                problems.append(Problem(N_("Unknown state '{value}': use an id like uttar_pradesh."), {"value": value}))
        elif key == "sector" and value:
            sector = lookup(value, vocab.sectors, vocab.aliases)
            if sector is None:
                problems.append(Problem(N_("Unknown sector '{value}': use an id like textiles_apparel."), {"value": value}))
        elif key in ("lang", "language") and value:
            lang = value.lower()
            if lang not in LANGS:
                problems.append(Problem(N_("Unknown language '{value}': use hi or en."), {"value": value}))
        else:
            problems.append(Problem(N_("I did not understand '{value}'. Try: /stats state=uttar_pradesh sector=spices lang=hi chart"), {"value": word}))
    return Filters(state, sector, lang), chart, problems


def describe_filters(filters: Filters, vocab: Vocabulary, texts: Texts, lang: str) -> str:
    """The filters as one line in ``lang`` ("all owners" when none is set)."""
    tr = lambda msgid: texts.gettext(lang, msgid)  # noqa: E731
    parts = []
    if filters.state:
        parts.append(tr(N_("State: {value}")).format(value=tr(vocab.states.get(filters.state, filters.state))))
    if filters.sector:
        parts.append(tr(N_("Sector: {value}")).format(value=tr(vocab.sectors.get(filters.sector, filters.sector))))
    if filters.lang:
        parts.append(tr(N_("Language: {value}")).format(value={"hi": "हिन्दी", "en": "English"}.get(filters.lang, filters.lang)))
    return " · ".join(parts) if parts else tr(N_("all owners"))


def funnel_text(funnel: list[Stage], heading: str, texts: Texts, lang: str) -> str:
    """The funnel as a chat message: each stage's count and its conversion from the stage before."""
    tr = lambda msgid: texts.gettext(lang, msgid)  # noqa: E731
    lines = [heading, ""]
    path, beside = path_of(funnel), [stage for stage in funnel if stage.module is not None]
    for index, stage in enumerate(path, 1):
        count = texts.number(lang, stage.count)
        if stage.from_previous is None:
            lines.append(tr(N_("{n}. {stage}: <b>{count}</b>")).format(n=index, stage=stage.title(texts, lang), count=count))
        else:
            lines.append(
                tr(N_("{n}. {stage}: <b>{count}</b> ({step} of the stage before)")).format(
                    n=index, stage=stage.title(texts, lang), count=count, step=texts.percent(lang, stage.from_previous)
                )
            )
    last = path[-1]
    if last.from_first is not None:
        lines += ["", tr(N_("From first message to first export order: {share}")).format(share=texts.percent(lang, last.from_first))]
    if beside:
        each = " · ".join(f"{tr(stage.module)} {texts.number(lang, stage.count)}" for stage in beside)
        lines += ["", tr(N_("Each module, passed: {modules}")).format(modules=each)]
    return "\n".join(lines)
