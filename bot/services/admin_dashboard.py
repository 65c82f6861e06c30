"""The admin page's tables beyond the funnel: where onboarding stops, how far owners got in each
module, the hardest quiz questions, leads waiting and SLA lapses per startup, for the funnel's
filters and a date range.

A date range is two calendar days in India time, both included (``from`` 2026-12-01 ``to``
2026-12-03 is 1 December 00:00 IST up to 4 December 00:00 IST); a malformed or reversed one is
ignored, never an error page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..core.content import Content
from ..core.funnel import Filters
from ..core.session import N_
from ..storage.admin_stats import ModulePlace, QuestionRate, SqliteAdminStats, StartupLoad
from ..storage.db import Database
from .stats import StatsService

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
# Steps with no summary label of their own get one here.
STEP_TITLES = {"": N_("Not started"), "language": N_("Language"), "consent": N_("Consent"), "summary": N_("Checking the answers")}


@dataclass(frozen=True)
class DateRange:
    """Calendar days in India time, both included; either end open (``None``)."""

    start: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> DateRange:
        """From the page's ``from``/``to`` fields (``YYYY-MM-DD``); what does not parse is left open."""
        def day(raw: str | None) -> dt.date | None:
            try:
                return dt.date.fromisoformat(raw) if raw and len(raw) == 10 else None
            except ValueError:
                return None

        a, b = day(start), day(end)
        if a and b and b < a:
            return cls()
        return cls(a, b)

    @property
    def since(self) -> int | None:
        return int(dt.datetime.combine(self.start, dt.time(), IST).timestamp()) if self.start else None

    @property
    def until(self) -> int | None:
        return int(dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), IST).timestamp()) if self.end else None


@dataclass(frozen=True)
class Stop:
    """Owners stopped at one onboarding step: the step's title msgid and how many."""

    step: str
    title: str
    count: int


@dataclass(frozen=True)
class ModuleDropOff:
    """One module: owners who opened it, who passed it, and where the others are (``stops``).

    ``stops`` in the module's order, places nobody is at left out: ``("lesson", n, owners)`` for
    owners reading lesson ``n`` (1-based), ``("read", 0, owners)`` for lessons read and no quiz
    started, ``("quiz", 0, owners)`` in a quiz attempt, ``("failed", 0, owners)`` for a quiz tried
    and not passed.
    """

    module_id: str
    title: str  # the module's short name (a msgid)
    started: int
    passed: int
    stops: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class HardQuestion:
    """A quiz question with a low first-try correct rate: its module's short name and text (msgids)."""

    module: str
    text: str
    answered: int
    correct: int
    rate: float


@dataclass(frozen=True)
class AdminReport:
    """Everything the admin page shows below the funnel."""

    stops: list[Stop]
    questions: list[HardQuestion]
    startups: list[StartupLoad]
    modules: list[ModuleDropOff]


class AdminDashboard:
    """The admin tables, in the content's order and words."""

    def __init__(self, db: Database, content: Content):
        self.repo = SqliteAdminStats(db)
        self.content = content

    @classmethod
    def of(cls, stats: StatsService) -> AdminDashboard:
        """Over the database and content the funnel's ``StatsService`` reads."""
        return cls(stats.repo.db, stats.content)

    async def report(self, filters: Filters, dates: DateRange) -> AdminReport:
        since, until = dates.since, dates.until
        return AdminReport(await self.stops(filters, since, until), await self.hardest(filters, since, until),
                           await self.repo.startup_load(since, until), await self.modules(filters, since, until))

    async def modules(self, filters: Filters, since: int | None, until: int | None) -> list[ModuleDropOff]:
        """Every module in menu order (a module since removed, after them) with its owners' places."""
        places: dict[str, list[ModulePlace]] = {}
        for place in await self.repo.module_places(filters, since, until):
            places.setdefault(place.module_id, []).append(place)
        known = {m.id: m for m in self.content.modules}
        out = []
        for module_id in [m.id for m in self.content.modules] + sorted(set(places) - set(known)):
            module = known.get(module_id)
            lessons = len(module.lessons) if module else 0
            at: dict[tuple[str, int], int] = {}
            passed = 0
            for p in places.get(module_id, ()):
                if p.passed:
                    passed += p.owners
                    continue
                key = (("quiz", 0) if p.in_quiz else ("failed", 0) if p.tried else
                       ("lesson", p.lesson + 1) if p.lesson < lessons else ("read", 0))  # lesson: lessons read
                at[key] = at.get(key, 0) + p.owners
            order = [("lesson", n) for n in range(1, lessons + 1)] + [("read", 0), ("quiz", 0), ("failed", 0)]
            stops = tuple((kind, n, at[(kind, n)]) for kind, n in order if at.get((kind, n)))
            started = passed + sum(at.values())
            out.append(ModuleDropOff(module_id, module.short if module else module_id, started, passed, stops))
        return out

    async def stops(self, filters: Filters, since: int | None, until: int | None) -> list[Stop]:
        """Owners still onboarding by the step they stopped at, in the flow's order (steps nobody is on left out)."""
        counts = await self.repo.onboarding_stops(filters, since, until)
        flow = self.content.onboarding
        order = ["", *flow.steps]
        out = []
        for step_id in order + sorted(set(counts) - set(order)):  # a step since removed from the flow still shows
            if counts.get(step_id):
                step = flow.steps.get(step_id)
                title = STEP_TITLES.get(step_id) or (step.summary_label if step and step.summary_label else step_id)
                out.append(Stop(step_id, title, counts[step_id]))
        return out

    async def hardest(self, filters: Filters, since: int | None, until: int | None, limit: int = 10) -> list[HardQuestion]:
        """The ``limit`` questions with the lowest first-try correct rate."""
        modules = {m.id: m for m in self.content.modules}
        out = []
        for r in await self.repo.question_rates(filters, since, until, limit):
            module = modules.get(r.module_id)
            question = next((q for q in module.quiz if q.id == r.question_id), None) if module else None
            out.append(_hard(r, module.short if module else r.module_id, question.text if question else r.question_id))
        return out


def _hard(r: QuestionRate, module: str, text: str) -> HardQuestion:
    return HardQuestion(module, text, r.answered, r.correct, r.rate)
